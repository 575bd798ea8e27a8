//! Validation rules of the topology, each with its exact message and place.

use std::path::Path;

use super::{Severity, parse};
use crate::topology::raw::{DurationValue, SizeValue};
use crate::topology::validate::{parse_duration_ms, parse_size};

const HOSTS: &str = "name: t\nhosts:\n  - name: a\n    address: 127.0.0.1\n";

fn all(src: &str) -> Vec<String> {
    match parse(src, "t.yaml", Path::new(".")) {
        Ok(l) => l.warnings.iter().map(ToString::to_string).collect(),
        Err(e) => e.diagnostics.iter().map(ToString::to_string).collect(),
    }
}

fn errors(src: &str) -> Vec<String> {
    match parse(src, "t.yaml", Path::new(".")) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(ToString::to_string)
            .collect(),
    }
}

fn cluster(body: &str) -> String {
    format!("{HOSTS}cluster:\n{body}")
}

#[test]
fn shipped_local_cluster_is_the_seeds_layout() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let l = super::load(&dir.join("local-cluster.yaml")).unwrap();
    let t = &l.topology;
    let c = t.cluster.as_ref().unwrap();
    assert_eq!(c.shards.len(), 3);
    assert_eq!(c.settings.node_timeout_ms, 5000);
    let ports: Vec<(u16, u16)> = c
        .shards
        .iter()
        .map(|s| (s.master.port, s.replicas[0].port))
        .collect();
    assert_eq!(ports, vec![(7000, 7001), (7002, 7003), (7004, 7005)]);
    assert!(t.instances().all(|i| i.settings.persistence.appendonly));
    assert!(
        l.warnings
            .iter()
            .all(|w| w.message.contains("with its master")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn syntax_errors_and_unknown_fields_are_located() {
    let e = errors(&format!("{HOSTS}clustr:\n  shards: 3\n"));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("t.yaml:5:1: error: unknown field `clustr`"),
        "{e:?}"
    );
    let e = errors("name: t\nhosts: [\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("t.yaml:"), "{e:?}");
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let src = "version: 2\nname: \"bad name\"\nhosts:\n  - name: a\n    address: nope\n\
               cluster:\n  shards: 2\n  replicas: 0\n  ports: [7000, 70000]\n  node_timeout: 0\n";
    let e = errors(src);
    assert_eq!(
        e,
        vec![
            "t.yaml:1:10: error: version: unsupported version 2; this redisctl reads version 1",
            "t.yaml:2:7: error: name: invalid deployment name \"bad name\": use 1-64 letters, digits, '-', '_' or '.', not starting with '.'",
            "t.yaml:5:14: error: hosts[0].address: \"nope\" is not an IP address",
            "t.yaml:9:17: error: cluster.ports[1]: port 70000 is outside 1-55535 (the cluster bus port, port + 10000, must fit)",
            "t.yaml:10:17: error: cluster.node_timeout: must be greater than 0",
        ]
    );
}

#[test]
fn hosts_rules() {
    assert_eq!(
        errors("name: t\nhosts: []\ncluster: {shards: 3, ports: 7000-7005}\n")[0],
        "t.yaml:2:8: error: hosts: at least one host is required"
    );
    let dup = "name: t\nhosts:\n  - {name: a, address: 10.0.0.1}\n  - {name: a, address: 10.0.0.1}\ncluster: {shards: 3, replicas: 0, ports: 7000-7005}\nauth: {password_file: p}\n";
    let e = errors(dup);
    assert!(
        e.contains(
            &"t.yaml:4:12: error: hosts[1].name: duplicate host name \"a\" (also hosts[0])"
                .to_string()
        ),
        "{e:?}"
    );
    assert!(
        e.contains(
            &"t.yaml:4:24: error: hosts[1].address: address 10.0.0.1 is also used by hosts[0]"
                .to_string()
        ),
        "{e:?}"
    );
}

#[test]
fn cluster_shape_rules() {
    assert_eq!(
        errors(&cluster("  shards: 2\n  ports: 7000-7005\n")),
        vec![
            "t.yaml:6:11: error: cluster.shards: Redis Cluster needs at least 3 masters; this topology declares 2"
        ]
    );
    assert_eq!(
        errors(&cluster("  ports: 7000-7005\n")),
        vec![
            "t.yaml:6:3: error: cluster: missing field `shards` (or give an explicit `nodes` list)"
        ]
    );
    assert_eq!(
        errors(&cluster("  shards: 3\n")),
        vec![
            "t.yaml:6:3: error: cluster: missing field `ports` (a range like \"7000-7005\" or a list)"
        ]
    );
    assert_eq!(
        errors(&cluster("  shards: 3\n  ports: 7005-7000\n")),
        vec![
            "t.yaml:7:10: error: cluster.ports: \"7005-7000\" is not a port range; write \"7000-7005\" or a list [7000, 7001]"
        ]
    );
    assert_eq!(
        errors(&cluster("  shards: 3\n  replicas: 1\n  ports: 7000-7003\n")),
        vec![
            "t.yaml:8:10: error: cluster.ports: 3 shards x 2 nodes need 6 ports per host on 1 host(s); only 4 given"
        ]
    );
    let both = errors(&cluster(
        "  shards: 3\n  nodes:\n    - {host: a, port: 7000, shard: 1, role: master}\n",
    ));
    assert!(both.iter().any(|e| e.ends_with("cluster.shards: cannot be combined with cluster.nodes: use either an explicit node list or shards/replicas/ports")), "{both:?}");
}

#[test]
fn explicit_node_rules() {
    let node = |host: &str, port: u32, shard: u32, role: &str| {
        format!("    - {{host: {host}, port: {port}, shard: {shard}, role: {role}}}\n")
    };
    let nodes = |body: String| {
        format!(
            "name: t\nhosts:\n  - {{name: a, address: 10.0.0.1}}\n  - {{name: b, address: 10.0.0.2}}\nauth: {{password_file: p}}\ncluster:\n  nodes:\n{body}"
        )
    };
    let ok = [
        node("a", 7000, 1, "master"),
        node("b", 7001, 1, "replica"),
        node("b", 7000, 2, "master"),
        node("a", 7001, 2, "replica"),
        node("a", 7002, 3, "master"),
        node("b", 7002, 3, "replica"),
    ]
    .concat();
    assert!(errors(&nodes(ok.clone())).is_empty());

    let e = errors(&nodes(ok.clone() + &node("c", 7003, 3, "replica")));
    assert_eq!(
        e,
        vec!["t.yaml:14:14: error: cluster.nodes[6].host: unknown host \"c\"; hosts are: a, b"]
    );
    let e = errors(&nodes(ok.clone() + &node("a", 7000, 2, "replica")));
    assert_eq!(
        e,
        vec![
            "t.yaml:14:23: error: cluster.nodes[6].port: duplicate a:7000 (also cluster.nodes[0])"
        ]
    );
    let e = errors(&nodes(ok.clone() + &node("a", 17001, 2, "replica")));
    assert_eq!(
        e,
        vec![
            "t.yaml:14:23: error: cluster.nodes[6].port: port 17001 on host \"a\" is the cluster bus port of cluster.nodes[3] (7001 + 10000)"
        ]
    );
    let e = errors(&nodes(ok.clone() + &node("b", 7009, 3, "master")));
    assert_eq!(
        e,
        vec![
            "t.yaml:12:7: error: cluster.nodes[4]: shard 3 has 2 masters; each shard needs exactly one node with role: master"
        ]
    );
    let e = errors(&nodes(ok.clone() + &node("a", 7009, 5, "master")));
    assert!(
        e.iter()
            .any(|m| m.contains("shards must be numbered 1..4 without gaps; shard 4 is missing")),
        "{e:?}"
    );
    let e = errors(&nodes(ok.replace(
        "{host: b, port: 7001, shard: 1, role: replica}",
        "{host: a, port: 7003, shard: 1, role: replica}",
    )));
    assert_eq!(
        e,
        vec![
            "t.yaml:9:14: error: cluster.nodes[1].host: replica of shard 1 is on host \"a\" with its master; place it on another host so one host failure cannot take the whole shard"
        ]
    );
    let e = errors(&nodes(node("a", 7000, 0, "master")));
    assert!(
        e.iter()
            .any(|m| m.contains("cluster.nodes[0].shard: shards are numbered from 1")),
        "{e:?}"
    );
}

#[test]
fn generated_placement_on_fewer_hosts_than_replicas_warns() {
    let src = "name: t\nhosts:\n  - {name: a, address: 10.0.0.1}\n  - {name: b, address: 10.0.0.2}\nauth: {password_file: p}\ncluster: {shards: 3, replicas: 2, ports: 7000-7009}\n";
    let w = all(src);
    assert!(
        !w.is_empty()
            && w.iter()
                .all(|m| m.contains(": warning: cluster.shards: replica of shard")),
        "{w:?}"
    );
}

#[test]
fn instance_setting_rules() {
    let with = |defaults: &str| {
        format!(
            "{HOSTS}defaults:\n{defaults}cluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n"
        )
    };
    assert_eq!(
        errors(&with("  maxmemory: 12xb\n")),
        vec![
            "t.yaml:6:14: error: defaults.maxmemory: \"12xb\" is not a size; write bytes or a number with kb, mb, gb"
        ]
    );
    assert_eq!(
        errors(&with("  maxmemory_policy: lru\n")),
        vec![
            "t.yaml:6:21: error: defaults.maxmemory_policy: unknown policy \"lru\"; one of: noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl"
        ]
    );
    assert_eq!(
        errors(&with(
            "  persistence:\n    save: [\"3600\", \"a b\", \"0 1\", \"60 10\"]\n"
        )),
        vec![
            "t.yaml:7:12: error: defaults.persistence.save[0]: \"3600\" is not a save rule; write \"SECONDS CHANGES\" with positive numbers, e.g. \"3600 1\"",
            "t.yaml:7:20: error: defaults.persistence.save[1]: \"a b\" is not a save rule; write \"SECONDS CHANGES\" with positive numbers, e.g. \"3600 1\"",
            "t.yaml:7:27: error: defaults.persistence.save[2]: \"0 1\" is not a save rule; write \"SECONDS CHANGES\" with positive numbers, e.g. \"3600 1\"",
        ]
    );
    assert_eq!(
        errors(&with("  persistence: {auto_aof_rewrite_min_size: lots}\n")),
        vec![
            "t.yaml:6:44: error: defaults.persistence.auto_aof_rewrite_min_size: \"lots\" is not a size; write bytes or a number with kb, mb, gb"
        ]
    );
    assert_eq!(
        errors(&with("  bind: 127.0.0.1 localhost\n")),
        vec!["t.yaml:6:9: error: defaults.bind: \"localhost\" is not an IP address"]
    );
    assert_eq!(
        errors(&with(
            "  config:\n    appendonly: \"yes\"\n    port: 1\n    \"bad key\": 1\n    notify-keyspace-events: \"a\\nb\"\n"
        )),
        vec![
            "t.yaml:7:17: error: defaults.config.appendonly: \"appendonly\" is managed by redisctl and cannot be set in config; use persistence.appendonly",
            "t.yaml:8:11: error: defaults.config.port: \"port\" is managed by redisctl and cannot be set in config; use cluster.ports or cluster.nodes[].port",
            "t.yaml:9:16: error: defaults.config.bad key: \"bad key\" is not a redis.conf directive name",
            "t.yaml:10:29: error: defaults.config.notify-keyspace-events: value must be a single line without control characters",
        ]
    );
    // An empty save list turns RDB off; booleans in config render as yes/no.
    let l = parse(
        &with("  persistence: {save: []}\n  config: {lazyfree-lazy-eviction: true}\n"),
        "t.yaml",
        Path::new("."),
    )
    .unwrap();
    let i = l.topology.instances().next().unwrap();
    assert!(i.settings.persistence.save.is_empty());
    assert_eq!(i.settings.extra["lazyfree-lazy-eviction"], "yes");
}

#[test]
fn node_overrides_win_field_by_field() {
    let src = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\n\
               defaults:\n  maxmemory: 1gb\n  persistence: {appendonly: true, appendfsync: everysec}\n  config: {hz: 20, tcp-keepalive: 60}\n\
               cluster:\n  nodes:\n\
               \x20   - {host: a, port: 7000, shard: 1, role: master, persistence: {appendfsync: always}, config: {hz: 50}}\n\
               \x20   - {host: a, port: 7001, shard: 2, role: master}\n\
               \x20   - {host: a, port: 7002, shard: 3, role: master}\n";
    let l = parse(src, "t.yaml", Path::new(".")).unwrap();
    let first = l.topology.instances().next().unwrap();
    let p = &first.settings.persistence;
    assert!(p.appendonly, "appendonly inherited");
    assert_eq!(p.appendfsync.as_str(), "always");
    assert_eq!(first.settings.maxmemory, Some(1 << 30));
    assert_eq!(first.settings.extra["hz"], "50");
    assert_eq!(first.settings.extra["tcp-keepalive"], "60");
}

#[test]
fn exposure_without_a_password_is_a_decision() {
    let src = "name: t\nhosts:\n  - {name: a, address: 10.0.0.1}\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\n";
    let e = errors(src);
    assert_eq!(e.len(), 3, "one per instance: {e:?}");
    assert!(e[0].ends_with("a:7000 listens on a non-loopback address without a password; set auth.password_file, or say config: {protected-mode: \"no\"} to serve it unauthenticated on purpose"), "{e:?}");
    let decided = src.replace(
        "cluster:",
        "defaults: {config: {protected-mode: \"no\"}}\ncluster:",
    );
    assert!(errors(&decided).is_empty());
}

#[test]
fn sizes_and_durations() {
    assert_eq!(
        parse_size(&SizeValue::Text("64mb".into())),
        Ok(64 * 1024 * 1024)
    );
    assert_eq!(parse_size(&SizeValue::Text("1GB".into())), Ok(1 << 30));
    assert_eq!(parse_size(&SizeValue::Bytes(100)), Ok(100));
    assert!(parse_size(&SizeValue::Text("1.5gb".into())).is_err());
    assert_eq!(
        parse_duration_ms(&DurationValue::Text("5s".into())),
        Ok(5000)
    );
    assert_eq!(
        parse_duration_ms(&DurationValue::Text("250ms".into())),
        Ok(250)
    );
    assert_eq!(
        parse_duration_ms(&DurationValue::Text("2m".into())),
        Ok(120_000)
    );
    assert_eq!(parse_duration_ms(&DurationValue::Millis(15000)), Ok(15000));
    assert!(parse_duration_ms(&DurationValue::Text("5 hours".into())).is_err());
}
