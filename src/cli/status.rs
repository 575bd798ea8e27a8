//! `redisctl status`: one row per declared node from one observation.

use std::collections::HashMap;

use serde_json::json;

use crate::exec::Context;
use crate::observe::Observed;
use crate::output::Printer;
use crate::plan::short;
use crate::topology::Role;
use crate::topology::slots::{count, format_ranges};

pub fn print(ctx: &Context, obs: &Observed, out: &Printer) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Master replication offsets by node id, for replica lag.
    let mut master_offset: HashMap<String, i64> = HashMap::new();
    for o in obs.nodes.values() {
        if let Some(l) = &o.live
            && l.myself.flags.master
        {
            let off = l
                .info("master_repl_offset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            master_offset.insert(l.myself.id.clone(), off);
        }
    }
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
            "shard": inst.shard,
            "preferred_role": preferred,
            "process": o.process,
        });
        match &o.live {
            None => {
                row["state"] = json!("down");
                row["error"] = json!(o.error);
            }
            Some(l) => {
                let me = &l.myself;
                let role = if me.flags.master { "master" } else { "replica" };
                let offset: i64 = if me.flags.master {
                    l.info("master_repl_offset")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                } else {
                    l.info("slave_repl_offset")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                };
                let lag = me
                    .master_id
                    .as_ref()
                    .and_then(|m| master_offset.get(m))
                    .map(|m| (m - offset).max(0));
                let link = if me.flags.master {
                    format!("{} replica(s)", l.info("connected_slaves").unwrap_or("0"))
                } else {
                    format!(
                        "master link {}",
                        l.info("master_link_status").unwrap_or("?")
                    )
                };
                let last_save = l
                    .info("rdb_last_save_time")
                    .and_then(|v| v.parse::<u64>().ok());
                row["state"] = json!("up");
                row["id"] = json!(me.id);
                row["role"] = json!(role);
                row["role_differs"] = json!(role != preferred);
                row["master_id"] = json!(me.master_id);
                row["slots"] = json!(count(&me.slots));
                row["slot_ranges"] = json!(format_ranges(&me.slots));
                row["link"] = json!(link);
                row["repl_offset"] = json!(offset);
                row["lag_bytes"] = json!(lag);
                row["keys"] = json!(l.keys);
                row["used_memory"] = json!(l.info("used_memory_human"));
                row["aof_enabled"] = json!(l.info("aof_enabled") == Some("1"));
                row["aof_last_write_status"] = json!(l.info("aof_last_write_status"));
                row["rdb_last_bgsave_status"] = json!(l.info("rdb_last_bgsave_status"));
                row["rdb_last_save_age_s"] = json!(last_save.map(|t| now.saturating_sub(t)));
                row["cluster_state"] = json!(l.info("cluster_state"));
                row["version"] = json!(l.info("redis_version"));
            }
        }
        rows.push(row);
    }
    if out.json() {
        out.document(&json!({
            "deployment": ctx.topology.name,
            "supervisor": ctx.supervisor.name(),
            "nodes": rows,
        }));
        return;
    }
    println!(
        "{:<16} {:<16} {:<8} {:<12} {:>5} {:>6} {:<18} {:<18} {:>9} {:>7} {:>8} {:>8} PERSISTENCE",
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
            "{:<16} {:<16} {:<8} {:<12} {:>5} {:>6} {:<18} {:<18} {:>9} {:>7} {:>8} {:>8} {} {}",
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
    if rows.iter().any(|r| r["role_differs"] == true) {
        println!(
            "* role differs from the preferred role (after a failover); Redis Cluster owns elections."
        );
    }
}
