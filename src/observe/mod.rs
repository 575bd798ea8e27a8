//! Observation: what the live deployment looks like right now. One task per instance, each
//! with bounded timeouts; the result is a plain value (`Observed`) the planner reads without
//! any further I/O.

pub mod client;
pub mod parse;
pub mod resp;

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
}

impl Record {
    pub fn id_of(&self, key: &InstanceKey) -> Option<&str> {
        self.node_ids.get(&key.to_string()).map(String::as_str)
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
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    pub nodes: BTreeMap<InstanceKey, NodeObs>,
    pub record: Record,
}

/// One instance to observe, with the files it should have.
pub struct Target {
    pub managed: Managed,
    pub endpoint: String,
    pub local: bool,
    pub rendered: Vec<crate::render::RenderedFile>,
}

pub struct Observer {
    pub supervisor: Arc<dyn Supervisor>,
    pub password: Option<String>,
    pub timeout: Duration,
}

impl Observer {
    pub async fn observe(&self, targets: &[Target], record: Record) -> Observed {
        let mut set = tokio::task::JoinSet::new();
        for (i, t) in targets.iter().enumerate() {
            let sup = self.supervisor.clone();
            let pw = self.password.clone();
            let limit = self.timeout;
            let managed = t.managed.clone();
            let endpoint = t.endpoint.clone();
            let local = t.local;
            let rendered = t.rendered.clone();
            set.spawn(async move {
                (
                    i,
                    observe_one(sup, managed, endpoint, local, rendered, pw, limit).await,
                )
            });
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
            });
            nodes.insert(t.managed.key.clone(), obs);
        }
        Observed { nodes, record }
    }
}

async fn observe_one(
    sup: Arc<dyn Supervisor>,
    m: Managed,
    endpoint: String,
    local: bool,
    rendered: Vec<crate::render::RenderedFile>,
    password: Option<String>,
    limit: Duration,
) -> NodeObs {
    let (process, has_nodes_conf, config_drift) = if local {
        let paths: &InstancePaths = &m.paths;
        let drift = rendered.iter().any(|f| {
            std::fs::read(&f.path)
                .map(|b| b != f.contents)
                .unwrap_or(true)
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
        endpoint: endpoint.clone(),
        process,
        live: None,
        error: None,
        auth_failed: false,
        port_answers: false,
        has_nodes_conf,
        config_drift,
    };
    match fetch(&endpoint, password.as_deref(), limit).await {
        Ok(live) => {
            obs.live = Some(live);
            obs.port_answers = true;
        }
        Err(e) => {
            obs.port_answers = !matches!(&e, FetchError::Client(c) if c.is_unreachable());
            obs.auth_failed = matches!(e, FetchError::Client(client::ClientError::Auth { .. }));
            obs.error = Some(e.to_string());
        }
    }
    obs
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("{0}: {1}")]
    Parse(String, String),
}

/// INFO + CLUSTER NODES + CLUSTER INFO of one node, in one round trip.
pub async fn fetch(
    endpoint: &str,
    password: Option<&str>,
    limit: Duration,
) -> Result<Live, FetchError> {
    let mut c = Conn::connect(endpoint, password, limit).await?;
    fetch_on(&mut c).await
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
