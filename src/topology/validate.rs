//! Raw topology → validated model. Pure: no file is read, no socket opened. Every problem is
//! collected (not just the first) with its field path, so one run of `redisctl validate` shows
//! everything to fix.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use super::model::*;
use super::raw::*;
use super::text::show;

/// One problem found in a topology, located by field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
        });
    }
    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        });
    }
    fn has_errors(&self) -> bool {
        self.0.iter().any(|p| p.severity == Severity::Error)
    }
}

/// Bounds of redis-server 7.0 (`config.c`, `sentinel.c`): an `int` setting accepts up to
/// INT_MAX, a `long long` one up to LLONG_MAX; a value beyond would be written to redis.conf
/// and refused at start, after `apply` had created the instance directories.
pub const INT_MAX: u64 = i32::MAX as u64;
pub const LLONG_MAX: u64 = i64::MAX as u64;

/// Refuse `v` outside `min..=max` at `path`; `unit` follows the numbers ("", " ms").
fn in_range(
    p: &mut Problems,
    path: impl Into<String>,
    v: u64,
    min: u64,
    max: u64,
    unit: &str,
) -> bool {
    let ok = (min..=max).contains(&v);
    if !ok {
        p.error(
            path,
            format!("{v}{unit} is out of range; Redis accepts {min} to {max}{unit}"),
        );
    }
    ok
}

/// Highest port an instance may use: its cluster bus port (port + 10000) must fit in 65535.
pub const MAX_PORT: u32 = 55535;

/// redis.conf directives that redisctl renders itself, with the topology field to use instead.
pub const MANAGED_DIRECTIVES: &[(&str, &str)] = &[
    ("port", "cluster.ports or cluster.nodes[].port"),
    ("bind", "bind"),
    ("cluster-announce-ip", "hosts[].address"),
    ("replica-announce-ip", "hosts[].address"),
    ("slave-announce-ip", "hosts[].address"),
    ("dir", "state_dir"),
    ("daemonize", "the supervisor"),
    ("supervised", "the supervisor"),
    ("pidfile", "the supervisor"),
    ("logfile", "the supervisor"),
    ("include", "nothing (redisctl renders includes)"),
    ("cluster-enabled", "cluster"),
    (
        "cluster-config-file",
        "nothing (nodes.conf is runtime-owned)",
    ),
    ("cluster-node-timeout", "cluster.node_timeout"),
    (
        "cluster-require-full-coverage",
        "cluster.require_full_coverage",
    ),
    ("cluster-migration-barrier", "cluster.migration_barrier"),
    (
        "cluster-allow-replica-migration",
        "cluster.allow_replica_migration",
    ),
    ("cluster-port", "nothing (bus port is always port + 10000)"),
    ("requirepass", "auth.password_file"),
    ("masterauth", "auth.password_file"),
    (
        "masteruser",
        "auth.users (redisctl renders its replication user)",
    ),
    ("replicaof", "cluster.nodes[].role"),
    ("slaveof", "cluster.nodes[].role"),
    ("save", "persistence.save"),
    ("appendonly", "persistence.appendonly"),
    ("appendfsync", "persistence.appendfsync"),
    (
        "auto-aof-rewrite-percentage",
        "persistence.auto_aof_rewrite_percentage",
    ),
    (
        "auto-aof-rewrite-min-size",
        "persistence.auto_aof_rewrite_min_size",
    ),
    ("dbfilename", "nothing (redisctl names data files)"),
    ("appendfilename", "nothing (redisctl names data files)"),
    ("appenddirname", "nothing (redisctl names data files)"),
    ("maxmemory", "maxmemory"),
    ("maxmemory-policy", "maxmemory_policy"),
    // What could lock redisctl out of its own instances, or break the cluster bus rule.
    ("cluster-announce-port", ANNOUNCE),
    ("cluster-announce-bus-port", ANNOUNCE),
    ("cluster-announce-tls-port", ANNOUNCE),
    ("cluster-announce-hostname", ANNOUNCE),
    ("replica-announce-port", ANNOUNCE),
    ("slave-announce-port", ANNOUNCE),
    (
        "cluster-preferred-endpoint-type",
        "nothing: redisctl and clients reach nodes at hosts[].address",
    ),
    ("tls-port", "tls.mode"),
    ("tls-cluster", "tls.mode"),
    ("tls-replication", "tls.mode"),
    ("tls-cert-file", "tls.cert_file"),
    ("tls-key-file", "tls.key_file"),
    (
        "tls-key-file-pass",
        "nothing: keys are read without a passphrase (keep them owner-only)",
    ),
    (
        "tls-client-cert-file",
        "tls.cert_file (instances present it to their peers)",
    ),
    ("tls-client-key-file", "tls.key_file"),
    (
        "tls-client-key-file-pass",
        "nothing: keys are read without a passphrase (keep them owner-only)",
    ),
    ("tls-ca-cert-file", "tls.ca_file"),
    ("tls-ca-cert-dir", "tls.ca_file"),
    ("tls-auth-clients", "tls.auth_clients"),
    (
        "rename-command",
        "nothing: a renamed command could be one redisctl drives (CONFIG, CLUSTER, REPLICAOF, SHUTDOWN, INFO …)",
    ),
    ("user", "auth.users"),
    ("aclfile", "auth.users"),
];

/// Why every `*-announce-*` directive is managed.
const ANNOUNCE: &str = "nothing: instances announce hosts[].address and their own port, with the cluster bus at port + 10000; announcing anything else breaks the cluster bus or replication";

/// The message refusing a managed directive `key` (as written) whose entry says `instead`.
pub fn managed_message(key: &str, instead: &str) -> String {
    match instead.strip_prefix("nothing: ") {
        Some(why) => format!(
            "{} is managed by redisctl and cannot be set in config: {why}",
            show(key)
        ),
        None => format!(
            "{} is managed by redisctl and cannot be set in config; use {instead}",
            show(key)
        ),
    }
}

/// The managed entry for a `config` key, if it is one (any `*-announce*` directive is).
fn managed(lower: &str) -> Option<&'static str> {
    MANAGED_DIRECTIVES
        .iter()
        .find(|(d, _)| *d == lower)
        .map(|(_, instead)| *instead)
        .or_else(|| lower.contains("-announce").then_some(ANNOUNCE))
}

pub const MAXMEMORY_POLICIES: &[&str] = &[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
];

/// Validate `raw`. Returns the model when there is no error, and every problem found
/// (warnings come back with a model too).
pub fn validate(raw: &RawTopology, base_dir: &Path) -> (Option<Topology>, Vec<Problem>) {
    let mut p = Problems::default();

    if let Some(v) = raw.version
        && v != 1
    {
        p.error(
            "version",
            format!("unsupported version {v}; this redisctl reads version 1"),
        );
    }
    if !valid_name(&raw.name) {
        p.error(
            "name",
            format!(
                "invalid deployment name {}: use 1-64 letters, digits, '-', '_' or '.', not starting with '.'",
                show(&raw.name)
            ),
        );
    }

    let hosts = validate_hosts(raw, base_dir, &mut p);
    let tls = raw.tls.as_ref().map(|t| validate_tls(t, base_dir, &mut p));
    let state_dir = raw.state_dir.as_ref().map(|s| {
        if s.trim().is_empty() {
            p.error("state_dir", "must not be empty");
        }
        // It is written into redis.conf (dir, logfile): a newline would start a directive.
        if s.chars().any(char::is_control) {
            p.error(
                "state_dir",
                "contains a control character (newline, tab, …); choose a path without one",
            );
        }
        base_dir.join(s)
    });
    let auth = raw
        .auth
        .as_ref()
        .map(|a| super::users::validate_auth(a, base_dir, &mut p.0));

    let mut ports = Vec::new();
    let cluster = match &raw.cluster {
        Some(c) => validate_cluster(raw, c, &hosts, &mut ports, &mut p),
        None => None,
    };
    let groups = validate_groups(raw, &hosts, &mut ports, &mut p);
    let sentinel = validate_sentinel(raw, &hosts, &mut ports, &mut p);
    let agent = validate_agent(raw, &mut p);
    if raw.cluster.is_none() && raw.groups.as_ref().is_none_or(Vec::is_empty) {
        p.error(
            "cluster",
            "nothing to deploy: add a `cluster` section or replication `groups`",
        );
    }
    if let Some(t) = &tls {
        tls_ports(raw, t, &mut ports, &mut p);
    }
    if !hosts.is_empty() {
        check_ports(&ports, &hosts, &mut p);
    }

    let mut problems = p.0;
    problems.sort();
    problems.dedup();
    let failed = problems.iter().any(|x| x.severity == Severity::Error);
    if failed {
        return (None, problems);
    }
    let topo = Topology {
        name: raw.name.clone(),
        base_dir: base_dir.to_path_buf(),
        state_dir,
        hosts,
        auth,
        cluster,
        groups,
        sentinel,
        agent,
        tls,
    };
    (Some(topo), problems)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A certificate or key path: not empty, one line (it is written into redis.conf's
/// neighbourhood and shown in messages).
fn tls_path(s: &str, path: &str, p: &mut Problems) {
    if s.trim().is_empty() {
        p.error(path, "must not be empty");
    } else if s.chars().any(char::is_control) {
        p.error(
            path,
            "contains a control character (newline, tab, …); choose a path without one",
        );
    }
}

fn validate_tls(t: &RawTls, base_dir: &Path, p: &mut Problems) -> Tls {
    tls_path(&t.ca_file, "tls.ca_file", p);
    tls_path(&t.cert_file, "tls.cert_file", p);
    tls_path(&t.key_file, "tls.key_file", p);
    let client = match (&t.client_cert_file, &t.client_key_file) {
        (Some(c), Some(k)) => {
            tls_path(c, "tls.client_cert_file", p);
            tls_path(k, "tls.client_key_file", p);
            Some((base_dir.join(c), base_dir.join(k)))
        }
        (Some(_), None) => {
            p.error(
                "tls.client_cert_file",
                "needs tls.client_key_file, the key of this certificate",
            );
            None
        }
        (None, Some(_)) => {
            p.error(
                "tls.client_key_file",
                "needs tls.client_cert_file, the certificate of this key",
            );
            None
        }
        (None, None) => None,
    };
    let days = t.expiry_warning_days.unwrap_or(30);
    if days > 3650 {
        p.error(
            "tls.expiry_warning_days",
            format!("{days} is out of range; write 0 to 3650 days"),
        );
    }
    Tls {
        mode: t.mode.unwrap_or(TlsMode::On),
        port_offset: match t.port_offset {
            None => 0,
            Some(o @ 1..=65535) => o as u16,
            Some(o) => {
                p.error(
                    "tls.port_offset",
                    format!("{o} is out of range; write 1 to 65535 (the TLS port of mode both is the declared port + this)"),
                );
                0
            }
        },
        ca_file: base_dir.join(&t.ca_file),
        cert_file: base_dir.join(&t.cert_file),
        key_file: base_dir.join(&t.key_file),
        client,
        auth_clients: match t.auth_clients.unwrap_or(TlsAuthClients::Required) {
            TlsAuthClients::Required => "yes",
            TlsAuthClients::Optional => "optional",
            TlsAuthClients::No => "no",
        },
        expiry_warning_days: days,
    }
}

fn validate_hosts(raw: &RawTopology, base_dir: &Path, p: &mut Problems) -> Vec<Host> {
    if raw.hosts.is_empty() {
        p.error("hosts", "at least one host is required");
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut seen_addr: HashMap<IpAddr, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, h) in raw.hosts.iter().enumerate() {
        let path = format!("hosts[{i}]");
        if !valid_name(&h.name) {
            p.error(
                format!("{path}.name"),
                format!(
                    "invalid host name {}: use letters, digits, '-', '_' or '.'",
                    show(&h.name)
                ),
            );
        }
        if let Some(first) = seen.insert(&h.name, i) {
            p.error(
                format!("{path}.name"),
                format!(
                    "duplicate host name {} (also hosts[{first}])",
                    show(&h.name)
                ),
            );
        }
        let address = match h.address.parse::<IpAddr>() {
            Ok(a) if unreachable_address(a).is_some() => {
                p.error(
                    format!("{path}.address"),
                    format!(
                        "{a} is {}: it names no single host, so the other instances and redisctl could not reach this one there; give the address this host is reached at",
                        unreachable_address(a).unwrap_or_default()
                    ),
                );
                IpAddr::from([127, 0, 0, 1])
            }
            Ok(a) => {
                if let Some(first) = seen_addr.insert(a, i) {
                    p.error(
                        format!("{path}.address"),
                        format!("address {a} is also used by hosts[{first}]"),
                    );
                }
                a
            }
            Err(_) => {
                p.error(
                    format!("{path}.address"),
                    format!("{} is not an IP address", show(&h.address)),
                );
                // A loopback placeholder: 0.0.0.0 would add a bogus "non-loopback address
                // without a password" error for every instance on this host.
                IpAddr::from([127, 0, 0, 1])
            }
        };
        if h.tls.is_some() && raw.tls.is_none() {
            p.error(
                format!("hosts[{i}].tls"),
                "a host certificate needs the `tls` section (its CA, mode and defaults)",
            );
        }
        let tls = h.tls.as_ref().map(|t| {
            tls_path(&t.cert_file, &format!("hosts[{i}].tls.cert_file"), p);
            tls_path(&t.key_file, &format!("hosts[{i}].tls.key_file"), p);
            (base_dir.join(&t.cert_file), base_dir.join(&t.key_file))
        });
        out.push(Host {
            name: h.name.clone(),
            address,
            zone: h.zone.clone(),
            tls,
        });
    }
    out
}

/// Why `a` cannot be a host's address (announced to the cluster, dialled by redisctl).
fn unreachable_address(a: IpAddr) -> Option<&'static str> {
    match a.to_canonical() {
        a if a.is_unspecified() => Some("the unspecified address"),
        a if a.is_multicast() => Some("a multicast address"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("the broadcast address"),
        _ => None,
    }
}

struct Planned {
    host: usize,
    port: u32,
    shard: u32,
    role: Role,
    /// Path of the node in the file (explicit nodes) or of the field that produced it.
    path: String,
    overrides: Option<RawInstance>,
}

fn validate_cluster(
    raw: &RawTopology,
    c: &RawCluster,
    hosts: &[Host],
    ports: &mut Vec<PortUse>,
    p: &mut Problems,
) -> Option<Cluster> {
    let settings = ClusterSettings {
        node_timeout_ms: match &c.node_timeout {
            None => 15000,
            Some(d) => match parse_duration_ms(d) {
                Ok(0) => {
                    p.error("cluster.node_timeout", "must be greater than 0");
                    15000
                }
                Ok(ms) if in_range(p, "cluster.node_timeout", ms, 1, LLONG_MAX, " ms") => ms,
                Ok(_) => 15000,
                Err(e) => {
                    p.error("cluster.node_timeout", e);
                    15000
                }
            },
        },
        require_full_coverage: c.require_full_coverage.unwrap_or(true),
        migration_barrier: match c.migration_barrier {
            Some(v) if !in_range(p, "cluster.migration_barrier", v.into(), 0, INT_MAX, "") => 1,
            v => v.unwrap_or(1),
        },
        allow_replica_migration: c.allow_replica_migration.unwrap_or(false),
    };

    let planned = match &c.nodes {
        Some(nodes) => {
            for (field, set) in [
                ("shards", c.shards.is_some()),
                ("replicas", c.replicas.is_some()),
                ("ports", c.ports.is_some()),
            ] {
                if set {
                    p.error(
                        format!("cluster.{field}"),
                        "cannot be combined with cluster.nodes: use either an explicit node list or shards/replicas/ports",
                    );
                }
            }
            explicit_nodes(nodes, hosts, p)
        }
        None => generated_nodes(c, hosts, p),
    };
    let planned = planned?;

    ports.extend(planned.iter().map(|n| {
        let generated = c.nodes.is_none();
        PortUse {
            host: n.host,
            port: n.port,
            field: if generated {
                "cluster.ports".into()
            } else {
                format!("{}.port", n.path)
            },
            name: if generated {
                format!(
                    "the {} of shard {} (from cluster.ports)",
                    if n.role == Role::Master {
                        "master"
                    } else {
                        "replica"
                    },
                    n.shard
                )
            } else {
                n.path.clone()
            },
            bus: true,
        }
    }));

    // Group into shards.
    let mut by_shard: BTreeMap<u32, Vec<&Planned>> = BTreeMap::new();
    for n in &planned {
        by_shard.entry(n.shard).or_default().push(n);
    }
    let shard_count = by_shard.len();
    if shard_count < 3 {
        p.error(
            if c.nodes.is_some() {
                "cluster.nodes"
            } else {
                "cluster.shards"
            },
            format!("Redis Cluster needs at least 3 masters; this topology declares {shard_count}"),
        );
    }
    for (expect, (&number, members)) in (1u32..).zip(by_shard.iter()) {
        if number != expect {
            p.error(
                members[0].path.clone() + ".shard",
                format!("shards must be numbered 1..{shard_count} without gaps; shard {expect} is missing"),
            );
            break;
        }
        let _ = members;
    }

    let mut shards = Vec::new();
    for (&number, members) in &by_shard {
        let masters: Vec<&&Planned> = members.iter().filter(|n| n.role == Role::Master).collect();
        if masters.len() != 1 {
            p.error(
                members[0].path.clone(),
                format!(
                    "shard {number} has {} masters; each shard needs exactly one node with role: master",
                    masters.len()
                ),
            );
            continue;
        }
        let master_host = masters[0].host;
        let distinct_hosts = hosts.len();
        for r in members.iter().filter(|n| n.role == Role::Replica) {
            if r.host == master_host && distinct_hosts > 1 {
                let msg = format!(
                    "replica of shard {number} is on host {:?} with its master; place it on another host so one host failure cannot take the whole shard",
                    hosts[r.host].name
                );
                if c.nodes.is_some() {
                    p.error(r.path.clone() + ".host", msg);
                } else {
                    p.warn(r.path.clone(), msg);
                }
            } else if distinct_hosts > 1
                && hosts[r.host].zone.is_some()
                && hosts[r.host].zone == hosts[master_host].zone
                && hosts.iter().any(|h| h.zone != hosts[master_host].zone)
            {
                p.warn(
                    r.path.clone(),
                    format!("replica of shard {number} is in the same zone as its master"),
                );
            }
        }
        let mut to_instance = |n: &Planned| -> Instance {
            let mut layers: Vec<(&RawInstance, String)> = vec![(&raw.defaults, "defaults".into())];
            if let Some(o) = &n.overrides {
                layers.push((o, n.path.clone()));
            }
            let settings = resolve_settings(&layers, &hosts[n.host], p);
            check_exposure(raw, &settings, &hosts[n.host], n.port, &n.path, p);
            Instance {
                key: InstanceKey {
                    host: hosts[n.host].name.clone(),
                    port: n.port as u16,
                },
                address: hosts[n.host].address,
                port: n.port as u16,
                shard: number,
                group: None,
                replica_priority: None,
                role: n.role,
                settings,
            }
        };
        let master = to_instance(masters[0]);
        let mut replicas = Vec::new();
        for n in members.iter().filter(|n| n.role == Role::Replica) {
            replicas.push(to_instance(n));
        }
        shards.push(Shard {
            number,
            master,
            replicas,
        });
    }
    let weights = match &c.weights {
        None => vec![1; shards.len()],
        Some(w) => {
            if w.len() != shards.len() {
                p.error(
                    "cluster.weights",
                    format!(
                        "has {} entr{} for {} shard(s); give one weight per shard, in shard order",
                        w.len(),
                        if w.len() == 1 { "y" } else { "ies" },
                        shards.len()
                    ),
                );
            }
            for (i, x) in w.iter().enumerate() {
                if !(1..=1000).contains(x) {
                    p.error(
                        format!("cluster.weights[{i}]"),
                        format!(
                            "{x} is out of range; a weight is 1-1000 (to empty a shard, remove it)"
                        ),
                    );
                }
            }
            w.clone()
        }
    };
    if p.has_errors() {
        return None;
    }
    Some(Cluster {
        settings,
        shards,
        weights,
    })
}

/// Binding beyond loopback without a password must be an explicit decision.
fn check_exposure(
    raw: &RawTopology,
    settings: &InstanceSettings,
    host: &Host,
    port: u32,
    path: &str,
    p: &mut Problems,
) {
    let exposed = settings.bind.iter().any(|a| !a.is_loopback());
    if exposed
        && raw.auth.is_none()
        && !settings
            .extra
            .get("protected-mode")
            .is_some_and(|v| v.eq_ignore_ascii_case("no"))
    {
        p.error(
            path.to_string(),
            format!(
                "{}:{port} listens on a non-loopback address without a password; set auth.password_file, or say config: {{protected-mode: \"no\"}} to serve it unauthenticated on purpose",
                host.name
            ),
        );
    }
}

fn host_index(hosts: &[Host], name: &str, path: &str, p: &mut Problems) -> Option<usize> {
    let found = hosts.iter().position(|h| h.name == name);
    if found.is_none() {
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        p.error(
            format!("{path}.host"),
            format!(
                "unknown host {}; hosts are: {}",
                show(name),
                names.join(", ")
            ),
        );
    }
    found
}

fn validate_groups(
    raw: &RawTopology,
    hosts: &[Host],
    ports: &mut Vec<PortUse>,
    p: &mut Problems,
) -> Vec<Group> {
    let mut out = Vec::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (gi, g) in raw.groups.iter().flatten().enumerate() {
        let gpath = format!("groups[{gi}]");
        if !valid_name(&g.name) {
            p.error(
                format!("{gpath}.name"),
                format!("invalid group name {}: Sentinel master names use letters, digits, '-', '_' or '.'", show(&g.name)),
            );
        }
        if let Some(first) = names.insert(&g.name, gi) {
            p.error(
                format!("{gpath}.name"),
                format!(
                    "duplicate group name {} (also groups[{first}])",
                    show(&g.name)
                ),
            );
        }
        let lag = match &g.min_replicas_max_lag {
            None => 10,
            Some(d) => match parse_duration_ms(d) {
                // Redis counts the lag in whole seconds.
                Ok(ms)
                    if in_range(
                        p,
                        format!("{gpath}.min_replicas_max_lag"),
                        ms.div_ceil(1000),
                        0,
                        INT_MAX,
                        " s",
                    ) =>
                {
                    ms.div_ceil(1000)
                }
                Ok(_) => 10,
                Err(e) => {
                    p.error(format!("{gpath}.min_replicas_max_lag"), e);
                    10
                }
            },
        };
        let members: Vec<(&RawGroupNode, String, Role)> =
            std::iter::once((&g.master, format!("{gpath}.master"), Role::Master))
                .chain(
                    g.replicas
                        .iter()
                        .enumerate()
                        .map(|(i, r)| (r, format!("{gpath}.replicas[{i}]"), Role::Replica)),
                )
                .collect();
        let mut insts: Vec<Instance> = Vec::new();
        let mut ok = true;
        for (n, path, role) in &members {
            let Some(h) = host_index(hosts, &n.host, path, p) else {
                ok = false;
                continue;
            };
            ports.push(PortUse {
                host: h,
                port: n.port,
                field: format!("{path}.port"),
                name: path.clone(),
                bus: false,
            });
            if n.of.is_some() && *role == Role::Master {
                p.error(
                    format!("{path}.of"),
                    "the master replicates from nobody; `of` is for replicas",
                );
            }
            let layers: Vec<(&RawInstance, String)> = vec![(&raw.defaults, "defaults".into())];
            let own = n.overrides();
            let mut layers = layers;
            layers.push((&own, path.clone()));
            let mut settings = resolve_settings(&layers, &hosts[h], p);
            check_exposure(raw, &settings, &hosts[h], n.port, path, p);
            settings.min_replicas_to_write = g.min_replicas_to_write.unwrap_or(0);
            settings.min_replicas_max_lag_s = lag;
            settings.replica_read_only = g.replica_read_only.unwrap_or(true);
            if let Some(v) = n.replica_priority {
                in_range(
                    p,
                    format!("{path}.replica_priority"),
                    v.into(),
                    0,
                    INT_MAX,
                    "",
                );
            }
            if n.port == 0 || n.port > 65535 {
                ok = false;
                continue;
            }
            insts.push(Instance {
                key: InstanceKey {
                    host: hosts[h].name.clone(),
                    port: n.port as u16,
                },
                address: hosts[h].address,
                port: n.port as u16,
                shard: 0,
                group: Some(g.name.clone()),
                replica_priority: n.replica_priority,
                role: *role,
                settings,
            });
        }
        if !ok || insts.is_empty() {
            continue;
        }
        let master_key = insts[0].key.clone();
        // Upstreams: `of` names a member (host:port, or a port on the replica's own host).
        let mut upstream = BTreeMap::new();
        for (i, (n, path, _)) in members.iter().enumerate().skip(1) {
            let me = &insts[i].key;
            let target = match &n.of {
                None => Some(master_key.clone()),
                Some(of) => {
                    let (host, port) = match of.rsplit_once(':') {
                        Some((h, port)) => (h.to_string(), port.parse::<u16>().ok()),
                        None => (me.host.clone(), of.parse::<u16>().ok()),
                    };
                    let key = port.map(|port| InstanceKey { host, port });
                    match key.filter(|k| insts.iter().any(|x| &x.key == k)) {
                        Some(k) if &k == me => {
                            p.error(
                                format!("{path}.of"),
                                "a replica cannot replicate from itself",
                            );
                            None
                        }
                        Some(k) => Some(k),
                        None => {
                            p.error(
                                format!("{path}.of"),
                                format!("{} is not a member of group {}; write host:port of its master or of another replica", show(of), show(&g.name)),
                            );
                            None
                        }
                    }
                }
            };
            if let Some(t) = target {
                upstream.insert(me.clone(), t);
            }
        }
        // Every chain must end at the master.
        for (i, (_, path, _)) in members.iter().enumerate().skip(1) {
            let mut at = &insts[i].key;
            let mut steps = 0;
            while let Some(next) = upstream.get(at) {
                at = next;
                steps += 1;
                if steps > insts.len() {
                    break;
                }
            }
            if upstream.contains_key(&insts[i].key) && *at != master_key {
                p.error(
                    format!("{path}.of"),
                    "replication chain forms a cycle and never reaches the master",
                );
            }
        }
        let direct = upstream.values().filter(|u| **u == master_key).count() as u32;
        if let Some(min) = g.min_replicas_to_write
            && in_range(
                p,
                format!("{gpath}.min_replicas_to_write"),
                min.into(),
                0,
                INT_MAX,
                "",
            )
            && min > direct
        {
            p.error(
                format!("{gpath}.min_replicas_to_write"),
                format!("{min} replicas required for writes, but only {direct} replicate directly from the master; the master would refuse every write"),
            );
        }
        let master_host = &insts[0].key.host;
        if hosts.len() > 1 {
            for (i, (_, path, _)) in members.iter().enumerate().skip(1) {
                if &insts[i].key.host == master_host {
                    p.warn(
                        path.clone(),
                        format!("replica is on host {master_host:?} with its master; one host failure would take the whole group"),
                    );
                }
            }
        }
        out.push(Group {
            name: g.name.clone(),
            master: insts[0].clone(),
            replicas: insts[1..].to_vec(),
            upstream,
        });
    }
    out
}

fn validate_sentinel(
    raw: &RawTopology,
    hosts: &[Host],
    ports: &mut Vec<PortUse>,
    p: &mut Problems,
) -> Option<Sentinels> {
    let s = raw.sentinel.as_ref()?;
    if raw.groups.as_ref().is_none_or(Vec::is_empty) {
        p.error(
            "sentinel",
            "Sentinels monitor replication `groups`, and this topology has none",
        );
    }
    let n = s.instances.len() as u32;
    if n == 0 {
        p.error("sentinel.instances", "at least one Sentinel is required");
    } else if n < 3 {
        p.warn(
            "sentinel.instances",
            format!("{n} Sentinel(s): with fewer than 3, losing one host can leave no majority to authorise a failover"),
        );
    } else if n.is_multiple_of(2) {
        p.warn(
            "sentinel.instances",
            format!(
                "{n} Sentinels: an even number tolerates no more failures than {} would",
                n - 1
            ),
        );
    }
    if s.quorum == 0 || s.quorum > n {
        p.error(
            "sentinel.quorum",
            format!(
                "quorum {} must be between 1 and the number of Sentinels ({n})",
                s.quorum
            ),
        );
    }
    let ms = |v: &Option<DurationValue>, field: &str, default: u64, p: &mut Problems| match v {
        None => default,
        Some(d) => match parse_duration_ms(d) {
            Ok(0) => {
                p.error(format!("sentinel.{field}"), "must be greater than 0");
                default
            }
            // Sentinel reads these back from its own config file with atoi().
            Ok(x) if in_range(p, format!("sentinel.{field}"), x, 1, INT_MAX, " ms") => x,
            Ok(_) => default,
            Err(e) => {
                p.error(format!("sentinel.{field}"), e);
                default
            }
        },
    };
    let down_after_ms = ms(&s.down_after, "down_after", 30_000, p);
    let failover_timeout_ms = ms(&s.failover_timeout, "failover_timeout", 180_000, p);
    let mut instances = Vec::new();
    let mut per_host: HashMap<usize, u32> = HashMap::new();
    for (i, sn) in s.instances.iter().enumerate() {
        let path = format!("sentinel.instances[{i}]");
        let Some(h) = host_index(hosts, &sn.host, &path, p) else {
            continue;
        };
        ports.push(PortUse {
            host: h,
            port: sn.port,
            field: format!("{path}.port"),
            name: path.clone(),
            bus: false,
        });
        *per_host.entry(h).or_default() += 1;
        let bind = match &sn.bind {
            None => vec![hosts[h].address],
            Some(b) => b
                .split_whitespace()
                .filter_map(|w| match w.parse::<IpAddr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        p.error(
                            format!("{path}.bind"),
                            format!("{} is not an IP address", show(w)),
                        );
                        None
                    }
                })
                .collect(),
        };
        if bind.iter().any(|a| !a.is_loopback()) && raw.auth.is_none() {
            p.error(
                path.clone(),
                "a Sentinel listening beyond loopback needs auth.password_file (it can reconfigure every master it watches)",
            );
        }
        if sn.port == 0 || sn.port > 65535 {
            continue;
        }
        instances.push(SentinelInstance {
            key: InstanceKey {
                host: hosts[h].name.clone(),
                port: sn.port as u16,
            },
            address: hosts[h].address,
            port: sn.port as u16,
            bind,
        });
    }
    if hosts.len() > 1 && per_host.values().any(|&c| c > 1) {
        p.warn(
            "sentinel.instances",
            "several Sentinels share a host while other hosts exist; spread them so one host failure cannot take the quorum",
        );
    }
    Some(Sentinels {
        instances,
        quorum: s.quorum,
        down_after_ms,
        failover_timeout_ms,
        parallel_syncs: match s.parallel_syncs {
            // SENTINEL SET refuses 0.
            Some(v) if !in_range(p, "sentinel.parallel_syncs", v.into(), 1, INT_MAX, "") => 1,
            v => v.unwrap_or(1),
        },
    })
}

/// `agent:`: interval 100 ms – 1 h, stable_for up to a day, a socket address (or `off`).
fn validate_agent(raw: &RawTopology, p: &mut Problems) -> AgentSettings {
    let mut a = AgentSettings::default();
    let Some(r) = &raw.agent else {
        return a;
    };
    let mut ms = |v: &Option<DurationValue>, field: &str, min: u64, max: u64, default: u64| match v
    {
        None => default,
        Some(d) => match parse_duration_ms(d) {
            Ok(x) if (min..=max).contains(&x) => x,
            Ok(x) => {
                p.error(
                    format!("agent.{field}"),
                    format!("{x} ms is out of range; use {min} ms to {max} ms"),
                );
                default
            }
            Err(e) => {
                p.error(format!("agent.{field}"), e);
                default
            }
        },
    };
    a.interval_ms = ms(&r.interval, "interval", 100, 3_600_000, a.interval_ms);
    if let Some(pol) = &r.policy {
        a.stable_for_ms = ms(
            &pol.stable_for,
            "policy.stable_for",
            0,
            86_400_000,
            a.stable_for_ms,
        );
        a.restore_roles = pol.restore_roles.unwrap_or(false);
    }
    if let Some(l) = &r.listen {
        let l = l.trim();
        if l == "off" {
            a.listen = None;
        } else if let Some(port) = l.strip_prefix("host:") {
            match port.parse::<u16>() {
                Ok(port) if port > 0 => {
                    p.warn(
                        "agent.listen",
                        format!("host:{port}: each agent answers on its host's address, beyond this host: the endpoint answers without a password (health, roles, metrics, drain marks); firewall it"),
                    );
                    a.listen = Some(AgentListen::HostAddress(port));
                }
                _ => p.error(
                    "agent.listen",
                    format!(
                        "{} is not a port; write host:PORT (e.g. host:9187)",
                        show(port)
                    ),
                ),
            }
        } else {
            match l.parse::<std::net::SocketAddr>() {
                Ok(addr) => {
                    if !addr.ip().is_loopback() {
                        p.warn(
                            "agent.listen",
                            format!("{addr} is reachable beyond this host: the endpoint answers without a password (health, roles, metrics); firewall it"),
                        );
                    }
                    a.listen = Some(AgentListen::At(addr));
                }
                Err(_) => p.error(
                    "agent.listen",
                    format!(
                        "{} is not an address; write IP:PORT (e.g. {AGENT_LISTEN}), host:PORT (each host's own address) or off",
                        show(l)
                    ),
                ),
            }
        }
    }
    a
}

fn explicit_nodes(nodes: &[RawNode], hosts: &[Host], p: &mut Problems) -> Option<Vec<Planned>> {
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let path = format!("cluster.nodes[{i}]");
        let Some(host) = hosts.iter().position(|h| h.name == n.host) else {
            let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
            p.error(
                format!("{path}.host"),
                format!(
                    "unknown host {}; hosts are: {}",
                    show(&n.host),
                    names.join(", ")
                ),
            );
            continue;
        };
        if n.shard == 0 {
            p.error(format!("{path}.shard"), "shards are numbered from 1");
            continue;
        }
        out.push(Planned {
            host,
            port: n.port,
            shard: n.shard,
            role: n.role,
            path,
            overrides: Some(n.overrides()),
        });
    }
    Some(out)
}

fn generated_nodes(c: &RawCluster, hosts: &[Host], p: &mut Problems) -> Option<Vec<Planned>> {
    let Some(shards) = c.shards else {
        p.error(
            "cluster",
            "missing field `shards` (or give an explicit `nodes` list)",
        );
        return None;
    };
    let replicas = c.replicas.unwrap_or(1);
    let Some(ports) = &c.ports else {
        p.error(
            "cluster",
            "missing field `ports` (a range like \"7000-7005\" or a list)",
        );
        return None;
    };
    let pool = parse_ports(ports, p)?;
    // `shards: 0` goes on with no nodes, so that the shard-count check refuses it.
    if hosts.is_empty() {
        return None;
    }
    if shards > 1000 {
        p.error("cluster.shards", "at most 1000 shards");
        return None;
    }
    if replicas > 20 {
        p.error("cluster.replicas", "at most 20 replicas per shard");
        return None;
    }
    let h = hosts.len();
    let mut next_port = vec![0usize; h];
    let mut out = Vec::new();
    // Shard by shard, so that growing `shards` only appends nodes and never moves existing
    // ones; member k of shard s goes k hosts further than its master, so that no host holds a
    // whole shard when there are enough hosts.
    let mut need = vec![0usize; h];
    for s in 0..shards {
        for k in 0..=replicas {
            need[(s as usize + k as usize) % h] += 1;
        }
    }
    let per_host = need.iter().copied().max().unwrap_or(0);
    if per_host > pool.len() {
        p.error(
            "cluster.ports",
            format!(
                "{shards} shards x {} nodes need {per_host} ports per host on {h} host(s); only {} given",
                replicas + 1,
                pool.len()
            ),
        );
        return None;
    }
    // The pool is handed out in order on every host, so the busiest host uses its first
    // `per_host` ports. When those span more than 10000, a node's port is another node's bus
    // port (port + 10000): one error on the pool, not one per node.
    let used: std::collections::HashSet<u32> = pool[..per_host].iter().copied().collect();
    if let Some(&low) = pool[..per_host]
        .iter()
        .find(|&&x| used.contains(&(x + 10000)))
    {
        let clashes = pool[..per_host]
            .iter()
            .filter(|&&x| used.contains(&(x + 10000)))
            .count();
        let why = format!(
            "a host needs {per_host} ports, taken from the pool in order ({}-{}), and port {} would be the cluster bus port of port {low} (port + 10000), as for {clashes} port(s)",
            pool[0],
            pool[per_host - 1],
            low + 10000
        );
        let fix = if per_host >= 10000 {
            "; more than 10000 nodes on one host cannot all have a free bus port: add hosts or use fewer shards or replicas".to_string()
        } else {
            format!(
                "; give ports that span less than 10000, e.g. {}-{}",
                pool[0],
                pool[0] + per_host as u32 - 1
            )
        };
        p.error("cluster.ports", why + &fix);
        return None;
    }
    for s in 0..shards {
        for k in 0..=replicas {
            let host = (s as usize + k as usize) % h;
            let port = pool[next_port[host]];
            next_port[host] += 1;
            out.push(Planned {
                host,
                port,
                shard: s + 1,
                role: if k == 0 { Role::Master } else { Role::Replica },
                path: "cluster.shards".into(),
                overrides: None,
            });
        }
    }
    Some(out)
}

fn parse_ports(ports: &PortsValue, p: &mut Problems) -> Option<Vec<u32>> {
    let list: Vec<u32> = match ports {
        PortsValue::List(v) => v.clone(),
        PortsValue::Range(s) => {
            let parsed = s.split_once('-').and_then(|(a, b)| {
                Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?))
            });
            match parsed {
                // Only the ends can be out of range: check them before expanding, so that a
                // typo like "7000-700000" gives one error, not one per port (nor a huge list).
                Some((a, b)) if a <= b => {
                    let bad: Vec<u32> = [a, b]
                        .into_iter()
                        .filter(|&x| x == 0 || x > MAX_PORT)
                        .collect();
                    for port in &bad {
                        p.error(
                            "cluster.ports",
                            format!("port {port} is outside 1-{MAX_PORT} (the cluster bus port, port + 10000, must fit)"),
                        );
                    }
                    if !bad.is_empty() {
                        return None;
                    }
                    (a..=b).collect()
                }
                _ => {
                    p.error(
                        "cluster.ports",
                        format!(
                            "{} is not a port range; write \"7000-7005\" or a list [7000, 7001]",
                            show(s)
                        ),
                    );
                    return None;
                }
            }
        }
    };
    let mut ok = true;
    if let PortsValue::List(_) = ports {
        let mut seen: HashMap<u32, usize> = HashMap::new();
        for (i, &port) in list.iter().enumerate() {
            if let Some(first) = seen.insert(port, i) {
                p.error(
                    format!("cluster.ports[{i}]"),
                    format!("port {port} is listed twice (also cluster.ports[{first}])"),
                );
                ok = false;
            }
        }
    }
    for (i, &port) in list.iter().enumerate() {
        if port == 0 || port > MAX_PORT {
            let path = match ports {
                PortsValue::List(_) => format!("cluster.ports[{i}]"),
                PortsValue::Range(_) => "cluster.ports".into(),
            };
            p.error(
                path,
                format!("port {port} is outside 1-{MAX_PORT} (the cluster bus port, port + 10000, must fit)"),
            );
            ok = false;
        }
    }
    ok.then_some(list)
}

/// Mode `both` (the live switch of a Redis Cluster): it needs `port_offset`, and only a
/// cluster can be switched live; the TLS ports join the port checks.
fn tls_ports(raw: &RawTopology, t: &Tls, ports: &mut Vec<PortUse>, p: &mut Problems) {
    if t.mode == TlsMode::Both {
        if t.port_offset == 0 && raw.tls.as_ref().is_some_and(|r| r.port_offset.is_none()) {
            p.error(
                "tls.port_offset",
                "mode both needs port_offset: the declared ports stay plain, and TLS is served on each declared port + port_offset (e.g. port_offset: 1000)",
            );
        }
        if raw.groups.as_ref().is_some_and(|g| !g.is_empty()) {
            p.error(
                "tls.mode",
                "mode both switches a running Redis Cluster to TLS; replication groups cannot be switched live (Sentinel tells every client one address per master, plain or TLS, never both): switch groups offline (docs/security.md, \"Turning TLS on\"), or declare tls before their first apply",
            );
        }
    }
    if t.port_offset == 0 {
        return;
    }
    let extra: Vec<PortUse> = ports
        .iter()
        .filter(|u| u.bus)
        .map(|u| PortUse {
            host: u.host,
            port: u.port + u32::from(t.port_offset),
            field: "tls.port_offset".into(),
            name: format!("the TLS port of {} ({} + tls.port_offset)", u.name, u.port),
            bus: false,
        })
        .collect();
    ports.extend(extra);
}

/// A port some instance listens on, for the cross-section port checks.
struct PortUse {
    host: usize,
    port: u32,
    /// Field path the error is reported at.
    field: String,
    /// What uses the port, for "also …" in messages.
    name: String,
    /// A cluster node: port + 10000 is its bus port.
    bus: bool,
}

/// Duplicate host:port, ports out of range, and ports that collide with a cluster node's bus
/// port (port + 10000) on the same host — across the cluster, groups and Sentinels.
fn check_ports(uses: &[PortUse], hosts: &[Host], p: &mut Problems) {
    let mut used: HashMap<(usize, u32), &PortUse> = HashMap::new();
    for n in uses {
        let limit = if n.bus { MAX_PORT } else { 65535 };
        if n.port == 0 || n.port > limit {
            let why = if n.bus {
                " (the cluster bus port, port + 10000, must fit)"
            } else {
                ""
            };
            p.error(
                n.field.clone(),
                format!("port {} is outside 1-{limit}{why}", n.port),
            );
            continue;
        }
        if let Some(first) = used.insert((n.host, n.port), n) {
            p.error(
                n.field.clone(),
                format!(
                    "duplicate {}:{} (also {})",
                    hosts[n.host].name, n.port, first.name
                ),
            );
        }
    }
    for n in uses {
        if n.port > 10000
            && let Some(owner) = used.get(&(n.host, n.port - 10000))
            && owner.bus
        {
            p.error(
                n.field.clone(),
                format!(
                    "port {} on host {:?} is the cluster bus port of {} ({} + 10000)",
                    n.port,
                    hosts[n.host].name,
                    owner.name,
                    n.port - 10000
                ),
            );
        }
    }
}

fn resolve_settings(
    layers: &[(&RawInstance, String)],
    host: &Host,
    p: &mut Problems,
) -> InstanceSettings {
    // The last layer that sets a field wins; errors are reported at that layer's path.
    fn pick<'a, T>(
        layers: &'a [(&'a RawInstance, String)],
        f: impl Fn(&'a RawInstance) -> Option<&'a T>,
    ) -> Option<(&'a T, &'a str)> {
        layers
            .iter()
            .rev()
            .find_map(|(l, path)| f(l).map(|v| (v, path.as_str())))
    }
    fn pick_p<'a, T>(
        layers: &'a [(&'a RawInstance, String)],
        f: impl Fn(&'a RawPersistence) -> Option<&'a T>,
    ) -> Option<(&'a T, &'a str)> {
        layers.iter().rev().find_map(|(l, path)| {
            l.persistence
                .as_ref()
                .and_then(&f)
                .map(|v| (v, path.as_str()))
        })
    }

    let bind = match pick(layers, |l| l.bind.as_ref()) {
        None => vec![host.address],
        Some((s, path)) => {
            let mut v = Vec::new();
            for word in s.split_whitespace() {
                match word.parse::<IpAddr>() {
                    Ok(a) => v.push(a),
                    Err(_) => p.error(
                        format!("{path}.bind"),
                        format!("{} is not an IP address", show(word)),
                    ),
                }
            }
            if v.is_empty() {
                p.error(format!("{path}.bind"), "needs at least one IP address");
            }
            v
        }
    };

    let mut persistence = Persistence::redis_default();
    if let Some((rules, path)) = pick_p(layers, |x| x.save.as_ref()) {
        persistence.save = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let nums: Vec<Option<u64>> = rule.split_whitespace().map(|w| w.parse().ok()).collect();
            match nums.as_slice() {
                [Some(secs), Some(changes)] if *secs > 0 && *changes > 0 => {
                    let at = format!("{path}.persistence.save[{i}]");
                    if in_range(p, at.clone(), *secs, 1, LLONG_MAX, " s")
                        && in_range(p, at, *changes, 1, INT_MAX, " changes")
                    {
                        persistence.save.push((*secs, *changes))
                    }
                }
                _ => p.error(
                    format!("{path}.persistence.save[{i}]"),
                    format!("{} is not a save rule; write \"SECONDS CHANGES\" with positive numbers, e.g. \"3600 1\"", show(rule)),
                ),
            }
        }
    }
    if let Some((v, _)) = pick_p(layers, |x| x.appendonly.as_ref()) {
        persistence.appendonly = *v;
    }
    if let Some((v, _)) = pick_p(layers, |x| x.appendfsync.as_ref()) {
        persistence.appendfsync = *v;
    }
    if let Some((v, path)) = pick_p(layers, |x| x.auto_aof_rewrite_percentage.as_ref()) {
        let at = format!("{path}.persistence.auto_aof_rewrite_percentage");
        if in_range(p, at, (*v).into(), 0, INT_MAX, "") {
            persistence.auto_aof_rewrite_percentage = *v;
        }
    }
    if let Some((v, path)) = pick_p(layers, |x| x.auto_aof_rewrite_min_size.as_ref()) {
        match parse_size(v) {
            Ok(n) => {
                let at = format!("{path}.persistence.auto_aof_rewrite_min_size");
                if in_range(p, at, n, 0, LLONG_MAX, " bytes") {
                    persistence.auto_aof_rewrite_min_size = n;
                }
            }
            Err(e) => p.error(format!("{path}.persistence.auto_aof_rewrite_min_size"), e),
        }
    }

    let maxmemory =
        pick(layers, |l| l.maxmemory.as_ref()).and_then(|(v, path)| match parse_size(v) {
            Ok(n) => Some(n),
            Err(e) => {
                p.error(format!("{path}.maxmemory"), e);
                None
            }
        });
    let maxmemory_policy = pick(layers, |l| l.maxmemory_policy.as_ref()).map(|(v, path)| {
        if !MAXMEMORY_POLICIES.contains(&v.as_str()) {
            p.error(
                format!("{path}.maxmemory_policy"),
                format!(
                    "unknown policy {}; one of: {}",
                    show(v),
                    MAXMEMORY_POLICIES.join(", ")
                ),
            );
        }
        v.clone()
    });

    let mut extra = BTreeMap::new();
    for (layer, path) in layers {
        let Some(cfg) = &layer.config else { continue };
        for (key, value) in cfg {
            let kpath = format!("{path}.config.{key}");
            let lower = key.to_ascii_lowercase();
            if let Some(instead) = managed(&lower) {
                p.error(kpath, managed_message(key, instead));
                continue;
            }
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                p.error(
                    kpath,
                    format!("{} is not a redis.conf directive name", show(key)),
                );
                continue;
            }
            let text = match value {
                ScalarValue::Bool(true) => "yes".to_string(),
                ScalarValue::Bool(false) => "no".to_string(),
                ScalarValue::Int(i) => i.to_string(),
                ScalarValue::Float(f) => f.to_string(),
                ScalarValue::Text(s) => s.clone(),
            };
            if text.chars().any(|c| c.is_control()) {
                p.error(
                    kpath,
                    "value must be a single line without control characters",
                );
                continue;
            }
            extra.insert(lower, text);
        }
    }

    InstanceSettings {
        bind,
        persistence,
        maxmemory,
        maxmemory_policy,
        min_replicas_to_write: 0,
        min_replicas_max_lag_s: 10,
        replica_read_only: true,
        extra,
    }
}

/// `64mb`, `1gb`, `512kb`, `100` (bytes). Units are 1024-based, as in redis.conf.
pub fn parse_size(v: &SizeValue) -> Result<u64, String> {
    let s = match v {
        SizeValue::Bytes(n) => return Ok(*n),
        SizeValue::Text(s) => s.trim().to_ascii_lowercase(),
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let mult: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        "t" | "tb" => 1 << 40,
        _ => {
            return Err(format!(
                "{} is not a size; write bytes or a number with kb, mb, gb",
                show(&s)
            ));
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            format!(
                "{} is not a size; write bytes or a number with kb, mb, gb",
                show(&s)
            )
        })
}

/// `5000` (ms), `5000ms`, `5s`, `2m`.
pub fn parse_duration_ms(v: &DurationValue) -> Result<u64, String> {
    let s = match v {
        DurationValue::Millis(n) => return Ok(*n),
        DurationValue::Text(s) => s.trim().to_ascii_lowercase(),
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let mult: u64 = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        _ => {
            return Err(format!(
                "{} is not a duration; write milliseconds or a number with ms, s, m",
                show(&s)
            ));
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            format!(
                "{} is not a duration; write milliseconds or a number with ms, s, m",
                show(&s)
            )
        })
}
