//! Live ACL users of a Redis instance compared with the declared ones.
//!
//! Redis rewrites rules when it stores them (`+@all -flushall` may come back as `+@all`,
//! redundant rules vanish), so the declared rules cannot be compared as text. Instead the
//! node itself normalises them: inside one `MULTI`/`EXEC` a scratch user
//! (`redisctl-probe`, a reserved name) is given each declared rule set, read back with
//! `ACL GETUSER` and deleted. The transaction is atomic, ACLs are neither replicated nor
//! persisted by it, so no client and no file ever sees the scratch user. Passwords are
//! compared as SHA-256 hashes; none is ever sent or printed here.

use std::collections::BTreeSet;

use serde::Serialize;

use super::client::{ClientError, Conn};
use super::resp::Value;
use crate::render::acl::AclUser;

/// The scratch user of the normalisation transaction (redisctl-* names are reserved).
pub const PROBE_USER: &str = "redisctl-probe";

/// A declared user whose live state differs, and how (never a password or hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AclDrift {
    pub user: String,
    pub why: String,
    /// Declared passwords the live user does not accept yet.
    #[serde(skip_serializing_if = "is_zero")]
    pub to_add: usize,
    /// Live passwords the topology no longer declares.
    #[serde(skip_serializing_if = "is_zero")]
    pub to_remove: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The monitored `groups` whose `sentinel auth-pass` in a Sentinel's own config file (as it
/// rewrites it) is not `want`. Sentinel 7.0 has no command that reads auth-pass back, so the
/// file is the only witness; only a local Sentinel's can be read.
pub fn stale_auth_pass(config: &str, groups: &[&str], want: &str) -> Vec<String> {
    let mut have: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for line in config.lines() {
        let mut w = line.trim().splitn(3, ' ');
        if let (Some("sentinel"), Some("auth-pass"), Some(rest)) = (w.next(), w.next(), w.next())
            && let Some((name, pass)) = rest.split_once(' ')
        {
            have.insert(name, pass.trim());
        }
    }
    groups
        .iter()
        .filter(|g| have.get(*g).copied() != Some(want))
        .map(|g| g.to_string())
        .collect()
}

/// A Sentinel's default user (`ACL GETUSER default`) against the declared one: passwords and
/// on/off only. Sentinel has no MULTI to normalise rules with, and its rules are its own.
pub async fn sentinel_drift(
    c: &mut Conn,
    declared: &AclUser,
) -> Result<Vec<AclDrift>, ClientError> {
    let live = parse_getuser(&c.cmd(&["ACL", "GETUSER", declared.name.as_str()]).await?);
    let (to_add, to_remove) = password_delta(declared, live.as_ref());
    let enabled = live.as_ref().is_some_and(|l| l.enabled);
    if to_add == 0 && to_remove == 0 && enabled == declared.enabled {
        return Ok(Vec::new());
    }
    let why = if live.is_none() {
        "missing".to_string()
    } else if enabled != declared.enabled {
        format!("{} (declared on)", if enabled { "on" } else { "off" })
    } else {
        format!("passwords differ ({to_add} to add, {to_remove} to remove)")
    };
    Ok(vec![AclDrift {
        user: declared.name.clone(),
        why,
        to_add,
        to_remove,
    }])
}

/// Does this Sentinel send another password than the last declared one (`declared.hashes`'
/// last) to the other Sentinels? `SENTINEL CONFIG GET sentinel-pass` (Redis 6.2+); compared
/// as a hash, never kept or printed.
pub async fn peer_pass_stale(c: &mut Conn, declared: &AclUser) -> Result<bool, ClientError> {
    let r = c
        .cmd(&["SENTINEL", "CONFIG", "GET", "sentinel-pass"])
        .await?;
    let have = match &r {
        Value::Array(items) => items.get(1).and_then(Value::as_text),
        _ => None,
    }
    .unwrap_or_default();
    let have = (!have.is_empty()).then(|| crate::render::acl::sha256_hex(&have));
    Ok(have.as_ref() != declared.hashes.last())
}

/// Declared password hashes missing live, and live ones not declared.
pub fn password_delta(declared: &AclUser, live: Option<&UserView>) -> (usize, usize) {
    let want: BTreeSet<&String> = declared.hashes.iter().collect();
    match live {
        None => (want.len(), 0),
        Some(l) => (
            want.iter().filter(|h| !l.hashes.contains(**h)).count(),
            l.hashes.iter().filter(|h| !want.contains(h)).count(),
        ),
    }
}

/// `ACL GETUSER` as the fields redisctl compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserView {
    pub enabled: bool,
    pub hashes: BTreeSet<String>,
    pub commands: String,
    pub keys: String,
    pub channels: String,
    pub selectors: usize,
}

/// Parse an `ACL GETUSER` reply (RESP2 flat field/value array); None for a missing user.
pub fn parse_getuser(v: &Value) -> Option<UserView> {
    let Value::Array(items) = v else { return None };
    let mut u = UserView::default();
    for pair in items.chunks(2) {
        let (Some(k), Some(val)) = (pair.first().and_then(Value::as_text), pair.get(1)) else {
            continue;
        };
        let list = || match val {
            Value::Array(a) => a.iter().filter_map(Value::as_text).collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        match k.as_str() {
            "flags" => u.enabled = list().iter().any(|f| f == "on"),
            "passwords" => u.hashes = list().into_iter().collect(),
            "commands" => u.commands = val.as_text().unwrap_or_default(),
            "keys" => u.keys = val.as_text().unwrap_or_default(),
            "channels" => u.channels = val.as_text().unwrap_or_default(),
            "selectors" => u.selectors = list().len(),
            _ => {}
        }
    }
    Some(u)
}

/// How `live` differs from `declared` whose rules the node normalised into `normal`.
pub fn compare(declared: &AclUser, live: Option<&UserView>, normal: &UserView) -> Option<String> {
    let Some(live) = live else {
        return Some("missing".into());
    };
    let mut why = Vec::new();
    if live.enabled != declared.enabled {
        why.push(format!(
            "{} (declared {})",
            if live.enabled { "on" } else { "off" },
            if declared.enabled { "on" } else { "off" }
        ));
    }
    let want: BTreeSet<String> = declared.hashes.iter().cloned().collect();
    if live.hashes != want {
        let added = want.difference(&live.hashes).count();
        let removed = live.hashes.difference(&want).count();
        why.push(format!(
            "passwords differ ({added} to add, {removed} to remove)"
        ));
    }
    for (what, l, n) in [
        ("commands", &live.commands, &normal.commands),
        ("keys", &live.keys, &normal.keys),
        ("channels", &live.channels, &normal.channels),
    ] {
        // Redis may list the same rules in another order (it recomputes them from the
        // command bits), so compare the words.
        if words(l) != words(n) {
            why.push(format!("{what} {:?} (declared {:?})", short(l), short(n)));
        }
    }
    if live.selectors != 0 {
        why.push(format!("{} selector(s) not declared", live.selectors));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

fn words(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.split_whitespace().collect();
    v.sort_unstable();
    v
}

/// At most 80 characters of a rule text, for messages.
fn short(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The declared users of one Redis instance that differ from what it runs.
pub async fn drift(c: &mut Conn, declared: &[AclUser]) -> Result<Vec<AclDrift>, ClientError> {
    if declared.is_empty() {
        return Ok(Vec::new());
    }
    let live_cmds: Vec<Vec<String>> = declared
        .iter()
        .map(|u| vec!["ACL".into(), "GETUSER".into(), u.name.clone()])
        .collect();
    let refs: Vec<&[String]> = live_cmds.iter().map(Vec::as_slice).collect();
    let live = c.pipeline(&refs).await?;

    let mut tx: Vec<Vec<String>> = vec![vec!["MULTI".into()]];
    for u in declared {
        let mut set = vec![
            "ACL".into(),
            "SETUSER".into(),
            PROBE_USER.into(),
            "reset".into(),
        ];
        set.extend(u.rules());
        tx.push(set);
        tx.push(vec!["ACL".into(), "GETUSER".into(), PROBE_USER.into()]);
    }
    tx.push(vec!["ACL".into(), "DELUSER".into(), PROBE_USER.into()]);
    tx.push(vec!["EXEC".into()]);
    let refs: Vec<&[String]> = tx.iter().map(Vec::as_slice).collect();
    let replies = c.pipeline(&refs).await?;
    let exec = match replies.last() {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Error(e)) => {
            return Err(ClientError::Server {
                addr: c.addr().to_string(),
                op: "ACL SETUSER (normalising the declared rules)".into(),
                code: e.code.clone(),
                message: e.message.clone(),
            });
        }
        _ => Vec::new(),
    };

    let mut out = Vec::new();
    for (i, u) in declared.iter().enumerate() {
        let live_view = live.get(i).and_then(parse_getuser);
        let why = match (exec.get(2 * i), exec.get(2 * i + 1)) {
            (Some(Value::Error(e)), _) => Some(format!("Redis refuses the declared rules: {e}")),
            (_, Some(v)) => match parse_getuser(v) {
                Some(normal) => compare(u, live_view.as_ref(), &normal),
                None => Some("cannot read back the declared rules".into()),
            },
            _ => Some("cannot normalise the declared rules".into()),
        };
        if let Some(why) = why {
            let (to_add, to_remove) = password_delta(u, live_view.as_ref());
            out.push(AclDrift {
                user: u.name.clone(),
                why,
                to_add,
                to_remove,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    fn getuser(flags: &[&str], hashes: &[&str], commands: &str) -> Value {
        Value::Array(vec![
            bulk("flags"),
            Value::Array(flags.iter().map(|f| bulk(f)).collect()),
            bulk("passwords"),
            Value::Array(hashes.iter().map(|h| bulk(h)).collect()),
            bulk("commands"),
            bulk(commands),
            bulk("keys"),
            bulk("~app:*"),
            bulk("channels"),
            bulk(""),
            bulk("selectors"),
            Value::Array(vec![]),
        ])
    }

    fn app(hashes: &[&str]) -> AclUser {
        AclUser {
            name: "app".into(),
            enabled: true,
            hashes: hashes.iter().map(|h| h.to_string()).collect(),
            keys: vec!["app:*".into()],
            channels: vec![],
            commands: vec!["+@read".into()],
        }
    }

    #[test]
    fn auth_pass_is_read_from_the_config_sentinel_rewrote() {
        // As redis-sentinel 7.0 rewrites it after SENTINEL SET … auth-pass.
        let conf = "port 26379\nsentinel monitor g1 127.0.0.1 6379 2\nsentinel auth-pass g1 new-pw\nsentinel auth-user g1 redisctl-sentinel\nsentinel monitor g2 127.0.0.1 6389 2\nsentinel auth-pass g2 old-pw\n";
        assert_eq!(
            stale_auth_pass(conf, &["g1", "g2", "g3"], "new-pw"),
            ["g2", "g3"]
        );
        assert!(stale_auth_pass(conf, &["g1"], "new-pw").is_empty());
    }

    #[test]
    fn a_second_password_is_drift_and_rules_compare_as_redis_wrote_them() {
        let live = parse_getuser(&getuser(
            &["on", "sanitize-payload"],
            &["aa"],
            "-@all +@read",
        ));
        let normal = parse_getuser(&getuser(&["off"], &[], "-@all +@read")).unwrap();
        assert_eq!(compare(&app(&["aa"]), live.as_ref(), &normal), None);
        assert_eq!(
            compare(&app(&["aa", "bb"]), live.as_ref(), &normal).as_deref(),
            Some("passwords differ (1 to add, 0 to remove)")
        );
        let other = parse_getuser(&getuser(&["off"], &[], "-@all +@write")).unwrap();
        assert_eq!(
            compare(&app(&["aa"]), live.as_ref(), &other).as_deref(),
            Some("commands \"-@all +@read\" (declared \"-@all +@write\")")
        );
        assert_eq!(
            compare(&app(&["aa"]), None, &normal).as_deref(),
            Some("missing")
        );
        assert_eq!(parse_getuser(&Value::Nil), None);
    }
}
