//! Test harness: real redis-server instances on free ports in temp dirs, driven through the
//! real redisctl binary. Every deployment is destroyed on drop, also when a test fails.
#![allow(dead_code)]

pub mod tls;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_redisctl")
}

static NEXT: AtomicU16 = AtomicU16::new(0);

fn free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The port reservations of this process (see `reserve`), held until it exits.
static HELD: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());

/// A lock on `<tmp>/redisctl-test-ports/PORT`, or None when another live process holds it.
/// Test processes that run side by side (cargo nextest runs each test in a process of its
/// own, several at once) thus never take the same port between one's check and its
/// redis-server's bind; the kernel drops the lock when the process ends, however it ends.
fn reserve(port: u16) -> Option<std::fs::File> {
    let dir = std::env::temp_dir().join("redisctl-test-ports");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(port.to_string());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match file.try_lock() {
        Ok(()) => Some(file),
        Err(std::fs::TryLockError::WouldBlock) => None,
        Err(std::fs::TryLockError::Error(e)) => panic!("lock {}: {e}", path.display()),
    }
}

/// `n` ports whose bus ports (port + 10000) are free too, unique within this test binary and
/// reserved against other test processes (`reserve`). Ports come from 12000..22000, so bus
/// ports (22000..32000) never meet another test's port and everything stays below the
/// kernel's ephemeral range (32768..), where an outgoing connection could take a port between
/// the check and redis-server's bind.
pub fn free_ports(n: usize) -> Vec<u16> {
    let base = (std::process::id() % 200) as u16 * 40;
    loop {
        let start = base + NEXT.fetch_add(n as u16, Ordering::SeqCst);
        let ports: Vec<u16> = (start..start + n as u16)
            .map(|p| 12000 + p % 10000)
            .collect();
        let Some(locks) = ports
            .iter()
            .map(|&p| reserve(p))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        if ports.iter().all(|&p| free(p) && free(p + 10000)) {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).extend(locks);
            return ports;
        }
    }
}

pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
    pub ports: Vec<u16>,
}

impl Deployment {
    /// A 3-shard × 1-replica cluster on free loopback ports.
    pub fn cluster(extra: &str) -> Deployment {
        Self::with_shards(3, 1, extra)
    }

    pub fn with_shards(shards: usize, replicas: usize, extra: &str) -> Deployment {
        Self::custom(
            shards,
            replicas,
            "    appendonly: true\n    appendfsync: everysec\n",
            2000,
            extra,
        )
    }

    /// A cluster with the given defaults' persistence YAML and node timeout (ms).
    /// A cluster over exactly these ports (generated placement takes them in order).
    pub fn with_ports(shards: usize, replicas: usize, ports: &[u16]) -> Deployment {
        Self::build(
            shards,
            replicas,
            "    appendonly: false\n",
            5000,
            "",
            ports.to_vec(),
        )
    }

    pub fn custom(
        shards: usize,
        replicas: usize,
        persistence: &str,
        node_timeout: u64,
        extra: &str,
    ) -> Deployment {
        let ports = free_ports(shards * (replicas + 1));
        Self::build(shards, replicas, persistence, node_timeout, extra, ports)
    }

    fn build(
        shards: usize,
        replicas: usize,
        persistence: &str,
        node_timeout: u64,
        extra: &str,
        ports: Vec<u16>,
    ) -> Deployment {
        let dir = tempfile::tempdir().expect("tempdir");
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        let yaml = format!(
            "version: 1\nname: t{}\nstate_dir: state\nhosts:\n  - name: local\n    address: 127.0.0.1\n\
             defaults:\n  persistence:\n{persistence}{extra}\
             cluster:\n  shards: {shards}\n  replicas: {replicas}\n  ports: [{}]\n  node_timeout: {node_timeout}\n",
            ports[0],
            list.join(", ")
        );
        let file = dir.path().join("topology.yaml");
        std::fs::write(&file, yaml).expect("write topology");
        Deployment { dir, file, ports }
    }

    /// The seeds' Sentinel layout on free ports: master + 2 replicas, 3 Sentinels (quorum 2,
    /// down-after 1 s), password auth. `persistence` is the YAML of the defaults' persistence.
    pub fn sentinel(persistence: &str) -> Deployment {
        Self::sentinel_with(persistence, 1000)
    }

    /// `sentinel` with the Sentinels' down-after (ms).
    pub fn sentinel_with(persistence: &str, down_after_ms: u64) -> Deployment {
        let ports = free_ports(6);
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "t0p-s3cret\n").unwrap();
        // Owner-only, or redisctl refuses it.
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let yaml = format!(
            "version: 1\nname: s{p0}\nstate_dir: state\nhosts:\n  - name: local\n    address: 127.0.0.1\n\
             auth:\n  password_file: secret\n\
             defaults:\n  persistence:\n{persistence}\
             groups:\n  - name: mymaster\n    master: {{host: local, port: {p0}}}\n    replicas:\n\
             \x20     - {{host: local, port: {p1}}}\n      - {{host: local, port: {p2}}}\n\
             sentinel:\n  instances:\n    - {{host: local, port: {s0}}}\n    - {{host: local, port: {s1}}}\n\
             \x20   - {{host: local, port: {s2}}}\n  quorum: 2\n  down_after: {down_after_ms}ms\n  failover_timeout: 10s\n",
            p0 = ports[0],
            p1 = ports[1],
            p2 = ports[2],
            s0 = ports[3],
            s1 = ports[4],
            s2 = ports[5],
        );
        let file = dir.path().join("topology.yaml");
        std::fs::write(&file, yaml).expect("write topology");
        Deployment { dir, file, ports }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// `redisctl ARGS FILE TAIL` (for commands with operands after the file).
    pub fn run_with(&self, args: &[&str], tail: &[&str]) -> Output {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .arg(&self.file)
            .args(tail)
            .env_remove("REDISCTL_STATE_DIR");
        cmd.output().expect("run redisctl")
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        stdout_of_success(self.run(args), &format!("redisctl {args:?}"))
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--output", "json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{out}"))
    }

    pub fn pid_file(&self, port: u16) -> PathBuf {
        self.state()
            .join("local")
            .join(port.to_string())
            .join("redis.pid")
    }

    pub fn pid(&self, port: u16) -> Option<i32> {
        std::fs::read_to_string(self.pid_file(port))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// `kill -9` the instance on `port` and wait until it is gone; its pid.
    pub fn kill_9(&self, port: u16) -> i32 {
        let pid = self
            .pid(port)
            .unwrap_or_else(|| panic!("no pid file for {port}"));
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -9 {pid}");
        assert!(
            wait_for(Duration::from_secs(5), || !alive(pid)),
            "{pid} survived kill -9"
        );
        pid
    }

    pub fn pids(&self) -> Vec<i32> {
        self.ports.iter().filter_map(|&p| self.pid(p)).collect()
    }
}

impl Deployment {
    /// The last `n` lines of every instance's log (process supervisor), for failure messages.
    pub fn log_tails(&self, n: usize) -> String {
        let mut out = String::new();
        let mut stack = vec![self.state()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|f| f == "redis.log") {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    out.push_str(&format!("==> {} <==\n", p.display()));
                    for l in &lines[lines.len().saturating_sub(n)..] {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let pids = self.pids();
        let _ = self.run(&["destroy", "--yes"]);
        for pid in pids {
            if alive(pid) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// The stdout of a command that must have succeeded; otherwise fail naming `what`, with
/// everything it printed.
pub fn stdout_of_success(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !matches!(
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next()),
            Some("Z")
        ),
        Err(_) => false,
    }
}

pub const PASSWORD: &str = "t0p-s3cret";

pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .env("REDISCLI_AUTH", PASSWORD)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn info_field(port: u16, field: &str) -> Option<String> {
    redis_cli(port, &["INFO", "replication"])
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{field}:"))
                .map(str::to_string)
        })
}

/// Poll `cond` every 50 ms up to `limit`.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

pub fn cluster_check(port: u16) -> (bool, String) {
    let out = Command::new("redis-cli")
        .args(["--cluster", "check", &format!("127.0.0.1:{port}")])
        .output()
        .expect("redis-cli --cluster check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.success() && !text.contains("[ERR]") && !text.contains("[WARNING]"),
        text,
    )
}

pub fn judge(port: u16, count: usize) -> serde_json::Value {
    judge_at("127.0.0.1", port, count, None)
}

/// tests/judge.py against any address, with the cluster's password if it has one.
pub fn judge_at(host: &str, port: u16, count: usize, password: Option<&str>) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/judge.py");
    let out = Command::new("python3")
        .arg(script)
        .args([host, &port.to_string(), &count.to_string()])
        .args(password)
        .output()
        .expect("python3 judge.py");
    assert!(
        out.status.success(),
        "judge failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("judge JSON")
}

impl Deployment {
    /// Rewrite the topology's shard count (generated placement appends new shards).
    pub fn set_shards(&self, n: usize) {
        let text = std::fs::read_to_string(&self.file).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("shards:") {
                    format!("  shards: {n}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&self.file, text + "\n").unwrap();
    }
}

/// tools/consistency.py in the background: INCR counters through a cluster client.
pub fn consistency(port: u16, seconds: f64, keys: usize) -> std::process::Child {
    consistency_at("127.0.0.1", port, seconds, keys, None)
}

/// tools/consistency.py against any address, with the cluster's password if it has one.
pub fn consistency_at(
    host: &str,
    port: u16,
    seconds: f64,
    keys: usize,
    password: Option<&str>,
) -> std::process::Child {
    consistency_with(host, port, seconds, keys, password, &[])
}

/// tools/consistency.py with extra options (`--tls-ca …`, tls::Certs::writer_args).
pub fn consistency_with(
    host: &str,
    port: u16,
    seconds: f64,
    keys: usize,
    password: Option<&str>,
    extra: &[String],
) -> std::process::Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/consistency.py");
    Command::new("python3")
        .arg(script)
        .args([
            host,
            &port.to_string(),
            &seconds.to_string(),
            &keys.to_string(),
        ])
        .args(password)
        .args(extra)
        .arg("--stop-on-eof")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 tools/consistency.py")
}

/// The judge's verdict on a writer's summary (tools/consistency.py, sentinel_writer.py): no
/// acknowledged write lost, and at least `min_acked` acknowledged (the writer really ran
/// through what the test did). Prints the summary.
pub fn assert_nothing_lost(w: &serde_json::Value, min_acked: u64) {
    say(&format!("writer: {w}"));
    assert_eq!(w["lost"], 0, "acknowledged writes lost: {w}");
    assert!(
        w["acknowledged"].as_u64().unwrap_or(0) > min_acked,
        "too few acknowledged writes to judge: {w}"
    );
}

/// A writer's verdict once it has written for all of its SECONDS.
pub fn finish_json(mut child: std::process::Child) -> serde_json::Value {
    // The writers run with --stop-on-eof: their stdin stays open until they end by themselves.
    let stdin = child.stdin.take();
    let verdict = stop_json(child);
    drop(stdin);
    verdict
}

/// A writer's verdict now: the test is done, so the writer (spawned with --stop-on-eof, as
/// `consistency*` and `sentinel_writer*` do) stops writing when its stdin closes, reads every
/// acknowledged write back and judges. What it covered is everything the test did since it
/// started; SECONDS only bounds it.
pub fn stop_json(child: std::process::Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    serde_json::from_str(&text).unwrap_or_else(|_| {
        panic!(
            "no JSON from checker: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub fn dbsize_sum(ports: &[u16]) -> u64 {
    ports
        .iter()
        .filter(|&&p| info_field(p, "role").as_deref() == Some("master"))
        .map(|&p| redis_cli(p, &["DBSIZE"]).trim().parse::<u64>().unwrap_or(0))
        .sum()
}

/// Printed past the test harness's capture, so a skip is visible in a normal run.
pub fn say(msg: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// A test that cannot run here says why and passes, except where it must run (CI sets
/// REDISCTL_REQUIRE_SYSTEMD_E2E=1 after installing everything): there a skip is a failure.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("REDISCTL_REQUIRE_SYSTEMD_E2E").is_some_and(|v| v == "1") {
        panic!("{test} must run here (REDISCTL_REQUIRE_SYSTEMD_E2E=1) but cannot: {why}");
    }
    say(&format!("SKIPPED {test}: {why}"));
}

/// A command is on PATH.
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// tests/sentinel_writer.py in the background: writes through redis-py's Sentinel client to
/// whichever master the deployment's Sentinels (ports[3..]) name, counting acknowledged
/// writes; `finish_json` collects its verdict.
pub fn sentinel_writer(d: &Deployment, seconds: f64) -> std::process::Child {
    sentinel_writer_with(d, seconds, &[])
}

/// tests/sentinel_writer.py with extra options (`--tls-ca …`, tls::Certs::writer_args).
pub fn sentinel_writer_with(d: &Deployment, seconds: f64, extra: &[String]) -> std::process::Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sentinel_writer.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(PASSWORD).arg(seconds.to_string());
    for p in &d.ports[3..] {
        cmd.arg(p.to_string());
    }
    cmd.args(extra).arg("--stop-on-eof");
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3")
}

/// The master of group `mymaster` as a majority of the Sentinels (ports[3..]) name it.
pub fn sentinel_master_port(d: &Deployment) -> Option<u16> {
    let mut votes: std::collections::BTreeMap<u16, usize> = Default::default();
    for &s in &d.ports[3..] {
        let out = redis_cli(s, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]);
        if let Some(p) = out.lines().nth(1).and_then(|l| l.trim().parse().ok()) {
            *votes.entry(p).or_default() += 1;
        }
    }
    votes
        .into_iter()
        .find(|(_, n)| n * 2 > d.ports.len() - 3)
        .map(|(p, _)| p)
}

/// The number of writes a writer started with `--progress FILE` has had acknowledged so far
/// (0 before its first report).
pub fn acked_so_far(progress: &Path) -> u64 {
    std::fs::read_to_string(progress)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// The writers' options that make them report to `progress` (see `acked_so_far`).
pub fn progress_args(progress: &Path) -> Vec<String> {
    vec!["--progress".into(), progress.display().to_string()]
}

/// Acknowledged writes that show a writer is writing (before an operation) or writing again
/// (after one). A cluster writer's keys are spread over every shard and its writes are
/// sequential, so these many in a row also mean that every shard serves writes.
pub const FLOWING: u64 = 300;

/// Wait until the writer reporting to `progress` has had more than `n` writes acknowledged;
/// its count then. Fails naming `what` after 30 s.
pub fn await_acked(progress: &Path, n: u64, what: &str) -> u64 {
    let limit = Duration::from_secs(30);
    assert!(
        wait_for(limit, || acked_so_far(progress) > n),
        "{what}: the writer had no more than {n} writes acknowledged within {limit:?}"
    );
    acked_so_far(progress)
}
