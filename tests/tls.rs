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

/// A running plain cluster switched live to TLS only, through `tls.mode: both` (and back to
/// off and to both once on the way): no restart, a plain redis-py cluster writer through the
/// first three switches and a TLS one through the last two,
/// nothing lost; meanwhile each kind of client is sent to its own ports, and replication and
/// the bus end up speaking TLS.
#[test]
fn a_running_cluster_is_switched_to_tls_through_mode_both_without_a_restart() {
    if !have("openssl") {
        return skip("tls", "openssl is not installed");
    }
    let d = Deployment::custom(
        3,
        1,
        "    appendonly: true\n    appendfsync: everysec\n",
        2000,
        "",
    );
    let certs = Certs::make(d.dir.path());
    d.ok(&["apply", "--yes"]);
    let pids = d.pids();
    // The TLS ports of mode both: free ones right after the declared ones.
    let tls_ports = free_ports(d.ports.len());
    let offset = tls_ports[0] - d.ports[0];
    assert!(
        d.ports.iter().zip(&tls_ports).all(|(p, t)| t - p == offset),
        "{:?} {tls_ports:?}",
        d.ports
    );
    let base = std::fs::read_to_string(&d.file).unwrap();
    let declare = |mode: &str| {
        std::fs::write(
            &d.file,
            format!("{base}{}  port_offset: {offset}\n", Certs::yaml(mode)),
        )
        .unwrap();
    };
    let cluster_check = |tls: bool, port: u16| {
        let mut args: Vec<String> = if tls { certs.cli_args() } else { Vec::new() };
        args.extend(["--cluster".into(), "check".into()]);
        args.push(format!("127.0.0.1:{port}"));
        // redis-cli waits forever on a TLS handshake with a plain port: bounded here.
        let out = std::process::Command::new("timeout")
            .arg("20")
            .arg("redis-cli")
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success()
                && !text.contains("[ERR]")
                && !text.contains("[WARNING]")
                && text.contains("[OK] All 16384 slots covered."),
            "redis-cli (tls: {tls}) --cluster check {port}:\n{text}"
        );
        text
    };
    let plain_writer = consistency_with("127.0.0.1", d.ports[0], 10.0, 2000, None, &[]);
    std::thread::sleep(std::time::Duration::from_secs(2));

    // off → both: every node opens its TLS port, then all switch bus and replication at once.
    declare("both");
    let both = d.json(&["apply", "--yes"]);
    assert_eq!(both["ok"], true, "{both}");
    let kinds: Vec<String> = both["executed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "tls_switch").count(),
        1,
        "{both}"
    );
    // Each kind of client is sent to its own ports: the plain cluster check finds the plain
    // ports, the TLS one the TLS ports.
    let plain_view = cluster_check(false, d.ports[0]);
    let tls_view = cluster_check(true, tls_ports[0]);
    for (p, t) in d.ports.iter().zip(&tls_ports) {
        assert!(
            plain_view.contains(&format!("127.0.0.1:{p}")),
            "{plain_view}"
        );
        assert!(tls_view.contains(&format!("127.0.0.1:{t}")), "{tls_view}");
        assert!(!tls_view.contains(&format!("127.0.0.1:{p} ")), "{tls_view}");
    }
    // Back to off (the way back while clients are being moved) and to both again, live.
    declare("off");
    let off = d.json(&["apply", "--yes"]);
    assert!(off.to_string().contains("tls_switch"), "{off}");
    cluster_check(false, d.ports[0]);
    for &t in &tls_ports {
        assert!(certs.served_subject(t).is_none(), "TLS port {t} still open");
    }
    declare("both");
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    d.ok(&["apply", "--yes"]);
    cluster_check(true, tls_ports[0]);
    let tls_writer = consistency_with(
        "127.0.0.1",
        tls_ports[0],
        14.0,
        2000,
        None,
        &certs.writer_args(),
    );
    // Replicas follow their masters to the TLS ports; the bus only speaks TLS.
    let mut linked = 0;
    for (&p, &t) in d.ports.iter().zip(&tls_ports) {
        let (ok, info) = certs.cli(t, &["INFO", "replication"]);
        assert!(ok, "{info}");
        if info.contains("role:slave") {
            assert!(info.contains("master_link_status:up"), "{t}: {info}");
            let master_port: u16 = info
                .lines()
                .find_map(|l| l.strip_prefix("master_port:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap();
            assert!(tls_ports.contains(&master_port), "{t}: {info}");
            linked += 1;
        }
        let r = plain_reply(p + 10000);
        assert!(
            !r.starts_with(b"RCmb") && !r.starts_with(b"+") && !r.starts_with(b"-"),
            "bus {} answered a plain client",
            p + 10000
        );
        assert!(
            certs.served_subject(p + 10000).is_some(),
            "bus {}",
            p + 10000
        );
    }
    assert_eq!(linked, 3);
    // Every bus link was dialed after this switch began, so in TLS (a node with tls-cluster
    // dials and accepts nothing else): none is left from the plain bus.
    for &t in &tls_ports {
        let (ok, links) = certs.cli(t, &["CLUSTER", "LINKS"]);
        assert!(ok, "{links}");
        let lines: Vec<&str> = links.lines().collect();
        let created: Vec<u128> = lines
            .windows(2)
            .filter(|w| w[0] == "create-time")
            .map(|w| w[1].trim().parse().unwrap())
            .collect();
        assert_eq!(created.len(), 10, "{t}: {links}");
        assert!(created.iter().all(|&c| c >= before_ms), "{t}: {links}");
    }
    let plan = d.run(&["plan", "--exit-code"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
    let report = finish_json(plain_writer);
    say(&format!(
        "plain writer through off → both → off → both: {report}"
    ));
    assert_nothing_lost(&report, 1);
    assert_eq!(report["errors"], 0, "{report}");

    // both → on: the plain ports close, TLS moves to the declared ports, all at once.
    declare("on");
    let on = d.json(&["apply", "--yes"]);
    assert_eq!(on["ok"], true, "{on}");
    cluster_check(true, d.ports[0]);
    for &p in &d.ports {
        let r = plain_reply(p);
        assert!(
            !r.starts_with(b"+") && !r.starts_with(b"-"),
            "{p} still answers a plain client"
        );
        let (_, cfg) = certs.cli(p, &["CONFIG", "GET", "port"]);
        assert_eq!(cfg.split_whitespace().nth(1), Some("0"), "{p}: {cfg}");
    }
    let report = finish_json(tls_writer);
    say(&format!(
        "TLS writer through the switch to mode on: {report}"
    ));
    assert_nothing_lost(&report, 1);
    assert_eq!(d.pids(), pids, "a node restarted");
    let plan = d.run(&["plan", "--exit-code"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
    d.ok(&["check"]);
}
