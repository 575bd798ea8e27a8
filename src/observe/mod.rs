//! Observation: what the live deployment looks like right now. One task per instance, each
//! with bounded timeouts; the result is a plain value (`Observed`) the planner reads without
//! any further I/O.

pub mod acl;
pub mod agent;
pub mod client;
pub mod parse;
pub mod resp;
pub mod tls;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::render::InstancePaths;
use crate::supervise::{Managed, ProcState, Supervisor};
use crate::topology::InstanceKey;
use client::Conn;
use parse::NodeLine;

/// What redisctl recorded about its own nodes (`<state_dir>/state.json`): a node at a
/// declared address whose id is not recorded here and that is not empty is not ours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub deployment: String,
    /// `host:port` → node id.
    pub node_ids: BTreeMap<String, String>,
    /// Ids of our nodes that were recreated empty under a new id: the cluster still lists them
    /// (failing, often without an address) until they are forgotten.
    #[serde(default)]
    pub replaced: Vec<String>,
    /// `host:port` → id of nodes a scale-in removed from the cluster, their data directory
    /// kept: declared again (scaling out once more), they are ours to bring back.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retired: BTreeMap<String, Retired>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    pub id: String,
    /// When it was forgotten (Unix seconds): the cluster refuses it for 60 s after that.
    pub at: u64,
}

/// How long Redis refuses a node id after `CLUSTER FORGET` (its "ban" list), plus a margin.
pub const FORGET_BAN: std::time::Duration = std::time::Duration::from_secs(61);

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Record {
    /// The id of our node at `key`, also when a scale-in retired it.
    pub fn id_of(&self, key: &InstanceKey) -> Option<&str> {
        let k = key.to_string();
        self.node_ids
            .get(&k)
            .or_else(|| self.retired.get(&k).map(|r| &r.id))
            .map(String::as_str)
    }
}

/// A live, answering instance.
#[derive(Debug, Clone, Serialize)]
pub struct Live {
    pub myself: NodeLine,
    /// Every other node this one knows about.
    pub peers: Vec<NodeLine>,
    #[serde(skip)]
    pub info: HashMap<String, String>,
    pub keys: u64,
    pub cluster_enabled: bool,
    pub current_epoch: u64,
    /// `cluster_state` from CLUSTER INFO: `ok` once the node serves all slots.
    pub cluster_state: String,
}

impl Live {
    /// Knows no other node, owns no slot, holds no key: safe to configure from scratch.
    pub fn is_fresh(&self) -> bool {
        self.peers.is_empty() && self.myself.slots.is_empty() && self.keys == 0
    }
    pub fn info(&self, field: &str) -> Option<&str> {
        self.info.get(field).map(String::as_str)
    }
    pub fn peer(&self, id: &str) -> Option<&NodeLine> {
        self.peers.iter().find(|p| p.id == id)
    }
    /// All lines of this node's view, itself included.
    pub fn view(&self) -> impl Iterator<Item = &NodeLine> {
        std::iter::once(&self.myself).chain(self.peers.iter())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeObs {
    pub endpoint: String,
    pub process: ProcState,
    pub live: Option<Live>,
    /// Why the node could not be observed, when it could not.
    pub error: Option<String>,
    /// The node refused our password (or needs one we do not have).
    pub auth_failed: bool,
    /// Something answers on the port (even if it could not be observed as a cluster node).
    pub port_answers: bool,
    /// data/nodes.conf exists: a restarted node comes back with its old identity.
    pub has_nodes_conf: bool,
    /// The rendered files on disk differ from what the topology renders now.
    pub config_drift: bool,
    /// A plain (non-cluster) replication group member.
    pub repl: Option<ReplLive>,
    /// A Sentinel.
    pub sentinel: Option<SentinelLive>,
    /// Declared live settings whose running value differs: (name, running, declared).
    pub live_drift: Vec<(String, String, String)>,
    /// Declared ACL users that differ from the live ones (observe/acl.rs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acl_drift: Vec<acl::AclDrift>,
    /// Passwords this instance authenticates with that are not the declared ones (never the
    /// passwords themselves): `masterauth` on a Redis instance, or the groups whose
    /// `auth-pass` differs on a local Sentinel (read from its own config file).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stale_auth: Vec<String>,
    /// A Sentinel whose `sentinel-pass` (what it sends to the other Sentinels) is not the
    /// last of redisctl's passwords (compared as hashes, `SENTINEL CONFIG GET`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub peer_pass_stale: bool,
}

/// A group member: its replication state from INFO.
#[derive(Debug, Clone, Serialize)]
pub struct ReplLive {
    pub is_master: bool,
    /// Where it replicates from (replicas).
    pub master_addr: Option<(String, u16)>,
    pub link_up: bool,
    pub sync_in_progress: bool,
    /// master_repl_offset on masters, slave_repl_offset on replicas.
    pub offset: i64,
    pub connected_replicas: u32,
    pub keys: u64,
    #[serde(skip)]
    pub info: HashMap<String, String>,
}

/// What one Sentinel monitors.
#[derive(Debug, Clone, Serialize)]
pub struct SentinelLive {
    pub masters: Vec<SentinelMaster>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SentinelMaster {
    pub name: String,
    pub ip: String,
    pub port: u16,
    pub flags: String,
    pub quorum: u32,
    pub down_after_ms: u64,
    pub failover_timeout_ms: u64,
    pub parallel_syncs: u32,
    pub num_replicas: u32,
    pub num_other_sentinels: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    pub nodes: BTreeMap<InstanceKey, NodeObs>,
    pub record: Record,
}

/// One instance to observe, with the files it should have.
#[derive(Clone)]
pub struct Target {
    pub managed: Managed,
    pub endpoint: String,
    pub local: bool,
    pub rendered: Vec<crate::render::RenderedFile>,
    pub kind: TargetKind,
    /// Settings to compare with `CONFIG GET` (Redis instances).
    pub live_params: Vec<(String, String)>,
    /// Declared ACL users (Redis instances, with `auth.users`).
    pub acl: Vec<crate::render::acl::AclUser>,
    /// The password this instance authenticates with: `masterauth` (Redis instances) or the
    /// groups' `auth-pass` (Sentinels). Compared, never printed.
    pub auth_pass: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Cluster,
    Group,
    Sentinel,
}

pub struct Observer {
    pub supervisor: Arc<dyn Supervisor>,
    pub password: Option<client::Credentials>,
    pub timeout: Duration,
}

impl Observer {
    pub async fn observe(&self, targets: &[Target], record: Record) -> Observed {
        let mut set = tokio::task::JoinSet::new();
        for (i, t) in targets.iter().enumerate() {
            let sup = self.supervisor.clone();
            let pw = self.password.clone();
            let limit = self.timeout;
            let t = t.clone();
            set.spawn(async move { (i, observe_one(sup, t, pw, limit).await) });
        }
        let mut results: Vec<Option<NodeObs>> = vec![None; targets.len()];
        while let Some(r) = set.join_next().await {
            if let Ok((i, obs)) = r {
                results[i] = Some(obs);
            }
        }
        let mut nodes = BTreeMap::new();
        for (t, r) in targets.iter().zip(results) {
            let obs = r.unwrap_or_else(|| NodeObs {
                endpoint: t.endpoint.clone(),
                process: ProcState::Stopped,
                live: None,
                error: Some("observation task failed".into()),
                auth_failed: false,
                port_answers: false,
                has_nodes_conf: false,
                config_drift: false,
                repl: None,
                sentinel: None,
                live_drift: Vec::new(),
                acl_drift: Vec::new(),
                stale_auth: Vec::new(),
                peer_pass_stale: false,
            });
            nodes.insert(t.managed.key.clone(), obs);
        }
        Observed { nodes, record }
    }
}

async fn observe_one(
    sup: Arc<dyn Supervisor>,
    t: Target,
    password: Option<client::Credentials>,
    limit: Duration,
) -> NodeObs {
    let m = &t.managed;
    let (process, has_nodes_conf, config_drift) = if t.local {
        let paths: &InstancePaths = &m.paths;
        let drift = t.rendered.iter().any(|f| match t.kind {
            // Sentinel owns its file after the first write.
            TargetKind::Sentinel => !f.path.exists(),
            _ => std::fs::read(&f.path)
                .map(|b| b != f.contents)
                .unwrap_or(true),
        });
        let sup2 = sup.clone();
        let m2 = m.clone();
        let process = tokio::task::spawn_blocking(move || sup2.status(&m2))
            .await
            .unwrap_or(ProcState::Stopped);
        (process, paths.data.join("nodes.conf").exists(), drift)
    } else {
        (ProcState::Remote, false, false)
    };
    let mut obs = NodeObs {
        endpoint: t.endpoint.clone(),
        process,
        live: None,
        error: None,
        auth_failed: false,
        port_answers: false,
        has_nodes_conf,
        config_drift,
        repl: None,
        sentinel: None,
        live_drift: Vec::new(),
        acl_drift: Vec::new(),
        stale_auth: Vec::new(),
        peer_pass_stale: false,
    };
    let result: Result<(), FetchError> = async {
        // Sentinels keep `requirepass`: redisctl is their default user.
        let creds = match t.kind {
            TargetKind::Sentinel => password.as_ref().map(client::Credentials::without_user),
            _ => password,
        };
        let mut c = Conn::connect(&t.endpoint, creds.as_ref(), limit).await?;
        match t.kind {
            TargetKind::Cluster => obs.live = Some(fetch_on(&mut c).await?),
            TargetKind::Group => obs.repl = Some(fetch_repl(&mut c).await?),
            TargetKind::Sentinel => obs.sentinel = Some(fetch_sentinel(&mut c).await?),
        }
        if t.kind != TargetKind::Sentinel && !t.live_params.is_empty() {
            obs.live_drift = live_drift(&mut c, &t.live_params).await?;
        }
        if t.kind == TargetKind::Sentinel && t.local && !t.live_params.is_empty() {
            // Sentinel has no CONFIG GET: what it runs with is what its sentinel.conf says.
            let conf = std::fs::read_to_string(&m.paths.config).unwrap_or_default();
            obs.live_drift = conf_drift(&conf, &t.live_params);
        }
        if t.kind != TargetKind::Sentinel {
            obs.acl_drift = acl::drift(&mut c, &t.acl).await?;
        } else if let Some(default) = t.acl.first() {
            // A Sentinel's own password: its default user's, and the one it sends to the
            // other Sentinels (no MULTI in Sentinel mode: hashes only, rules are its own).
            obs.acl_drift = acl::sentinel_drift(&mut c, default).await?;
            obs.peer_pass_stale = acl::peer_pass_stale(&mut c, default).await?;
        }
        if let Some(want) = &t.auth_pass {
            obs.stale_auth = match t.kind {
                TargetKind::Sentinel if t.local => {
                    let groups: Vec<&str> = obs
                        .sentinel
                        .iter()
                        .flat_map(|s| &s.masters)
                        .map(|m| m.name.as_str())
                        .collect();
                    let text = std::fs::read_to_string(&m.paths.config).unwrap_or_default();
                    acl::stale_auth_pass(&text, &groups, want)
                }
                TargetKind::Sentinel => Vec::new(),
                _ => {
                    let r = c.cmd(&["CONFIG", "GET", "masterauth"]).await?;
                    let have = match &r {
                        resp::Value::Array(items) => items.get(1).and_then(resp::Value::as_text),
                        _ => None,
                    };
                    if have.as_deref() == Some(want.as_str()) {
                        Vec::new()
                    } else {
                        vec!["masterauth".to_string()]
                    }
                }
            };
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => obs.port_answers = true,
        Err(e) => {
            obs.port_answers = !matches!(&e, FetchError::Client(c) if c.is_unreachable());
            obs.auth_failed = matches!(e, FetchError::Client(client::ClientError::Auth { .. }));
            obs.error = Some(e.to_string());
            // TLS is declared, the handshake failed, and the port speaks plain RESP: the
            // instance runs from before `tls.mode: on`. Refused (like a wrong password), with
            // the way out, rather than waited for.
            if matches!(
                &e,
                FetchError::Client(
                    client::ClientError::Tls { .. }
                        | client::ClientError::Io { .. }
                        | client::ClientError::Timeout { .. }
                )
            ) && tls::connector().is_some()
                && client::probe_plain(&t.endpoint, limit).await == client::PlainProbe::Resp
            {
                obs.port_answers = true;
                obs.auth_failed = true;
                obs.error = Some(format!(
                    "{} answers plain TCP, but the topology says tls.mode: on; a running cluster is switched live through tls.mode: both with tls.port_offset first (docs/security.md, \"Turning TLS on\"), a group by restarting every instance: set tls.mode: off to keep managing it as it runs",
                    t.endpoint
                ));
            }
            // The other way round: `tls.mode: off` declared, and the port drops plain
            // clients the way a TLS-only instance does. (Only then: without a tls section, a
            // connection dropped mid-observation is a node going away, waited for as ever.)
            else if matches!(&e, FetchError::Client(client::ClientError::Io { .. }))
                && tls::connector().is_none()
                && tls::declared_off()
                && client::probe_plain(&t.endpoint, limit).await == client::PlainProbe::Closed
            {
                obs.port_answers = true;
                obs.auth_failed = true;
                obs.error = Some(format!(
                    "{} closes plain connections without a RESP answer, as a TLS-only instance does, but the topology says its declared port is plain (tls.mode: off or both); redisctl does not switch a TLS-only instance back to plain live (every instance must restart with the new configuration, see docs/security.md): set tls.mode: on to keep managing it as it runs",
                    t.endpoint
                ));
            }
            obs.live = None;
            obs.repl = None;
            obs.sentinel = None;
        }
    }
    obs
}

/// A TLS file setting naming the same file by another spelling (`/x/./state/…` from a
/// relative topology path, `/x/state/…` from an absolute one): not a drift.
fn same_file(name: &str, have: &str, want: &str) -> bool {
    name.starts_with("tls-")
        && match (std::fs::canonicalize(have), std::fs::canonicalize(want)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

/// Declared settings that a configuration file sets otherwise: (name, in the file,
/// declared). A directive the file lacks counts as the empty string.
pub fn conf_drift(conf: &str, wanted: &[(String, String)]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (name, want) in wanted {
        let have = conf
            .lines()
            .find_map(|l| {
                let (k, v) = l.trim().split_once(' ')?;
                (k.eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"').to_string())
            })
            .unwrap_or_default();
        if have != *want && !same_file(name, &have, want) {
            out.push((name.clone(), have, want.clone()));
        }
    }
    out
}

/// Declared settings whose running value differs: (name, running, declared).
pub async fn live_drift(
    c: &mut Conn,
    wanted: &[(String, String)],
) -> Result<Vec<(String, String, String)>, FetchError> {
    let cmds: Vec<Vec<String>> = wanted
        .iter()
        .map(|(k, _)| vec!["CONFIG".to_string(), "GET".into(), k.clone()])
        .collect();
    let refs: Vec<&[String]> = cmds.iter().map(Vec::as_slice).collect();
    let replies = c.pipeline(&refs).await?;
    let mut out = Vec::new();
    for ((name, want), reply) in wanted.iter().zip(replies) {
        // [name, value]; an unknown parameter (older engine) yields an empty array: skip.
        if let resp::Value::Array(items) = reply
            && let Some(have) = items.get(1).and_then(resp::Value::as_text)
            && have != *want
            && !same_file(name, &have, want)
        {
            out.push((name.clone(), have, want.clone()));
        }
    }
    Ok(out)
}

/// INFO of a plain replication member.
pub async fn fetch_repl(c: &mut Conn) -> Result<ReplLive, FetchError> {
    let info = parse::info(&c.text(&["INFO", "everything"]).await?);
    if info.get("cluster_enabled").map(String::as_str) == Some("1") {
        return Err(FetchError::Parse(
            c.addr().to_string(),
            "cluster mode is enabled on this node, but the topology declares it in a replication group".into(),
        ));
    }
    let num = |k: &str| info.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let is_master = info.get("role").map(String::as_str) == Some("master");
    let master_addr = match (info.get("master_host"), info.get("master_port")) {
        (Some(h), Some(p)) if !is_master => p.parse().ok().map(|p| (h.clone(), p)),
        _ => None,
    };
    Ok(ReplLive {
        is_master,
        master_addr,
        link_up: info.get("master_link_status").map(String::as_str) == Some("up"),
        sync_in_progress: info.get("master_sync_in_progress").map(String::as_str) == Some("1"),
        offset: if is_master {
            num("master_repl_offset")
        } else {
            num("slave_repl_offset")
        },
        connected_replicas: num("connected_slaves").max(0) as u32,
        keys: parse::keyspace_keys(&info),
        info,
    })
}

/// A Sentinel listing (SENTINEL MASTERS / REPLICAS): an array of flat field-value arrays.
pub fn field_maps(v: &resp::Value) -> Vec<HashMap<String, String>> {
    let resp::Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let resp::Value::Array(kv) = item else {
                return None;
            };
            Some(
                kv.chunks(2)
                    .filter_map(|p| Some((p.first()?.as_text()?, p.get(1)?.as_text()?)))
                    .collect(),
            )
        })
        .collect()
}

/// SENTINEL MASTERS of a Sentinel.
pub async fn fetch_sentinel(c: &mut Conn) -> Result<SentinelLive, FetchError> {
    let v = c.cmd(&["SENTINEL", "MASTERS"]).await?;
    let mut masters = Vec::new();
    for map in field_maps(&v) {
        let n = |k: &str| map.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        masters.push(SentinelMaster {
            name: map.get("name").cloned().unwrap_or_default(),
            ip: map.get("ip").cloned().unwrap_or_default(),
            port: n("port") as u16,
            flags: map.get("flags").cloned().unwrap_or_default(),
            quorum: n("quorum") as u32,
            down_after_ms: n("down-after-milliseconds"),
            failover_timeout_ms: n("failover-timeout"),
            parallel_syncs: n("parallel-syncs") as u32,
            num_replicas: n("num-slaves") as u32,
            num_other_sentinels: n("num-other-sentinels") as u32,
        });
    }
    Ok(SentinelLive { masters })
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("{0}: {1}")]
    Parse(String, String),
}

pub async fn fetch_on(c: &mut Conn) -> Result<Live, FetchError> {
    let info_text = c.text(&["INFO", "everything"]).await?;
    let info = parse::info(&info_text);
    let cluster_enabled = info.get("cluster_enabled").map(String::as_str) == Some("1");
    let addr = c.addr().to_string();
    if !cluster_enabled {
        return Err(FetchError::Parse(
            addr,
            "cluster mode is disabled on this node (cluster-enabled no); it is not one of ours"
                .into(),
        ));
    }
    let replies = c
        .pipeline(&[&["CLUSTER", "NODES"][..], &["CLUSTER", "INFO"][..]])
        .await?;
    let nodes_text = replies
        .first()
        .and_then(resp::Value::as_text)
        .unwrap_or_default();
    let cinfo = parse::info(
        &replies
            .get(1)
            .and_then(resp::Value::as_text)
            .unwrap_or_default(),
    );
    let lines = parse::cluster_nodes(&nodes_text)
        .map_err(|e| FetchError::Parse(addr.clone(), e.to_string()))?;
    let (mine, peers): (Vec<NodeLine>, Vec<NodeLine>) =
        lines.into_iter().partition(|l| l.flags.myself);
    let myself = mine.into_iter().next().ok_or_else(|| {
        FetchError::Parse(addr.clone(), "CLUSTER NODES has no myself line".into())
    })?;
    Ok(Live {
        myself,
        peers,
        keys: parse::keyspace_keys(&info),
        current_epoch: cinfo
            .get("cluster_current_epoch")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        cluster_state: cinfo.get("cluster_state").cloned().unwrap_or_default(),
        info,
        cluster_enabled,
    })
}
