//! End-to-end: the real redisctl binary against real redis-server processes, judged by
//! `redis-cli --cluster check` and redis-py's cluster client.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn apply_builds_a_cluster_that_real_clients_accept_and_second_apply_is_a_noop() {
    let d = Deployment::cluster("");
    let first = d.json(&["apply", "--yes"]);
    assert_eq!(first["ok"], true);
    assert!(first["executed"].as_array().unwrap().len() >= 6);

    let (ok, text) = cluster_check(d.ports[0]);
    assert!(ok, "redis-cli --cluster check:\n{text}");
    assert!(text.contains("[OK] All 16384 slots covered."), "{text}");
    // Masters 5461/5462/5461 slots, contiguous, as declared.
    assert!(
        text.contains("slots:[0-5460] (5461 slots) master"),
        "{text}"
    );
    assert!(
        text.contains("slots:[5461-10922] (5462 slots) master"),
        "{text}"
    );
    assert!(
        text.contains("slots:[10923-16383] (5461 slots) master"),
        "{text}"
    );

    let j = judge(d.ports[0], 10_000);
    assert_eq!(j["acknowledged"], 10_000);
    assert_eq!(j["lost"], 0);
    assert!(j["nodes"].as_u64().unwrap() >= 3, "{j}");

    // Idempotent: nothing to do the second time.
    let second = d.json(&["apply", "--yes"]);
    assert_eq!(second["executed"].as_array().unwrap().len(), 0, "{second}");
    let plan = d.run(&["plan", "--exit-code"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );

    // Status reports every node, with keys summing to what the judge wrote (masters).
    let status = d.json(&["status"]);
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6);
    let master_keys: u64 = nodes
        .iter()
        .filter(|n| n["role"] == "master")
        .map(|n| n["keys"].as_u64().unwrap())
        .sum();
    assert_eq!(master_keys, 10_000);
    assert!(nodes.iter().all(|n| n["aof_enabled"] == true));

    // keyslot equals CLUSTER KEYSLOT, hash tags included.
    let keys = [
        "foo",
        "{user1000}.following",
        "{user1000}.followers",
        "foo{}{bar}",
        "a{b}c{d}",
        "{}",
        "x",
    ];
    let mut args = vec!["keyslot"];
    args.extend(keys);
    let out = Command::new(bin()).args(&args).output().unwrap();
    let ours = String::from_utf8_lossy(&out.stdout).into_owned();
    for (line, key) in ours.lines().zip(keys) {
        let theirs = redis_cli(d.ports[0], &["CLUSTER", "KEYSLOT", key]);
        assert_eq!(
            line.split('\t').next().unwrap(),
            theirs.trim(),
            "slot of {key:?}"
        );
    }

    // kill -9 a replica: apply restarts it and it resyncs.
    let replica = d.ports[1];
    d.kill_9(replica);
    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"][0]["step"], "start", "{plan}");
    d.ok(&["apply", "--yes"]);
    assert_eq!(
        info_field(replica, "master_link_status").as_deref(),
        Some("up")
    );
    assert!(wait_for(Duration::from_secs(10), || {
        redis_cli(replica, &["DBSIZE"]).trim() == redis_cli(d.ports[0], &["DBSIZE"]).trim()
    }));
    let (ok, text) = cluster_check(d.ports[0]);
    assert!(ok, "{text}");

    // destroy leaves no process and no state.
    let pids = d.pids();
    d.ok(&["destroy", "--yes"]);
    assert!(wait_for(Duration::from_secs(10), || pids
        .iter()
        .all(|&p| !alive(p))));
    assert!(!d.state().exists(), "state dir left behind");
}

#[test]
fn apply_killed_midway_is_finished_by_the_next_apply() {
    let d = Deployment::cluster("");
    let mut child = Command::new(bin())
        .args(["apply", "--yes"])
        .arg(&d.file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some (not all) nodes are up.
    assert!(wait_for(Duration::from_secs(20), || d.pids().len() >= 3));
    child.kill().unwrap();
    child.wait().unwrap();
    let out = d.json(&["apply", "--yes"]);
    assert_eq!(out["ok"], true);
    let (ok, text) = cluster_check(d.ports[0]);
    assert!(ok, "{text}");
    assert_eq!(
        d.json(&["apply", "--yes"])["executed"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn apply_killed_after_slots_and_meet_is_finished_by_the_next_apply() {
    let d = Deployment::cluster("");
    let mut child = Command::new(bin())
        .args(["apply", "--yes"])
        .arg(&d.file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once the first master owns slots but before replicas are attached.
    assert!(wait_for(Duration::from_secs(20), || {
        redis_cli(d.ports[0], &["CLUSTER", "INFO"]).contains("cluster_slots_assigned:")
            && !redis_cli(d.ports[0], &["CLUSTER", "INFO"]).contains("cluster_slots_assigned:0")
    }));
    child.kill().unwrap();
    child.wait().unwrap();
    d.ok(&["apply", "--yes"]);
    let (ok, text) = cluster_check(d.ports[0]);
    assert!(ok, "{text}");
}

#[test]
fn a_foreign_process_on_a_declared_port_is_reported_and_not_touched() {
    let d = Deployment::cluster("");
    // Someone else's redis with data on our first port.
    let foreign_dir = tempfile::tempdir().unwrap();
    let port = d.ports[0].to_string();
    let mut foreign = Command::new("redis-server")
        .args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(foreign_dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(5), || redis_cli(
        d.ports[0],
        &["PING"]
    )
    .trim()
        == "PONG"));
    redis_cli(d.ports[0], &["SET", "precious", "data"]);

    let out = d.run(&["apply", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("did not start"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    // Nothing started, nothing touched.
    assert!(d.pids().is_empty());
    assert_eq!(redis_cli(d.ports[0], &["GET", "precious"]).trim(), "data");
    foreign.kill().unwrap();
    foreign.wait().unwrap();
}

#[test]
fn an_invalid_topology_changes_nothing() {
    let d = Deployment::cluster("  maxmemory: 12xb\n");
    let out = d.run(&["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("topology.yaml:"), "{err}");
    assert!(err.contains("defaults.maxmemory"), "{err}");
    assert!(!d.state().exists());
}

#[test]
fn a_second_concurrent_apply_on_the_same_state_is_refused_clearly() {
    let d = Deployment::cluster("");
    let mut first = Command::new(bin())
        .args(["apply", "--yes"])
        .arg(&d.file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(20), || !d.pids().is_empty()));
    let second = d.run(&["apply", "--yes"]);
    let err = String::from_utf8_lossy(&second.stderr).into_owned();
    assert!(first.wait().unwrap().success());
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(err.contains("another redisctl (pid"), "{err}");
    let (ok, text) = cluster_check(d.ports[0]);
    assert!(ok, "{text}");
}

#[test]
fn auth_password_reaches_redis_only_through_an_owner_only_file() {
    use std::os::unix::fs::PermissionsExt;
    let d = Deployment::cluster("auth:\n  password_file: secret\n");
    let secret = d.dir.path().join("secret");
    std::fs::write(&secret, "s3cr3t-p4ss\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    d.ok(&["apply", "--yes"]);

    let port = d.ports[0];
    let inst = d.state().join("local").join(port.to_string());
    let mode = std::fs::metadata(inst.join("secrets.conf"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        !std::fs::read_to_string(inst.join("redis.conf"))
            .unwrap()
            .contains("s3cr3t")
    );
    assert!(
        !std::fs::read_to_string(inst.join("redis.log"))
            .unwrap()
            .contains("s3cr3t")
    );
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", d.pid(port).unwrap())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("s3cr3t"));

    // Unauthenticated clients are refused; with the password the cluster is whole and every
    // replica authenticated to its master (masterauth).
    assert!(redis_cli(port, &["GET", "x"]).contains("NOAUTH"));
    let authed = |p: u16, args: &[&str]| {
        let out = Command::new("redis-cli")
            .env("REDISCLI_AUTH", "s3cr3t-p4ss")
            .args(["-p", &p.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let info = authed(port, &["CLUSTER", "INFO"]);
    assert!(info.contains("cluster_state:ok"), "{info}");
    // Shard-major placement: replicas on the odd positions.
    for &p in d.ports.iter().skip(1).step_by(2) {
        assert!(authed(p, &["INFO", "replication"]).contains("master_link_status:up"));
    }

    // A wrong password: a clear error naming the instance, and nothing changes.
    std::fs::write(&secret, "wrong\n").unwrap();
    let out = d.run(&["apply", "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("authentication failed"), "{err}");
    assert!(
        std::fs::read_to_string(inst.join("secrets.conf"))
            .unwrap()
            .contains("s3cr3t-p4ss")
    );
    // ... and `status`, where no node answers, fails (exit 2) and says so.
    let out = d.run(&["status"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("authentication failed"), "{err}");
    std::fs::write(&secret, "s3cr3t-p4ss\n").unwrap();
}

#[test]
fn a_persistence_off_master_is_not_restarted_empty_over_its_replica() {
    // Long node timeout: the cluster itself would not fail over in time, so the guard has to.
    let d = Deployment::custom(3, 1, "    save: []\n    appendonly: false\n", 30000, "");
    d.ok(&["apply", "--yes"]);
    let j = judge(d.ports[0], 3000);
    assert_eq!(j["lost"], 0);
    let (master, replica) = (d.ports[0], d.ports[1]);
    // The loaded keys are in sync on the replica before the writer starts.
    let loaded = redis_cli(master, &["DBSIZE"]).trim().to_string();
    assert!(wait_for(Duration::from_secs(5), || redis_cli(
        replica,
        &["DBSIZE"]
    )
    .trim()
        == loaded));
    // A live writer through the kill and the restart: judged by acknowledged writes.
    let writer = consistency(d.ports[2], 6.0, 2000);
    assert!(wait_for(Duration::from_secs(10), || redis_cli(
        master,
        &["DBSIZE"]
    )
    .trim()
    .parse::<u64>()
    .unwrap_or(0)
        > loaded.parse::<u64>().unwrap()));

    // apply at once, long before the cluster would notice (30 s node timeout).
    d.kill_9(master);
    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"][0]["step"], "take_over", "{plan}");
    d.ok(&["apply", "--yes"]);

    // The replica kept the data and serves the slots; the old master came back as its replica.
    assert_eq!(info_field(replica, "role").as_deref(), Some("master"));
    assert_eq!(info_field(master, "role").as_deref(), Some("slave"));
    let w = finish_json(writer);
    assert_nothing_lost(&w, 100);
    let (ok, text) = cluster_check(d.ports[2]);
    assert!(ok, "{text}");
    let again = judge(d.ports[2], 3000);
    assert_eq!(again["lost"], 0, "replica wiped: {again}");
    let on_replica = redis_cli(replica, &["DBSIZE"]).trim().to_string();
    assert!(wait_for(Duration::from_secs(10), || redis_cli(
        master,
        &["DBSIZE"]
    )
    .trim()
        == on_replica));
}

#[test]
fn a_node_whose_process_and_data_are_gone_is_recreated_and_its_old_id_forgotten() {
    let d = Deployment::cluster("");
    d.ok(&["apply", "--yes"]);
    judge(d.ports[0], 2000);
    let replica = d.ports[1];
    let old_id = redis_cli(replica, &["CLUSTER", "MYID"]).trim().to_string();
    d.kill_9(replica);
    std::fs::remove_dir_all(d.state().join("local").join(replica.to_string())).unwrap();

    d.ok(&["apply", "--yes"]);
    let new_id = redis_cli(replica, &["CLUSTER", "MYID"]).trim().to_string();
    assert_ne!(new_id, old_id);
    assert_eq!(
        info_field(replica, "master_link_status").as_deref(),
        Some("up")
    );
    for &p in &d.ports {
        assert!(
            !redis_cli(p, &["CLUSTER", "NODES"]).contains(&old_id),
            "{p} still lists the old id"
        );
    }
    let (ok, text) = cluster_check(d.ports[0]);
    assert!(ok, "{text}");
    assert_eq!(d.json(&["plan"])["steps"].as_array().unwrap().len(), 0);
}

/// Bug (#11): an existing directory passed as the state dir had its mode changed to 0750
/// (sticky bit gone; `--state-dir /tmp` as root would break /tmp), and destroy removed it.
#[test]
fn destroy_leaves_an_existing_state_dir_and_its_mode_alone() {
    use std::os::unix::fs::PermissionsExt;
    let d = Deployment::cluster("");
    let shared = d.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let state = shared.to_str().unwrap();
    d.ok(&["--state-dir", state, "destroy", "--yes"]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert!(
        shared.is_dir(),
        "destroy removed a directory it did not create"
    );
    assert_eq!(mode(&shared), 0o1777);
    assert_eq!(
        std::fs::read_dir(&shared).unwrap().count(),
        0,
        "left files behind"
    );
    // apply creates its own subdirectories (0750) and changes nothing above them.
    let out = d.run(&["--state-dir", state, "plan"]);
    assert!(out.status.success());
    assert_eq!(mode(&shared), 0o1777);
}

/// Bug (#11): a group- or world-readable password file was used silently; a missing one was
/// only noticed by `apply`.
#[test]
fn password_files_others_can_read_are_refused_at_validate_and_apply() {
    use std::os::unix::fs::PermissionsExt;
    let d = Deployment::cluster("auth:\n  password_file: secret\n");
    let secret = d.dir.path().join("secret");
    let file = d.file.display().to_string();
    // Missing: validate says so, at the field's line.
    let out = d.run(&["validate"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{file}:12:18: error: auth.password_file: {}: No such file",
            secret.display()
        )),
        "{err}"
    );
    std::fs::write(&secret, "s3cr3t\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    for cmd in ["validate", "apply"] {
        let out = d.run(&[cmd, "--yes"][..if cmd == "apply" { 2 } else { 1 }]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(
            err.contains("is open to others (mode 0644)"),
            "{cmd}: {err}"
        );
        assert!(
            err.contains(&format!("run `chmod 600 {}`", secret.display())),
            "{cmd}: {err}"
        );
    }
    assert!(!d.state().exists(), "apply changed something");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    d.ok(&["validate"]);
    // Empty: an error at validate too.
    std::fs::write(&secret, "\n").unwrap();
    let out = d.run(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the first line (the password) is empty")
    );
}

/// Bug (#11): a state dir with a newline was written raw into redis.conf (`dir`, `logfile`).
#[test]
fn a_state_dir_with_a_newline_is_refused() {
    let d = Deployment::cluster("");
    let evil = d.dir.path().join("x\nrequirepass pwned");
    let out = d.run(&["--state-dir", evil.to_str().unwrap(), "apply", "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("contains a control character"), "{err}");
    assert!(!evil.exists());
    // In the topology: refused at its line.
    let yaml = std::fs::read_to_string(&d.file)
        .unwrap()
        .replace("state_dir: state", "state_dir: \"st\\nate\"");
    std::fs::write(&d.file, yaml).unwrap();
    let out = d.run(&["validate"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(":3:12: error: state_dir: contains a control character"),
        "{err}"
    );
}

/// Bug (#11): `status` exited 0 when no node could be reached (e.g. a wrong password).
#[test]
fn status_exits_2_when_no_node_answers() {
    let d = Deployment::cluster("");
    let out = d.run(&["status"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: none of the 6 declared node(s) of deployment")
            && err.contains("answered"),
        "{err}"
    );
    // The report is still printed (every node DOWN), also as JSON.
    assert!(String::from_utf8_lossy(&out.stdout).contains("DOWN"));
    let out = d.run(&["--output", "json", "status"]);
    assert_eq!(out.status.code(), Some(2));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["nodes"].as_array().unwrap().len(), 6);
}
