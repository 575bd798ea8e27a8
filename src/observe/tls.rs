//! redisctl's own TLS client (rustls with the ring provider; no OpenSSL): the CA it trusts
//! and the certificate it presents, built once from PEM bytes and installed process-wide.
//!
//! One process serves one deployment (the CLI, or the agent which reinstalls it on every
//! topology reload), so every connection — observation, execution, slot migration, status,
//! the agent's HTTP answers — dials with the same configuration without threading it
//! through each call site.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
    crypto,
};

static CONNECTOR: RwLock<Option<TlsConnector>> = RwLock::new(None);

/// The topology keeps a `tls` section with `mode: off` (TLS was, or is about to be, turned
/// off): a port that drops plain clients is then worth telling apart as a TLS-only instance.
static DECLARED_OFF: AtomicBool = AtomicBool::new(false);

pub fn set_declared_off(off: bool) {
    DECLARED_OFF.store(off, Ordering::Relaxed);
}

pub fn declared_off() -> bool {
    DECLARED_OFF.load(Ordering::Relaxed)
}

/// `tls.mode: on` with `tls.port_offset` (a running cluster being switched to TLS only): a
/// node not switched yet serves plain RESP on its declared port, and TLS on port + offset
/// only. Where the TLS handshake fails, redisctl dials the declared port plain, as it did in
/// mode `both`, so that it can observe that node and switch it (plan::tls_switch). Never
/// without `port_offset`: a deployment declared TLS-only is never talked to in plain.
static PLAIN_FALLBACK: AtomicBool = AtomicBool::new(false);

pub fn set_plain_fallback(on: bool) {
    PLAIN_FALLBACK.store(on, Ordering::Relaxed);
}

pub fn plain_fallback() -> bool {
    PLAIN_FALLBACK.load(Ordering::Relaxed)
}

/// The certificates of a PEM file's bytes (`what` names the file in errors).
pub fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what}: not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{what}: no certificate in it (expected a PEM \"BEGIN CERTIFICATE\" block)"
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file's bytes.
pub fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        format!("{what}: no usable private key in it (expected an unencrypted PEM key): {e}")
    })
}

/// A client configuration trusting `ca` and presenting `cert`/`key`.
pub fn client_config(ca: &[u8], cert: &[u8], key: &[u8]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for c in certificates(ca, "tls.ca_file")? {
        roots
            .add(c)
            .map_err(|e| format!("tls.ca_file: unusable CA certificate: {e}"))?;
    }
    let chain = certificates(cert, "client certificate")?;
    let key = private_key(key, "client key")?;
    let provider = Arc::new(crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("tls.ca_file: {e}"))?;
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ToleratesExpiry { inner }))
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            let hint = if e.to_string().contains("UnsupportedCertVersion") {
                " (an X.509 v1 certificate: issue a v3 one, e.g. `openssl x509 -req … -extfile` with a subjectAltName or extendedKeyUsage)"
            } else {
                " (does the key belong to the certificate?)"
            };
            format!("unusable client certificate or key: {e}{hint}")
        })?;
    Ok(Arc::new(cfg))
}

/// Install (or remove, with None) the configuration every later connection uses.
pub fn install(cfg: Option<Arc<ClientConfig>>) {
    let mut g = CONNECTOR.write().unwrap_or_else(|e| e.into_inner());
    *g = cfg.map(TlsConnector::from);
}

/// The installed connector, if TLS is on.
pub fn connector() -> Option<TlsConnector> {
    CONNECTOR.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The name the server's certificate must carry for `addr` (`ip:port`, `[v6]:port` or
/// `name:port`): its IP address (an IP SAN), else the host name.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    if let Ok(sa) = addr.parse::<std::net::SocketAddr>() {
        return Ok(ServerName::IpAddress(sa.ip().into()));
    }
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    ServerName::try_from(host.to_string()).map_err(|e| format!("{addr}: {e}"))
}

/// The CA's verdict on an instance's certificate (chain to `ca_file`, the instance's address
/// in its names, signatures), except that an *expired* certificate is still accepted: an
/// instance whose certificate ran out before it was renewed must stay reachable, or `apply`
/// could never hand it the new one (`CONFIG SET tls-cert-file`). Such a certificate is checked
/// in full as of the last second it was valid, and `redisctl check` reports it as expired.
#[derive(Debug)]
struct ToleratesExpiry {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ToleratesExpiry {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            )) => {
                let (_, cert) = x509_parser::parse_x509_certificate(end_entity)
                    .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
                let last = cert
                    .validity()
                    .not_after
                    .timestamp()
                    .saturating_sub(1)
                    .max(0);
                let then = UnixTime::since_unix_epoch(std::time::Duration::from_secs(last as u64));
                self.inner
                    .verify_server_cert(end_entity, intermediates, server_name, ocsp, then)
            }
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
