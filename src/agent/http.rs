//! The agent's HTTP endpoints (hyper, HTTP/1.1), for load balancers and Prometheus:
//!
//! - `GET /health`: 200 when the deployment is converged, else 503; the body is the status.
//! - `GET /primary/PORT`: 200 when this host's instance on PORT answers as a master.
//! - `GET /replica/PORT[?lag=BYTES]`: 200 when it answers as a replica with its link up
//!   (and at most BYTES behind its master).
//! - `GET /metrics`: Prometheus text format 0.0.4.
//! - `GET /drained`: JSON `{"deployment", "hosts", "drained": [{"host", "since"}]}`: the hosts
//!   this agent serves and which of them are drained. `check`, `plan` and `apply` on the other
//!   hosts ask it when none of a host's instances answers (`agent.listen: host:PORT`).
//!
//! Answers come from the agent's last snapshot only: a request never talks to Redis.

use std::convert::Infallible;
use std::fmt::Write as _;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};

use super::{Shared, Snapshot};

pub async fn serve(listener: tokio::net::TcpListener, shared: Shared) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                async move {
                    let snap = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    let (code, ctype, body) =
                        respond(req.method(), req.uri().path(), req.uri().query(), &snap);
                    let resp = Response::builder()
                        .status(code)
                        .header("content-type", ctype)
                        .body(Full::new(Bytes::from(body)))
                        .unwrap_or_default();
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const METRICS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// (status, content type, body) for a request: pure, so the routes are unit-tested.
pub fn respond(
    method: &Method,
    path: &str,
    query: Option<&str>,
    s: &Snapshot,
) -> (StatusCode, &'static str, String) {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "only GET and HEAD\n".into(),
        );
    }
    let unavailable = |why: String| (StatusCode::SERVICE_UNAVAILABLE, TEXT, why + "\n");
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["health"] if !s.ready => unavailable(s.status.clone()),
        ["health"] if s.converged => (StatusCode::OK, TEXT, s.status.clone() + "\n"),
        ["health"] => unavailable(s.status.clone()),
        ["metrics"] => (StatusCode::OK, METRICS, metrics(s)),
        ["drained"] if !s.ready => unavailable(s.status.clone()),
        ["drained"] => (
            StatusCode::OK,
            JSON,
            serde_json::json!({
                "deployment": s.deployment, "hosts": s.hosts, "drained": s.drained,
            })
            .to_string()
                + "\n",
        ),
        [which @ ("primary" | "replica"), port] => {
            let Ok(port) = port.parse::<u16>() else {
                return (
                    StatusCode::BAD_REQUEST,
                    TEXT,
                    format!("{port:?} is not a port\n"),
                );
            };
            let lag_limit = query.and_then(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| *k == "lag")
                    .map(|(_, v)| v.parse::<i64>())
            });
            let lag_limit = match lag_limit {
                Some(Err(_)) => {
                    return (
                        StatusCode::BAD_REQUEST,
                        TEXT,
                        "lag must be a number of bytes\n".into(),
                    );
                }
                Some(Ok(n)) => Some(n),
                None => None,
            };
            let Some(v) = s
                .instances
                .iter()
                .find(|i| i.local && i.port == port && i.kind != "sentinel")
            else {
                return (
                    StatusCode::NOT_FOUND,
                    TEXT,
                    format!(
                        "no instance of {} on port {port} on this host\n",
                        s.deployment
                    ),
                );
            };
            match (*which, v.role) {
                ("primary", Some("master")) => (
                    StatusCode::OK,
                    TEXT,
                    format!("{} is a master\n", v.instance),
                ),
                ("replica", Some("replica")) if !v.link_up => {
                    unavailable(format!("{} is a replica, its link is down", v.instance))
                }
                ("replica", Some("replica")) => match (lag_limit, v.lag_bytes) {
                    (Some(max), Some(lag)) if lag > max => unavailable(format!(
                        "{} is a replica {lag} bytes behind (limit {max})",
                        v.instance
                    )),
                    (Some(_), None) => unavailable(format!(
                        "{} is a replica; its lag is unknown (master not observed)",
                        v.instance
                    )),
                    (_, lag) => (
                        StatusCode::OK,
                        TEXT,
                        format!(
                            "{} is a replica{}\n",
                            v.instance,
                            lag.map(|l| format!(", {l} bytes behind"))
                                .unwrap_or_default()
                        ),
                    ),
                },
                (_, None) => unavailable(format!("{} does not answer", v.instance)),
                (_, Some(role)) => unavailable(format!("{} is a {role}", v.instance)),
            }
        }
        _ => (
            StatusCode::NOT_FOUND,
            TEXT,
            "endpoints: /health, /primary/PORT, /replica/PORT?lag=BYTES, /metrics\n".into(),
        ),
    }
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text exposition of a snapshot.
pub fn metrics(s: &Snapshot) -> String {
    let mut o = String::new();
    let dep = esc(&s.deployment);
    let family = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
    };
    let b = |x: bool| u8::from(x);
    type Pick = fn(&super::InstanceView) -> Option<String>;
    let per_instance: [(&str, &str, Pick); 6] = [
        (
            "redisctl_instance_up",
            "1 when the instance answers.",
            |v| Some(u8::from(v.up).to_string()),
        ),
        (
            "redisctl_instance_master",
            "1 when the instance acts as a master now (0: replica or down).",
            |v| (v.kind != "sentinel").then(|| u8::from(v.role == Some("master")).to_string()),
        ),
        (
            "redisctl_instance_declared_master",
            "1 when the topology declares the instance as the preferred master.",
            |v| (v.kind != "sentinel").then(|| u8::from(v.declared_role == "master").to_string()),
        ),
        (
            "redisctl_instance_replication_lag_bytes",
            "Bytes a replica is behind its master (replicas whose master answers).",
            |v| v.lag_bytes.map(|l| l.to_string()),
        ),
        (
            "redisctl_instance_slots",
            "Hash slots the instance owns (cluster masters).",
            |v| (v.kind == "cluster" && v.up).then(|| v.slots.to_string()),
        ),
        (
            "redisctl_instance_keys",
            "Keys in the instance's databases.",
            |v| (v.kind != "sentinel" && v.up).then(|| v.keys.to_string()),
        ),
    ];
    for (name, help, pick) in per_instance {
        family(&mut o, name, "gauge", help);
        for v in &s.instances {
            if let Some(x) = pick(v) {
                let _ = writeln!(
                    o,
                    "{name}{{deployment=\"{dep}\",instance=\"{}\",kind=\"{}\"}} {x}",
                    esc(&v.instance),
                    v.kind
                );
            }
        }
    }
    family(
        &mut o,
        "redisctl_instance_role",
        "gauge",
        "1 for the instance's declared and actual role (actual: none when down).",
    );
    for v in &s.instances {
        let _ = writeln!(
            o,
            "redisctl_instance_role{{deployment=\"{dep}\",instance=\"{}\",declared=\"{}\",role=\"{}\"}} 1",
            esc(&v.instance),
            v.declared_role,
            v.role.unwrap_or("none")
        );
    }
    for (name, help, value) in [
        (
            "redisctl_converged",
            "1 when the deployment matches the topology and every node answers.",
            b(s.converged).to_string(),
        ),
        (
            "redisctl_paused",
            "1 while the agent is paused (redisctl pause).",
            b(s.paused).to_string(),
        ),
        (
            "redisctl_waiting_for_apply",
            "1 when the topology asks for changes only apply makes (scaling, removals).",
            b(s.waiting_for_apply).to_string(),
        ),
        (
            "redisctl_last_convergence_timestamp_seconds",
            "Unix time the deployment was last seen converged (0: never).",
            s.last_convergence.unwrap_or(0).to_string(),
        ),
    ] {
        family(&mut o, name, "gauge", help);
        let _ = writeln!(o, "{name}{{deployment=\"{dep}\"}} {value}");
    }
    for (name, help, map) in [
        (
            "redisctl_steps_executed_total",
            "Plan steps the agent executed, by kind.",
            &s.executed,
        ),
        (
            "redisctl_step_failures_total",
            "Plan steps that failed, by kind.",
            &s.failures,
        ),
    ] {
        family(&mut o, name, "counter", help);
        for (kind, n) in map {
            let _ = writeln!(
                o,
                "{name}{{deployment=\"{dep}\",kind=\"{}\"}} {n}",
                esc(kind)
            );
        }
    }
    for (name, help, value) in [
        (
            "redisctl_failovers_seen_total",
            "Changes of a shard's or group's master the agent observed.",
            s.failovers_seen,
        ),
        (
            "redisctl_agent_rounds_total",
            "Rounds of observe, plan and execute.",
            s.rounds,
        ),
    ] {
        family(&mut o, name, "counter", help);
        let _ = writeln!(o, "{name}{{deployment=\"{dep}\"}} {value}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::super::InstanceView;
    use super::*;

    fn snap() -> Snapshot {
        let inst = |port, role: Option<&'static str>, declared, lag, link_up| InstanceView {
            instance: format!("local:{port}"),
            host: "local".into(),
            port,
            local: true,
            kind: "cluster",
            declared_role: declared,
            role,
            up: role.is_some(),
            lag_bytes: lag,
            link_up,
            slots: if role == Some("master") { 5461 } else { 0 },
            keys: 10,
        };
        Snapshot {
            deployment: "t\"x".into(),
            status: "converged: 3/3 nodes".into(),
            ready: true,
            converged: true,
            instances: vec![
                inst(7000, Some("master"), "master", None, false),
                inst(7001, Some("replica"), "replica", Some(100), true),
                inst(7002, None, "replica", None, false),
            ],
            executed: [("start".to_string(), 2)].into_iter().collect(),
            ..Snapshot::default()
        }
    }

    fn code(path: &str, q: Option<&str>) -> u16 {
        respond(&Method::GET, path, q, &snap()).0.as_u16()
    }

    #[test]
    fn load_balancer_checks() {
        assert_eq!(code("/health", None), 200);
        assert_eq!(code("/primary/7000", None), 200);
        assert_eq!(code("/primary/7001", None), 503);
        assert_eq!(code("/replica/7001", None), 200);
        assert_eq!(code("/replica/7001", Some("lag=100")), 200);
        assert_eq!(code("/replica/7001", Some("lag=99")), 503);
        assert_eq!(code("/replica/7001", Some("lag=x")), 400);
        assert_eq!(code("/replica/7000", None), 503);
        assert_eq!(code("/replica/7002", None), 503);
        assert_eq!(code("/primary/7999", None), 404);
        assert_eq!(code("/nothing", None), 404);
        let mut s = snap();
        s.converged = false;
        assert_eq!(respond(&Method::GET, "/health", None, &s).0.as_u16(), 503);
        assert_eq!(respond(&Method::POST, "/health", None, &s).0.as_u16(), 405);
    }

    #[test]
    fn drained_answers_for_the_hosts_served() {
        let mut s = snap();
        s.hosts = vec!["h2".into()];
        s.drained = vec![super::super::DrainedHost {
            host: "h2".into(),
            since: 1700000000,
        }];
        let (code, ctype, body) = respond(&Method::GET, "/drained", None, &s);
        assert_eq!((code.as_u16(), ctype), (200, "application/json"));
        let v = crate::observe::agent::parse_drained(&body, "t\"x").unwrap();
        assert_eq!(v.hosts, ["h2"]);
        assert_eq!(v.drained, [("h2".to_string(), 1700000000)]);
        // Another deployment's agent on that address is not an answer about this one.
        assert!(
            crate::observe::agent::parse_drained(&body, "other")
                .unwrap_err()
                .contains("serves deployment")
        );
        s.ready = false;
        assert_eq!(respond(&Method::GET, "/drained", None, &s).0.as_u16(), 503);
    }

    #[test]
    fn metrics_lines() {
        let m = metrics(&snap());
        for line in [
            "redisctl_instance_up{deployment=\"t\\\"x\",instance=\"local:7002\",kind=\"cluster\"} 0",
            "redisctl_instance_replication_lag_bytes{deployment=\"t\\\"x\",instance=\"local:7001\",kind=\"cluster\"} 100",
            "redisctl_instance_role{deployment=\"t\\\"x\",instance=\"local:7002\",declared=\"replica\",role=\"none\"} 1",
            "redisctl_converged{deployment=\"t\\\"x\"} 1",
            "redisctl_steps_executed_total{deployment=\"t\\\"x\",kind=\"start\"} 2",
            "# TYPE redisctl_step_failures_total counter",
        ] {
            assert!(m.lines().any(|l| l == line), "missing {line}\n{m}");
        }
    }
}
