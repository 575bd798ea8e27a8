//! Three hosts as network namespaces: each has its own network stack and address on a
//! private bridge, and redisctl runs inside each one with its own state directory, as on
//! separate machines. The test process (root namespace) reaches every host through the
//! bridge, so redis-cli, redis-py (tests/judge.py) and tools/consistency.py judge from
//! outside. Covered: per-host `apply` run at the same time; `drain` / `undrain` of a host
//! under a write load; drain refusals. tests/drain.rs does the same on loopback addresses.
//!
//! Needs root and `ip` (iproute2); without them each test prints why it skipped and passes,
//! except when REDISCTL_REQUIRE_SYSTEMD_E2E=1 (CI), where a skip is a failure.
//! Every namespace, veth, bridge and process is removed on drop, also when a check fails;
//! leftovers of earlier runs that died (their pid is gone) are swept first.

mod common;

use common::{have, say, skip};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{bin, free_ports, wait_for};

const PW: &str = "n3tns-s3cret";

/// The binary under test: this build's, or REDISCTL_MULTIHOST_BIN (e.g. the release build,
/// whose timing differs).
fn redisctl() -> String {
    std::env::var("REDISCTL_MULTIHOST_BIN").unwrap_or_else(|_| bin().to_string())
}

/// The tests need the CPU for timely failovers: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|r| r.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Why this machine cannot run the tests, if it cannot.
fn missing() -> Option<String> {
    if !is_root() {
        return Some("needs root (network namespaces, veths, a bridge)".into());
    }
    for cmd in [
        "ip",
        "redis-server",
        "redis-sentinel",
        "redis-cli",
        "python3",
    ] {
        if !have(cmd) {
            return Some(format!("`{cmd}` is not installed"));
        }
    }
    let py = Command::new("python3")
        .args(["-c", "import redis.cluster"])
        .stderr(Stdio::null())
        .status();
    if !py.is_ok_and(|s| s.success()) {
        return Some("python3 module redis (redis-py) is not installed".into());
    }
    None
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip")
}

fn ip_ok(args: &[&str]) -> Result<(), String> {
    let out = ip(args);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Processes whose network namespace is `ns`.
fn ns_pids(ns: &str) -> Vec<i32> {
    String::from_utf8_lossy(&ip(&["netns", "pids", ns]).stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Kill every process in `ns` (they are ours: only `ip netns exec` put them there) and
/// delete it.
fn remove_ns(ns: &str) {
    let t = Instant::now();
    loop {
        let pids = ns_pids(ns);
        if pids.is_empty() || t.elapsed() > Duration::from_secs(10) {
            break;
        }
        for p in pids {
            let _ = Command::new("kill")
                .args(["-9", &p.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = ip(&["netns", "del", ns]);
}

/// `rh<pid>n<k>-<i>` (namespace), `rhb<pid>n<k>` (bridge), `rhv<pid>n<k>h<i>` (veth): the
/// pid of the run that made it, if `name` is one of ours.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix("rhb")
        .or_else(|| name.strip_prefix("rhv"))
        .or_else(|| name.strip_prefix("rh"))?;
    let (pid, tail) = rest.split_once('n')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = if name.starts_with("rhb") {
        digits(tail)
    } else if name.starts_with("rhv") {
        tail.split_once('h')
            .is_some_and(|(k, i)| digits(k) && digits(i))
    } else {
        tail.split_once('-')
            .is_some_and(|(k, i)| digits(k) && digits(i))
    };
    if ok && digits(pid) {
        pid.parse().ok()
    } else {
        None
    }
}

/// Namespaces, veths and bridges of runs that died without cleaning up (their pid is gone).
/// bench/drain.py uses the same names and the same sweep.
fn sweep_stale() {
    let dead = |name: &str| owner_pid(name).is_some_and(|p| !pid_alive(p));
    for line in String::from_utf8_lossy(&ip(&["netns", "list"]).stdout).lines() {
        if let Some(ns) = line.split_whitespace().next()
            && dead(ns)
        {
            say(&format!("sweeping stale namespace {ns}"));
            remove_ns(ns);
        }
    }
    for line in String::from_utf8_lossy(&ip(&["-o", "link", "show"]).stdout).lines() {
        // "7: rhv123n0h1@if2: <...>"
        if let Some(name) = line
            .split(": ")
            .nth(1)
            .map(|n| n.split('@').next().unwrap())
            && dead(name)
        {
            say(&format!("sweeping stale link {name}"));
            let _ = ip(&["link", "del", name]);
        }
    }
}

static NEXT_NET: AtomicU32 = AtomicU32::new(0);

/// A bridge and three namespaces, each with one address on it. Subnet
/// 10.(200 + pid % 50).(pid / 50 % 250).(8k)/29 for the k-th net of this process: private and
/// distinct between live runs (for pids below 12500) and within one run.
struct Net {
    bridge: String,
    ns: Vec<String>,
    veths: Vec<String>,
    addrs: Vec<String>,
}

impl Net {
    fn new() -> Result<Net, String> {
        sweep_stale();
        let pid = std::process::id();
        let k = NEXT_NET.fetch_add(1, Ordering::SeqCst);
        assert!(k < 32, "too many networks in one run");
        let prefix = format!("10.{}.{}", 200 + pid % 50, pid / 50 % 250);
        let base = k * 8;
        let mut net = Net {
            bridge: format!("rhb{pid}n{k}"),
            ns: Vec::new(),
            veths: Vec::new(),
            addrs: Vec::new(),
        };
        // Another live run must not use this subnet (a pid collision modulo 12500).
        let taken = String::from_utf8_lossy(&ip(&["-o", "addr", "show"]).stdout)
            .contains(&format!(" {prefix}.{}/", base + 6));
        if taken {
            return Err(format!("{prefix}.{base}/29 is already in use here"));
        }
        ip_ok(&["link", "add", &net.bridge, "type", "bridge"])?;
        ip_ok(&[
            "addr",
            "add",
            &format!("{prefix}.{}/29", base + 6),
            "dev",
            &net.bridge,
        ])?;
        ip_ok(&["link", "set", &net.bridge, "up"])?;
        for i in 1..=3 {
            let ns = format!("rh{pid}n{k}-{i}");
            let veth = format!("rhv{pid}n{k}h{i}");
            let addr = format!("{prefix}.{}", base + i);
            ip_ok(&["netns", "add", &ns])?;
            net.ns.push(ns.clone());
            ip_ok(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip_ok(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            net.veths.push(veth.clone());
            ip_ok(&["link", "set", &veth, "master", &net.bridge, "up"])?;
            ip_ok(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/29"),
                "dev",
                "eth0",
            ])?;
            ip_ok(&["-n", &ns, "link", "set", "eth0", "up"])?;
            net.addrs.push(addr);
        }
        // The bridge forwards once the ports are up; wait until each host answers ARP by
        // connecting to a closed port (refused = reachable).
        for a in &net.addrs {
            let reachable =
                wait_for(
                    Duration::from_secs(10),
                    || match std::net::TcpStream::connect_timeout(
                        &format!("{a}:9").parse().unwrap(),
                        Duration::from_millis(300),
                    ) {
                        Ok(_) => true,
                        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
                    },
                );
            if !reachable {
                return Err(format!("{a} is not reachable over {}", net.bridge));
            }
        }
        Ok(net)
    }

    /// Names of the processes running in host `i`'s namespace (0-based).
    fn comms(&self, i: usize) -> Vec<String> {
        let mut v: Vec<String> = ns_pids(&self.ns[i])
            .iter()
            .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok())
            .map(|c| c.trim().to_string())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in &self.ns {
            remove_ns(ns);
        }
        for v in &self.veths {
            // Usually gone with its namespace's peer.
            let _ = ip(&["link", "del", v]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// The deployment: h1, h2, h3 at the namespaces' addresses; a generated 3 × 1 cluster on
/// two ports per host; group g1 (master on h1, replicas on h2 and h3) with one Sentinel per
/// host. Fields drop in order: the processes die before the files go.
struct Hosts {
    net: Net,
    dir: tempfile::TempDir,
    file: PathBuf,
    /// The two cluster ports, the group port, the Sentinel port (the same on every host).
    cport: [u16; 2],
    gport: u16,
    sport: u16,
}

const HOSTS: [&str; 3] = ["h1", "h2", "h3"];

/// `None` (after printing why) when this machine cannot run the test.
fn hosts(test: &str, replicas: usize) -> Option<Hosts> {
    if let Some(why) = missing() {
        skip(test, &why);
        return None;
    }
    let net = match Net::new() {
        Ok(n) => n,
        Err(e) => {
            skip(test, &format!("cannot build the namespaces: {e}"));
            return None;
        }
    };
    let ports = free_ports(4);
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{PW}\n")).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let yaml = format!(
        "version: 1\nname: mh{pid}\nstate_dir: state\n\
         hosts:\n  - {{name: h1, address: {a1}}}\n  - {{name: h2, address: {a2}}}\n  - {{name: h3, address: {a3}}}\n\
         auth:\n  password_file: secret\n\
         defaults:\n  persistence:\n    appendonly: true\n    appendfsync: everysec\n\
         cluster:\n  shards: 3\n  replicas: {replicas}\n  ports: [{p0}, {p1}]\n  node_timeout: 2000ms\n\
         groups:\n  - name: g1\n    master: {{host: h1, port: {g}}}\n    replicas:\n\
         \x20     - {{host: h2, port: {g}}}\n      - {{host: h3, port: {g}}}\n\
         sentinel:\n  instances:\n    - {{host: h1, port: {s}}}\n    - {{host: h2, port: {s}}}\n\
         \x20   - {{host: h3, port: {s}}}\n  quorum: 2\n  down_after: 2000ms\n  failover_timeout: 10s\n",
        pid = std::process::id(),
        a1 = net.addrs[0],
        a2 = net.addrs[1],
        a3 = net.addrs[2],
        p0 = ports[0],
        p1 = ports[1],
        g = ports[2],
        s = ports[3],
    );
    let file = dir.path().join("topology.yaml");
    std::fs::write(&file, yaml).unwrap();
    let h = Hosts {
        net,
        dir,
        file,
        cport: [ports[0], ports[1]],
        gport: ports[2],
        sport: ports[3],
    };
    // The topology is valid as written (validate reads no password and touches nothing).
    let out = Command::new(bin())
        .arg("validate")
        .arg(&h.file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "validate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(h)
}

impl Drop for Hosts {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What the nodes and Sentinels saw: the last lines of every log.
            for host in HOSTS {
                let dir = self.state(host).join(host);
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
        // `net` drops next: every process in the namespaces is killed, then they go.
    }
}

impl Hosts {
    fn idx(host: &str) -> usize {
        HOSTS.iter().position(|&h| h == host).expect("host name")
    }

    fn addr(&self, host: &str) -> &str {
        &self.net.addrs[Self::idx(host)]
    }

    /// Host name of an address `ip:port` (or `ip:port@bus`).
    fn host_of(&self, addr: &str) -> &'static str {
        let ip = addr.rsplit_once(':').map_or(addr, |(ip, _)| ip);
        let i = self
            .net
            .addrs
            .iter()
            .position(|a| a == ip)
            .unwrap_or_else(|| panic!("{addr} is none of our hosts"));
        HOSTS[i]
    }

    /// Each host keeps its own state directory, as separate machines do.
    fn state(&self, host: &str) -> PathBuf {
        self.dir.path().join(host)
    }

    /// `ip netns exec <ns of host> redisctl --host HOST --state-dir DIR ARGS FILE TAIL`.
    fn cmd(&self, host: &str, args: &[&str], tail: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.net.ns[Self::idx(host)], &redisctl()])
            .args(["--host", host])
            .arg("--state-dir")
            .arg(self.state(host))
            .args(args)
            .arg(&self.file)
            .args(tail)
            .env_remove("REDISCTL_STATE_DIR")
            .env_remove("REDISCTL_HOST")
            .stdin(Stdio::null());
        c
    }

    fn on(&self, host: &str, args: &[&str], tail: &[&str]) -> Output {
        self.cmd(host, args, tail).output().expect("run redisctl")
    }

    fn ok(&self, host: &str, args: &[&str], tail: &[&str]) -> String {
        let what = format!("on {host}: redisctl {args:?} {tail:?}");
        common::stdout_of_success(self.on(host, args, tail), &what)
    }

    fn json(&self, host: &str, args: &[&str], tail: &[&str]) -> serde_json::Value {
        let mut a = vec!["--output", "json"];
        a.extend_from_slice(args);
        let text = self.ok(host, &a, tail);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"))
    }

    /// redis-cli from the root namespace, through the bridge.
    fn cli(&self, host: &str, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", self.addr(host), "-p", &port.to_string()])
            .args(["-a", PW, "--no-auth-warning"])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Each host's `apply` at the same time, as configuration management runs them.
    fn apply_everywhere(&self) -> Vec<String> {
        let t = Instant::now();
        let children: Vec<Child> = HOSTS
            .iter()
            .map(|host| {
                self.cmd(host, &["apply", "--yes"], &[])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn redisctl apply")
            })
            .collect();
        let mut outs = Vec::new();
        for (host, c) in HOSTS.iter().zip(children) {
            let out = c.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "apply on {host}: {text}");
            outs.push(text);
        }
        say(&format!(
            "3 concurrent applies took {:.1} s",
            t.elapsed().as_secs_f64()
        ));
        outs
    }

    /// `redis-cli --cluster check` from outside: clean, every slot covered.
    fn cluster_check(&self) -> String {
        let out = Command::new("redis-cli")
            .args(["-a", PW, "--no-auth-warning", "--cluster", "check"])
            .arg(format!("{}:{}", self.addr("h1"), self.cport[0]))
            .output()
            .expect("redis-cli --cluster check");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success()
                && text.contains("[OK] All 16384 slots covered.")
                && !text.contains("[ERR]")
                && !text.contains("[WARNING]"),
            "redis-cli --cluster check:\n{text}"
        );
        text
    }

    /// CLUSTER NODES as seen by host:port: (host, port, role, master id, id, slots?).
    fn cluster_nodes(&self, host: &str, port: u16) -> Vec<ClusterNode> {
        self.cli(host, port, &["CLUSTER", "NODES"])
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() < 8 {
                    return None;
                }
                let addr = f[1].split('@').next().unwrap();
                let (_, port) = addr.rsplit_once(':')?;
                let flags = f[2];
                Some(ClusterNode {
                    id: f[0].to_string(),
                    host: self.host_of(addr),
                    port: port.parse().ok()?,
                    master: flags.contains("master"),
                    failed: flags.contains("fail"),
                    master_id: f[3].to_string(),
                    has_slots: f.len() > 8,
                })
            })
            .collect()
    }

    /// Every shard's master and its replicas on different hosts, as h1:<port> sees it.
    fn assert_spread(&self) {
        let nodes = self.cluster_nodes("h1", self.cport[0]);
        assert_eq!(nodes.len(), 6, "{nodes:?}");
        for m in nodes.iter().filter(|n| n.master) {
            let reps: Vec<_> = nodes.iter().filter(|n| n.master_id == m.id).collect();
            assert_eq!(
                reps.len(),
                1,
                "master {}:{} replicas {reps:?}",
                m.host,
                m.port
            );
            for r in reps {
                assert_ne!(
                    r.host, m.host,
                    "replica {}:{} on its master's host",
                    r.host, r.port
                );
            }
        }
    }

    /// (host, port, first line of ROLE) of every cluster node and group member.
    fn roles(&self) -> Vec<(String, u16, String)> {
        let mut v = Vec::new();
        for host in HOSTS {
            for p in [self.cport[0], self.cport[1], self.gport] {
                let role = self.cli(host, p, &["ROLE"]);
                v.push((
                    host.to_string(),
                    p,
                    role.lines().next().unwrap_or("down").to_string(),
                ));
            }
        }
        v
    }

    /// The address each Sentinel gives for g1's master.
    fn sentinel_masters(&self) -> Vec<String> {
        HOSTS
            .iter()
            .map(|h| {
                self.cli(
                    h,
                    self.sport,
                    &["SENTINEL", "get-master-addr-by-name", "g1"],
                )
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(":")
            })
            .collect()
    }

    /// tools/consistency.py from outside, through the bridge.
    fn checker(&self, seconds: f64) -> Child {
        common::consistency_at(self.addr("h1"), self.cport[0], seconds, 5000, Some(PW))
    }

    fn judge(&self, count: usize) -> serde_json::Value {
        common::judge_at(self.addr("h1"), self.cport[0], count, Some(PW))
    }
}

#[derive(Debug)]
#[allow(dead_code)]
struct ClusterNode {
    id: String,
    host: &'static str,
    port: u16,
    master: bool,
    failed: bool,
    master_id: String,
    has_slots: bool,
}

/// The writer's verdict on `what`, which is done: it stops writing now (`stop_json`).
fn finish(child: Child, what: &str) -> serde_json::Value {
    let r = common::stop_json(child);
    say(&format!("consistency during {what}: {r}"));
    assert_eq!(r["lost"], 0, "{what} lost acknowledged writes: {r}");
    assert!(
        r["acknowledged"].as_u64().unwrap_or(0) > 0,
        "no write acknowledged during {what}: {r}"
    );
    r
}

#[test]
fn concurrent_applies_on_three_hosts_converge() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = Instant::now();
    let Some(h) = hosts("concurrent_applies_on_three_hosts_converge", 1) else {
        return;
    };
    let outs = h.apply_everywhere();
    // The non-coordinators say the cluster-level part is h1's.
    for out in &outs[1..] {
        assert!(out.contains("coordinator"), "{out}");
    }

    // Placement, as status reports it: member k of shard s on host (s + k) mod 3.
    let status = h.json("h1", &["status"], &[]);
    let mut placed: Vec<(String, String, String)> = status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["shard"].is_u64())
        .map(|n| {
            let node = n["node"].as_str().unwrap();
            assert_eq!(n["state"], "up", "{n}");
            assert_eq!(n["role"], n["preferred_role"], "{n}");
            (
                n["shard"].to_string(),
                n["role"].as_str().unwrap().to_string(),
                node.split(':').next().unwrap().to_string(),
            )
        })
        .collect();
    placed.sort();
    let want: Vec<(String, String, String)> = [
        ("1", "master", "h1"),
        ("1", "replica", "h2"),
        ("2", "master", "h2"),
        ("2", "replica", "h3"),
        ("3", "master", "h3"),
        ("3", "replica", "h1"),
    ]
    .iter()
    .map(|(s, r, h)| (s.to_string(), r.to_string(), h.to_string()))
    .collect();
    assert_eq!(placed, want, "placement");

    // Judged from outside.
    h.cluster_check();
    h.assert_spread();
    for host in HOSTS {
        for p in h.cport {
            assert!(
                h.cli(host, p, &["CLUSTER", "INFO"])
                    .contains("cluster_state:ok"),
                "{host}:{p} not ok"
            );
        }
    }
    let g1 = format!("{}:{}", h.addr("h1"), h.gport);
    assert_eq!(h.sentinel_masters(), vec![g1.clone(), g1.clone(), g1]);
    for host in ["h2", "h3"] {
        let info = h.cli(host, h.gport, &["INFO", "replication"]);
        assert!(info.contains("master_link_status:up"), "{host}: {info}");
    }
    let j = h.judge(2000);
    assert_eq!(j["lost"], 0, "{j}");
    assert!(j["nodes"].as_u64().unwrap_or(0) >= 3, "{j}");

    // Converged everywhere: nothing left to plan on any host, and a second round of
    // concurrent applies does nothing.
    for host in HOSTS {
        let out = h.on(host, &["plan", "--exit-code"], &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{host}: plan --exit-code: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let outs = h.apply_everywhere();
    for (host, out) in HOSTS.iter().zip(&outs) {
        // The coordinator says "Nothing to do"; the others "Applied 0 step(s)".
        assert!(
            out.contains("Nothing to do") || out.contains("Applied 0 step(s)"),
            "second apply on {host}: {out}"
        );
        assert!(
            !out.contains("] done:"),
            "second apply on {host} did something: {out}"
        );
    }
    h.ok("h1", &["check"], &[]);
    say(&format!(
        "concurrent_applies_on_three_hosts_converge: {:.1} s",
        t.elapsed().as_secs_f64()
    ));
}

#[test]
fn drain_and_undrain_a_host_under_load() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = Instant::now();
    let Some(h) = hosts("drain_and_undrain_a_host_under_load", 1) else {
        return;
    };
    h.apply_everywhere();
    h.cluster_check();
    let before = h.roles();
    let comms = h.net.comms(1);
    assert_eq!(
        comms,
        [
            "redis-sentinel",
            "redis-server",
            "redis-server",
            "redis-server"
        ],
        "h2 before drain"
    );

    // Drain h2, which leads shard 2, while writes flow.
    let load = h.checker(120.0);
    std::thread::sleep(Duration::from_millis(1500));
    let report = h.json("h2", &["drain"], &["h2"]);
    say(&format!("drain report: {report}"));
    assert_eq!(report["host"], "h2", "{report}");
    let moved = report["moved"].as_array().expect("moved");
    assert!(
        moved
            .iter()
            .any(|m| m["of"] == "cluster" && m["from"]["host"] == "h2" && m["to"]["host"] == "h3"),
        "shard 2 should move to its replica on h3: {report}"
    );
    assert_eq!(
        report["stopped"].as_array().expect("stopped").len(),
        4,
        "{report}"
    );
    assert!(report["secs"].as_f64().is_some(), "{report}");

    // h2's processes are gone; nothing answers there.
    assert!(
        wait_for(Duration::from_secs(5), || h.net.comms(1).is_empty()),
        "still running in h2's namespace: {:?}",
        h.net.comms(1)
    );
    for p in [h.cport[0], h.cport[1], h.gport, h.sport] {
        assert_eq!(h.cli("h2", p, &["PING"]).trim(), "", "h2:{p} still answers");
    }
    // No master on h2, for the cluster (as h1 and h3 see it) and the group; all slots served.
    for (host, port) in [("h1", h.cport[0]), ("h3", h.cport[1])] {
        let nodes = h.cluster_nodes(host, port);
        let on_h2: Vec<_> = nodes
            .iter()
            .filter(|n| n.host == "h2" && n.master)
            .collect();
        assert!(
            on_h2.is_empty(),
            "{host}:{port} sees a master on h2: {on_h2:?}"
        );
        assert!(
            h.cli(host, port, &["CLUSTER", "INFO"])
                .contains("cluster_state:ok"),
            "{host}:{port} not ok after the drain"
        );
    }
    let g1 = format!("{}:{}", h.addr("h1"), h.gport);
    let sm = h.sentinel_masters();
    assert_eq!(sm[0], g1);
    assert_eq!(sm[2], g1);
    finish(load, "drain");

    // Undrain under writes: instances back, roles as they were, nothing lost.
    let load = h.checker(120.0);
    std::thread::sleep(Duration::from_millis(1000));
    let report = h.json("h2", &["undrain"], &["h2"]);
    say(&format!("undrain report: {report}"));
    finish(load, "undrain");
    assert_eq!(h.net.comms(1), comms, "h2 after undrain");
    h.cluster_check();
    h.assert_spread();
    assert_eq!(h.roles(), before, "roles not restored");
    assert_eq!(h.sentinel_masters(), vec![g1.clone(), g1.clone(), g1]);
    for host in HOSTS {
        let out = h.on(host, &["plan", "--exit-code"], &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{host} after undrain: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    h.ok("h1", &["check"], &[]);
    say(&format!(
        "drain_and_undrain_a_host_under_load: {:.1} s",
        t.elapsed().as_secs_f64()
    ));
}

#[test]
fn drain_refusals() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = Instant::now();
    let name = "drain_refusals";
    {
        // A second host while h2 is drained.
        let Some(h) = hosts(name, 1) else {
            return;
        };
        h.apply_everywhere();
        h.ok("h2", &["drain"], &["h2"]);
        let h3 = h.net.comms(2);
        assert_eq!(h3.len(), 4, "{h3:?}");
        let out = h.on("h3", &["drain"], &["h3"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("refused"), "{err}");
        assert!(err.contains("host h2 has no instance answering"), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
        assert_eq!(h.net.comms(2), h3, "drain of h3 stopped something");
        for p in [h.cport[0], h.cport[1], h.gport, h.sport] {
            assert_eq!(h.cli("h3", p, &["PING"]).trim(), "PONG", "h3:{p}");
        }
        // h3 still leads shard 3 and shard 2 (taken over from h2): nothing moved.
        let masters_on_h3 = h
            .cluster_nodes("h1", h.cport[0])
            .iter()
            .filter(|n| n.host == "h3" && n.master && n.has_slots)
            .count();
        assert_eq!(masters_on_h3, 2);
        // The drained host's own apply refuses too.
        let out = h.on("h2", &["apply", "--yes"], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("is drained"), "{err}");
        assert!(h.net.comms(1).is_empty(), "{:?}", h.net.comms(1));
    }
    {
        // Nothing drained, but h2's shard has no replica anywhere: its loss breaks the
        // cluster, so the drain is refused unless slots may move.
        let Some(h) = hosts(name, 0) else {
            return;
        };
        h.apply_everywhere();
        h.cluster_check();
        let before = h.net.comms(1);
        let out = h.on("h2", &["drain"], &["h2"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("no in-sync replica"), "{err}");
        assert!(err.contains("--move-slots"), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
        assert_eq!(h.net.comms(1), before, "refused drain stopped something");
        assert!(!h.state("h2").join("drained").join("h2.json").exists());
        h.cluster_check();
        let out = h.on("h2", &["plan", "--exit-code"], &[]);
        assert_eq!(out.status.code(), Some(0), "a refused drain left changes");
    }
    {
        // Nothing drained, every shard has a replica elsewhere, but two of the three
        // Sentinels run on h2: without h2 one is left, and a failover needs 2.
        let Some(h) = hosts(name, 1) else {
            return;
        };
        let text = std::fs::read_to_string(&h.file).unwrap();
        let third = format!("- {{host: h3, port: {}}}", h.sport);
        assert!(text.contains(&third), "{text}");
        let text = text.replace(&third, &format!("- {{host: h2, port: {}}}", h.sport + 1));
        std::fs::write(&h.file, text).unwrap();
        h.apply_everywhere();
        let before = h.net.comms(1);
        assert_eq!(before.iter().filter(|c| *c == "redis-sentinel").count(), 2);
        let out = h.on("h2", &["drain"], &["h2"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("Sentinels: 1 of 3 would remain"), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
        assert!(!err.contains("no in-sync replica"), "{err}");
        assert_eq!(h.net.comms(1), before, "refused drain stopped something");
        h.cluster_check();
    }
    say(&format!("{name}: {:.1} s", t.elapsed().as_secs_f64()));
}

#[test]
fn stale_names_are_recognised() {
    assert_eq!(owner_pid("rh123n0-1"), Some(123));
    assert_eq!(owner_pid("rhb123n4"), Some(123));
    assert_eq!(owner_pid("rhv123n4h2"), Some(123));
    for other in [
        "rhbr0",
        "rh1",
        "rhv1",
        "rhproto-1",
        "rh12n-1",
        "rhb12nx",
        "eth0",
    ] {
        assert_eq!(owner_pid(other), None, "{other}");
    }
}

/// Repro of a redisctl bug found by bench/drain.py: `undrain`'s failback sends
/// `CLUSTER FAILOVER` as soon as the restarted replica has resynchronised, which with a small
/// data set is ~50 ms after it started — most likely before the other masters' cluster-bus
/// links to it are back. They log "Failover auth granted", the replica keeps "Waiting for
/// votes", Redis aborts the manual failover
/// after 5 s, the masters do not vote again for 2 × node_timeout, and redisctl (one
/// `CLUSTER FAILOVER`, then a wait) times out. Cluster only, so nothing else slows the
/// restart down; several drain/undrain cycles, each a few seconds apart (the vote gap).
#[test]
#[ignore = "regression test for a fixed race (failback votes lost right after the restart; \
            fixed by waiting for healthy bus links and retrying CLUSTER FAILOVER); meaningful \
            only with the fast binary: REDISCTL_MULTIHOST_BIN=target/release/redisctl \
            cargo test --test multihost -- --ignored (3 of 3 passed after the fix)"]
fn undrain_failback_right_after_restart() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(h) = hosts("undrain_failback_right_after_restart", 1) else {
        return;
    };
    let text = std::fs::read_to_string(&h.file).unwrap();
    let cluster_only = &text[..text.find("groups:").unwrap()];
    std::fs::write(&h.file, cluster_only).unwrap();
    h.apply_everywhere();
    h.cluster_check();
    for cycle in 1..=6 {
        std::thread::sleep(Duration::from_secs(5));
        h.ok("h2", &["drain"], &["h2"]);
        let out = h.on("h2", &["--timeout", "15", "undrain"], &["h2"]);
        assert!(
            out.status.success(),
            "cycle {cycle}: undrain failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    h.cluster_check();
}

/// The same bug in `restart --rolling`: a master on the host is failed over, restarted as a
/// replica, caught up within milliseconds, and failed back at once — the failback's votes
/// are lost the same way and the restart times out, leaving the shard's master on another
/// host (safe, but not what was asked).
#[test]
#[ignore = "regression test for a fixed race (see undrain_failback_right_after_restart); \
            run with REDISCTL_MULTIHOST_BIN=target/release/redisctl -- --ignored"]
fn rolling_restart_failback_right_after_restart() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(h) = hosts("rolling_restart_failback_right_after_restart", 1) else {
        return;
    };
    let text = std::fs::read_to_string(&h.file).unwrap();
    let cluster_only = &text[..text.find("groups:").unwrap()];
    std::fs::write(&h.file, cluster_only).unwrap();
    h.apply_everywhere();
    for cycle in 1..=4 {
        std::thread::sleep(Duration::from_secs(5));
        let out = h.on("h2", &["--timeout", "15", "restart", "--rolling"], &[]);
        assert!(
            out.status.success(),
            "cycle {cycle}: restart --rolling failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // h2 leads shard 2 again.
        let masters_on_h2 = h
            .cluster_nodes("h1", h.cport[0])
            .iter()
            .filter(|n| n.host == "h2" && n.master && n.has_slots)
            .count();
        assert_eq!(masters_on_h2, 1, "cycle {cycle}: roles changed");
    }
    h.cluster_check();
}

/// An agent on each host; the coordinator host (h1, first in `hosts`) crashes (every process
/// in its namespace killed, its agent too). A replica on h3 is wiped and killed: h3's agent
/// restarts it (host-level), h2's agent — now the first host with instances answering, so
/// the coordinator — meets it, makes it a replica of its master and forgets its old identity
/// (cluster-level). h3 runs no cluster-level step.
#[test]
fn agents_heal_cluster_level_while_the_coordinator_host_is_down() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = Instant::now();
    let Some(h) = hosts(
        "agents_heal_cluster_level_while_the_coordinator_host_is_down",
        1,
    ) else {
        return;
    };
    h.apply_everywhere();
    h.cluster_check();
    let log = |host: &str| h.dir.path().join(format!("agent-{host}.log"));
    let mut agents: Vec<Child> = HOSTS
        .iter()
        .map(|host| {
            h.cmd(host, &["agent"], &[])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log(host)).unwrap())
                .spawn()
                .expect("spawn redisctl agent")
        })
        .collect();
    let report = |host: &str| -> String {
        std::fs::read(h.state(host).join("agent.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["status"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let logs = || {
        HOSTS
            .iter()
            .map(|x| {
                format!(
                    "--- {x}\n{}",
                    std::fs::read_to_string(log(x)).unwrap_or_default()
                )
            })
            .collect::<String>()
    };
    assert!(
        wait_for(Duration::from_secs(60), || HOSTS
            .iter()
            .all(|x| report(x).starts_with("converged:"))),
        "agents not converged:\n{}",
        logs()
    );

    // h1 crashes: everything in its namespace, its agent included.
    for pid in ns_pids(&h.net.ns[0]) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = agents[0].wait();
    assert!(
        wait_for(Duration::from_secs(10), || h.net.comms(0).is_empty()),
        "h1 still runs {:?}",
        h.net.comms(0)
    );
    // The cluster fails shard 1 over to h2 by itself (node timeout 2 s).
    let (p0, p1) = (h.cport[0], h.cport[1]);
    assert!(
        wait_for(Duration::from_secs(30), || {
            h.cli("h2", p0, &["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
                && h.cli("h3", p0, &["CLUSTER", "INFO"])
                    .contains("cluster_state:ok")
        }),
        "the cluster did not recover from h1's crash"
    );

    // The replica on h3 (of h2's master): wiped and killed.
    let nodes = h.cluster_nodes("h2", p0);
    let replica = nodes
        .iter()
        .find(|n| {
            n.host == "h3"
                && !n.master
                && nodes.iter().any(|m| m.id == n.master_id && m.host == "h2")
        })
        .expect("a replica on h3 of a master on h2");
    let (port, old_id) = (replica.port, replica.id.clone());
    let master_port = nodes
        .iter()
        .find(|m| m.id == replica.master_id)
        .unwrap()
        .port;
    let keys = h.cli("h2", master_port, &["DBSIZE"]).trim().to_string();
    // Pause h3's agent so the wipe and the kill are seen together.
    h.ok("h3", &["pause"], &[]);
    assert!(wait_for(Duration::from_secs(30), || report("h3")
        .starts_with("paused")));
    let pid = std::fs::read_to_string(
        h.state("h3")
            .join("h3")
            .join(port.to_string())
            .join("redis.pid"),
    )
    .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid.trim().parse().unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(wait_for(Duration::from_secs(10), || h
        .cli("h3", port, &["PING"])
        .trim()
        .is_empty()));
    std::fs::remove_dir_all(h.state("h3").join("h3").join(port.to_string()).join("data")).unwrap();
    h.ok("h3", &["resume"], &[]);

    let healed = || {
        let info = h.cli("h3", port, &["INFO", "replication"]);
        info.contains("role:slave")
            && info.contains("master_link_status:up")
            && info.contains(&format!("master_port:{master_port}"))
            && h.cli("h3", port, &["DBSIZE"]).trim() == keys
            && h.cli("h3", port, &["CLUSTER", "MYID"]).trim() != old_id
            && !h.cli("h2", p1, &["CLUSTER", "NODES"]).contains(&old_id)
            && !h.cli("h2", p0, &["CLUSTER", "NODES"]).contains(&old_id)
    };
    assert!(
        wait_for(Duration::from_secs(120), healed),
        "the wiped replica h3:{port} was not healed while h1 is down:\n{}",
        logs()
    );
    // Who did what: cluster-level steps on h2 only; h3 started its own instance.
    let (l2, l3) = (
        std::fs::read_to_string(log("h2")).unwrap_or_default(),
        std::fs::read_to_string(log("h3")).unwrap_or_default(),
    );
    assert!(l3.contains(&format!("start h3:{port}")), "{}", logs());
    assert!(
        l2.contains(&format!("make h3:{port} a replica of")) || l2.contains("meet "),
        "{}",
        logs()
    );
    for step in ["make h3:", "meet ", "forget the old identity"] {
        assert!(
            !l3.lines()
                .any(|l| l.contains("event=step_done") && l.contains(step)),
            "h3 ran a cluster-level step ({step}):\n{}",
            logs()
        );
    }
    for a in agents.iter_mut().skip(1) {
        let _ = a.kill();
        let _ = a.wait();
    }
    say(&format!(
        "agents_heal_cluster_level_while_the_coordinator_host_is_down: {:.1} s",
        t.elapsed().as_secs_f64()
    ));
}
