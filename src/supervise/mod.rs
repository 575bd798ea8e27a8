//! Supervisors run instances. One trait, one backend per service manager: `process`
//! (built-in, detached children with pid files) and `systemd` (units, systemctl). The executor
//! talks Redis (SHUTDOWN, PING); supervisors only start, signal and report processes.

pub mod process;
pub mod systemd;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::render::InstancePaths;
use crate::topology::InstanceKey;

/// What a supervisor needs to know about one instance.
#[derive(Debug, Clone)]
pub struct Managed {
    pub key: InstanceKey,
    pub address: std::net::IpAddr,
    pub port: u16,
    pub paths: InstancePaths,
    /// `redis-server` (or `valkey-server`) binary.
    pub binary: PathBuf,
    /// Feed the configuration on stdin (`redis-server -`) instead of naming the file. Redis
    /// then has no config file to rewrite, so `CONFIG REWRITE` — which Sentinel issues after
    /// every reconfiguration — cannot copy the password into redis.conf or fight redisctl
    /// over it. Sentinels need a file of their own and set this to false.
    pub config_via_stdin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ProcState {
    /// Our process is running.
    Running { pid: u32 },
    /// Not running (no pid file).
    Stopped,
    /// A pid file names a process that is gone or is not this instance.
    Stale { pid: u32 },
    /// The host is not this machine: its own `apply` supervises it.
    Remote,
}

#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error(
        "{endpoint} is already in use by a process redisctl did not start (no matching pid file in {dir}); stop that process or change the port in the topology"
    )]
    PortTaken { endpoint: String, dir: String },
    #[error("{key}: cannot start {binary}: {source}")]
    Spawn {
        key: InstanceKey,
        binary: String,
        source: std::io::Error,
    },
    #[error("{key}: {what}: {source}")]
    Io {
        key: InstanceKey,
        what: String,
        source: std::io::Error,
    },
    #[error("{key} ({unit}): {message}")]
    Unit {
        key: InstanceKey,
        unit: String,
        message: String,
    },
    #[error("{key}: pid {pid} did not exit within {secs} s, even after SIGKILL")]
    WontDie {
        key: InstanceKey,
        pid: u32,
        secs: u64,
    },
}

pub trait Supervisor: Send + Sync {
    fn name(&self) -> &'static str;
    fn status(&self, m: &Managed) -> ProcState;
    /// Start the instance with its rendered config; returns its pid. Refuses when the port
    /// is held by a process that is not this instance. `args` are extra command-line
    /// options for this start only (e.g. `--replicaof HOST PORT`), never persisted.
    fn start(&self, m: &Managed, args: &[String]) -> Result<u32, SuperviseError>;
    /// Make sure the process is gone: wait `grace` (after the executor's SHUTDOWN), then
    /// SIGTERM, then SIGKILL.
    fn stop(&self, m: &Managed, grace: Duration) -> Result<(), SuperviseError>;
    /// Forget the instance (units, pid files). Never touches data.
    fn unregister(&self, m: &Managed) -> Result<(), SuperviseError>;
    /// Keep a stopped instance stopped: not started at boot (drain). The next `start`
    /// undoes it. Nothing to do for the process supervisor, which starts nothing by itself.
    fn hold(&self, _m: &Managed) -> Result<(), SuperviseError> {
        Ok(())
    }
    /// The service manager is bringing the instance back by itself right now (systemd: the
    /// unit is activating or waiting to restart): nobody else should start it meanwhile.
    fn restarting(&self, _m: &Managed) -> bool {
        false
    }
    /// What the service manager knows beyond the pid (systemd: unit, state, restarts), for
    /// `redisctl status`.
    fn details(&self, _m: &Managed) -> Option<serde_json::Value> {
        None
    }
}
