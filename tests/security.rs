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
