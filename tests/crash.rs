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

fn role(port: u16) -> String {
    info_field(port, "role").unwrap_or_default()
}

fn apply(d: &Deployment, what: &str) {
    let t = Instant::now();
    let out = d.run(&["apply", "--yes"]);
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
    let writer = consistency(d.ports[5], 40.0, 2000);
    std::thread::sleep(Duration::from_secs(3));
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
        std::thread::sleep(Duration::from_secs(2));
    }
    let r = finish_json(writer);
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
    let d = Deployment::sentinel(persistence);
    d.ok(&["apply", "--yes"]);
    let writer = sentinel_writer(&d, 45.0);
    std::thread::sleep(Duration::from_secs(3));
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
        let new = sentinel_master_port(&d).expect("the Sentinels name a master");
        assert_ne!(new, old, "{what}");
        // One master, every other member its replica, linked: no loop.
        assert!(
            wait_for(Duration::from_secs(20), || d.ports[..3].iter().all(|&p| {
                if p == new {
                    role(p) == "master"
                } else {
                    role(p) == "slave"
                        && info_field(p, "master_port").as_deref() == Some(&new.to_string())
                        && info_field(p, "master_link_status").as_deref() == Some("up")
                }
            })),
            "{what}: not one master {new} with linked replicas: {:?}",
            group_roles(&d)
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let r = finish_json(writer);
    say(&format!("writer: {r}"));
    assert_eq!(r["lost"], 0, "acknowledged writes lost: {r}");
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
