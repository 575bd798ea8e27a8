//! ACL users end to end (issue #14): real redis-server 7.0 instances built by the real binary,
//! redis-py as the judge of what an application user may do and of a password rotation under
//! load.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const ADMIN: &str = "adm1n-pw";

/// The app user's rules: its keys, reads and writes, what a cluster client needs to find the
/// slots, nothing dangerous.
const APP_USER: &str = "    - name: app\n      commands: [+@read, +@write, +@connection, -@dangerous, +cluster|slots, +cluster|shards, +cluster|nodes, +command]\n      keys: ['app:*']\n";

fn secret(dir: &Path, name: &str, pw: &str) {
    let f = dir.join(name);
    std::fs::write(&f, format!("{pw}\n")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A 3x1 cluster whose default user is off, with the app user and its password files.
fn deployment(files: &str) -> Deployment {
    let d = Deployment::cluster(&format!(
        "auth:\n  password_file: admin.pw\n  default_user: disabled\n  users:\n{APP_USER}      password_files: [{files}]\n"
    ));
    secret(d.dir.path(), "admin.pw", ADMIN);
    secret(d.dir.path(), "old.pw", "old-app-pw");
    secret(d.dir.path(), "new.pw", "new-app-pw");
    d
}

fn set_files(d: &Deployment, files: &str) {
    let text = std::fs::read_to_string(&d.file).unwrap();
    let start = text.find("password_files: [").unwrap();
    let end = start + text[start..].find(']').unwrap() + 1;
    let text = format!(
        "{}password_files: [{files}]{}",
        &text[..start],
        &text[end..]
    );
    std::fs::write(&d.file, text).unwrap();
}

/// Run a redis-py snippet; `user` and the password (read from `pw_file` by the snippet, never
/// passed in argv) are in `U` and `P`, `C` is a RedisCluster on `port`.
fn py(port: u16, user: &str, pw_file: &Path, body: &str) -> String {
    let script = format!(
        "import sys, redis\nfrom redis.cluster import RedisCluster\nU = sys.argv[2]\nP = open(sys.argv[3]).readline().rstrip('\\n')\nC = RedisCluster(host='127.0.0.1', port=int(sys.argv[1]), username=U, password=P)\n{body}\n"
    );
    let out = Command::new("python3")
        .args([
            "-c",
            &script,
            &port.to_string(),
            user,
            &pw_file.display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `redis-cli` as redisctl's own user, the password through the environment of that child
/// only (redis-cli's REDISCLI_AUTH), never argv.
fn admin_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .env("REDISCLI_AUTH", ADMIN)
        .args(["--user", "redisctl", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_app_user_can_do_exactly_what_its_rules_say_and_replicas_use_the_replication_user() {
    let d = deployment("old.pw");
    d.ok(&["apply", "--yes"]);
    let old = d.dir.path().join("old.pw");

    // Allowed: its keys, reads and writes, through a cluster client.
    let out = py(
        d.ports[0],
        "app",
        &old,
        "C.set('app:1', 'x'); print(C.get('app:1').decode()); print(C.incr('app:{n}'))",
    );
    assert_eq!(out, "x\n1\n");
    // Denied with NOPERM: another key, a dangerous command, an admin command.
    let out = py(
        d.ports[0],
        "app",
        &old,
        "for f in (lambda: C.set('other:1', 'x'), lambda: C.flushall(), lambda: C.config_get('maxmemory'), lambda: C.keys('*')):\n    try:\n        f(); print('allowed')\n    except redis.exceptions.NoPermissionError as e:\n        print('NOPERM')\n",
    );
    assert_eq!(out, "NOPERM\nNOPERM\nNOPERM\nNOPERM\n", "{out}");
    // The default user is off: no anonymous access, no shared password.
    assert!(redis_cli(d.ports[0], &["GET", "app:1"]).contains("NOAUTH"));

    // Every replica replicates, authenticated as the replication user (least privilege).
    let (ok, text) = {
        let out = Command::new("redis-cli")
            .env("REDISCLI_AUTH", ADMIN)
            .args(["--user", "redisctl", "--cluster", "check"])
            .arg(format!("127.0.0.1:{}", d.ports[0]))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(
        ok && text.contains("[OK] All 16384 slots covered."),
        "{text}"
    );
    let mut replicas = 0;
    for &p in &d.ports {
        let info = admin_cli(p, &["INFO", "replication"]);
        if info.contains("role:slave") {
            replicas += 1;
            assert!(info.contains("master_link_status:up"), "{p}: {info}");
        } else {
            let clients = admin_cli(p, &["CLIENT", "LIST", "TYPE", "replica"]);
            assert!(
                clients.contains("user=redisctl-replication"),
                "{p}: {clients}"
            );
        }
    }
    assert_eq!(replicas, 3);
    let rules = admin_cli(d.ports[0], &["ACL", "GETUSER", "redisctl-replication"]);
    let commands = rules
        .lines()
        .skip_while(|l| *l != "commands")
        .nth(1)
        .unwrap_or_default();
    let mut words: Vec<&str> = commands.split_whitespace().collect();
    words.sort_unstable();
    assert_eq!(words, ["+ping", "+psync", "+replconf", "-@all"], "{rules}");

    // No plaintext application password in any file redisctl wrote, and the secrets are 0600.
    let inst = d.state().join("local").join(d.ports[0].to_string());
    for f in ["redis.conf", "secrets.conf", "redis.log"] {
        let text = std::fs::read_to_string(inst.join(f)).unwrap();
        assert!(!text.contains("old-app-pw") && !text.contains(ADMIN), "{f}");
    }
    let mode = std::fs::metadata(inst.join("secrets.conf"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Nothing left to do, and the plan's JSON holds no password.
    let plan = d.run(&["--output", "json", "plan"]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains("\"steps\": []"), "{text}");

    // check: live ACLs changed by hand are drift, named per node and user, without secrets.
    assert!(admin_cli(d.ports[1], &["ACL", "SETUSER", "app", "+flushall"]).contains("OK"));
    let out = d.run(&["check"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "update ACL users on local:{} (live, no restart): app: commands",
            d.ports[1]
        )),
        "{text}"
    );
    assert!(
        !text.contains("old-app-pw") && !text.contains(ADMIN),
        "{text}"
    );
    d.ok(&["apply", "--yes"]);
    assert!(d.run(&["check"]).status.success());

    // check: a user's password file others can read is named at its field with the way out.
    let f = d.dir.path().join("old.pw");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = d.run(&["check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: auth.users[0].password_files[0]: ")
            && err.contains("is open to others (mode 0644)")
            && err.contains(&format!("run `chmod 600 {}`", f.display())),
        "{err}"
    );
    std::fs::remove_file(&f).unwrap();
    let out = d.run(&["check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn rotating_an_app_password_under_a_writer_refuses_nobody_and_loses_nothing() {
    let d = deployment("old.pw");
    d.ok(&["apply", "--yes"]);
    let dir = d.dir.path();
    let control = dir.join("control");
    std::fs::write(&control, format!("{}\n", dir.join("old.pw").display())).unwrap();
    let writer = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acl_writer.py"))
        .args(["127.0.0.1", &d.ports[0].to_string(), "9", "app"])
        .arg(&control)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));

    // 1. Both passwords: every node accepts old and new, live.
    set_files(&d, "old.pw, new.pw");
    let planned = d.json(&["plan"]);
    let acl_steps = planned["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "acl_set_user")
        .count();
    assert_eq!(acl_steps, 6, "{planned}");
    assert!(!planned.to_string().contains("new-app-pw"));
    d.ok(&["apply", "--yes"]);
    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan}");
    for &p in &d.ports {
        let u = admin_cli(p, &["ACL", "GETUSER", "app"]);
        assert_eq!(u.matches("passwords").count(), 1);
        // Two hashes listed.
        let hashes = u
            .lines()
            .filter(|l| l.len() == 64 && l.chars().all(|c| c.is_ascii_hexdigit()))
            .count();
        assert_eq!(hashes, 2, "{p}: {u}");
    }
    std::thread::sleep(Duration::from_secs(1));
    // 2. Clients move to the new password.
    std::fs::write(&control, format!("{}\n", dir.join("new.pw").display())).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // 3. The old one goes.
    set_files(&d, "new.pw");
    d.ok(&["apply", "--yes"]);

    let j = finish_json(writer);
    say(&format!("rotation under load: {j}"));
    assert_eq!(j["auth_errors"], 0, "{j}");
    assert_eq!(j["lost"], 0, "{j}");
    assert_eq!(j["other_errors"], 0, "{j}");
    assert_eq!(j["switches"], 1, "{j}");
    assert!(j["ops"].as_u64().unwrap() > 500, "{j}");

    // The old password is refused now, the new one works; no restart happened.
    let out = py(
        d.ports[0],
        "app",
        &dir.join("new.pw"),
        "print(C.get('app:{0}') is not None)",
    );
    assert_eq!(out, "True\n");
    let script = "import sys, redis\ntry:\n    redis.Redis(port=int(sys.argv[1]), username='app', password=open(sys.argv[2]).readline().strip()).ping(); print('accepted')\nexcept redis.exceptions.AuthenticationError:\n    print('refused')\n";
    let out = Command::new("python3")
        .args(["-c", script, &d.ports[0].to_string()])
        .arg(dir.join("old.pw"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "refused\n");
    for &p in &d.ports {
        let uptime: u64 = admin_cli(p, &["INFO", "server"])
            .lines()
            .find_map(|l| l.strip_prefix("uptime_in_seconds:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        assert!(uptime >= 10, "{p} restarted ({uptime} s)");
    }
}

const AOF: &str = "    appendonly: true\n    appendfsync: everysec\n";

/// Replace the list after `key: [` (the first one after `after`) in the topology.
fn set_list(d: &Deployment, key: &str, files: &str) {
    let text = std::fs::read_to_string(&d.file).unwrap();
    let start = text.find(&format!("{key}: [")).unwrap();
    let end = start + text[start..].find(']').unwrap() + 1;
    let text = format!("{}{key}: [{files}]{}", &text[..start], &text[end..]);
    std::fs::write(&d.file, text).unwrap();
}

/// Failed authentications recorded in `ACL LOG` (every AUTH that was refused, whoever tried).
fn auth_failures(port: u16, cli: impl Fn(u16, &[&str]) -> String) -> usize {
    let log = cli(port, &["ACL", "LOG"]);
    let lines: Vec<&str> = log.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|w| w[0] == "reason" && w[1] == "auth")
        .count()
}

fn stat(port: u16, section: &str, name: &str, cli: impl Fn(u16, &[&str]) -> String) -> String {
    cli(port, &["INFO", section])
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{name}:"))
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// Cut the Sentinels' connections to the members (`ports`) and wait until all three are back
/// on each (two links per Sentinel): they must authenticate with what they hold now.
fn reconnect_sentinels(ports: &[u16], cli: &impl Fn(u16, &[&str]) -> String) {
    for &p in ports {
        cli(p, &["CLIENT", "KILL", "USER", "redisctl-sentinel"]);
    }
    for &p in ports {
        assert!(
            wait_for(Duration::from_secs(20), || {
                cli(p, &["CLIENT", "LIST"])
                    .matches("user=redisctl-sentinel")
                    .count()
                    >= 6
            }),
            "{p}: the Sentinels did not reconnect: {}",
            cli(p, &["ACL", "LOG"])
        );
    }
}

/// Make every replica reconnect to its master now (`CLIENT KILL TYPE master`) and wait until
/// each is linked again: a replica whose password is refused never is.
fn relink_replicas(replicas: &[u16], cli: &impl Fn(u16, &[&str]) -> String) {
    for &r in replicas {
        cli(r, &["CLIENT", "KILL", "TYPE", "master"]);
    }
    for &r in replicas {
        assert!(
            wait_for(Duration::from_secs(20), || stat(
                r,
                "replication",
                "master_link_status",
                cli
            ) == "up"),
            "replica {r} did not link again: {}",
            cli(r, &["INFO", "replication"])
        );
    }
}

/// The passwords of a Sentinel group and its users, each in its own owner-only file.
fn sentinel_with_users() -> Deployment {
    let d = Deployment::sentinel(AOF);
    let text = std::fs::read_to_string(&d.file).unwrap().replace(
        "auth:\n  password_file: secret\n",
        "auth:\n  password_file: secret\n  users:\n    - name: app\n      commands: [+@read, +@write, +@connection, -@dangerous, +role, +info]\n      keys: ['w:*']\n      password_files: [app-old.pw]\n  replication_password_files: [repl-old.pw]\n  sentinel_password_files: [sent-old.pw]\n",
    );
    std::fs::write(&d.file, text).unwrap();
    for (f, pw) in [
        ("app-old.pw", "app-OLD-pw"),
        ("app-new.pw", "app-NEW-pw"),
        ("repl-old.pw", "repl-OLD-pw"),
        ("repl-new.pw", "repl-NEW-pw"),
        ("sent-old.pw", "sent-OLD-pw"),
        ("sent-new.pw", "sent-NEW-pw"),
    ] {
        secret(d.dir.path(), f, pw);
    }
    d
}

/// The plan's credential steps' kinds, in order (duplicates merged).
fn kinds(plan: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_string())
        .filter(|k| k.contains("acl") || k.contains("auth"))
        .collect();
    v.dedup();
    v
}

#[test]
fn rotating_every_password_of_a_sentinel_group_under_a_sentinel_client_refuses_nobody() {
    let d = sentinel_with_users();
    d.ok(&["apply", "--yes"]);
    let dir = d.dir.path();
    let (master, replicas, sentinels) = (d.ports[0], &d.ports[1..3], &d.ports[3..]);
    let cli = |p: u16, a: &[&str]| redis_cli(p, a);
    // Wait until each Sentinel has every link (2 per Sentinel per member), then start counting.
    for &p in &d.ports[..3] {
        assert!(wait_for(Duration::from_secs(20), || {
            cli(p, &["CLIENT", "LIST"])
                .matches("user=redisctl-sentinel")
                .count()
                >= 6
        }));
        cli(p, &["ACL", "LOG", "RESET"]);
    }
    let full_syncs = stat(master, "stats", "sync_full", cli);
    // The Sentinels' logs from here on (the first monitor, before auth-pass is set, may see
    // the master down for a moment).
    let sentinel_log = |s: u16| {
        std::fs::read_to_string(
            d.state()
                .join("local")
                .join(s.to_string())
                .join("redis.log"),
        )
        .unwrap_or_default()
    };
    let log_start: Vec<usize> = sentinels.iter().map(|&s| sentinel_log(s).len()).collect();

    let control = dir.join("control");
    std::fs::write(&control, format!("{}\n", dir.join("app-old.pw").display())).unwrap();
    let progress = dir.join("writer.progress");
    let mut cmd = Command::new("python3");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sentinel_writer.py"))
        .arg(PASSWORD)
        .arg("120");
    for s in sentinels {
        cmd.arg(s.to_string());
    }
    // It writes until the rotation is done (stop_json closes its stdin).
    let writer = cmd
        .arg("--user")
        .arg("app")
        .arg(&control)
        .arg("--stop-on-eof")
        .args(progress_args(&progress))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    await_acked(&progress, FLOWING, "before the rotation");

    // 1. Every new password next to its old one. The first round only adds the new
    //    passwords; nobody switches before every member accepts them.
    set_files(&d, "app-old.pw, app-new.pw");
    set_list(&d, "replication_password_files", "repl-old.pw, repl-new.pw");
    set_list(&d, "sentinel_password_files", "sent-old.pw, sent-new.pw");
    let plan = d.json(&["plan"]);
    assert_eq!(
        kinds(&plan),
        ["acl_add_passwords", "acl_set_user"],
        "{plan}"
    );
    assert!(!plan.to_string().contains("NEW-pw") && !plan.to_string().contains("OLD-pw"));
    d.ok(&["apply", "--yes"]);
    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan}");
    // Replicas and Sentinels use the new passwords, the members accept both.
    for &p in &d.ports[..3] {
        let m = cli(p, &["CONFIG", "GET", "masterauth"]);
        assert!(m.contains("repl-NEW-pw"), "{p}: {m}");
    }
    for &s in sentinels {
        let conf = std::fs::read_to_string(
            d.state()
                .join("local")
                .join(s.to_string())
                .join("sentinel.conf"),
        )
        .unwrap();
        assert!(
            conf.contains("sentinel auth-pass mymaster sent-NEW-pw"),
            "{s}: {conf}"
        );
    }
    // A replica or Sentinel reconnecting now authenticates.
    relink_replicas(replicas, &cli);
    reconnect_sentinels(&d.ports[..3], &cli);

    // 2. The application moves to its new password.
    std::fs::write(&control, format!("{}\n", dir.join("app-new.pw").display())).unwrap();
    std::thread::sleep(Duration::from_secs(2));

    // 3. The old passwords go.
    set_files(&d, "app-new.pw");
    set_list(&d, "replication_password_files", "repl-new.pw");
    set_list(&d, "sentinel_password_files", "sent-new.pw");
    let plan = d.json(&["plan"]);
    assert_eq!(kinds(&plan), ["acl_set_user"], "{plan}");
    d.ok(&["apply", "--yes"]);
    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan}");
    relink_replicas(replicas, &cli);
    reconnect_sentinels(&d.ports[..3], &cli);

    let j = stop_json(writer);
    say(&format!("Sentinel group rotation under load: {j}"));
    assert_eq!(j["auth_errors"], 0, "{j}");
    assert_eq!(j["errors"], 0, "{j}");
    assert_eq!(j["lost"], 0, "{j}");
    assert_eq!(j["switches"], 1, "{j}");
    assert!(j["acknowledged"].as_u64().unwrap() > 200, "{j}");
    assert_eq!(j["master_port"], master, "{j}");

    // Nobody was refused on any member, no full resync, no Sentinel ever saw a member down.
    for &p in &d.ports[..3] {
        assert_eq!(auth_failures(p, cli), 0, "{p}: {}", cli(p, &["ACL", "LOG"]));
    }
    assert_eq!(stat(master, "stats", "sync_full", cli), full_syncs);
    for (&s, &start) in sentinels.iter().zip(&log_start) {
        let log = sentinel_log(s);
        let log = &log[start..];
        assert!(log.contains("auth-pass"), "Sentinel {s}:\n{log}");
        assert!(
            !log.contains("+sdown") && !log.contains("+odown"),
            "Sentinel {s}:\n{log}"
        );
    }
    // The old passwords are refused now, the new ones work.
    for (user, old, new) in [
        ("redisctl-replication", "repl-OLD-pw", "repl-NEW-pw"),
        ("redisctl-sentinel", "sent-OLD-pw", "sent-NEW-pw"),
        ("app", "app-OLD-pw", "app-NEW-pw"),
    ] {
        let ping = |pw: &str| {
            let out = Command::new("redis-cli")
                .env("REDISCLI_AUTH", pw)
                .args(["--user", user, "-p", &master.to_string(), "PING"])
                .output()
                .unwrap();
            // redis-cli reports a refused AUTH on stderr, then the PING's NOAUTH.
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        };
        assert!(ping(old).contains("WRONGPASS"), "{user}: {}", ping(old));
        assert_eq!(ping(new).trim(), "PONG", "{user}");
    }
    // No password in redis.conf or a log; the files holding one are the owner's only.
    for p in &d.ports {
        let inst = d.state().join("local").join(p.to_string());
        for f in ["redis.conf", "redis.log"] {
            let text = std::fs::read_to_string(inst.join(f)).unwrap_or_default();
            assert!(!text.contains("-pw") && !text.contains(PASSWORD), "{p}/{f}");
        }
        for f in ["secrets.conf", "sentinel.conf"] {
            if let Ok(meta) = std::fs::metadata(inst.join(f)) {
                assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{p}/{f}");
            }
        }
    }
}

#[test]
fn swapping_the_replication_password_of_a_loaded_cluster_in_one_apply_refuses_no_replica() {
    let d = Deployment::cluster(
        "auth:\n  password_file: admin.pw\n  users: []\n  replication_password_files: [repl-old.pw]\n",
    );
    let dir = d.dir.path();
    secret(dir, "admin.pw", ADMIN);
    secret(dir, "repl-old.pw", "repl-OLD-pw");
    secret(dir, "repl-new.pw", "repl-NEW-pw");
    d.ok(&["apply", "--yes"]);
    let cli = |p: u16, a: &[&str]| admin_cli(p, a);
    let replicas: Vec<u16> = d
        .ports
        .iter()
        .copied()
        .filter(|&p| stat(p, "replication", "role", cli) == "slave")
        .collect();
    assert_eq!(replicas.len(), 3);
    relink_replicas(&replicas, &cli);
    let full_syncs = |ports: &[u16]| -> u64 {
        ports
            .iter()
            .map(|&p| stat(p, "stats", "sync_full", cli).parse::<u64>().unwrap())
            .sum()
    };
    let before = full_syncs(&d.ports);
    for &p in &d.ports {
        cli(p, &["ACL", "LOG", "RESET"]);
    }

    let writer = consistency_at("127.0.0.1", d.ports[0], 120.0, 2000, Some(ADMIN));
    // Replicas reconnect to their masters over and over while the password changes: any
    // moment where a replica's masterauth is not accepted shows as a refused AUTH.
    // (redis-cli's repeat mode: one connection per replica, a kill every 20 ms.)
    let killers: Vec<std::process::Child> = replicas
        .iter()
        .map(|r| {
            Command::new("redis-cli")
                .env("REDISCLI_AUTH", ADMIN)
                .args(["--user", "redisctl", "-p", &r.to_string()])
                .args(["-r", "-1", "-i", "0.02", "CLIENT", "KILL", "TYPE", "master"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    // One file replaced by another: apply adds the new password everywhere, switches
    // masterauth, then drops the old one, in that order.
    set_list(&d, "replication_password_files", "repl-new.pw");
    let plan = d.json(&["plan"]);
    assert_eq!(kinds(&plan), ["acl_add_passwords"], "{plan}");
    assert!(!plan.to_string().contains("-pw"));
    let out = d.ok(&["apply", "--yes"]);
    assert!(!out.contains("-pw"), "{out}");
    // Nothing left for the credentials (the links being cut may leave a wait for the
    // replicas to catch up).
    let plan = d.json(&["plan"]);
    assert!(kinds(&plan).is_empty(), "{plan}");
    std::thread::sleep(Duration::from_secs(1));
    let mut kills = 0;
    for mut k in killers {
        k.kill().unwrap();
        let out = k.wait_with_output().unwrap();
        // Each line is the number of links one CLIENT KILL closed.
        kills += String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .sum::<u64>();
    }
    relink_replicas(&replicas, &cli);
    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan}");

    let j = stop_json(writer);
    say(&format!(
        "replication password swapped under load, {kills} replica links cut meanwhile: {j}"
    ));
    assert_eq!(j["lost"], 0, "{j}");
    assert_eq!(j["errors"], 0, "{j}");
    assert!(j["acknowledged"].as_u64().unwrap() > 500, "{j}");
    for &p in &d.ports {
        assert_eq!(auth_failures(p, cli), 0, "{p}: {}", cli(p, &["ACL", "LOG"]));
        let m = cli(p, &["CONFIG", "GET", "masterauth"]);
        assert!(m.contains("repl-NEW-pw"), "{p}: {m}");
    }
    assert_eq!(full_syncs(&d.ports), before, "a replica resynced in full");
    let ping = |pw: &str| {
        let out = Command::new("redis-cli")
            .env("REDISCLI_AUTH", pw)
            .args([
                "--user",
                "redisctl-replication",
                "-p",
                &d.ports[0].to_string(),
                "PING",
            ])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    assert!(ping("repl-OLD-pw").contains("WRONGPASS"));
    assert_eq!(ping("repl-NEW-pw").trim(), "PONG");

    // check: every bad password file at once, each at its field, with the way out.
    let repl = dir.join("repl-new.pw");
    std::fs::write(&repl, "\n").unwrap();
    std::fs::set_permissions(dir.join("admin.pw"), std::fs::Permissions::from_mode(0o604)).unwrap();
    let out = d.run(&["check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: auth.password_file: ") && err.contains("(mode 0604)"),
        "{err}"
    );
    assert!(
        err.contains("error: auth.replication_password_files[0]: ")
            && err.contains("the first line (the password) is empty"),
        "{err}"
    );
    assert!(!err.contains(ADMIN) && !err.contains("-pw\n"), "{err}");
    // Put them back so that the cleanup (destroy) can authenticate.
    secret(dir, "admin.pw", ADMIN);
    secret(dir, "repl-new.pw", "repl-NEW-pw");
    d.ok(&["check"]);
}
