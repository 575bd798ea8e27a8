//! `redisctl check`: everything that is not as declared or not agreed on, in one report.

use crate::observe::{Live, Observed};
use crate::plan::{self, converge};
use crate::topology::{InstanceKey, Topology};

pub fn findings(topo: &Topology, obs: &Observed) -> Vec<String> {
    let mut out = Vec::new();
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
    if topo.cluster.is_some() {
        let missing = topo.cluster_instances().count() - lives.len();
        if missing > 0 {
            out.push(format!("{missing} cluster node(s) not answering"));
        }
        out.extend(converge::problems(topo, &lives));
    }
    out.extend(plan::group_problems(topo, obs));
    for key in topo
        .groups
        .iter()
        .flat_map(|g| g.members().map(|m| &m.key))
        .chain(topo.sentinels().map(|s| &s.key))
    {
        if obs.nodes.get(key).is_some_and(|o| !o.port_answers) {
            out.push(format!("{key} is not answering"));
        }
    }
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
