//! When is a cluster converged? One definition, used by the planner (is there anything left
//! to wait for?) and by the executor's gates (poll until it holds). Pure.

use crate::observe::Live;
use crate::observe::parse::NodeLine;
use crate::topology::slots::{SLOTS, format_ranges, ranges_of};
use crate::topology::{InstanceKey, Topology};

/// Pairs of declared nodes that do not see each other as healthy, named by address.
pub fn membership_problems(lives: &[(&InstanceKey, &Live)]) -> Vec<String> {
    let mut out = Vec::new();
    for (ka, a) in lives {
        for (kb, b) in lives {
            if ka == kb {
                continue;
            }
            match a.peer(&b.myself.id) {
                None => out.push(format!(
                    "{ka} does not know {kb} ({}, bus port {})",
                    b.myself.addr(),
                    b.myself.bus_port
                )),
                Some(line) if !line.healthy() => out.push(format!(
                    "{ka} sees {kb} ({}, bus port {}) as {}",
                    line.addr(),
                    line.bus_port,
                    link_state(line)
                )),
                Some(_) => {}
            }
        }
    }
    out
}

fn link_state(l: &NodeLine) -> &'static str {
    if l.flags.handshake {
        "still in handshake"
    } else if l.flags.noaddr {
        "without address"
    } else if l.flags.fail {
        "failed"
    } else if l.flags.pfail {
        "possibly failing"
    } else {
        "disconnected"
    }
}

/// Slot owner per slot as one node sees it, as (range, owner id) runs.
fn slot_map(l: &Live) -> Vec<(u16, u16, String)> {
    // A flat table, not a map: this runs for every node in every round of the agent, and
    // 16384 map inserts per node were most of its CPU time at rest.
    let mut owner: Vec<Option<&str>> = vec![None; usize::from(SLOTS)];
    for line in l.view() {
        if !line.flags.master {
            continue;
        }
        for r in &line.slots {
            for s in r.start..=r.end {
                if let Some(o) = owner.get_mut(usize::from(s)) {
                    *o = Some(&line.id);
                }
            }
        }
    }
    let mut runs: Vec<(u16, u16, String)> = Vec::new();
    for (s, id) in owner.iter().enumerate() {
        let (Some(id), Ok(s)) = (id, u16::try_from(s)) else {
            continue;
        };
        match runs.last_mut() {
            Some((_, end, o)) if *end + 1 == s && o.as_str() == *id => *end = s,
            _ => runs.push((s, s, id.to_string())),
        }
    }
    runs
}

/// Everything that keeps the cluster from being converged. Empty = converged.
pub fn problems(topo: &Topology, lives: &[(&InstanceKey, &Live)]) -> Vec<String> {
    let mut out = membership_problems(lives);
    let Some((k0, first)) = lives.first() else {
        return vec!["no node is answering".into()];
    };
    let reference = slot_map(first);
    let covered: u32 = reference.iter().map(|(a, b, _)| u32::from(b - a) + 1).sum();
    if covered < u32::from(SLOTS) {
        let mut assigned = vec![false; usize::from(SLOTS)];
        for (a, b, _) in &reference {
            for s in *a..=*b {
                assigned[usize::from(s)] = true;
            }
        }
        let missing = ranges_of((0..SLOTS).filter(|s| !assigned[usize::from(*s)]));
        out.push(format!(
            "{k0} sees {} slots unassigned ({})",
            u32::from(SLOTS) - covered,
            format_ranges(&missing)
        ));
    }
    for (k, l) in &lives[1..] {
        if slot_map(l) != reference {
            out.push(format!("{k} has a different slot map than {k0}"));
        }
    }
    for (k, l) in lives {
        for (slot, peer) in &l.myself.migrating {
            out.push(format!(
                "{k} has slot {slot} open (migrating to {})",
                super::short(peer)
            ));
        }
        for (slot, peer) in &l.myself.importing {
            out.push(format!(
                "{k} has slot {slot} open (importing from {})",
                super::short(peer)
            ));
        }
        if l.cluster_state != "ok" {
            out.push(format!("{k} reports cluster_state:{}", l.cluster_state));
        }
        if l.myself.flags.replica {
            let link = l.info("master_link_status").unwrap_or("unknown");
            if link != "up" {
                out.push(format!("{k}: replication link to its master is {link}"));
            }
            if l.info("master_sync_in_progress") == Some("1") {
                out.push(format!("{k}: initial sync from its master in progress"));
            }
        }
    }
    let _ = topo;
    out
}
