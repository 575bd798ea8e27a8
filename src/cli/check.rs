//! `redisctl check`: everything that is not as declared or not agreed on, in one report.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::exec::maintenance;
use crate::observe::{Live, Observed, agent};
use crate::plan::{self, converge};
use crate::topology::{InstanceKey, Topology};

/// What this machine knows about whether a host is drained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drain {
    /// Drained since this unix time: its mark is in this state directory (the host is this
    /// machine), or its agent said so (`at`).
    Drained { since: u64, at: Option<SocketAddr> },
    /// Its agent answered: not drained.
    NotDrained { at: SocketAddr },
    /// Nobody could say, and why.
    Unknown(String),
}

/// Declared instances and Sentinels that did not answer, by host.
pub struct Down {
    pub host: String,
    pub keys: Vec<InstanceKey>,
    /// How many the topology declares on that host.
    pub declared: usize,
    pub drain: Drain,
}

impl Down {
    /// One line: which instances, and what that may mean.
    pub fn describe(&self, local: bool) -> String {
        let keys: Vec<String> = self.keys.iter().map(ToString::to_string).collect();
        let host = &self.host;
        let silent = self.keys.len() == self.declared;
        let why = match (&self.drain, local) {
            (Drain::Drained { since, at }, _) => format!(
                "host {host} is drained (since unix time {since}{}); `redisctl undrain FILE {host}` on it brings it back",
                at.map(|a| format!(", says its agent at {a}"))
                    .unwrap_or_default()
            ),
            (_, true) => "run `redisctl apply` to start them".to_string(),
            (Drain::NotDrained { at }, false) if silent => format!(
                "none of host {host}'s instances answers and its agent at {at} says it is not drained: they are down there or unreachable from here; run `redisctl apply` on {host} (or see why they stopped)"
            ),
            (Drain::Unknown(why), false) if silent => format!(
                "none of host {host}'s instances answers: it is down, unreachable from here, or drained ({why})"
            ),
            (_, false) => {
                format!("run `redisctl apply` on host {host} (or see why they stopped there)")
            }
        };
        format!("not answering: {}; {why}", keys.join(", "))
    }
}

/// Every declared node that did not answer, grouped by host (in topology order), with what
/// is known of the host's drain: its mark in `state_dir`, or for a host none of whose
/// instances answers, its agent's answer (`GET /drained`, asked in parallel, 1 s at most).
pub async fn down(topo: &Topology, obs: &Observed, state_dir: &Path) -> Vec<Down> {
    let keys = topo
        .instances()
        .map(|i| &i.key)
        .chain(topo.sentinels().map(|s| &s.key));
    let mut out: Vec<Down> = Vec::new();
    for key in keys {
        let answered = obs
            .nodes
            .get(key)
            .is_some_and(|o| o.live.is_some() || o.repl.is_some() || o.sentinel.is_some());
        let entry = match out.iter().position(|d| d.host == key.host) {
            Some(i) => &mut out[i],
            None => {
                out.push(Down {
                    host: key.host.clone(),
                    keys: Vec::new(),
                    declared: 0,
                    drain: match maintenance::load_mark(state_dir, &key.host) {
                        Some(m) => Drain::Drained {
                            since: m.since,
                            at: None,
                        },
                        None => Drain::Unknown("no drain mark here".into()),
                    },
                });
                out.last_mut().expect("just pushed")
            }
        };
        entry.declared += 1;
        if !answered {
            entry.keys.push(key.clone());
        }
    }
    out.retain(|d| !d.keys.is_empty());
    let asks = out.iter().map(|d| {
        let ask = (d.keys.len() == d.declared && matches!(d.drain, Drain::Unknown(_)))
            .then(|| ask_agent(topo, &d.host));
        async move {
            match ask {
                Some(a) => Some(a.await),
                None => None,
            }
        }
    });
    let answers = futures::future::join_all(asks).await;
    for (d, a) in out.iter_mut().zip(answers) {
        if let Some(a) = a {
            d.drain = a;
        }
    }
    out
}

/// Ask `host`'s agent whether it is drained.
async fn ask_agent(topo: &Topology, host: &str) -> Drain {
    let Some(listen) = topo.agent.listen else {
        return Drain::Unknown("agent.listen is off, so no agent can be asked".into());
    };
    let Some(h) = topo.hosts.iter().find(|h| h.name == host) else {
        return Drain::Unknown("not a declared host".into());
    };
    let at = match listen.reach(h.address) {
        Ok(a) => a,
        Err(why) => return Drain::Unknown(why),
    };
    match agent::ask_drained(at, &topo.name, Duration::from_secs(1)).await {
        Ok(a) if !a.hosts.iter().any(|x| x == host) => {
            Drain::Unknown(format!("the agent at {at} does not serve host {host}"))
        }
        Ok(a) => match a.drained.iter().find(|(x, _)| x == host) {
            Some((_, since)) => Drain::Drained {
                since: *since,
                at: Some(at),
            },
            None => Drain::NotDrained { at },
        },
        Err(why) => Drain::Unknown(why),
    }
}

/// `local`: the hosts this machine is (for the advice on nodes that are down).
/// `down`: from [`down`] (which hosts are silent, and whether one of them is drained).
pub fn findings(topo: &Topology, obs: &Observed, down: &[Down], local: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(down.iter().map(|d| d.describe(local.contains(&d.host))));
    let p = plan::plan(topo, obs);
    out.extend(p.blockers.iter().map(|b| format!("refused: {b}")));
    out.extend(p.waits.iter().map(|w| format!("not settled: {w}")));
    for step in &p.steps {
        if !matches!(
            step,
            plan::Step::WaitConverged { .. }
                | plan::Step::WaitGroups { .. }
                | plan::Step::WaitMembership { .. }
        ) {
            out.push(format!("apply would: {step}"));
        }
    }
    // Cluster agreement: membership, slot maps on masters and replicas, coverage, open slots.
    let lives: Vec<(&InstanceKey, &Live)> = topo
        .cluster_instances()
        .filter_map(|i| {
            obs.nodes
                .get(&i.key)
                .and_then(|o| o.live.as_ref())
                .map(|l| (&i.key, l))
        })
        .collect();
    // (Nodes that do not answer are reported by host above.)
    if topo.cluster.is_some() {
        out.extend(converge::problems(topo, &lives));
    }
    out.extend(plan::group_problems(topo, obs));
    // Anti-affinity with the roles as they are now (failovers move masters around).
    let zone = |k: &InstanceKey| {
        topo.hosts
            .iter()
            .find(|h| h.name == k.host)
            .and_then(|h| h.zone.clone())
    };
    if topo.hosts.len() > 1
        && let Some(c) = &topo.cluster
    {
        for shard in &c.shards {
            // The operator was warned at validation when the declared placement itself puts
            // a replica in its master's zone; then failovers change nothing about zones.
            let declared_same_zone = shard
                .replicas
                .iter()
                .any(|r| zone(&r.key).is_some() && zone(&r.key) == zone(&shard.master.key));
            let members: Vec<(&InstanceKey, &Live)> = shard
                .members()
                .filter_map(|m| {
                    obs.nodes
                        .get(&m.key)
                        .and_then(|o| o.live.as_ref())
                        .map(|l| (&m.key, l))
                })
                .collect();
            if let Some((mk, _)) = members
                .iter()
                .find(|(_, l)| l.myself.flags.master && !l.myself.slots.is_empty())
            {
                for (rk, _) in members
                    .iter()
                    .filter(|(k, l)| k != mk && l.myself.flags.replica)
                {
                    if rk.host == mk.host {
                        out.push(format!(
                            "shard {}: master {mk} and replica {rk} are on the same host; `apply --restore-roles` moves mastership back",
                            shard.number
                        ));
                    } else if let (Some(zm), Some(zr)) = (zone(mk), zone(rk))
                        && zm == zr
                        && !declared_same_zone
                    {
                        out.push(format!(
                            "shard {}: master {mk} and replica {rk} are in the same zone {zm:?}; `apply --restore-roles` moves mastership back",
                            shard.number
                        ));
                    }
                }
            }
        }
    }
    for inst in topo.instances() {
        if let Some(o) = obs.nodes.get(&inst.key) {
            for (k, have, want) in &o.live_drift {
                out.push(format!("{}: {k} is {have:?}, declared {want:?}", inst.key));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
