//! The validated topology: every value checked, every default filled in, every node placed.
//! Later layers (render, plan) trust it and never re-check input.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use super::raw::{Fsync, Role, TlsMode};
use super::slots::{SlotRange, weighted_split};

#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    pub name: String,
    /// Directory of the topology file; relative paths in it were resolved against it.
    pub base_dir: PathBuf,
    /// State root from the file, if any (`--state-dir` overrides at the CLI).
    pub state_dir: Option<PathBuf>,
    pub hosts: Vec<Host>,
    pub auth: Option<Auth>,
    pub cluster: Option<Cluster>,
    pub groups: Vec<Group>,
    pub sentinel: Option<Sentinels>,
    /// The per-host control loop (`agent:`; defaults when absent).
    pub agent: AgentSettings,
    /// TLS of every instance (`tls:`); None or mode off: plain TCP.
    pub tls: Option<Tls>,
}

/// TLS settings, checked. Paths are resolved against the topology's directory; the files
/// themselves are read (and checked) by the CLI, never here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tls {
    pub mode: TlsMode,
    /// `tls.port_offset` (0: none): mode `both` serves TLS on the declared port + this.
    pub port_offset: u16,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// redisctl's own certificate and key; None: the host's instance certificate.
    pub client: Option<(PathBuf, PathBuf)>,
    /// `tls-auth-clients` as Redis spells it: `yes`, `optional` or `no`.
    pub auth_clients: &'static str,
    pub expiry_warning_days: u32,
}

impl Tls {
    /// The certificate and key of `host`'s instances (its override, else the default).
    pub fn pair_of<'a>(&'a self, host: &'a Host) -> (&'a Path, &'a Path) {
        match &host.tls {
            Some((c, k)) => (c, k),
            None => (&self.cert_file, &self.key_file),
        }
    }
}

/// Default address of the agent's health and metrics endpoint.
pub const AGENT_LISTEN: &str = "127.0.0.1:9187";

/// `redisctl agent`: how often it runs and what it may do alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentSettings {
    pub interval_ms: u64,
    /// None: no HTTP endpoint.
    pub listen: Option<AgentListen>,
    pub restore_roles: bool,
    pub stable_for_ms: u64,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            interval_ms: 5000,
            listen: AGENT_LISTEN.parse().ok().map(AgentListen::At),
            restore_roles: false,
            stable_for_ms: 60_000,
        }
    }
}

/// Where each host's agent answers HTTP (`agent.listen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AgentListen {
    /// One address for every host's agent (`IP:PORT`).
    At(std::net::SocketAddr),
    /// Each host's agent on its own `hosts[].address` (`host:PORT`): the other hosts can ask
    /// it (e.g. whether it is drained).
    HostAddress(u16),
}

impl AgentListen {
    /// The address the agent of a host with address `host` binds.
    pub fn bind(&self, host: std::net::IpAddr) -> std::net::SocketAddr {
        match *self {
            AgentListen::At(a) => a,
            AgentListen::HostAddress(port) => std::net::SocketAddr::new(host, port),
        }
    }

    /// Where another machine reaches the agent of a host with address `host`, or why it
    /// cannot (an agent bound to loopback answers only on its own host).
    pub fn reach(&self, host: std::net::IpAddr) -> Result<std::net::SocketAddr, String> {
        match *self {
            AgentListen::HostAddress(port) => Ok(std::net::SocketAddr::new(host, port)),
            AgentListen::At(a) if a.ip().is_unspecified() => {
                Ok(std::net::SocketAddr::new(host, a.port()))
            }
            AgentListen::At(a) if a.ip() == host => Ok(a),
            AgentListen::At(a) => Err(format!(
                "its agent listens on {a} (agent.listen), which other hosts cannot reach; `listen: host:{}` has each agent answer on its host's address",
                a.port()
            )),
        }
    }
}

impl std::fmt::Display for AgentListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentListen::At(a) => write!(f, "{a}"),
            AgentListen::HostAddress(p) => write!(f, "host:{p}"),
        }
    }
}

/// A plain master–replica group.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    /// The preferred master.
    pub master: Instance,
    pub replicas: Vec<Instance>,
    /// Declared upstream of each replica (the master, or another replica for chains).
    pub upstream: BTreeMap<InstanceKey, InstanceKey>,
}

impl Group {
    pub fn members(&self) -> impl Iterator<Item = &Instance> {
        std::iter::once(&self.master).chain(self.replicas.iter())
    }
    pub fn member(&self, key: &InstanceKey) -> Option<&Instance> {
        self.members().find(|m| &m.key == key)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Sentinels {
    pub instances: Vec<SentinelInstance>,
    pub quorum: u32,
    pub down_after_ms: u64,
    pub failover_timeout_ms: u64,
    pub parallel_syncs: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct SentinelInstance {
    pub key: InstanceKey,
    pub address: IpAddr,
    pub port: u16,
    pub bind: Vec<IpAddr>,
}

impl SentinelInstance {
    pub fn endpoint(&self) -> String {
        std::net::SocketAddr::new(self.address, self.port).to_string()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub name: String,
    pub address: IpAddr,
    pub zone: Option<String>,
    /// `hosts[].tls`: this host's certificate and key (resolved paths).
    pub tls: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Auth {
    /// redisctl's own password files (`auth.password_file`, or `auth.password_files` while
    /// it is rotated): every one accepted, the last one the one the others switch to.
    pub password_files: Vec<PathBuf>,
    /// Declared as the list `auth.password_files` (else `auth.password_file`).
    pub password_list: bool,
    /// ACL users (`auth.users` or `auth.default_user` given); None: one shared password.
    pub acl: Option<Acl>,
}

impl Auth {
    /// The topology field of redisctl's `j`-th password file, for diagnostics.
    pub fn password_field(&self, j: usize) -> String {
        if self.password_list {
            format!("auth.password_files[{j}]")
        } else {
            "auth.password_file".to_string()
        }
    }
}

/// ACL users of every Redis instance (topology/users.rs validates them).
#[derive(Debug, Clone, Serialize)]
pub struct Acl {
    /// The `default` user keeps `auth.password_file` and every permission; else it is off.
    pub default_user_enabled: bool,
    pub users: Vec<User>,
    /// `redisctl-replication`'s password files; empty: derived from `password_file`.
    pub replication_password_files: Vec<PathBuf>,
    /// `redisctl-sentinel`'s password files; empty: derived from `password_file`.
    pub sentinel_password_files: Vec<PathBuf>,
}

/// An application's ACL user, checked: known commands and categories, patterns without
/// spaces, at least one password file.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub name: String,
    pub commands: Vec<String>,
    pub keys: Vec<String>,
    pub channels: Vec<String>,
    pub password_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub settings: ClusterSettings,
    /// Shards in order; shard `i` owns the `i`-th range of the (weighted) split.
    pub shards: Vec<Shard>,
    /// Relative slot share of each shard (same length as `shards`; all 1 by default).
    pub weights: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterSettings {
    pub node_timeout_ms: u64,
    pub require_full_coverage: bool,
    pub migration_barrier: u32,
    pub allow_replica_migration: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Shard {
    /// 1-based shard number as written in the topology.
    pub number: u32,
    pub master: Instance,
    pub replicas: Vec<Instance>,
}

impl Shard {
    pub fn members(&self) -> impl Iterator<Item = &Instance> {
        std::iter::once(&self.master).chain(self.replicas.iter())
    }
}

/// Identity of an instance: host name and port. Stable across runs; node ids are not.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct InstanceKey {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub key: InstanceKey,
    /// Address redisctl and the other nodes use to reach it (its host's address).
    pub address: IpAddr,
    pub port: u16,
    /// Cluster shard number (0 for group members).
    pub shard: u32,
    /// Replication group name (None for cluster nodes).
    pub group: Option<String>,
    /// `replica-priority` (groups).
    pub replica_priority: Option<u32>,
    pub role: Role,
    pub settings: InstanceSettings,
}

impl Instance {
    pub fn endpoint(&self) -> String {
        match self.address {
            IpAddr::V6(a) => format!("[{a}]:{}", self.port),
            IpAddr::V4(a) => format!("{a}:{}", self.port),
        }
    }
    pub fn bus_port(&self) -> u32 {
        u32::from(self.port) + 10000
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceSettings {
    pub bind: Vec<IpAddr>,
    pub persistence: Persistence,
    pub maxmemory: Option<u64>,
    pub maxmemory_policy: Option<String>,
    /// Group settings: `min-replicas-to-write`, `min-replicas-max-lag` (s), `replica-read-only`.
    pub min_replicas_to_write: u32,
    pub min_replicas_max_lag_s: u64,
    pub replica_read_only: bool,
    /// Extra directives, already rendered to redis.conf values.
    pub extra: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Persistence {
    /// RDB save rules (seconds, changes); empty = RDB snapshots off.
    pub save: Vec<(u64, u64)>,
    pub appendonly: bool,
    pub appendfsync: Fsync,
    pub auto_aof_rewrite_percentage: u32,
    pub auto_aof_rewrite_min_size: u64,
}

impl Persistence {
    /// Neither RDB snapshots nor AOF: a restart comes back empty.
    pub fn is_off(&self) -> bool {
        self.save.is_empty() && !self.appendonly
    }

    /// Redis 7 defaults.
    pub fn redis_default() -> Persistence {
        Persistence {
            save: vec![(3600, 1), (300, 100), (60, 10000)],
            appendonly: false,
            appendfsync: Fsync::Everysec,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
        }
    }
}

impl Topology {
    /// The TLS settings when some port speaks TLS (`tls.mode: on` or `both`).
    pub fn tls_on(&self) -> Option<&Tls> {
        self.tls.as_ref().filter(|t| t.mode != TlsMode::Off)
    }

    /// The TLS settings when instances need their TLS files: some port speaks TLS, or a
    /// switch is under way (back to `off`, the files stay until every node has switched).
    pub fn tls_files(&self) -> Option<&Tls> {
        self.tls
            .as_ref()
            .filter(|t| t.mode != TlsMode::Off || t.port_offset != 0)
    }

    /// The TLS settings when the declared ports speak only TLS (`tls.mode: on`): redisctl
    /// dials them over TLS.
    pub fn tls_only(&self) -> Option<&Tls> {
        self.tls.as_ref().filter(|t| t.mode == TlsMode::On)
    }

    /// The TLS settings while a running cluster is switched between modes (`port_offset`
    /// given): the cluster nodes' listening ports, bus and replication modes and announced
    /// ports are compared and switched at runtime (plan::tls_switch).
    pub fn tls_switching(&self) -> Option<&Tls> {
        self.tls.as_ref().filter(|t| t.port_offset != 0)
    }

    /// Every Redis instance: cluster nodes, then group members.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.cluster
            .iter()
            .flat_map(|c| c.shards.iter().flat_map(Shard::members))
            .chain(self.groups.iter().flat_map(Group::members))
    }

    pub fn cluster_instances(&self) -> impl Iterator<Item = &Instance> {
        self.cluster
            .iter()
            .flat_map(|c| c.shards.iter().flat_map(Shard::members))
    }

    pub fn sentinels(&self) -> impl Iterator<Item = &SentinelInstance> {
        self.sentinel.iter().flat_map(|s| s.instances.iter())
    }

    pub fn default_state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/redisctl").join(&self.name))
    }
}

impl Cluster {
    /// Slot ranges each shard owns when balanced, indexed like `shards`.
    pub fn slot_allocation(&self) -> Vec<SlotRange> {
        weighted_split(&self.weights)
    }
}
