//! `redisctl status`: one row per declared node from one observation.

use std::collections::HashMap;

use serde_json::json;

use crate::exec::Context;
use crate::observe::Observed;
use crate::output::Printer;
use crate::plan::short;
use crate::topology::Role;
use crate::topology::slots::{count, format_ranges};

/// Print the report; returns how many declared nodes (instances and Sentinels) answered.
pub fn print(ctx: &Context, obs: &Observed, out: &Printer) -> usize {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Masters' INFO by node id, for replica lag (unknown, not 0, when a master reports no
    // offset: plan::replication).
    let mut master_info: HashMap<&str, &HashMap<String, String>> = HashMap::new();
    for o in obs.nodes.values() {
        if let Some(l) = &o.live
            && l.myself.flags.master
        {
            master_info.insert(&l.myself.id, &l.info);
        }
    }
    // Group masters' INFO by address, for group replica lag.
    let mut group_info: HashMap<(String, u16), &HashMap<String, String>> = HashMap::new();
    for inst in ctx.topology.instances() {
        if let Some(r) = obs.nodes.get(&inst.key).and_then(|o| o.repl.as_ref())
            && r.is_master
        {
            group_info.insert((inst.address.to_string(), inst.port), &r.info);
        }
    }
    let lag_behind = |m: &HashMap<String, String>, info: &HashMap<String, String>| {
        crate::plan::replication::lag(m, info)
            .ok()
            .map(|l| l.max(0))
    };
    let mut rows = Vec::new();
    for inst in ctx.topology.instances() {
        let o = &obs.nodes[&inst.key];
        let preferred = match inst.role {
            Role::Master => "master",
            Role::Replica => "replica",
        };
        let mut row = json!({
            "node": inst.key.to_string(),
            "address": o.endpoint,
            "shard": match &inst.group {
                Some(g) => json!(g),
                None => json!(inst.shard),
            },
            "preferred_role": preferred,
            "process": o.process,
        });
        // One view for both kinds: cluster nodes (CLUSTER NODES + INFO), group members (INFO):
        // (info, is master, master id, keys).
        type View<'a> = (&'a HashMap<String, String>, bool, Option<&'a str>, u64);
        let view: Option<View> = match (&o.live, &o.repl) {
            (Some(l), _) => Some((
                &l.info,
                l.myself.flags.master,
                l.myself.master_id.as_deref(),
                l.keys,
            )),
            (None, Some(r)) => Some((&r.info, r.is_master, None, r.keys)),
            (None, None) => None,
        };
        match view {
            None => {
                row["state"] = json!("down");
                row["error"] = json!(o.error);
            }
            Some((info, is_master, master_id, keys)) => {
                let get = |k: &str| info.get(k).map(String::as_str);
                let role = if is_master { "master" } else { "replica" };
                let num = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
                let offset = if is_master {
                    num("master_repl_offset")
                } else {
                    num("slave_repl_offset")
                };
                let lag = match (&o.live, &o.repl) {
                    (Some(_), _) => master_id
                        .and_then(|m| master_info.get(m))
                        .and_then(|m| lag_behind(m, info)),
                    (None, Some(r)) => r
                        .master_addr
                        .as_ref()
                        .and_then(|(h, p)| group_info.get(&(h.clone(), *p)))
                        .and_then(|m| lag_behind(m, info)),
                    _ => None,
                };
                let link = if is_master {
                    format!("{} replica(s)", get("connected_slaves").unwrap_or("0"))
                } else {
                    format!("master link {}", get("master_link_status").unwrap_or("?"))
                };
                let last_save = get("rdb_last_save_time").and_then(|v| v.parse::<u64>().ok());
                row["state"] = json!("up");
                row["role"] = json!(role);
                row["role_differs"] = json!(role != preferred);
                if let Some(l) = &o.live {
                    row["id"] = json!(l.myself.id);
                    row["master_id"] = json!(l.myself.master_id);
                    row["slots"] = json!(count(&l.myself.slots));
                    row["slot_ranges"] = json!(format_ranges(&l.myself.slots));
                    row["cluster_state"] = json!(l.cluster_state);
                }
                if let Some(r) = &o.repl {
                    row["replicates_from"] =
                        json!(r.master_addr.as_ref().map(|(h, p)| format!("{h}:{p}")));
                }
                row["link"] = json!(link);
                row["repl_offset"] = json!(offset);
                row["lag_bytes"] = json!(lag);
                row["keys"] = json!(keys);
                row["used_memory"] = json!(get("used_memory_human"));
                row["aof_enabled"] = json!(get("aof_enabled") == Some("1"));
                row["aof_last_write_status"] = json!(get("aof_last_write_status"));
                row["rdb_last_bgsave_status"] = json!(get("rdb_last_bgsave_status"));
                row["rdb_last_save_age_s"] = json!(last_save.map(|t| now.saturating_sub(t)));
                row["version"] = json!(get("redis_version"));
                if !o.live_drift.is_empty() {
                    row["config_drift"] = json!(o.live_drift.iter().map(|(k, have, want)| json!({"name": k, "running": have, "declared": want})).collect::<Vec<_>>());
                }
            }
        }
        rows.push(row);
    }
    let mut sentinels = Vec::new();
    for sn in ctx.topology.sentinels() {
        let o = &obs.nodes[&sn.key];
        sentinels.push(match &o.sentinel {
            None => json!({"node": sn.key.to_string(), "address": o.endpoint, "state": "down", "error": o.error, "process": o.process}),
            Some(l) => json!({
                "node": sn.key.to_string(), "address": o.endpoint, "state": "up", "process": o.process,
                "masters": l.masters.iter().map(|m| json!({
                    "name": m.name, "master": format!("{}:{}", m.ip, m.port), "flags": m.flags,
                    "quorum": m.quorum, "replicas": m.num_replicas, "other_sentinels": m.num_other_sentinels,
                })).collect::<Vec<_>>(),
            }),
        });
    }
    // The service manager's view (systemd: unit, state, restarts).
    let units: Vec<serde_json::Value> = ctx
        .targets
        .iter()
        .filter_map(|t| ctx.supervisor.details(&t.managed))
        .collect();
    if out.json() {
        out.document(&json!({
            "deployment": ctx.topology.name,
            "supervisor": ctx.supervisor.name(),
            "nodes": rows,
            "sentinels": sentinels,
            "units": units,
            "agent": super::agent::state(&ctx.state_dir),
        }));
        return answered(&rows, &sentinels);
    }
    println!(
        "{:<16} {:<16} {:<8} {:<8} {:>8} {:>6} {:<18} {:<18} {:>9} {:>7} {:>8} {:>8} PERSISTENCE",
        "NODE",
        "ADDRESS",
        "ID",
        "ROLE",
        "SHARD",
        "SLOTS",
        "RANGES",
        "LINK",
        "OFFSET",
        "LAG",
        "KEYS",
        "MEMORY",
    );
    for r in &rows {
        let s = |k: &str| match &r[k] {
            serde_json::Value::String(v) => v.clone(),
            serde_json::Value::Null => "-".to_string(),
            v => v.to_string(),
        };
        if r["state"] == "down" {
            println!(
                "{:<16} {:<16} {:<8} {:<12} {:>5}  DOWN: {}",
                s("node"),
                s("address"),
                "-",
                "-",
                s("shard"),
                s("error")
            );
            continue;
        }
        let mut role = s("role");
        if r["role_differs"] == true {
            role.push('*');
        }
        let aof = if r["aof_enabled"] == true {
            format!("aof:{}", s("aof_last_write_status"))
        } else {
            "aof:off".into()
        };
        let rdb = format!(
            "rdb:{} {}s ago",
            s("rdb_last_bgsave_status"),
            r["rdb_last_save_age_s"]
                .as_u64()
                .map_or("-".into(), |v| v.to_string())
        );
        println!(
            "{:<16} {:<16} {:<8} {:<8} {:>8} {:>6} {:<18} {:<18} {:>9} {:>7} {:>8} {:>8} {} {}",
            s("node"),
            s("address"),
            short(r["id"].as_str().unwrap_or("")),
            role,
            s("shard"),
            s("slots"),
            s("slot_ranges"),
            s("link"),
            s("repl_offset"),
            s("lag_bytes"),
            s("keys"),
            s("used_memory"),
            aof,
            rdb
        );
    }
    if !sentinels.is_empty() {
        println!();
        println!("{:<16} {:<16} MONITORS", "SENTINEL", "ADDRESS");
        for sn in &sentinels {
            let name = sn["node"].as_str().unwrap_or("-");
            let addr = sn["address"].as_str().unwrap_or("-");
            if sn["state"] == "down" {
                println!(
                    "{name:<16} {addr:<16} DOWN: {}",
                    sn["error"].as_str().unwrap_or("-")
                );
                continue;
            }
            let monitors: Vec<String> = sn["masters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    format!(
                        "{} at {} [{}] quorum {}, {} replica(s), {} other sentinel(s)",
                        m["name"].as_str().unwrap_or(""),
                        m["master"].as_str().unwrap_or(""),
                        m["flags"].as_str().unwrap_or(""),
                        m["quorum"],
                        m["replicas"],
                        m["other_sentinels"]
                    )
                })
                .collect();
            println!(
                "{name:<16} {addr:<16} {}",
                if monitors.is_empty() {
                    "-".to_string()
                } else {
                    monitors.join("; ")
                }
            );
        }
    }
    if !units.is_empty() {
        println!();
        println!(
            "{:<30} {:<22} {:>8} {:>8} BOOT",
            "UNIT", "STATE", "PID", "RESTARTS"
        );
        for u in &units {
            println!(
                "{:<30} {:<22} {:>8} {:>8} {}",
                u["unit"].as_str().unwrap_or("-"),
                format!(
                    "{} ({})",
                    u["active"].as_str().unwrap_or("-"),
                    u["sub"].as_str().unwrap_or("-")
                ),
                u["main_pid"].as_u64().unwrap_or(0),
                u["restarts"].as_u64().unwrap_or(0),
                u["enabled"].as_str().unwrap_or("-")
            );
        }
    }
    if rows.iter().any(|r| r["role_differs"] == true) {
        println!(
            "* role differs from the preferred role (after a failover); Redis Cluster owns elections."
        );
    }
    answered(&rows, &sentinels)
}

fn answered(rows: &[serde_json::Value], sentinels: &[serde_json::Value]) -> usize {
    rows.iter()
        .chain(sentinels)
        .filter(|r| r["state"] == "up")
        .count()
}

/// Why a `status` where no node answered failed: one line with the first error (a wrong
/// password shows as "authentication failed").
pub fn nobody_answered(ctx: &Context, obs: &Observed) -> String {
    let total = ctx.targets.len();
    let first = ctx
        .targets
        .iter()
        .filter_map(|t| obs.nodes.get(&t.managed.key))
        .find_map(|o| o.error.clone());
    format!(
        "none of the {total} declared node(s) of deployment {:?} answered{}: are they started, is the password right, are they reachable from here?",
        ctx.topology.name,
        first.map_or(String::new(), |e| format!(" (first error: {e})"))
    )
}
