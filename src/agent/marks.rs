//! Files the agent shares with the commands a person runs: the pause mark (`redisctl pause`),
//! and the agent's last report (read by `redisctl status`). Writes go through fsio.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsio;

/// `redisctl pause FILE`: the agent observes and reports, and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseMark {
    /// Unix time of the pause.
    pub since: u64,
    /// Who paused (the login name, when known).
    pub by: String,
    #[serde(default)]
    pub reason: Option<String>,
}

pub fn pause_path(state_dir: &Path) -> PathBuf {
    state_dir.join("agent.paused")
}

pub fn load_pause(state_dir: &Path) -> Option<PauseMark> {
    let text = std::fs::read(pause_path(state_dir)).ok()?;
    // An unreadable mark still pauses: the file's presence is the decision.
    Some(serde_json::from_slice(&text).unwrap_or(PauseMark {
        since: 0,
        by: "unknown".into(),
        reason: None,
    }))
}

pub fn save_pause(state_dir: &Path, mark: &PauseMark) -> std::io::Result<bool> {
    fsio::ensure_dir(state_dir, 0o750)?;
    let body = serde_json::to_vec_pretty(mark).unwrap_or_default();
    fsio::write_atomic(&pause_path(state_dir), &body, 0o640)
}

/// Remove the mark; whether there was one.
pub fn clear_pause(state_dir: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(pause_path(state_dir)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// What the agent last reported, for `redisctl status` (the agent rewrites it each round).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub pid: u32,
    /// Unix time of the report.
    pub at: u64,
    pub status: String,
    pub converged: bool,
    pub paused: bool,
    pub waiting_for_apply: bool,
    /// Rounds since the agent started (a test or a person can wait for the next one).
    #[serde(default)]
    pub rounds: u64,
}

pub fn report_path(state_dir: &Path) -> PathBuf {
    state_dir.join("agent.json")
}

pub fn save_report(state_dir: &Path, r: &Report) -> std::io::Result<bool> {
    let body = serde_json::to_vec_pretty(r).unwrap_or_default();
    fsio::write_atomic(&report_path(state_dir), &body, 0o640)
}

pub fn load_report(state_dir: &Path) -> Option<Report> {
    serde_json::from_slice(&std::fs::read(report_path(state_dir)).ok()?).ok()
}

/// The agent of this deployment on this host, as `status` shows it: None when none runs.
pub fn running(state_dir: &Path) -> Option<(u32, Option<Report>)> {
    let pid = fsio::agent_pid(state_dir)?;
    Some((pid, load_report(state_dir).filter(|r| r.pid == pid)))
}
