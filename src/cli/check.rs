//! `redisctl check`: everything that is not as declared or not agreed on, in one report.

use std::path::Path;

use crate::exec::maintenance;
use crate::observe::{Live, Observed};
use crate::plan::{self, converge};
use crate::topology::{InstanceKey, Topology};

/// Declared instances and Sentinels that did not answer, by host.
pub struct Down {
    pub host: String,
    pub keys: Vec<InstanceKey>,
    /// How many the topology declares on that host.
    pub declared: usize,
    /// The host's drain mark, when this machine can see it (it is written on the drained
    /// host, in its state directory).
    pub drained_since: Option<u64>,
}

impl Down {
    /// One line: which instances, and what that may mean.
    pub fn describe(&self, local: bool) -> String {
        let keys: Vec<String> = self.keys.iter().map(ToString::to_string).collect();
        let why = match (self.drained_since, local) {
            (Some(t), _) => format!(
                "host {} is drained (since unix time {t}); `redisctl undrain FILE {}` on it brings it back",
                self.host, self.host
            ),
            (None, true) => "run `redisctl apply` to start them".to_string(),
            (None, false) if self.keys.len() == self.declared => format!(
                "none of host {}'s instances answers: it is down, unreachable from here, or drained (a drain is recorded on {} itself; run `redisctl check` there)",
                self.host, self.host
            ),
            (None, false) => format!(
                "run `redisctl apply` on host {} (or see why they stopped there)",
                self.host
            ),
        };
        format!("not answering: {}; {why}", keys.join(", "))
    }
}

/// Every declared node that did not answer, grouped by host (in topology order).
pub fn down(topo: &Topology, obs: &Observed, state_dir: &Path) -> Vec<Down> {
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
                    drained_since: maintenance::load_mark(state_dir, &key.host).map(|m| m.since),
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
    out
}

/// `local`: the hosts this machine is (for the advice on nodes that are down).
pub fn findings(
    topo: &Topology,
    obs: &Observed,
    state_dir: &Path,
    local: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    // Which hosts are silent, and whether one of them is drained.
    out.extend(
        down(topo, obs, state_dir)
            .iter()
            .map(|d| d.describe(local.contains(&d.host))),
    );
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
