//! RESP2 framing: encode commands, parse replies from bytes with no I/O. `Ok(None)` means
//! "need more bytes" (mini-redis style), so the caller just reads again.

use std::fmt;

/// The error code of a server error reply (its first word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    Moved,
    Ask,
    TryAgain,
    ClusterDown,
    BusyKey,
    Loading,
    NoAuth,
    WrongPass,
    ReadOnly,
    Err,
    Other(String),
}

impl ErrorCode {
    pub fn of(message: &str) -> ErrorCode {
        match message.split_whitespace().next().unwrap_or("") {
            "MOVED" => ErrorCode::Moved,
            "ASK" => ErrorCode::Ask,
            "TRYAGAIN" => ErrorCode::TryAgain,
            "CLUSTERDOWN" => ErrorCode::ClusterDown,
            "BUSYKEY" => ErrorCode::BusyKey,
            "LOADING" => ErrorCode::Loading,
            "NOAUTH" => ErrorCode::NoAuth,
            "WRONGPASS" => ErrorCode::WrongPass,
            "READONLY" => ErrorCode::ReadOnly,
            "ERR" => ErrorCode::Err,
            other => ErrorCode::Other(other.to_string()),
        }
    }
}

/// A server error reply: its typed code and the whole message. Pipelined replies carry it
/// too, so callers match on `code` (BUSYKEY, TRYAGAIN, …). It reads as its message (`Deref`
/// to `str`, `Display`) for the messages redisctl words itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub code: ErrorCode,
    pub message: String,
}

impl From<String> for ServerError {
    fn from(message: String) -> Self {
        ServerError {
            code: ErrorCode::of(&message),
            message,
        }
    }
}

impl From<&str> for ServerError {
    fn from(message: &str) -> Self {
        ServerError::from(message.to_string())
    }
}

impl std::ops::Deref for ServerError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Simple(String),
    Error(ServerError),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Value>),
}

impl Value {
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Simple(s) => Some(s.clone()),
            Value::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Simple(s) => write!(f, "{s}"),
            Value::Error(s) => write!(f, "(error) {s}"),
            Value::Int(i) => write!(f, "(integer) {i}"),
            Value::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Value::Nil => write!(f, "(nil)"),
            Value::Array(v) => write!(f, "(array of {})", v.len()),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("protocol error: {0}")]
pub struct ProtocolError(pub String);

pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parse one reply from the front of `buf`; returns it and the bytes consumed.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, ProtocolError> {
    parse_at(buf, 0, 0)
}

const MAX_DEPTH: usize = 32;

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], at + end + 2))
}

fn int(bytes: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ProtocolError(format!("bad integer {:?}", String::from_utf8_lossy(bytes))))
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Value, usize)>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError("reply nested too deeply".into()));
    }
    let Some(&tag) = buf.get(at) else {
        return Ok(None);
    };
    let Some((body, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    let text = || String::from_utf8_lossy(body).into_owned();
    Ok(Some(match tag {
        b'+' => (Value::Simple(text()), next - at),
        b'-' => (Value::Error(ServerError::from(text())), next - at),
        b':' => (Value::Int(int(body)?), next - at),
        b'$' => {
            let len = int(body)?;
            if len < 0 {
                (Value::Nil, next - at)
            } else {
                let len = len as usize;
                if buf.len() < next + len + 2 {
                    return Ok(None);
                }
                (
                    Value::Bulk(buf[next..next + len].to_vec()),
                    next + len + 2 - at,
                )
            }
        }
        b'*' => {
            let n = int(body)?;
            if n < 0 {
                (Value::Nil, next - at)
            } else {
                let mut items = Vec::with_capacity((n as usize).min(1024));
                let mut pos = next;
                for _ in 0..n {
                    match parse_at(buf, pos, depth + 1)? {
                        Some((v, used)) => {
                            items.push(v);
                            pos += used;
                        }
                        None => return Ok(None),
                    }
                }
                (Value::Array(items), pos - at)
            }
        }
        other => {
            return Err(ProtocolError(format!(
                "unexpected reply type byte {other:#x}"
            )));
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pipelined replies keep error replies in place; each carries its typed code, so the
    /// migration engine sorts BUSYKEY from TRYAGAIN without searching text.
    #[test]
    fn error_replies_carry_their_code() {
        let msg = b"*3\r\n-BUSYKEY Target key name already exists.\r\n-TRYAGAIN Multiple keys request during rehashing of slot\r\n-ERR unknown\r\n";
        let (v, _) = parse(msg).unwrap().unwrap();
        let Value::Array(items) = v else {
            panic!("{v:?}")
        };
        let codes: Vec<&ErrorCode> = items
            .iter()
            .map(|x| match x {
                Value::Error(e) => &e.code,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            codes,
            [&ErrorCode::BusyKey, &ErrorCode::TryAgain, &ErrorCode::Err]
        );
        let Value::Error(e) = &items[0] else {
            unreachable!()
        };
        assert_eq!(e.to_string(), "BUSYKEY Target key name already exists.");
        assert_eq!(
            ServerError::from("CROSSSLOT x").code,
            ErrorCode::Other("CROSSSLOT".into())
        );
    }

    #[test]
    fn parses_all_types_and_incomplete() {
        let msg = b"*4\r\n+OK\r\n:42\r\n$3\r\nfoo\r\n$-1\r\n-ERR x\r\n";
        let (v, used) = parse(msg).unwrap().unwrap();
        assert_eq!(
            v,
            Value::Array(vec![
                Value::Simple("OK".into()),
                Value::Int(42),
                Value::Bulk(b"foo".to_vec()),
                Value::Nil
            ])
        );
        assert_eq!(&msg[used..], b"-ERR x\r\n");
        for cut in 0..used {
            assert_eq!(parse(&msg[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(parse(b"?x\r\n").is_err());
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode(&[b"CLUSTER", b"MEET"], &mut out);
        assert_eq!(out, b"*2\r\n$7\r\nCLUSTER\r\n$4\r\nMEET\r\n");
    }
}
