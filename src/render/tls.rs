//! TLS files and directives of an instance (`tls.mode: on`). Pure: the certificate and key
//! bytes are read by the CLI (cli/files.rs) and handed in as `TlsMaterial`.
//!
//! Each instance gets its own copy of the CA, certificate and key, named by the SHA-256 of
//! their contents (`tls-cert-<hash>.pem`). A renewed certificate is therefore a new path:
//! the rendered redis.conf changes (so `apply` rewrites it), and the running value of
//! `tls-cert-file` differs from the declared one (so `apply` sends `CONFIG SET tls-cert-file
//! … tls-key-file …`, which makes Redis load the new files without a restart). One
//! mechanism detects and applies a renewal, whatever the files' timestamps say.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{InstancePaths, RenderedFile};
use crate::topology::{Tls, TlsMode, Topology};

/// The PEM bytes of the CA and of every host's certificate and key.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    pub ca: Vec<u8>,
    /// host name → (certificate, key).
    pub hosts: BTreeMap<String, (Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsMaterial(<{} hosts, redacted>)", self.hosts.len())
    }
}

fn hashed(paths: &InstancePaths, what: &str, bytes: &[u8]) -> PathBuf {
    let d = Sha256::digest(bytes);
    let hex: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
    paths.dir.join(format!("tls-{what}-{hex}.pem"))
}

/// Paths of the CA, certificate and key of an instance on `host`.
pub struct TlsPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn paths(paths: &InstancePaths, host: &str, m: &TlsMaterial) -> Option<TlsPaths> {
    let (cert, key) = m.hosts.get(host)?;
    Some(TlsPaths {
        ca: hashed(paths, "ca", &m.ca),
        cert: hashed(paths, "cert", cert),
        key: hashed(paths, "key", key),
    })
}

/// The copies to place in the instance directory; the key is the owner's only.
pub fn files(paths: &InstancePaths, host: &str, m: &TlsMaterial) -> Vec<RenderedFile> {
    let (Some(p), Some((cert, key))) = (self::paths(paths, host, m), m.hosts.get(host)) else {
        return Vec::new();
    };
    vec![
        RenderedFile {
            path: p.ca,
            contents: m.ca.clone(),
            mode: 0o640,
        },
        RenderedFile {
            path: p.cert,
            contents: cert.clone(),
            mode: 0o640,
        },
        RenderedFile {
            path: p.key,
            contents: key.clone(),
            mode: 0o600,
        },
    ]
}

/// The file directives, as `CONFIG GET` reports them; set together (a certificate and its
/// key must change in one `CONFIG SET`, or Redis refuses the mismatched pair).
pub fn file_params(p: &TlsPaths) -> Vec<(String, String)> {
    vec![
        ("tls-cert-file".into(), p.cert.display().to_string()),
        ("tls-key-file".into(), p.key.display().to_string()),
        ("tls-ca-cert-file".into(), p.ca.display().to_string()),
    ]
}

/// The listening and TLS directives of an instance whose declared port is `port`.
/// Mode `on`: the declared port speaks TLS, no plain port is open (`port 0`), and
/// replication and (for a cluster node) the bus use TLS. The bus port stays port + 10000,
/// written out explicitly. Mode `both` (a cluster switched live): the declared port stays
/// plain, TLS is served on port + `port_offset`, replication and the bus use TLS, and the
/// announced ports are written out so that a restart announces what the live switch set
/// (plan::tls_switch): TLS clients are sent to the TLS ports, plain clients to the plain ones.
pub fn conf_lines(topo: &Topology, p: &TlsPaths, port: u16, cluster_node: bool) -> String {
    let mut c = String::new();
    let Some(t) = topo.tls_on() else {
        return c;
    };
    let both = t.mode == TlsMode::Both;
    let tls_port = tls_port(t, port);
    let _ = writeln!(c, "port {}", if both { port } else { 0 });
    let _ = writeln!(c, "tls-port {tls_port}");
    for (k, v) in file_params(p) {
        let _ = writeln!(c, "{k} {}", super::quote(&v));
    }
    let _ = writeln!(c, "tls-auth-clients {}", t.auth_clients);
    // Replicas (and Sentinels) dial masters over TLS, presenting tls-cert-file.
    let _ = writeln!(c, "tls-replication yes");
    if cluster_node {
        let _ = writeln!(c, "tls-cluster yes");
        let _ = writeln!(c, "cluster-port {}", u32::from(port) + 10000);
        if both {
            let _ = writeln!(c, "cluster-announce-tls-port {tls_port}");
            let _ = writeln!(c, "cluster-announce-port {port}");
            let _ = writeln!(c, "cluster-announce-bus-port {}", u32::from(port) + 10000);
        }
    }
    c
}

/// The port an instance declared at `port` serves TLS on: the declared one in mode `on`,
/// port + `port_offset` in mode `both`.
pub fn tls_port(t: &Tls, port: u16) -> u16 {
    match t.mode {
        TlsMode::Both => port.saturating_add(t.port_offset),
        _ => port,
    }
}

/// Runtime settings of a cluster node that switch it between the TLS modes, as `CONFIG GET`
/// reports them (empty unless `tls.port_offset` says a switch is under way). Applied to every
/// node at once, in `SWITCH_ORDER` (plan::tls_switch, exec::ensure_tls_switch), never one
/// node at a time as other drift is: a bus speaking TLS on some nodes and plain on others is
/// a partitioned cluster.
pub fn switch_params(topo: &Topology, port: u16) -> Vec<(String, String)> {
    let Some(t) = topo.tls_switching() else {
        return Vec::new();
    };
    let bus = (u32::from(port) + 10000).to_string();
    let kv = |k: &str, v: String| (k.to_string(), v);
    match t.mode {
        TlsMode::Both => vec![
            kv("tls-replication", "yes".into()),
            kv("tls-cluster", "yes".into()),
            kv("cluster-announce-tls-port", tls_port(t, port).to_string()),
            kv("cluster-announce-port", port.to_string()),
            kv("cluster-announce-bus-port", bus),
        ],
        TlsMode::On => vec![
            kv("tls-replication", "yes".into()),
            kv("tls-cluster", "yes".into()),
            kv("port", "0".into()),
            kv("tls-port", port.to_string()),
            kv("cluster-announce-tls-port", "0".into()),
            kv("cluster-announce-port", "0".into()),
            kv("cluster-announce-bus-port", "0".into()),
        ],
        TlsMode::Off => vec![
            kv("tls-replication", "no".into()),
            kv("tls-cluster", "no".into()),
            kv("cluster-announce-tls-port", "0".into()),
            kv("cluster-announce-port", "0".into()),
            kv("cluster-announce-bus-port", "0".into()),
            kv("tls-port", "0".into()),
        ],
    }
}

/// The (plain, TLS) client ports a node declared at `port` announces in the topology's TLS
/// mode, as `CLUSTER SHARDS` lists them (`port`, `tls-port`).
pub fn announced_ports(topo: &Topology, port: u16) -> (Option<u16>, Option<u16>) {
    match topo.tls.as_ref().map(|t| (t.mode, t)) {
        Some((TlsMode::Both, t)) => (Some(port), Some(tls_port(t, port))),
        Some((TlsMode::On, _)) => (None, Some(port)),
        _ => (Some(port), None),
    }
}

/// Whether `name` is one of `switch_params`' settings (then not ordinary drift).
pub fn is_switch_key(topo: &Topology, name: &str) -> bool {
    topo.tls_switching().is_some_and(|t| {
        matches!(
            name,
            "tls-replication"
                | "tls-cluster"
                | "port"
                | "cluster-announce-tls-port"
                | "cluster-announce-port"
                | "cluster-announce-bus-port"
        ) || (name == "tls-port" && t.mode != TlsMode::Both)
    })
}

/// The `CONFIG SET`s of one node's switch, in the order they run on all nodes at once (each
/// group on every node before the next group anywhere): the bus and replication modes first
/// (links already up stay up; new ones use the new mode), then the listening ports (the
/// plain port closed before TLS takes the declared port), then the announced ports — peers
/// drop and redial their links to a node whose announced ports change, so every bus link is
/// redialed in the new mode once every node speaks it, and replicas follow their master to
/// its new port — and closing the TLS port (switching off) last.
/// Always five groups (some empty), the same on every node.
pub fn switch_groups(params: &[(String, String)]) -> Vec<Vec<(String, String)>> {
    let rank = |k: &str, v: &str| match k {
        "tls-replication" | "tls-cluster" => 0,
        "port" => 1,
        "tls-port" if v != "0" => 2,
        "tls-port" => 4,
        _ => 3,
    };
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new(); 5];
    for (k, v) in params {
        out[rank(k, v)].push((k.clone(), v.clone()));
    }
    out
}
