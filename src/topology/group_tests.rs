//! Validation of replication groups and Sentinels, each rule with its message and place.

use std::path::Path;

use super::{Diagnostic, Severity, parse};

const HEAD: &str = "name: t\nhosts:\n  - name: a\n    address: 127.0.0.1\n";

fn diags(src: &str) -> Vec<Diagnostic> {
    match parse(src, "t.yaml", Path::new(".")) {
        Ok(l) => l.warnings,
        Err(e) => e.diagnostics,
    }
}

fn errors(src: &str) -> Vec<String> {
    diags(src)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect()
}

fn group(body: &str) -> String {
    format!("{HEAD}groups:\n  - name: mymaster\n    master: {{host: a, port: 6379}}\n{body}")
}

#[test]
fn shipped_sentinel_example_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let l = super::load(&dir.join("local-sentinel.yaml")).unwrap();
    let g = &l.topology.groups[0];
    assert_eq!(g.name, "mymaster");
    assert_eq!(g.master.port, 6379);
    assert_eq!(
        g.replicas.iter().map(|r| r.port).collect::<Vec<_>>(),
        vec![6380, 6381]
    );
    let s = l.topology.sentinel.as_ref().unwrap();
    assert_eq!(s.quorum, 2);
    assert_eq!(s.instances.len(), 3);
    assert!(l.topology.auth.is_some());
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn a_deployment_needs_a_cluster_or_groups() {
    assert_eq!(
        errors(HEAD),
        vec![
            "t.yaml:1:1: error: cluster: nothing to deploy: add a `cluster` section or replication `groups`"
        ]
    );
}

#[test]
fn chains_resolve_and_cycles_are_refused() {
    let ok = group(
        "    replicas:\n      - {host: a, port: 6380}\n      - {host: a, port: 6381, of: 6380}\n",
    );
    let l = parse(&ok, "t.yaml", Path::new(".")).unwrap();
    let g = &l.topology.groups[0];
    assert_eq!(g.upstream[&g.replicas[1].key].port, 6380);
    assert_eq!(g.upstream[&g.replicas[0].key].port, 6379);

    let cycle = group(
        "    replicas:\n      - {host: a, port: 6380, of: 6381}\n      - {host: a, port: 6381, of: \"a:6380\"}\n",
    );
    let e = errors(&cycle);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("t.yaml:9:35:"), "{e:?}");
    assert!(e[0].ends_with(
        "groups[0].replicas[0].of: replication chain forms a cycle and never reaches the master"
    ));

    let unknown = group("    replicas:\n      - {host: a, port: 6380, of: 7000}\n");
    assert_eq!(
        errors(&unknown),
        vec![
            "t.yaml:9:35: error: groups[0].replicas[0].of: \"7000\" is not a member of group \"mymaster\"; write host:port of its master or of another replica"
        ]
    );
    let itself = group("    replicas:\n      - {host: a, port: 6380, of: 6380}\n");
    assert_eq!(
        errors(&itself),
        vec![
            "t.yaml:9:35: error: groups[0].replicas[0].of: a replica cannot replicate from itself"
        ]
    );
}

#[test]
fn group_names_must_suit_sentinel_and_be_unique() {
    let src = format!(
        "{HEAD}groups:\n  - name: \"my master\"\n    master: {{host: a, port: 6379}}\n  - name: \"my master\"\n    master: {{host: a, port: 6390}}\n"
    );
    let e = errors(&src);
    assert!(
        e.iter()
            .any(|m| m.contains("groups[0].name: invalid group name \"my master\"")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m
                .contains("groups[1].name: duplicate group name \"my master\" (also groups[0])")),
        "{e:?}"
    );
}

#[test]
fn min_replicas_to_write_cannot_exceed_direct_replicas() {
    let src = group("    replicas:\n      - {host: a, port: 6380}\n    min_replicas_to_write: 2\n");
    assert_eq!(
        errors(&src),
        vec![
            "t.yaml:10:28: error: groups[0].min_replicas_to_write: 2 replicas required for writes, but only 1 replicate directly from the master; the master would refuse every write"
        ]
    );
}

#[test]
fn ports_collide_across_cluster_groups_and_sentinels() {
    let src = format!(
        "{HEAD}cluster:\n  shards: 3\n  replicas: 0\n  ports: [7000, 7001, 7002]\ngroups:\n  - name: g\n    master: {{host: a, port: 17000}}\nsentinel:\n  instances:\n    - {{host: a, port: 7001}}\n  quorum: 1\n"
    );
    let e = errors(&src);
    assert!(e.iter().any(|m| m.contains("groups[0].master.port: port 17000 on host \"a\" is the cluster bus port of the master of shard 1 (from cluster.ports) (7000 + 10000)")), "{e:?}");
    assert!(
        e.iter()
            .any(|m| m
                .contains("sentinel.instances[0].port: duplicate a:7001 (also the master of shard 2 (from cluster.ports))")),
        "{e:?}"
    );
}

#[test]
fn sentinel_quorum_and_count_rules() {
    let base = group("    replicas:\n      - {host: a, port: 6380}\n");
    let sentinels = |n: usize, quorum: u32| {
        let mut s = format!("{base}sentinel:\n  instances:\n");
        for i in 0..n {
            s.push_str(&format!("    - {{host: a, port: {}}}\n", 26379 + i));
        }
        s.push_str(&format!("  quorum: {quorum}\n"));
        s
    };
    let e = errors(&sentinels(3, 4));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].ends_with(
            "sentinel.quorum: quorum 4 must be between 1 and the number of Sentinels (3)"
        ),
        "{e:?}"
    );
    assert!(errors(&sentinels(3, 0))[0].contains("quorum 0 must be between 1"));

    let warn = |src: &str| -> Vec<String> {
        diags(src)
            .into_iter()
            .filter(|d| d.severity == Severity::Warning)
            .map(|d| d.message)
            .collect()
    };
    assert!(warn(&sentinels(2, 2))[0].starts_with("2 Sentinel(s): with fewer than 3"));
    assert!(
        warn(&sentinels(4, 3))[0]
            .starts_with("4 Sentinels: an even number tolerates no more failures than 3")
    );
    assert!(warn(&sentinels(3, 2)).is_empty());

    let no_groups = format!(
        "{HEAD}cluster:\n  shards: 3\n  replicas: 0\n  ports: 7000-7002\nsentinel:\n  instances:\n    - {{host: a, port: 26379}}\n  quorum: 1\n"
    );
    assert!(errors(&no_groups).iter().any(|m| m.ends_with(
        "sentinel: Sentinels monitor replication `groups`, and this topology has none"
    )));
}

#[test]
fn spread_over_hosts_is_advised() {
    let src = "name: t\nhosts:\n  - {name: a, address: 10.0.0.1}\n  - {name: b, address: 10.0.0.2}\n  - {name: c, address: 10.0.0.3}\n\
               auth: {password_file: pw}\n\
               groups:\n  - name: g\n    master: {host: a, port: 6379}\n    replicas:\n      - {host: a, port: 6380}\n\
               sentinel:\n  instances:\n    - {host: b, port: 26379}\n    - {host: b, port: 26380}\n    - {host: c, port: 26379}\n  quorum: 2\n";
    let w: Vec<String> = diags(src).into_iter().map(|d| d.to_string()).collect();
    assert!(
        w.iter().any(|m| m
            .contains("warning: groups[0].replicas[0]: replica is on host \"a\" with its master")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|m| m.contains("warning: sentinel.instances: several Sentinels share a host")),
        "{w:?}"
    );
}

#[test]
fn exposed_sentinels_need_a_password() {
    let src = "name: t\nhosts:\n  - {name: a, address: 10.0.0.1}\n\
               defaults: {config: {protected-mode: \"no\"}}\n\
               groups:\n  - name: g\n    master: {host: a, port: 6379}\n\
               sentinel:\n  instances:\n    - {host: a, port: 26379}\n  quorum: 1\n";
    let e = errors(src);
    assert!(e.iter().any(|m| m.ends_with("sentinel.instances[0]: a Sentinel listening beyond loopback needs auth.password_file (it can reconfigure every master it watches)")), "{e:?}");
}
