//! Planning for plain replication groups and their Sentinels. Pure, like the rest of plan/.
//!
//! Roles are runtime state: they are converged with REPLICAOF on live nodes and never written
//! into redis.conf. Sentinel owns elections: once Sentinels monitor a group, the master they
//! report is the master, whatever the topology prefers; only `--restore-roles` moves it back,
//! through Sentinel itself.

use std::collections::BTreeMap;

use super::restart::Comeback;
use super::{Blocker, BlockerKind, Note, NoteKind, Options, Plan, Step, Wait, WaitKind};
use crate::observe::{NodeObs, Observed, ReplLive, SentinelMaster};
use crate::supervise::ProcState;
use crate::topology::{Group, Instance, InstanceKey, Topology};

pub fn plan(topo: &Topology, obs: &Observed, opts: Options) -> Plan {
    let mut p = Plan::default();
    if topo.groups.is_empty() {
        return p;
    }
    // Processes first: start what is down, refuse what is not ours.
    let mut down: Vec<&InstanceKey> = Vec::new();
    for key in topo
        .groups
        .iter()
        .flat_map(Group::members)
        .map(|m| &m.key)
        .chain(topo.sentinels().map(|s| &s.key))
    {
        let Some(o) = obs.nodes.get(key) else {
            p.blockers.push(Blocker::on(
                BlockerKind::NotObserved,
                key,
                format!("{key}: not observed"),
            ));
            continue;
        };
        let answered = o.repl.is_some() || o.sentinel.is_some();
        if o.auth_failed {
            p.blockers.push(super::auth_failed(key, o));
        } else if matches!(o.process, ProcState::Stopped | ProcState::Stale { .. }) {
            if o.port_answers {
                p.blockers.push(Blocker::on(BlockerKind::ForeignProcess, key, format!(
                    "{key}: {} answers, but redisctl did not start that process ({}); stop it or change the port",
                    o.endpoint,
                    o.error.as_deref().unwrap_or("not one of this deployment's instances")
                )));
            } else {
                down.push(key);
            }
        } else if !answered {
            match o.process {
                ProcState::Remote => p.notes.push(Note::on(
                    NoteKind::RemoteDown,
                    key,
                    format!(
                        "{key} ({}) is not answering and runs on another host: run `redisctl apply` there",
                        o.endpoint
                    ),
                )),
                _ => p.waits.push(Wait::on(
                    WaitKind::NotAnswering,
                    key,
                    format!(
                        "{key} ({}): process is running but not answering yet: {}",
                        o.endpoint,
                        o.error.as_deref().unwrap_or("unknown error")
                    ),
                )),
            }
        } else if o.config_drift && !matches!(o.process, ProcState::Remote) {
            p.steps.push(Step::WriteConfig { node: key.clone() });
        }
    }
    if p.halted() {
        return p;
    }

    for s in topo.sentinels().filter(|s| down.contains(&&s.key)) {
        p.steps.push(Step::Start {
            node: s.key.clone(),
        });
    }
    // Roles and monitors are planned from what the started nodes report.
    let starting = !down.is_empty();

    let mut waits = Vec::new();
    for g in &topo.groups {
        let current = current_master(topo, g, obs);
        let busy = sentinel_busy(topo, g, obs);
        if let Some(why) = &busy {
            p.notes.push(
                Note::general(
                    NoteKind::SentinelBusy,
                    format!(
                        "{}: {why}; redisctl leaves the group to Sentinel until it settles",
                        g.name
                    ),
                )
                .in_group(&g.name),
            );
        }

        // Members that are down come back by the crash-safe restart rule (plan/restart.rs).
        for m in g.members().filter(|m| down.contains(&&m.key)) {
            match super::restart::group(topo, g, m, obs) {
                Comeback::InPlace { why } => {
                    p.notes.extend(
                        why.map(|w| Note::on(NoteKind::Restart, &m.key, w).in_group(&g.name)),
                    );
                    p.steps.push(Step::Start {
                        node: m.key.clone(),
                    });
                }
                Comeback::AsReplica { master } => p.steps.push(Step::StartReplica {
                    node: m.key.clone(),
                    master,
                }),
                Comeback::PromoteFirst { step, why } => {
                    p.notes
                        .push(Note::on(NoteKind::Restart, &m.key, why).in_group(&g.name));
                    p.steps.push(step);
                }
                Comeback::Refuse(why) => p
                    .blockers
                    .push(Blocker::on(BlockerKind::UnsafeRestart, &m.key, why).in_group(&g.name)),
            }
        }
        if !starting && busy.is_none() {
            // A replication loop (every member a replica, none down, nobody master): no
            // writes are possible. Promote the member with the newest data.
            let live: Vec<(&Instance, &ReplLive)> = g
                .members()
                .filter_map(|m| repl(obs, &m.key).map(|r| (m, r)))
                .collect();
            if live.len() == g.members().count() && live.iter().all(|(_, r)| !r.is_master) {
                let (top, _) = live
                    .iter()
                    .max_by_key(|(m, r)| (r.offset, std::cmp::Reverse(m.key.clone())))
                    .expect("a group has members");
                p.notes.push(Note::on(NoteKind::ReplicationLoop, &top.key, format!(
                    "{}: every member is a replica (a replication loop): nobody accepts writes; promoting {}, the member with the newest data",
                    g.name, top.key
                )).in_group(&g.name));
                p.steps.push(if sentinel_majority(topo, obs) {
                    Step::SentinelPromote {
                        group: g.name.clone(),
                        from: current.key.clone(),
                    }
                } else {
                    Step::PromoteReplica {
                        group: g.name.clone(),
                        node: top.key.clone(),
                        from: current.key.clone(),
                    }
                });
                waits.push(g.name.clone());
                continue;
            }
        }
        if busy.is_some() {
            waits.push(g.name.clone());
            continue;
        }

        // Live members replicate from their upstream.
        let sentinels = topo.sentinel.is_some();
        for m in g.members() {
            let (Some(r), Some(u)) = (repl(obs, &m.key), desired_upstream(g, &m.key, current))
            else {
                continue;
            };
            let Some(up) = g.member(u) else { continue };
            if replicates_from(r, up) {
                continue;
            }
            if r.is_master && r.keys > 0 {
                let current_serves = repl(obs, &current.key).is_some_and(|c| c.is_master);
                if sentinels && current_serves && sentinels_agree(topo, g, obs, current) {
                    // Sentinel already elected `current`; this is a stale master coming
                    // back. Demote it now, exactly as Sentinel would a few seconds later.
                    p.steps.push(Step::ReplicaOf {
                        node: m.key.clone(),
                        master: u.clone(),
                    });
                } else if sentinels {
                    p.notes.push(Note::on(NoteKind::SentinelDecides, &m.key, format!(
                        "{}: {} is a master holding {} keys while {} is the group's master; waiting for Sentinel to decide",
                        g.name, m.key, r.keys, current.key
                    )).related([current.key.clone()]).in_group(&g.name));
                } else {
                    p.blockers.push(Blocker::on(BlockerKind::WouldDiscardKeys, &m.key, format!(
                        "{}: {} is a master holding {} keys; making it a replica of {u} would discard them. Decide which node holds the data you want, and make the topology's master that node",
                        g.name, m.key, r.keys
                    )).related([u.clone()]).in_group(&g.name));
                }
                continue;
            }
            p.steps.push(Step::ReplicaOf {
                node: m.key.clone(),
                master: u.clone(),
            });
        }

        // Sentinels monitor the group at its current master.
        if let Some(sc) = &topo.sentinel {
            for s in sc.instances.iter().filter(|s| !away(obs, &s.key)) {
                let Some(live) = obs.nodes.get(&s.key).and_then(|o| o.sentinel.as_ref()) else {
                    continue;
                };
                match live.masters.iter().find(|x| x.name == g.name) {
                    None => p.steps.push(Step::SentinelMonitor {
                        sentinel: s.key.clone(),
                        group: g.name.clone(),
                        master: current.key.clone(),
                    }),
                    Some(sm) => {
                        let params = sentinel_drift(topo, sm);
                        if !params.is_empty() {
                            p.steps.push(Step::SentinelSet {
                                sentinel: s.key.clone(),
                                group: g.name.clone(),
                                params,
                            });
                        }
                    }
                }
            }
        }

        // Preferred master.
        if current.key != g.master.key {
            let preferred = repl(obs, &g.master.key);
            let master = repl(obs, &current.key);
            let ready = preferred.zip(master).is_some_and(|(r, m)| {
                !r.is_master
                    && replicates_from(r, current)
                    && super::in_sync(&m.info, &r.info) == Ok(true)
            });
            if !opts.restore_roles {
                p.notes.push(Note::on(NoteKind::NotPreferredMaster, &current.key, format!(
                    "{}: the master is {} (preferred: {}) after a failover; `apply --restore-roles` moves it back",
                    g.name, current.key, g.master.key
                )).related([g.master.key.clone()]).in_group(&g.name));
            } else if topo.sentinel.is_none() {
                p.notes.push(Note::general(NoteKind::RolesNotRestored, format!(
                    "{}: --restore-roles needs Sentinels to hand mastership over safely; none are declared",
                    g.name
                )).in_group(&g.name));
            } else if !ready {
                p.notes.push(Note::on(NoteKind::RolesNotRestored, &g.master.key, format!(
                    "{}: not moving mastership back to {}: it is not a replica in sync with {} yet",
                    g.name, g.master.key, current.key
                )).related([current.key.clone()]).in_group(&g.name));
            } else {
                p.steps.push(Step::SentinelFailover {
                    group: g.name.clone(),
                    to: g.master.key.clone(),
                });
            }
        }
        waits.push(g.name.clone());
    }

    // Sentinels watching names that are not ours any more.
    for s in topo.sentinels() {
        if let Some(live) = obs.nodes.get(&s.key).and_then(|o| o.sentinel.as_ref()) {
            for m in &live.masters {
                if !topo.groups.iter().any(|g| g.name == m.name) {
                    p.steps.push(Step::SentinelRemove {
                        sentinel: s.key.clone(),
                        group: m.name.clone(),
                    });
                }
            }
        }
    }

    // Renewed TLS files: Sentinel cannot reload them live, so one Sentinel restarts per
    // round, only while every Sentinel answers and none is in a failover (the quorum holds
    // throughout), and the next one after the Sentinels agree again (WaitGroups).
    let all_answer = topo
        .sentinels()
        .all(|s| obs.nodes.get(&s.key).is_some_and(|o| o.sentinel.is_some()));
    let calm = topo
        .groups
        .iter()
        .all(|g| sentinel_busy(topo, g, obs).is_none());
    if all_answer
        && calm
        && let Some(s) = topo.sentinels().find(|s| {
            obs.nodes.get(&s.key).is_some_and(|o| {
                !o.live_drift.is_empty() && !matches!(o.process, ProcState::Remote)
            })
        })
    {
        p.steps.push(Step::RestartSentinel {
            node: s.key.clone(),
        });
    }

    if starting {
        // Only the starts: the rest is planned from what the started nodes report.
        p.steps.retain(|s| {
            matches!(
                s,
                Step::Start { .. }
                    | Step::StartReplica { .. }
                    | Step::WriteConfig { .. }
                    | Step::SentinelPromote { .. }
                    | Step::PromoteReplica { .. }
            )
        });
        p.partial = true;
    } else if !p.steps.is_empty() || !problems(topo, obs).is_empty() {
        p.steps.push(Step::WaitGroups { groups: waits });
    }
    p
}

fn repl<'a>(obs: &'a Observed, key: &InstanceKey) -> Option<&'a ReplLive> {
    obs.nodes.get(key).and_then(|o: &NodeObs| o.repl.as_ref())
}

fn replicates_from(r: &ReplLive, up: &Instance) -> bool {
    !r.is_master
        && r.master_addr
            .as_ref()
            .is_some_and(|(h, port)| *h == up.address.to_string() && *port == up.port)
}

/// The group's master now: what the Sentinels report (majority), else the member that acts
/// as master with data or replicas, else the preferred master.
pub fn current_master<'a>(topo: &Topology, g: &'a Group, obs: &Observed) -> &'a Instance {
    let mut votes: BTreeMap<&InstanceKey, usize> = BTreeMap::new();
    for s in topo.sentinels() {
        if let Some(sm) = obs
            .nodes
            .get(&s.key)
            .and_then(|o| o.sentinel.as_ref())
            .and_then(|l| l.masters.iter().find(|m| m.name == g.name))
            && let Some(m) = g
                .members()
                .find(|m| m.address.to_string() == sm.ip && m.port == sm.port)
        {
            *votes.entry(&m.key).or_default() += 1;
        }
    }
    if let Some((key, _)) = votes.iter().max_by_key(|(_, n)| **n) {
        return g.member(key).unwrap_or(&g.master);
    }
    let acting: Vec<&Instance> = g
        .members()
        .filter(|m| {
            repl(obs, &m.key)
                .is_some_and(|r| r.is_master && (r.connected_replicas > 0 || r.keys > 0))
        })
        .collect();
    match acting.as_slice() {
        [one] => one,
        _ => &g.master,
    }
}

/// Where `key` should replicate from, given the current master; None for the master itself.
pub fn desired_upstream<'a>(
    g: &'a Group,
    key: &InstanceKey,
    current: &'a Instance,
) -> Option<&'a InstanceKey> {
    if *key == current.key {
        return None;
    }
    match g.upstream.get(key) {
        // A chain stays a chain unless its upstream is now the master's old seat.
        Some(u) if *u != g.master.key && *u != current.key => Some(u),
        _ => Some(&current.key),
    }
}

/// A majority of the declared Sentinels reports `current` as the group's master: the
/// election is settled (the others follow on their next hello).
fn sentinels_agree(topo: &Topology, g: &Group, obs: &Observed, current: &Instance) -> bool {
    let declared = topo.sentinels().count();
    let votes = topo
        .sentinels()
        .filter_map(|s| obs.nodes.get(&s.key).and_then(|o| o.sentinel.as_ref()))
        .filter_map(|l| l.masters.iter().find(|m| m.name == g.name))
        .filter(|m| m.ip == current.address.to_string() && m.port == current.port)
        .count();
    votes * 2 > declared
}

/// Sentinels are declared and a majority of them answer.
fn sentinel_majority(topo: &Topology, obs: &Observed) -> bool {
    let Some(sc) = &topo.sentinel else {
        return false;
    };
    let up = sc
        .instances
        .iter()
        .filter(|s| obs.nodes.get(&s.key).is_some_and(|o| o.sentinel.is_some()))
        .count();
    up * 2 > sc.instances.len()
}

/// Why Sentinel is in charge right now (failover running, master down), if it is.
fn sentinel_busy(topo: &Topology, g: &Group, obs: &Observed) -> Option<String> {
    for s in topo.sentinels() {
        if let Some(sm) = obs
            .nodes
            .get(&s.key)
            .and_then(|o| o.sentinel.as_ref())
            .and_then(|l| l.masters.iter().find(|m| m.name == g.name))
        {
            let f = &sm.flags;
            if f.contains("failover") {
                return Some(format!("Sentinel {} reports a failover in progress", s.key));
            }
            if f.contains("o_down") {
                return Some(format!(
                    "Sentinel {} reports the master {}:{} down",
                    s.key, sm.ip, sm.port
                ));
            }
        }
    }
    None
}

fn sentinel_drift(topo: &Topology, sm: &SentinelMaster) -> Vec<(String, String)> {
    let Some(sc) = &topo.sentinel else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if sm.quorum != sc.quorum {
        out.push(("quorum".into(), sc.quorum.to_string()));
    }
    if sm.down_after_ms != sc.down_after_ms {
        out.push((
            "down-after-milliseconds".into(),
            sc.down_after_ms.to_string(),
        ));
    }
    if sm.failover_timeout_ms != sc.failover_timeout_ms {
        out.push((
            "failover-timeout".into(),
            sc.failover_timeout_ms.to_string(),
        ));
    }
    if sm.parallel_syncs != sc.parallel_syncs {
        out.push(("parallel-syncs".into(), sc.parallel_syncs.to_string()));
    }
    out
}

/// An instance on another host that does not answer: its host's `apply` starts it (or the
/// host is drained). Reported as a note by the planner and by `check`, never waited for.
fn away(obs: &Observed, key: &InstanceKey) -> bool {
    obs.nodes
        .get(key)
        .is_some_and(|o| matches!(o.process, ProcState::Remote) && !o.port_answers)
}

/// Everything that keeps the groups from matching the topology. Empty = converged.
pub fn problems(topo: &Topology, obs: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    for g in &topo.groups {
        let current = current_master(topo, g, obs);
        for m in g.members() {
            if away(obs, &m.key) {
                continue;
            }
            let Some(r) = repl(obs, &m.key) else {
                out.push(format!("{}: {} is not answering", g.name, m.key));
                continue;
            };
            match desired_upstream(g, &m.key, current) {
                None if !r.is_master => {
                    out.push(format!("{}: {} is not acting as master yet", g.name, m.key))
                }
                None => {}
                Some(u) => {
                    let Some(up) = g.member(u) else { continue };
                    if !replicates_from(r, up) {
                        out.push(format!(
                            "{}: {} does not replicate from {u} yet",
                            g.name, m.key
                        ));
                    } else if !r.link_up || r.sync_in_progress {
                        out.push(format!("{}: {} is still syncing from {u}", g.name, m.key));
                    }
                }
            }
        }
        if let Some(sc) = &topo.sentinel {
            let others = sc.instances.len().saturating_sub(1) as u32;
            let direct = g
                .members()
                .filter(|m| desired_upstream(g, &m.key, current) == Some(&current.key))
                .count() as u32;
            for s in sc.instances.iter().filter(|s| !away(obs, &s.key)) {
                let Some(live) = obs.nodes.get(&s.key).and_then(|o| o.sentinel.as_ref()) else {
                    out.push(format!("Sentinel {} is not answering", s.key));
                    continue;
                };
                let Some(sm) = live.masters.iter().find(|x| x.name == g.name) else {
                    out.push(format!("Sentinel {} does not monitor {}", s.key, g.name));
                    continue;
                };
                if sm.ip != current.address.to_string() || sm.port != current.port {
                    out.push(format!(
                        "Sentinel {} sees {}:{} as master of {}, not {}",
                        s.key, sm.ip, sm.port, g.name, current.key
                    ));
                }
                if sm.num_replicas < direct {
                    out.push(format!(
                        "Sentinel {} knows {} of {direct} replicas of {}",
                        s.key, sm.num_replicas, g.name
                    ));
                }
                if sm.num_other_sentinels < others {
                    out.push(format!(
                        "Sentinel {} knows {} of the {others} other Sentinels",
                        s.key, sm.num_other_sentinels
                    ));
                }
            }
        }
    }
    out
}
