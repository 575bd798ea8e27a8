//! What the agent may do alone: a pure filter from (plan, observation, facts about this host)
//! to the steps it runs and the ones it leaves, each with the reason. It never builds steps of
//! its own: everything it runs comes from the planner `apply` uses.

use std::collections::BTreeSet;
use std::fmt;

use crate::observe::Observed;
use crate::plan::{Plan, Step};
use crate::topology::{InstanceKey, Topology};

/// Why a planned step is not run by the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withheld {
    /// A change of the deployment (scaling, rebalancing, retiring, a new instance, a
    /// bootstrap): `apply` does it, with a person's confirmation.
    NeedsApply,
    /// Fewer than a majority of the cluster's masters answer: only this host's own stopped
    /// instances are started.
    NoMajority { visible: usize, total: usize },
    /// systemd is restarting the instance (its start hook handles crash-safety).
    SystemdRestarting(InstanceKey),
    /// This kind of step failed recently; the next attempt is later.
    BackingOff { failures: u32, retry_in_secs: u64 },
    /// A wait for the whole deployment to settle: the next round looks again instead.
    Gate,
    /// A step of a maintenance command (drain, undrain, failover, restart --rolling): only
    /// that command, run by a person, takes it.
    Maintenance,
}

impl fmt::Display for Withheld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Withheld::NeedsApply => write!(f, "waiting for apply"),
            Withheld::NoMajority { visible, total } => write!(
                f,
                "no majority of masters in view ({visible} of {total} answer)"
            ),
            Withheld::SystemdRestarting(k) => write!(f, "systemd is restarting {k}"),
            Withheld::Gate => write!(f, "the next round checks instead"),
            Withheld::Maintenance => write!(f, "a maintenance command's step"),
            Withheld::BackingOff {
                failures,
                retry_in_secs,
            } => write!(
                f,
                "failed {failures} time(s); next try in {retry_in_secs} s"
            ),
        }
    }
}

/// Facts about this host and this moment the filter needs besides the plan.
pub struct Facts<'a> {
    /// An instance this deployment has run before (recorded in state.json, or its directory
    /// exists): starting it again, or re-attaching it, is healing, not a change.
    pub known: &'a dyn Fn(&InstanceKey) -> bool,
    /// systemd is bringing this instance back by itself.
    pub restarting: &'a dyn Fn(&InstanceKey) -> bool,
    /// The kind (see `kind`) is in back-off: (failures, seconds until the next try).
    pub backing_off: &'a dyn Fn(&str) -> Option<(u32, u64)>,
}

/// The steps to run now and those left, with the reason.
#[derive(Debug, Default)]
pub struct Decision {
    pub run: Vec<Step>,
    pub withheld: Vec<(Step, Withheld)>,
}

/// The step's kind, as in the JSON plan (`start`, `move_slots`, …): the key of back-off and
/// of the metrics.
pub fn kind(step: &Step) -> String {
    serde_json::to_value(step)
        .ok()
        .and_then(|v| v.get("step").and_then(|s| s.as_str().map(str::to_string)))
        .unwrap_or_else(|| "unknown".into())
}

/// Masters owning slots in any live node's view, and how many of them answer. None when the
/// topology has no cluster or no live node knows any master.
pub fn masters_in_view(topo: &Topology, obs: &Observed) -> Option<(usize, usize)> {
    topo.cluster.as_ref()?;
    let mut all: BTreeSet<&str> = BTreeSet::new();
    let mut answering: BTreeSet<&str> = BTreeSet::new();
    for o in obs.nodes.values() {
        if let Some(l) = &o.live {
            answering.insert(l.myself.id.as_str());
            // A master marked failed still counts while it owns slots: one we cannot see.
            for line in l.view() {
                if line.flags.master && !line.slots.is_empty() {
                    all.insert(line.id.as_str());
                }
            }
        }
    }
    if all.is_empty() {
        return None;
    }
    let visible = all.iter().filter(|id| answering.contains(*id)).count();
    Some((visible, all.len()))
}

/// Slots some live node has open (MIGRATING or IMPORTING): left by an interrupted move.
fn open_slots(obs: &Observed) -> BTreeSet<u16> {
    obs.nodes
        .values()
        .filter_map(|o| o.live.as_ref())
        .flat_map(|l| {
            l.myself
                .migrating
                .iter()
                .chain(l.myself.importing.iter())
                .map(|(s, _)| *s)
        })
        .collect()
}

/// Heal by default; never change the deployment. See docs/agent.md for the table.
pub fn decide(topo: &Topology, plan: &Plan, obs: &Observed, facts: &Facts) -> Decision {
    let mut d = Decision::default();
    let open = open_slots(obs);
    let majority = match masters_in_view(topo, obs) {
        Some((visible, total)) if visible * 2 <= total => {
            Err(Withheld::NoMajority { visible, total })
        }
        _ => Ok(()),
    };
    let known = facts.known;
    for step in &plan.steps {
        let verdict = match step {
            Step::Start { node } | Step::StartReplica { node, .. } => {
                if !known(node) {
                    Err(Withheld::NeedsApply)
                } else if (facts.restarting)(node) {
                    Err(Withheld::SystemdRestarting(node.clone()))
                } else {
                    // Starting this host's own instance is what systemd's Restart= would do:
                    // allowed even without a majority of masters in view.
                    Ok(())
                }
            }
            Step::TakeOver { from, .. }
            | Step::SentinelPromote { from, .. }
            | Step::PromoteReplica { from, .. } => {
                if (facts.restarting)(from) {
                    Err(Withheld::SystemdRestarting(from.clone()))
                } else {
                    majority.clone()
                }
            }
            Step::Replicate { node, master } | Step::ReplicaOf { node, master } => {
                if known(node) && known(master) {
                    majority.clone()
                } else {
                    Err(Withheld::NeedsApply)
                }
            }
            Step::Meet { node, targets } => {
                if known(node) && targets.iter().all(known) {
                    majority.clone()
                } else {
                    Err(Withheld::NeedsApply)
                }
            }
            Step::MoveSlots { slots, .. } => {
                let finishing = slots
                    .iter()
                    .flat_map(|r| r.start..=r.end)
                    .all(|s| open.contains(&s));
                if finishing {
                    majority.clone()
                } else {
                    Err(Withheld::NeedsApply)
                }
            }
            Step::WriteConfig { .. }
            | Step::ConfigSet { .. }
            | Step::RestartSentinel { .. }
            | Step::AclSetUser { .. }
            | Step::AclAddPasswords { .. }
            | Step::SetMasterAuth { .. }
            | Step::SentinelAuthPass { .. }
            | Step::SentinelPeerPass { .. }
            | Step::SentinelMonitor { .. }
            | Step::SentinelSet { .. }
            | Step::Forget { .. } => majority.clone(),
            // Only planned with restore_roles, which the agent sets only when the policy
            // allows it and the deployment has been stable long enough.
            Step::ClusterFailover { .. } | Step::SentinelFailover { .. } => majority.clone(),
            // The membership gate guards slot moves; the others only wait for the whole
            // deployment to settle, which the next round sees anyway (and which never comes
            // while a host is down).
            Step::WaitMembership { .. } => Ok(()),
            Step::WaitGroups { .. } | Step::WaitConverged { .. } => Err(Withheld::Gate),
            // Bootstrap, scaling and removal: apply's, with a person's confirmation.
            Step::SetConfigEpoch { .. }
            | Step::AddSlots { .. }
            | Step::Retire { .. }
            | Step::SentinelRemove { .. }
            // Switching TLS modes changes what every client must speak: the operator's.
            | Step::TlsSwitch { .. } => Err(Withheld::NeedsApply),
            // Never planned by `plan`/`apply`; listed so that a new kind is classified here.
            Step::ForcedFailover { .. }
            | Step::MarkDrained { .. }
            | Step::HoldPromotion { .. }
            | Step::Stop { .. }
            | Step::Restart { .. }
            | Step::WaitCaughtUp { .. }
            | Step::ClearDrainMark { .. } => Err(Withheld::Maintenance),
        };
        let verdict = verdict.and_then(|()| match (facts.backing_off)(&kind(step)) {
            Some((failures, retry_in_secs)) if !is_gate(step) => Err(Withheld::BackingOff {
                failures,
                retry_in_secs,
            }),
            _ => Ok(()),
        });
        match verdict {
            Ok(()) => d.run.push(step.clone()),
            Err(why) => d.withheld.push((step.clone(), why)),
        }
    }
    // A gate waits for the whole plan's result, which withheld steps never bring: the next
    // round plans again anyway. (Gates withheld as gates do not count.)
    d.withheld.retain(|(_, w)| *w != Withheld::Gate);
    if !d.withheld.is_empty() {
        d.run.retain(|s| !is_gate(s));
    }
    if d.run.iter().all(is_gate) {
        d.run.clear();
    }
    d
}

fn is_gate(s: &Step) -> bool {
    matches!(
        s,
        Step::WaitMembership { .. } | Step::WaitGroups { .. } | Step::WaitConverged { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::slots::SlotRange;

    fn key(p: u16) -> InstanceKey {
        InstanceKey {
            host: "a".into(),
            port: p,
        }
    }

    fn topo() -> Topology {
        let y = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\ncluster: {shards: 3, replicas: 1, ports: 7000-7005}\n";
        crate::topology::parse(y, "t.yaml", std::path::Path::new("."))
            .unwrap()
            .topology
    }

    fn run(plan: Vec<Step>, known: &[u16], restarting: &[u16], backoff: &[&str]) -> Decision {
        let plan = Plan {
            steps: plan,
            ..Plan::default()
        };
        let k = |x: &InstanceKey| known.contains(&x.port);
        let r = |x: &InstanceKey| restarting.contains(&x.port);
        let b = |s: &str| backoff.contains(&s).then_some((2, 10));
        decide(
            &topo(),
            &plan,
            &Observed::default(),
            &Facts {
                known: &k,
                restarting: &r,
                backing_off: &b,
            },
        )
    }

    #[test]
    fn heals_known_instances_and_leaves_new_ones_to_apply() {
        let d = run(
            vec![
                Step::Start { node: key(7003) },
                Step::Start { node: key(7006) },
                Step::Replicate {
                    node: key(7003),
                    master: key(7000),
                },
                Step::WaitConverged { nodes: vec![] },
            ],
            &[7000, 7003],
            &[],
            &[],
        );
        assert_eq!(
            d.run,
            vec![
                Step::Start { node: key(7003) },
                Step::Replicate {
                    node: key(7003),
                    master: key(7000)
                }
            ]
        );
        assert_eq!(
            d.withheld,
            vec![(Step::Start { node: key(7006) }, Withheld::NeedsApply)]
        );
    }

    /// Steps only maintenance commands plan are never the agent's, even for known instances.
    #[test]
    fn maintenance_steps_are_never_run_by_the_agent() {
        let steps = vec![
            Step::MarkDrained {
                host: "a".into(),
                masters: vec![key(7000)],
            },
            Step::HoldPromotion {
                nodes: vec![key(7000)],
            },
            Step::Stop {
                nodes: vec![key(7000)],
            },
            Step::Restart { node: key(7000) },
            Step::WaitCaughtUp {
                nodes: vec![key(7000)],
            },
            Step::ClearDrainMark { host: "a".into() },
            Step::ForcedFailover { node: key(7001) },
        ];
        let d = run(steps.clone(), &[7000, 7001], &[], &[]);
        assert!(d.run.is_empty(), "{:?}", d.run);
        let why: Vec<&Withheld> = d.withheld.iter().map(|(_, w)| w).collect();
        assert_eq!(why, vec![&Withheld::Maintenance; steps.len()]);
    }

    #[test]
    fn rebalancing_retiring_and_bootstrap_wait_for_apply() {
        let mv = Step::MoveSlots {
            from: key(7000),
            to: key(7006),
            from_addr: "127.0.0.1:7000".into(),
            to_addr: "127.0.0.1:7006".into(),
            slots: vec![SlotRange { start: 0, end: 99 }],
        };
        let d = run(
            vec![
                mv.clone(),
                Step::Retire {
                    node: key(7009),
                    id: "x".into(),
                    addr: "127.0.0.1:7009".into(),
                },
                Step::AddSlots {
                    node: key(7000),
                    ranges: vec![SlotRange { start: 0, end: 5 }],
                },
                Step::WaitMembership { nodes: vec![] },
            ],
            &[7000, 7006, 7009],
            &[],
            &[],
        );
        assert!(d.run.is_empty(), "{:?}", d.run);
        assert_eq!(d.withheld.len(), 3);
        assert!(d.withheld.iter().all(|(_, w)| *w == Withheld::NeedsApply));
    }

    #[test]
    fn systemd_restarts_and_back_off_are_respected() {
        let d = run(
            vec![
                Step::Start { node: key(7003) },
                Step::TakeOver {
                    node: key(7003),
                    from: key(7000),
                    reopen: Vec::new(),
                },
                Step::ConfigSet {
                    node: key(7001),
                    params: vec![("maxmemory".into(), "0".into())],
                },
            ],
            &[7000, 7001, 7003],
            &[7003, 7000],
            &["config_set"],
        );
        assert!(d.run.is_empty());
        assert_eq!(d.withheld[0].1, Withheld::SystemdRestarting(key(7003)));
        assert_eq!(d.withheld[1].1, Withheld::SystemdRestarting(key(7000)));
        assert_eq!(
            d.withheld[2].1,
            Withheld::BackingOff {
                failures: 2,
                retry_in_secs: 10
            }
        );
        assert_eq!(kind(&d.withheld[2].0), "config_set");
    }
}
