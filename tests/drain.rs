//! Several hosts on one machine, as distinct loopback addresses (127.0.N.1-3): per-host
//! `apply` run concurrently, `drain` / `undrain` under a write load, refusals, and a
//! rolling restart. Judged by redis-cli --cluster check and the consistency checker
//! (redis-py RedisCluster). The network-namespace version is tests/multihost.rs.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Deployment, bin, free_ports};

struct Hosts {
    d: Deployment,
    addrs: [String; 3],
    /// Two cluster ports and the group's port on each host (the Sentinel port is not here).
    ports: Vec<u16>,
    /// Every host's agent answers on its own address at this port (`listen: host:PORT`).
    http: u16,
}

/// The tests share the host addresses and need the CPU for timely failovers: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn hosts() -> Hosts {
    let net = 20 + std::process::id() % 200;
    let addrs = [1, 2, 3].map(|i| format!("127.0.{net}.{i}"));
    let ports = free_ports(5);
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "dr41n-me\n").unwrap();
    // Owner-only, or redisctl refuses it.
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let yaml = format!(
        "version: 1\nname: drain{pid}\nstate_dir: state\n\
         hosts:\n  - {{name: h1, address: {a1}}}\n  - {{name: h2, address: {a2}}}\n  - {{name: h3, address: {a3}}}\n\
         auth:\n  password_file: secret\n\
         defaults:\n  persistence:\n    appendonly: true\n    appendfsync: everysec\n\
         cluster:\n  shards: 3\n  replicas: 1\n  ports: {p0}-{p1}\n  node_timeout: 2000ms\n\
         groups:\n  - name: g1\n    master: {{host: h2, port: {p2}}}\n    replicas:\n\
         \x20     - {{host: h1, port: {p2}}}\n      - {{host: h3, port: {p2}}}\n\
         sentinel:\n  instances:\n    - {{host: h1, port: {s}}}\n    - {{host: h2, port: {s}}}\n\
         \x20   - {{host: h3, port: {s}}}\n  quorum: 2\n  down_after: 2000ms\n  failover_timeout: 10s\n\
         agent:\n  interval: 300ms\n  listen: host:{http}\n",
        pid = std::process::id(),
        a1 = addrs[0],
        a2 = addrs[1],
        a3 = addrs[2],
        p0 = ports[0],
        p1 = ports[1],
        p2 = ports[2],
        s = ports[3],
        http = ports[4],
    );
    let file = dir.path().join("topology.yaml");
    std::fs::write(&file, yaml).unwrap();
    Hosts {
        d: Deployment {
            dir,
            file,
            ports: Vec::new(),
        },
        addrs,
        ports: ports[..3].to_vec(),
        http: ports[4],
    }
}

const PW: &str = "dr41n-me";

impl Drop for Hosts {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The Sentinels' and nodes' logs say what they saw; print their last lines.
            for host in ["h1", "h2", "h3"] {
                let dir = state_of(self, host).join(host);
                for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let log = e.path().join("redis.log");
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    eprintln!("--- {}", log.display());
                    for l in tail.iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
        for host in ["h1", "h2", "h3"] {
            let _ = on(self, host, &["destroy"], &["--yes"]);
        }
    }
}

/// Each host keeps its own state directory, as separate machines do.
fn state_of(h: &Hosts, host: &str) -> std::path::PathBuf {
    h.d.dir.path().join(format!("state-{host}"))
}

fn on(h: &Hosts, host: &str, args: &[&str], tail: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(["--host", host])
        .arg("--state-dir")
        .arg(state_of(h, host))
        .args(args)
        .arg(&h.d.file)
        .args(tail)
        .env_remove("REDISCTL_STATE_DIR")
        .output()
        .expect("run redisctl")
}

fn ok(h: &Hosts, host: &str, args: &[&str], tail: &[&str]) -> String {
    let what = format!("--host {host} {args:?} {tail:?}");
    common::stdout_of_success(on(h, host, args, tail), &what)
}

fn cli(addr: &str, port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args([
            "-h",
            addr,
            "-p",
            &port.to_string(),
            "-a",
            PW,
            "--no-auth-warning",
        ])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cluster_check(h: &Hosts) -> String {
    let out = Command::new("redis-cli")
        .args(["-a", PW, "--no-auth-warning", "--cluster", "check"])
        .arg(format!("{}:{}", h.addrs[0], h.ports[0]))
        .output()
        .expect("redis-cli --cluster check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("[OK] All 16384 slots covered."),
        "{text}"
    );
    text
}

/// Role of each cluster node and group member, by host name.
fn roles(h: &Hosts) -> Vec<(String, u16, String)> {
    let mut v = Vec::new();
    for (i, a) in h.addrs.iter().enumerate() {
        for &p in &h.ports {
            let role = cli(a, p, &["ROLE"]);
            v.push((
                format!("h{}", i + 1),
                p,
                role.lines().next().unwrap_or("down").to_string(),
            ));
        }
    }
    v
}

fn checker(h: &Hosts, seconds: f64) -> std::process::Child {
    common::consistency_at(&h.addrs[0], h.ports[0], seconds, 5000, Some(PW))
}

/// Each host's apply at once, as configuration management runs them.
fn apply_everywhere(h: &Hosts) {
    let children: Vec<_> = ["h1", "h2", "h3"]
        .iter()
        .map(|host| {
            Command::new(bin())
                .args(["--host", host, "apply", "--yes"])
                .arg("--state-dir")
                .arg(state_of(h, host))
                .arg(&h.d.file)
                .env_remove("REDISCTL_STATE_DIR")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (host, c) in ["h1", "h2", "h3"].iter().zip(children) {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "apply on {host}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn per_host_applies_drain_undrain_and_rolling_restart() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let h = hosts();
    apply_everywhere(&h);
    cluster_check(&h);
    ok(&h, "h1", &["check"], &[]);
    for host in ["h1", "h2", "h3"] {
        let plan = ok(&h, host, &["plan"], &[]);
        assert!(plan.contains("Nothing to do"), "{host}: {plan}");
    }
    let before = roles(&h);

    // The plan first: --dry-run prints it and changes nothing.
    let plan: serde_json::Value = serde_json::from_str(&ok(
        &h,
        "h2",
        &["--output", "json", "drain"],
        &["h2", "--dry-run"],
    ))
    .unwrap();
    let kinds: Vec<&str> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"mark_drained"), "{plan}");
    assert_eq!(kinds.last(), Some(&"stop"), "{plan}");
    assert!(
        kinds.contains(&"cluster_failover") && kinds.contains(&"sentinel_failover"),
        "{plan}"
    );
    let text = ok(&h, "h3", &["restart", "--rolling"], &["--dry-run"]);
    assert!(text.contains("restart h3:"), "{text}");
    assert_eq!(roles(&h), before, "a dry run changed roles");
    assert!(!state_of(&h, "h2").join("drained").join("h2.json").exists());

    // Drain h2 under writes.
    let load = checker(&h, 120.0);
    std::thread::sleep(Duration::from_millis(1500));
    let report: serde_json::Value =
        serde_json::from_str(&ok(&h, "h2", &["--output", "json", "drain"], &["h2"])).unwrap();
    eprintln!(
        "drain h2: {} s, handovers {}",
        report["secs"], report["moved"]
    );
    let moved = report["moved"].as_array().expect("moved");
    assert!(
        moved.iter().any(|m| m["of"] == "cluster") && moved.iter().any(|m| m["of"] == "g1"),
        "{report}"
    );
    assert!(report["stopped"].as_array().unwrap().len() == 4, "{report}");
    for &p in &h.ports {
        assert_eq!(
            cli(&h.addrs[1], p, &["PING"]).trim(),
            "",
            "h2:{p} still answers"
        );
    }
    let r = common::stop_json(load);
    assert_eq!(r["lost"], 0, "drain lost acknowledged writes: {r}");
    eprintln!("drain under load: {r}");
    // The others serve every slot.
    assert!(cli(&h.addrs[0], h.ports[0], &["CLUSTER", "INFO"]).contains("cluster_state:ok"));

    // Refusals: apply/restart on the drained host; a second host while h2 is out.
    let out = on(&h, "h2", &["apply", "--yes"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is drained"));
    let out = on(&h, "h3", &["drain"], &["h3"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("host h2 has no instance answering"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(!cli(&h.addrs[2], h.ports[0], &["PING"]).is_empty());
    // Drain runs on the host itself.
    let out = on(&h, "h1", &["drain"], &["h3"]);
    assert_eq!(out.status.code(), Some(1));
    // The coordinator's apply does not wait for the drained host, and changes nothing.
    let plan = ok(&h, "h1", &["plan"], &[]);
    assert!(plan.contains("Nothing to do"), "{plan}");
    drained_is_visible_from_another_host(&h);

    // Undrain's first round, printed: the host's instances start; the roles come later.
    let text = ok(&h, "h2", &["undrain"], &["h2", "--dry-run"]);
    assert!(text.contains("start h2:"), "{text}");
    assert!(state_of(&h, "h2").join("drained").join("h2.json").exists());
    assert_eq!(
        cli(&h.addrs[1], h.ports[0], &["PING"]).trim(),
        "",
        "a dry run started h2"
    );

    // Undrain under writes: roles back as they were, nothing lost.
    let load = checker(&h, 120.0);
    ok(&h, "h2", &["undrain"], &["h2"]);
    let r = common::stop_json(load);
    assert_eq!(r["lost"], 0, "undrain lost acknowledged writes: {r}");
    cluster_check(&h);
    ok(&h, "h1", &["check"], &[]);
    assert_eq!(roles(&h), before, "roles not restored");

    // Rolling restart of h3: every process new, roles kept.
    let pid = |port| {
        cli(&h.addrs[2], port, &["INFO", "server"])
            .lines()
            .find_map(|l| l.strip_prefix("process_id:").map(|s| s.trim().to_string()))
            .unwrap()
    };
    let pids: Vec<String> = h.ports.iter().map(|&p| pid(p)).collect();
    ok(&h, "h3", &["restart", "--rolling"], &[]);
    for (&p, old) in h.ports.iter().zip(&pids) {
        assert_ne!(&pid(p), old, "h3:{p} was not restarted");
    }
    cluster_check(&h);
    ok(&h, "h1", &["check"], &[]);
    assert_eq!(roles(&h), before, "roles changed by the rolling restart");
}

/// h2 is drained. From h1, `check` cannot know it from its own state directory: without an
/// agent on h2 it says who it asked and that nobody answered; with h2's agent running
/// (`listen: host:PORT`), it says h2 is drained, as its agent reported. Never "matches".
fn drained_is_visible_from_another_host(h: &Hosts) {
    let check = |h: &Hosts| {
        let out = on(h, "h1", &["check"], &[]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "check must fail while h2 is out"
        );
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let agent_at = format!("{}:{}", h.addrs[1], h.http);
    let text = check(h);
    assert!(
        text.contains("down, unreachable from here, or drained")
            && text.contains(&format!("no agent answered at {agent_at}")),
        "{text}"
    );
    let log = std::fs::File::create(h.d.dir.path().join("agent-h2.log")).unwrap();
    let mut agent = Command::new(bin())
        .args(["--host", "h2", "--state-dir"])
        .arg(state_of(h, "h2"))
        .args(["agent", "--supervisor", "process"])
        .arg(&h.d.file)
        .env_remove("REDISCTL_STATE_DIR")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the agent on h2");
    let mut last = String::new();
    let seen = common::wait_for(Duration::from_secs(30), || {
        last = check(h);
        last.contains("host h2 is drained (since unix time")
            && last.contains(&format!("says its agent at {agent_at}"))
    });
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(
        seen,
        "{last}\nagent log:\n{}",
        std::fs::read_to_string(h.d.dir.path().join("agent-h2.log")).unwrap_or_default()
    );
    // The coordinator's plan says so too, and never "matches".
    let plan = ok(h, "h1", &["plan"], &[]);
    assert!(!plan.contains("matches the topology."), "{plan}");
}

/// A shard whose only copy is on the host: refused without --move-slots; with it, the
/// slots move to the other masters first and nothing is lost.
#[test]
fn drain_without_a_replica_elsewhere_needs_move_slots() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let h = hosts();
    let text = std::fs::read_to_string(&h.d.file)
        .unwrap()
        .replace("  replicas: 1\n", "  replicas: 0\n");
    std::fs::write(&h.d.file, text).unwrap();
    apply_everywhere(&h);
    let load = checker(&h, 120.0);
    std::thread::sleep(Duration::from_millis(500));
    let out = on(&h, "h2", &["drain"], &["h2"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--move-slots"), "{err}");
    assert!(!cli(&h.addrs[1], h.ports[0], &["PING"]).is_empty());
    let report: serde_json::Value = serde_json::from_str(&ok(
        &h,
        "h2",
        &["--output", "json", "drain"],
        &["h2", "--move-slots"],
    ))
    .unwrap();
    assert!(
        !report["slots_moved"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let r = common::stop_json(load);
    assert_eq!(r["lost"], 0, "{r}");
    let text = cluster_check(&h);
    assert!(!text.contains(&h.addrs[1]), "{text}");
}
