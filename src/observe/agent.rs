//! Asking another host's agent (`GET /drained` on its HTTP endpoint, see agent/http.rs):
//! the one way a host learns that another host is drained, since the drain mark lives in the
//! drained host's own state directory. A plain HTTP/1.0 GET with a bounded time.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What an agent said about the hosts it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainAnswer {
    pub hosts: Vec<String>,
    /// (host, unix time the drain started).
    pub drained: Vec<(String, u64)>,
}

#[derive(Deserialize)]
struct Wire {
    deployment: String,
    hosts: Vec<String>,
    drained: Vec<WireHost>,
}

#[derive(Deserialize)]
struct WireHost {
    host: String,
    since: u64,
}

/// The body of `GET /drained`, checked to be about `deployment`.
pub fn parse_drained(body: &str, deployment: &str) -> Result<DrainAnswer, String> {
    let w: Wire =
        serde_json::from_str(body).map_err(|_| "its answer is not redisctl's".to_string())?;
    if w.deployment != deployment {
        return Err(format!(
            "the agent there serves deployment {}, not {}",
            crate::topology::text::show(&w.deployment),
            crate::topology::text::show(deployment)
        ));
    }
    Ok(DrainAnswer {
        hosts: w.hosts,
        drained: w.drained.into_iter().map(|h| (h.host, h.since)).collect(),
    })
}

/// Ask the agent at `addr`; Err says why there is no answer, in one line.
pub async fn ask_drained(
    addr: SocketAddr,
    deployment: &str,
    limit: Duration,
) -> Result<DrainAnswer, String> {
    let get = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(format!("GET /drained HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await?;
        let mut buf = Vec::new();
        // An answer is a few hundred bytes; never read more than 1 MiB from anyone.
        (&mut s).take(1 << 20).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = match tokio::time::timeout(limit, get).await {
        Err(_) => return Err(format!("no agent answered at {addr} within {limit:?}")),
        Ok(Err(e)) => return Err(format!("no agent answered at {addr}: {e}")),
        Ok(Ok(b)) => b,
    };
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!(
            "the agent at {addr} did not answer (HTTP {})",
            crate::topology::text::show(status)
        ));
    }
    parse_drained(body, deployment).map_err(|e| format!("{addr}: {e}"))
}
