//! A small Redis client: one TCP connection, explicit timeouts on every call, typed server
//! errors. redisctl talks to a handful of nodes with a handful of commands; owning the
//! framing keeps errors exact (MOVED/ASK/TRYAGAIN/BUSYKEY/…) and lets the migration engine
//! pipeline freely.

use std::fmt;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::resp::{self, Value};

pub use super::resp::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{addr}: cannot connect: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr}: no answer to {op} within {ms} ms")]
    Timeout { addr: String, op: String, ms: u128 },
    #[error("{addr}: TLS: {message}")]
    Tls { addr: String, message: String },
    #[error("{addr}: connection lost: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr}: {source}")]
    Protocol {
        addr: String,
        source: resp::ProtocolError,
    },
    #[error(
        "{addr}: authentication failed: {message} (check auth.password_file; to change redisctl's password, list the old file and then the new one in auth.password_files, see docs/security.md)"
    )]
    Auth { addr: String, message: String },
    #[error("{addr}: {op}: {message}")]
    Server {
        addr: String,
        op: String,
        code: ErrorCode,
        message: String,
    },
}

impl ClientError {
    /// The node did not answer at all (down, firewalled, wrong address).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Timeout { .. }
                | ClientError::Io { .. }
                | ClientError::Tls { .. }
        )
    }
}

/// Who redisctl is on an instance: `AUTH <password>` (the default user, one shared
/// password) or `AUTH <user> <password>` (its own ACL user). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: Option<String>,
    /// Tried first (the first of `auth.password_files`).
    pub password: String,
    /// Tried in order after a refused `AUTH` (the rest of `auth.password_files`, while
    /// redisctl's own password is rotated).
    pub fallback: Vec<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({:?}, <redacted>)", self.user)
    }
}

impl Credentials {
    /// The same password as the default user: Sentinels keep `requirepass`.
    pub fn without_user(&self) -> Credentials {
        Credentials {
            user: None,
            password: self.password.clone(),
            fallback: self.fallback.clone(),
        }
    }

    /// `AUTH [user] password`.
    fn auth_args<'a>(&'a self, password: &'a str) -> Vec<&'a str> {
        let mut v = vec!["AUTH"];
        v.extend(self.user.as_deref());
        v.push(password);
        v
    }
}

/// A plain TCP or a TLS connection (observe/tls.rs decides which).
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

pub struct Conn {
    addr: String,
    stream: Box<dyn Stream>,
    /// Bytes read but not parsed yet (a reply split across reads).
    buf: BytesMut,
    pub timeout: Duration,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conn({})", self.addr)
    }
}

impl Conn {
    /// Connect to `addr` (`ip:port`), authenticating when credentials are given.
    pub async fn connect(
        addr: &str,
        credentials: Option<&Credentials>,
        limit: Duration,
    ) -> Result<Conn, ClientError> {
        let stream = match super::tls::connector() {
            None => Self::dial(addr, None, limit).await?,
            // A node of a cluster being switched to TLS only that is not switched yet: its
            // declared port still speaks plain RESP (observe/tls.rs). Asked with a bare PING
            // (no secret), which a TLS port answers by closing; a TLS handshake with a plain
            // port would instead hang until the limit.
            Some(_)
                if super::tls::plain_fallback()
                    && probe_plain(addr, limit).await == PlainProbe::Resp =>
            {
                Self::dial(addr, None, limit).await?
            }
            Some(tls) => Self::dial(addr, Some(tls), limit).await?,
        };
        let mut conn = Conn {
            addr: addr.to_string(),
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            timeout: limit,
        };
        if let Some(creds) = credentials {
            // Each listed password in order until one is accepted (a refused AUTH leaves the
            // connection open and unauthenticated). Listed old-first, so during a rotation
            // the first try succeeds on every instance and no refusal is logged.
            let mut refused = None;
            for pw in std::iter::once(&creds.password).chain(&creds.fallback) {
                match conn.cmd(&creds.auth_args(pw)).await {
                    Ok(_) => {
                        refused = None;
                        break;
                    }
                    Err(
                        ClientError::Server { message, .. } | ClientError::Auth { message, .. },
                    ) => refused = Some(message),
                    Err(e) => return Err(e),
                }
            }
            if let Some(message) = refused {
                let message = if creds.fallback.is_empty() {
                    message
                } else {
                    format!(
                        "{message} (tried each of the {} listed passwords)",
                        creds.fallback.len() + 1
                    )
                };
                return Err(ClientError::Auth {
                    addr: addr.into(),
                    message,
                });
            }
        }
        Ok(conn)
    }

    async fn dial(
        addr: &str,
        tls: Option<tokio_rustls::TlsConnector>,
        limit: Duration,
    ) -> Result<Box<dyn Stream>, ClientError> {
        let stream = match timeout(limit, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(ClientError::Timeout {
                    addr: addr.into(),
                    op: "connect".into(),
                    ms: limit.as_millis(),
                });
            }
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    addr: addr.into(),
                    source: e,
                });
            }
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let Some(tls) = tls else {
            return Ok(Box::new(stream));
        };
        let name = super::tls::server_name(addr).map_err(|message| ClientError::Tls {
            addr: addr.into(),
            message,
        })?;
        match timeout(limit, tls.connect(name, stream)).await {
            Err(_) => Err(ClientError::Timeout {
                addr: addr.into(),
                op: "TLS handshake".into(),
                ms: limit.as_millis(),
            }),
            Ok(Err(e)) => Err(ClientError::Tls {
                addr: addr.into(),
                message: e.to_string(),
            }),
            Ok(Ok(s)) => Ok(Box::new(s)),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Send one command; a server error reply becomes `ClientError::Server`.
    pub async fn cmd<S: AsRef<[u8]>>(&mut self, args: &[S]) -> Result<Value, ClientError> {
        let op = op_name(args);
        let mut replies = self.pipeline(&[args]).await?;
        match replies.pop() {
            Some(Value::Error(resp::ServerError { code, message })) => {
                if matches!(code, ErrorCode::NoAuth | ErrorCode::WrongPass) {
                    return Err(ClientError::Auth {
                        addr: self.addr.clone(),
                        message,
                    });
                }
                Err(ClientError::Server {
                    addr: self.addr.clone(),
                    op,
                    code,
                    message,
                })
            }
            Some(v) => Ok(v),
            None => Err(ClientError::Protocol {
                addr: self.addr.clone(),
                source: resp::ProtocolError("no reply".into()),
            }),
        }
    }

    /// Send commands in one write and read all replies; error replies are returned as
    /// `Value::Error` in place, so callers decide per command.
    pub async fn pipeline<S: AsRef<[u8]>>(
        &mut self,
        cmds: &[&[S]],
    ) -> Result<Vec<Value>, ClientError> {
        let op = cmds.first().map(|c| op_name(c)).unwrap_or_default();
        let mut out = Vec::new();
        let mut secret_replies = Vec::with_capacity(cmds.len());
        for c in cmds {
            let parts: Vec<&[u8]> = c.iter().map(AsRef::as_ref).collect();
            secret_replies.push(reveals_secrets(&parts));
            // `-v`: every command redisctl sends, secrets redacted.
            tracing::debug!(target: "redisctl::redis", "{} <- {}", self.addr, redacted(&parts));
            resp::encode(&parts, &mut out);
        }
        let limit = self.timeout;
        let addr = self.addr.clone();
        let fut = async {
            self.stream
                .write_all(&out)
                .await
                .map_err(|e| ClientError::Io {
                    addr: addr.clone(),
                    source: e,
                })?;
            // TLS buffers records until flushed; a no-op on plain TCP.
            self.stream.flush().await.map_err(|e| ClientError::Io {
                addr: addr.clone(),
                source: e,
            })?;
            let mut replies = Vec::with_capacity(cmds.len());
            while replies.len() < cmds.len() {
                match resp::parse(&self.buf) {
                    Err(e) => {
                        return Err(ClientError::Protocol {
                            addr: addr.clone(),
                            source: e,
                        });
                    }
                    Ok(Some((v, used))) => {
                        self.buf.advance(used);
                        replies.push(v);
                        continue;
                    }
                    Ok(None) => {}
                }
                // Read straight into the buffer (it grows for large replies), instead of a
                // 16 KiB array held across the await.
                self.buf.reserve(16 * 1024);
                let n = self
                    .stream
                    .read_buf(&mut self.buf)
                    .await
                    .map_err(|e| ClientError::Io {
                        addr: addr.clone(),
                        source: e,
                    })?;
                if n == 0 {
                    return Err(ClientError::Io {
                        addr: addr.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "closed by peer",
                        ),
                    });
                }
            }
            for (r, secret) in replies.iter().zip(&secret_replies) {
                let text = if *secret {
                    "<redacted>".to_string()
                } else {
                    reply_text(r)
                };
                tracing::trace!(target: "redisctl::redis", "{addr} -> {text}");
            }
            Ok(replies)
        };
        match timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                addr: self.addr.clone(),
                op,
                ms: limit.as_millis(),
            }),
        }
    }

    /// A command whose reply is text (bulk or simple string).
    pub async fn text<S: AsRef<[u8]>>(&mut self, args: &[S]) -> Result<String, ClientError> {
        let v = self.cmd(args).await?;
        v.as_text().ok_or_else(|| ClientError::Protocol {
            addr: self.addr.clone(),
            source: resp::ProtocolError(format!("{}: expected text, got {v}", op_name(args))),
        })
    }
}

/// What a port does with a plain-TCP `PING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainProbe {
    /// A RESP reply (`+PONG`, or an error such as `-NOAUTH` or `-LOADING`): plain Redis.
    Resp,
    /// Closed (or reset) without a byte back: what a TLS-only port does with bytes that are
    /// not a TLS handshake.
    Closed,
    /// No connection, another answer, or nothing within the limit.
    Other,
}

pub async fn probe_plain(addr: &str, limit: Duration) -> PlainProbe {
    let probe = async {
        let Ok(mut s) = TcpStream::connect(addr).await else {
            return PlainProbe::Other;
        };
        if s.write_all(b"PING\r\n").await.is_err() {
            return PlainProbe::Closed;
        }
        let mut b = [0u8; 1];
        match s.read(&mut b).await {
            Ok(0) => PlainProbe::Closed,
            Ok(_) if b[0] == b'+' || b[0] == b'-' => PlainProbe::Resp,
            Ok(_) => PlainProbe::Other,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => PlainProbe::Closed,
            Err(_) => PlainProbe::Other,
        }
    };
    timeout(limit, probe).await.unwrap_or(PlainProbe::Other)
}

/// A command as `-v` shows it: arguments quoted when needed, long ones (DUMP payloads)
/// shortened, and every secret replaced by `<redacted>`: AUTH's password, CONFIG SET
/// requirepass/masterauth, SENTINEL SET auth-pass, MIGRATE's AUTH/AUTH2, HELLO's AUTH.
pub fn redacted(args: &[&[u8]]) -> String {
    let word = |i: usize| {
        args.get(i)
            .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
            .unwrap_or_default()
    };
    let mut secret = vec![false; args.len()];
    let mut hide = |i: usize| {
        if let Some(s) = secret.get_mut(i) {
            *s = true;
        }
    };
    match (word(0).as_str(), word(1).as_str()) {
        // AUTH [username] password
        ("auth", _) => (1..args.len()).for_each(&mut hide),
        ("config", "set") | ("sentinel", "set") | ("sentinel", "config") => {
            for i in 2..args.len() {
                if matches!(
                    word(i).as_str(),
                    "requirepass" | "masterauth" | "auth-pass" | "sentinel-pass" | "primaryauth"
                ) {
                    hide(i + 1);
                }
            }
        }
        _ => {}
    }
    if matches!(word(0).as_str(), "migrate" | "hello") {
        for i in 1..args.len() {
            match word(i).as_str() {
                "auth" if word(0) == "migrate" => hide(i + 1),
                "auth" | "auth2" => {
                    hide(i + 1);
                    hide(i + 2);
                }
                _ => {}
            }
        }
    }
    let shown: Vec<String> = args
        .iter()
        .zip(&secret)
        .map(|(a, s)| {
            if *s {
                return "<redacted>".to_string();
            }
            let text = String::from_utf8_lossy(a);
            if a.len() > 64 {
                format!("<{} bytes>", a.len())
            } else if text.is_empty() || text.contains([' ', '"', '\'', '\n']) {
                format!("{text:?}")
            } else {
                text.into_owned()
            }
        })
        .collect();
    shown.join(" ")
}

/// Whether the reply to a command may hold a secret (`CONFIG GET` of a password setting or
/// a pattern, `SENTINEL CONFIG GET`, `ACL` listings): `-vv` does not show it.
fn reveals_secrets(args: &[&[u8]]) -> bool {
    let words: Vec<String> = args
        .iter()
        .take(2)
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["config", "get"] | ["sentinel", "config"] => args[2..].iter().any(|a| {
            let a = String::from_utf8_lossy(a).to_ascii_lowercase();
            a.contains('*') || a.contains("pass") || a.contains("auth")
        }),
        ["acl", ..] => true,
        _ => false,
    }
}

/// A reply as `-vv` shows it (long ones shortened).
fn reply_text(v: &Value) -> String {
    let t = v.to_string();
    match t.char_indices().nth(200) {
        Some((i, _)) => format!("{}… ({} chars)", &t[..i], t.chars().count()),
        None => t,
    }
}

fn op_name<S: AsRef<[u8]>>(args: &[S]) -> String {
    let words: Vec<String> = args
        .iter()
        .take(2)
        .map(|a| String::from_utf8_lossy(a.as_ref()).to_ascii_uppercase())
        .collect();
    match words.first().map(String::as_str) {
        Some("CLUSTER") | Some("CONFIG") | Some("CLIENT") => words.join(" "),
        Some("AUTH") => "AUTH".into(),
        _ => words.first().cloned().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    fn show(args: &[&str]) -> String {
        let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        redacted(&v)
    }

    #[test]
    fn secrets_never_reach_the_verbose_log() {
        assert_eq!(show(&["AUTH", "s3cret"]), "AUTH <redacted>");
        assert_eq!(
            show(&["AUTH", "default", "s3cret"]),
            "AUTH <redacted> <redacted>"
        );
        assert_eq!(
            show(&["CONFIG", "SET", "maxmemory", "1gb", "masterauth", "s3cret"]),
            "CONFIG SET maxmemory 1gb masterauth <redacted>"
        );
        assert_eq!(
            show(&["config", "set", "requirepass", "s3cret"]),
            "config set requirepass <redacted>"
        );
        assert_eq!(
            show(&["SENTINEL", "SET", "g", "quorum", "2", "auth-pass", "s3cret"]),
            "SENTINEL SET g quorum 2 auth-pass <redacted>"
        );
        assert_eq!(
            show(&[
                "MIGRATE", "h", "7001", "", "0", "5000", "AUTH", "s3cret", "KEYS", "a"
            ]),
            "MIGRATE h 7001 \"\" 0 5000 AUTH <redacted> KEYS a"
        );
        assert_eq!(
            show(&[
                "MIGRATE", "h", "7001", "", "0", "5000", "AUTH2", "u", "s3cret", "KEYS", "a"
            ]),
            "MIGRATE h 7001 \"\" 0 5000 AUTH2 <redacted> <redacted> KEYS a"
        );
        assert_eq!(
            show(&["HELLO", "3", "AUTH", "u", "s3cret"]),
            "HELLO 3 AUTH <redacted> <redacted>"
        );
        for cmd in [
            vec!["AUTH", "s3cret"],
            vec!["CONFIG", "SET", "requirepass", "s3cret"],
            vec!["SENTINEL", "SET", "g", "auth-pass", "s3cret"],
        ] {
            assert!(!show(&cmd).contains("s3cret"), "{cmd:?}");
        }
        let words = |v: &[&'static str]| v.iter().map(|a| a.as_bytes()).collect::<Vec<_>>();
        assert!(super::reveals_secrets(&words(&[
            "CONFIG",
            "GET",
            "masterauth"
        ])));
        assert!(super::reveals_secrets(&words(&["CONFIG", "GET", "*"])));
        assert!(!super::reveals_secrets(&words(&[
            "CONFIG",
            "GET",
            "maxmemory"
        ])));
        assert!(!super::reveals_secrets(&words(&["INFO", "replication"])));
        // Nothing else is hidden; long values are shortened.
        assert_eq!(
            show(&["CLUSTER", "MEET", "10.0.0.1", "7000"]),
            "CLUSTER MEET 10.0.0.1 7000"
        );
        let big = "x".repeat(100);
        assert_eq!(
            show(&["RESTORE", "k", "0", &big]),
            "RESTORE k 0 <100 bytes>"
        );
    }
}
