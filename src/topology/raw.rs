//! The raw serde mirror of the topology file (format v1).
//!
//! Owns the exact YAML shape: field names, optionality and `deny_unknown_fields`. It does no
//! validation beyond what serde does; `validate.rs` turns it into the checked model. The JSON
//! Schema printed by `redisctl schema` is derived from these types, so doc comments here are
//! what editors show.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Unexpected, Visitor};

use super::strict::{self, Whole};

/// A redisctl deployment: hosts, a Redis Cluster and the defaults for every instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    /// Format version of this file. Only `1` exists.
    #[serde(default, deserialize_with = "strict::opt_u32")]
    pub version: Option<u32>,
    /// Name of the deployment: letters, digits, `-`, `_`, `.`. Used in state paths.
    pub name: String,
    /// Root of the per-instance state directories. Default `/var/lib/redisctl/<name>`.
    /// `--state-dir` overrides it. Relative paths are relative to this file.
    #[serde(default)]
    pub state_dir: Option<String>,
    /// The machines that run instances.
    pub hosts: Vec<RawHost>,
    /// Settings for every instance, overridable per node.
    #[serde(default)]
    pub defaults: RawInstance,
    /// Authentication shared by every instance.
    #[serde(default)]
    pub auth: Option<RawAuth>,
    /// The Redis Cluster of this deployment.
    #[serde(default)]
    pub cluster: Option<RawCluster>,
    /// Plain master–replica groups (no cluster mode), optionally watched by `sentinel`.
    #[serde(default)]
    pub groups: Option<Vec<RawGroup>>,
    /// Sentinels that monitor every group.
    #[serde(default)]
    pub sentinel: Option<RawSentinel>,
    /// `redisctl agent`: the per-host control loop (interval, what it may do alone, HTTP).
    #[serde(default)]
    pub agent: Option<RawAgent>,
    /// TLS for clients, replication, the cluster bus and Sentinel.
    #[serde(default)]
    pub tls: Option<RawTls>,
}

/// TLS of every instance: which port speaks it, and the certificate files (PEM).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// `off` (plain TCP everywhere), `on` (TLS only: clients, replication, the cluster bus
    /// and Sentinel; the declared port speaks TLS and no plain port is open) or `both` (the
    /// migration mode of a Redis Cluster: the declared port stays plain, TLS is served on the
    /// declared port + `port_offset`, the bus and replication speak TLS). Default `on`.
    #[serde(default)]
    pub mode: Option<TlsMode>,
    /// Switching a running cluster between modes (`off` → `both` → `on`, or back to `off`):
    /// in mode `both` every node serves TLS on its declared port + this offset. Kept while
    /// the switch is under way; required by mode `both`.
    #[serde(default, deserialize_with = "strict::opt_u32")]
    pub port_offset: Option<u32>,
    /// CA certificate(s) (PEM) that signed the instances' and the clients' certificates.
    pub ca_file: String,
    /// Certificate (PEM) every instance presents, to clients and to its peers.
    /// `hosts[].tls` overrides it per host.
    pub cert_file: String,
    /// Private key (PEM) of `cert_file`; owner-only (chmod 600).
    pub key_file: String,
    /// Certificate redisctl itself presents. Default: the host's `cert_file`.
    #[serde(default)]
    pub client_cert_file: Option<String>,
    /// Private key of `client_cert_file`; owner-only. Given together with it.
    #[serde(default)]
    pub client_key_file: Option<String>,
    /// `tls-auth-clients`: `required` (default: every client presents a certificate signed
    /// by `ca_file`), `optional` (checked when presented) or `no`.
    #[serde(default)]
    pub auth_clients: Option<TlsAuthClients>,
    /// `redisctl check` reports certificates that expire within this many days. Default 30.
    #[serde(default, deserialize_with = "strict::opt_u32")]
    pub expiry_warning_days: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    Off,
    On,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsAuthClients {
    Required,
    Optional,
    No,
}

/// A host's own certificate, replacing `tls.cert_file`/`tls.key_file` on its instances.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHostTls {
    /// Certificate (PEM) of this host's instances.
    pub cert_file: String,
    /// Its private key (PEM); owner-only.
    pub key_file: String,
}

/// The per-host control loop, `redisctl agent FILE` (unit `redisctl-agent@NAME`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    /// Time between two rounds of observe → plan → execute. Default 5s.
    #[serde(default)]
    pub interval: Option<DurationValue>,
    /// Address of the health and metrics endpoint (`/health`, `/primary/PORT`,
    /// `/replica/PORT`, `/metrics`). Default `127.0.0.1:9187`; `off` disables it.
    #[serde(default)]
    pub listen: Option<String>,
    /// What the agent may do alone beyond healing.
    #[serde(default)]
    pub policy: Option<RawAgentPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAgentPolicy {
    /// Move mastership back to the preferred masters after a failover (what `apply
    /// --restore-roles` does), once the deployment has been stable for `stable_for`.
    /// Default false.
    #[serde(default, deserialize_with = "strict::opt_bool")]
    pub restore_roles: Option<bool>,
    /// How long every node must have answered with unchanged roles before roles are
    /// restored. Default 60s.
    #[serde(default)]
    pub stable_for: Option<DurationValue>,
}

/// A master with its replicas (plain replication, no cluster mode).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    /// Name, also the Sentinel master name (`SENTINEL MONITOR <name> …`).
    pub name: String,
    /// The preferred master.
    pub master: RawGroupNode,
    #[serde(default)]
    pub replicas: Vec<RawGroupNode>,
    /// `min-replicas-to-write` on the master: refuse writes with fewer connected replicas.
    #[serde(default, deserialize_with = "strict::opt_u32")]
    #[schemars(range(max = 2147483647))]
    pub min_replicas_to_write: Option<u32>,
    /// `min-replicas-max-lag`: a replica counts only when it acknowledged within this time.
    #[serde(default)]
    pub min_replicas_max_lag: Option<DurationValue>,
    /// `replica-read-only`. Default true.
    #[serde(default, deserialize_with = "strict::opt_bool")]
    pub replica_read_only: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGroupNode {
    pub host: String,
    #[serde(deserialize_with = "strict::u32")]
    pub port: u32,
    /// Chained replication: replicate from this member (`host:port`, or a port on the same
    /// host) instead of the master.
    #[serde(default)]
    pub of: Option<String>,
    /// `replica-priority`: lower is preferred by Sentinel; 0 = never promoted.
    #[serde(default, deserialize_with = "strict::opt_u32")]
    #[schemars(range(max = 2147483647))]
    pub replica_priority: Option<u32>,
    #[serde(default)]
    pub bind: Option<String>,
    #[serde(default)]
    pub persistence: Option<RawPersistence>,
    #[serde(default)]
    pub maxmemory: Option<SizeValue>,
    #[serde(default)]
    pub maxmemory_policy: Option<String>,
    #[serde(default)]
    pub config: Option<BTreeMap<String, ScalarValue>>,
}

impl RawGroupNode {
    pub fn overrides(&self) -> RawInstance {
        RawInstance {
            bind: self.bind.clone(),
            persistence: self.persistence.clone(),
            maxmemory: self.maxmemory.clone(),
            maxmemory_policy: self.maxmemory_policy.clone(),
            config: self.config.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSentinel {
    /// The Sentinel processes (3 or more, an odd number, on different hosts).
    pub instances: Vec<RawSentinelNode>,
    /// Sentinels that must agree a master is down before a failover.
    #[serde(deserialize_with = "strict::u32")]
    #[schemars(range(min = 1))]
    pub quorum: u32,
    /// `down-after-milliseconds`. Default 30000 ms.
    #[serde(default)]
    pub down_after: Option<DurationValue>,
    /// `failover-timeout`. Default 180000 ms.
    #[serde(default)]
    pub failover_timeout: Option<DurationValue>,
    /// `parallel-syncs`: replicas resynced at once after a failover. Default 1.
    #[serde(default, deserialize_with = "strict::opt_u32")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub parallel_syncs: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSentinelNode {
    pub host: String,
    #[serde(deserialize_with = "strict::u32")]
    pub port: u32,
    /// Address to listen on. Default: the host's address.
    #[serde(default)]
    pub bind: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    /// Short name used by nodes and commands (`drain NAME`).
    pub name: String,
    /// IP address other instances and redisctl use to reach this host.
    pub address: String,
    /// Failure zone (rack, availability zone); replicas avoid their master's zone.
    #[serde(default)]
    pub zone: Option<String>,
    /// This host's certificate and key, overriding `tls.cert_file` and `tls.key_file`.
    #[serde(default)]
    pub tls: Option<RawHostTls>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// File holding the password (first line). Without `users`: `requirepass` and
    /// `masterauth`. With `users`: the password of redisctl's own ACL user `redisctl`.
    /// Relative paths are relative to this file. Give this or `password_files`.
    #[serde(default)]
    pub password_file: Option<String>,
    /// `password_file` as a list, while redisctl's own password is rotated: `[old, new]`.
    /// Every listed password is accepted; redisctl authenticates with the first one that an
    /// instance accepts; replicas and Sentinels (without ACL users) switch to the last one.
    #[serde(default)]
    pub password_files: Option<Vec<String>>,
    /// The ACL user `default` (clients that send `AUTH <password>` or nothing): `enabled`
    /// (default; it keeps `password_file` and every permission, as without `users`) or
    /// `disabled`. Setting it turns on ACL users like `users` does.
    #[serde(default)]
    pub default_user: Option<DefaultUser>,
    /// Named ACL users for applications, each with its own password file(s) and least
    /// privilege. redisctl adds its own users (`redisctl`, `redisctl-replication`,
    /// `redisctl-sentinel`).
    #[serde(default)]
    pub users: Option<Vec<RawUser>>,
    /// Files holding the password of `redisctl-replication` (replicas → masters,
    /// `masterauth`). Every listed password is accepted; replicas use the last one. Two
    /// files while it is rotated. Default: derived from `password_file`. Needs ACL users.
    #[serde(default)]
    pub replication_password_files: Option<Vec<String>>,
    /// Files holding the password of `redisctl-sentinel` (Sentinels → group members,
    /// `auth-pass`), like `replication_password_files`.
    #[serde(default)]
    pub sentinel_password_files: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultUser {
    Enabled,
    Disabled,
}

/// An application's ACL user.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    /// User name (`AUTH <name> <password>`): letters, digits, `-`, `_`, `.`, `:`.
    pub name: String,
    /// Command rules in order, as Redis writes them: `+@read`, `-@dangerous`, `+get`,
    /// `-config|set`, `+@all`. Nothing allowed when empty.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Key patterns the user may touch (`~pattern`), `*` for every key. None when empty.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Pub/Sub channel patterns (`&pattern`), `*` for every channel. None when empty.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Files holding the user's password (first line each), owner-only like
    /// `password_file`. Two files while a password is rotated: both are accepted.
    #[serde(default)]
    pub password_files: Vec<String>,
}

/// Instance settings. Every field is optional; unset fields inherit from `defaults`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInstance {
    /// Address the instance listens on. Default: its host's address.
    #[serde(default)]
    pub bind: Option<String>,
    #[serde(default)]
    pub persistence: Option<RawPersistence>,
    /// Memory limit, e.g. `256mb`, `2gb` or bytes. Unset: no limit.
    #[serde(default)]
    pub maxmemory: Option<SizeValue>,
    /// Eviction policy when `maxmemory` is reached.
    #[serde(default)]
    pub maxmemory_policy: Option<String>,
    /// Extra redis.conf directives passed through verbatim. Directives redisctl manages are refused.
    #[serde(default)]
    pub config: Option<BTreeMap<String, ScalarValue>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPersistence {
    /// RDB snapshot rules, each "SECONDS CHANGES" (e.g. "3600 1"). An empty list turns RDB off.
    #[serde(default)]
    pub save: Option<Vec<String>>,
    /// Append-only file on or off.
    #[serde(default, deserialize_with = "strict::opt_bool")]
    pub appendonly: Option<bool>,
    /// AOF fsync policy.
    #[serde(default)]
    pub appendfsync: Option<Fsync>,
    /// Rewrite the AOF when it grew by this percentage since the last rewrite (0 = never).
    #[serde(default, deserialize_with = "strict::opt_u32")]
    #[schemars(range(max = 2147483647))]
    pub auto_aof_rewrite_percentage: Option<u32>,
    /// Do not rewrite an AOF smaller than this (e.g. `64mb`).
    #[serde(default)]
    pub auto_aof_rewrite_min_size: Option<SizeValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    Always,
    Everysec,
    No,
}

impl Fsync {
    pub fn as_str(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Everysec => "everysec",
            Fsync::No => "no",
        }
    }
}

/// A size: bytes as an integer, or a number with a unit (`kb`, `mb`, `gb`; 1024-based).
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// A duration: milliseconds as an integer, or a number with a unit (`ms`, `s`, `m`).
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum DurationValue {
    Millis(u64),
    Text(String),
}

/// A redis.conf value: string, number or boolean (rendered as yes/no).
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum ScalarValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// Ports: a range `"7000-7005"` or a list of ports.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum PortsValue {
    List(Vec<u32>),
    Range(String),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// Number of shards (masters). At least 3. Use with `replicas` and `ports`.
    #[serde(default, deserialize_with = "strict::opt_u32")]
    #[schemars(range(min = 3, max = 1000))]
    pub shards: Option<u32>,
    /// Replicas per shard. Default 1.
    #[serde(default, deserialize_with = "strict::opt_u32")]
    #[schemars(range(max = 20))]
    pub replicas: Option<u32>,
    /// Ports available on each host for the generated nodes.
    #[serde(default)]
    pub ports: Option<PortsValue>,
    /// Explicit node list, instead of `shards`/`replicas`/`ports`.
    #[serde(default)]
    pub nodes: Option<Vec<RawNode>>,
    /// `cluster-node-timeout`: how long a master may be unreachable before its replica takes over.
    /// Default 15000 ms.
    #[serde(default)]
    pub node_timeout: Option<DurationValue>,
    /// `cluster-require-full-coverage`. Default true.
    #[serde(default, deserialize_with = "strict::opt_bool")]
    pub require_full_coverage: Option<bool>,
    /// `cluster-migration-barrier`. Default 1.
    #[serde(default, deserialize_with = "strict::opt_u32")]
    #[schemars(range(max = 2147483647))]
    pub migration_barrier: Option<u32>,
    /// `cluster-allow-replica-migration`. Default false: redisctl places replicas itself, and an
    /// empty new master must never turn into a replica behind its back.
    #[serde(default, deserialize_with = "strict::opt_bool")]
    pub allow_replica_migration: Option<bool>,
    /// Relative share of the 16384 slots per shard, in shard order (one entry per shard,
    /// each 1-1000). Default: all equal. Changing it rebalances on the next `apply`.
    #[serde(default, deserialize_with = "strict::opt_u32_list")]
    pub weights: Option<Vec<u32>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// Name of the host (from `hosts`).
    pub host: String,
    #[serde(deserialize_with = "strict::u32")]
    pub port: u32,
    /// Shard number, starting at 1.
    #[serde(deserialize_with = "strict::u32")]
    #[schemars(range(min = 1))]
    pub shard: u32,
    /// Preferred role. Exactly one master per shard.
    pub role: Role,
    #[serde(default)]
    pub bind: Option<String>,
    #[serde(default)]
    pub persistence: Option<RawPersistence>,
    #[serde(default)]
    pub maxmemory: Option<SizeValue>,
    #[serde(default)]
    pub maxmemory_policy: Option<String>,
    #[serde(default)]
    pub config: Option<BTreeMap<String, ScalarValue>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Master,
    Replica,
}

impl RawNode {
    pub fn overrides(&self) -> RawInstance {
        RawInstance {
            bind: self.bind.clone(),
            persistence: self.persistence.clone(),
            maxmemory: self.maxmemory.clone(),
            maxmemory_policy: self.maxmemory_policy.clone(),
            config: self.config.clone(),
        }
    }
}

// Hand-written so that a wrong value is described in the format's terms ("expected a size
// (…), found a list") instead of serde's "did not match any variant of untagged enum".

/// What each of these values is called in messages.
pub const SIZE: &str = "a size (bytes, or a number with kb, mb, gb: e.g. 64mb)";
pub const DURATION: &str = "a duration (milliseconds, or a number with ms, s, m: e.g. 5s)";
pub const SCALAR: &str = "a single value (text, a number, true or false)";
pub const PORTS: &str = "a port range like \"7000-7005\" or a list of ports";

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SizeValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(SIZE)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SizeValue, E> {
                Ok(SizeValue::Bytes(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SizeValue, E> {
                u64::try_from(v)
                    .map(SizeValue::Bytes)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SizeValue, E> {
                Ok(SizeValue::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(DURATION)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationValue, E> {
                Ok(DurationValue::Millis(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
                u64::try_from(v)
                    .map(DurationValue::Millis)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationValue, E> {
                Ok(DurationValue::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ScalarValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(SCALAR)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarValue, E> {
                Ok(ScalarValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarValue, E> {
                Ok(ScalarValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarValue, E> {
                Ok(i64::try_from(v)
                    .map_or_else(|_| ScalarValue::Text(v.to_string()), ScalarValue::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarValue, E> {
                Ok(ScalarValue::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarValue, E> {
                Ok(ScalarValue::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for PortsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortsValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(PORTS)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortsValue, E> {
                Ok(PortsValue::Range(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PortsValue, A::Error> {
                let mut v = Vec::new();
                while let Some(Whole(port)) = seq.next_element::<Whole<u32>>()? {
                    v.push(port);
                }
                Ok(PortsValue::List(v))
            }
        }
        d.deserialize_any(V)
    }
}
