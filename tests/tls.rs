//! End-to-end TLS (`tls.mode: on`): certificates made here with `openssl`; real
//! redis-server instances, judged by `redis-cli --tls --cluster check`, plain TCP probes of
//! the data and bus ports, and redis-py's cluster client over TLS (tools/consistency.py).

mod common;

use common::tls::{Certs, plain_reply};
use common::*;

fn tls_cluster() -> (Deployment, Certs) {
    let d = Deployment::custom(
        3,
        1,
        "    appendonly: true\n    appendfsync: everysec\n",
        2000,
        &Certs::yaml("on"),
    );
    let certs = Certs::make(d.dir.path());
    (d, certs)
}

#[test]
fn tls_cluster_serves_only_tls_and_a_renewal_under_load_reloads_without_restart() {
    if !have("openssl") {
        return skip("tls", "openssl is not installed");
    }
    let (d, certs) = tls_cluster();
    let first = d.json(&["apply", "--yes"]);
    assert_eq!(first["ok"], true, "{first}");

    // redis-cli's cluster manager over TLS: every slot covered, no open slot, all agree.
    let mut args: Vec<String> = certs.cli_args();
    args.extend(["--cluster".into(), "check".into()]);
    args.push(format!("127.0.0.1:{}", d.ports[0]));
    let out = std::process::Command::new("redis-cli")
        .args(&args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !text.contains("[ERR]") && !text.contains("[WARNING]"),
        "redis-cli --tls --cluster check:\n{text}"
    );
    assert!(text.contains("[OK] All 16384 slots covered."), "{text}");

    // Replication is linked, and can only be TLS: no plain port is open at all.
    let mut linked = 0;
    for &p in &d.ports {
        let (ok, info) = certs.cli(p, &["INFO", "replication"]);
        assert!(ok, "{info}");
        if info.contains("role:slave") {
            assert!(info.contains("master_link_status:up"), "{p}: {info}");
            linked += 1;
        }
        let (_, cfg) = certs.cli(p, &["CONFIG", "GET", "port"]);
        assert_eq!(
            cfg.split_whitespace().collect::<Vec<_>>(),
            ["port", "0"],
            "{p}"
        );
        for k in ["tls-replication", "tls-cluster"] {
            let (_, v) = certs.cli(p, &["CONFIG", "GET", k]);
            assert_eq!(v.split_whitespace().nth(1), Some("yes"), "{p} {k}: {v}");
        }
        // A plain client gets no RESP answer on the data port nor on the bus port, and the
        // bus port (port + 10000) completes a verified TLS handshake.
        for port in [p, p + 10000] {
            let r = plain_reply(port);
            assert!(
                !r.starts_with(b"+") && !r.starts_with(b"-") && !r.starts_with(b"RCmb"),
                "{port} answered a plain client: {:?}",
                String::from_utf8_lossy(&r)
            );
        }
        let bus = certs.served_subject(p + 10000);
        assert!(
            bus.as_deref().is_some_and(|s| s.contains("redis-server-1")),
            "bus port {}: {bus:?}",
            p + 10000
        );
    }
    assert_eq!(linked, 3);

    // redisctl itself: plan, status and check work over TLS and find nothing to do.
    let plan = d.run(&["plan", "--exit-code"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
    let status = d.json(&["status"]);
    assert_eq!(status["nodes"].as_array().unwrap().len(), 6, "{status}");
    d.ok(&["check"]);

    // Renewal under load: new keys and certificates from the same CA replace the files;
    // apply reloads every node with CONFIG SET (same processes), the writer sees no error.
    let pids = d.pids();
    assert_eq!(pids.len(), 6);
    let progress = d.dir.path().join("writer.progress");
    let writer = consistency_with(
        "127.0.0.1",
        d.ports[0],
        120.0,
        2000,
        None,
        &[certs.writer_args(), progress_args(&progress)].concat(),
    );
    let acked = await_acked(&progress, FLOWING, "before the renewal");
    certs.issue("server", "redis-server-2", 90);
    certs.issue("client", "redisctl-client-2", 90);
    let renewal = d.json(&["apply", "--yes"]);
    let steps = renewal["executed"].as_array().unwrap();
    let reloads = steps
        .iter()
        .filter(|s| s.to_string().contains("tls-cert-file"))
        .count();
    assert_eq!(reloads, 6, "{renewal}");
    await_acked(&progress, acked + FLOWING, "after the renewal");
    let report = stop_json(writer);
    say(&format!("writer during the renewal: {report}"));
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["acknowledged"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(d.pids(), pids, "a node restarted instead of reloading");
    for &p in &d.ports {
        for port in [p, p + 10000] {
            let s = certs.served_subject(port);
            assert!(
                s.as_deref().is_some_and(|s| s.contains("redis-server-2")),
                "{port} still serves {s:?}"
            );
        }
    }
    let plan = d.run(&["plan", "--exit-code"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );

    d.ok(&["check"]);

    // `check` reports a certificate expiring within tls.expiry_warning_days (default 30).
    certs.issue("client", "redisctl-client-3", 10);
    let out = d.run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("tls.client_cert_file (")
            && text.contains("certificate \"CN=redisctl-client-3\" expires on")
            && text.contains("within tls.expiry_warning_days = 30"),
        "{text}"
    );
}

#[test]
fn tls_sentinel_group_renewal_restarts_sentinels_one_at_a_time_and_reloads_data_nodes() {
    if !have("openssl") {
        return skip("tls", "openssl is not installed");
    }
    let d = Deployment::sentinel("    appendonly: true\n    appendfsync: everysec\n");
    let certs = Certs::make(d.dir.path());
    let mut yaml = std::fs::read_to_string(&d.file).unwrap();
    yaml.push_str(&Certs::yaml("on"));
    std::fs::write(&d.file, yaml).unwrap();
    let first = d.json(&["apply", "--yes"]);
    assert_eq!(first["ok"], true, "{first}");
    // Everything TLS-only: members and Sentinels answer no plain client.
    for &p in &d.ports {
        let r = plain_reply(p);
        assert!(
            !r.starts_with(b"+") && !r.starts_with(b"-"),
            "{p} answered a plain client: {:?}",
            String::from_utf8_lossy(&r)
        );
        assert!(certs.served_subject(p).is_some(), "{p}: no TLS handshake");
    }
    let (_, info) = certs.cli(d.ports[0], &["--pass", PASSWORD, "INFO", "replication"]);
    assert!(info.contains("connected_slaves:2"), "{info}");
    d.ok(&["check"]);

    let data_pids: Vec<Option<i32>> = d.ports[..3].iter().map(|&p| d.pid(p)).collect();
    let sentinel_pids: Vec<Option<i32>> = d.ports[3..].iter().map(|&p| d.pid(p)).collect();
    let progress = d.dir.path().join("writer.progress");
    let writer = sentinel_writer_with(
        &d,
        120.0,
        &[certs.writer_args(), progress_args(&progress)].concat(),
    );
    let acked = await_acked(&progress, FLOWING, "before the renewal");
    certs.issue("server", "redis-server-2", 90);
    certs.issue("client", "redisctl-client-2", 90);
    let renewal = d.json(&["apply", "--yes"]);
    let kinds: Vec<String> = renewal["executed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let count = |what: &str| kinds.iter().filter(|s| s.contains(what)).count();
    assert_eq!(count("restart_sentinel"), 3, "{renewal}");
    // One at a time: each restart is followed by the wait for every Sentinel to agree
    // before the next one.
    let restarts: Vec<usize> = (0..kinds.len())
        .filter(|&i| kinds[i].contains("restart_sentinel"))
        .collect();
    for w in restarts.windows(2) {
        assert!(
            kinds[w[0]..w[1]].iter().any(|k| k.contains("wait_groups")),
            "{renewal}"
        );
    }
    assert_eq!(count("tls-cert-file"), 3, "{renewal}");
    await_acked(&progress, acked + FLOWING, "after the renewal");
    let report = stop_json(writer);
    say(&format!("writer during the renewal: {report}"));
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["acknowledged"].as_u64().unwrap() > 0, "{report}");
    let after: Vec<Option<i32>> = d.ports[..3].iter().map(|&p| d.pid(p)).collect();
    assert_eq!(
        after, data_pids,
        "a data node restarted instead of reloading"
    );
    for (i, &p) in d.ports[3..].iter().enumerate() {
        assert_ne!(d.pid(p), sentinel_pids[i], "Sentinel {p} was not restarted");
    }
    for &p in &d.ports {
        let s = certs.served_subject(p);
        assert!(
            s.as_deref().is_some_and(|s| s.contains("redis-server-2")),
            "{p} still serves {s:?}"
        );
    }
    let plan = d.run(&["plan", "--exit-code"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
}

/// A certificate that expired before it was renewed: redisctl still reaches the instance
/// (checked against the CA as of its last valid second), `check` says it expired, and the
/// renewal is applied live.
#[test]
fn an_expired_instance_certificate_is_reported_and_still_renewed_live() {
    if !have("openssl") {
        return skip("tls", "openssl is not installed");
    }
    let port = free_ports(1)[0];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("topology.yaml");
    std::fs::write(
        &file,
        format!(
            "name: x{port}\nstate_dir: state\nhosts:\n  - {{name: local, address: 127.0.0.1}}\n\
             groups:\n  - name: g\n    master: {{host: local, port: {port}}}\n{}",
            Certs::yaml("on")
        ),
    )
    .unwrap();
    let d = Deployment {
        dir,
        file,
        ports: vec![port],
    };
    let certs = Certs::make(d.dir.path());
    certs.issue_expired("server", "redis-server-expired");
    d.ok(&["apply", "--yes"]);
    // A verifying client refuses the expired certificate (openssl s_client here).
    assert_eq!(certs.served_subject(port), None);
    let out = d.run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("certificate \"CN=redis-server-expired\" expired on"),
        "{text}"
    );
    let pid = d.pid(port);
    certs.issue("server", "redis-server-2", 90);
    let renewal = d.json(&["apply", "--yes"]);
    assert!(renewal.to_string().contains("tls-cert-file"), "{renewal}");
    assert_eq!(d.pid(port), pid, "restarted instead of reloading");
    let s = certs.served_subject(port);
    assert!(
        s.as_deref().is_some_and(|s| s.contains("redis-server-2")),
        "{s:?}"
    );
    d.ok(&["check"]);
}

/// Turning TLS on under running plain instances is refused per instance, naming why and the
/// way out, instead of being waited for until the gate runs out.
#[test]
fn tls_declared_over_running_plain_instances_is_refused_with_the_way_out() {
    if !have("openssl") {
        return skip("tls", "openssl is not installed");
    }
    let d = Deployment::custom(3, 0, "    appendonly: false\n", 2000, "");
    let _certs = Certs::make(d.dir.path());
    d.ok(&["apply", "--yes"]);
    let mut yaml = std::fs::read_to_string(&d.file).unwrap();
    yaml.push_str(&Certs::yaml("on"));
    std::fs::write(&d.file, yaml).unwrap();
    let out = d.run(&["plan"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for p in &d.ports {
        assert!(
            err.contains(&format!(
                "127.0.0.1:{p} answers plain TCP, but the topology says tls.mode: on"
            )),
            "{err}"
        );
    }
    assert!(err.contains("set tls.mode: off"), "{err}");
}
