//! ACL users of a Redis instance, as values: the `user` lines of secrets.conf and the
//! `ACL SETUSER` arguments that converge a live instance to the same user. Pure: the secrets
//! (redisctl's password, the SHA-256 of each user's passwords) are read by the CLI and given.
//!
//! Only hashes (`#<sha256>`) of application passwords are ever rendered. The replication and
//! Sentinel users' passwords come from `auth.replication_password_files` /
//! `auth.sentinel_password_files` when declared, else they are derived from redisctl's own
//! password (nobody has to keep them, no extra file exists); they are plaintext only where
//! Redis needs them (`masterauth` in secrets.conf, `auth-pass` in the Sentinels' 0600 file).
//! Every listed password is accepted; the last one is the one replicas and Sentinels use.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::topology::Topology;
use crate::topology::users::{ADMIN_USER, REPLICATION_USER, SENTINEL_USER};

/// What the password files hold, as far as rendering needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    /// `auth.password_file` (the last of `auth.password_files`): `requirepass`, or
    /// redisctl's own ACL user; without ACL users also what replicas and Sentinels send.
    pub password: String,
    /// The earlier entries of `auth.password_files` while redisctl's password is rotated:
    /// still accepted everywhere, tried first by redisctl (every instance accepts them until
    /// the list drops them). Empty with `password_file`.
    pub previous: Vec<String>,
    /// Each declared user's password hashes (SHA-256, hex), in `password_files` order.
    pub users: BTreeMap<String, Vec<String>>,
    /// `auth.replication_password_files`' passwords in order; empty: derived.
    pub replication: Vec<String>,
    /// `auth.sentinel_password_files`' passwords in order; empty: derived.
    pub sentinel: Vec<String>,
}

impl Secrets {
    /// Every password of redisctl's own (and, without ACL users, the default) user, in the
    /// declared order.
    pub fn admin(&self) -> Vec<String> {
        let mut v = self.previous.clone();
        v.push(self.password.clone());
        v
    }

    /// Every password `user` (redisctl-replication or redisctl-sentinel) accepts, in order;
    /// the last is the one replicas / Sentinels authenticate with.
    pub fn internal(&self, user: &str) -> Vec<String> {
        let declared = if user == REPLICATION_USER {
            &self.replication
        } else {
            &self.sentinel
        };
        if declared.is_empty() {
            // One derived password per admin password: rotating `auth.password_files`
            // rotates the derived users in the same phases (both accepted until the old
            // admin password is dropped, replicas and Sentinels switching to the last).
            self.admin()
                .iter()
                .map(|pw| derived_password(user, pw))
                .collect()
        } else {
            declared.clone()
        }
    }

    /// The password `user` authenticates with: the last one listed.
    pub fn active(&self, user: &str) -> String {
        self.internal(user).pop().unwrap_or_default()
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets(<redacted>, users: {:?})", self.users.keys())
    }
}

/// SHA-256 of `s` in lowercase hex, as Redis stores ACL passwords (`#<hex>`).
pub fn sha256_hex(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The password of one of redisctl's derived users: SHA-256 of its name and redisctl's own
/// password, so rotating `auth.password_files` rotates them too (one derived password per
/// listed admin password, see `Secrets::internal`).
pub fn derived_password(user: &str, admin: &str) -> String {
    sha256_hex(&format!("redisctl derived password\n{user}\n{admin}"))
}

/// The replicas' user: what `PSYNC` needs (Redis docs, "ACL rules for Sentinel and Replicas").
pub const REPLICATION_RULES: &[&str] = &["+psync", "+replconf", "+ping"];

/// The Sentinels' user (same source): monitoring, hello messages and failovers.
pub const SENTINEL_RULES: &[&str] = &[
    "+multi",
    "+slaveof",
    "+ping",
    "+exec",
    "+subscribe",
    "+config|rewrite",
    "+role",
    "+publish",
    "+info",
    "+client|setname",
    "+client|kill",
    "+script|kill",
];

/// The password the Sentinels authenticate to group members with (`auth-pass`): the
/// Sentinel user's with ACL users, else the shared password.
pub fn sentinel_pass(topo: &Topology, secrets: &Secrets) -> String {
    if acl_on(topo) {
        secrets.active(SENTINEL_USER)
    } else {
        secrets.password.clone()
    }
}

/// The password replicas authenticate to their master with (`masterauth`).
pub fn masterauth(topo: &Topology, secrets: &Secrets) -> String {
    if acl_on(topo) {
        secrets.active(REPLICATION_USER)
    } else {
        secrets.password.clone()
    }
}

fn acl_on(topo: &Topology) -> bool {
    topo.auth.as_ref().is_some_and(|a| a.acl.is_some())
}

/// `SENTINEL SET … auth-pass` arguments (with `auth-user` when redisctl has ACL users): how
/// the Sentinels authenticate to a group's members.
pub fn sentinel_auth(acl: bool, pass: Option<&str>) -> Vec<String> {
    match pass {
        None => Vec::new(),
        Some(p) if acl => vec![
            "auth-user".into(),
            SENTINEL_USER.into(),
            "auth-pass".into(),
            p.to_string(),
        ],
        Some(p) => vec!["auth-pass".into(), p.to_string()],
    }
}

/// How redisctl authenticates to Redis instances: as `redisctl` with ACL users, else as the
/// default user; with the listed passwords in order (the first one an instance accepts).
pub fn credentials(topo: &Topology, secrets: &Secrets) -> crate::observe::client::Credentials {
    let acl = topo.auth.as_ref().is_some_and(|a| a.acl.is_some());
    let mut all = secrets.admin();
    let password = all.remove(0);
    crate::observe::client::Credentials {
        user: acl.then(|| ADMIN_USER.to_string()),
        password,
        fallback: all,
    }
}

/// One ACL user as declared: enabled, password hashes and rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclUser {
    pub name: String,
    pub enabled: bool,
    /// SHA-256 hex of every accepted password.
    pub hashes: Vec<String>,
    pub keys: Vec<String>,
    pub channels: Vec<String>,
    pub commands: Vec<String>,
}

impl AclUser {
    /// The rules without passwords or state: what a probe user is given to learn how Redis
    /// writes them (observe).
    pub fn rules(&self) -> Vec<String> {
        let mut v: Vec<String> = self.keys.iter().map(|k| format!("~{k}")).collect();
        // `reset` leaves channels to acl-pubsub-default; say it explicitly.
        v.push("resetchannels".into());
        v.extend(self.channels.iter().map(|c| format!("&{c}")));
        v.extend(self.commands.iter().cloned());
        v
    }

    /// `ACL SETUSER <name>` arguments after the name: the whole user at once (`reset` first,
    /// so the result does not depend on what was there). Clients already authenticated stay
    /// so; new ones may use any listed password.
    pub fn setuser_args(&self) -> Vec<String> {
        let mut v = vec![
            "reset".to_string(),
            if self.enabled { "on" } else { "off" }.to_string(),
        ];
        v.extend(self.hashes.iter().map(|h| format!("#{h}")));
        v.extend(self.rules());
        v
    }

    /// The `user` line of secrets.conf.
    pub fn line(&self) -> String {
        format!("user {} {}", self.name, self.setuser_args().join(" "))
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Every ACL user of the deployment's Redis instances; empty without ACL users.
pub fn users(topo: &Topology, secrets: &Secrets) -> Vec<AclUser> {
    let Some(acl) = topo.auth.as_ref().and_then(|a| a.acl.as_ref()) else {
        return Vec::new();
    };
    let everything = |name: &str, enabled: bool, hashes: Vec<String>| AclUser {
        name: name.into(),
        enabled,
        hashes,
        keys: strs(&["*"]),
        channels: strs(&["*"]),
        commands: strs(&["+@all"]),
    };
    let admin_hashes: Vec<String> = secrets.admin().iter().map(|p| sha256_hex(p)).collect();
    let mut out = vec![
        if acl.default_user_enabled {
            everything("default", true, admin_hashes.clone())
        } else {
            AclUser {
                name: "default".into(),
                enabled: false,
                hashes: Vec::new(),
                keys: Vec::new(),
                channels: Vec::new(),
                commands: Vec::new(),
            }
        },
        everything(ADMIN_USER, true, admin_hashes),
        AclUser {
            name: REPLICATION_USER.into(),
            enabled: true,
            hashes: secrets
                .internal(REPLICATION_USER)
                .iter()
                .map(|p| sha256_hex(p))
                .collect(),
            keys: Vec::new(),
            channels: Vec::new(),
            commands: strs(REPLICATION_RULES),
        },
        AclUser {
            name: SENTINEL_USER.into(),
            enabled: true,
            hashes: secrets
                .internal(SENTINEL_USER)
                .iter()
                .map(|p| sha256_hex(p))
                .collect(),
            keys: Vec::new(),
            channels: strs(&["*"]),
            commands: strs(SENTINEL_RULES),
        },
    ];
    for u in &acl.users {
        out.push(AclUser {
            name: u.name.clone(),
            enabled: true,
            hashes: secrets.users.get(&u.name).cloned().unwrap_or_default(),
            keys: u.keys.clone(),
            channels: u.channels.clone(),
            commands: u.commands.clone(),
        });
    }
    out
}

/// The users redisctl converges live on a Redis instance: the ACL users, or without them the
/// default user holding every listed admin password (what `requirepass` sets for one).
pub fn live_users(topo: &Topology, secrets: &Secrets) -> Vec<AclUser> {
    if acl_on(topo) {
        return users(topo, secrets);
    }
    vec![default_user(secrets)]
}

/// The default user with every admin password and every permission: data nodes without ACL
/// users, and every Sentinel (its `requirepass`).
pub fn default_user(secrets: &Secrets) -> AclUser {
    AclUser {
        name: "default".into(),
        enabled: true,
        hashes: secrets.admin().iter().map(|p| sha256_hex(p)).collect(),
        keys: strs(&["*"]),
        channels: strs(&["*"]),
        commands: strs(&["+@all"]),
    }
}

/// The `requirepass` line, or with several admin passwords (a rotation) the default user
/// accepting each (Redis' `requirepass` holds only one). Data nodes' secrets.conf and a new
/// Sentinel's sentinel.conf.
pub fn requirepass_line(secrets: &Secrets) -> String {
    if secrets.previous.is_empty() {
        format!("requirepass {}", super::quote(&secrets.password))
    } else {
        default_user(secrets).line()
    }
}

/// A Sentinel's own sentinel.conf without its `requirepass` line, when that line is inert:
/// Sentinel rewrote a `user default …` line (its live passwords, after a rotation) and a
/// `sentinel sentinel-pass` line. At start Sentinel applies `requirepass` first and the user
/// line then replaces the default user's passwords, and it sends `sentinel-pass`, not
/// `requirepass`, to the other Sentinels (sentinel.c, `sentinelSendAuthIfNeeded`): the line
/// only keeps a rotated-away password in the file, which Sentinel (no CONFIG SET) would write
/// back from memory forever. Only for a stopped Sentinel. None: nothing to drop.
pub fn without_inert_requirepass(conf: &str) -> Option<String> {
    let has = |p: &str| conf.lines().any(|l| l.trim_start().starts_with(p));
    if !(has("requirepass ") && has("user default ") && has("sentinel sentinel-pass ")) {
        return None;
    }
    let kept: Vec<&str> = conf
        .lines()
        .filter(|l| !l.trim_start().starts_with("requirepass "))
        .collect();
    Some(kept.join("\n") + "\n")
}

/// secrets.conf (mode 0600): `requirepass`/`masterauth` with one shared password, or the
/// ACL users with `masteruser`/`masterauth` of the replication user.
pub fn secrets_conf(topo: &Topology, secrets: &Secrets) -> String {
    use std::fmt::Write;
    let mut c = format!(
        "{}: secrets, readable by the owner only.\n",
        super::GENERATED_MARK
    );
    let users = users(topo, secrets);
    if users.is_empty() {
        let q = super::quote(&secrets.password);
        let _ = writeln!(c, "{}\nmasterauth {q}", requirepass_line(secrets));
        return c;
    }
    let _ = writeln!(
        c,
        "# ACL users (SHA-256 password hashes); `apply` converges live ones with ACL SETUSER."
    );
    for u in &users {
        let _ = writeln!(c, "{}", u.line());
    }
    let _ = writeln!(c, "masteruser {REPLICATION_USER}");
    let _ = writeln!(
        c,
        "masterauth {}",
        super::quote(&secrets.active(REPLICATION_USER))
    );
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn sha256_matches_redis() {
        // `ACL SETUSER x >adminpw` then `ACL GETUSER x` on redis-server 7.0.
        assert_eq!(
            sha256_hex("adminpw"),
            "5fcf82bc15aef42cd3ec93e6d4b51c04df110cf77ee715f62f3f172ff8ed9de9"
        );
    }

    #[test]
    fn several_admin_passwords_are_all_accepted_and_the_last_is_sent() {
        let no_acl = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\ncluster: {shards: 3, replicas: 1, ports: 7000-7005}\nauth:\n  password_files: [old.pw, new.pw]\n";
        let t = crate::topology::parse(no_acl, "t.yaml", Path::new("/x"))
            .unwrap()
            .topology;
        let s = Secrets {
            password: "new".into(),
            previous: vec!["old".into()],
            users: BTreeMap::new(),
            replication: Vec::new(),
            sentinel: Vec::new(),
        };
        // requirepass holds one password: the default user holds both, replicas send the new.
        let text = secrets_conf(&t, &s);
        assert!(
            text.contains(&format!(
                "user default reset on #{} #{} ~* resetchannels &* +@all\nmasterauth \"new\"\n",
                sha256_hex("old"),
                sha256_hex("new")
            )),
            "{text}"
        );
        assert!(!text.contains("requirepass") && !text.contains("\"old\""));
        // redisctl tries the old one first (every instance accepts it until the list drops it).
        let c = credentials(&t, &s);
        assert_eq!(
            (c.password.as_str(), c.fallback.clone()),
            ("old", vec!["new".to_string()])
        );
        assert_eq!(live_users(&t, &s)[0].hashes.len(), 2);
        // With ACL users, the derived internal passwords follow: both accepted, the new one
        // sent (a rotation of their own, in the same phases).
        let acl = no_acl.replace("new.pw]\n", "new.pw]\n  users: []\n");
        let t = crate::topology::parse(&acl, "t.yaml", Path::new("/x"))
            .unwrap()
            .topology;
        assert_eq!(
            s.internal(REPLICATION_USER),
            [
                derived_password(REPLICATION_USER, "old"),
                derived_password(REPLICATION_USER, "new")
            ]
        );
        assert_eq!(
            masterauth(&t, &s),
            derived_password(REPLICATION_USER, "new")
        );
        let admin = users(&t, &s);
        assert_eq!(admin[1].name, ADMIN_USER);
        assert_eq!(admin[1].hashes, [sha256_hex("old"), sha256_hex("new")]);
    }

    #[test]
    fn a_rotated_sentinels_requirepass_line_is_dropped_only_when_inert() {
        let conf = "port 26379\nrequirepass \"old\"\nsentinel sentinel-pass new\nuser default on #abc ~* &* +@all\nsentinel myid x\n";
        assert_eq!(
            without_inert_requirepass(conf).as_deref(),
            Some(
                "port 26379\nsentinel sentinel-pass new\nuser default on #abc ~* &* +@all\nsentinel myid x\n"
            )
        );
        // Never rotated (no user line) or no sentinel-pass: requirepass is what it uses.
        assert_eq!(
            without_inert_requirepass("requirepass \"pw\"\nsentinel sentinel-pass pw\n"),
            None
        );
        assert_eq!(
            without_inert_requirepass("requirepass \"pw\"\nuser default on #abc\n"),
            None
        );
    }

    #[test]
    fn secrets_conf_with_users_golden() {
        let src = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\ncluster: {shards: 3, replicas: 1, ports: 7000-7005}\nauth:\n  password_file: admin.pw\n  default_user: disabled\n  users:\n    - name: app\n      commands: [+@read, +set, -@dangerous]\n      keys: ['app:*']\n      password_files: [app.pw, app.pw.new]\n";
        let t = crate::topology::parse(src, "t.yaml", Path::new("/etc/redisctl"))
            .unwrap()
            .topology;
        let secrets = Secrets {
            password: "adminpw".into(),
            previous: Vec::new(),
            users: [(
                "app".to_string(),
                vec![sha256_hex("old"), sha256_hex("new")],
            )]
            .into(),
            replication: Vec::new(),
            sentinel: Vec::new(),
        };
        let text = secrets_conf(&t, &secrets);
        assert!(!text.contains("adminpw") && !text.contains("old\n"));
        super::super::golden("secrets-acl.conf", &text);
    }
}
