//! Sentinel configuration steps: MONITOR (with its settings), SET, REMOVE.

use super::*;

impl Context {
    /// Hand mastership of `group` to `to` through Sentinel: the other replicas' priority is
    /// held at 0 so Sentinel can only pick `to`; the declared priorities come back after
    /// (and, if redisctl dies meanwhile, the next apply restores them as config drift).
    pub(super) async fn sentinel_failover(
        &self,
        index: usize,
        group: &str,
        to: &InstanceKey,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        let g = self.group(group)?;
        let others: Vec<&crate::topology::Instance> =
            g.members().filter(|m| m.key != *to).collect();
        for m in &others {
            if let Ok(mut c) = self.conn(&m.key).await {
                let _ = c.cmd(&["CONFIG", "SET", "replica-priority", "0"]).await;
            }
        }
        // The target itself must be promotable: a priority of 0 left behind by an interrupted
        // handover would make Sentinel refuse it for good.
        let target = &self.target(to).managed;
        if let Ok(mut c) = self.conn(to).await
            && let Ok(v) = c.cmd(&["CONFIG", "GET", "replica-priority"]).await
            && let crate::observe::resp::Value::Array(kv) = &v
            && kv.get(1).and_then(|p| p.as_text()).as_deref() == Some("0")
        {
            let declared = g
                .members()
                .find(|m| m.key == *to)
                .and_then(|m| m.replica_priority)
                .unwrap_or(100);
            if declared == 0 {
                return Err(StepError::Other(format!(
                    "{to} is declared with replica_priority 0: Sentinel never promotes it"
                )));
            }
            c.cmd(&["CONFIG", "SET", "replica-priority", &declared.to_string()])
                .await?;
        }
        // Sentinel picks the replica from the INFO it caches (refreshed every 10 s, every
        // second during a failover), not from the live CONFIG: a priority set a moment ago,
        // zero or back from zero, is not seen yet. Before writes are paused, wait until a
        // Sentinel would pick `to` and only `to`; ask those first. A refusal (NOGOODSLAVE,
        // INPROG) lifts the pause and waits again, within the gate timeout.
        let zeroed: Vec<String> = others
            .iter()
            .map(|m| format!("{}:{}", m.address, m.port))
            .collect();
        let target_addr = format!("{}:{}", target.address, target.port);
        let deadline = Instant::now() + self.gate_timeout;
        let pause_ms = (self.gate_timeout.as_millis() as u64).max(5000);
        let result = loop {
            let mut views = self.sentinel_views(group, &target_addr, &zeroed).await;
            while !views.iter().any(|(_, v)| v.is_ok()) && Instant::now() < deadline {
                let first = views
                    .iter()
                    .find_map(|(s, v)| v.as_ref().err().map(|e| format!("Sentinel {s}: {e}")))
                    .unwrap_or_else(|| "no Sentinel answers".into());
                on_event(Event::StepWaiting {
                    index,
                    missing: views.iter().filter(|(_, v)| v.is_err()).count().max(1),
                    first,
                });
                tokio::time::sleep(Duration::from_millis(250)).await;
                views = self.sentinel_views(group, &target_addr, &zeroed).await;
            }
            // Hold writes on the current master until `to` has every acknowledged write and
            // Sentinel has moved mastership, so the handover loses nothing. The pause expires
            // by itself should redisctl die here.
            let current = {
                let obs = self.observe().await;
                crate::plan::current_group_master(&self.topology, g, &obs)
                    .key
                    .clone()
            };
            if current == *to {
                break Ok(()); // a Sentinel accepted an earlier request after all
            }
            if let Ok(mut c) = self.conn(&current).await {
                c.cmd(&["CLIENT", "PAUSE", &pause_ms.to_string(), "WRITE"])
                    .await?;
            }
            let attempt = async {
                self.gate_observed(
                    index,
                    &format!("{to} has every write of {current}"),
                    on_event,
                    |obs| {
                        let off = |k: &InstanceKey| {
                            obs.nodes
                                .get(k)
                                .and_then(|o| o.repl.as_ref())
                                .map(|r| r.offset)
                        };
                        match (off(&current), off(to)) {
                            (Some(a), Some(b)) if a == b => Vec::new(),
                            (a, b) => vec![format!("{to} is at offset {b:?}, {current} at {a:?}")],
                        }
                    },
                )
                .await?;
                let mut refusals: Vec<(InstanceKey, String)> = Vec::new();
                let ready_first = views
                    .iter()
                    .filter(|(_, v)| v.is_ok())
                    .chain(views.iter().filter(|(_, v)| v.is_err()));
                let mut accepted = false;
                for (s, _) in ready_first {
                    let said = match self.conn(s).await {
                        Ok(mut c) => match c.cmd(&["SENTINEL", "FAILOVER", group]).await {
                            Ok(_) => {
                                accepted = true;
                                break;
                            }
                            Err(ClientError::Server { message, .. }) => message,
                            Err(e) => e.to_string(),
                        },
                        Err(e) => e.to_string(),
                    };
                    refusals.push((s.clone(), said));
                }
                if !accepted {
                    return Ok(Err(refusals));
                }
                // First only until `to` acts as master; then demote the old master (Sentinel
                // would, later) and lift the pause at once. Waiting for every Sentinel while
                // the old master is paused stalls them: their hello PUBLISHes to it block, and
                // so does everything queued behind them on those links (seen: handovers of
                // 20-30 s).
                self.gate_observed(
                    index,
                    &format!("{to} acts as master of {group}"),
                    on_event,
                    |obs| {
                        if obs
                            .nodes
                            .get(to)
                            .and_then(|o| o.repl.as_ref())
                            .is_some_and(|r| r.is_master)
                        {
                            Vec::new()
                        } else {
                            vec![format!("{to} is not acting as master yet")]
                        }
                    },
                )
                .await?;
                let mut c = self.conn(&current).await?;
                c.cmd(&[
                    "REPLICAOF".to_string(),
                    target.address.to_string(),
                    target.port.to_string(),
                ])
                .await?;
                Ok(Ok(()))
            }
            .await;
            if let Ok(mut c) = self.conn(&current).await {
                let _ = c.cmd(&["CLIENT", "UNPAUSE"]).await;
            }
            match attempt {
                Ok(Err(refusals)) => {
                    let retry = refusals
                        .iter()
                        .any(|(_, m)| m.starts_with("NOGOODSLAVE") || m.starts_with("INPROG"));
                    if retry && Instant::now() < deadline {
                        let (s, m) = &refusals[0];
                        on_event(Event::StepWaiting {
                            index,
                            missing: refusals.len(),
                            first: format!("Sentinel {s} refused the failover ({m}); asking again"),
                        });
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    // Say what each Sentinel answered and how it sees the target now.
                    let views = self.sentinel_views(group, &target_addr, &zeroed).await;
                    break Err(StepError::Other(format!(
                        "no Sentinel accepted the failover of {group} to {to} within {} s:\n  - {}",
                        self.gate_timeout.as_secs(),
                        sentinel_refusals(&refusals, &views)
                    )));
                }
                Ok(Ok(())) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let result = match result {
            Ok(()) => {
                let want = (target.address.to_string(), target.port);
                self.gate_observed(
                    index,
                    &format!("every Sentinel reports {to} as master of {group}"),
                    on_event,
                    |obs| {
                        let mut missing = Vec::new();
                        for s in self.topology.sentinels() {
                            let sm = obs
                                .nodes
                                .get(&s.key)
                                .and_then(|o| o.sentinel.as_ref())
                                .and_then(|l| l.masters.iter().find(|m| m.name == group));
                            match sm {
                                Some(sm)
                                    if (sm.ip.clone(), sm.port) == want
                                        && !sm.flags.contains("failover") => {}
                                _ => missing.push(format!(
                                    "Sentinel {} does not report {to} as master yet",
                                    s.key
                                )),
                            }
                        }
                        missing
                    },
                )
                .await
            }
            Err(e) => Err(e),
        };
        for m in &others {
            if let Ok(mut c) = self.conn(&m.key).await {
                let prio = m.replica_priority.unwrap_or(100).to_string();
                let _ = c.cmd(&["CONFIG", "SET", "replica-priority", &prio]).await;
            }
        }
        result
    }

    /// The declared group `name`.
    pub(super) fn group(&self, name: &str) -> Result<&crate::topology::Group, StepError> {
        self.topology
            .groups
            .iter()
            .find(|g| g.name == name)
            .ok_or_else(|| StepError::Other(format!("unknown group {name}")))
    }

    /// Have the Sentinels promote a replica of `group`, whose master `from` is down: their own
    /// failover is waited for, `SENTINEL FAILOVER` forced only when none starts (see below);
    /// done when a majority of them report another member as master and it acts as one.
    pub(super) async fn sentinel_promote(
        &self,
        index: usize,
        group: &str,
        from: &InstanceKey,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        let g = self.group(group)?;
        let old = g
            .member(from)
            .map(|m| (m.address.to_string(), m.port))
            .ok_or_else(|| StepError::Other(format!("{from} is not a member of {group}")))?;
        let declared = self.topology.sentinels().count();
        // A majority reporting a live member other than `from` as master.
        let promoted = |obs: &Observed| -> Option<InstanceKey> {
            let mut votes: std::collections::BTreeMap<(String, u16), usize> = Default::default();
            for s in self.topology.sentinels() {
                if let Some(sm) = obs
                    .nodes
                    .get(&s.key)
                    .and_then(|o| o.sentinel.as_ref())
                    .and_then(|l| l.masters.iter().find(|m| m.name == group))
                {
                    *votes.entry((sm.ip.clone(), sm.port)).or_default() += 1;
                }
            }
            let (addr, n) = votes.into_iter().max_by_key(|(_, n)| *n)?;
            let m = g
                .members()
                .find(|m| (m.address.to_string(), m.port) == addr)?;
            let acting = obs
                .nodes
                .get(&m.key)
                .and_then(|o| o.repl.as_ref())
                .is_some_and(|r| r.is_master);
            (addr != old && n * 2 > declared && acting).then(|| m.key.clone())
        };
        // The Sentinels fail a master that stays down over by themselves after
        // `down-after-milliseconds`, electing a leader among them. A forced `SENTINEL FAILOVER`
        // during that election can make two Sentinels lead the same epoch and promote two
        // different replicas, and writes acknowledged by the first one are lost when the second
        // wins (seen in tests/crash.rs). So redisctl waits for their own failover and forces one
        // only when none has started by down-after + 3 s — e.g. fewer than `quorum` Sentinels
        // can see the master down, so none will.
        // The longest down-after any Sentinel runs with (a live value may differ from the
        // topology's until apply sets it).
        let first = self.observe().await;
        let down_after = self
            .topology
            .sentinels()
            .filter_map(|s| {
                first
                    .nodes
                    .get(&s.key)
                    .and_then(|o| o.sentinel.as_ref())
                    .and_then(|l| l.masters.iter().find(|m| m.name == group))
                    .map(|m| m.down_after_ms)
            })
            .chain(self.topology.sentinel.as_ref().map(|s| s.down_after_ms))
            .max()
            .unwrap_or(30_000);
        let force_at = Instant::now() + Duration::from_millis(down_after + 3000);
        let limit = self
            .gate_timeout
            .max(Duration::from_millis(down_after + 10_000));
        let deadline = Instant::now() + limit;
        let mut said: Vec<String> = Vec::new();
        let mut asked = false;
        loop {
            let obs = self.observe().await;
            if promoted(&obs).is_some() {
                return Ok(());
            }
            let busy = self.topology.sentinels().any(|s| {
                obs.nodes
                    .get(&s.key)
                    .and_then(|o| o.sentinel.as_ref())
                    .and_then(|l| l.masters.iter().find(|m| m.name == group))
                    .is_some_and(|m| m.flags.contains("o_down") || m.flags.contains("failover"))
            });
            if !busy && !asked && Instant::now() >= force_at {
                said.clear();
                for s in self.topology.sentinels() {
                    let reply = match self.conn(&s.key).await {
                        Ok(mut c) => c.cmd(&["SENTINEL", "FAILOVER", group]).await,
                        Err(e) => Err(e),
                    };
                    match reply {
                        Ok(_) => asked = true,
                        // Already failing over: wait for it.
                        Err(ClientError::Server { message, .. }) if message.contains("INPROG") => {
                            asked = true
                        }
                        // NOGOODSLAVE right after a crash: the Sentinels have not refreshed
                        // their view of the replicas yet. Asked again next round.
                        Err(e) => said.push(format!("Sentinel {}: {e}", s.key)),
                    }
                    if asked {
                        break;
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(StepError::Other(format!(
                    "the Sentinels did not promote a replica of {group} within {} s{}",
                    limit.as_secs(),
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", said.join("; "))
                    }
                )));
            }
            on_event(Event::StepWaiting {
                index,
                missing: 1,
                first: if busy {
                    format!("the Sentinels are failing {group} over")
                } else if asked {
                    format!("a Sentinel is failing {group} over (SENTINEL FAILOVER)")
                } else {
                    format!(
                        "waiting for the Sentinels to see {from} down (down-after {down_after} ms)"
                    )
                },
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How each Sentinel sees a handover of `group` to `target` (ip:port): Ok when it would
    /// pick `target` and nothing else, else what stands in the way (see `sentinel_pick`).
    pub(super) async fn sentinel_views(
        &self,
        group: &str,
        target: &str,
        zeroed: &[String],
    ) -> Vec<(InstanceKey, Result<(), String>)> {
        let asks = self.topology.sentinels().map(|s| async move {
            let view = match self.conn(&s.key).await {
                Ok(mut c) => match c.cmd(&["SENTINEL", "REPLICAS", group]).await {
                    Ok(v) => sentinel_pick(&observe::field_maps(&v), target, zeroed),
                    Err(e) => Err(format!("SENTINEL REPLICAS: {e}")),
                },
                Err(e) => Err(e.to_string()),
            };
            (s.key.clone(), view)
        });
        futures::future::join_all(asks).await
    }

    pub(super) async fn ensure_monitored(
        &self,
        sentinel: &InstanceKey,
        group: &str,
        master: &InstanceKey,
    ) -> Result<(), StepError> {
        let sc = self
            .topology
            .sentinel
            .as_ref()
            .ok_or_else(|| StepError::Other("no sentinel section in the topology".into()))?;
        let m = &self.target(master).managed;
        let mut c = self.conn(sentinel).await?;
        match c
            .cmd(&[
                "SENTINEL".to_string(),
                "MONITOR".into(),
                group.to_string(),
                m.address.to_string(),
                m.port.to_string(),
                sc.quorum.to_string(),
            ])
            .await
        {
            Ok(_) => {}
            // Done by an earlier, interrupted attempt.
            Err(ClientError::Server { message, .. })
                if message.contains("Duplicated master name") => {}
            Err(e) => return Err(e.into()),
        }
        let mut args: Vec<String> = vec![
            "SENTINEL".into(),
            "SET".into(),
            group.to_string(),
            "down-after-milliseconds".into(),
            sc.down_after_ms.to_string(),
            "failover-timeout".into(),
            sc.failover_timeout_ms.to_string(),
            "parallel-syncs".into(),
            sc.parallel_syncs.to_string(),
        ];
        args.extend(crate::render::acl::sentinel_auth(
            self.password.as_ref().is_some_and(|c| c.user.is_some()),
            self.target(sentinel).auth_pass.as_deref(),
        ));
        c.cmd(&args).await?;
        Ok(())
    }

    pub(super) async fn ensure_sentinel_set(
        &self,
        sentinel: &InstanceKey,
        group: &str,
        params: &[(String, String)],
    ) -> Result<(), StepError> {
        let mut c = self.conn(sentinel).await?;
        let mut args: Vec<String> = vec!["SENTINEL".into(), "SET".into(), group.to_string()];
        for (k, v) in params {
            args.push(k.clone());
            args.push(v.clone());
        }
        c.cmd(&args).await?;
        Ok(())
    }

    pub(super) async fn ensure_sentinel_removed(
        &self,
        sentinel: &InstanceKey,
        group: &str,
    ) -> Result<(), StepError> {
        let mut c = self.conn(sentinel).await?;
        match c.cmd(&["SENTINEL", "REMOVE", group]).await {
            Ok(_) => Ok(()),
            Err(ClientError::Server { message, .. }) if message.contains("No such master") => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn ensure_sentinel_auth_pass(
        &self,
        sentinel: &InstanceKey,
        groups: &[String],
    ) -> Result<(), StepError> {
        let acl = self.password.as_ref().is_some_and(|c| c.user.is_some());
        let pass = self.target(sentinel).auth_pass.as_deref();
        let mut c = self.conn(sentinel).await?;
        for g in groups {
            let mut args: Vec<String> = vec!["SENTINEL".into(), "SET".into(), g.clone()];
            args.extend(crate::render::acl::sentinel_auth(acl, pass));
            c.cmd(&args).await?;
        }
        Ok(())
    }

    /// What this Sentinel sends to the other Sentinels: the last of redisctl's passwords.
    /// Sentinel saves its config and drops its links; they reconnect with it at once, and
    /// every Sentinel accepts it already (planned after the add phase).
    pub(super) async fn ensure_sentinel_peer_pass(
        &self,
        sentinel: &InstanceKey,
    ) -> Result<(), StepError> {
        let Some(creds) = &self.password else {
            return Ok(());
        };
        let last = creds.fallback.last().unwrap_or(&creds.password);
        let mut c = self.conn(sentinel).await?;
        c.cmd(&["SENTINEL", "CONFIG", "SET", "sentinel-pass", last])
            .await?;
        Ok(())
    }
}

/// One line per Sentinel that refused a failover: its answer, and how it sees the target now.
pub(super) fn sentinel_refusals(
    refusals: &[(InstanceKey, String)],
    views: &[(InstanceKey, Result<(), String>)],
) -> String {
    refusals
        .iter()
        .map(|(s, m)| {
            let view = match views.iter().find(|(k, _)| k == s) {
                Some((_, Ok(()))) => "; it would pick the target now".to_string(),
                Some((_, Err(e))) => format!("; {e}"),
                None => String::new(),
            };
            format!("Sentinel {s}: {m}{view}")
        })
        .collect::<Vec<_>>()
        .join("\n  - ")
}

/// Would a Sentinel whose `SENTINEL REPLICAS` reply is `replicas` pick `target` (ip:port), and
/// only it, for a failover? It picks from its cached INFO (sentinel.c `sentinelSelectSlave`):
/// never a replica with priority 0, down, disconnected, or whose INFO is older than three
/// periods (30 s). So `target` must be listed with a non-zero priority, link `ok`, flags
/// without `s_down`/`o_down`/`disconnected` and fresh INFO, and every member of `zeroed` it
/// lists must show priority 0. Err says what this Sentinel sees instead.
pub(super) fn sentinel_pick(
    replicas: &[std::collections::HashMap<String, String>],
    target: &str,
    zeroed: &[String],
) -> Result<(), String> {
    let get = |m: &std::collections::HashMap<String, String>, k: &str| {
        m.get(k).cloned().unwrap_or_else(|| "?".into())
    };
    let Some(t) = replicas
        .iter()
        .find(|m| m.get("name").map(String::as_str) == Some(target))
    else {
        return Err(format!("it does not list {target} as a replica yet"));
    };
    let (prio, flags, link) = (
        get(t, "slave-priority"),
        get(t, "flags"),
        get(t, "master-link-status"),
    );
    let age: Option<u64> = t.get("info-refresh").and_then(|v| v.parse().ok());
    let down = flags
        .split(',')
        .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"));
    let stale = age.is_none_or(|a| a > 30_000);
    let still: Vec<&String> = zeroed
        .iter()
        .filter(|z| {
            replicas.iter().any(|m| {
                m.get("name") == Some(*z)
                    && m.get("slave-priority").map(String::as_str) != Some("0")
            })
        })
        .collect();
    if prio == "0" || prio == "?" || down || link != "ok" || stale || !still.is_empty() {
        let mut why = format!(
            "it lists {target} with slave-priority {prio}, flags {flags}, master-link-status {link}, {}",
            age.map_or_else(
                || "INFO of unknown age".into(),
                |a| format!("INFO {:.1} s old", a as f64 / 1000.0)
            )
        );
        if !still.is_empty() {
            why.push_str(&format!(
                ", and not yet priority 0 for {}",
                still
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        return Err(why);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{sentinel_pick, sentinel_refusals};
    use crate::topology::InstanceKey;
    use std::collections::HashMap;

    fn replica(
        name: &str,
        prio: &str,
        flags: &str,
        link: &str,
        age: &str,
    ) -> HashMap<String, String> {
        [
            ("name", name),
            ("slave-priority", prio),
            ("flags", flags),
            ("master-link-status", link),
            ("info-refresh", age),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    const T: &str = "127.0.0.1:7001";
    const O: &str = "127.0.0.1:7002";

    #[test]
    fn a_sentinel_that_would_pick_the_target_and_only_it() {
        let r = [
            replica(T, "100", "slave", "ok", "1200"),
            replica(O, "0", "slave", "ok", "300"),
        ];
        assert_eq!(sentinel_pick(&r, T, &[O.into()]), Ok(()));
    }

    /// Issue #10: CONFIG GET said 100, the Sentinel still cached the 0 of the last handover.
    #[test]
    fn a_cached_zero_priority_of_the_target_is_not_ready() {
        let r = [
            replica(T, "0", "slave", "ok", "2100"),
            replica(O, "0", "slave", "ok", "300"),
        ];
        let e = sentinel_pick(&r, T, &[O.into()]).unwrap_err();
        assert_eq!(
            e,
            "it lists 127.0.0.1:7001 with slave-priority 0, flags slave, master-link-status ok, INFO 2.1 s old"
        );
    }

    #[test]
    fn down_disconnected_unlinked_stale_or_unlisted_targets_are_not_ready() {
        for r in [
            replica(T, "100", "slave,s_down", "ok", "100"),
            replica(T, "100", "slave,disconnected", "ok", "100"),
            replica(T, "100", "slave", "err", "100"),
            replica(T, "100", "slave", "ok", "31000"),
        ] {
            assert!(
                sentinel_pick(std::slice::from_ref(&r), T, &[]).is_err(),
                "{r:?}"
            );
        }
        let e = sentinel_pick(&[replica(O, "0", "slave", "ok", "1")], T, &[O.into()]);
        assert_eq!(e, Err(format!("it does not list {T} as a replica yet")));
    }

    #[test]
    fn another_replica_still_promotable_is_named() {
        let r = [
            replica(T, "100", "slave", "ok", "100"),
            replica(O, "100", "slave", "ok", "100"),
        ];
        let e = sentinel_pick(&r, T, &[O.into()]).unwrap_err();
        assert!(
            e.ends_with("and not yet priority 0 for 127.0.0.1:7002"),
            "{e}"
        );
    }

    #[test]
    fn refusals_say_what_each_sentinel_answered_and_sees() {
        let key = |port| InstanceKey {
            host: "local".into(),
            port,
        };
        let refusals = vec![
            (
                key(26379),
                "NOGOODSLAVE No suitable replica to promote".to_string(),
            ),
            (key(26380), "connection refused".to_string()),
        ];
        let views = vec![(
            key(26379),
            Err("it lists 127.0.0.1:7001 with slave-priority 0, flags slave, master-link-status ok, INFO 4.0 s old".to_string()),
        )];
        assert_eq!(
            sentinel_refusals(&refusals, &views),
            "Sentinel local:26379: NOGOODSLAVE No suitable replica to promote; it lists 127.0.0.1:7001 with slave-priority 0, flags slave, master-link-status ok, INFO 4.0 s old\n  - Sentinel local:26380: connection refused"
        );
    }
}
