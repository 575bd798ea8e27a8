//! Validation rules of the topology (cluster side), each with its exact message, field path and
//! line:column. Groups and Sentinels are covered by `group_tests.rs`.
//!
//! Positions are 1-based and point at the value of the field (a missing field: at the mapping
//! that should hold it; a serde error: where the parser stopped).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::validate::{
    MANAGED_DIRECTIVES, MAX_PORT, MAXMEMORY_POLICIES, parse_duration_ms, parse_size,
};
use super::{
    AgentListen, ClusterSettings, Diagnostic, Fsync, Loaded, Persistence, Role, Severity,
    TopologyError, parse,
};
use crate::topology::raw::{DurationValue, SizeValue};

/// One host on loopback: lines 1-4.
const HOSTS: &str = "name: t\nhosts:\n  - name: a\n    address: 127.0.0.1\n";

/// The same problem text for every port out of range of a cluster node.
const OUT_OF_RANGE: &str = "is outside 1-55535 (the cluster bus port, port + 10000, must fit)";

fn run(src: &str) -> Result<Loaded, TopologyError> {
    parse(src, "t.yaml", Path::new("."))
}

fn diags(src: &str) -> Vec<Diagnostic> {
    match run(src) {
        Ok(l) => l.warnings,
        Err(e) => e.diagnostics,
    }
}

/// Every diagnostic, errors and warnings, as printed.
fn all(src: &str) -> Vec<String> {
    diags(src).iter().map(ToString::to_string).collect()
}

/// The errors of a topology that must be refused.
fn errors(src: &str) -> Vec<String> {
    match run(src) {
        Ok(l) => panic!("accepted, warnings {:?}:\n{src}", l.warnings),
        Err(e) => e
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(ToString::to_string)
            .collect(),
    }
}

/// A topology that must be accepted without any warning.
fn clean(src: &str) -> Loaded {
    match run(src) {
        Ok(l) => {
            assert!(l.warnings.is_empty(), "{:?}\n{src}", l.warnings);
            l
        }
        Err(e) => panic!("{e}\n{src}"),
    }
}

/// `HOSTS` then a block `cluster:` mapping whose body starts on line 6.
fn cluster(body: &str) -> String {
    format!("{HOSTS}cluster:\n{body}")
}

/// `HOSTS`, a `defaults:` mapping whose body starts on line 6, and 3 masters on 7000-7002.
fn with_defaults(defaults: &str) -> String {
    format!("{HOSTS}defaults:\n{defaults}cluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n")
}

/// A valid topology named `name` (the value starts at 1:7).
fn named(name: &str) -> String {
    format!(
        "name: {name}\nhosts:\n  - {{name: a, address: 127.0.0.1}}\ncluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n"
    )
}

/// One explicit node on one line: host at column 14, port at 23 (one-letter host), shard at 36
/// (four-digit port), the node mapping itself at 7.
fn node(host: &str, port: u32, shard: u32, role: &str) -> String {
    format!("    - {{host: {host}, port: {port}, shard: {shard}, role: {role}}}\n")
}

/// Hosts a and b (not loopback, so with auth), then `cluster.nodes`; node i is on line 8 + i.
fn nodes(body: &str) -> String {
    format!(
        "name: t\nhosts:\n  - {{name: a, address: 10.0.0.1}}\n  - {{name: b, address: 10.0.0.2}}\nauth: {{password_file: p}}\ncluster:\n  nodes:\n{body}"
    )
}

/// Three shards over a and b, every replica on the other host than its master.
fn six_nodes() -> String {
    [
        node("a", 7000, 1, "master"),
        node("b", 7001, 1, "replica"),
        node("b", 7000, 2, "master"),
        node("a", 7001, 2, "replica"),
        node("a", 7002, 3, "master"),
        node("b", 7002, 3, "replica"),
    ]
    .concat()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// (shard, role, host, port) of every cluster instance, shard by shard, master first.
fn layout(l: &Loaded) -> Vec<(u32, Role, String, u16)> {
    l.topology
        .cluster_instances()
        .map(|i| (i.shard, i.role, i.key.host.clone(), i.port))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The shipped example

#[test]
fn shipped_local_cluster_is_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/local-cluster.yaml");
    let src = std::fs::read_to_string(&file).unwrap();
    let l = parse(&src, "local-cluster.yaml", file.parent().unwrap()).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let t = &l.topology;
    assert_eq!(t.name, "local-cluster");
    assert_eq!(t.hosts.len(), 1);
    assert_eq!(t.hosts[0].name, "local");
    assert_eq!(t.hosts[0].address, ip("127.0.0.1"));
    assert!(t.auth.is_none() && t.state_dir.is_none());
    assert!(t.groups.is_empty() && t.sentinel.is_none());

    let c = t.cluster.as_ref().unwrap();
    assert_eq!(
        c.settings,
        ClusterSettings {
            node_timeout_ms: 5000,
            require_full_coverage: true,
            migration_barrier: 1,
            allow_replica_migration: false,
        }
    );
    assert_eq!(c.shards.len(), 3);
    assert_eq!(t.instances().count(), 6);
    // Generated placement is shard-major (growing `shards` only appends nodes): each master is
    // followed by its replica on the next port of the one host. NB: docs/topology.md describes
    // the redis-cli layout (masters on 7000-7002, replica of shard 1 on 7003) instead; the code,
    // redisctl-topology(5), docs/operations.md and the integration tests use this one.
    let local = || "local".to_string();
    assert_eq!(
        layout(&l),
        vec![
            (1, Role::Master, local(), 7000),
            (1, Role::Replica, local(), 7001),
            (2, Role::Master, local(), 7002),
            (2, Role::Replica, local(), 7003),
            (3, Role::Master, local(), 7004),
            (3, Role::Replica, local(), 7005),
        ]
    );
    for i in t.instances() {
        assert_eq!(i.address, ip("127.0.0.1"));
        assert_eq!(i.settings.bind, vec![ip("127.0.0.1")]);
        assert_eq!(
            i.settings.persistence,
            Persistence {
                save: vec![(3600, 1), (300, 100), (60, 10000)],
                appendonly: true,
                appendfsync: Fsync::Everysec,
                auto_aof_rewrite_percentage: 100,
                auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            }
        );
        assert_eq!(i.settings.maxmemory, None);
        assert_eq!(i.settings.maxmemory_policy, None);
        assert!(i.settings.extra.is_empty());
    }
    // `load` reads the same file to the same model.
    let loaded = super::load(&file).unwrap();
    assert_eq!(layout(&loaded), layout(&l));
}

// ---------------------------------------------------------------------------------------------
// serde: syntax, unknown fields, types

#[test]
fn yaml_syntax_error_is_one_located_diagnostic() {
    let d = diags("name: t\nhosts: [\n");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].to_string(), "t.yaml:2:8: error: unclosed bracket '['");
    assert_eq!((d[0].line, d[0].column), (Some(2), Some(8)));
    assert_eq!(d[0].severity, Severity::Error);
    assert_eq!(d[0].path, "");

    assert_eq!(
        errors("name: t\n  bad: : indent\n"),
        vec!["t.yaml:2:6: error: mapping values are not allowed in this context"]
    );
}

#[test]
fn unknown_fields_are_refused_naming_the_field() {
    assert_eq!(
        errors(&format!("{HOSTS}clustr:\n  shards: 3\n")),
        vec![
            "t.yaml:5:1: error: unknown field `clustr`; expected one of version, name, state_dir, hosts, defaults, auth, cluster, groups, sentinel, agent, tls"
        ]
    );
    assert_eq!(
        errors(&format!(
            "{HOSTS}    addr: x\ncluster: {{shards: 3, ports: 7000-7005}}\n"
        )),
        vec![
            "t.yaml:5:5: error: hosts[0]: unknown field `addr`; expected one of name, address, zone, tls"
        ]
    );
    assert_eq!(
        errors(&cluster("  shards: 3\n  replica: 1\n")),
        vec![
            "t.yaml:7:3: error: cluster: unknown field `replica`; expected one of shards, replicas, ports, nodes, node_timeout, require_full_coverage, migration_barrier, allow_replica_migration, weights"
        ]
    );
    assert_eq!(
        errors(&cluster(
            "  nodes:\n    - {host: a, port: 7000, shard: 1, role: master, weight: 2}\n"
        )),
        vec![
            "t.yaml:7:53: error: cluster.nodes[0]: unknown field `weight`; expected one of host, port, shard, role, bind, persistence, maxmemory, maxmemory_policy, config"
        ]
    );
    assert_eq!(
        errors(&with_defaults("  persistence:\n    aof: true\n")),
        vec![
            "t.yaml:7:5: error: defaults.persistence: unknown field `aof`; expected one of save, appendonly, appendfsync, auto_aof_rewrite_percentage, auto_aof_rewrite_min_size"
        ]
    );
}

#[test]
fn wrong_types_and_missing_required_fields_are_described_in_topology_terms() {
    assert_eq!(
        errors("hosts: []\n"),
        vec!["t.yaml:1:1: error: missing field `name`"]
    );
    assert_eq!(
        errors("version: -1\nname: t\nhosts: []\n"),
        vec![
            "t.yaml:1:1: error: version: expected a whole number, not negative, found the number -1"
        ]
    );
    assert_eq!(
        errors(&with_defaults("  persistence: {appendfsync: sometimes}\n")),
        vec![
            "t.yaml:6:30: error: defaults.persistence.appendfsync: \"sometimes\" is not allowed here; write one of always, everysec, no"
        ]
    );
    assert_eq!(
        errors(&with_defaults("  maxmemory: -1\n")),
        vec![
            "t.yaml:6:3: error: defaults.maxmemory: expected a size (bytes, or a number with kb, mb, gb: e.g. 64mb), found the number -1"
        ]
    );
    assert_eq!(
        errors("name: t\nhosts:\n  - name: a\n"),
        vec!["t.yaml:3:5: error: hosts[0]: missing field `address`"]
    );
}

/// Issue #11 item 8: `replicas: "1"`, `require_full_coverage: "no"` and `!int 3` were read as
/// 1, false and 3.
#[test]
fn types_are_strict_quoted_numbers_and_booleans_and_tags_are_refused() {
    let c = |body: &str| {
        errors(&cluster(&format!(
            "  shards: 3\n  ports: 7000-7005\n{body}"
        )))
    };
    assert_eq!(
        c("  replicas: \"1\"\n"),
        vec!["t.yaml:8:3: error: cluster.replicas: expected a whole number, found the text \"1\""]
    );
    assert_eq!(
        c("  require_full_coverage: \"no\"\n"),
        vec![
            "t.yaml:8:3: error: cluster.require_full_coverage: expected true or false, found the text \"no\""
        ]
    );
    // YAML 1.1 spellings are not booleans either.
    assert_eq!(
        c("  allow_replica_migration: yes\n"),
        vec![
            "t.yaml:8:3: error: cluster.allow_replica_migration: expected true or false, found the text \"yes\""
        ]
    );
    assert_eq!(
        c("  migration_barrier: 1.5\n"),
        vec![
            "t.yaml:8:3: error: cluster.migration_barrier: expected a whole number, found the number 1.5"
        ]
    );
    assert_eq!(
        errors(&cluster("  shards: !int 3\n  ports: 7000-7005\n")),
        vec![
            "t.yaml:6:16: error: cluster.shards: the tag \"!int\" is not allowed; write plain values without `!` tags"
        ]
    );
    assert_eq!(
        errors(&cluster("  shards: !!str 3\n  ports: 7000-7005\n")),
        vec![
            "t.yaml:6:17: error: cluster.shards: the tag \"!!str\" is not allowed; write plain values without `!` tags"
        ]
    );
    assert_eq!(
        errors(&cluster("  shards: 3\n  ports: 7000\n")),
        vec![
            "t.yaml:7:3: error: cluster.ports: expected a port range like \"7000-7005\" or a list of ports, found the number 7000"
        ]
    );
    assert_eq!(
        errors(&cluster("  shards: 3\n  ports: [7000, \"7001\"]\n")),
        vec![
            "t.yaml:7:17: error: cluster.ports[1]: expected a whole number, found the text \"7001\""
        ]
    );
    // A `config` value keeps its text: `no` is not turned into a boolean and back.
    let l = clean(&with_defaults(
        "  config: {lazyfree-lazy-eviction: no, hz: 20}\n",
    ));
    let settings = &l.topology.cluster.unwrap().shards[0].master.settings;
    assert_eq!(settings.extra["lazyfree-lazy-eviction"], "no");
    assert_eq!(settings.extra["hz"], "20");
}

/// Issue #11 item 9: the parser's wording (`invalid u32`, `untagged enum SizeValue`,
/// `DuplicateKeyPolicy`, `from_str_multiple`, `budget breached`, `unknown variant`) leaked.
#[test]
fn library_wording_never_reaches_the_user() {
    let deep = format!("name: t\nhosts: {}{}\n", "[".repeat(200), "]".repeat(200));
    // Only `config` values are untyped enough to let nesting go deep before a type error.
    let deep_any = format!(
        "name: t\nhosts: []\nstate_dir: x\ndefaults:\n  config:\n    x: {}1{}\n",
        "[".repeat(100),
        "]".repeat(100)
    );
    let many = format!(
        "name: t\nhosts: []\ncluster: {{weights: [{}]}}\n",
        "0,".repeat(260_000)
    );
    let cases = [
        ("version: -1\nname: t\nhosts: []\n", "not negative"),
        (
            "version: 99999999999\nname: t\nhosts: []\n",
            "up to 4294967295",
        ),
        ("name: t\nname: u\nhosts: []\n", "duplicate key `name`"),
        (
            "name: t\nhosts: []\n---\nname: u\n",
            "more than one YAML document",
        ),
        (deep.as_str(), "expected a mapping"),
        (deep_any.as_str(), "expected a single value"),
        (many.as_str(), "too large"),
        ("name: [1]\nhosts: []\n", "expected text"),
        ("name: t\nhosts: {}\n", "expected a list"),
        ("name: t\nhosts: [1]\n", "expected a mapping"),
        (
            "name: t\nhosts: []\ndefaults: {maxmemory: {a: 1}}\n",
            "expected a size",
        ),
        (
            "name: t\nhosts: []\ndefaults: {config: {x: [1]}}\n",
            "expected a single value",
        ),
        (
            "name: t\nhosts: []\ncluster: {node_timeout: true}\n",
            "expected a duration",
        ),
        (
            "name: t\nhosts: []\ncluster: {nodes: [{role: boss}]}\n",
            "is not allowed here",
        ),
        ("name: t\nhosts: []\na: &x [*x]\n", ""),
        ("name: t\nhosts: *nope\n", ""),
        ("", ""),
    ];
    let banned = [
        "serde",
        "saphyr",
        "variant",
        "untagged",
        "DuplicateKeyPolicy",
        "Options",
        "from_str",
        "budget",
        "Nodes {",
        "u32",
        "u64",
        "i64",
        "struct ",
        "enum ",
    ];
    for (src, want) in cases {
        let e = errors(src);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains(want), "{want:?} not in {e:?}");
        for word in banned {
            assert!(!e[0].contains(word), "{word:?} in {e:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Top level: version, name, hosts, state_dir, auth

#[test]
fn only_version_1_is_read() {
    let v2 = format!("version: 2\n{}", named("t"));
    assert_eq!(
        errors(&v2),
        vec!["t.yaml:1:10: error: version: unsupported version 2; this redisctl reads version 1"]
    );
    clean(&format!("version: 1\n{}", named("t")));
    clean(&named("t"));
}

#[test]
fn deployment_name_rules() {
    for bad in [
        "\"bad name\"",
        "\".hidden\"",
        "\"\"",
        "a/b",
        &"x".repeat(65),
    ] {
        let shown = format!("{:?}", bad.trim_matches('"'));
        assert_eq!(
            errors(&named(bad)),
            vec![format!(
                "t.yaml:1:7: error: name: invalid deployment name {shown}: use 1-64 letters, digits, '-', '_' or '.', not starting with '.'"
            )],
            "{bad}"
        );
    }
    for good in ["prod-1_a.b", "x.", &"x".repeat(64)] {
        assert_eq!(clean(&named(good)).topology.name, good);
    }
}

#[test]
fn at_least_one_host() {
    assert_eq!(
        errors("name: t\nhosts: []\ncluster: {shards: 3, ports: 7000-7005}\n"),
        vec!["t.yaml:2:8: error: hosts: at least one host is required"]
    );
}

#[test]
fn host_names_are_valid_and_unique() {
    assert_eq!(
        errors(
            "name: t\nhosts:\n  - {name: \".a\", address: 127.0.0.1}\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\n"
        ),
        vec![
            "t.yaml:3:12: error: hosts[0].name: invalid host name \".a\": use letters, digits, '-', '_' or '.'"
        ]
    );
    let dup = "name: t\nhosts:\n  - {name: a, address: 10.0.0.1}\n  - {name: a, address: 10.0.0.2}\nauth: {password_file: p}\ncluster: {shards: 3, replicas: 0, ports: 7000-7005}\n";
    assert_eq!(
        errors(dup),
        vec!["t.yaml:4:12: error: hosts[1].name: duplicate host name \"a\" (also hosts[0])"]
    );
}

#[test]
fn host_addresses_are_ips_and_unique() {
    let dup = "name: t\nhosts:\n  - {name: a, address: 10.0.0.1}\n  - {name: b, address: 10.0.0.1}\nauth: {password_file: p}\ncluster: {shards: 3, replicas: 0, ports: 7000-7005}\n";
    assert_eq!(
        errors(dup),
        vec!["t.yaml:4:24: error: hosts[1].address: address 10.0.0.1 is also used by hosts[0]"]
    );
    // The same address spelled two ways is still the same address.
    let v6 = "name: t\nhosts:\n  - name: a\n    address: \"::1\"\n  - name: b\n    address: \"0:0:0:0:0:0:0:1\"\ncluster: {shards: 3, replicas: 0, ports: 7000-7005}\n";
    assert_eq!(
        errors(v6),
        vec!["t.yaml:6:14: error: hosts[1].address: address ::1 is also used by hosts[0]"]
    );
    // Not an IP: one error, not also a "listens on a non-loopback address" per instance.
    let name = format!(
        "{}cluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n",
        HOSTS.replace("127.0.0.1", "localhost")
    );
    assert_eq!(
        errors(&name),
        vec!["t.yaml:4:14: error: hosts[0].address: \"localhost\" is not an IP address"]
    );
}

#[test]
fn state_dir_and_password_file_resolve_against_the_file() {
    let src = "name: t\nstate_dir: \" \"\nauth: {password_file: \"\"}\nhosts:\n  - {name: a, address: 127.0.0.1}\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\n";
    assert_eq!(
        errors(src),
        vec![
            "t.yaml:2:12: error: state_dir: must not be empty",
            "t.yaml:3:23: error: auth.password_file: must not be empty",
        ]
    );
    let src = "name: t\nstate_dir: state\nauth: {password_file: pw}\nhosts:\n  - {name: a, address: 127.0.0.1}\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\n";
    let l = parse(src, "t.yaml", Path::new("/etc/redisctl")).unwrap();
    assert_eq!(
        l.topology.state_dir,
        Some(PathBuf::from("/etc/redisctl/state"))
    );
    assert_eq!(
        l.topology.auth.unwrap().password_files,
        [PathBuf::from("/etc/redisctl/pw")]
    );
    let abs = src.replace("state_dir: state", "state_dir: /srv/t");
    let l = parse(&abs, "t.yaml", Path::new("/etc/redisctl")).unwrap();
    assert_eq!(l.topology.state_dir, Some(PathBuf::from("/srv/t")));
}

// ---------------------------------------------------------------------------------------------
// cluster: shape, ports, placement

#[test]
fn a_deployment_needs_a_cluster() {
    assert_eq!(
        errors(HOSTS),
        vec![
            "t.yaml:1:1: error: cluster: nothing to deploy: add a `cluster` section or replication `groups`"
        ]
    );
}

#[test]
fn nodes_cannot_be_combined_with_generated_fields() {
    let src = cluster(&format!(
        "  shards: 3\n  replicas: 1\n  ports: 7000-7005\n  nodes:\n{}{}{}",
        node("a", 7000, 1, "master"),
        node("a", 7001, 2, "master"),
        node("a", 7002, 3, "master"),
    ));
    let why = "cannot be combined with cluster.nodes: use either an explicit node list or shards/replicas/ports";
    assert_eq!(
        errors(&src),
        vec![
            format!("t.yaml:6:11: error: cluster.shards: {why}"),
            format!("t.yaml:7:13: error: cluster.replicas: {why}"),
            format!("t.yaml:8:10: error: cluster.ports: {why}"),
        ]
    );
}

#[test]
fn generated_placement_needs_shards_and_ports() {
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
}

#[test]
fn port_range_text_must_be_low_dash_high() {
    for bad in ["abc", "7005-7000", "7000-", "7000..7005", "-7000"] {
        assert_eq!(
            errors(&cluster(&format!(
                "  shards: 3\n  replicas: 0\n  ports: \"{bad}\"\n"
            ))),
            vec![format!(
                "t.yaml:8:10: error: cluster.ports: \"{bad}\" is not a port range; write \"7000-7005\" or a list [7000, 7001]"
            )],
            "{bad}"
        );
    }
    // Spaces around the dash are fine.
    clean(&cluster(
        "  shards: 3\n  replicas: 0\n  ports: 7000 - 7002\n",
    ));
}

#[test]
fn ports_must_leave_room_for_the_bus_port() {
    assert_eq!(MAX_PORT, 55535);
    let gen_ports =
        |ports: &str| cluster(&format!("  shards: 3\n  replicas: 0\n  ports: {ports}\n"));
    // A list: each bad entry at its own place.
    assert_eq!(
        errors(&gen_ports("[0, 7001, 55536]")),
        vec![
            format!("t.yaml:8:11: error: cluster.ports[0]: port 0 {OUT_OF_RANGE}"),
            format!("t.yaml:8:20: error: cluster.ports[2]: port 55536 {OUT_OF_RANGE}"),
        ]
    );
    // A range: its bad ends, once each, at the range.
    assert_eq!(
        errors(&gen_ports("0-2")),
        vec![format!(
            "t.yaml:8:10: error: cluster.ports: port 0 {OUT_OF_RANGE}"
        )]
    );
    assert_eq!(
        errors(&gen_ports("55530-55540")),
        vec![format!(
            "t.yaml:8:10: error: cluster.ports: port 55540 {OUT_OF_RANGE}"
        )]
    );
    assert_eq!(
        errors(&gen_ports("0-70000")),
        vec![
            format!("t.yaml:8:10: error: cluster.ports: port 0 {OUT_OF_RANGE}"),
            format!("t.yaml:8:10: error: cluster.ports: port 70000 {OUT_OF_RANGE}"),
        ]
    );
    // A typo'd range is one error, not one per port (nor billions of ports in memory).
    assert_eq!(
        errors(&gen_ports("7000-700000")),
        vec![format!(
            "t.yaml:8:10: error: cluster.ports: port 700000 {OUT_OF_RANGE}"
        )]
    );
    assert_eq!(
        errors(&gen_ports("1-4000000000")),
        vec![format!(
            "t.yaml:8:10: error: cluster.ports: port 4000000000 {OUT_OF_RANGE}"
        )]
    );
    // The edges are allowed.
    clean(&gen_ports("55533-55535"));
    clean(&gen_ports("[1, 2, 3]"));
    // Explicit nodes: the same rule, at the node's port.
    let src = cluster(&format!(
        "  nodes:\n{}{}{}",
        node("a", 0, 1, "master"),
        node("a", 70000, 2, "master"),
        node("a", 55535, 3, "master"),
    ));
    assert_eq!(
        errors(&src),
        vec![
            format!("t.yaml:7:23: error: cluster.nodes[0].port: port 0 {OUT_OF_RANGE}"),
            format!("t.yaml:8:23: error: cluster.nodes[1].port: port 70000 {OUT_OF_RANGE}"),
        ]
    );
}

#[test]
fn generated_placement_needs_enough_ports_per_host() {
    assert_eq!(
        errors(&cluster("  shards: 3\n  replicas: 1\n  ports: 7000-7003\n")),
        vec![
            "t.yaml:8:10: error: cluster.ports: 3 shards x 2 nodes need 6 ports per host on 1 host(s); only 4 given"
        ]
    );
    let two = "name: t\nhosts:\n  - {name: a, address: 10.0.0.1}\n  - {name: b, address: 10.0.0.2}\nauth: {password_file: p}\ncluster: {shards: 3, replicas: 1, ports: [7000, 7001]}\n";
    assert_eq!(
        errors(two),
        vec![
            "t.yaml:6:42: error: cluster.ports: 3 shards x 2 nodes need 3 ports per host on 2 host(s); only 2 given"
        ]
    );
    clean(&two.replace("[7000, 7001]", "[7000, 7001, 7002]"));
}

#[test]
fn a_port_listed_twice_is_refused() {
    let e = errors(&cluster(
        "  shards: 3\n  replicas: 0\n  ports: [7000, 7000, 7001, 7002]\n",
    ));
    assert_eq!(
        e,
        vec![
            "t.yaml:8:17: error: cluster.ports[1]: port 7000 is listed twice (also cluster.ports[0])"
        ]
    );
}

#[test]
fn shard_and_replica_counts() {
    assert_eq!(
        errors(&cluster("  shards: 2\n  ports: 7000-7005\n")),
        vec![
            "t.yaml:6:11: error: cluster.shards: Redis Cluster needs at least 3 masters; this topology declares 2"
        ]
    );
    // `shards: 0` is refused too (it used to be accepted as a deployment with no cluster).
    assert_eq!(
        errors(&cluster("  shards: 0\n  ports: 7000-7005\n")),
        vec![
            "t.yaml:6:11: error: cluster.shards: Redis Cluster needs at least 3 masters; this topology declares 0"
        ]
    );
    assert_eq!(
        errors(&cluster("  shards: 1001\n  ports: 7000-7005\n")),
        vec!["t.yaml:6:11: error: cluster.shards: at most 1000 shards"]
    );
    assert_eq!(
        errors(&cluster(
            "  shards: 3\n  replicas: 21\n  ports: 7000-7005\n"
        )),
        vec!["t.yaml:7:13: error: cluster.replicas: at most 20 replicas per shard"]
    );
    // replicas defaults to 1; 0 is allowed.
    let l = clean(&cluster("  shards: 3\n  ports: 7000-7005\n"));
    assert_eq!(l.topology.instances().count(), 6);
    let l = clean(&cluster("  shards: 3\n  replicas: 0\n  ports: 7000-7002\n"));
    assert_eq!(l.topology.instances().count(), 3);
}

#[test]
fn generated_placement_spreads_shards_and_appends() {
    let src = |shards: u32, ports: &str| {
        format!(
            "name: t\nhosts:\n  - {{name: a, address: 10.0.0.1}}\n  - {{name: b, address: 10.0.0.2}}\n  - {{name: c, address: 10.0.0.3}}\nauth: {{password_file: p}}\ncluster: {{shards: {shards}, replicas: 1, ports: {ports}}}\n"
        )
    };
    let s = |x: &str| x.to_string();
    let three = layout(&clean(&src(3, "7000-7001")));
    assert_eq!(
        three,
        vec![
            (1, Role::Master, s("a"), 7000),
            (1, Role::Replica, s("b"), 7000),
            (2, Role::Master, s("b"), 7001),
            (2, Role::Replica, s("c"), 7000),
            (3, Role::Master, s("c"), 7001),
            (3, Role::Replica, s("a"), 7001),
        ]
    );
    // One more shard only adds nodes: the first three shards do not move.
    let four = layout(&clean(&src(4, "7000-7002")));
    assert_eq!(four[..6], three[..]);
    assert_eq!(
        four[6..],
        [
            (4, Role::Master, s("a"), 7002),
            (4, Role::Replica, s("b"), 7002)
        ]
    );
}

#[test]
fn generated_replicas_beyond_the_hosts_warn_not_error() {
    let src = "name: t\nhosts:\n  - {name: a, address: 10.0.0.1}\n  - {name: b, address: 10.0.0.2}\nauth: {password_file: p}\ncluster: {shards: 3, replicas: 2, ports: 7000-7009}\n";
    let l = run(src).expect("warnings do not refuse the topology");
    let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    let why =
        "with its master; place it on another host so one host failure cannot take the whole shard";
    assert_eq!(
        w,
        vec![
            format!(
                "t.yaml:6:19: warning: cluster.shards: replica of shard 1 is on host \"a\" {why}"
            ),
            format!(
                "t.yaml:6:19: warning: cluster.shards: replica of shard 2 is on host \"b\" {why}"
            ),
            format!(
                "t.yaml:6:19: warning: cluster.shards: replica of shard 3 is on host \"a\" {why}"
            ),
        ]
    );
    assert!(l.warnings.iter().all(|d| d.severity == Severity::Warning));
    assert_eq!(l.topology.instances().count(), 9);
    // On a single host there is nowhere else to go: no warning at all.
    clean(&cluster("  shards: 3\n  replicas: 2\n  ports: 7000-7008\n"));
}

#[test]
fn replicas_in_their_masters_zone_warn() {
    let hosts = "name: t\nhosts:\n  - {name: a, address: 10.0.0.1, zone: z1}\n  - {name: b, address: 10.0.0.2, zone: z1}\n  - {name: c, address: 10.0.0.3, zone: z2}\nauth: {password_file: p}\n";
    let generated = format!("{hosts}cluster: {{shards: 3, replicas: 1, ports: 7000-7005}}\n");
    assert_eq!(
        all(&generated),
        vec![
            "t.yaml:7:19: warning: cluster.shards: replica of shard 1 is in the same zone as its master"
        ]
    );
    let explicit = format!(
        "{hosts}cluster:\n  nodes:\n{}{}{}{}",
        node("a", 7000, 1, "master"),
        node("b", 7000, 1, "replica"),
        node("b", 7001, 2, "master"),
        node("c", 7001, 3, "master"),
    );
    assert_eq!(
        all(&explicit),
        vec![
            "t.yaml:10:7: warning: cluster.nodes[1]: replica of shard 1 is in the same zone as its master"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// cluster.nodes

#[test]
fn explicit_nodes_valid_layout() {
    let l = clean(&nodes(&six_nodes()));
    let s = |x: &str| x.to_string();
    assert_eq!(
        layout(&l),
        vec![
            (1, Role::Master, s("a"), 7000),
            (1, Role::Replica, s("b"), 7001),
            (2, Role::Master, s("b"), 7000),
            (2, Role::Replica, s("a"), 7001),
            (3, Role::Master, s("a"), 7002),
            (3, Role::Replica, s("b"), 7002),
        ]
    );
    // One host: a replica next to its master is the only choice, and fine.
    clean(&cluster(&format!(
        "  nodes:\n{}{}{}{}",
        node("a", 7000, 1, "master"),
        node("a", 7001, 1, "replica"),
        node("a", 7002, 2, "master"),
        node("a", 7003, 3, "master"),
    )));
}

#[test]
fn explicit_node_unknown_host_lists_the_hosts() {
    assert_eq!(
        errors(&nodes(&(six_nodes() + &node("c", 7003, 3, "replica")))),
        vec!["t.yaml:14:14: error: cluster.nodes[6].host: unknown host \"c\"; hosts are: a, b"]
    );
}

#[test]
fn explicit_node_shards_start_at_1() {
    assert_eq!(
        errors(&nodes(&(six_nodes() + &node("a", 7009, 0, "replica")))),
        vec!["t.yaml:14:36: error: cluster.nodes[6].shard: shards are numbered from 1"]
    );
}

#[test]
fn explicit_node_duplicate_host_port_names_the_other_node() {
    assert_eq!(
        errors(&nodes(&(six_nodes() + &node("a", 7000, 2, "replica")))),
        vec![
            "t.yaml:14:23: error: cluster.nodes[6].port: duplicate a:7000 (also cluster.nodes[0])"
        ]
    );
    // The same port on another host is fine (six_nodes already does it).
}

#[test]
fn explicit_node_on_another_nodes_bus_port() {
    assert_eq!(
        errors(&nodes(&(six_nodes() + &node("a", 17001, 2, "replica")))),
        vec![
            "t.yaml:14:23: error: cluster.nodes[6].port: port 17001 on host \"a\" is the cluster bus port of cluster.nodes[3] (7001 + 10000)"
        ]
    );
    // A bus port belongs to its own host only: b:7005's bus port does not collide with a:17005.
    clean(&nodes(
        &(six_nodes() + &node("b", 7005, 1, "replica") + &node("a", 17005, 2, "replica")),
    ));
}

#[test]
fn explicit_nodes_need_three_shards() {
    let two = [
        node("a", 7000, 1, "master"),
        node("b", 7000, 1, "replica"),
        node("b", 7001, 2, "master"),
        node("a", 7001, 2, "replica"),
    ]
    .concat();
    assert_eq!(
        errors(&nodes(&two)),
        vec![
            "t.yaml:8:5: error: cluster.nodes: Redis Cluster needs at least 3 masters; this topology declares 2"
        ]
    );
    assert_eq!(
        errors(&cluster("  nodes: []\n")),
        vec![
            "t.yaml:6:10: error: cluster.nodes: Redis Cluster needs at least 3 masters; this topology declares 0"
        ]
    );
}

#[test]
fn explicit_shards_are_numbered_without_gaps() {
    assert_eq!(
        errors(&nodes(&(six_nodes() + &node("a", 7009, 5, "master")))),
        vec![
            "t.yaml:14:36: error: cluster.nodes[6].shard: shards must be numbered 1..4 without gaps; shard 4 is missing"
        ]
    );
}

#[test]
fn each_shard_has_exactly_one_master() {
    assert_eq!(
        errors(&nodes(&(six_nodes() + &node("b", 7009, 3, "master")))),
        vec![
            "t.yaml:12:7: error: cluster.nodes[4]: shard 3 has 2 masters; each shard needs exactly one node with role: master"
        ]
    );
    let no_master = six_nodes().replace(
        "{host: a, port: 7002, shard: 3, role: master}",
        "{host: a, port: 7002, shard: 3, role: replica}",
    );
    assert_eq!(
        errors(&nodes(&no_master)),
        vec![
            "t.yaml:12:7: error: cluster.nodes[4]: shard 3 has 0 masters; each shard needs exactly one node with role: master"
        ]
    );
}

#[test]
fn explicit_replica_on_its_masters_host_is_an_error_when_other_hosts_exist() {
    let same = six_nodes().replace(
        "{host: b, port: 7001, shard: 1, role: replica}",
        "{host: a, port: 7003, shard: 1, role: replica}",
    );
    assert_eq!(
        errors(&nodes(&same)),
        vec![
            "t.yaml:9:14: error: cluster.nodes[1].host: replica of shard 1 is on host \"a\" with its master; place it on another host so one host failure cannot take the whole shard"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Cluster settings, sizes, durations

#[test]
fn node_timeout_rules() {
    let timeout = |v: &str| {
        cluster(&format!(
            "  shards: 3\n  replicas: 0\n  ports: 7000-7002\n  node_timeout: {v}\n"
        ))
    };
    assert_eq!(
        errors(&timeout("soon")),
        vec![
            "t.yaml:9:17: error: cluster.node_timeout: \"soon\" is not a duration; write milliseconds or a number with ms, s, m"
        ]
    );
    assert_eq!(
        errors(&timeout("5 Hours")),
        vec![
            "t.yaml:9:17: error: cluster.node_timeout: \"5 hours\" is not a duration; write milliseconds or a number with ms, s, m"
        ]
    );
    for zero in ["0", "0s", "0ms"] {
        assert_eq!(
            errors(&timeout(zero)),
            vec!["t.yaml:9:17: error: cluster.node_timeout: must be greater than 0"],
            "{zero}"
        );
    }
    let ms = |v: &str| {
        clean(&timeout(v))
            .topology
            .cluster
            .unwrap()
            .settings
            .node_timeout_ms
    };
    assert_eq!(ms("5s"), 5000);
    assert_eq!(ms("2500"), 2500);
    assert_eq!(ms("750ms"), 750);
    assert_eq!(ms("1m"), 60_000);
    let defaults = clean(&cluster("  shards: 3\n  replicas: 0\n  ports: 7000-7002\n"));
    assert_eq!(
        defaults.topology.cluster.unwrap().settings,
        ClusterSettings {
            node_timeout_ms: 15000,
            require_full_coverage: true,
            migration_barrier: 1,
            allow_replica_migration: false,
        }
    );
    let set = clean(&cluster(
        "  shards: 3\n  replicas: 0\n  ports: 7000-7002\n  require_full_coverage: false\n  migration_barrier: 2\n  allow_replica_migration: true\n",
    ));
    assert_eq!(
        set.topology.cluster.unwrap().settings,
        ClusterSettings {
            node_timeout_ms: 15000,
            require_full_coverage: false,
            migration_barrier: 2,
            allow_replica_migration: true,
        }
    );
}

#[test]
fn size_fields_must_parse() {
    assert_eq!(
        errors(&with_defaults("  maxmemory: 12xb\n")),
        vec![
            "t.yaml:6:14: error: defaults.maxmemory: \"12xb\" is not a size; write bytes or a number with kb, mb, gb"
        ]
    );
    assert_eq!(
        errors(&with_defaults(
            "  persistence: {auto_aof_rewrite_min_size: lots}\n"
        )),
        vec![
            "t.yaml:6:44: error: defaults.persistence.auto_aof_rewrite_min_size: \"lots\" is not a size; write bytes or a number with kb, mb, gb"
        ]
    );
    assert_eq!(
        errors(&with_defaults(
            "  persistence:\n    auto_aof_rewrite_min_size: 1.5gb\n"
        )),
        vec![
            "t.yaml:7:32: error: defaults.persistence.auto_aof_rewrite_min_size: \"1.5gb\" is not a size; write bytes or a number with kb, mb, gb"
        ]
    );
    let l = clean(&with_defaults(
        "  maxmemory: 256mb\n  persistence: {auto_aof_rewrite_min_size: 1048576}\n",
    ));
    let i = l.topology.instances().next().unwrap();
    assert_eq!(i.settings.maxmemory, Some(256 * 1024 * 1024));
    assert_eq!(i.settings.persistence.auto_aof_rewrite_min_size, 1 << 20);
}

#[test]
fn parse_size_units() {
    let text = |s: &str| parse_size(&SizeValue::Text(s.into()));
    assert_eq!(text("64mb"), Ok(64 * 1024 * 1024));
    assert_eq!(text("64m"), Ok(64 * 1024 * 1024));
    assert_eq!(text("1GB"), Ok(1 << 30));
    assert_eq!(text("512kb"), Ok(512 * 1024));
    assert_eq!(text("2t"), Ok(2 << 40));
    assert_eq!(text("100b"), Ok(100));
    assert_eq!(text("100"), Ok(100));
    assert_eq!(text(" 8 mb "), Ok(8 << 20));
    assert_eq!(parse_size(&SizeValue::Bytes(100)), Ok(100));
    assert_eq!(
        text("12xb"),
        Err("\"12xb\" is not a size; write bytes or a number with kb, mb, gb".into())
    );
    for bad in ["1.5gb", "", "mb", "-5", "99999999999tb"] {
        assert!(text(bad).is_err(), "{bad}");
    }
}

#[test]
fn parse_duration_units() {
    let text = |s: &str| parse_duration_ms(&DurationValue::Text(s.into()));
    assert_eq!(text("5s"), Ok(5000));
    assert_eq!(text("250ms"), Ok(250));
    assert_eq!(text("2m"), Ok(120_000));
    assert_eq!(text("1min"), Ok(60_000));
    assert_eq!(text("5000"), Ok(5000));
    assert_eq!(text("5S"), Ok(5000));
    assert_eq!(parse_duration_ms(&DurationValue::Millis(15000)), Ok(15000));
    assert_eq!(
        text("5 hours"),
        Err("\"5 hours\" is not a duration; write milliseconds or a number with ms, s, m".into())
    );
    for bad in ["1h", "", "s", "1.5s", "-1", "99999999999999999999"] {
        assert!(text(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// Instance settings: persistence, maxmemory_policy, bind, config

#[test]
fn save_rules_are_seconds_and_changes() {
    let why =
        "is not a save rule; write \"SECONDS CHANGES\" with positive numbers, e.g. \"3600 1\"";
    assert_eq!(
        errors(&with_defaults(
            "  persistence:\n    save: [\"3600\", \"a b\", \"0 1\", \"60 0\", \"1 2 3\", \"60 10\"]\n"
        )),
        vec![
            format!("t.yaml:7:12: error: defaults.persistence.save[0]: \"3600\" {why}"),
            format!("t.yaml:7:20: error: defaults.persistence.save[1]: \"a b\" {why}"),
            format!("t.yaml:7:27: error: defaults.persistence.save[2]: \"0 1\" {why}"),
            format!("t.yaml:7:34: error: defaults.persistence.save[3]: \"60 0\" {why}"),
            format!("t.yaml:7:42: error: defaults.persistence.save[4]: \"1 2 3\" {why}"),
        ]
    );
    // At a node, the node's path.
    let src = cluster(
        "  nodes:\n    - {host: a, port: 7000, shard: 1, role: master, persistence: {save: [\"x\"]}}\n    - {host: a, port: 7001, shard: 2, role: master}\n    - {host: a, port: 7002, shard: 3, role: master}\n",
    );
    assert_eq!(
        errors(&src),
        vec![format!(
            "t.yaml:7:74: error: cluster.nodes[0].persistence.save[0]: \"x\" {why}"
        )]
    );
}

#[test]
fn save_list_empty_turns_rdb_off_and_absent_keeps_redis_defaults() {
    let off = clean(&with_defaults("  persistence: {save: []}\n"));
    let p = &off
        .topology
        .instances()
        .next()
        .unwrap()
        .settings
        .persistence;
    assert!(p.save.is_empty());
    assert!(p.is_off(), "no RDB and no AOF");
    let default = clean(&with_defaults("  maxmemory: 1mb\n"));
    assert_eq!(
        default
            .topology
            .instances()
            .next()
            .unwrap()
            .settings
            .persistence,
        Persistence::redis_default()
    );
    let set = clean(&with_defaults(
        "  persistence: {save: [\"900 1\", \" 60  5 \"], appendonly: true, appendfsync: always, auto_aof_rewrite_percentage: 0}\n",
    ));
    let p = &set
        .topology
        .instances()
        .next()
        .unwrap()
        .settings
        .persistence;
    assert_eq!(p.save, vec![(900, 1), (60, 5)]);
    assert!(p.appendonly && !p.is_off());
    assert_eq!(p.appendfsync, Fsync::Always);
    assert_eq!(p.auto_aof_rewrite_percentage, 0);
}

#[test]
fn maxmemory_policy_must_be_known() {
    assert_eq!(
        errors(&with_defaults("  maxmemory_policy: lru\n")),
        vec![
            "t.yaml:6:21: error: defaults.maxmemory_policy: unknown policy \"lru\"; one of: noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl"
        ]
    );
    for policy in MAXMEMORY_POLICIES {
        let l = clean(&with_defaults(&format!("  maxmemory_policy: {policy}\n")));
        let i = l.topology.instances().next().unwrap();
        assert_eq!(i.settings.maxmemory_policy.as_deref(), Some(*policy));
    }
}

#[test]
fn bind_must_be_ip_addresses() {
    assert_eq!(
        errors(&with_defaults("  bind: 127.0.0.1 localhost\n")),
        vec!["t.yaml:6:9: error: defaults.bind: \"localhost\" is not an IP address"]
    );
    assert_eq!(
        errors(&with_defaults("  bind: \" \"\n")),
        vec!["t.yaml:6:9: error: defaults.bind: needs at least one IP address"]
    );
    let l = clean(&with_defaults("  bind: 127.0.0.1 ::1\n"));
    let i = l.topology.instances().next().unwrap();
    assert_eq!(i.settings.bind, vec![ip("127.0.0.1"), ip("::1")]);
}

#[test]
fn config_refuses_every_managed_directive_naming_the_field_to_use() {
    for (directive, instead) in MANAGED_DIRECTIVES {
        let col = 4 + directive.len() + 3;
        assert_eq!(
            errors(&with_defaults(&format!("  config:\n    {directive}: x\n"))),
            vec![format!(
                "t.yaml:7:{col}: error: defaults.config.{directive}: {}",
                super::validate::managed_message(directive, instead)
            )]
        );
    }
    // The examples in full, and case does not matter.
    assert_eq!(
        errors(&with_defaults(
            "  config:\n    port: 7000\n    appendonly: \"yes\"\n    cluster-enabled: \"yes\"\n    Requirepass: secret\n"
        )),
        vec![
            "t.yaml:7:11: error: defaults.config.port: \"port\" is managed by redisctl and cannot be set in config; use cluster.ports or cluster.nodes[].port",
            "t.yaml:8:17: error: defaults.config.appendonly: \"appendonly\" is managed by redisctl and cannot be set in config; use persistence.appendonly",
            "t.yaml:9:22: error: defaults.config.cluster-enabled: \"cluster-enabled\" is managed by redisctl and cannot be set in config; use cluster",
            "t.yaml:10:18: error: defaults.config.Requirepass: \"Requirepass\" is managed by redisctl and cannot be set in config; use auth.password_file",
        ]
    );
}

#[test]
fn config_keys_are_directive_names_and_values_one_line() {
    assert_eq!(
        errors(&with_defaults(
            "  config:\n    \"bad key\": 1\n    max_clients: 10\n    notify-keyspace-events: \"a\\nb\"\n    hz: \"1\\t0\"\n"
        )),
        vec![
            "t.yaml:7:16: error: defaults.config.bad key: \"bad key\" is not a redis.conf directive name",
            "t.yaml:8:18: error: defaults.config.max_clients: \"max_clients\" is not a redis.conf directive name",
            "t.yaml:9:29: error: defaults.config.notify-keyspace-events: value must be a single line without control characters",
            "t.yaml:10:9: error: defaults.config.hz: value must be a single line without control characters",
        ]
    );
}

#[test]
fn config_values_render_for_redis_conf() {
    let l = clean(&with_defaults(
        "  config:\n    lazyfree-lazy-eviction: true\n    activedefrag: false\n    HZ: 20\n    active-defrag-cycle-min: 0.5\n    notify-keyspace-events: Ex\n",
    ));
    let extra = &l.topology.instances().next().unwrap().settings.extra;
    let got: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("active-defrag-cycle-min", "0.5"),
            ("activedefrag", "no"),
            ("hz", "20"),
            ("lazyfree-lazy-eviction", "yes"),
            ("notify-keyspace-events", "Ex"),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Exposure

#[test]
fn non_loopback_without_auth_is_refused_unless_protected_mode_no() {
    let exposed = "name: t\nhosts:\n  - {name: a, address: 10.0.0.1}\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\n";
    let why = "listens on a non-loopback address without a password; set auth.password_file, or say config: {protected-mode: \"no\"} to serve it unauthenticated on purpose";
    assert_eq!(
        errors(exposed),
        vec![
            format!("t.yaml:4:19: error: cluster.shards: a:7000 {why}"),
            format!("t.yaml:4:19: error: cluster.shards: a:7001 {why}"),
            format!("t.yaml:4:19: error: cluster.shards: a:7002 {why}"),
        ]
    );
    let with = |extra: &str| exposed.replace("cluster:", &format!("{extra}\ncluster:"));
    // A password, an explicit protected-mode no (string or boolean), or binding loopback only.
    clean(&with("auth: {password_file: p}"));
    clean(&with("defaults: {config: {protected-mode: \"no\"}}"));
    clean(&with("defaults: {config: {protected-mode: false}}"));
    clean(&with("defaults: {bind: 127.0.0.1}"));
    // protected-mode yes is no decision to serve it open.
    assert_eq!(
        errors(&with("defaults: {config: {protected-mode: \"yes\"}}")).len(),
        3
    );
    // Per node: a loopback host with one node bound to every address.
    let src = cluster(
        "  nodes:\n    - {host: a, port: 7000, shard: 1, role: master}\n    - {host: a, port: 7001, shard: 2, role: master, bind: 0.0.0.0}\n    - {host: a, port: 7002, shard: 3, role: master}\n",
    );
    assert_eq!(
        errors(&src),
        vec![format!("t.yaml:8:7: error: cluster.nodes[1]: a:7001 {why}")]
    );
    clean(&src.replace(
        "bind: 0.0.0.0}",
        "bind: 0.0.0.0, config: {protected-mode: \"no\"}}",
    ));
}

// ---------------------------------------------------------------------------------------------
// Every problem at once

#[test]
fn four_mistakes_give_four_diagnostics_in_file_order() {
    // Written in the reverse of the order validation visits the fields.
    let src = "cluster:\n  shards: 3\n  replicas: 0\n  ports: 7000-7002\n  node_timeout: soon\n\
               defaults:\n  maxmemory_policy: lru\n\
               hosts:\n  - {name: a, address: 127.0.0.1.1}\n\
               name: \"no/slash\"\n";
    let err = run(src).unwrap_err();
    let lines: Vec<Option<u64>> = err.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![Some(5), Some(7), Some(9), Some(10)]);
    assert_eq!(
        err.to_string(),
        "t.yaml:5:17: error: cluster.node_timeout: \"soon\" is not a duration; write milliseconds or a number with ms, s, m\n\
         t.yaml:7:21: error: defaults.maxmemory_policy: unknown policy \"lru\"; one of: noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl\n\
         t.yaml:9:24: error: hosts[0].address: \"127.0.0.1.1\" is not an IP address\n\
         t.yaml:10:7: error: name: invalid deployment name \"no/slash\": use 1-64 letters, digits, '-', '_' or '.', not starting with '.'\n\
         topology is invalid: 4 errors"
    );
}

#[test]
fn errors_across_sections_are_all_reported() {
    let src = "version: 2\nname: \"bad name\"\nhosts:\n  - name: a\n    address: nope\n\
               cluster:\n  shards: 2\n  replicas: 0\n  ports: [7000, 70000]\n  node_timeout: 0\n";
    assert_eq!(
        errors(src),
        vec![
            "t.yaml:1:10: error: version: unsupported version 2; this redisctl reads version 1".to_string(),
            "t.yaml:2:7: error: name: invalid deployment name \"bad name\": use 1-64 letters, digits, '-', '_' or '.', not starting with '.'".to_string(),
            "t.yaml:5:14: error: hosts[0].address: \"nope\" is not an IP address".to_string(),
            format!("t.yaml:9:17: error: cluster.ports[1]: port 70000 {OUT_OF_RANGE}"),
            "t.yaml:10:17: error: cluster.node_timeout: must be greater than 0".to_string(),
        ]
    );
}

#[test]
fn a_defaults_error_is_reported_once_not_per_instance() {
    // Six instances inherit the bad value; it is one mistake in one place.
    let src = format!(
        "{HOSTS}defaults: {{maxmemory: 1xb}}\ncluster: {{shards: 3, replicas: 1, ports: 7000-7005}}\n"
    );
    assert_eq!(
        errors(&src),
        vec![
            "t.yaml:5:23: error: defaults.maxmemory: \"1xb\" is not a size; write bytes or a number with kb, mb, gb"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Per-node overrides

#[test]
fn node_overrides_win_field_by_field() {
    let src = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\n\
               defaults:\n  maxmemory: 1gb\n  maxmemory_policy: allkeys-lru\n  persistence: {appendonly: true, appendfsync: everysec, save: [\"900 1\"], auto_aof_rewrite_percentage: 50}\n  config: {hz: 20, tcp-keepalive: 60}\n\
               cluster:\n  nodes:\n\
               \x20   - {host: a, port: 7000, shard: 1, role: master, bind: \"127.0.0.1 ::1\", maxmemory_policy: noeviction, persistence: {appendfsync: always, save: []}, config: {hz: 50, maxclients: 100}}\n\
               \x20   - {host: a, port: 7001, shard: 2, role: master, maxmemory: 2gb}\n\
               \x20   - {host: a, port: 7002, shard: 3, role: master}\n";
    let l = clean(src);
    let insts: Vec<_> = l.topology.instances().collect();

    let first = &insts[0].settings;
    assert_eq!(first.bind, vec![ip("127.0.0.1"), ip("::1")]);
    assert_eq!(first.maxmemory, Some(1 << 30), "inherited");
    assert_eq!(first.maxmemory_policy.as_deref(), Some("noeviction"));
    assert!(first.persistence.appendonly, "inherited");
    assert_eq!(first.persistence.appendfsync, Fsync::Always);
    assert!(
        first.persistence.save.is_empty(),
        "the node's empty list wins"
    );
    assert_eq!(first.persistence.auto_aof_rewrite_percentage, 50);
    assert_eq!(first.extra["hz"], "50");
    assert_eq!(first.extra["tcp-keepalive"], "60");
    assert_eq!(first.extra["maxclients"], "100");

    let second = &insts[1].settings;
    assert_eq!(second.maxmemory, Some(2 << 30));
    assert_eq!(second.maxmemory_policy.as_deref(), Some("allkeys-lru"));

    // The third node overrides nothing: exactly the defaults.
    let third = &insts[2].settings;
    assert_eq!(third.bind, vec![ip("127.0.0.1")]);
    assert_eq!(third.maxmemory, Some(1 << 30));
    assert_eq!(third.maxmemory_policy.as_deref(), Some("allkeys-lru"));
    assert_eq!(
        third.persistence,
        Persistence {
            save: vec![(900, 1)],
            appendonly: true,
            appendfsync: Fsync::Everysec,
            auto_aof_rewrite_percentage: 50,
            auto_aof_rewrite_min_size: 64 << 20,
        }
    );
    assert_eq!(third.extra.len(), 2);
    assert_eq!(third.extra["hz"], "20");
}

#[test]
fn node_override_errors_are_reported_at_the_node() {
    let src = cluster(
        "  nodes:\n\
         \x20   - {host: a, port: 7000, shard: 1, role: master, maxmemory: lots}\n\
         \x20   - {host: a, port: 7001, shard: 2, role: master, maxmemory_policy: lru}\n\
         \x20   - {host: a, port: 7002, shard: 3, role: master, config: {dir: /tmp}}\n",
    );
    let e = errors(&src);
    assert_eq!(e.len(), 3, "{e:?}");
    assert_eq!(
        e[0],
        "t.yaml:7:64: error: cluster.nodes[0].maxmemory: \"lots\" is not a size; write bytes or a number with kb, mb, gb"
    );
    assert!(
        e[1].starts_with(
            "t.yaml:8:71: error: cluster.nodes[1].maxmemory_policy: unknown policy \"lru\"; one of: "
        ),
        "{e:?}"
    );
    assert_eq!(
        e[2],
        "t.yaml:9:67: error: cluster.nodes[2].config.dir: \"dir\" is managed by redisctl and cannot be set in config; use state_dir"
    );
}

// ---------------------------------------------------------------------------------------------
// How diagnostics print

#[test]
fn diagnostic_display_formats() {
    let d = Diagnostic {
        file: "t.yaml".into(),
        line: None,
        column: None,
        severity: Severity::Error,
        path: String::new(),
        message: "cannot read topology: gone".into(),
    };
    assert_eq!(d.to_string(), "t.yaml: error: cannot read topology: gone");
    let w = Diagnostic {
        line: Some(3),
        column: Some(4),
        severity: Severity::Warning,
        path: "cluster.shards".into(),
        message: "m".into(),
        ..d.clone()
    };
    assert_eq!(w.to_string(), "t.yaml:3:4: warning: cluster.shards: m");
    let e = TopologyError {
        diagnostics: vec![d, w],
    };
    assert_eq!(
        e.to_string(),
        "t.yaml: error: cannot read topology: gone\nt.yaml:3:4: warning: cluster.shards: m\ntopology is invalid: 1 error"
    );
    let missing = super::load(Path::new("/nonexistent/redisctl/t.yaml")).unwrap_err();
    assert_eq!(missing.diagnostics.len(), 1);
    assert!(
        missing.diagnostics[0]
            .to_string()
            .starts_with("/nonexistent/redisctl/t.yaml: error: cannot read topology: "),
        "{missing}"
    );
}

#[test]
fn weights_one_per_shard_within_range() {
    let t = clean(&cluster(
        "  shards: 3\n  replicas: 0\n  ports: 7000-7002\n  weights: [1, 1, 2]\n",
    ));
    let c = t.topology.cluster.expect("a cluster");
    assert_eq!(c.weights, [1, 1, 2]);
    assert_eq!(
        c.slot_allocation()
            .iter()
            .map(|r| r.len())
            .collect::<Vec<_>>(),
        [4096, 4096, 8192]
    );
    // Default: equal.
    let t = clean(&cluster("  shards: 3\n  replicas: 0\n  ports: 7000-7002\n"));
    assert_eq!(t.topology.cluster.expect("a cluster").weights, [1, 1, 1]);
    assert_eq!(
        errors(&cluster(
            "  shards: 3\n  replicas: 0\n  ports: 7000-7002\n  weights: [1, 2]\n"
        )),
        vec![
            "t.yaml:9:12: error: cluster.weights: has 2 entries for 3 shard(s); give one weight per shard, in shard order"
        ]
    );
    assert_eq!(
        errors(&cluster(
            "  shards: 3\n  replicas: 0\n  ports: 7000-7002\n  weights: [1, 0, 2000]\n"
        )),
        vec![
            "t.yaml:9:16: error: cluster.weights[1]: 0 is out of range; a weight is 1-1000 (to empty a shard, remove it)",
            "t.yaml:9:19: error: cluster.weights[2]: 2000 is out of range; a weight is 1-1000 (to empty a shard, remove it)"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Issue #11: hardening from an independent acceptance run

/// Item 5: values redis-server refuses at start were accepted, and `apply` failed after
/// writing the instance directories.
#[test]
fn values_redis_refuses_at_start_are_out_of_range() {
    let c = |extra: &str| {
        errors(&cluster(&format!(
            "  shards: 3\n  replicas: 0\n  ports: 7000-7002\n{extra}"
        )))
    };
    assert_eq!(
        c("  node_timeout: 18446744073709551615\n"),
        vec![
            "t.yaml:9:17: error: cluster.node_timeout: 18446744073709551615 ms is out of range; Redis accepts 1 to 9223372036854775807 ms"
        ]
    );
    assert_eq!(
        c("  migration_barrier: 4294967295\n"),
        vec![
            "t.yaml:9:22: error: cluster.migration_barrier: 4294967295 is out of range; Redis accepts 0 to 2147483647"
        ]
    );
    // The largest values Redis takes are accepted.
    clean(&cluster(
        "  shards: 3\n  replicas: 0\n  ports: 7000-7002\n  node_timeout: 9223372036854775807\n  migration_barrier: 2147483647\n",
    ));
    let group = |extra: &str| {
        format!(
            "{HOSTS}groups:\n  - name: g\n    master: {{host: a, port: 6379}}\n    replicas: [{{host: a, port: 6380{extra}}}]\n"
        )
    };
    assert_eq!(
        errors(&group(", replica_priority: 4294967295")),
        vec![
            "t.yaml:8:56: error: groups[0].replicas[0].replica_priority: 4294967295 is out of range; Redis accepts 0 to 2147483647"
        ]
    );
    let lag = format!("{}    min_replicas_max_lag: 9999999999s\n", group(""));
    assert_eq!(
        errors(&lag),
        vec![
            "t.yaml:9:27: error: groups[0].min_replicas_max_lag: 9999999999 s is out of range; Redis accepts 0 to 2147483647 s"
        ]
    );
    assert_eq!(
        errors(&with_defaults(
            "  persistence: {save: [\"3600 4294967295\"], auto_aof_rewrite_percentage: 4294967295}\n"
        )),
        vec![
            "t.yaml:6:24: error: defaults.persistence.save[0]: 4294967295 changes is out of range; Redis accepts 1 to 2147483647 changes",
            "t.yaml:6:73: error: defaults.persistence.auto_aof_rewrite_percentage: 4294967295 is out of range; Redis accepts 0 to 2147483647",
        ]
    );
}

/// Item 6: `cluster-announce-bus-port`, `cluster-announce-port`, `replica-announce-port`
/// passed through `config` and broke the bus-port rule.
#[test]
fn announce_port_acl_and_rename_directives_are_managed() {
    for key in [
        "cluster-announce-bus-port",
        "cluster-announce-port",
        "replica-announce-port",
        "cluster-announce-whatever-comes-next",
        "rename-command",
    ] {
        let e = errors(&with_defaults(&format!("  config: {{{key}: \"1\"}}\n")));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains(&format!("defaults.config.{key}: \"{key}\" is managed by redisctl and cannot be set in config: ")),
            "{e:?}"
        );
    }
    // ACL users have their own section.
    for key in ["user", "aclfile", "masteruser"] {
        let e = errors(&with_defaults(&format!("  config: {{{key}: \"1\"}}\n")));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains(&format!("defaults.config.{key}: \"{key}\" is managed by redisctl and cannot be set in config; use auth.users")),
            "{e:?}"
        );
    }
}

/// Item 7: `hosts[].address: 0.0.0.0` was accepted and announced as cluster-announce-ip.
#[test]
fn unspecified_multicast_and_broadcast_host_addresses_are_refused() {
    for (addr, what) in [
        ("0.0.0.0", "the unspecified address"),
        ("\"::\"", "the unspecified address"),
        ("\"::ffff:0.0.0.0\"", "the unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("\"ff02::1\"", "a multicast address"),
        ("255.255.255.255", "the broadcast address"),
    ] {
        let e = errors(&format!(
            "name: t\nhosts:\n  - {{name: a, address: {addr}}}\ncluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n"
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("t.yaml:3:24: error: hosts[0].address: "),
            "{e:?}"
        );
        assert!(
            e[0].contains(&format!(" is {what}: it names no single host")),
            "{e:?}"
        );
    }
}

/// Item 12: `ports: 20000-55535` with 1000 shards gave 11,000 errors; a duplicate in a port
/// list was reported at `cluster.shards.port (also cluster.shards)`.
#[test]
fn an_impossible_port_pool_is_one_error_and_duplicates_name_both_places() {
    let e = errors(&cluster(
        "  shards: 1000\n  replicas: 10\n  ports: 20000-55535\n",
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("t.yaml:8:10: error: cluster.ports: a host needs 11000 ports"),
        "{e:?}"
    );
    let e = errors(&cluster(
        "  shards: 3\n  replicas: 0\n  ports: [7000, 17000, 7001]\n",
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("port 17000 would be the cluster bus port of port 7000"),
        "{e:?}"
    );
    let e = errors(&cluster(
        "  shards: 3\n  replicas: 0\n  ports: [7000, 7001, 7000, 7002]\n",
    ));
    assert_eq!(
        e,
        vec![
            "t.yaml:8:23: error: cluster.ports[2]: port 7000 is listed twice (also cluster.ports[0])"
        ]
    );
    // Across sections, a generated node is named for what it is.
    let e = errors(&format!(
        "{HOSTS}cluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\ngroups:\n  - name: g\n    master: {{host: a, port: 7001}}\n"
    ));
    assert_eq!(
        e,
        vec![
            "t.yaml:8:29: error: groups[0].master.port: duplicate a:7001 (also the master of shard 2 (from cluster.ports))"
        ]
    );
}

/// `HOSTS`, 3 masters, then an `agent:` mapping whose body starts on line 7.
fn with_agent(agent: &str) -> String {
    format!("{HOSTS}cluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\nagent:\n{agent}")
}

#[test]
fn agent_section_defaults_and_values() {
    let t = clean(&cluster("  shards: 3\n  replicas: 0\n  ports: 7000-7002\n")).topology;
    assert_eq!(t.agent, super::AgentSettings::default());
    assert_eq!(t.agent.interval_ms, 5000);
    assert_eq!(
        t.agent.listen,
        Some(AgentListen::At("127.0.0.1:9187".parse().unwrap()))
    );
    assert!(!t.agent.restore_roles);
    let t = clean(&with_agent(
        "  interval: 2s\n  listen: 127.0.0.1:19000\n  policy: {restore_roles: true, stable_for: 10s}\n",
    ))
    .topology;
    assert_eq!(t.agent.interval_ms, 2000);
    assert_eq!(
        t.agent.listen,
        Some(AgentListen::At("127.0.0.1:19000".parse().unwrap()))
    );
    assert!(t.agent.restore_roles);
    assert_eq!(t.agent.stable_for_ms, 10_000);
    let t = clean(&with_agent("  listen: off\n")).topology;
    assert_eq!(t.agent.listen, None);
}

#[test]
fn agent_section_refuses_bad_values() {
    assert_eq!(
        errors(&with_agent("  interval: 10ms\n")),
        ["t.yaml:7:13: error: agent.interval: 10 ms is out of range; use 100 ms to 3600000 ms"]
    );
    assert_eq!(
        errors(&with_agent("  listen: localhost\n")),
        [
            "t.yaml:7:11: error: agent.listen: \"localhost\" is not an address; write IP:PORT (e.g. 127.0.0.1:9187), host:PORT (each host's own address) or off"
        ]
    );
    assert_eq!(
        errors(&with_agent("  listen: host:http\n")),
        [
            "t.yaml:7:11: error: agent.listen: \"http\" is not a port; write host:PORT (e.g. host:9187)"
        ]
    );
    assert_eq!(
        errors(&with_agent("  policy: {stable_for: soon}\n")),
        [
            "t.yaml:7:24: error: agent.policy.stable_for: \"soon\" is not a duration; write milliseconds or a number with ms, s, m"
        ]
    );
    let e = errors(&with_agent("  restore_roles: true\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("unknown field `restore_roles`"), "{e:?}");
}

#[test]
fn agent_listen_on_each_hosts_address() {
    let r = run(&with_agent("  listen: host:9200\n")).unwrap();
    assert_eq!(
        r.topology.agent.listen,
        Some(AgentListen::HostAddress(9200))
    );
    assert!(
        r.warnings[0].to_string().contains("firewall it"),
        "{:?}",
        r.warnings
    );
    let l = AgentListen::HostAddress(9200);
    let h: IpAddr = "10.0.0.2".parse().unwrap();
    assert_eq!(l.bind(h).to_string(), "10.0.0.2:9200");
    assert_eq!(l.reach(h).unwrap().to_string(), "10.0.0.2:9200");
    // Loopback answers only on its own host; 0.0.0.0 is reached at each host's address.
    let lo = AgentListen::At("127.0.0.1:9187".parse().unwrap());
    assert!(lo.reach(h).unwrap_err().contains("host:9187"));
    let any = AgentListen::At("0.0.0.0:9187".parse().unwrap());
    assert_eq!(any.reach(h).unwrap().to_string(), "10.0.0.2:9187");
}

#[test]
fn agent_listening_beyond_loopback_is_a_warning() {
    let w = run(&with_agent("  listen: 0.0.0.0:9187\n"))
        .unwrap()
        .warnings;
    assert_eq!(w.len(), 1);
    assert!(
        w[0].to_string()
            .contains("agent.listen: 0.0.0.0:9187 is reachable beyond this host"),
        "{w:?}"
    );
}

/// Issue #14 item 3: TLS directives belong to the `tls` section.
#[test]
fn tls_directives_are_managed_by_the_tls_section() {
    for (key, field) in [
        ("tls-port", "tls.mode"),
        ("tls-cluster", "tls.mode"),
        ("tls-replication", "tls.mode"),
        ("tls-cert-file", "tls.cert_file"),
        ("tls-ca-cert-file", "tls.ca_file"),
        ("tls-auth-clients", "tls.auth_clients"),
    ] {
        let e = errors(&with_defaults(&format!("  config: {{{key}: \"x\"}}\n")));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].ends_with(&format!("defaults.config.{key}: \"{key}\" is managed by redisctl and cannot be set in config; use {field}")),
            "{e:?}"
        );
    }
}

/// `tls:` parsed into the model, defaults filled in, paths resolved, per-host overrides.
#[test]
fn tls_section_is_validated_with_located_errors() {
    let ok = clean(
        "name: t\nhosts:\n  - {name: a, address: 127.0.0.1, tls: {cert_file: a.crt, key_file: a.key}}\n\
         tls: {ca_file: ca.crt, cert_file: s.crt, key_file: s.key}\n\
         cluster: {shards: 3, replicas: 0, ports: 7000-7002}\n",
    );
    let t = ok.topology.tls.as_ref().unwrap();
    assert_eq!(t.mode, crate::topology::TlsMode::On, "mode defaults to on");
    assert_eq!(t.port_offset, 0);
    assert_eq!(t.auth_clients, "yes");
    assert_eq!(t.expiry_warning_days, 30);
    assert_eq!(t.cert_file, Path::new("./s.crt"));
    assert_eq!(
        ok.topology.hosts[0].tls,
        Some((PathBuf::from("./a.crt"), PathBuf::from("./a.key")))
    );
    assert_eq!(
        errors(&format!(
            "{HOSTS}tls:\n  mode: off\n  ca_file: \"\"\n  cert_file: c\n  key_file: k\n  client_cert_file: cc\n  expiry_warning_days: 4000\ncluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n"
        )),
        vec![
            "t.yaml:7:12: error: tls.ca_file: must not be empty",
            "t.yaml:10:21: error: tls.client_cert_file: needs tls.client_key_file, the key of this certificate",
            "t.yaml:11:24: error: tls.expiry_warning_days: 4000 is out of range; write 0 to 3650 days",
        ]
    );
    // Unknown modes and fields are refused in the format's words.
    let e = errors(&format!(
        "{HOSTS}tls: {{mode: half, ca_file: a, cert_file: b, key_file: c}}\ncluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("t.yaml:5:"), "{e:?}");
    assert!(e[0].contains("tls.mode"), "{e:?}");
    // Mode both: needs port_offset, a cluster only, and TLS ports that are free.
    let e = errors(&format!(
        "{HOSTS}tls: {{mode: both, ca_file: a, cert_file: b, key_file: c}}\ncluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("tls.port_offset: mode both needs port_offset"),
        "{e:?}"
    );
    let e = errors(&format!(
        "{HOSTS}tls: {{mode: both, port_offset: 1, ca_file: a, cert_file: b, key_file: c}}\ncluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n"
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e.iter().all(|x| x.contains("tls.port_offset: duplicate ")),
        "{e:?}"
    );
    let e = errors(&format!(
        "{HOSTS}tls: {{mode: both, port_offset: 70000, ca_file: a, cert_file: b, key_file: c}}\ncluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n"
    ));
    assert!(
        e[0].contains("tls.port_offset: 70000 is out of range"),
        "{e:?}"
    );
    let e = errors(&format!(
        "{HOSTS}tls: {{mode: both, port_offset: 1000, ca_file: a, cert_file: b, key_file: c}}\n\
         groups:\n  - name: g\n    master: {{host: a, port: 6379}}\n"
    ));
    assert!(
        e.iter()
            .any(|x| x.contains("tls.mode: mode both switches a running Redis Cluster")),
        "{e:?}"
    );
    let ok = clean(&format!(
        "{HOSTS}tls: {{mode: both, port_offset: 1000, ca_file: a, cert_file: b, key_file: c}}\ncluster: {{shards: 3, replicas: 0, ports: 7000-7002}}\n"
    ));
    assert_eq!(ok.topology.tls.as_ref().unwrap().port_offset, 1000);
    // A host certificate without the section.
    let e = errors(
        "name: t\nhosts:\n  - {name: a, address: 127.0.0.1, tls: {cert_file: a.crt, key_file: a.key}}\ncluster: {shards: 3, replicas: 0, ports: 7000-7002}\n",
    );
    assert_eq!(
        e,
        vec![
            "t.yaml:3:40: error: hosts[0].tls: a host certificate needs the `tls` section (its CA, mode and defaults)"
        ]
    );
}
