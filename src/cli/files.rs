//! The files and paths a topology names, checked against the system before anything runs:
//! the password file (present, readable, not empty, owner-only) and the paths redisctl writes
//! into configuration files (no control characters). `validate` and every command that reads
//! the password share these checks, so `validate` reports what `apply` would refuse.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::render::Secrets;
use crate::render::tls::TlsMaterial;
use crate::topology::spans::SpanIndex;
use crate::topology::{Diagnostic, Severity, Topology, TopologyError};
use tokio_rustls::rustls::ClientConfig;

/// An error about the topology field `field`, located at its line and column in `file`.
fn located(file: &Path, field: &str, message: String) -> TopologyError {
    let pos = std::fs::read_to_string(file)
        .ok()
        .and_then(|src| SpanIndex::build(&src).find(field));
    TopologyError {
        diagnostics: vec![Diagnostic {
            file: file.display().to_string(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            severity: Severity::Error,
            path: field.to_string(),
            message,
        }],
    }
}

/// redisctl's passwords: the first line of `auth.password_file` (or of each of
/// `auth.password_files`, in order), which must exist, be readable, be the owner's only
/// (like ssh with a private key: a password others can read is refused, not used) and not
/// be empty. `file` is the topology, for the errors' locations (every bad file at once).
pub fn read_password(file: &Path, t: &Topology) -> Result<Option<Vec<String>>, TopologyError> {
    let Some(auth) = &t.auth else { return Ok(None) };
    let mut diagnostics = Vec::new();
    let mut v = Vec::new();
    for (j, path) in auth.password_files.iter().enumerate() {
        match first_line(path) {
            Ok(pw) => v.push(pw),
            Err(m) => diagnostics.extend(located(file, &auth.password_field(j), m).diagnostics),
        }
    }
    if !diagnostics.is_empty() {
        return Err(TopologyError { diagnostics });
    }
    Ok(Some(v))
}

/// Everything the password files hold: `auth.password_file`, for each ACL user the SHA-256
/// of the first line of each of its `password_files`, and the replication and Sentinel
/// users' passwords (each file checked like `auth.password_file`; every bad file is
/// reported at once, each at its field).
pub fn read_secrets(file: &Path, t: &Topology) -> Result<Option<Secrets>, TopologyError> {
    let mut diagnostics = Vec::new();
    // A bad password_file is reported with every other bad file, not alone.
    let mut previous = match read_password(file, t) {
        Ok(None) => return Ok(None),
        Ok(Some(pw)) => pw,
        Err(e) => {
            diagnostics.extend(e.diagnostics);
            Vec::new()
        }
    };
    // The last listed is the one the others switch to; the earlier ones are still accepted.
    let password = previous.pop().unwrap_or_default();
    let mut users = std::collections::BTreeMap::new();
    let acl = t.auth.as_ref().and_then(|a| a.acl.as_ref());
    for (i, u) in acl.iter().flat_map(|a| a.users.iter()).enumerate() {
        let mut hashes = Vec::new();
        for (j, path) in u.password_files.iter().enumerate() {
            let field = format!("auth.users[{i}].password_files[{j}]");
            match first_line(path) {
                Ok(pw) => hashes.push(crate::render::acl::sha256_hex(&pw)),
                Err(m) => diagnostics.extend(located(file, &field, m).diagnostics),
            }
        }
        users.insert(u.name.clone(), hashes);
    }
    let mut internal = |field: &str, paths: &[std::path::PathBuf]| {
        let mut v = Vec::new();
        for (j, path) in paths.iter().enumerate() {
            match first_line(path) {
                Ok(pw) => v.push(pw),
                Err(m) => {
                    diagnostics.extend(located(file, &format!("auth.{field}[{j}]"), m).diagnostics)
                }
            }
        }
        v
    };
    let replication = acl
        .map(|a| internal("replication_password_files", &a.replication_password_files))
        .unwrap_or_default();
    let sentinel = acl
        .map(|a| internal("sentinel_password_files", &a.sentinel_password_files))
        .unwrap_or_default();
    if !diagnostics.is_empty() {
        return Err(TopologyError { diagnostics });
    }
    Ok(Some(Secrets {
        password,
        previous,
        users,
        replication,
        sentinel,
    }))
}

/// The first line of an owner-only password file, or why it cannot be used.
pub fn first_line(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is open to others (mode {mode:04o}); the password must be readable by its owner only: run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let pw = text.lines().next().unwrap_or("");
    if pw.is_empty() {
        return Err(format!(
            "{}: the first line (the password) is empty",
            path.display()
        ));
    }
    if pw.chars().any(char::is_control) {
        return Err(format!(
            "{}: the password contains control characters",
            path.display()
        ));
    }
    Ok(pw.to_string())
}

/// A key file: a regular file, the owner's only (like ssh with a private key), readable.
fn read_key(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is open to others (mode {mode:04o}); a private key must be readable by its owner only: run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::observe::tls::private_key(&bytes, &path.display().to_string())?;
    Ok(bytes)
}

fn read_cert(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::observe::tls::certificates(&bytes, &path.display().to_string())?;
    Ok(bytes)
}

/// What `tls:` names, read and checked: the instances' files (copied into each instance
/// directory by render) and redisctl's own client configuration. Every bad file is
/// reported, each at its field. None when the topology has no `tls` or its mode is off.
///
/// A host's own certificate (`hosts[].tls`) is read only where `local(host)` says the host is
/// this machine: each host holds its own key, not the others'. Instances of other hosts are
/// rendered and checked by their own host's redisctl.
pub fn read_tls(
    file: &Path,
    t: &Topology,
    local: &dyn Fn(&crate::topology::Host) -> bool,
) -> Result<Option<(TlsMaterial, std::sync::Arc<ClientConfig>)>, TopologyError> {
    let Some(tls) = t.tls_files() else {
        return Ok(None);
    };
    let mut diagnostics = Vec::new();
    let mut at = |field: &str, r: Result<Vec<u8>, String>| match r {
        Ok(b) => b,
        Err(m) => {
            diagnostics.extend(located(file, field, m).diagnostics);
            Vec::new()
        }
    };
    let ca = at("tls.ca_file", read_cert(&tls.ca_file));
    let default_cert = at("tls.cert_file", read_cert(&tls.cert_file));
    let default_key = at("tls.key_file", read_key(&tls.key_file));
    let mut hosts = std::collections::BTreeMap::new();
    for (i, h) in t.hosts.iter().enumerate() {
        let pair = match h.tls {
            Some(_) if !local(h) => continue,
            Some(_) => {
                let (c, k) = tls.pair_of(h);
                (
                    at(&format!("hosts[{i}].tls.cert_file"), read_cert(c)),
                    at(&format!("hosts[{i}].tls.key_file"), read_key(k)),
                )
            }
            None => (default_cert.clone(), default_key.clone()),
        };
        hosts.insert(h.name.clone(), pair);
    }
    let (cc, ck) = match &tls.client {
        Some((c, k)) => (
            at("tls.client_cert_file", read_cert(c)),
            at("tls.client_key_file", read_key(k)),
        ),
        None => (default_cert.clone(), default_key.clone()),
    };
    if !diagnostics.is_empty() {
        return Err(TopologyError { diagnostics });
    }
    let field = if tls.client.is_some() {
        "tls.client_cert_file"
    } else {
        "tls.cert_file"
    };
    let cfg =
        crate::observe::tls::client_config(&ca, &cc, &ck).map_err(|m| located(file, field, m))?;
    Ok(Some((TlsMaterial { ca, hosts }, cfg)))
}

/// What is wrong with the certificates of one PEM file at unix time `now`: expired, not
/// valid yet, or expiring within `window_days`. `label` names the field and the file.
pub fn expiry_problems(label: &str, pem: &[u8], now: i64, window_days: u32) -> Vec<String> {
    let certs = match crate::observe::tls::certificates(pem, label) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let mut out = Vec::new();
    for der in &certs {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            out.push(format!("{label}: a certificate in it cannot be parsed"));
            continue;
        };
        let subject = cert.subject().to_string();
        let v = cert.validity();
        let (from, until) = (v.not_before.timestamp(), v.not_after.timestamp());
        let date = v.not_after.to_datetime().date();
        if until <= now {
            out.push(format!(
                "{label}: certificate {subject:?} expired on {date}; issue a new one, replace the file and run `redisctl apply`"
            ));
        } else if from > now {
            out.push(format!(
                "{label}: certificate {subject:?} is not valid before {}",
                v.not_before.to_datetime().date()
            ));
        } else if until - now < i64::from(window_days) * 86_400 {
            let days = (until - now) / 86_400;
            out.push(format!(
                "{label}: certificate {subject:?} expires on {date} (in {days} day(s), within tls.expiry_warning_days = {window_days}); replace the file and run `redisctl apply`"
            ));
        }
    }
    out
}

/// `redisctl check`: every certificate file the topology names, checked for expiry within
/// `tls.expiry_warning_days` (each file once, named by its first field).
pub fn certificate_findings(t: &Topology, now: i64) -> Vec<String> {
    let Some(tls) = &t.tls else {
        return Vec::new();
    };
    let mut files: Vec<(String, &Path)> = vec![
        ("tls.ca_file".into(), &tls.ca_file),
        ("tls.cert_file".into(), &tls.cert_file),
    ];
    for (i, h) in t.hosts.iter().enumerate() {
        if let Some((c, _)) = &h.tls {
            files.push((format!("hosts[{i}].tls.cert_file"), c));
        }
    }
    if let Some((c, _)) = &tls.client {
        files.push(("tls.client_cert_file".into(), c));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (field, path) in files {
        if !seen.insert(path) {
            continue;
        }
        let label = format!("{field} ({})", path.display());
        match std::fs::read(path) {
            Ok(pem) => out.extend(expiry_problems(&label, &pem, now, tls.expiry_warning_days)),
            Err(e) => out.push(format!("{label}: {e}")),
        }
    }
    out
}

/// A path redisctl writes into redis.conf, sentinel.conf or a unit must be one line of
/// printable text: a newline would end the directive and start another.
pub fn plain_path(what: &str, path: &Path) -> Result<(), String> {
    let text = path.to_string_lossy();
    if text.chars().any(char::is_control) {
        return Err(format!(
            "{what} {:?} contains a control character (newline, tab, …); redisctl writes it into configuration files, where it would end the line: choose a path without one",
            path.as_os_str()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(dir: &Path, pw_mode: Option<u32>, content: &str) -> (std::path::PathBuf, Topology) {
        let file = dir.join("t.yaml");
        let src = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\nauth:\n  password_file: pw\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\n";
        std::fs::write(&file, src).unwrap();
        if let Some(mode) = pw_mode {
            let pw = dir.join("pw");
            std::fs::write(&pw, content).unwrap();
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let t = crate::topology::load(&file).unwrap().topology;
        (file, t)
    }

    fn error(file: &Path, t: &Topology) -> String {
        read_password(file, t).unwrap_err().diagnostics[0].to_string()
    }

    #[test]
    fn a_world_readable_password_file_is_refused_with_the_chmod() {
        let dir = tempfile::tempdir().unwrap();
        let (file, t) = topo(dir.path(), Some(0o644), "secret\n");
        let pw = dir.path().join("pw");
        let e = error(&file, &t);
        assert!(
            e.starts_with(&format!(
                "{}:5:18: error: auth.password_file: {} is open to others (mode 0644)",
                file.display(),
                pw.display()
            )),
            "{e}"
        );
        assert!(
            e.ends_with(&format!("run `chmod 600 {}`", pw.display())),
            "{e}"
        );
        // Group-readable too; owner-only is fine.
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(error(&file, &t).contains("(mode 0640)"));
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_password(&file, &t).unwrap(),
            Some(vec!["secret".to_string()])
        );
    }

    #[test]
    fn a_missing_or_empty_password_file_is_located_at_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let (file, t) = topo(dir.path(), None, "");
        let e = error(&file, &t);
        assert!(e.contains(":5:18: error: auth.password_file: "), "{e}");
        assert!(e.contains("No such file"), "{e}");
        let (file, t) = topo(dir.path(), Some(0o600), "\nsecond line\n");
        assert!(error(&file, &t).ends_with("the first line (the password) is empty"));
    }

    #[test]
    fn every_bad_password_file_is_reported_at_once_at_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let file = d.join("t.yaml");
        let src = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\nauth:\n  password_file: pw\n  users:\n    - name: app\n      password_files: [empty.pw, open.pw, missing.pw, dir.pw, ok.pw]\n  replication_password_files: [repl.pw]\n  sentinel_password_files: [ok.pw]\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\n";
        std::fs::write(&file, src).unwrap();
        let put = |name: &str, text: &str, mode: u32| {
            std::fs::write(d.join(name), text).unwrap();
            std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
        };
        put("pw", "admin\n", 0o644);
        put("empty.pw", "", 0o600);
        put("open.pw", "x\n", 0o640);
        put("ok.pw", "x\n", 0o600);
        put("repl.pw", "\n", 0o400);
        std::fs::create_dir(d.join("dir.pw")).unwrap();
        let t = crate::topology::load(&file).unwrap().topology;
        let e = read_secrets(&file, &t).unwrap_err();
        let got: Vec<(String, String)> = e
            .diagnostics
            .iter()
            .map(|x| (x.path.clone(), x.message.clone()))
            .collect();
        let fields: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            fields,
            [
                "auth.password_file",
                "auth.users[0].password_files[0]",
                "auth.users[0].password_files[1]",
                "auth.users[0].password_files[2]",
                "auth.users[0].password_files[3]",
                "auth.replication_password_files[0]",
            ],
            "{got:#?}"
        );
        assert!(got[0].1.contains("open to others (mode 0644)"), "{got:?}");
        assert!(got[1].1.ends_with("the first line (the password) is empty"));
        assert!(got[2].1.contains("(mode 0640)") && got[2].1.contains("chmod 600"));
        assert!(got[3].1.contains("No such file"), "{got:?}");
        assert!(got[4].1.ends_with("is not a regular file"), "{got:?}");
        assert!(got[5].1.ends_with("is empty"), "{got:?}");
        // Each located at its line.
        assert!(e.diagnostics.iter().all(|x| x.line.is_some()), "{e:?}");
    }

    #[test]
    fn a_state_dir_with_a_newline_is_refused_at_its_line() {
        let src = "name: t\nstate_dir: \"/tmp/x\\nrequirepass pwned\"\nhosts:\n  - {name: a, address: 127.0.0.1}\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\n";
        let e = crate::topology::parse(src, "t.yaml", Path::new("/etc/redisctl")).unwrap_err();
        let e: Vec<String> = e.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(
            e,
            [
                "t.yaml:2:12: error: state_dir: contains a control character (newline, tab, …); choose a path without one"
            ]
        );
    }

    /// Test material only: a self-signed EC certificate and its key (not a secret).
    const PAIR_CRT: &[u8] = include_bytes!("../../tests/golden/tls-fixture-pair.crt");
    const PAIR_KEY: &[u8] = include_bytes!("../../tests/golden/tls-fixture-pair.key");

    #[test]
    fn tls_files_are_read_and_refused_at_their_fields() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let file = d.join("t.yaml");
        std::fs::write(
            &file,
            "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\ntls:\n  ca_file: ca.crt\n  cert_file: s.crt\n  key_file: s.key\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\n",
        )
        .unwrap();
        std::fs::write(d.join("ca.crt"), PAIR_CRT).unwrap();
        std::fs::write(d.join("s.crt"), PAIR_CRT).unwrap();
        std::fs::write(d.join("s.key"), PAIR_KEY).unwrap();
        let key = d.join("s.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let t = crate::topology::load(&file).unwrap().topology;
        let e = read_tls(&file, &t, &|_| true).unwrap_err().diagnostics;
        assert_eq!(e.len(), 1, "{e:?}");
        let e = e[0].to_string();
        assert!(
            e.starts_with(&format!(
                "{}:7:13: error: tls.key_file: {} is open to others (mode 0644)",
                file.display(),
                key.display()
            )) && e.ends_with(&format!("run `chmod 600 {}`", key.display())),
            "{e}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (m, _) = read_tls(&file, &t, &|_| true).unwrap().expect("tls on");
        assert_eq!(m.ca, PAIR_CRT);
        assert_eq!(m.hosts["a"], (PAIR_CRT.to_vec(), PAIR_KEY.to_vec()));
        // Not a certificate, and a certificate where the key should be: both reported.
        std::fs::write(d.join("ca.crt"), "hello").unwrap();
        std::fs::write(&key, PAIR_CRT).unwrap();
        let e: Vec<String> = read_tls(&file, &t, &|_| true)
            .unwrap_err()
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].contains(":5:12: error: tls.ca_file: ") && e[0].contains("no certificate in it"),
            "{e:?}"
        );
        assert!(
            e[1].contains(":7:13: error: tls.key_file: ") && e[1].contains("no usable private key"),
            "{e:?}"
        );
    }

    #[test]
    fn certificates_expiring_within_the_window_are_reported() {
        // A certificate valid 10 days, until 2026-12-12 06:19:17 UTC (1797056357).
        let pem = include_bytes!("../../tests/golden/tls-expiry-fixture.crt");
        let until = 1_797_056_357;
        let day = 86_400;
        // 20 days before: outside a 5-day window, inside a 30-day one.
        assert!(expiry_problems("tls.cert_file", pem, until - 9 * day, 5).is_empty());
        let p = expiry_problems("tls.cert_file", pem, until - 9 * day - 1, 30);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("tls.cert_file: certificate \"CN=fixture\" expires on 2026-12-12 (in 9 day(s), within tls.expiry_warning_days = 30)"),
            "{p:?}"
        );
        let p = expiry_problems("tls.cert_file", pem, until, 30);
        assert!(p[0].contains("expired on 2026-12-12"), "{p:?}");
        let p = expiry_problems("tls.cert_file", pem, until - 11 * day, 0);
        assert!(p[0].contains("is not valid before 2026-12-02"), "{p:?}");
        let p = expiry_problems("tls.ca_file", b"not a certificate", 0, 30);
        assert!(
            p[0].starts_with("tls.ca_file: no certificate in it"),
            "{p:?}"
        );
    }

    #[test]
    fn paths_with_a_newline_are_refused() {
        assert!(plain_path("state dir", Path::new("/var/lib/redisctl/x")).is_ok());
        let e = plain_path("state dir", Path::new("/tmp/x\nrequirepass y")).unwrap_err();
        assert!(e.contains(r#""/tmp/x\nrequirepass y""#), "{e}");
        assert!(plain_path("state dir", Path::new("/tmp/a\tb")).is_err());
    }
}
