//! `<state_dir>/state.json`: the node ids redisctl created (its proof of ownership), the old
//! identities of nodes recreated empty, and the nodes a scale-in retired. Reading, the
//! atomic write, and which ids an observation lets redisctl record. Owns no other file.

use std::path::{Path, PathBuf};

use super::ExecError;
use crate::fsio;
use crate::observe::{FORGET_BAN, Observed, Record};
use crate::supervise::ProcState;

pub fn record_path(state_dir: &Path) -> PathBuf {
    state_dir.join("state.json")
}

/// The record of deployment `name`; an empty one when there is none (or it is another
/// deployment's, or unreadable).
pub fn load_record(state_dir: &Path, name: &str) -> Record {
    std::fs::read(record_path(state_dir))
        .ok()
        .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        .filter(|r| r.deployment == name)
        .unwrap_or_else(|| Record {
            deployment: name.to_string(),
            ..Record::default()
        })
}

/// Write the record atomically (temp file, fsync, rename), creating the state directory.
pub fn save(state_dir: &Path, record: &Record) -> Result<(), ExecError> {
    let path = record_path(state_dir);
    let err = |source| ExecError::State {
        path: path.display().to_string(),
        source,
    };
    fsio::ensure_dir(state_dir, 0o750).map_err(err)?;
    let body = serde_json::to_vec_pretty(record).unwrap_or_default();
    fsio::write_atomic(&path, &body, 0o640).map_err(err)?;
    Ok(())
}

/// The observed record plus what the observation proves is ours (at unix time `now`): the
/// id of every empty node whose process redisctl runs (the id it had there before goes to
/// `replaced`), and a retired node declared again and running under its recorded id. A
/// retirement is dropped once the node is recorded again and Redis's 60 s ban has passed.
pub fn with_fresh_nodes(obs: &Observed, now: u64) -> Record {
    let mut record = obs.record.clone();
    for (key, o) in &obs.nodes {
        // Only processes we run (or remote ones, which their host's redisctl runs).
        let ours = !matches!(o.process, ProcState::Stopped | ProcState::Stale { .. });
        // A retired node declared again and running: a member again (the retirement is
        // kept while the cluster still refuses it; see Step::Meet).
        let k = key.to_string();
        if let Some(l) = &o.live
            && ours
            && let Some(r) = record.retired.get(&k)
            && r.id == l.myself.id
        {
            record.node_ids.insert(k.clone(), r.id.clone());
        }
        if record
            .retired
            .get(&k)
            .is_some_and(|r| r.at + FORGET_BAN.as_secs() < now && record.node_ids.contains_key(&k))
        {
            record.retired.remove(&k);
        }
        if let Some(l) = &o.live
            && l.is_fresh()
            && ours
            && let Some(old) = record.node_ids.insert(key.to_string(), l.myself.id.clone())
            && old != l.myself.id
            && !record.replaced.contains(&old)
        {
            record.replaced.push(old);
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::parse::{Flags, NodeLine};
    use crate::observe::{Live, NodeObs};
    use crate::topology::InstanceKey;

    fn node(process: ProcState, id: &str, fresh: bool) -> NodeObs {
        let myself = NodeLine {
            id: id.into(),
            ip: "127.0.0.1".into(),
            port: 7000,
            bus_port: 17000,
            flags: Flags::default(),
            master_id: None,
            config_epoch: 0,
            connected: true,
            slots: Vec::new(),
            migrating: Vec::new(),
            importing: Vec::new(),
        };
        NodeObs {
            endpoint: "127.0.0.1:7000".into(),
            process,
            live: Some(Live {
                myself,
                peers: Vec::new(),
                info: Default::default(),
                keys: if fresh { 0 } else { 5 },
                cluster_enabled: true,
                current_epoch: 0,
                cluster_state: "fail".into(),
            }),
            error: None,
            auth_failed: false,
            port_answers: true,
            has_nodes_conf: true,
            config_drift: false,
            repl: None,
            sentinel: None,
            live_drift: Vec::new(),
            acl_drift: Vec::new(),
            stale_auth: Vec::new(),
            peer_pass_stale: false,
        }
    }

    fn key(port: u16) -> InstanceKey {
        InstanceKey {
            host: "h".into(),
            port,
        }
    }

    #[test]
    fn only_empty_nodes_redisctl_runs_are_recorded_and_old_ids_are_kept_as_replaced() {
        let mut obs = Observed::default();
        obs.record.node_ids.insert("h:7000".into(), "old".into());
        obs.nodes
            .insert(key(7000), node(ProcState::Running { pid: 1 }, "new", true));
        obs.nodes.insert(
            key(7001),
            node(ProcState::Running { pid: 2 }, "full", false),
        );
        obs.nodes
            .insert(key(7002), node(ProcState::Stopped, "foreign", true));
        let r = with_fresh_nodes(&obs, 0);
        assert_eq!(r.id_of(&key(7000)), Some("new"));
        assert_eq!(r.replaced, ["old"]);
        assert_eq!(r.id_of(&key(7001)), None, "holds data: not provably ours");
        assert_eq!(
            r.id_of(&key(7002)),
            None,
            "a process redisctl did not start"
        );
    }
}
