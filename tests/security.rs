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

/// Close every connection a Sentinel opened to `port` (their names start with `sentinel-`;
/// on a Sentinel, the other Sentinels' links) and wait until `links` named ones are back:
/// a Sentinel whose AUTH is refused cannot name its connection.
fn reconnect_named(port: u16, links: usize, cli: &impl Fn(u16, &[&str]) -> String) {
    for line in cli(port, &["CLIENT", "LIST"]).lines() {
        if line.contains(" name=sentinel-")
            && let Some(id) = line.split_whitespace().find_map(|w| w.strip_prefix("id="))
        {
            cli(port, &["CLIENT", "KILL", "ID", id]);
        }
    }
    assert!(
        wait_for(Duration::from_secs(20), || {
            cli(port, &["CLIENT", "LIST"])
                .matches(" name=sentinel-")
                .count()
                >= links
        }),
        "{port}: the Sentinels did not reconnect: {}\n{}",
        cli(port, &["CLIENT", "LIST"]),
        cli(port, &["ACL", "LOG"])
    );
}

/// `redis-cli` as the default user with `pw` (through the child's environment, never argv);
/// stdout and stderr together (a refused AUTH is reported on stderr).
fn cli_as(pw: &str, port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .env("REDISCLI_AUTH", pw)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn rotating_redisctls_own_password_under_a_sentinel_client_refuses_nobody_and_restarts_nothing() {
    const NEW: &str = "n3w-adm1n-s3cret";
    // down-after 5 s: the test cuts the Sentinels' links itself to make them authenticate
    // again, and a Sentinel reconnects at most once a second; with 1 s a cut link alone can
    // show as +sdown. A refused password would never reconnect (checked by name below).
    let d = Deployment::sentinel_with(AOF, 5000);
    let dir = d.dir.path();
    secret(dir, "secret.new", NEW);
    d.ok(&["apply", "--yes"]);
    let (master, replicas, sentinels) = (d.ports[0], &d.ports[1..3], &d.ports[3..]);
    let old_cli = |p: u16, a: &[&str]| cli_as(PASSWORD, p, a);
    let new_cli = |p: u16, a: &[&str]| cli_as(NEW, p, a);
    // Every Sentinel linked to every member (2 links each) and to the other two Sentinels.
    for &p in &d.ports[..3] {
        reconnect_named(p, 6, &old_cli);
    }
    for &s in sentinels {
        reconnect_named(s, 2, &old_cli);
    }
    for &p in &d.ports {
        old_cli(p, &["ACL", "LOG", "RESET"]);
    }
    let pids = d.pids();
    assert_eq!(pids.len(), 6, "{pids:?}");
    let full_syncs = stat(master, "stats", "sync_full", old_cli);
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

    // A redis-py Sentinel client (password for the Sentinels and the master: the file the
    // control file names), rebuilt every 50 writes.
    let control = dir.join("control");
    std::fs::write(&control, format!("{}\n", dir.join("secret").display())).unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sentinel_writer.py"))
        .arg("-")
        .arg("25");
    for s in sentinels {
        cmd.arg(s.to_string());
    }
    let writer = cmd
        .arg("--password-control")
        .arg(&control)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));

    // 1. The new password listed after the old one: the first round only adds it, on every
    //    member and every Sentinel; then replicas and Sentinels switch to it.
    let text = std::fs::read_to_string(&d.file).unwrap().replace(
        "password_file: secret\n",
        "password_files: [secret, secret.new]\n",
    );
    std::fs::write(&d.file, text).unwrap();
    let plan = d.json(&["plan"]);
    assert_eq!(kinds(&plan), ["acl_add_passwords"], "{plan}");
    let n = |kind: &str| {
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["step"] == kind)
            .count()
    };
    assert_eq!(
        n("acl_add_passwords"),
        6,
        "every member and every Sentinel: {plan}"
    );
    let out = d.json(&["apply", "--yes"]).to_string();
    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan}");
    for text in [&out, &plan.to_string()] {
        assert!(!text.contains(NEW) && !text.contains(PASSWORD), "{text}");
    }
    // Both accepted everywhere; replicas and Sentinels send the new one, and the Sentinels'
    // files (which they rewrite) hold what they accept and send.
    for &p in &d.ports {
        assert_eq!(old_cli(p, &["PING"]).trim(), "PONG", "{p}");
        assert_eq!(new_cli(p, &["PING"]).trim(), "PONG", "{p}");
    }
    for &p in &d.ports[..3] {
        let m = new_cli(p, &["CONFIG", "GET", "masterauth"]);
        assert!(m.contains(NEW), "{p}: {m}");
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
            conf.contains(&format!("sentinel auth-pass mymaster {NEW}")),
            "{s}: {conf}"
        );
        assert!(
            conf.contains(&format!("sentinel sentinel-pass {NEW}")),
            "{s}: {conf}"
        );
        let user = conf
            .lines()
            .find(|l| l.starts_with("user default"))
            .unwrap_or_default();
        assert_eq!(user.matches(" #").count(), 2, "{s}: {conf}");
    }
    // Replicas and Sentinels reconnecting now authenticate with the new password.
    relink_replicas(replicas, &new_cli);
    for &p in &d.ports[..3] {
        reconnect_named(p, 6, &new_cli);
    }
    for &s in sentinels {
        reconnect_named(s, 2, &new_cli);
    }

    // 2. The client moves to the new password.
    std::fs::write(&control, format!("{}\n", dir.join("secret.new").display())).unwrap();
    std::thread::sleep(Duration::from_secs(2));

    // 3. The old one goes: one round, every member and every Sentinel.
    let text = std::fs::read_to_string(&d.file).unwrap().replace(
        "password_files: [secret, secret.new]\n",
        "password_files: [secret.new]\n",
    );
    std::fs::write(&d.file, text).unwrap();
    let plan = d.json(&["plan"]);
    assert_eq!(kinds(&plan), ["acl_set_user"], "{plan}");
    let n = |kind: &str| {
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["step"] == kind)
            .count()
    };
    assert_eq!(
        n("acl_set_user"),
        6,
        "every member and every Sentinel: {plan}"
    );
    d.ok(&["apply", "--yes"]);
    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan}");
    relink_replicas(replicas, &new_cli);
    for &p in &d.ports[..3] {
        reconnect_named(p, 6, &new_cli);
    }
    for &s in sentinels {
        reconnect_named(s, 2, &new_cli);
    }

    let j = finish_json(writer);
    say(&format!(
        "redisctl's own password rotated under a Sentinel client: {j}"
    ));
    assert_eq!(j["auth_errors"], 0, "{j}");
    assert_eq!(j["errors"], 0, "{j}");
    assert_eq!(j["lost"], 0, "{j}");
    assert_eq!(j["switches"], 1, "{j}");
    assert!(j["acknowledged"].as_u64().unwrap() > 200, "{j}");
    assert_eq!(j["master_port"], master, "{j}");

    // Nobody refused anywhere (redisctl included: it tried the old password first while it
    // was listed), no restart, no full resync, no Sentinel saw a member down.
    for &p in &d.ports {
        assert_eq!(
            auth_failures(p, new_cli),
            0,
            "{p}: {}",
            new_cli(p, &["ACL", "LOG"])
        );
    }
    assert_eq!(d.pids(), pids, "an instance was restarted");
    assert_eq!(stat(master, "stats", "sync_full", new_cli), full_syncs);
    for (&s, &start) in sentinels.iter().zip(&log_start) {
        let log = sentinel_log(s);
        let log = &log[start..];
        assert!(
            !log.contains("+sdown") && !log.contains("+odown"),
            "Sentinel {s}:\n{log}"
        );
    }
    // The old password is refused everywhere, the new one works.
    for &p in &d.ports {
        assert!(old_cli(p, &["PING"]).contains("WRONGPASS"), "{p}");
        assert_eq!(new_cli(p, &["PING"]).trim(), "PONG", "{p}");
    }
    // No password in a process' arguments, redis.conf or a log; the files holding one are
    // the owner's only.
    for &pid in &pids {
        let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv = String::from_utf8_lossy(&argv);
        assert!(
            !argv.contains(NEW) && !argv.contains(PASSWORD),
            "{pid}: {argv}"
        );
    }
    for p in &d.ports {
        let inst = d.state().join("local").join(p.to_string());
        for f in ["redis.conf", "redis.log"] {
            let text = std::fs::read_to_string(inst.join(f)).unwrap_or_default();
            assert!(!text.contains(NEW) && !text.contains(PASSWORD), "{p}/{f}");
        }
        for f in ["secrets.conf", "sentinel.conf"] {
            if let Ok(meta) = std::fs::metadata(inst.join(f)) {
                assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{p}/{f}");
            }
        }
    }

    // A restart comes back with what was live: a replica from its secrets.conf (rewritten
    // by apply), a Sentinel from the sentinel.conf it rewrote.
    for port in [replicas[0], sentinels[0]] {
        let pid = d.pid(port).unwrap();
        new_cli(port, &["SHUTDOWN", "NOSAVE"]);
        assert!(wait_for(Duration::from_secs(10), || !alive(pid)), "{port}");
        d.ok(&["apply", "--yes"]);
        assert!(old_cli(port, &["PING"]).contains("WRONGPASS"), "{port}");
        assert_eq!(new_cli(port, &["PING"]).trim(), "PONG", "{port}");
    }
    assert!(wait_for(Duration::from_secs(20), || stat(
        replicas[0],
        "replication",
        "master_link_status",
        new_cli
    ) == "up"));
    reconnect_named(replicas[0], 6, &new_cli);
    reconnect_named(sentinels[0], 2, &new_cli);
    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan}");
    // The Sentinel that ran through the rotation keeps the password it started with in its
    // requirepass line (inert); the one apply started again has it no more.
    let conf = |s: u16| {
        std::fs::read_to_string(
            d.state()
                .join("local")
                .join(s.to_string())
                .join("sentinel.conf"),
        )
        .unwrap()
    };
    assert!(conf(sentinels[1]).contains(PASSWORD));
    new_cli(sentinels[0], &["SENTINEL", "FLUSHCONFIG"]);
    assert!(
        !conf(sentinels[0]).contains(PASSWORD),
        "{}",
        conf(sentinels[0])
    );
    assert!(conf(sentinels[0]).contains(NEW));
}

#[test]
fn rotating_redisctls_own_password_with_derived_internal_users_refuses_no_replica() {
    const NEW: &str = "adm1n-NEW-pw";
    // ACL users, the replication and Sentinel users' passwords derived from redisctl's own.
    let d = Deployment::cluster("auth:\n  password_file: admin.pw\n  users: []\n");
    let dir = d.dir.path();
    secret(dir, "admin.pw", ADMIN);
    secret(dir, "admin.new", NEW);
    d.ok(&["apply", "--yes"]);
    let as_admin = |pw: &'static str| {
        move |p: u16, a: &[&str]| {
            let out = Command::new("redis-cli")
                .env("REDISCLI_AUTH", pw)
                .args(["--user", "redisctl", "-p", &p.to_string()])
                .args(a)
                .output()
                .unwrap();
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }
    };
    let (old_cli, new_cli) = (as_admin(ADMIN), as_admin(NEW));
    let replicas: Vec<u16> = d
        .ports
        .iter()
        .copied()
        .filter(|&p| stat(p, "replication", "role", old_cli) == "slave")
        .collect();
    assert_eq!(replicas.len(), 3);
    relink_replicas(&replicas, &old_cli);
    let full_syncs = |ports: &[u16], cli: &dyn Fn(u16, &[&str]) -> String| -> u64 {
        ports
            .iter()
            .map(|&p| stat(p, "stats", "sync_full", cli).parse::<u64>().unwrap())
            .sum()
    };
    let before = full_syncs(&d.ports, &old_cli);
    for &p in &d.ports {
        old_cli(p, &["ACL", "LOG", "RESET"]);
    }
    let pids = d.pids();
    let masterauth =
        |p: u16, cli: &dyn Fn(u16, &[&str]) -> String| cli(p, &["CONFIG", "GET", "masterauth"]);
    let derived_before = masterauth(replicas[0], &old_cli);

    let writer = consistency_at("127.0.0.1", d.ports[0], 15.0, 2000, Some(ADMIN));
    // Replicas reconnect over and over while the derived replication password changes with
    // redisctl's: a moment where a replica's masterauth is refused shows in ACL LOG.
    let killers: Vec<std::process::Child> = replicas
        .iter()
        .map(|r| {
            Command::new("redis-cli")
                .env("REDISCLI_AUTH", ADMIN)
                .args(["--user", "redisctl", "-p", &r.to_string()])
                .args(["-r", "-1", "-i", "0.02", "CLIENT", "KILL", "TYPE", "master"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    // 1. [old, new]: the first round only adds (redisctl, default and both derived users).
    let text = std::fs::read_to_string(&d.file).unwrap().replace(
        "password_file: admin.pw\n",
        "password_files: [admin.pw, admin.new]\n",
    );
    std::fs::write(&d.file, text).unwrap();
    let plan = d.json(&["plan"]);
    assert_eq!(kinds(&plan), ["acl_add_passwords"], "{plan}");
    let users: std::collections::BTreeSet<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["user"].as_str())
        .collect();
    assert_eq!(
        users.into_iter().collect::<Vec<_>>(),
        [
            "default",
            "redisctl",
            "redisctl-replication",
            "redisctl-sentinel"
        ],
        "{plan}"
    );
    let out = d.json(&["apply", "--yes"]).to_string();
    assert!(!out.contains(NEW) && !out.contains(ADMIN), "{out}");
    std::thread::sleep(Duration::from_secs(1));
    for mut k in killers {
        k.kill().unwrap();
        let _ = k.wait();
    }
    relink_replicas(&replicas, &new_cli);
    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan}");
    // The replicas send the new derived password; both admin passwords work.
    let derived_after = masterauth(replicas[0], &new_cli);
    assert_ne!(derived_before, derived_after);
    for &p in &d.ports {
        assert_eq!(old_cli(p, &["PING"]).trim(), "PONG", "{p}");
        assert_eq!(new_cli(p, &["PING"]).trim(), "PONG", "{p}");
    }
    let j = finish_json(writer);
    say(&format!(
        "redisctl's own password (and the derived replication password) rotated under load: {j}"
    ));
    assert_eq!(j["lost"], 0, "{j}");
    assert_eq!(j["errors"], 0, "{j}");
    assert!(j["acknowledged"].as_u64().unwrap() > 500, "{j}");

    // 2. [new]: the old admin password and the old derived ones go in one round.
    let text = std::fs::read_to_string(&d.file).unwrap().replace(
        "password_files: [admin.pw, admin.new]\n",
        "password_files: [admin.new]\n",
    );
    std::fs::write(&d.file, text).unwrap();
    let plan = d.json(&["plan"]);
    assert_eq!(kinds(&plan), ["acl_set_user"], "{plan}");
    d.ok(&["apply", "--yes"]);
    let plan = d.json(&["plan"]);
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan}");
    relink_replicas(&replicas, &new_cli);
    for &p in &d.ports {
        assert_eq!(
            auth_failures(p, new_cli),
            0,
            "{p}: {}",
            new_cli(p, &["ACL", "LOG"])
        );
        assert!(old_cli(p, &["PING"]).contains("WRONGPASS"), "{p}");
        assert_eq!(new_cli(p, &["PING"]).trim(), "PONG", "{p}");
    }
    assert_eq!(masterauth(replicas[0], &new_cli), derived_after);
    assert_eq!(
        full_syncs(&d.ports, &new_cli),
        before,
        "a replica resynced in full"
    );
    assert_eq!(d.pids(), pids, "an instance was restarted");
}
