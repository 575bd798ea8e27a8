//! The real binary on bad topologies (issue #11, "Validation" and "Messages"): every error
//! line has one `error:` prefix, no library wording, echoed input escaped and shortened; and
//! the small CLI reports of `validate`, `render` and `destroy`. No network, no redis-server.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_redisctl")
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("REDISCTL_STATE_DIR")
        .env_remove("REDISCTL_HOST")
        .env("REDISCTL_SUPERVISOR", "process")
        .output()
        .expect("run redisctl")
}

const HOSTS: &str = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\n";

/// Every bad topology of the acceptance run's kinds, one per entry.
fn corpus() -> Vec<String> {
    let c = |body: &str| {
        format!("{HOSTS}cluster: {{shards: 3, replicas: 0, ports: 7000-7002{body}}}\n")
    };
    let d = |body: &str| {
        format!("{HOSTS}defaults: {body}\ncluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n")
    };
    vec![
        "version: -1\nname: t\nhosts: []\n".into(),
        "version: 99999999999\nname: t\nhosts: []\n".into(),
        c(", replicas: \"1\""),
        c(", require_full_coverage: \"no\""),
        c(", require_full_coverage: yes"),
        c(", shards: !int 3"),
        c(", node_timeout: 18446744073709551615"),
        c(", node_timeout: [1]"),
        c(", migration_barrier: 4294967295"),
        c(", weights: x"),
        c(", weights: [1, -1, 1]"),
        c(", ports: 7000"),
        c(", ports: [7000, 7000, 7001, 7002]"),
        d("{maxmemory: -1}"),
        d("{maxmemory: [1]}"),
        d("{persistence: {appendfsync: sometimes}}"),
        d("{config: {cluster-announce-bus-port: 17000}}"),
        d("{config: {x: {y: 1}}}"),
        format!("{HOSTS}name: u\n"),
        format!("{HOSTS}---\nname: u\n"),
        format!("{HOSTS}cluster: {{nodes: [{{host: a, port: 7000, shard: 1, role: boss}}]}}\n"),
        format!("{HOSTS}cluster: {{weights: [{}]}}\n", "0,".repeat(260_000)),
        format!("name: t\nhosts: {}{}\n", "[".repeat(3000), "]".repeat(3000)),
        "name: t\nhosts:\n  - {name: a, address: 0.0.0.0}\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\n".into(),
        "name: t\nhosts: *x\n".into(),
        "name: t\nhosts: [\n".into(),
        "\t".into(),
        String::new(),
    ]
}

const LIBRARY_WORDS: &[&str] = &[
    "serde",
    "saphyr",
    "variant",
    "untagged",
    "DuplicateKeyPolicy",
    "Options",
    "from_str",
    "budget",
    "Nodes {",
    "invalid u32",
    "u32",
    "u64",
    "struct ",
    "enum ",
];

#[test]
fn bad_topologies_get_one_error_prefix_per_line_and_no_library_wording() {
    let dir = tempfile::tempdir().unwrap();
    for (i, src) in corpus().iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.yaml"));
        std::fs::write(&file, src).unwrap();
        let o = run(dir.path(), &["validate", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "case {i}: {stderr}");
        assert!(o.stdout.is_empty(), "case {i}");
        assert!(!stderr.trim().is_empty(), "case {i}");
        for line in stderr.lines() {
            assert_eq!(line.matches("error:").count(), 1, "case {i}: {line}");
            for word in LIBRARY_WORDS {
                assert!(!line.contains(word), "case {i}: {word:?} in {line}");
            }
        }
        assert!(
            stderr.ends_with("error: topology is invalid: 1 error\n"),
            "case {i}: {stderr}"
        );
    }
}

/// Item 11: a 10 MB `name` came back in full (9.8 MB on stderr, 20 MB of JSON), and a key
/// with a newline split the one-line diagnostic.
#[test]
fn echoed_input_is_escaped_and_shortened_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.yaml");
    let name = "n".repeat(10 << 20);
    std::fs::write(&file, format!("name: {name}\nhosts: []\n")).unwrap();
    let o = run(dir.path(), &["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stderr.len() < 4096, "{} bytes on stderr", o.stderr.len());
    assert!(String::from_utf8_lossy(&o.stderr).contains("(10485760 bytes)"));
    let o = run(
        dir.path(),
        &["-o", "json", "validate", file.to_str().unwrap()],
    );
    assert!(o.stdout.len() < 8192, "{} bytes of JSON", o.stdout.len());
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["ok"], false);

    std::fs::write(
        &file,
        format!("{HOSTS}defaults: {{config: {{\"a\\nb\": 1}}}}\ncluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n"),
    )
    .unwrap();
    let o = run(dir.path(), &["validate", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(
        stderr.contains("defaults.config.a\\nb: \"a\\nb\" is not a redis.conf directive name"),
        "{stderr}"
    );
}

const SENTINEL_TOPOLOGY: &str = "name: s\nhosts:\n  - {name: a, address: 127.0.0.1}\ngroups:\n  - name: g\n    master: {host: a, port: 6379}\n    replicas: [{host: a, port: 6380}, {host: a, port: 6381}]\nsentinel:\n  instances: [{host: a, port: 26379}, {host: a, port: 26380}, {host: a, port: 26381}]\n  quorum: 2\n";

/// Item 15: `render` printed no sentinel.conf; `validate` counted 3 Redis + 3 Sentinels as
/// "3 instance(s)".
#[test]
fn validate_counts_sentinels_and_render_prints_sentinel_conf() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(&file, SENTINEL_TOPOLOGY).unwrap();
    let o = run(dir.path(), &["validate", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("0 shard(s), 3 Redis instance(s), 3 Sentinel(s)"),
        "{stdout}"
    );
    let o = run(
        dir.path(),
        &["--state-dir", "st", "render", file.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.matches("sentinel.conf <==").count(), 3, "{stdout}");
    assert!(stdout.contains("sentinel announce-ip"), "{stdout}");
}

/// Item 14: `destroy` of a never-deployed topology printed "destroyed …" per instance, then
/// "0 instance(s) stopped and removed".
#[test]
fn destroy_of_a_never_deployed_topology_says_there_is_nothing_to_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(&file, SENTINEL_TOPOLOGY).unwrap();
    let o = run(
        dir.path(),
        &[
            "--state-dir",
            "never",
            "destroy",
            file.to_str().unwrap(),
            "--yes",
        ],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with("Nothing to destroy"), "{stdout}");
    assert!(!stderr.contains("destroyed"), "{stderr}");
}

#[test]
fn every_bad_file_of_password_files_is_named_at_its_line_and_render_shows_no_password() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.yaml");
    std::fs::write(
        &file,
        format!("{HOSTS}auth:\n  password_files: [old.pw, open.pw, missing.pw]\ncluster: {{shards: 3, replicas: 1, ports: 7000-7005}}\n"),
    )
    .unwrap();
    for (name, mode) in [("old.pw", 0o600), ("open.pw", 0o644)] {
        let p = dir.path().join(name);
        std::fs::write(&p, "s3cret-pw\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let o = run(dir.path(), &["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let f = file.display();
    assert!(
        err.contains(&format!(
            "{f}:5:28: error: auth.password_files[1]: {} is open to others (mode 0644)",
            dir.path().join("open.pw").display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:5:37: error: auth.password_files[2]: "))
            && err.contains("No such file"),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw"), "{err}");
    // Both listed and valid: ok; render shows the default user holding both, no password.
    std::fs::set_permissions(
        dir.path().join("open.pw"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        &file,
        format!("{HOSTS}auth:\n  password_files: [old.pw, open.pw]\ncluster: {{shards: 3, replicas: 1, ports: 7000-7005}}\n"),
    )
    .unwrap();
    let o = run(dir.path(), &["validate", file.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(
        dir.path(),
        &["--state-dir", "st", "render", file.to_str().unwrap()],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(!stdout.contains("s3cret-pw"), "{stdout}");
}
