//! The built-in supervisor: `redis-server` as a detached child (own session, stdin closed,
//! output appended to the instance log), tracked by a pid file in the instance directory.
//! A pid file is trusted only while /proc shows a live redis process for this port.

use std::fs::{self, OpenOptions};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{Managed, ProcState, SuperviseError, Supervisor};

pub struct ProcessSupervisor;

/// The umask of every instance: files it creates are its owner's only (systemd: UMask=0077).
const CHILD_UMASK: nix::libc::mode_t = 0o077;

/// A live redis process working in this instance's directories, found through /proc. It
/// catches a process whose pid file was never written (redisctl killed right after spawning
/// it, before redis-server wrote its own).
fn find_by_cwd(m: &Managed) -> Option<u32> {
    let dirs = [&m.paths.dir, &m.paths.data];
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cwd) = fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        if dirs.iter().any(|d| **d == cwd) && is_our_process(pid, m) {
            return Some(pid);
        }
    }
    None
}

/// A live (non-zombie) redis process of this instance: its title names the port
/// ("redis-server 127.0.0.1:7000 [cluster]"), or — before it retitles itself — it works in
/// this instance's directories (we start it there; Redis then changes to `dir`).
fn is_our_process(pid: u32, m: &Managed) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // State is the field after the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    if !(cmdline.contains("redis") || cmdline.contains("-server") || cmdline.contains("-sentinel"))
    {
        return false;
    }
    if cmdline.contains(&format!(":{}", m.port)) {
        return true;
    }
    fs::read_link(format!("/proc/{pid}/cwd"))
        .is_ok_and(|cwd| cwd == m.paths.dir || cwd == m.paths.data)
}

fn read_pid(m: &Managed) -> Option<u32> {
    fs::read_to_string(&m.paths.pid).ok()?.trim().parse().ok()
}

fn port_answers(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

impl Supervisor for ProcessSupervisor {
    fn name(&self) -> &'static str {
        "process"
    }

    fn status(&self, m: &Managed) -> ProcState {
        match read_pid(m) {
            Some(pid) if is_our_process(pid, m) => ProcState::Running { pid },
            recorded => match (find_by_cwd(m), recorded) {
                (Some(pid), _) => ProcState::Running { pid },
                (None, Some(pid)) => ProcState::Stale { pid },
                (None, None) => ProcState::Stopped,
            },
        }
    }

    fn start(&self, m: &Managed, args: &[String]) -> Result<u32, SuperviseError> {
        if let ProcState::Running { pid } = self.status(m) {
            return Ok(pid);
        }
        // A stale pid file is ours to remove; the data directory is not touched.
        let _ = fs::remove_file(&m.paths.pid);
        let addr = SocketAddr::new(m.address, m.port);
        let bus = SocketAddr::new(m.address, m.port.saturating_add(10000));
        for a in [addr, bus] {
            if port_answers(a) {
                return Err(SuperviseError::PortTaken {
                    endpoint: a.to_string(),
                    dir: m.paths.dir.display().to_string(),
                });
            }
        }
        let io = |what: &str| {
            let what = what.to_string();
            let key = m.key.clone();
            move |source| SuperviseError::Io { key, what, source }
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&m.paths.log)
            .map_err(io("open log"))?;
        let log2 = log.try_clone().map_err(io("open log"))?;
        let mut cmd = Command::new(&m.binary);
        if m.config_via_stdin {
            let conf = fs::File::open(&m.paths.config).map_err(io("open config"))?;
            cmd.arg("-").stdin(conf);
        } else {
            cmd.arg(&m.paths.config).stdin(Stdio::null());
        }
        cmd.args(args)
            .current_dir(&m.paths.dir)
            .stdout(log)
            .stderr(log2);
        // Own session: Ctrl-C or the death of redisctl must not take the instance with it.
        // Umask 0077, as the units' UMask=: Redis and Sentinel create their files (AOF, RDB,
        // nodes.conf, the sentinel.conf it rewrites with the password in it) with
        // 0644 & ~umask, and the caller's umask is usually 022.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(CHILD_UMASK));
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| SuperviseError::Spawn {
            key: m.key.clone(),
            binary: m.binary.display().to_string(),
            source,
        })?;
        let pid = child.id();
        // The child is deliberately not waited for: it outlives redisctl.
        std::mem::forget(child);
        crate::fsio::write_atomic(&m.paths.pid, format!("{pid}\n").as_bytes(), 0o600)
            .map_err(io("write pid file"))?;
        Ok(pid)
    }

    fn stop(&self, m: &Managed, grace: Duration) -> Result<(), SuperviseError> {
        let ProcState::Running { pid } = self.status(m) else {
            let _ = fs::remove_file(&m.paths.pid);
            return Ok(());
        };
        let wait_gone = |limit: Duration| {
            let t = Instant::now();
            while t.elapsed() < limit {
                if !is_our_process(pid, m) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            !is_our_process(pid, m)
        };
        if !wait_gone(grace) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            if !wait_gone(Duration::from_secs(10)) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                if !wait_gone(Duration::from_secs(5)) {
                    return Err(SuperviseError::WontDie {
                        key: m.key.clone(),
                        pid,
                        secs: grace.as_secs() + 15,
                    });
                }
            }
        }
        let _ = fs::remove_file(&m.paths.pid);
        Ok(())
    }

    fn unregister(&self, m: &Managed) -> Result<(), SuperviseError> {
        match fs::remove_file(&m.paths.pid) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SuperviseError::Io {
                key: m.key.clone(),
                what: "remove pid file".into(),
                source,
            }),
        }
    }
}
