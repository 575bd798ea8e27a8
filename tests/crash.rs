//! Crash-safe restarts (docs/ha.md): a master is killed with `kill -9` under a writer, and
//! `apply` runs at once, after 0.5 s, and after Redis Cluster or the Sentinels failed over by
//! themselves — for RDB-only, AOF and no persistence, in a cluster and in a Sentinel group. The
//! judges are the writers' acknowledged writes (tools/consistency.py through redis-py's
//! RedisCluster; tests/sentinel_writer.py through redis-py's Sentinel client): none may be lost,
//! a master serves again and the old node is a replica of it holding the data.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The default save rules' shape with no AOF: a killed master's dump.rdb is old (or absent).
const RDB: &str = "    save: [\"3600 1\"]\n    appendonly: false\n";
const AOF: &str = "    save: []\n    appendonly: true\n    appendfsync: everysec\n";
const OFF: &str = "    save: []\n    appendonly: false\n";

#[derive(Debug, Clone, Copy)]
enum When {
    /// `apply` right after the kill, before Redis or Sentinel can notice.
    AtOnce,
    HalfASecond,
    /// After the cluster or the Sentinels promoted the replica themselves.
    AfterFailover,
}

const ALL: [When; 3] = [When::AtOnce, When::HalfASecond, When::AfterFailover];

/// The writers' bound (s): they write from before the first kill until the test has seen the
/// last recovery, and stop then (`stop_json`); this only keeps a hung test from writing on.
const WRITER_BOUND: f64 = 300.0;

fn role(port: u16) -> String {
    info_field(port, "role").unwrap_or_default()
}

fn apply(d: &Deployment, what: &str) {
    let t = Instant::now();
    let out = d.run(&["apply", "--yes"]);
    if std::env::var_os("CRASH_TRACE").is_some() {
        eprintln!(
            "--- {what}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        out.status.success(),
        "{what}: apply failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    say(&format!(
        "{what}: apply converged in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
}

fn cluster_crash(persistence: &str) {
    let d = Deployment::custom(3, 1, persistence, 3000, "");
    d.ok(&["apply", "--yes"]);
    let progress = d.dir.path().join("writer.progress");
    let writer = consistency_with(
        "127.0.0.1",
        d.ports[5],
        WRITER_BOUND,
        2000,
        None,
        &progress_args(&progress),
    );
    let mut acked = await_acked(&progress, FLOWING, "before the kills");
    for (shard, when) in ALL.into_iter().enumerate() {
        let (master, replica) = (d.ports[2 * shard], d.ports[2 * shard + 1]);
        let what = format!("shard {} master {master} killed, apply {when:?}", shard + 1);
        d.kill_9(master);
        match when {
            When::AtOnce => {}
            When::HalfASecond => std::thread::sleep(Duration::from_millis(500)),
            When::AfterFailover => assert!(
                wait_for(Duration::from_secs(30), || role(replica) == "master"),
                "{what}: the cluster did not promote {replica}"
            ),
        }
        apply(&d, &what);
        assert_eq!(role(replica), "master", "{what}");
        assert!(
            wait_for(Duration::from_secs(20), || role(master) == "slave"
                && info_field(master, "master_port").as_deref()
                    == Some(&replica.to_string())
                && info_field(master, "master_link_status").as_deref()
                    == Some("up")),
            "{what}: {master} did not come back as a synced replica of {replica}"
        );
        // Writes flow again before the next kill: every key's shard serves them (a writer
        // stuck on one unserved shard acknowledges nothing, its writes are sequential).
        acked = await_acked(&progress, acked + FLOWING, &what);
    }
    let r = stop_json(writer);
    say(&format!("writer: {r}"));
    assert_eq!(r["lost"], 0, "acknowledged writes lost: {r}");
    assert!(r["acknowledged"].as_u64().unwrap() > 1000, "{r}");
    let (ok, text) = cluster_check(d.ports[1]);
    assert!(ok, "{text}");
    // Nothing left to do.
    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"].as_array().map(Vec::len), Some(0), "{plan}");
}

#[test]
fn cluster_rdb_master_killed_and_applied_at_once_loses_no_acknowledged_write() {
    cluster_crash(RDB);
}

#[test]
fn cluster_aof_master_killed_and_applied_at_once_loses_no_acknowledged_write() {
    cluster_crash(AOF);
}

#[test]
fn cluster_persistence_off_master_killed_and_applied_at_once_loses_no_acknowledged_write() {
    cluster_crash(OFF);
}

/// The members (ports 0..3) as (port, role, master_port) once they stop changing.
fn group_roles(d: &Deployment) -> Vec<(u16, String, Option<String>)> {
    d.ports[..3]
        .iter()
        .map(|&p| (p, role(p), info_field(p, "master_port")))
        .collect()
}

fn group_crash(persistence: &str) {
    // down-after 5 s (Debian's default is 30 s): at 1 s, a Sentinel starved of CPU for a
    // second on a loaded 2-core machine marked a just-promoted master down and failed over
    // again, and the writes acknowledged in between were lost (Sentinel's own false positive,
    // seen while this test was written).
    let d = Deployment::sentinel_with(persistence, 5000);
    d.ok(&["apply", "--yes"]);
    let progress = d.dir.path().join("writer.progress");
    let writer = sentinel_writer_with(&d, WRITER_BOUND, &progress_args(&progress));
    let mut acked = await_acked(&progress, FLOWING, "before the kills");
    for when in ALL {
        let old = sentinel_master_port(&d).expect("the Sentinels name a master");
        let what = format!("group master {old} killed, apply {when:?}");
        d.kill_9(old);
        match when {
            When::AtOnce => {}
            When::HalfASecond => std::thread::sleep(Duration::from_millis(500)),
            When::AfterFailover => assert!(
                wait_for(Duration::from_secs(30), || sentinel_master_port(&d)
                    .is_some_and(|p| p != old && role(p) == "master")),
                "{what}: the Sentinels did not fail over"
            ),
        }
        apply(&d, &what);
        // One master, named by the Sentinels, every other member its linked replica: no loop.
        let settled = || {
            let Some(new) = sentinel_master_port(&d).filter(|&p| p != old) else {
                return false;
            };
            d.ports[..3].iter().all(|&p| {
                if p == new {
                    role(p) == "master"
                } else {
                    role(p) == "slave"
                        && info_field(p, "master_port").as_deref() == Some(&new.to_string())
                        && info_field(p, "master_link_status").as_deref() == Some("up")
                }
            })
        };
        assert!(
            wait_for(Duration::from_secs(20), settled),
            "{what}: not one master with linked replicas: {:?}, the Sentinels name {:?}\n{}",
            group_roles(&d),
            sentinel_master_port(&d),
            d.log_tails(60)
        );
        // Writes flow again through the Sentinels' new master before the next kill.
        acked = await_acked(&progress, acked + FLOWING, &what);
    }
    let r = stop_json(writer);
    say(&format!("writer: {r}"));
    assert_eq!(
        r["lost"],
        0,
        "acknowledged writes lost: {r}\n{}",
        d.log_tails(60)
    );
    assert!(r["acknowledged"].as_u64().unwrap() > 500, "{r}");
}

#[test]
fn group_rdb_master_killed_and_applied_at_once_loses_no_acknowledged_write() {
    group_crash(RDB);
}

#[test]
fn group_aof_master_killed_and_applied_at_once_loses_no_acknowledged_write() {
    group_crash(AOF);
}

#[test]
fn group_persistence_off_master_killed_and_applied_at_once_loses_no_acknowledged_write() {
    group_crash(OFF);
}

/// A group stuck in a replication loop (every member a replica, nobody accepts writes), as an
/// earlier promotion could leave it: `apply` promotes the member with the newest data and
/// points the others at it; no key is lost. (No Sentinels, so redisctl promotes by itself.)
#[test]
fn a_replication_loop_is_repaired_by_promoting_the_member_with_the_newest_data() {
    let ports = free_ports(3);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("topology.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: loop{p0}\nstate_dir: state\nhosts:\n  - {{name: local, address: 127.0.0.1}}\n\
             defaults:\n  persistence:\n    appendonly: true\n\
             groups:\n  - name: g\n    master: {{host: local, port: {p0}}}\n    replicas:\n\
             \x20     - {{host: local, port: {p1}}}\n      - {{host: local, port: {p2}}}\n",
            p0 = ports[0],
            p1 = ports[1],
            p2 = ports[2]
        ),
    )
    .unwrap();
    let d = Deployment {
        dir,
        file,
        ports: ports.clone(),
    };
    d.ok(&["apply", "--yes"]);
    let (m, r1) = (ports[0], ports[1]);
    for i in 0..500 {
        redis_cli(m, &["SET", &format!("k{i}"), &i.to_string()]);
    }
    assert!(wait_for(Duration::from_secs(10), || ports
        .iter()
        .all(|&p| redis_cli(p, &["DBSIZE"]).trim() == "500")));
    // The loop: the master follows one of its own replicas.
    redis_cli(m, &["REPLICAOF", "127.0.0.1", &r1.to_string()]);
    assert!(wait_for(Duration::from_secs(10), || ports
        .iter()
        .all(|&p| role(p) == "slave")));

    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"][0]["step"], "promote_replica", "{plan}");
    apply(&d, "replication loop");
    let masters: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|&p| role(p) == "master")
        .collect();
    assert_eq!(masters.len(), 1, "{:?}", group_roles(&d));
    let new = masters[0];
    for &p in ports.iter().filter(|&&p| p != new) {
        assert_eq!(
            info_field(p, "master_port").as_deref(),
            Some(new.to_string().as_str()),
            "{:?}",
            group_roles(&d)
        );
    }
    assert_eq!(redis_cli(new, &["DBSIZE"]).trim(), "500");
    assert_eq!(redis_cli(new, &["SET", "after", "1"]).trim(), "OK");
}
