//! `redisctl agent FILE` (the process: locks, runtime, signals, systemd notifications, HTTP,
//! file watching around `crate::agent::Agent`), and `pause` / `resume`.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};

use super::{Cli, Exit, UserError, context, runtime};
use crate::agent::journal::{Journal, Priority};
use crate::agent::{Agent, Outcome, http, marks};
use crate::output::Printer;

pub fn run(cli: &Cli, file: &Path, out: &Printer) -> anyhow::Result<Exit> {
    let ctx = context(cli, file, out)?;
    let _agent_lock = crate::fsio::lock_agent(&ctx.state_dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            anyhow::Error::from(UserError(format!(
                "{e} (one agent per deployment and host)"
            )))
        } else {
            anyhow::anyhow!("cannot lock {}: {e}", ctx.state_dir.display())
        }
    })?;
    let file = std::path::absolute(file).with_context(|| format!("resolve {}", file.display()))?;
    let load = || context(cli, &file, out).map_err(|e| format!("{e:#}"));
    let rt = runtime()?;
    rt.block_on(async {
        let journal = Journal::new(&ctx.topology.name);
        let mut agent = Agent::new(ctx, &load, file.clone());
        // `host:PORT` binds this host's own address (the first local host's).
        let own = agent
            .ctx
            .local_hosts()
            .first()
            .and_then(|h| agent.ctx.topology.hosts.iter().find(|x| &x.name == h))
            .map(|h| h.address);
        let bind = match (agent.ctx.topology.agent.listen, own) {
            (Some(l), Some(ip)) => Some(l.bind(ip)),
            (Some(crate::topology::AgentListen::At(a)), None) => Some(a),
            _ => None,
        };
        if let Some(addr) = bind {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    tokio::spawn(http::serve(l, agent.shared.clone()));
                }
                Err(e) => journal.event(
                    Priority::Err,
                    "http_unavailable",
                    &format!("cannot listen on {addr} (agent.listen): {e}; no health endpoint"),
                    &[],
                ),
            }
        }
        let mut usec = 0;
        if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
            // Ping while the loop shows signs of life: a loop stuck longer than any round
            // can take (gates are bounded) stops the pings, and systemd restarts the agent.
            let period = Duration::from_micros(usec) / 2;
            let bound = agent.interval() + agent.ctx.gate_timeout * 3 + Duration::from_secs(30);
            let heartbeat = agent.heartbeat.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(period).await;
                    let fresh = heartbeat
                        .lock()
                        .map(|h| h.elapsed() < bound)
                        .unwrap_or(false);
                    if fresh {
                        let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
                    }
                }
            });
        }
        let wake = Arc::new(tokio::sync::Notify::new());
        watch_file(&file, wake.clone());
        let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        journal.event(
            Priority::Notice,
            "started",
            &format!(
                "agent for {} started (interval {} ms, pid {})",
                agent.ctx.topology.name,
                agent.ctx.topology.agent.interval_ms,
                std::process::id()
            ),
            &[],
        );
        let mut first = true;
        loop {
            let started = Instant::now();
            let outcome = tokio::select! {
                o = agent.round() => o,
                _ = term.recv() => break,
                _ = int.recv() => break,
            };
            let status = agent
                .shared
                .lock()
                .map(|s| s.status.clone())
                .unwrap_or_default();
            let mut states = vec![NotifyState::Status(&status)];
            if first {
                states.push(NotifyState::Ready);
                first = false;
            }
            let _ = sd_notify::notify(false, &states);
            let pause = match outcome {
                Outcome::Busy => agent.interval().min(Duration::from_millis(500)),
                Outcome::Idle => agent.interval().saturating_sub(started.elapsed()),
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = wake.notified() => {}
                _ = hup.recv() => {
                    journal.event(Priority::Notice, "reload", "SIGHUP: re-reading the topology", &[]);
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
        journal.event(Priority::Notice, "stopped", "agent stopped", &[]);
        anyhow::Ok(())
    })?;
    Ok(Exit::Ok)
}

/// inotify's fd for tokio's reactor.
struct Inotify(nix::sys::inotify::Inotify);

impl AsRawFd for Inotify {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Wake the loop when the topology file is written or replaced (editors rename a new file
/// over it, so the directory is watched). Without inotify, the loop still compares the file
/// at each round.
fn watch_file(file: &Path, wake: Arc<tokio::sync::Notify>) {
    use nix::sys::inotify::{AddWatchFlags, InitFlags};
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return;
    };
    let Ok(ino) = nix::sys::inotify::Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
    else {
        return;
    };
    let flags =
        AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CREATE;
    if ino.add_watch(dir, flags).is_err() {
        return;
    }
    // SAFETY: the registered fd belongs to the Inotify moved into the AsyncFd, so it stays
    // open exactly as long as the registration.
    let Ok(fd) = (unsafe { tokio::io::unix::AsyncFd::register(Inotify(ino)) }) else {
        return;
    };
    let name = name.to_os_string();
    tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable().await else {
                return;
            };
            match guard.get_inner().0.read_events() {
                Ok(events) => {
                    if events
                        .iter()
                        .any(|e| e.name.as_deref() == Some(name.as_os_str()))
                    {
                        wake.notify_one();
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => guard.clear_ready(),
                Err(_) => return,
            }
        }
    });
}

pub fn pause(cli: &Cli, file: &Path, reason: Option<&str>, out: &Printer) -> anyhow::Result<Exit> {
    let ctx = context(cli, file, out)?;
    let by = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| format!("uid {}", nix::unistd::getuid()));
    let mark = marks::PauseMark {
        since: crate::observe::unix_now(),
        by,
        reason: reason.map(str::to_string),
    };
    let already = marks::load_pause(&ctx.state_dir);
    if already.is_none() {
        marks::save_pause(&ctx.state_dir, &mark)
            .with_context(|| format!("write {}", marks::pause_path(&ctx.state_dir).display()))?;
    }
    let agent = marks::running(&ctx.state_dir);
    if out.json() {
        out.document(&serde_json::json!({
            "ok": true, "paused": true, "already": already.is_some(),
            "agent_pid": agent.as_ref().map(|a| a.0),
        }));
    } else {
        println!(
            "{} the agent of {:?} on this host: it observes and reports, and changes nothing until `redisctl resume`.{}",
            if already.is_some() {
                "Already paused:"
            } else {
                "Paused"
            },
            ctx.topology.name,
            match agent {
                Some((pid, _)) => format!(" (agent running, pid {pid})"),
                None => " (no agent is running now; the mark stays)".into(),
            }
        );
    }
    Ok(Exit::Ok)
}

pub fn resume(cli: &Cli, file: &Path, out: &Printer) -> anyhow::Result<Exit> {
    let ctx = context(cli, file, out)?;
    let was = marks::clear_pause(&ctx.state_dir)
        .with_context(|| format!("remove {}", marks::pause_path(&ctx.state_dir).display()))?;
    if out.json() {
        out.document(&serde_json::json!({ "ok": true, "paused": false, "was_paused": was }));
    } else if was {
        println!(
            "Resumed: the agent of {:?} heals again from its next round.",
            ctx.topology.name
        );
    } else {
        println!("Not paused: nothing to resume.");
    }
    Ok(Exit::Ok)
}

/// The agent of this deployment on this host for `status --output json`.
pub fn state(state_dir: &Path) -> serde_json::Value {
    let paused = marks::load_pause(state_dir);
    match marks::running(state_dir) {
        Some((pid, report)) => serde_json::json!({
            "running": true, "pid": pid, "paused": paused,
            "status": report.as_ref().map(|r| r.status.clone()),
            "converged": report.as_ref().map(|r| r.converged),
            "waiting_for_apply": report.as_ref().map(|r| r.waiting_for_apply),
        }),
        None => serde_json::json!({ "running": false, "paused": paused }),
    }
}

/// One line for `status`: "agent: running (pid N): …", "agent: paused …", "agent: not running".
pub fn describe(state_dir: &Path) -> String {
    let paused = marks::load_pause(state_dir).map(|m| {
        format!(
            "paused by {} (since unix time {}{}; `redisctl resume FILE`)",
            m.by,
            m.since,
            m.reason.map(|r| format!(", {r}")).unwrap_or_default()
        )
    });
    match (marks::running(state_dir), paused) {
        (Some((pid, _)), Some(p)) => format!("agent: {p}, running (pid {pid})"),
        (Some((pid, Some(r))), None) if r.waiting_for_apply => {
            format!(
                "agent: running (pid {pid}), waiting for apply: {}",
                r.status
            )
        }
        (Some((pid, Some(r))), None) => format!("agent: running (pid {pid}): {}", r.status),
        (Some((pid, None)), None) => format!("agent: running (pid {pid}), no report yet"),
        (None, Some(p)) => format!("agent: not running; {p}"),
        (None, None) => {
            "agent: not running (`redisctl agent FILE`, unit redisctl-agent@NAME)".into()
        }
    }
}
