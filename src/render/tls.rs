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
use crate::topology::Topology;

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

/// The listening and TLS directives of an instance whose declared port is `port`: the
/// declared port speaks TLS, no plain port is open (`port 0`), and replication and (for a
/// cluster node) the bus use TLS. The bus port stays port + 10000, written out explicitly.
pub fn conf_lines(topo: &Topology, p: &TlsPaths, port: u16, cluster_node: bool) -> String {
    let mut c = String::new();
    let Some(t) = topo.tls_on() else {
        return c;
    };
    let _ = writeln!(c, "port 0");
    let _ = writeln!(c, "tls-port {port}");
    for (k, v) in file_params(p) {
        let _ = writeln!(c, "{k} {}", super::quote(&v));
    }
    let _ = writeln!(c, "tls-auth-clients {}", t.auth_clients);
    // Replicas (and Sentinels) dial masters over TLS, presenting tls-cert-file.
    let _ = writeln!(c, "tls-replication yes");
    if cluster_node {
        let _ = writeln!(c, "tls-cluster yes");
        let _ = writeln!(c, "cluster-port {}", u32::from(port) + 10000);
    }
    c
}
