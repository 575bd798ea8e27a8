//! `auth`: the shared password and, when `auth.users` or `auth.default_user` is given, the ACL
//! users of every Redis instance. Pure like the rest of validation: the password files are
//! read (and their modes checked) by the CLI, not here.
//!
//! Rules are structured (`commands`, `keys`, `channels`) rather than free ACL strings so that
//! passwords can never be written in the topology (`>pass`, `#hash`, `nopass` have no field)
//! and every category and command is checked against Redis 7.0 before an instance would
//! refuse to start on it.

use std::collections::HashMap;
use std::path::Path;

use super::commands::REDIS_7_0_COMMANDS;
use super::model::{Acl, Auth, User};
use super::raw::{DefaultUser, RawAuth};
use super::text::show;
use super::validate::{Problem, Severity};

/// redisctl's own user on every Redis instance (`+@all`, password `auth.password_file`).
pub const ADMIN_USER: &str = "redisctl";
/// The user replicas authenticate as to their master (`masteruser`).
pub const REPLICATION_USER: &str = "redisctl-replication";
/// The user Sentinels authenticate as to masters and replicas (`auth-user`).
pub const SENTINEL_USER: &str = "redisctl-sentinel";

/// ACL categories of Redis 7.0 (`ACL CAT`), plus `all`.
pub const CATEGORIES: &[&str] = &[
    "all",
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Rule words that set passwords or the user's state: redisctl owns them.
const MANAGED_WORDS: &[&str] = &[
    "on",
    "off",
    "nopass",
    "resetpass",
    "reset",
    "allcommands",
    "nocommands",
    "allkeys",
    "resetkeys",
    "allchannels",
    "resetchannels",
    "clearselectors",
];

fn err(out: &mut Vec<Problem>, path: impl Into<String>, message: impl Into<String>) {
    out.push(Problem {
        severity: Severity::Error,
        path: path.into(),
        message: message.into(),
    });
}

/// Validate `auth`; problems are appended to `out`.
pub fn validate_auth(a: &RawAuth, base_dir: &Path, out: &mut Vec<Problem>) -> Auth {
    let password_files = admin_files(a, base_dir, out);
    let acl_on = a.users.is_some() || a.default_user.is_some();
    let acl = acl_on.then(|| {
        let raw_users = a.users.as_deref().unwrap_or_default();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut users = Vec::new();
        for (i, u) in raw_users.iter().enumerate() {
            let at = format!("auth.users[{i}]");
            check_name(&u.name, &format!("{at}.name"), out);
            if let Some(first) = seen.insert(&u.name, i) {
                err(
                    out,
                    format!("{at}.name"),
                    format!(
                        "duplicate user {} (also auth.users[{first}])",
                        show(&u.name)
                    ),
                );
            }
            for (j, c) in u.commands.iter().enumerate() {
                check_command(c, &format!("{at}.commands[{j}]"), out);
            }
            check_patterns(&u.keys, "keys", '~', &at, out);
            check_patterns(&u.channels, "channels", '&', &at, out);
            if u.password_files.is_empty() {
                err(
                    out,
                    format!("{at}.name"),
                    format!(
                        "user {} has no password: add `password_files: [FILE]` (a file holding the password on its first line, chmod 600)",
                        show(&u.name)
                    ),
                );
            }
            check_files(
                &u.password_files,
                &format!("{at}.password_files"),
                a,
                base_dir,
                ": an application holding it could do anything redisctl does; give the user its own file",
                out,
            );
            users.push(User {
                name: u.name.clone(),
                commands: u.commands.iter().map(|c| c.to_ascii_lowercase()).collect(),
                keys: u.keys.clone(),
                channels: u.channels.clone(),
                password_files: u.password_files.iter().map(|f| base_dir.join(f)).collect(),
            });
        }
        Acl {
            default_user_enabled: a.default_user != Some(DefaultUser::Disabled),
            users,
            replication_password_files: internal_files(
                a,
                "replication_password_files",
                a.replication_password_files.as_deref(),
                base_dir,
                out,
            ),
            sentinel_password_files: internal_files(
                a,
                "sentinel_password_files",
                a.sentinel_password_files.as_deref(),
                base_dir,
                out,
            ),
        }
    });
    if !acl_on {
        for (field, v) in [
            ("replication_password_files", &a.replication_password_files),
            ("sentinel_password_files", &a.sentinel_password_files),
        ] {
            if v.is_some() {
                err(
                    out,
                    format!("auth.{field}"),
                    "without ACL users replicas and Sentinels use `password_file` itself; add `users: []` (or `default_user`) to give them their own users and passwords",
                );
            }
        }
    }
    Auth {
        password_files,
        password_list: a.password_files.is_some(),
        acl,
    }
}

/// redisctl's own password files: `password_file` or the list `password_files` (exactly one
/// of them; the list while the password is rotated), none empty, none twice.
fn admin_files(a: &RawAuth, base_dir: &Path, out: &mut Vec<Problem>) -> Vec<std::path::PathBuf> {
    let list: Vec<&String> = match (&a.password_file, &a.password_files) {
        (Some(f), None) => {
            if f.trim().is_empty() {
                err(out, "auth.password_file", "must not be empty");
            }
            vec![f]
        }
        (None, Some(list)) => {
            if list.is_empty() {
                err(
                    out,
                    "auth.password_files",
                    "must list at least one file (redisctl's own password; two while it is rotated: [OLD, NEW])",
                );
            }
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for (j, f) in list.iter().enumerate() {
                let at = format!("auth.password_files[{j}]");
                if f.trim().is_empty() {
                    err(out, &at, "must not be empty");
                } else if let Some(first) = seen.insert(f.as_str(), j) {
                    err(
                        out,
                        &at,
                        format!("{} is listed twice (also [{first}])", show(f)),
                    );
                }
            }
            list.iter().collect()
        }
        (Some(_), Some(_)) => {
            err(
                out,
                "auth.password_files",
                "give either password_file (one file) or password_files (a list, while the password is rotated), not both",
            );
            Vec::new()
        }
        (None, None) => {
            err(
                out,
                "auth",
                "needs password_file: FILE (redisctl's own password; password_files: [OLD, NEW] while it is rotated)",
            );
            Vec::new()
        }
    };
    list.into_iter().map(|f| base_dir.join(f)).collect()
}

/// The password files of one of redisctl's internal users (replication, Sentinel): like an
/// application user's, and never `password_file` (redisctl's own, with every permission).
fn internal_files(
    a: &RawAuth,
    field: &str,
    list: Option<&[String]>,
    base_dir: &Path,
    out: &mut Vec<Problem>,
) -> Vec<std::path::PathBuf> {
    let Some(list) = list else {
        return Vec::new();
    };
    if list.is_empty() {
        err(
            out,
            format!("auth.{field}"),
            "must list at least one file (or leave the field out: the password is then derived from password_file)",
        );
    }
    check_files(
        list,
        &format!("auth.{field}"),
        a,
        base_dir,
        " (every permission); give this user its own file",
        out,
    );
    list.iter().map(|f| base_dir.join(f)).collect()
}

/// One list of password files (`at` is its path): none empty, none twice, never
/// `password_file` itself (`why` ends that message).
fn check_files(
    list: &[String],
    at: &str,
    a: &RawAuth,
    base_dir: &Path,
    why: &str,
    out: &mut Vec<Problem>,
) {
    let mut files: HashMap<&str, usize> = HashMap::new();
    for (j, f) in list.iter().enumerate() {
        let fpath = format!("{at}[{j}]");
        if f.trim().is_empty() {
            err(out, &fpath, "must not be empty");
        } else if let Some(first) = files.insert(f.as_str(), j) {
            err(
                out,
                &fpath,
                format!("{} is listed twice (also [{first}])", show(f)),
            );
        } else if a
            .password_file
            .iter()
            .chain(a.password_files.iter().flatten())
            .any(|p| base_dir.join(p) == base_dir.join(f))
        {
            let field = if a.password_files.is_some() {
                "in auth.password_files"
            } else {
                "auth.password_file"
            };
            err(
                out,
                &fpath,
                format!(
                    "{} is {field}, the password of redisctl's own user{why}",
                    show(f)
                ),
            );
        }
    }
}

fn check_name(name: &str, path: &str, out: &mut Vec<Problem>) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if !ok {
        err(
            out,
            path,
            format!(
                "invalid user name {}: use 1-64 letters, digits, '-', '_', '.' or ':'",
                show(name)
            ),
        );
    } else if name == "default" {
        err(
            out,
            path,
            "`default` is Redis' built-in user: set `auth.default_user: enabled|disabled` instead",
        );
    } else if name == ADMIN_USER || name.starts_with("redisctl-") {
        err(
            out,
            path,
            format!(
                "{} is reserved for redisctl's own users ({ADMIN_USER}, {REPLICATION_USER}, {SENTINEL_USER}): redefining one could lock redisctl, the replicas or the Sentinels out of the instances; choose another name",
                show(name)
            ),
        );
    }
}

/// One command rule: `+`/`-` then `@category`, `command` or `command|subcommand`.
fn check_command(rule: &str, path: &str, out: &mut Vec<Problem>) {
    let lower = rule.to_ascii_lowercase();
    if MANAGED_WORDS.contains(&lower.as_str())
        || lower.starts_with(['>', '<', '#', '!', '~', '%', '&', '('])
    {
        err(
            out,
            path,
            format!(
                "{} is not a command rule: passwords come from password_files, keys and channels from `keys` and `channels`, and redisctl sets the user on; write +COMMAND, -COMMAND, +@CATEGORY or -@CATEGORY",
                show(rule)
            ),
        );
        return;
    }
    let Some(body) = lower.strip_prefix(['+', '-']) else {
        err(
            out,
            path,
            format!(
                "{} has no + or -: write `+{1}` to allow it or `-{1}` to deny it",
                show(rule),
                rule.escape_debug()
            ),
        );
        return;
    };
    if let Some(cat) = body.strip_prefix('@') {
        if !CATEGORIES.contains(&cat) {
            err(
                out,
                path,
                format!(
                    "unknown ACL category {}; Redis 7.0 has @{}",
                    show(&format!("@{cat}")),
                    CATEGORIES.join(", @")
                ),
            );
        }
        return;
    }
    let (command, sub) = match body.split_once('|') {
        Some((c, s)) => (c, Some(s)),
        None => (body, None),
    };
    if !REDIS_7_0_COMMANDS.contains(&command) {
        err(
            out,
            path,
            format!(
                "unknown command {} (not a Redis 7.0 command: Redis would refuse the rule and the instance would not start)",
                show(command)
            ),
        );
    } else if let Some(s) = sub
        && (s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
    {
        err(
            out,
            path,
            format!(
                "{} is not a subcommand; write +{command}|SUBCOMMAND",
                show(s)
            ),
        );
    }
}

/// Key or channel patterns: one word each, `*` alone for everything.
fn check_patterns(list: &[String], field: &str, sigil: char, at: &str, out: &mut Vec<Problem>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (j, pat) in list.iter().enumerate() {
        let path = format!("{at}.{field}[{j}]");
        if pat.is_empty()
            || pat
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '"')
        {
            err(
                out,
                &path,
                format!(
                    "{} is not a pattern: one word without spaces, quotes or control characters",
                    show(pat)
                ),
            );
        } else if pat.starts_with(sigil) || pat.starts_with('%') {
            err(
                out,
                &path,
                format!(
                    "write the pattern without {sigil} (redisctl adds it): {}",
                    show(pat.trim_start_matches(['%', 'R', 'W', sigil]))
                ),
            );
        } else if let Some(first) = seen.insert(pat, j) {
            err(
                out,
                &path,
                format!("{} is listed twice (also [{first}])", show(pat)),
            );
        }
    }
    if list.len() > 1 && list.iter().any(|p| p == "*") {
        err(
            out,
            format!("{at}.{field}"),
            "`*` already matches everything; remove the other patterns",
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn errors(auth: &str) -> Vec<String> {
        let src = format!(
            "name: t\nhosts:\n  - {{name: a, address: 127.0.0.1}}\ncluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\nauth:\n{auth}"
        );
        match crate::topology::parse(&src, "t.yaml", Path::new("/etc/redisctl")) {
            Ok(l) => l.warnings.iter().map(ToString::to_string).collect(),
            Err(e) => e.diagnostics.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_valid_user_becomes_the_model() {
        let src = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\nauth:\n  password_file: admin.pw\n  default_user: disabled\n  users:\n    - name: app\n      commands: [+@read, +SET, -@dangerous, +config|get]\n      keys: ['app:*']\n      channels: ['*']\n      password_files: [app.pw, app.pw.new]\n";
        let t = crate::topology::parse(src, "t.yaml", Path::new("/etc/redisctl"))
            .unwrap()
            .topology;
        let acl = t.auth.unwrap().acl.unwrap();
        assert!(!acl.default_user_enabled);
        let u = &acl.users[0];
        assert_eq!(u.commands, ["+@read", "+set", "-@dangerous", "+config|get"]);
        assert_eq!(
            u.password_files,
            [
                Path::new("/etc/redisctl/app.pw"),
                Path::new("/etc/redisctl/app.pw.new")
            ]
        );
    }

    #[test]
    fn no_users_means_no_acl() {
        let src = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\nauth: {password_file: pw}\n";
        let t = crate::topology::parse(src, "t.yaml", Path::new("/x"))
            .unwrap()
            .topology;
        assert!(t.auth.unwrap().acl.is_none());
    }

    #[test]
    fn every_mistake_is_named_at_its_line() {
        let e = errors(
            "  password_file: admin.pw\n  users:\n    - name: app\n      commands: [+@reads, get, '>secret', +nosuchcmd, +client|]\n      keys: ['~app:*', 'a b']\n      password_files: [admin.pw]\n    - name: redisctl\n      password_files: [x]\n    - name: ops\n    - name: app\n      keys: ['*', 'x']\n      password_files: [y, y]\n    - name: default\n      password_files: [z]\n",
        );
        let want = [
            "t.yaml:9:18: error: auth.users[0].commands[0]: unknown ACL category \"@reads\"; Redis 7.0 has @all, @keyspace, @read, @write, @set, @sortedset, @list, @hash, @string, @bitmap, @hyperloglog, @geo, @stream, @pubsub, @admin, @fast, @slow, @blocking, @dangerous, @connection, @transaction, @scripting",
            "t.yaml:9:27: error: auth.users[0].commands[1]: \"get\" has no + or -: write `+get` to allow it or `-get` to deny it",
            "t.yaml:9:32: error: auth.users[0].commands[2]: \">secret\" is not a command rule: passwords come from password_files, keys and channels from `keys` and `channels`, and redisctl sets the user on; write +COMMAND, -COMMAND, +@CATEGORY or -@CATEGORY",
            "t.yaml:9:43: error: auth.users[0].commands[3]: unknown command \"nosuchcmd\" (not a Redis 7.0 command: Redis would refuse the rule and the instance would not start)",
            "t.yaml:9:55: error: auth.users[0].commands[4]: \"\" is not a subcommand; write +client|SUBCOMMAND",
            "t.yaml:10:14: error: auth.users[0].keys[0]: write the pattern without ~ (redisctl adds it): \"app:*\"",
            "t.yaml:10:24: error: auth.users[0].keys[1]: \"a b\" is not a pattern: one word without spaces, quotes or control characters",
            "t.yaml:11:24: error: auth.users[0].password_files[0]: \"admin.pw\" is auth.password_file, the password of redisctl's own user: an application holding it could do anything redisctl does; give the user its own file",
            "t.yaml:12:13: error: auth.users[1].name: \"redisctl\" is reserved for redisctl's own users (redisctl, redisctl-replication, redisctl-sentinel): redefining one could lock redisctl, the replicas or the Sentinels out of the instances; choose another name",
            "t.yaml:14:13: error: auth.users[2].name: user \"ops\" has no password: add `password_files: [FILE]` (a file holding the password on its first line, chmod 600)",
            "t.yaml:15:13: error: auth.users[3].name: duplicate user \"app\" (also auth.users[0])",
            "t.yaml:16:13: error: auth.users[3].keys: `*` already matches everything; remove the other patterns",
            "t.yaml:17:27: error: auth.users[3].password_files[1]: \"y\" is listed twice (also [0])",
            "t.yaml:18:13: error: auth.users[4].name: `default` is Redis' built-in user: set `auth.default_user: enabled|disabled` instead",
        ];
        assert_eq!(e, want, "{e:#?}");
    }

    #[test]
    fn internal_password_files_need_acl_users_and_their_own_files() {
        let e = errors("  password_file: admin.pw\n  replication_password_files: [r.pw]\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("auth.replication_password_files: without ACL users")
                && e[0].contains("add `users: []`"),
            "{e:?}"
        );
        let e = errors(
            "  password_file: admin.pw\n  users: []\n  replication_password_files: [r.pw, r.pw]\n  sentinel_password_files: [admin.pw]\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].contains("replication_password_files[1]: \"r.pw\" is listed twice"),
            "{e:?}"
        );
        assert!(
            e[1].contains("sentinel_password_files[0]: \"admin.pw\" is auth.password_file"),
            "{e:?}"
        );
        let e = errors("  password_file: admin.pw\n  users: []\n  sentinel_password_files: []\n");
        assert!(e[0].contains("must list at least one file"), "{e:?}");
    }

    #[test]
    fn password_files_is_the_list_form_of_password_file_and_every_mistake_is_located() {
        let src = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\nauth:\n  password_files: [old.pw, new.pw]\n  users: []\n";
        let a = crate::topology::parse(src, "t.yaml", Path::new("/etc/redisctl"))
            .unwrap()
            .topology
            .auth
            .unwrap();
        assert_eq!(
            a.password_files,
            [
                Path::new("/etc/redisctl/old.pw"),
                Path::new("/etc/redisctl/new.pw")
            ]
        );
        assert_eq!(a.password_field(1), "auth.password_files[1]");
        assert_eq!(
            errors("  password_file: a.pw\n  password_files: [a.pw, b.pw]\n"),
            [
                "t.yaml:7:19: error: auth.password_files: give either password_file (one file) or password_files (a list, while the password is rotated), not both"
            ]
        );
        assert_eq!(
            errors("  password_files: []\n"),
            [
                "t.yaml:6:19: error: auth.password_files: must list at least one file (redisctl's own password; two while it is rotated: [OLD, NEW])"
            ]
        );
        assert_eq!(
            errors("  password_files: [a.pw, '', a.pw]\n"),
            [
                "t.yaml:6:26: error: auth.password_files[1]: must not be empty",
                "t.yaml:6:30: error: auth.password_files[2]: \"a.pw\" is listed twice (also [0])"
            ]
        );
        let e = errors("  users: []\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("t.yaml:6:3: error: auth: needs password_file: FILE"),
            "{e:?}"
        );
        // An internal user's file may not be one of redisctl's own.
        let e = errors(
            "  password_files: [a.pw, b.pw]\n  users: []\n  replication_password_files: [b.pw]\n",
        );
        assert_eq!(
            e,
            [
                "t.yaml:8:32: error: auth.replication_password_files[0]: \"b.pw\" is in auth.password_files, the password of redisctl's own user (every permission); give this user its own file"
            ]
        );
    }

    #[test]
    fn default_user_takes_only_enabled_or_disabled() {
        let e = errors("  password_file: pw\n  default_user: off\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("auth.default_user"), "{e:?}");
    }
}
