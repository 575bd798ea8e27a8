//! `redisctl agent` with the process supervisor against real redis-servers: nobody runs
//! `apply` after the first one; the agent heals what it may and reports the rest.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// A running agent; stopped (SIGTERM, then SIGKILL) on drop, before the deployment's drop
/// destroys it.
struct Agent {
    child: Child,
    log: PathBuf,
    state: PathBuf,
    http: u16,
}

impl Agent {
    fn start(d: &Deployment, http: u16) -> Agent {
        let log = d.dir.path().join("agent.log");
        let child = Command::new(bin())
            .args(["agent", "--supervisor", "process"])
            .arg(&d.file)
            .env_remove("REDISCTL_STATE_DIR")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start redisctl agent");
        let a = Agent {
            child,
            log,
            state: d.state(),
            http,
        };
        assert!(
            wait_for(Duration::from_secs(30), || a.report().is_some()),
            "the agent made no report:\n{}",
            a.log()
        );
        a
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// agent.json: the agent's last report.
    fn report(&self) -> Option<serde_json::Value> {
        let text = std::fs::read(self.state.join("agent.json")).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn status(&self) -> String {
        self.report()
            .and_then(|r| r["status"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    fn rounds(&self) -> u64 {
        self.report()
            .and_then(|r| r["rounds"].as_u64())
            .unwrap_or(0)
    }

    /// Wait until the agent has finished `n` more rounds (so "nothing happened" is a fact
    /// about rounds that ran, not about elapsed time).
    fn await_rounds(&self, n: u64) {
        let target = self.rounds() + n;
        assert!(
            wait_for(Duration::from_secs(60), || self.rounds() >= target),
            "the agent did not finish {n} more rounds:\n{}",
            self.log()
        );
    }

    fn await_status(&self, what: &str, limit: Duration, cond: impl Fn(&str) -> bool) {
        assert!(
            wait_for(limit, || cond(&self.status())),
            "agent status never showed {what}; last: {:?}\nlog:\n{}",
            self.status(),
            self.log()
        );
    }

    fn converged(&self) {
        self.await_status("converged", Duration::from_secs(90), |s| {
            s.starts_with("converged:")
        });
    }

    /// (status code, body) of GET path on the agent's endpoint (curl: a real HTTP client).
    fn get(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{}{path}", self.http))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let id = self.child.id() as i32;
        if !wait_for(Duration::from_secs(10), || !alive(id)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// 3 shards × 1 replica with AOF, node timeout 2 s, an agent section (interval 500 ms).
fn deployment(policy: &str) -> (Deployment, u16) {
    let http = free_ports(1)[0];
    let d = Deployment::with_shards(
        3,
        1,
        &format!("agent:\n  interval: 500ms\n  listen: 127.0.0.1:{http}\n{policy}"),
    );
    d.ok(&["apply", "--yes", "--supervisor", "process"]);
    (d, http)
}

/// /metrics as tests/parse_metrics.py (prometheus_client's parser) reads it.
fn parse_metrics(text: &str) -> serde_json::Value {
    use std::io::Write as _;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parse_metrics.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parser JSON")
}

fn role(port: u16) -> String {
    info_field(port, "role").unwrap_or_default()
}

fn node_id(port: u16) -> String {
    redis_cli(port, &["CLUSTER", "MYID"]).trim().to_string()
}

fn fill(port: u16, n: usize) {
    let script = format!(
        "import redis.cluster as c\nr=c.RedisCluster(host='127.0.0.1',port={port})\nfor i in range({n}): r.set(f'k{{i}}', i)\n"
    );
    let ok = Command::new("python3")
        .args(["-c", &script])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "filling the cluster failed");
}

fn dbsize(port: u16) -> u64 {
    redis_cli(port, &["DBSIZE"]).trim().parse().unwrap_or(0)
}

/// The replica of the shard whose master is `master` is in sync with it.
fn in_sync(replica: u16, master: u16) -> bool {
    role(replica) == "slave"
        && info_field(replica, "master_port").as_deref() == Some(&master.to_string())
        && info_field(replica, "master_link_status").as_deref() == Some("up")
        && dbsize(replica) == dbsize(master)
}

#[test]
fn agent_heals_a_killed_replica_and_reports_health() {
    let (d, http) = deployment("");
    let agent = Agent::start(&d, http);
    agent.converged();
    assert_eq!(agent.get("/health").0, 200);
    let (master, replica) = (d.ports[0], d.ports[1]);
    assert_eq!(agent.get(&format!("/primary/{master}")).0, 200);
    assert_eq!(agent.get(&format!("/replica/{replica}?lag=1000000")).0, 200);
    assert_eq!(agent.get(&format!("/primary/{replica}")).0, 503);
    fill(master, 500);
    // A live writer through the kill and the healing, judged by its acknowledged writes.
    let writer = consistency(master, 5.0, 2000);
    let before = dbsize(master);
    assert!(wait_for(Duration::from_secs(10), || dbsize(master) > before));
    let id = node_id(replica);
    let old = d.kill_9(replica);
    assert!(
        wait_for(Duration::from_secs(60), || d
            .pid(replica)
            .is_some_and(|p| p != old)
            && role(replica) == "slave"),
        "the agent did not restart {replica}:\n{}",
        agent.log()
    );
    let w = finish_json(writer);
    assert_nothing_lost(&w, 100);
    assert!(
        wait_for(Duration::from_secs(60), || in_sync(replica, master)),
        "{replica} did not re-sync:\n{}",
        agent.log()
    );
    assert_eq!(
        node_id(replica),
        id,
        "the replica came back with another identity"
    );
    agent.converged();
    assert!(
        agent.status().contains(&format!("start local:{replica}")),
        "{}",
        agent.status()
    );
    let (code, metrics) = agent.get("/metrics");
    assert_eq!(code, 200);
    // Prometheus' own parser reads it.
    let m = parse_metrics(&metrics);
    let samples = |f: &str| m[f]["samples"].as_array().cloned().unwrap_or_default();
    assert_eq!(m["redisctl_steps_executed"]["type"], "counter", "{m}");
    assert!(
        samples("redisctl_steps_executed")
            .iter()
            .any(|s| s[1]["kind"] == "start" && s[2].as_f64() >= Some(1.0)),
        "{m}"
    );
    assert_eq!(samples("redisctl_instance_up").len(), 6, "{m}");
    assert!(
        samples("redisctl_instance_up").iter().all(|s| s[2] == 1.0),
        "{m}"
    );
    assert_eq!(samples("redisctl_converged")[0][2], 1.0, "{m}");
    let roles = samples("redisctl_instance_role");
    let of = |p: u16| {
        roles
            .iter()
            .find(|s| s[1]["instance"] == format!("local:{p}"))
            .map(|s| (s[1]["declared"].clone(), s[1]["role"].clone()))
    };
    assert_eq!(of(master), Some(("master".into(), "master".into())), "{m}");
    assert_eq!(
        of(replica),
        Some(("replica".into(), "replica".into())),
        "{m}"
    );
    let (ok, text) = cluster_check(master);
    assert!(ok, "{text}");
}

#[test]
fn agent_recreates_a_wiped_replica_with_the_data() {
    let (d, http) = deployment("");
    let agent = Agent::start(&d, http);
    agent.converged();
    let (master, replica) = (d.ports[2], d.ports[3]);
    fill(master, 2000);
    // A live writer through the kill, the wipe and the healing.
    let writer = consistency(master, 5.0, 2000);
    let before = dbsize(master);
    assert!(wait_for(Duration::from_secs(10), || dbsize(master) > before));
    let old_id = node_id(replica);
    let data = d
        .state()
        .join("local")
        .join(replica.to_string())
        .join("data");
    // Pause first, so the wipe and the kill are seen together (as after a disk swap).
    d.ok(&["pause"]);
    agent.await_rounds(1);
    d.kill_9(replica);
    std::fs::remove_dir_all(&data).unwrap();
    d.ok(&["resume"]);
    let w = finish_json(writer);
    assert_nothing_lost(&w, 100);
    assert!(
        wait_for(Duration::from_secs(90), || in_sync(replica, master)
            && node_id(replica) != old_id),
        "{replica} did not come back as a replica of {master} with the data:\n{}",
        agent.log()
    );
    assert!(dbsize(replica) > 0);
    agent.converged();
    // The old identity is forgotten everywhere.
    let short = &old_id[..8];
    assert!(
        wait_for(Duration::from_secs(30), || !redis_cli(
            d.ports[0],
            &["CLUSTER", "NODES"]
        )
        .contains(short)),
        "the ghost {short} is still known:\n{}",
        agent.log()
    );
    let (ok, text) = cluster_check(master);
    assert!(ok, "{text}");
}

#[test]
fn agent_reverts_config_drift() {
    let (d, http) = deployment("");
    let agent = Agent::start(&d, http);
    agent.converged();
    let port = d.ports[4];
    let before = redis_cli(port, &["CONFIG", "GET", "cluster-node-timeout"]);
    assert!(before.contains("2000"), "{before}");
    redis_cli(port, &["CONFIG", "SET", "cluster-node-timeout", "7777"]);
    assert!(
        wait_for(Duration::from_secs(30), || redis_cli(
            port,
            &["CONFIG", "GET", "cluster-node-timeout"]
        )
        .contains("2000")),
        "drift not reverted:\n{}",
        agent.log()
    );
    // The round that reverted it publishes its status after the revert: wait for the report.
    agent.await_status(
        "converged, naming the change",
        Duration::from_secs(90),
        |s| s.starts_with("converged:") && s.contains("set cluster-node-timeout"),
    );
}

#[test]
fn agent_leaves_scaling_to_apply_and_keeps_the_last_good_topology() {
    let (d, http) = deployment("");
    let agent = Agent::start(&d, http);
    agent.converged();
    let slots = |p: u16| {
        redis_cli(p, &["CLUSTER", "NODES"])
            .lines()
            .filter(|l| l.contains("myself"))
            .map(|l| l.split_whitespace().skip(8).collect::<Vec<_>>().join(" "))
            .collect::<String>()
    };
    let before: Vec<String> = d.ports.iter().map(|&p| slots(p)).collect();
    // 4 shards: the new nodes take the next ports; the generated placement needs them listed.
    let new = free_ports(2);
    let text = std::fs::read_to_string(&d.file).unwrap();
    let list: Vec<String> = d
        .ports
        .iter()
        .chain(new.iter())
        .map(u16::to_string)
        .collect();
    let text = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("shards:") {
                "  shards: 4".to_string()
            } else if l.trim_start().starts_with("ports:") {
                format!("  ports: [{}]", list.join(", "))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&d.file, text + "\n").unwrap();
    agent.await_status("waiting for apply", Duration::from_secs(30), |s| {
        s.contains("waiting for apply") && s.contains("shards 3→4 needs data movement")
    });
    agent.await_rounds(3);
    assert!(
        agent.status().contains("waiting for apply"),
        "{}",
        agent.status()
    );
    let after: Vec<String> = d.ports.iter().map(|&p| slots(p)).collect();
    assert_eq!(before, after, "the agent moved slots");
    for p in &new {
        assert!(
            redis_cli(*p, &["PING"]).trim() != "PONG",
            "the agent started the new node {p}"
        );
    }
    assert_eq!(agent.get("/health").0, 503);
    assert!(
        agent
            .get("/metrics")
            .1
            .lines()
            .any(|l| l.starts_with("redisctl_waiting_for_apply{") && l.ends_with(" 1"))
    );

    // An invalid file is reported; the last good one (4 shards) stays in force.
    std::fs::write(&d.file, "name: [broken\n").unwrap();
    agent.await_status("the invalid topology", Duration::from_secs(30), |s| {
        s.contains("is invalid; the last good one stays in force")
    });
    // Still healing with the last good topology.
    let replica = d.ports[5];
    let old = d.kill_9(replica);
    assert!(
        wait_for(Duration::from_secs(60), || d
            .pid(replica)
            .is_some_and(|p| p != old)
            && role(replica) == "slave"),
        "no healing under the last good topology:\n{}",
        agent.log()
    );
    assert!(
        agent.status().contains("waiting for apply"),
        "{}",
        agent.status()
    );
}

#[test]
fn paused_agent_does_nothing_until_resumed_and_apply_by_hand_still_works() {
    let (d, http) = deployment("");
    let agent = Agent::start(&d, http);
    agent.converged();
    // destroy is refused while the agent runs (it would start everything again).
    let refused = d.run(&["destroy", "--yes"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("stop it first"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // A second agent for the same deployment and host is refused.
    let second = d.run(&["agent", "--supervisor", "process"]);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another redisctl agent (pid"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let out = d.ok(&["pause", "--reason", "disk swap"]);
    assert!(out.contains("Paused"), "{out}");
    agent.await_status("paused", Duration::from_secs(30), |s| {
        s.starts_with("paused by")
    });
    assert!(agent.status().contains("disk swap"));
    let status = d.ok(&["status"]);
    assert!(status.contains("agent: paused"), "{status}");
    let replica = d.ports[1];
    // A live writer through both kills, the apply by hand and the healing after resume.
    let writer = consistency(d.ports[0], 8.0, 2000);
    let before = dbsize(d.ports[0]);
    assert!(wait_for(Duration::from_secs(10), || dbsize(d.ports[0]) > before));
    d.kill_9(replica);
    agent.await_rounds(3);
    assert!(
        d.pid(replica).is_none_or(|p| !alive(p)),
        "a paused agent restarted {replica}"
    );
    assert_eq!(
        redis_cli(replica, &["PING"]).trim(),
        "",
        "{replica} answers"
    );
    assert!(agent.get("/metrics").1.contains(&format!(
        "redisctl_paused{{deployment=\"t{}\"}} 1",
        d.ports[0]
    )));
    // apply by hand while the agent runs: it waits for the agent's round, then converges.
    d.ok(&["apply", "--yes", "--supervisor", "process"]);
    assert_eq!(role(replica), "slave");
    d.kill_9(replica);
    let out = d.ok(&["resume"]);
    assert!(out.contains("Resumed"), "{out}");
    assert!(
        wait_for(Duration::from_secs(60), || role(replica) == "slave"
            && info_field(replica, "master_link_status").as_deref()
                == Some("up")),
        "not healed after resume:\n{}",
        agent.log()
    );
    let w = finish_json(writer);
    assert_nothing_lost(&w, 100);
    agent.converged();
    let status = d.ok(&["status"]);
    assert!(status.contains("agent: running"), "{status}");
}

#[test]
fn killed_master_fails_over_and_mastership_returns_without_losing_writes() {
    let (d, http) = deployment("  policy: {restore_roles: true, stable_for: 3s}\n");
    let agent = Agent::start(&d, http);
    agent.converged();
    let writer = consistency(d.ports[1], 180.0, 2000);
    // The writer's first writes reach every shard before the crash.
    assert!(wait_for(Duration::from_secs(20), || dbsize(d.ports[0]) > 50));
    let (master, replica) = (d.ports[0], d.ports[1]);
    d.kill_9(master);
    // The replica takes over (the agent's TakeOver or the cluster's own election), the old
    // master comes back as its replica ...
    assert!(
        wait_for(Duration::from_secs(60), || role(replica) == "master"
            && role(master) == "slave"),
        "no failover with the old master back as a replica:\n{}",
        agent.log()
    );
    // ... and after the stability window mastership returns to the preferred node.
    assert!(
        wait_for(Duration::from_secs(90), || role(master) == "master"
            && role(replica) == "slave"),
        "mastership did not return to {master}:\n{}",
        agent.log()
    );
    let verdict = stop_json(writer);
    assert_eq!(verdict["lost"], 0, "acknowledged writes lost: {verdict}");
    assert!(
        verdict["acknowledged"].as_u64().unwrap_or(0) > 0,
        "{verdict}"
    );
    agent.converged();
    // Both changes of master, once a round has observed the second (the one that made the
    // restore may already have said "converged").
    let mut metrics = String::new();
    let seen = wait_for(Duration::from_secs(30), || {
        metrics = agent.get("/metrics").1;
        metrics
            .lines()
            .find(|l| l.starts_with("redisctl_failovers_seen_total"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n >= 2)
    });
    assert!(seen, "{metrics}");
    let (ok, text) = cluster_check(master);
    assert!(ok, "{text}");
}
