//! The appliance on a real systemd: the .deb built from this tree is installed in a booted
//! Debian bookworm container (systemd-nspawn, its own network namespace) next to Debian's
//! redis-server, and `redisctl apply` runs there with the systemd supervisor. Also: the
//! .rpm carries the same payload as the .deb.
//!
//! Needs root, systemd-nspawn, debootstrap, ip, nsenter and cargo-deb (scripts/deps.sh
//! installs them); without them each test prints why it skipped and passes. The root file
//! system is built once (tests/systemd/build-root.sh) and cached in target/nspawn-root;
//! every run boots it through an overlay that is thrown away, with guards that stop the
//! container and remove the mount and the namespace also when a check fails.
//! `REDISCTL_SKIP_SYSTEMD_E2E=1` skips the container test.

mod common;

use common::{FLOWING, await_acked, have, progress_args, say, skip};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const CLUSTER: &str = "/usr/share/doc/redisctl/examples/local-cluster.yaml";
const SENTINEL: &str = "/usr/share/doc/redisctl/examples/local-sentinel.yaml";
const PORTS: [u16; 6] = [7000, 7001, 7002, 7003, 7004, 7005];

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn cargo_has(sub: &str) -> bool {
    Command::new(cargo())
        .args([sub, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

/// The .deb and .rpm of the binary this test run built (not a release build: the packaging
/// is under test, not the optimiser). The binary is staged as `<stage>/release/redisctl`,
/// the path both tools read with CARGO_TARGET_DIR=<stage>.
struct Packages {
    dir: PathBuf,
    deb: PathBuf,
}

fn packages() -> &'static Result<Packages, String> {
    static PACKAGES: OnceLock<Result<Packages, String>> = OnceLock::new();
    PACKAGES.get_or_init(build_packages)
}

fn build_packages() -> Result<Packages, String> {
    if !cargo_has("deb") {
        return Err("cargo-deb is not installed (scripts/deps.sh --tests installs it)".into());
    }
    let stage = Path::new(env!("CARGO_TARGET_TMPDIR")).join("packages");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(stage.join("release")).map_err(|e| e.to_string())?;
    let staged = stage.join("release/redisctl");
    std::fs::copy(env!("CARGO_BIN_EXE_redisctl"), &staged).map_err(|e| e.to_string())?;
    // Without the debug information, which cargo-deb strips anyway: cargo-generate-rpm
    // compressed the 140 MB debug build for 80 s (15 s stripped). Unstripped if strip fails.
    let _ = Command::new("strip")
        .arg("--strip-unneeded")
        .arg(&staged)
        .status();
    let manifest = env!("CARGO_MANIFEST_DIR");
    // The .rpm takes gzipped man pages from <target>/release/man, as packaging/build.sh
    // writes them (cargo-deb compresses its own).
    let man_gz = stage.join("release/man");
    std::fs::create_dir_all(&man_gz).map_err(|e| e.to_string())?;
    for page in std::fs::read_dir(Path::new(manifest).join("man"))
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let name = page.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".1") || name.ends_with(".5")) {
            continue;
        }
        let out = Command::new("gzip")
            .args(["-9n", "-c"])
            .arg(page.path())
            .output()
            .map_err(|e| e.to_string())?;
        std::fs::write(man_gz.join(format!("{name}.gz")), out.stdout).map_err(|e| e.to_string())?;
    }
    let out_dir = stage.to_str().ok_or("non-UTF-8 target dir")?;
    cargo_tool(&stage, &["deb", "--no-build", "--fast", "-o", out_dir])?;
    let deb = find(&stage, ".deb").ok_or("cargo deb wrote no .deb")?;
    Ok(Packages { dir: stage, deb })
}

/// The .rpm of the same staged payload, None without cargo-generate-rpm. Only the payload
/// comparison needs it, so the container test does not wait for it.
fn rpm(pkgs: &Packages) -> Result<Option<PathBuf>, String> {
    if !cargo_has("generate-rpm") {
        return Ok(None);
    }
    let out_dir = pkgs.dir.to_str().ok_or("non-UTF-8 target dir")?;
    cargo_tool(&pkgs.dir, &["generate-rpm", "-o", out_dir])?;
    Ok(find(&pkgs.dir, ".rpm"))
}

/// `cargo ARGS` in this tree with CARGO_TARGET_DIR=`stage` (where the binary is staged).
fn cargo_tool(stage: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cargo())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", stage)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn find(dir: &Path, ext: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(ext))
}

/// A booted container: an overlay over the cached root (so reboots keep their data), a
/// network namespace of its own, systemd as its PID 1. Dropping it powers it off and
/// removes the overlay, the mount and the namespace.
struct Container {
    name: String,
    work: PathBuf,
    merged: PathBuf,
    artifacts: PathBuf,
    mounted: bool,
    netns: bool,
    nspawn: Option<Child>,
    boots: u32,
}

/// Remove what an earlier run killed before its guards ran (SIGKILL, Ctrl-C) left behind:
/// overlays and namespaces named after a process that is gone, when no container still
/// runs from them.
fn sweep_stale() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("rctl-e2e-") else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let merged = entry.path().join("merged");
        let in_use = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|p| {
                std::fs::read(p.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*merged.to_string_lossy()))
            });
        if in_use {
            say(&format!(
                "note: a container still runs from {}; left alone",
                merged.display()
            ));
            continue;
        }
        let _ = Command::new("umount").arg(&merged).status();
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

impl Container {
    fn new(root: &Path, artifacts: &Path) -> Container {
        sweep_stale();
        let name = format!("rctl-e2e-{}", std::process::id());
        let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&name);
        let _ = std::fs::remove_dir_all(&work);
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir_all(work.join(d)).unwrap();
        }
        let mut c = Container {
            merged: work.join("merged"),
            name,
            work,
            artifacts: artifacts.to_path_buf(),
            mounted: false,
            netns: false,
            nspawn: None,
            boots: 0,
        };
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            root.display(),
            c.work.join("upper").display(),
            c.work.join("work").display()
        );
        run(Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(&c.merged));
        c.mounted = true;
        run(Command::new("ip").args(["netns", "add", &c.name]));
        c.netns = true;
        run(Command::new("ip").args(["-n", &c.name, "link", "set", "lo", "up"]));
        c
    }

    fn boot(&mut self) {
        self.boots += 1;
        let console =
            std::fs::File::create(self.work.join(format!("console{}.log", self.boots))).unwrap();
        let child = Command::new("systemd-nspawn")
            .args(["--register=no", "--keep-unit", "--boot", "--quiet"])
            .arg("-D")
            .arg(&self.merged)
            .arg(format!("--machine={}", self.name))
            .arg(format!("--network-namespace-path=/run/netns/{}", self.name))
            .arg(format!(
                "--bind-ro={}:/mnt/artifacts",
                self.artifacts.display()
            ))
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .spawn()
            .expect("start systemd-nspawn");
        self.nspawn = Some(child);
        let t = Instant::now();
        while self.leader().is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the container's systemd did not appear; see {}",
                self.work.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Until PID 1 listens on its socket systemctl cannot even ask; then --wait waits.
        let mut state = String::new();
        while t.elapsed() < Duration::from_secs(120) {
            let out = self.sh("timeout 120 systemctl is-system-running --wait");
            state = format!("{}{}", text(&out), String::from_utf8_lossy(&out.stderr));
            if matches!(text(&out).trim(), "running" | "degraded") {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "boot #{} ended {state:?}; failed units:\n{}",
            self.boots,
            text(&self.sh("systemctl --failed --no-pager"))
        );
    }

    /// The container's PID 1 (seen from here): the systemd below our nspawn.
    fn leader(&self) -> Option<u32> {
        let root = self.nspawn.as_ref()?.id();
        let mut queue = vec![root];
        while let Some(pid) = queue.pop() {
            for entry in std::fs::read_dir("/proc").ok()?.flatten() {
                let Some(child) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                    continue;
                };
                let Some((comm, rest)) = stat.split_once(") ") else {
                    continue;
                };
                let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
                if ppid == Some(pid) {
                    if comm.ends_with("(systemd") {
                        return Some(child);
                    }
                    queue.push(child);
                }
            }
        }
        None
    }

    /// Run a shell command inside (all of the container's namespaces).
    fn sh(&self, cmd: &str) -> Output {
        let leader = self.leader().expect("container is running");
        Command::new("nsenter")
            .args(["-t", &leader.to_string(), "-a", "--", "/bin/sh", "-c", cmd])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// Like `sh`, and the command must succeed.
    fn ok(&self, cmd: &str) -> String {
        let out = self.sh(cmd);
        assert!(
            out.status.success(),
            "`{cmd}` failed in the container ({}):\n{}{}",
            out.status,
            text(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        text(&out)
    }

    /// `systemctl show` of one unit as (property, value) lookups.
    fn show(&self, unit: &str) -> std::collections::HashMap<String, String> {
        text(&self.sh(&format!(
            "systemctl show -p ActiveState,SubState,MainPID,NRestarts,StatusText,UnitFileState,User {unit}"
        )))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Wait for `done` (checked every 200 ms) up to `secs`.
    fn wait(&self, what: &str, secs: u64, mut done: impl FnMut(&Container) -> bool) {
        let t = Instant::now();
        while !done(self) {
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "{what}: not within {secs} s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_exit(&mut self, secs: u64) -> bool {
        let Some(child) = self.nspawn.as_mut() else {
            return true;
        };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(secs) {
            if let Ok(Some(_)) = child.try_wait() {
                self.nspawn = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// `systemctl reboot` inside; nspawn exits (nothing restarts it here), boot it again
    /// on the same overlay.
    fn reboot(&mut self) {
        let _ = self.sh("systemctl reboot");
        assert!(
            self.wait_exit(90),
            "the container did not shut down to reboot"
        );
        self.boot();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            say(&format!(
                "systemd e2e failed; last journal lines of the container:\n{}",
                self.leader()
                    .map(|_| text(&self.sh("journalctl -n 60 --no-pager")))
                    .unwrap_or_default()
            ));
        }
        if self.nspawn.is_some() {
            if self.leader().is_some() {
                let _ = self.sh("systemctl poweroff");
            }
            if !self.wait_exit(30) {
                // Killing the container's PID 1 ends everything in its PID namespace.
                if let Some(pid) = self.leader() {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
                if let Some(child) = self.nspawn.as_mut() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        if self.mounted {
            let ok = Command::new("umount")
                .arg(&self.merged)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&self.merged).status();
            }
        }
        if self.netns {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.name])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Why the container test cannot run here, if it cannot.
fn container_skip_reason() -> Option<String> {
    if std::env::var_os("REDISCTL_SKIP_SYSTEMD_E2E").is_some() {
        return Some("REDISCTL_SKIP_SYSTEMD_E2E is set".into());
    }
    if !nix::unistd::geteuid().is_root() {
        return Some("not root (containers, mounts and network namespaces need root)".into());
    }
    for cmd in ["systemd-nspawn", "debootstrap", "ip", "nsenter", "mount"] {
        if !have(cmd) {
            return Some(format!(
                "{cmd} is missing (apt-get install systemd-container debootstrap iproute2)"
            ));
        }
    }
    None
}

/// The overall exposure `systemd-analyze security UNIT` prints (lower is better).
fn exposure(c: &Container, unit: &str) -> f64 {
    let out = c.ok(&format!("systemd-analyze security --no-pager {unit}"));
    out.lines()
        .find_map(|l| {
            let rest = l.split_once("Overall exposure level for ")?.1;
            rest.split_once(": ")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no exposure level for {unit}:\n{out}"))
}

/// An RDB-only cluster (`save 3600 1`, no AOF: a killed master's disk is old) under a writer:
/// `kill -9` of a master with nobody running `apply`. systemd restarts the unit after
/// `RestartSec=1s`, long before `node_timeout`; the unit's start hook (`redisctl unit-start`)
/// makes the replica take over first, so the old master comes back as its replica and the
/// writer's acknowledged increments all survive (tools/consistency.py, from the host, in the
/// container's network namespace).
fn crash_safe_restart_by_systemd(c: &Container) {
    const CRASH: &str = "/etc/redisctl/crash.yaml";
    c.ok(&format!(
        "mkdir -p /etc/redisctl && cat > {CRASH} <<'EOF'\n\
         version: 1\nname: crash\nhosts:\n  - name: local\n    address: 127.0.0.1\n\
         defaults:\n  persistence:\n    save: [\"3600 1\"]\n    appendonly: false\n\
         cluster:\n  shards: 3\n  replicas: 1\n  ports: [7100, 7101, 7102, 7103, 7104, 7105]\n  node_timeout: 5000\n\
         EOF"
    ));
    c.ok(&format!("redisctl apply {CRASH} --yes"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/consistency.py");
    let progress = c.work.join("writer.progress");
    // It writes until the crash is healed: its stdin closes then (wait_with_output).
    let writer = Command::new("ip")
        .args(["netns", "exec", &c.name, "python3"])
        .arg(&script)
        .args(["127.0.0.1", "7105", "120", "2000", "--stop-on-eof"])
        .args(progress_args(&progress))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 consistency.py");
    await_acked(&progress, FLOWING, "before the kill");
    let id = c.ok("redis-cli -p 7100 cluster myid");
    let before = c.show("redis@7100");
    c.ok(&format!("kill -9 {}", before["MainPID"]));
    c.wait("redis@7100 restarted by systemd", 60, |c| {
        let s = c.show("redis@7100");
        s["NRestarts"] != before["NRestarts"] && s["ActiveState"] == "active"
    });
    c.wait("7101 serves shard 1, 7100 is its linked replica", 60, |c| {
        let r = |port: u16, f: &str| {
            text(&c.sh(&format!("redis-cli -p {port} info replication")))
                .lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{f}:")).map(str::to_string))
                .unwrap_or_default()
        };
        r(7101, "role") == "master"
            && r(7100, "role") == "slave"
            && r(7100, "master_port") == "7101"
            && r(7100, "master_link_status") == "up"
    });
    assert_eq!(c.ok("redis-cli -p 7100 cluster myid"), id);
    let out = writer.wait_with_output().unwrap();
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no verdict from the writer: {}{}",
            text(&out),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    say(&format!("crash under systemd: writer {verdict}"));
    assert_eq!(verdict["lost"], 0, "acknowledged writes lost: {verdict}");
    let journal = c.ok("journalctl -u redis@7100 --no-pager -o cat");
    assert!(
        journal.contains("redisctl unit-start: local:7100 is down while it still serves its slots"),
        "{journal}"
    );
    c.wait("cluster_state:ok after the crash", 30, |c| {
        cluster_ok(c, 7100)
    });
    c.ok(&format!("redisctl destroy {CRASH} --yes"));
}

/// Under systemd a data node's secrets.conf stays root's (0600) in the state directory: the
/// unit loads it as a credential (LoadCredential=) and redis-server reads it from its private
/// credentials directory (`--include %d/secrets.conf`). The password is in no argv, no
/// environment, no journal line and no file the service's user can read, except the
/// Sentinels' own config (Sentinel rewrites it, auth-pass included: docs/security.md).
fn secrets_are_credentials(c: &Container) {
    let pw = "example-only-change-me";
    let dir = "/var/lib/redisctl/local-sentinel/local";
    for port in [6379, 6380, 6381] {
        assert_eq!(
            c.ok(&format!("stat -c '%a %U:%G' {dir}/{port}/secrets.conf"))
                .trim(),
            "600 root:root",
            "{port}"
        );
        let read = c.sh(&format!(
            "runuser -u redis -- cat {dir}/{port}/secrets.conf"
        ));
        assert!(
            !read.status.success(),
            "{port}: the redis user reads secrets.conf"
        );
        let pid = c.show(&format!("redis@{port}"))["MainPID"].clone();
        // redis-server overwrites its argv with its title; the credential is where the
        // unit's ExecStart names it (%d).
        c.ok(&format!(
            "test -s /run/credentials/redis@{port}.service/secrets.conf"
        ));
        let leaks = c.sh(&format!(
            "grep -a -c -e {pw} /proc/{pid}/cmdline /proc/{pid}/environ {dir}/{port}/redis.conf; journalctl -u redis@{port} --no-pager | grep -c -e {pw}"
        ));
        assert!(
            text(&leaks).lines().all(|l| l.ends_with(":0") || l == "0"),
            "{port}: {}",
            text(&leaks)
        );
        // The password is in force.
        assert!(
            c.ok(&format!("redis-cli -p {port} ping"))
                .contains("NOAUTH")
        );
    }
    assert_eq!(
        c.ok(&format!("stat -c '%a %U' {dir}/26379/sentinel.conf"))
            .trim(),
        "600 redis"
    );
}

fn cluster_ok(c: &Container, port: u16) -> bool {
    text(&c.sh(&format!("redis-cli -p {port} cluster info"))).contains("cluster_state:ok")
}

#[test]
fn appliance_on_real_systemd() {
    if let Some(why) = container_skip_reason() {
        skip("appliance_on_real_systemd", &why);
        return;
    }
    let pkgs = match packages() {
        Ok(p) => p,
        Err(why) => {
            skip("appliance_on_real_systemd", why);
            return;
        }
    };
    let root = target_dir().join("nspawn-root");
    run(Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/systemd/build-root.sh"
    ))
    .arg(&root));
    let t0 = Instant::now();
    let mut c = Container::new(&root, &pkgs.dir);
    c.boot();
    let deb = format!(
        "/mnt/artifacts/{}",
        pkgs.deb.file_name().unwrap().to_string_lossy()
    );

    // Install next to Debian's own redis-server (active on 6379) and redis-sentinel (26379).
    c.ok(&format!("dpkg -i {deb}"));
    assert_eq!(
        c.ok("stat -c '%a %U:%G' /var/lib/redisctl").trim(),
        "750 redis:redis"
    );
    assert_eq!(c.ok("systemctl is-active redis-server").trim(), "active");

    // Coexistence: the Sentinel example wants 6379 and 26379. Refused, nothing changed.
    let refused = c.sh(&format!("redisctl apply {SENTINEL} --yes"));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains("redis-server.service")
            && err.contains("systemctl disable --now redis-server"),
        "{err}"
    );
    assert!(err.contains("redis-sentinel.service"), "{err}");
    c.ok("test ! -e /etc/systemd/system/redis@6379.service.d && test ! -e /var/lib/redisctl/local-sentinel");
    // ... and with --stop-distro-redis the distribution's services make way.
    c.ok(&format!(
        "redisctl apply {SENTINEL} --yes --stop-distro-redis"
    ));
    assert_eq!(
        text(&c.sh("systemctl is-enabled redis-server")).trim(),
        "disabled"
    );
    for unit in [
        "redis@6379",
        "redis@6380",
        "sentinel@26379",
        "sentinel@26381",
    ] {
        assert_eq!(c.show(unit)["ActiveState"], "active", "{unit}");
    }
    c.ok(&format!("redisctl check {SENTINEL}"));
    secrets_are_credentials(&c);
    c.ok(&format!("redisctl destroy {SENTINEL} --yes"));

    // The cluster example, systemd chosen automatically.
    c.ok(&format!("redisctl apply {CLUSTER} --yes"));
    let mut pids = Vec::new();
    for port in PORTS {
        let unit = format!("redis@{port}");
        let s = c.show(&unit);
        assert_eq!(
            (s["ActiveState"].as_str(), s["SubState"].as_str()),
            ("active", "running"),
            "{unit}"
        );
        // Type=notify: READY=1 came with this status.
        assert!(
            s["StatusText"].contains("Ready to accept connections"),
            "{unit}: {s:?}"
        );
        assert_eq!(s["UnitFileState"], "enabled", "{unit}");
        let pid = s["MainPID"].clone();
        assert_eq!(
            c.ok(&format!("ps -o user= -p {pid}")).trim(),
            "redis",
            "{unit}"
        );
        pids.push(pid);
    }
    let conf = c.ok("cat /var/lib/redisctl/local-cluster/local/7000/redis.conf");
    assert!(
        conf.contains("logfile \"\"")
            && !conf.contains("pidfile")
            && !conf.contains("daemonize yes"),
        "{conf}"
    );
    let check = c.ok("redis-cli --cluster check 127.0.0.1:7000");
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");
    assert_eq!(
        c.ok("redis-cli -c -p 7000 set e2e:aof before-reboot")
            .trim(),
        "OK"
    );
    let status: serde_json::Value =
        serde_json::from_str(&c.ok(&format!("redisctl status -o json {CLUSTER}"))).unwrap();
    assert_eq!(status["supervisor"], "systemd", "{status}");
    let units = status["units"].as_array().expect("units");
    assert_eq!(units.len(), 6, "{status}");
    assert!(
        units
            .iter()
            .all(|u| u["active"] == "active" && u["restarts"] == 0),
        "{status}"
    );

    // An upgrade (the same package again) restarts nothing.
    c.ok(&format!("dpkg -i {deb}"));
    for (port, pid) in PORTS.iter().zip(&pids) {
        let s = c.show(&format!("redis@{port}"));
        assert_eq!(
            &s["MainPID"], pid,
            "redis@{port} was restarted by the upgrade"
        );
    }

    // kill -9: systemd restarts it, it rejoins with its identity.
    let id = c.ok("redis-cli -p 7002 cluster myid");
    let before = c.show("redis@7002");
    c.ok(&format!("kill -9 {}", before["MainPID"]));
    c.wait("redis@7002 restarted by systemd", 30, |c| {
        let s = c.show("redis@7002");
        s["NRestarts"] != before["NRestarts"] && s["ActiveState"] == "active"
    });
    let after = c.show("redis@7002");
    assert_ne!(after["MainPID"], before["MainPID"]);
    assert_eq!(c.ok("redis-cli -p 7002 cluster myid"), id);
    c.wait("cluster_state:ok everywhere after kill -9", 30, |c| {
        PORTS.iter().all(|&p| cluster_ok(c, p))
    });

    crash_safe_restart_by_systemd(&c);

    // The agent: redisctl-agent@NAME with the topology in /etc/redisctl/NAME.yaml.
    agent_under_systemd(&c);

    // Sandboxing: no worse than Debian's own template, measured the same way.
    let ours = exposure(&c, "redis@7000.service");
    let sentinel = exposure(&c, "sentinel@26379.service");
    let debian = exposure(&c, "redis-server@e2e.service");
    say(&format!(
        "systemd-analyze security: redis@7000 {ours}, sentinel@26379 {sentinel}, Debian's redis-server@ {debian}"
    ));
    assert!(
        ours <= debian && sentinel <= debian,
        "ours {ours}/{sentinel} > Debian's {debian}"
    );

    // A reboot brings everything back, with the data (AOF).
    c.reboot();
    c.wait("every redis@PORT active after reboot", 60, |c| {
        PORTS
            .iter()
            .all(|p| c.show(&format!("redis@{p}"))["ActiveState"] == "active")
    });
    c.wait("cluster_state:ok everywhere after reboot", 60, |c| {
        PORTS.iter().all(|&p| cluster_ok(c, p))
    });
    assert_eq!(
        c.ok("redis-cli -c -p 7000 get e2e:aof").trim(),
        "before-reboot"
    );
    c.ok(&format!("redisctl check {CLUSTER}"));
    let plan = c.ok(&format!("redisctl plan {CLUSTER}"));
    assert!(plan.contains("Nothing to do"), "{plan}");

    // Removing the package while its instances are enabled is refused (their templates go
    // with it: nothing would start at the next boot), naming them and the way out.
    let refused = c.sh("dpkg -r redisctl");
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        !refused.status.success(),
        "dpkg -r redisctl was not refused: {err}"
    );
    assert!(
        err.contains("redis@7000.service (enabled, running)")
            && err.contains("redisctl destroy")
            && err.contains("systemctl disable --now")
            && err.contains("REDISCTL_FORCE_REMOVE=1"),
        "{err}"
    );
    // Still installed (dpkg keeps the "deinstall" selection of the refused request).
    let status = c.ok("dpkg -s redisctl");
    assert!(
        status.contains("Status: deinstall ok installed"),
        "{status}"
    );
    c.ok("test -e /lib/systemd/system/redis@.service");
    // Forced: removed with a warning; data and running instances are kept.
    let forced = c.sh("REDISCTL_FORCE_REMOVE=1 dpkg -r redisctl");
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert!(String::from_utf8_lossy(&forced.stderr).contains("WARNING"));
    c.ok("test -d /var/lib/redisctl/local-cluster/local/7000/data/appendonlydir");
    assert_eq!(c.show("redis@7000")["ActiveState"], "active");
    c.ok(&format!("dpkg -i {deb}"));

    // destroy: units gone, nothing of ours running, the distribution's redis untouched.
    c.ok(&format!("redisctl destroy {CLUSTER} --yes"));
    let units = c.ok("systemctl list-units 'redis@*' 'sentinel@*' --all --no-legend --plain");
    assert!(units.trim().is_empty(), "units left: {units}");
    let left = c.sh("ls -d /etc/systemd/system/redis@*.service.d /etc/systemd/system/multi-user.target.wants/redis@* 2>/dev/null");
    assert!(
        text(&left).trim().is_empty(),
        "left behind: {}",
        text(&left)
    );
    let procs = c.sh("pgrep -a redis-server");
    assert!(
        !text(&procs).contains(":700"),
        "redis still running: {}",
        text(&procs)
    );
    say(&format!(
        "systemd e2e passed in {:.0} s",
        t0.elapsed().as_secs_f64()
    ));
}

/// redisctl-agent@local-cluster: active once READY=1, its STATUS= line in `systemctl status`,
/// drift healed, /metrics parsed by prometheus_client, a stopped (SIGSTOP) agent restarted by
/// the watchdog. Stopped again at the end.
fn agent_under_systemd(c: &Container) {
    const UNIT: &str = "redisctl-agent@local-cluster";
    c.ok(&format!(
        "install -d -m 0755 /etc/redisctl && cp {CLUSTER} /etc/redisctl/local-cluster.yaml"
    ));
    c.ok(&format!("systemctl start {UNIT}"));
    // Type=notify: `start` returned after READY=1.
    assert_eq!(c.show(UNIT)["ActiveState"], "active");
    c.wait("the agent reports converged", 60, |c| {
        c.show(UNIT)["StatusText"].starts_with("converged: 6/6 nodes, 16384 slots")
    });
    let status = text(&c.sh(&format!("systemctl status --no-pager {UNIT}")));
    assert!(
        status.contains("Status: \"converged: 6/6 nodes, 16384 slots, masters as declared"),
        "{status}"
    );
    // Drift healed by the agent (systemd cannot see it).
    c.ok("redis-cli -p 7003 config set cluster-node-timeout 7777");
    c.wait(
        "the agent reverts the drifted cluster-node-timeout",
        60,
        |c| {
            text(&c.sh("redis-cli -p 7003 config get cluster-node-timeout")).contains("5000")
                && !text(&c.sh("redis-cli -p 7003 config get cluster-node-timeout"))
                    .contains("7777")
        },
    );
    let events = c.ok(&format!(
        "journalctl -u {UNIT} REDISCTL_EVENT=step_done -o cat --no-pager"
    ));
    assert!(events.contains("cluster-node-timeout"), "{events}");
    // /metrics from inside the container's network namespace, parsed by prometheus_client.
    let leader = c.leader().expect("container running").to_string();
    let scrape = || {
        run(Command::new("nsenter").args([
            "-t",
            &leader,
            "-n",
            "curl",
            "-sf",
            "http://127.0.0.1:9187/metrics",
        ]))
    };
    c.wait("the agent reports converged after healing", 60, |c| {
        let s = &c.show(UNIT)["StatusText"];
        s.starts_with("converged:") && s.contains("cluster-node-timeout")
    });
    let metrics = text(&scrape());
    if Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success())
    {
        let mut child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/parse_metrics.py"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), metrics.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "prometheus_client rejected:\n{metrics}"
        );
        let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(m["redisctl_converged"]["samples"][0][2], 1.0, "{m}");
        assert_eq!(
            m["redisctl_instance_up"]["samples"]
                .as_array()
                .map(Vec::len),
            Some(6),
            "{m}"
        );
        assert_eq!(m["redisctl_steps_executed"]["type"], "counter", "{m}");
    } else {
        skip(
            "agent /metrics parser check",
            "prometheus_client is not installed",
        );
    }
    // The watchdog: a stopped agent sends no WATCHDOG=1; systemd kills and restarts it.
    let before = c.show(UNIT);
    c.ok(&format!("kill -STOP {}", before["MainPID"]));
    c.wait("the watchdog restarts the stopped agent", 120, |c| {
        let s = c.show(UNIT);
        s["NRestarts"] != before["NRestarts"] && s["ActiveState"] == "active"
    });
    assert_ne!(c.show(UNIT)["MainPID"], before["MainPID"]);
    let journal = c.ok(&format!("journalctl -u {UNIT} --no-pager -o cat"));
    assert!(journal.contains("Watchdog timeout"), "{journal}");
    let agent = exposure(c, &format!("{UNIT}.service"));
    say(&format!("systemd-analyze security: {UNIT} {agent}"));
    assert!(agent < 3.0, "the agent's unit exposure is {agent}");
    c.ok(&format!("systemctl stop {UNIT}"));
}

/// Both packages install the same files (paths differ only where the distributions do).
#[test]
fn rpm_and_deb_carry_the_same_payload() {
    if !have("dpkg-deb") || !have("rpm") {
        skip(
            "rpm_and_deb_carry_the_same_payload",
            "dpkg-deb or rpm is missing (apt-get install rpm)",
        );
        return;
    }
    let pkgs = match packages() {
        Ok(p) => p,
        Err(why) => {
            skip("rpm_and_deb_carry_the_same_payload", why);
            return;
        }
    };
    let rpm_file = match rpm(pkgs) {
        Ok(Some(f)) => f,
        Ok(None) => {
            skip(
                "rpm_and_deb_carry_the_same_payload",
                "cargo-generate-rpm is not installed",
            );
            return;
        }
        Err(why) => panic!("cargo generate-rpm: {why}"),
    };
    let rpm_file = &rpm_file;
    // Debian adds its copyright file and changelog.Debian.gz; the unit and zsh directories are
    // each distribution's own. Man pages are compressed in both.
    let normal = |p: &str| -> Option<String> {
        let p = p.trim_start_matches('.');
        if p.ends_with('/')
            || p == "/usr/share/doc/redisctl/copyright"
            || p == "/usr/share/doc/redisctl/changelog.Debian.gz"
        {
            return None;
        }
        let p = p
            .replace("/lib/systemd/system/", "/usr/lib/systemd/system/")
            .replace("/usr/usr/", "/usr/")
            .replace(
                "/usr/share/zsh/vendor-completions/",
                "/usr/share/zsh/site-functions/",
            );
        Some(p)
    };
    let deb_list = text(&run(Command::new("dpkg-deb").arg("-c").arg(&pkgs.deb)));
    let mut deb: Vec<String> = deb_list
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter_map(normal)
        .collect();
    let mut rpm: Vec<String> = text(&run(Command::new("rpm").arg("-qlp").arg(rpm_file)))
        .lines()
        .filter_map(normal)
        .collect();
    deb.sort();
    rpm.sort();
    assert_eq!(deb, rpm, ".deb and .rpm payloads differ");
    for must in [
        "/usr/bin/redisctl",
        "/usr/lib/systemd/system/redis@.service",
        "/usr/lib/systemd/system/sentinel@.service",
        "/usr/lib/systemd/system/redisctl-agent@.service",
        "/usr/share/man/man1/redisctl.1.gz",
        "/usr/share/man/man5/redisctl-topology.5.gz",
        "/usr/share/bash-completion/completions/redisctl",
        "/usr/share/fish/vendor_completions.d/redisctl.fish",
        "/usr/share/doc/redisctl/examples/local-cluster.yaml",
    ] {
        assert!(deb.iter().any(|p| p == must), "{must} missing: {deb:?}");
    }
    assert!(
        deb_list.contains("./usr/share/doc/redisctl/changelog.Debian.gz"),
        "{deb_list}"
    );
    // The example password file is owner-only in both (redisctl refuses it otherwise).
    let password = "/usr/share/doc/redisctl/examples/local-sentinel.password";
    assert!(
        deb_list
            .lines()
            .any(|l| l.starts_with("-rw------- ") && l.ends_with(password)),
        "{deb_list}"
    );
    let rpm_long = text(&run(Command::new("rpm").arg("-qlvp").arg(rpm_file)));
    assert!(
        rpm_long
            .lines()
            .any(|l| l.starts_with("-rw------- ") && l.ends_with(password)),
        "{rpm_long}"
    );
    let requires = text(&run(Command::new("rpm")
        .args(["-qp", "--requires"])
        .arg(rpm_file)));
    assert!(
        requires.lines().any(|l| l == "(redis or valkey)"),
        "{requires}"
    );
    let control = text(&run(Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&pkgs.deb)
        .arg("Depends")));
    assert!(control.contains("redis-server"), "{control}");
    // Maintainer scripts never restart instances (the agent, which holds no state, is
    // restarted on the new binary: that is the only restart allowed).
    let scripts = text(&run(Command::new("dpkg-deb")
        .arg("-I")
        .arg(&pkgs.deb)
        .arg("postinst")))
        + &text(&run(Command::new("rpm")
            .args(["-qp", "--scripts"])
            .arg(rpm_file)));
    assert!(
        scripts
            .lines()
            .filter(|l| l.contains("systemctl") && l.contains("restart"))
            .all(|l| l.contains("redisctl-agent@")
                && !l.contains("redis@")
                && !l.contains("sentinel@")),
        "{scripts}"
    );
    // Both refuse removal while instances are declared (one script: prerm / %preun).
    let prerm = text(&run(Command::new("dpkg-deb")
        .arg("-I")
        .arg(&pkgs.deb)
        .arg("prerm")));
    assert!(prerm.contains("refusing to remove the package"), "{prerm}");
    assert!(
        scripts.contains("preuninstall scriptlet") && scripts.contains("refusing to remove"),
        "{scripts}"
    );
}
