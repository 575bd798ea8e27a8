//! Certificates for TLS tests, made with `openssl` in the test's directory: a CA, a server
//! certificate for 127.0.0.1 (IP SAN; instances present it to clients and to each other) and
//! a client certificate (redisctl's and the writers'), all signed by the CA.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Certs {
    pub dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chmod600(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

impl Certs {
    /// A CA plus `server.crt`/`server.key` and `client.crt`/`client.key` in `dir`.
    pub fn make(dir: &Path) -> Certs {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "365",
                "-subj",
                "/CN=redisctl-test-ca",
            ],
        );
        std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        let c = Certs {
            dir: dir.to_path_buf(),
        };
        c.issue("server", "redis-server-1", 90);
        c.issue("client", "redisctl-client", 90);
        c
    }

    /// (Re)issue `NAME.crt`/`NAME.key` (a new key too) with subject `cn`, signed by the CA.
    pub fn issue(&self, name: &str, cn: &str, days: u32) {
        let key = format!("{name}.key.new");
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt.new"),
                "-days",
                &days.to_string(),
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
        chmod600(&self.dir.join(&key));
        // Replaced by rename, as a certificate manager would.
        std::fs::rename(self.dir.join(&key), self.dir.join(format!("{name}.key"))).unwrap();
        std::fs::rename(
            self.dir.join(format!("{name}.crt.new")),
            self.dir.join(format!("{name}.crt")),
        )
        .unwrap();
    }

    /// Replace `NAME.crt`/`NAME.key` with a certificate that was valid from 10 days ago
    /// until yesterday (openssl 3.0 cannot backdate; python's `cryptography` can).
    pub fn issue_expired(&self, name: &str, cn: &str) {
        let script = format!(
            r#"
import datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
import ipaddress, os
ca_key = serialization.load_pem_private_key(open("ca.key", "rb").read(), None)
ca = x509.load_pem_x509_certificate(open("ca.crt", "rb").read())
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder()
    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "{cn}")]))
    .issuer_name(ca.subject).public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(days=10))
    .not_valid_after(now - datetime.timedelta(days=1))
    .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
    .sign(ca_key, hashes.SHA256()))
with open("{name}.key.new", "wb") as f:
    os.chmod("{name}.key.new", 0o600)
    f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open("{name}.crt.new", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
os.rename("{name}.key.new", "{name}.key")
os.rename("{name}.crt.new", "{name}.crt")
"#
        );
        let out = Command::new("python3")
            .current_dir(&self.dir)
            .arg("-c")
            .arg(script)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "expired certificate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn path(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }

    /// The topology's `tls:` section (paths relative to the topology in the same directory).
    pub fn yaml(mode: &str) -> String {
        format!(
            "tls:\n  mode: {mode}\n  ca_file: ca.crt\n  cert_file: server.crt\n  key_file: server.key\n  \
             client_cert_file: client.crt\n  client_key_file: client.key\n"
        )
    }

    /// redis-cli's TLS options with the client certificate.
    pub fn cli_args(&self) -> Vec<String> {
        vec![
            "--tls".into(),
            "--cacert".into(),
            self.path("ca.crt"),
            "--cert".into(),
            self.path("client.crt"),
            "--key".into(),
            self.path("client.key"),
        ]
    }

    /// tools/consistency.py's TLS options.
    pub fn writer_args(&self) -> Vec<String> {
        vec![
            "--tls-ca".into(),
            self.path("ca.crt"),
            "--tls-cert".into(),
            self.path("client.crt"),
            "--tls-key".into(),
            self.path("client.key"),
        ]
    }

    /// redis-cli over TLS against 127.0.0.1:`port`.
    pub fn cli(&self, port: u16, args: &[&str]) -> (bool, String) {
        let out = Command::new("redis-cli")
            .args(self.cli_args())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// The subject of the certificate 127.0.0.1:`port` presents in a TLS handshake (None:
    /// no handshake), verified against the CA with the client certificate.
    pub fn served_subject(&self, port: u16) -> Option<String> {
        let out = Command::new("sh")
            .current_dir(&self.dir)
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect 127.0.0.1:{port} -CAfile ca.crt -cert client.crt -key client.key -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -subject"
            ))
            .output()
            .expect("openssl s_client");
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !s.is_empty()).then_some(s)
    }
}

/// What a plain TCP client gets from 127.0.0.1:`port` after sending `PING` (RESP inline):
/// the bytes read until the peer closes or 2 s pass. A TLS-only port answers no RESP.
pub fn plain_reply(port: u16) -> Vec<u8> {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return Vec::new();
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let _ = s.write_all(b"PING\r\n");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf
}
