//! The agent's events: one line on stderr for a person, and under systemd the same event as a
//! structured journal entry (native protocol: `KEY=value` lines in one datagram to
//! /run/systemd/journal/socket), so `journalctl -u redisctl-agent@NAME REDISCTL_INSTANCE=…`
//! finds them. A failed journal write falls back to the stderr line alone.

use std::os::unix::net::UnixDatagram;

const SOCKET: &str = "/run/systemd/journal/socket";

/// syslog priorities.
#[derive(Clone, Copy, Debug)]
pub enum Priority {
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
}

pub struct Journal {
    socket: Option<UnixDatagram>,
    deployment: String,
}

impl Journal {
    /// Structured entries only when stderr goes to the journal (systemd sets JOURNAL_STREAM).
    pub fn new(deployment: &str) -> Journal {
        let socket = std::env::var_os("JOURNAL_STREAM")
            .and_then(|_| UnixDatagram::unbound().ok())
            .filter(|s| s.connect(SOCKET).is_ok());
        Journal {
            socket,
            deployment: deployment.to_string(),
        }
    }

    /// One event: `what` (a short kind: step_done, step_failed, reloaded, …), the message,
    /// and fields (`instance`, `step`, `why`…), upper-cased into REDISCTL_* journal fields.
    pub fn event(&self, prio: Priority, what: &str, message: &str, fields: &[(&str, &str)]) {
        if let Some(s) = &self.socket {
            let mut d = String::new();
            let mut field = |k: &str, v: &str| {
                // Single-line values only (the native protocol's multi-line form needs a
                // binary length prefix; none of ours spans lines once newlines are spaces).
                d.push_str(k);
                d.push('=');
                d.push_str(&v.replace('\n', " "));
                d.push('\n');
            };
            field("MESSAGE", message);
            field("PRIORITY", &(prio as u8).to_string());
            field("SYSLOG_IDENTIFIER", "redisctl-agent");
            field("REDISCTL_DEPLOYMENT", &self.deployment);
            field("REDISCTL_EVENT", what);
            for (k, v) in fields {
                field(&format!("REDISCTL_{}", k.to_ascii_uppercase()), v);
            }
            if s.send(d.as_bytes()).is_ok() {
                return;
            }
        }
        let extra: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        eprintln!(
            "agent: {message} [event={what}{}{}]",
            if extra.is_empty() { "" } else { " " },
            extra.join(" ")
        );
    }
}
