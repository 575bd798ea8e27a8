//! The systemd backend: every instance is a `redis@PORT` unit (Sentinels:
//! `sentinel@PORT`), started, restarted, logged and sandboxed by systemd.
//!
//! The templates ship in the packages (systemd/); redisctl writes one drop-in per instance
//! (/etc/systemd/system/redis@PORT.service.d/redisctl.conf, rendered by render::systemd)
//! naming its configuration and state directory, reloads systemd only when a file changed,
//! and runs `systemctl enable --now`. State comes from `systemctl show`. Unregistering
//! disables the unit and removes the drop-in, never data.
//!
//! Chosen automatically when systemd is PID 1 and redisctl runs as root (`--supervisor`
//! overrides). It must not decide anything about Redis itself: the executor still stops
//! nodes with SHUTDOWN (a clean exit, which `Restart=on-failure` leaves alone).

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Managed, ProcState, SuperviseError, Supervisor};
use crate::render::systemd::{self as units, DropIn, StartHook, UnitKind};

/// Where administrators' units and drop-ins live (highest precedence).
const UNIT_DIR: &str = "/etc/systemd/system";
/// Runtime drop-ins, gone at reboot.
const RUNTIME_DIR: &str = "/run/systemd/system";
/// Where a template may already be installed, by precedence (packages use the last two).
const TEMPLATE_DIRS: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
const DROP_IN: &str = "redisctl.conf";
const START_ARGS: &str = "redisctl-start.conf";

pub struct SystemdSupervisor {
    systemctl: PathBuf,
    unit_dir: PathBuf,
    runtime_dir: PathBuf,
    template_dirs: Vec<PathBuf>,
    /// The service user, owner of instance directories.
    user: String,
    /// The crash-safe start hook written into data nodes' drop-ins (None in unit tests that
    /// do not need it).
    hook: Option<HookSpec>,
    /// How long `start` waits for a unit to report READY before leaving the rest of the
    /// wait (e.g. a long AOF load) to the executor's PING gate.
    settle: Duration,
    /// Refuse instance directories the units' sandbox hides (/tmp, /home, ...). Off only in
    /// the unit tests, whose fake systemctl runs nothing in a sandbox.
    check_visibility: bool,
}

/// systemd is the service manager here (what sd_booted() checks).
pub fn systemd_is_pid1() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// `auto` picks systemd when it is PID 1 and we are root (units need root).
pub fn auto_selects_systemd() -> bool {
    systemd_is_pid1() && nix::unistd::geteuid().is_root()
}

/// What the start hook of every data node's unit runs: `redisctl unit-start` for this
/// deployment (render/systemd.rs, StartHook).
#[derive(Debug, Clone)]
pub struct HookSpec {
    pub redisctl: PathBuf,
    pub topology: PathBuf,
    pub state_root: PathBuf,
}

/// What `systemctl show` says about a unit.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct UnitState {
    load: String,
    active: String,
    sub: String,
    main_pid: u32,
    restarts: u32,
    file_state: String,
}

impl UnitState {
    fn parse(text: &str) -> UnitState {
        let mut s = UnitState::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "LoadState" => s.load = v.into(),
                "ActiveState" => s.active = v.into(),
                "SubState" => s.sub = v.into(),
                "MainPID" => s.main_pid = v.parse().unwrap_or(0),
                "NRestarts" => s.restarts = v.parse().unwrap_or(0),
                "UnitFileState" => s.file_state = v.into(),
                _ => {}
            }
        }
        s
    }

    /// A live main process: running, becoming ready (loading), or shutting down.
    fn running_pid(&self) -> Option<u32> {
        let alive = match self.active.as_str() {
            "active" | "reloading" | "deactivating" => true,
            // auto-restart: dead, waiting RestartSec before the next attempt.
            "activating" => self.sub != "auto-restart",
            _ => false,
        };
        (alive && self.main_pid > 0).then_some(self.main_pid)
    }
}

/// Whose drop-in a unit carries.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    /// Ours: it names this instance's directory.
    This,
    /// No redisctl drop-in.
    Nobody,
    /// Another instance directory (another deployment on this port), or a hand-made one.
    Other(String),
}

impl SystemdSupervisor {
    pub fn new(hook: Option<HookSpec>) -> SystemdSupervisor {
        SystemdSupervisor {
            systemctl: PathBuf::from("systemctl"),
            unit_dir: PathBuf::from(UNIT_DIR),
            runtime_dir: PathBuf::from(RUNTIME_DIR),
            template_dirs: TEMPLATE_DIRS.iter().map(PathBuf::from).collect(),
            user: "redis".into(),
            hook,
            settle: Duration::from_secs(20),
            check_visibility: true,
        }
    }

    fn kind(m: &Managed) -> UnitKind {
        // Sentinels are the instances that need a config file of their own.
        if m.config_via_stdin {
            UnitKind::Server
        } else {
            UnitKind::Sentinel
        }
    }

    fn unit(m: &Managed) -> String {
        Self::kind(m).unit(m.port)
    }

    fn drop_in_path(&self, m: &Managed) -> PathBuf {
        self.unit_dir
            .join(format!("{}.d", Self::unit(m)))
            .join(DROP_IN)
    }

    fn start_args_path(&self, m: &Managed) -> PathBuf {
        self.runtime_dir
            .join(format!("{}.d", Self::unit(m)))
            .join(START_ARGS)
    }

    fn err(m: &Managed, message: impl Into<String>) -> SuperviseError {
        SuperviseError::Unit {
            key: m.key.clone(),
            unit: Self::unit(m),
            message: message.into(),
        }
    }

    fn io(m: &Managed, what: String) -> impl FnOnce(std::io::Error) -> SuperviseError {
        let key = m.key.clone();
        move |source| SuperviseError::Io { key, what, source }
    }

    /// Run systemctl; stdout, or stderr as the error.
    fn systemctl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.systemctl)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.systemctl.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "`systemctl {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn show(&self, unit: &str) -> UnitState {
        self.systemctl(&[
            "show",
            "-p",
            "LoadState,ActiveState,SubState,MainPID,NRestarts,UnitFileState",
            unit,
        ])
        .map(|t| UnitState::parse(&t))
        .unwrap_or_default()
    }

    fn owner(&self, m: &Managed) -> Owner {
        match fs::read_to_string(self.drop_in_path(m)) {
            Err(_) => Owner::Nobody,
            Ok(text) => match units::drop_in_dir(&text) {
                Some(dir) if Path::new(dir) == m.paths.dir => Owner::This,
                Some(dir) => Owner::Other(dir.to_string()),
                None => Owner::Other("a drop-in redisctl did not write".into()),
            },
        }
    }

    /// The last lines the unit logged, for error messages.
    fn journal_tail(unit: &str) -> String {
        Command::new("journalctl")
            .args(["-u", unit, "-n", "12", "--no-pager", "-o", "cat"])
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_string())
            .unwrap_or_default()
    }

    /// Install the template when no unit file of that name exists (redisctl installed
    /// without its package); refuse one that is not ours. Returns whether it wrote it.
    fn ensure_template(&self, m: &Managed) -> Result<bool, SuperviseError> {
        let kind = Self::kind(m);
        for dir in &self.template_dirs {
            let path = dir.join(kind.template());
            if let Ok(text) = fs::read_to_string(&path) {
                if text.contains("(redisctl)") {
                    return Ok(false);
                }
                return Err(Self::err(
                    m,
                    format!(
                        "{} is not redisctl's template; rename or remove it so that redisctl can manage {}",
                        path.display(),
                        Self::unit(m)
                    ),
                ));
            }
        }
        let path = self.unit_dir.join(kind.template());
        crate::fsio::ensure_dir(&self.unit_dir, 0o755)
            .map_err(Self::io(m, format!("create {}", self.unit_dir.display())))?;
        crate::fsio::write_atomic(&path, kind.template_text().as_bytes(), 0o644)
            .map_err(Self::io(m, format!("write {}", path.display())))
    }

    /// Write (or remove) a drop-in; returns whether anything changed.
    fn put(m: &Managed, path: &Path, text: Option<&str>) -> Result<bool, SuperviseError> {
        match text {
            Some(text) => {
                let dir = path.parent().unwrap_or(Path::new("/"));
                crate::fsio::ensure_dir(dir, 0o755)
                    .map_err(Self::io(m, format!("create {}", dir.display())))?;
                crate::fsio::write_atomic(path, text.as_bytes(), 0o644)
                    .map_err(Self::io(m, format!("write {}", path.display())))
            }
            None => match fs::remove_file(path) {
                Ok(()) => {
                    if let Some(dir) = path.parent() {
                        let _ = fs::remove_dir(dir);
                    }
                    Ok(true)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(Self::io(m, format!("remove {}", path.display()))(e)),
            },
        }
    }

    /// The service user must be able to walk down to its instance directory: give the
    /// directories redisctl created on the way (root-owned, 0750) the user's group.
    /// The instance directory itself is chowned by the unit (ExecStartPre=+chown).
    fn make_reachable(&self, m: &Managed) -> Result<(), SuperviseError> {
        let user = nix::unistd::User::from_name(&self.user)
            .ok()
            .flatten()
            .ok_or_else(|| {
                Self::err(
                    m,
                    format!(
                        "there is no `{}` user to run it as; install the redisctl package (it creates the user) or run `useradd --system --user-group --no-create-home {}`",
                        self.user, self.user
                    ),
                )
            })?;
        let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
        // The host dir and a deployment dir redisctl made (never one the operator made, e.g.
        // `--state-dir /srv/x`: its mode is theirs); /var/lib/redisctl is the package's.
        let ours = |depth: usize, dir: &Path| {
            depth == 1
                || (depth == 2 && crate::fsio::created_by_redisctl(dir))
                || dir.ends_with("redisctl")
        };
        for (depth, dir) in m.paths.dir.ancestors().enumerate().skip(1) {
            let Ok(meta) = fs::metadata(dir) else {
                continue;
            };
            let mode = meta.permissions().mode();
            let reachable = mode & 0o001 != 0
                || (meta.gid() == gid && mode & 0o010 != 0)
                || (meta.uid() == uid && mode & 0o100 != 0);
            if reachable {
                continue;
            }
            if meta.uid() == 0 && ours(depth, dir) {
                nix::unistd::chown(dir, None, Some(user.gid))
                    .map_err(|e| Self::io(m, format!("chgrp {}", dir.display()))(e.into()))?;
                fs::set_permissions(dir, fs::Permissions::from_mode((mode & 0o7777) | 0o010))
                    .map_err(Self::io(m, format!("chmod {}", dir.display())))?;
            } else {
                return Err(Self::err(
                    m,
                    format!(
                        "the `{}` user cannot reach {}: {} (mode {:o}) is closed to it and redisctl does not change directories it did not create; `chgrp {} {} && chmod g+x {}`, or choose a --state-dir under /var/lib/redisctl",
                        self.user,
                        m.paths.dir.display(),
                        dir.display(),
                        mode & 0o7777,
                        self.user,
                        dir.display(),
                        dir.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Wait until the unit is gone (inactive or failed) or `limit` passes.
    fn wait_stopped(&self, unit: &str, limit: Duration) -> bool {
        let t = Instant::now();
        loop {
            if self.show(unit).running_pid().is_none() {
                return true;
            }
            if t.elapsed() >= limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// State for `redisctl status`: unit, state, main pid, restarts by systemd.
    fn unit_details(&self, m: &Managed) -> serde_json::Value {
        let unit = Self::unit(m);
        let s = self.show(&unit);
        serde_json::json!({
            "unit": unit, "active": s.active, "sub": s.sub, "main_pid": s.main_pid,
            "restarts": s.restarts, "enabled": s.file_state,
        })
    }
}

fn port_answers(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// The binary as an absolute path (units do not search PATH the way a shell does). Not
/// canonicalised: Debian's redis-server is a symlink whose name selects the mode.
fn resolve(binary: &Path) -> Option<PathBuf> {
    if binary.is_absolute() {
        return binary.is_file().then(|| binary.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(binary))
        .find(|p| p.is_absolute() && p.is_file())
}

impl Supervisor for SystemdSupervisor {
    fn name(&self) -> &'static str {
        "systemd"
    }

    fn status(&self, m: &Managed) -> ProcState {
        if self.owner(m) != Owner::This {
            return ProcState::Stopped;
        }
        match self.show(&Self::unit(m)).running_pid() {
            Some(pid) => ProcState::Running { pid },
            None => ProcState::Stopped,
        }
    }

    fn restarting(&self, m: &Managed) -> bool {
        if self.owner(m) != Owner::This {
            return false;
        }
        let s = self.show(&Self::unit(m));
        s.active == "activating" || s.sub == "auto-restart"
    }

    fn start(&self, m: &Managed, args: &[String]) -> Result<u32, SuperviseError> {
        let unit = Self::unit(m);
        let owner = self.owner(m);
        if let Owner::Other(dir) = &owner {
            return Err(Self::err(
                m,
                format!(
                    "{unit} already belongs to the instance in {dir}; destroy that deployment or choose another port"
                ),
            ));
        }
        let binary = resolve(&m.binary).ok_or_else(|| SuperviseError::Spawn {
            key: m.key.clone(),
            binary: m.binary.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not found on PATH"),
        })?;
        if self.check_visibility {
            units::visible(&m.paths.dir).map_err(|e| Self::err(m, e.to_string()))?;
        }
        let drop_in = units::drop_in(&DropIn {
            kind: Self::kind(m),
            dir: &m.paths.dir,
            config: &m.paths.config,
            binary: &binary,
            user: &self.user,
            hook: self.hook.as_ref().map(|h| StartHook {
                redisctl: &h.redisctl,
                topology: &h.topology,
                state_root: &h.state_root,
                host: &m.key.host,
            }),
            port: m.port,
            // Written by redisctl before every start it asks for.
            secrets: m
                .paths
                .secrets
                .exists()
                .then_some(m.paths.secrets.as_path()),
        })
        .map_err(|e| Self::err(m, e.to_string()))?;
        let start_args = units::start_args(args).map_err(|e| Self::err(m, e.to_string()))?;

        let state = self.show(&unit);
        let running = owner == Owner::This && state.running_pid().is_some();
        if !running {
            // Not our unit's process: anything answering there is someone else's.
            let addr = SocketAddr::new(m.address, m.port);
            let bus = SocketAddr::new(m.address, m.port.saturating_add(10000));
            let probe: &[SocketAddr] = if m.config_via_stdin {
                &[addr, bus]
            } else {
                &[addr]
            };
            for a in probe {
                if port_answers(*a) {
                    return Err(SuperviseError::PortTaken {
                        endpoint: a.to_string(),
                        dir: m.paths.dir.display().to_string(),
                    });
                }
            }
        }

        let mut changed = self.ensure_template(m)?;
        changed |= Self::put(m, &self.drop_in_path(m), Some(&drop_in))?;
        if !running {
            // Options for this start only; a running instance keeps the ones it started with.
            changed |= Self::put(m, &self.start_args_path(m), start_args.as_deref())?;
        }
        if changed {
            self.systemctl(&["daemon-reload"])
                .map_err(|e| Self::err(m, e))?;
        }
        if state.file_state != "enabled" {
            self.systemctl(&["enable", "--quiet", &unit])
                .map_err(|e| Self::err(m, e))?;
        }
        if let (true, Some(pid)) = (running, state.running_pid()) {
            return Ok(pid);
        }
        self.make_reachable(m)?;
        // A unit that hit its start limit stays failed until reset.
        let _ = self.systemctl(&["reset-failed", &unit]);
        // Blocks until READY=1 or failure; a long AOF load is left to the executor's gate.
        let mut job = Command::new(&self.systemctl)
            .args(["start", &unit])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Self::err(m, format!("cannot run systemctl: {e}")))?;
        let t = Instant::now();
        loop {
            match job.try_wait() {
                Ok(Some(status)) if status.success() => {
                    let s = self.show(&unit);
                    return s.running_pid().ok_or_else(|| {
                        Self::err(
                            m,
                            format!(
                                "started, but it is {} ({}); last lines of `journalctl -u {unit}`:\n{}",
                                s.active,
                                s.sub,
                                Self::journal_tail(&unit)
                            ),
                        )
                    });
                }
                Ok(Some(_)) => {
                    return Err(Self::err(
                        m,
                        format!(
                            "failed to start; last lines of `journalctl -u {unit}`:\n{}",
                            Self::journal_tail(&unit)
                        ),
                    ));
                }
                Ok(None) => {}
                Err(e) => return Err(Self::err(m, format!("waiting for systemctl: {e}"))),
            }
            if t.elapsed() > self.settle
                && let Some(pid) = self.show(&unit).running_pid()
            {
                // Still loading: systemd keeps the job; reap the client in the background.
                std::thread::spawn(move || job.wait());
                return Ok(pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&self, m: &Managed, grace: Duration) -> Result<(), SuperviseError> {
        if self.owner(m) != Owner::This {
            return Ok(());
        }
        let unit = Self::unit(m);
        let Some(pid) = self.show(&unit).running_pid() else {
            return Ok(());
        };
        // The executor has asked Redis to SHUTDOWN; give it `grace` to exit cleanly.
        if self.wait_stopped(&unit, grace) {
            return Ok(());
        }
        self.systemctl(&["stop", "--no-block", &unit])
            .map_err(|e| Self::err(m, e))?;
        if self.wait_stopped(&unit, Duration::from_secs(10)) {
            return Ok(());
        }
        let _ = self.systemctl(&["kill", "--signal=SIGKILL", &unit]);
        if self.wait_stopped(&unit, Duration::from_secs(5)) {
            return Ok(());
        }
        Err(SuperviseError::WontDie {
            key: m.key.clone(),
            pid,
            secs: grace.as_secs() + 15,
        })
    }

    fn unregister(&self, m: &Managed) -> Result<(), SuperviseError> {
        if self.owner(m) != Owner::This {
            return Ok(());
        }
        let unit = Self::unit(m);
        self.systemctl(&["disable", "--now", "--quiet", &unit])
            .map_err(|e| Self::err(m, e))?;
        Self::put(m, &self.drop_in_path(m), None)?;
        Self::put(m, &self.start_args_path(m), None)?;
        self.systemctl(&["daemon-reload"])
            .map_err(|e| Self::err(m, e))?;
        let _ = self.systemctl(&["reset-failed", &unit]);
        Ok(())
    }

    fn hold(&self, m: &Managed) -> Result<(), SuperviseError> {
        if self.owner(m) != Owner::This {
            return Ok(());
        }
        self.systemctl(&["disable", "--quiet", &Self::unit(m)])
            .map(|_| ())
            .map_err(|e| Self::err(m, e))
    }

    fn details(&self, m: &Managed) -> Option<serde_json::Value> {
        (self.owner(m) == Owner::This).then(|| self.unit_details(m))
    }
}

/// A service of the distribution's own Redis packages holding a port the topology wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistroUnit {
    pub unit: String,
    pub pid: u32,
    pub port: u16,
}

impl DistroUnit {
    /// `redis-server.service` → `redis-server`, as a person types it.
    fn short(&self) -> &str {
        self.unit.strip_suffix(".service").unwrap_or(&self.unit)
    }
}

impl std::fmt::Display for DistroUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "port {} is held by {} (the distribution's own Redis service, pid {}), not by redisctl; \
             stop and disable it with `systemctl disable --now {}`, pass --stop-distro-redis to let \
             redisctl do that, or move the instance to another port",
            self.port,
            self.unit,
            self.pid,
            self.short()
        )
    }
}

/// Whether a unit's name is one the distributions use for their Redis/Valkey services
/// (Debian: redis-server, redis-sentinel and their @ templates; Fedora/EPEL: redis,
/// redis-sentinel; Valkey: valkey, valkey-server, valkey-sentinel).
fn distro_name(unit: &str) -> bool {
    let Some(base) = unit.strip_suffix(".service") else {
        return false;
    };
    let base = base.split_once('@').map_or(base, |(b, _)| b);
    matches!(
        base,
        "redis"
            | "redis-server"
            | "redis-sentinel"
            | "valkey"
            | "valkey-server"
            | "valkey-sentinel"
    )
}

/// TCP ports a process listens on (its sockets matched against /proc/net/tcp{,6}).
fn listening_ports(pid: u32) -> Vec<u16> {
    let mut inodes = std::collections::HashSet::new();
    for fd in fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(link) = fs::read_link(fd.path())
            && let Some(inode) = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
        {
            inodes.insert(inode.to_string());
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = fs::read_to_string(table).unwrap_or_default();
        ports.extend(
            listeners(&text)
                .into_iter()
                .filter_map(|(port, inode)| inodes.contains(inode).then_some(port)),
        );
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// (port, socket inode) of each LISTEN line of /proc/net/tcp.
fn listeners(table: &str) -> Vec<(u16, &str)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = f.get(1)?.rsplit_once(':')?.1;
            (f.get(3) == Some(&"0A")).then_some(())?;
            Some((u16::from_str_radix(port, 16).ok()?, *f.get(9)?))
        })
        .collect()
}

/// The distribution's Redis services (not redisctl's units) that listen on any of `ports`.
pub fn distro_conflicts(ports: &[u16]) -> Vec<DistroUnit> {
    let sup = SystemdSupervisor::new(None);
    let Ok(list) = sup.systemctl(&[
        "list-units",
        "--type=service",
        "--state=active",
        "--no-legend",
        "--plain",
    ]) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for unit in list.lines().filter_map(|l| l.split_whitespace().next()) {
        if !distro_name(unit) {
            continue;
        }
        let Ok(show) = sup.systemctl(&["show", "-p", "MainPID,FragmentPath", unit]) else {
            continue;
        };
        let fragment = show
            .lines()
            .find_map(|l| l.strip_prefix("FragmentPath="))
            .unwrap_or("");
        // Never one of ours, whatever it is called.
        if fs::read_to_string(fragment).is_ok_and(|t| t.contains("(redisctl)")) {
            continue;
        }
        let pid = UnitState::parse(&show).main_pid;
        if pid == 0 {
            continue;
        }
        for port in listening_ports(pid) {
            if ports.contains(&port) {
                found.push(DistroUnit {
                    unit: unit.to_string(),
                    pid,
                    port,
                });
            }
        }
    }
    found
}

/// `systemctl disable --now` one of the distribution's services (--stop-distro-redis).
pub fn stop_distro_unit(unit: &str) -> Result<(), String> {
    SystemdSupervisor::new(None)
        .systemctl(&["disable", "--now", "--quiet", unit])
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::InstanceKey;
    use std::net::{IpAddr, Ipv4Addr};

    /// A fake systemctl that logs its arguments and answers `show` from a file.
    struct Fake {
        root: tempfile::TempDir,
    }

    impl Fake {
        fn new() -> Fake {
            // The checkout may be anywhere (/tmp in CI): the fake skips the sandbox check.
            let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/unit-tests");
            fs::create_dir_all(&base).unwrap();
            let root = tempfile::tempdir_in(base).unwrap();
            let script = root.path().join("systemctl");
            fs::write(
                &script,
                format!(
                    "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$1\" in show) cat {state} 2>/dev/null;; esac\nexit 0\n",
                    log = root.path().join("log").display(),
                    state = root.path().join("state").display()
                ),
            )
            .unwrap();
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
            Fake { root }
        }

        fn supervisor(&self) -> SystemdSupervisor {
            let p = self.root.path();
            let mut s = SystemdSupervisor::new(None);
            s.systemctl = p.join("systemctl");
            s.unit_dir = p.join("etc");
            s.runtime_dir = p.join("run");
            s.template_dirs = vec![p.join("etc"), p.join("lib")];
            s.user = "root".into();
            s.check_visibility = false;
            s
        }

        fn set_state(&self, text: &str) {
            fs::write(self.root.path().join("state"), text).unwrap();
        }

        fn calls(&self) -> Vec<String> {
            fs::read_to_string(self.root.path().join("log"))
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.starts_with("show"))
                .map(String::from)
                .collect()
        }

        fn managed(&self, port: u16) -> Managed {
            let state = self.root.path().join("state-dir");
            let key = InstanceKey {
                host: "local".into(),
                port,
            };
            Managed {
                paths: crate::render::InstancePaths::new(&state, &key),
                key,
                // Tiny ports nothing listens on: the port probe finds them free.
                address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port,
                binary: PathBuf::from("/bin/sh"),
                config_via_stdin: true,
            }
        }
    }

    /// Bug (#11): a state directory the operator made was chgrp'ed and chmod'ed so the
    /// service user could reach it. Only directories redisctl created are adjusted.
    #[test]
    fn make_reachable_never_changes_a_state_dir_redisctl_did_not_create() {
        if !nix::unistd::geteuid().is_root()
            || nix::unistd::User::from_name("redis")
                .ok()
                .flatten()
                .is_none()
        {
            eprintln!("skipped: needs root and a `redis` user");
            return;
        }
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let fake = Fake::new();
        let mut sup = fake.supervisor();
        sup.user = "redis".into();
        fs::set_permissions(fake.root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let m = fake.managed(1);
        fs::create_dir_all(&m.paths.dir).unwrap();
        let state = fake.root.path().join("state-dir");
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
        let e = sup.make_reachable(&m).unwrap_err().to_string();
        assert!(
            e.contains("does not change directories it did not create")
                && e.contains(&format!("chgrp redis {}", state.display())),
            "{e}"
        );
        assert_eq!(mode(&state), 0o700);
        // One redisctl created (its mark) is given the service user's group.
        fs::write(state.join(".created-by-redisctl"), "").unwrap();
        sup.make_reachable(&m).unwrap();
        assert_eq!(mode(&state), 0o710);
    }

    #[test]
    fn start_writes_the_drop_in_and_reloads_only_when_it_changed() {
        let fake = Fake::new();
        let sup = fake.supervisor();
        let m = fake.managed(1);
        fs::create_dir_all(&m.paths.dir).unwrap();
        fake.set_state("LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\nNRestarts=0\nUnitFileState=disabled\n");
        // First start: template installed, drop-in written, reload, enable, start.
        assert_eq!(sup.start(&m, &[]).unwrap(), 4242);
        let template = fake.root.path().join("etc/redis@.service");
        assert!(
            fs::read_to_string(&template)
                .unwrap()
                .contains("(redisctl)")
        );
        let drop_in = fake.root.path().join("etc/redis@1.service.d/redisctl.conf");
        let text = fs::read_to_string(&drop_in).unwrap();
        assert!(text.contains(&format!("ReadWritePaths={}\n", m.paths.dir.display())));
        assert_eq!(
            fake.calls(),
            [
                "daemon-reload",
                "enable --quiet redis@1.service",
                "reset-failed redis@1.service",
                "start redis@1.service"
            ]
        );
        assert_eq!(sup.status(&m), ProcState::Running { pid: 4242 });
        // Running and unchanged: nothing to do, no reload.
        fake.set_state("LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\nNRestarts=0\nUnitFileState=enabled\n");
        assert_eq!(sup.start(&m, &[]).unwrap(), 4242);
        assert_eq!(fake.calls().len(), 4);
        // Unregister: disable --now, drop-in gone, reload; the instance directory stays.
        sup.unregister(&m).unwrap();
        assert!(!drop_in.exists());
        assert!(m.paths.dir.is_dir());
        assert_eq!(
            fake.calls()[4..],
            [
                "disable --now --quiet redis@1.service",
                "daemon-reload",
                "reset-failed redis@1.service"
            ]
        );
    }

    #[test]
    fn data_nodes_carry_the_crash_safe_start_hook_and_one_start_options_go_to_run() {
        let fake = Fake::new();
        let mut sup = fake.supervisor();
        sup.hook = Some(HookSpec {
            redisctl: PathBuf::from("/usr/bin/redisctl"),
            topology: PathBuf::from("/etc/redisctl/x.yaml"),
            state_root: PathBuf::from("/var/lib/redisctl/x"),
        });
        let m = fake.managed(2);
        fs::create_dir_all(&m.paths.dir).unwrap();
        fake.set_state("ActiveState=inactive\nSubState=dead\nMainPID=0\nUnitFileState=disabled\n");
        let args = ["--replicaof".to_string(), "127.0.0.1".into(), "7000".into()];
        sup.start(&m, &args).unwrap_err(); // the fake never reports a running unit
        let dir = fake.root.path();
        let text = fs::read_to_string(dir.join("etc/redis@2.service.d/redisctl.conf")).unwrap();
        assert!(
            text.contains("ExecStartPre=+/usr/bin/redisctl --supervisor systemd --state-dir /var/lib/redisctl/x --host local unit-start /etc/redisctl/x.yaml 2\n"),
            "{text}"
        );
        assert!(
            text.contains("EnvironmentFile=-/run/redisctl/redis@2.env\n"),
            "{text}"
        );
        let args =
            fs::read_to_string(dir.join("run/redis@2.service.d/redisctl-start.conf")).unwrap();
        assert!(args.contains("REDISCTL_ARGS=--replicaof 127.0.0.1 7000"));
        assert!(
            fake.calls()
                .contains(&"enable --quiet redis@2.service".to_string())
        );
    }

    #[test]
    fn a_port_owned_by_another_deployment_is_refused() {
        let fake = Fake::new();
        let sup = fake.supervisor();
        let m = fake.managed(3);
        let path = sup.drop_in_path(&m);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(
            &path,
            "# Generated by redisctl for the instance in /srv/other.\n[Service]\nEnvironment=REDISCTL_DIR=/srv/other/local/3 REDISCTL_CONF=/srv/other/local/3/redis.conf\n",
        )
        .unwrap();
        fake.set_state("ActiveState=active\nSubState=running\nMainPID=9\n");
        assert_eq!(sup.status(&m), ProcState::Stopped);
        let e = sup.start(&m, &[]).unwrap_err().to_string();
        assert!(
            e.contains("already belongs to the instance in /srv/other/local/3"),
            "{e}"
        );
        // Never unregistered on another deployment's behalf.
        sup.unregister(&m).unwrap();
        assert!(path.exists());
        assert!(fake.calls().is_empty());
    }

    #[test]
    fn a_foreign_template_is_not_overridden() {
        let fake = Fake::new();
        let sup = fake.supervisor();
        let m = fake.managed(4);
        fs::create_dir_all(fake.root.path().join("lib")).unwrap();
        fs::write(
            fake.root.path().join("lib/redis@.service"),
            "[Service]\nExecStart=/usr/bin/redis-server /etc/redis/%i.conf\n",
        )
        .unwrap();
        let e = sup.start(&m, &[]).unwrap_err().to_string();
        assert!(e.contains("is not redisctl's template"), "{e}");
    }

    #[test]
    fn unit_states_map_to_process_states() {
        let s = |t: &str| UnitState::parse(t).running_pid();
        assert_eq!(
            s("ActiveState=active\nSubState=running\nMainPID=12"),
            Some(12)
        );
        assert_eq!(
            s("ActiveState=activating\nSubState=start\nMainPID=12"),
            Some(12)
        );
        assert_eq!(
            s("ActiveState=activating\nSubState=auto-restart\nMainPID=0"),
            None
        );
        assert_eq!(s("ActiveState=failed\nSubState=failed\nMainPID=0"), None);
        assert_eq!(s("ActiveState=inactive\nSubState=dead\nMainPID=0"), None);
        let u = UnitState::parse("NRestarts=3\nUnitFileState=enabled\nLoadState=loaded");
        assert_eq!((u.restarts, u.file_state.as_str()), (3, "enabled"));
    }

    #[test]
    fn distribution_units_are_told_apart_from_ours() {
        for unit in [
            "redis-server.service",
            "redis-server@main.service",
            "redis-sentinel.service",
            "redis.service",
            "valkey.service",
        ] {
            assert!(distro_name(unit), "{unit}");
        }
        for unit in ["redisctl.service", "redis-exporter.service", "sshd.service"] {
            assert!(!distro_name(unit), "{unit}");
        }
        let d = DistroUnit {
            unit: "redis-server.service".into(),
            pid: 81,
            port: 6379,
        };
        assert_eq!(
            d.to_string(),
            "port 6379 is held by redis-server.service (the distribution's own Redis service, pid 81), not by redisctl; stop and disable it with `systemctl disable --now redis-server`, pass --stop-distro-redis to let redisctl do that, or move the instance to another port"
        );
    }

    #[test]
    fn listening_sockets_are_read_from_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:18EB 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1
";
        assert_eq!(listeners(table), [(6379, "31337")]);
    }
}
