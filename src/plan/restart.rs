//! Crash-safe restarts: how a data node whose process is down comes back. One rule for every
//! persistence mode and both topologies (docs/ha.md, "Crash-safe restarts"):
//!
//! **A master that died is not restarted as a master while a replica that may hold newer
//! writes is reachable.** The best such replica is promoted first (cluster: `CLUSTER FAILOVER
//! FORCE`, then `TAKEOVER`; groups: through the Sentinels, or `REPLICAOF NO ONE` when none are
//! declared) and the old master comes back as a replica. Only when no replica is usable is the
//! old master restarted in place, and the plan says why.
//!
//! A replica is usable when it replicates from the dead master, completed a sync since it
//! started, and lost its link recently: within ten failure-detection periods plus ten seconds
//! (Redis's own replica-validity rule, `cluster-replica-validity-factor` 10 and
//! `repl-ping-replica-period` 10 s; Sentinel's `down-after × 10`). A replica that lost its
//! link long before may lack writes the master's own disk has. When the dead master has no
//! persistence its disk holds nothing, so any replica holding data is better than an empty
//! restart, however old its link.
//!
//! The planner uses this for `apply`; the systemd unit's start hook (`redisctl unit-start`)
//! uses the same function for a restart systemd makes on its own. Pure, like all of plan/.

use std::collections::HashMap;

use super::groups::{current_master, desired_upstream};
use super::{Reopen, Step};
use crate::observe::{Live, NodeObs, Observed, ReplLive};
use crate::supervise::ProcState;
use crate::topology::slots::ranges_of;
use crate::topology::{Group, Instance, InstanceKey, Topology};

/// How a down node comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comeback {
    /// Start it as it is: its own data decides its role (a fresh node, a replica, or a master
    /// no replica can replace). `why` explains a restart in place that was weighed.
    InPlace { why: Option<String> },
    /// Start it as a replica of `master` (group members other than the current master).
    AsReplica { master: InstanceKey },
    /// Run `step` (a promotion) first; the node starts in a later round, as a replica.
    PromoteFirst { step: Step, why: String },
    /// No safe way to decide now; the reason and the way out.
    Refuse(String),
}

/// Failure-detection period → how long a replica's link may have been down for it to count
/// as in sync at the crash (seconds).
fn sync_window_s(detection_ms: u64) -> i64 {
    (detection_ms.saturating_mul(10) / 1000 + 10) as i64
}

/// Why a live replica of a dead master cannot replace it, or its offset when it can.
/// `window`: None when the dead master has no persistence (any data beats none).
fn usable(info: &HashMap<String, String>, window: Option<i64>) -> Result<i64, String> {
    let get = |f: &str| info.get(f).map(String::as_str);
    if get("master_sync_in_progress") == Some("1") {
        return Err("was still in its initial sync".into());
    }
    let down_since = match get("master_link_status") {
        Some("up") => 0,
        _ => get("master_link_down_since_seconds")
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or("reports no replication link state")?,
    };
    if down_since < 0 {
        return Err("has not synced since it started".into());
    }
    let offset = get("slave_repl_offset")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    if offset <= 0 {
        return Err("has no replicated data".into());
    }
    if let Some(w) = window
        && down_since > w
    {
        return Err(format!(
            "lost its link {down_since} s ago, before the master's last writes could reach it (window {w} s)"
        ));
    }
    Ok(offset)
}

/// The best usable candidate (highest offset), or every candidate's reason.
fn best<'a>(
    candidates: impl Iterator<Item = (&'a InstanceKey, Result<i64, String>)>,
) -> Result<&'a InstanceKey, Vec<String>> {
    let mut why = Vec::new();
    let mut top: Option<(&InstanceKey, i64)> = None;
    for (k, r) in candidates {
        match r {
            Ok(off) if top.is_none_or(|(_, o)| off > o) => top = Some((k, off)),
            Ok(_) => {}
            Err(e) => why.push(format!("{k} {e}")),
        }
    }
    top.map(|(k, _)| k).ok_or(why)
}

fn down_here(o: &NodeObs) -> bool {
    matches!(o.process, ProcState::Stopped | ProcState::Stale { .. }) && o.live.is_none()
}

/// A down cluster node. Only nodes that still serve slots (no newer owner in any live view)
/// are weighed; everything else restarts in place and rejoins as what the cluster says.
pub fn cluster(topo: &Topology, inst: &Instance, o: &NodeObs, obs: &Observed) -> Comeback {
    let in_place = Comeback::InPlace { why: None };
    let Some(cluster) = &topo.cluster else {
        return in_place;
    };
    if !o.has_nodes_conf {
        return in_place;
    }
    let Some(id) = obs.record.id_of(&inst.key) else {
        return in_place;
    };
    let lives: Vec<(&InstanceKey, &Live)> = obs
        .nodes
        .iter()
        .filter_map(|(k, n)| n.live.as_ref().map(|l| (k, l)))
        .collect();
    if !serves_slots(id, lives.iter().map(|(_, l)| *l)) {
        return in_place;
    }
    let off = inst.settings.persistence.is_off();
    let window = (!off).then(|| sync_window_s(cluster.settings.node_timeout_ms));
    let candidates = lives
        .iter()
        .filter(|(_, l)| l.myself.flags.replica && l.myself.master_id.as_deref() == Some(id))
        .map(|(k, l)| (*k, usable(&l.info, window)));
    match best(candidates) {
        Ok(replica) => {
            let reopen = obs
                .nodes
                .get(replica)
                .and_then(|n| n.live.as_ref())
                .map(|l| open_moves(topo, id, l, &lives))
                .unwrap_or_default();
            let how = if reopen.is_empty() {
                "CLUSTER FAILOVER FORCE"
            } else {
                "CLUSTER FAILOVER TAKEOVER with the slots it was moving marked MIGRATING again"
            };
            Comeback::PromoteFirst {
                step: Step::TakeOver {
                    node: replica.clone(),
                    from: inst.key.clone(),
                    reopen,
                },
                why: format!(
                    "{} is down while it still serves its slots; its replica {replica} may hold writes {} ({how}), then {} restarts as a replica",
                    inst.key,
                    if off {
                        "and the restarted node would come back empty (no persistence): it takes over first"
                        .to_string()
                    } else {
                        "newer than the node's own files: it takes over first".to_string()
                    },
                    inst.key
                ),
            }
        }
        Err(why) => Comeback::InPlace {
            why: Some(in_place_reason(&inst.key, &why)),
        },
    }
}

/// The moves the down master `id` was in the middle of: per live master importing slots
/// from it, those of the slots `replica`'s view still gives to `id` (the slots its takeover
/// claims). The replica has no MIGRATING mark of its own (Redis 7.0 keeps them per node), and
/// may still hold keys that had already moved (the `DEL` that follows a `MIGRATE` had not
/// reached it): promoted as it is, it would serve those stale copies, and new keys of the
/// moved ones, as its own.
fn open_moves(
    topo: &Topology,
    id: &str,
    replica: &Live,
    lives: &[(&InstanceKey, &Live)],
) -> Vec<Reopen> {
    let Some(dead) = replica.peer(id) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, l) in lives {
        if !l.myself.flags.master {
            continue;
        }
        let slots = ranges_of(
            l.myself
                .importing
                .iter()
                .filter(|(s, from)| from == id && dead.slots.iter().any(|r| r.contains(*s)))
                .map(|(s, _)| *s),
        );
        let Some(to) = topo.cluster_instances().find(|i| &i.key == *k) else {
            continue;
        };
        if !slots.is_empty() {
            out.push(Reopen {
                to: (*k).clone(),
                to_addr: to.endpoint(),
                slots,
            });
        }
    }
    out
}

fn in_place_reason(key: &InstanceKey, why: &[String]) -> String {
    if why.is_empty() {
        format!("{key} restarts in place as a master: no replica of it answers")
    } else {
        format!(
            "{key} restarts in place as a master: no replica can replace it ({})",
            why.join("; ")
        )
    }
}

/// Whether some slot's newest claim (highest config epoch over every live view) is `id`'s.
fn serves_slots<'a>(id: &str, lives: impl Iterator<Item = &'a Live>) -> bool {
    let mut newest: HashMap<u16, (u64, bool)> = HashMap::new();
    for l in lives {
        for line in l.view().filter(|x| x.flags.master) {
            let mine = line.id == id;
            for slot in line.slots.iter().flat_map(|r| r.start..=r.end) {
                let e = newest.entry(slot).or_insert((line.config_epoch, mine));
                if line.config_epoch > e.0 {
                    *e = (line.config_epoch, mine);
                } else if line.config_epoch == e.0 {
                    e.1 |= mine;
                }
            }
        }
    }
    newest.values().any(|(_, mine)| *mine)
}

fn repl<'a>(obs: &'a Observed, key: &InstanceKey) -> Option<&'a ReplLive> {
    obs.nodes.get(key).and_then(|o| o.repl.as_ref())
}

/// A down group member.
pub fn group(topo: &Topology, g: &Group, m: &Instance, obs: &Observed) -> Comeback {
    let current = current_master(topo, g, obs);
    if current.key != m.key {
        // Whoever serves the group now keeps serving it; this member comes back under it.
        if let Some(u) = desired_upstream(g, &m.key, current) {
            return Comeback::AsReplica { master: u.clone() };
        }
    }
    let addr = (m.address.to_string(), m.port);
    let off = m.settings.persistence.is_off();
    let detection = topo.sentinel.as_ref().map_or(5000, |s| s.down_after_ms);
    let window = (!off).then(|| sync_window_s(detection));
    let candidates = g
        .members()
        .filter(|x| x.key != m.key)
        .filter_map(|x| repl(obs, &x.key).map(|r| (&x.key, r)))
        .filter(|(_, r)| !r.is_master && r.master_addr.as_ref() == Some(&addr))
        .map(|(k, r)| (k, usable(&r.info, window)));
    let replica = match best(candidates) {
        Ok(k) => k,
        Err(why) => {
            return Comeback::InPlace {
                why: Some(in_place_reason(&m.key, &why)),
            };
        }
    };
    let reason = format!(
        "{}: its master {} is down and its replica {replica} may hold writes {}",
        g.name,
        m.key,
        if off {
            "that an empty restart (no persistence) would wipe"
        } else {
            "newer than the master's own files"
        }
    );
    match &topo.sentinel {
        None => Comeback::PromoteFirst {
            step: Step::PromoteReplica {
                group: g.name.clone(),
                node: replica.clone(),
                from: m.key.clone(),
            },
            why: format!(
                "{reason}: {replica} is promoted (REPLICAOF NO ONE), then {} restarts as its replica",
                m.key
            ),
        },
        Some(sc) => {
            // Sentinels that answer, or that this host starts in the same round.
            let up = sc
                .instances
                .iter()
                .filter(|s| {
                    obs.nodes
                        .get(&s.key)
                        .is_some_and(|o| o.sentinel.is_some() || down_here(o))
                })
                .count();
            if up * 2 > sc.instances.len() {
                Comeback::PromoteFirst {
                    step: Step::SentinelPromote {
                        group: g.name.clone(),
                        from: m.key.clone(),
                    },
                    why: format!(
                        "{reason}: the Sentinels promote the best replica (SENTINEL FAILOVER), then {} restarts as its replica",
                        m.key
                    ),
                }
            } else {
                Comeback::Refuse(format!(
                    "{reason}, but only {up} of {} Sentinels answer: redisctl will neither promote a replica behind the Sentinels' back nor restart {} over newer data. Start the Sentinels (run `redisctl apply` on their hosts), or promote {replica} yourself with `redisctl failover FILE {} --force`",
                    sc.instances.len(),
                    m.key,
                    replica.port
                ))
            }
        }
    }
}

/// The comeback of one declared data node that is down on this host (`None` when it is not
/// down here, or is not a data node): what the systemd unit's start hook asks.
pub fn of(topo: &Topology, obs: &Observed, key: &InstanceKey) -> Option<Comeback> {
    let o = obs.nodes.get(key)?;
    if !down_here(o) {
        return None;
    }
    if let Some(inst) = topo.cluster_instances().find(|i| i.key == *key) {
        return Some(cluster(topo, inst, o, obs));
    }
    let g = topo.groups.iter().find(|g| g.member(key).is_some())?;
    Some(group(topo, g, g.member(key)?, obs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_replica_that_lost_its_link_at_the_crash_is_usable() {
        let i = info(&[
            ("master_link_status", "down"),
            ("master_link_down_since_seconds", "1"),
            ("slave_repl_offset", "4242"),
            ("master_sync_in_progress", "0"),
        ]);
        assert_eq!(usable(&i, Some(40)), Ok(4242));
    }

    #[test]
    fn a_replica_disconnected_long_before_is_not_usable_unless_the_master_kept_nothing() {
        let i = info(&[
            ("master_link_status", "down"),
            ("master_link_down_since_seconds", "3600"),
            ("slave_repl_offset", "4242"),
        ]);
        let e = usable(&i, Some(40)).unwrap_err();
        assert!(e.contains("3600 s ago"), "{e}");
        assert_eq!(usable(&i, None), Ok(4242));
    }

    #[test]
    fn a_replica_that_never_synced_since_its_start_is_not_usable() {
        let i = info(&[
            ("master_link_status", "down"),
            ("master_link_down_since_seconds", "-1"),
            ("slave_repl_offset", "4242"),
        ]);
        assert!(usable(&i, None).unwrap_err().contains("not synced"));
        let syncing = info(&[
            ("master_link_status", "down"),
            ("master_sync_in_progress", "1"),
        ]);
        assert!(usable(&syncing, None).is_err());
        let empty = info(&[
            ("master_link_status", "down"),
            ("master_link_down_since_seconds", "0"),
            ("slave_repl_offset", "0"),
        ]);
        assert!(usable(&empty, None).is_err());
    }

    #[test]
    fn the_window_follows_the_failure_detection_time() {
        assert_eq!(sync_window_s(3000), 40);
        assert_eq!(sync_window_s(30000), 310);
    }
}
