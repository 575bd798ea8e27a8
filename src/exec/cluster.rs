//! Cluster steps: config epochs, slots added, MEET, REPLICATE, slot moves, retiring and
//! forgetting nodes.

use super::*;
use crate::topology::slots::SlotRange;

impl Context {
    /// Promote the replica `node` with `CLUSTER FAILOVER` (FORCE when `force`) and wait until
    /// every cluster node sees it as the master and its old master as a replica.
    pub async fn cluster_failover(
        &self,
        index: usize,
        node: &InstanceKey,
        force: bool,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        let mut c = self.conn(node).await?;
        let before = observe::fetch_on(&mut c)
            .await
            .map_err(|e| StepError::Other(e.to_string()))?;
        let old_master = match (&before.myself.master_id, before.myself.flags.replica) {
            (Some(m), true) => m.clone(),
            _ => return Ok(()), // already a master: nothing to do
        };
        let mut args = vec!["CLUSTER", "FAILOVER"];
        if force {
            args.push("FORCE");
        }
        // Every node that answers now must agree; one that does not (a drained or failed
        // host) learns the new roles when it comes back.
        let declared: Vec<InstanceKey> = self
            .targets
            .iter()
            .filter(|t| t.kind == TargetKind::Cluster)
            .map(|t| t.managed.key.clone())
            .collect();
        let answering = futures::future::join_all(declared.iter().map(|k| self.conn(k))).await;
        let nodes: Vec<InstanceKey> = declared
            .into_iter()
            .zip(answering)
            .filter(|(_, c)| c.is_ok())
            .map(|(k, _)| k)
            .collect();
        let id = before.myself.id.clone();
        // A manual failover that does not complete within Redis's 5 s (CLUSTER_MF_TIMEOUT) is
        // abandoned silently; seen under write load right after a previous failover of the
        // same shard. Ask again while the node is still a replica, until the gate timeout.
        let overall = Instant::now() + self.gate_timeout;
        loop {
            c.cmd(&args).await?;
            let attempt = (Instant::now() + Duration::from_secs(7)).min(overall);
            let r = self
                .failover_gate(index, node, &id, &old_master, &nodes, attempt, on_event)
                .await;
            match r {
                Err(StepError::Gate(_)) if Instant::now() < overall => {
                    let still_replica = observe::fetch_on(&mut c)
                        .await
                        .is_ok_and(|l| l.myself.flags.replica);
                    if !still_replica {
                        // Promoted; the rest of the agreement may take a little longer.
                        return self
                            .failover_gate(index, node, &id, &old_master, &nodes, overall, on_event)
                            .await;
                    }
                    on_event(Event::StepWaiting {
                        index,
                        missing: 1,
                        first: format!(
                            "{node}: the manual failover was abandoned by Redis; asking again"
                        ),
                    });
                }
                r => return r,
            }
        }
    }

    /// Every node in `nodes` sees `node` (id `id`) as master and `old_master` as not.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn failover_gate(
        &self,
        index: usize,
        node: &InstanceKey,
        id: &str,
        old_master: &str,
        nodes: &[InstanceKey],
        deadline: Instant,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        let (id, old_master) = (id.to_string(), old_master.to_string());
        self.gate_until(
            index,
            nodes,
            &format!("every node sees {node} as master"),
            deadline,
            on_event,
            |lives| {
                let mut missing = Vec::new();
                for (k, l) in lives {
                    let me = l.myself.id == id;
                    let line = if me { Some(&l.myself) } else { l.peer(&id) };
                    if !line.is_some_and(|x| x.flags.master) {
                        missing.push(format!("{k} does not see {node} as master yet"));
                    }
                    let old = if l.myself.id == old_master {
                        Some(&l.myself)
                    } else {
                        l.peer(&old_master)
                    };
                    if old.is_some_and(|x| x.flags.master) {
                        missing.push(format!(
                            "{k} still sees the old master {} as master",
                            crate::plan::short(&old_master)
                        ));
                    }
                }
                missing
            },
        )
        .await
    }

    /// `CLUSTER FAILOVER FORCE` on `node`, a replica of the down master `from`; when the other
    /// masters have not voted within twice the node timeout (e.g. a majority of masters is
    /// down too), `CLUSTER FAILOVER TAKEOVER`: `from`'s process is known to be stopped on this
    /// host, so no second master can be serving. Done when `node` serves slots.
    ///
    /// With `reopen` (`from` died moving slots away) the promotion is `TAKEOVER` at once, in
    /// one transaction with those slots' MIGRATING marks and the deletion of the stale copies
    /// (`migrate::take_over_mid_move`): `FORCE` promotes whenever the votes arrive, and from
    /// then until the marks are set the node would serve moved keys as its own. The vote is
    /// not needed for safety here, for the reason `TAKEOVER` is: `from` is known stopped.
    pub(super) async fn take_over(
        &self,
        index: usize,
        node: &InstanceKey,
        from: &InstanceKey,
        reopen: &[plan::Reopen],
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        let mut c = self.conn(node).await?;
        let moves: Vec<migrate::OpenMove> = reopen
            .iter()
            .map(|r| migrate::OpenMove {
                to_addr: &r.to_addr,
                slots: r.slots.iter().flat_map(|r| r.start..=r.end).collect(),
            })
            .collect();
        let node_timeout = self
            .topology
            .cluster
            .as_ref()
            .map_or(5000, |c| c.settings.node_timeout_ms);
        let vote_wait = Duration::from_millis((2 * node_timeout).max(3000));
        let promoted = if moves.is_empty() {
            None
        } else {
            let others: Vec<String> = self
                .targets
                .iter()
                .filter(|t| t.kind == TargetKind::Cluster && &t.managed.key != node)
                .map(|t| t.endpoint.clone())
                .collect();
            migrate::take_over_mid_move(
                &mut c,
                &moves,
                &others,
                vote_wait,
                self.password.as_ref(),
                self.call_timeout,
            )
            .await
            .map_err(|e| StepError::Other(format!("{node}: {e}")))?
        };
        if promoted.is_none() && !moves.is_empty() {
            tracing::debug!(
                target: "redisctl::redis",
                "{node} takes over from {from} by FORCE: it is a master already, or its view of the slots did not settle"
            );
        }
        if let Some(done) = &promoted {
            // `-v` shows it; the tests count the stale copies with it.
            tracing::debug!(
                target: "redisctl::redis",
                "{node} took over from {from}{}: {} slot(s) MIGRATING again, {} stale copies deleted ({} after the transaction)",
                if done.already_master { " (it was a master already)" } else { "" },
                done.reopened,
                done.stale,
                done.late
            );
        }
        let ask = |mode: &'static str| async move {
            let mut c = self.conn(node).await?;
            match c.cmd(&["CLUSTER", "FAILOVER", mode]).await {
                Ok(_) => Ok(()),
                // Already promoted by an earlier attempt or by the cluster itself.
                Err(ClientError::Server { message, .. })
                    if message.contains("already a master") =>
                {
                    Ok(())
                }
                Err(e) => Err(StepError::from(e)),
            }
        };
        if promoted.is_none() {
            ask("FORCE").await?;
        }
        let takeover_at = Instant::now() + vote_wait;
        let mut took_over = false;
        let what = format!("{node} serves the slots of {from}");
        let deadline = Instant::now() + self.gate_timeout;
        loop {
            let live = observe::fetch_on(&mut c)
                .await
                .map_err(|e| StepError::Other(e.to_string()))?;
            if live.myself.flags.master && !live.myself.slots.is_empty() {
                return Ok(());
            }
            if !took_over && Instant::now() > takeover_at {
                took_over = true;
                ask("TAKEOVER").await?;
            }
            if Instant::now() > deadline {
                return Err(StepError::Gate(ExecError::Gate {
                    secs: self.gate_timeout.as_secs(),
                    what,
                    missing: format!(
                        "{node} is still a replica (CLUSTER FAILOVER FORCE and TAKEOVER were refused or ignored)"
                    ),
                }));
            }
            on_event(Event::StepWaiting {
                index,
                missing: 1,
                first: what.clone(),
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `step` is a `Step::MoveSlots`.
    pub(super) async fn ensure_slots_moved(
        &self,
        step: &Step,
        index: usize,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        let Step::MoveSlots {
            from,
            to,
            from_addr,
            to_addr,
            slots,
        } = step
        else {
            return Err(StepError::Other(format!("not a slot move: {step}")));
        };
        let others: Vec<String> = self
            .targets
            .iter()
            .filter(|t| {
                t.kind == TargetKind::Cluster && &t.managed.key != from && &t.managed.key != to
            })
            .map(|t| t.endpoint.clone())
            .collect();
        let job = migrate::Job {
            from_addr,
            to_addr,
            slots: slots.iter().flat_map(|r| r.start..=r.end).collect(),
            password: self.password.as_ref(),
            replace: self.replace,
            others,
            call_timeout: self.call_timeout,
            method: self.migration,
        };
        let report = |p: migrate::Progress| {
            on_event(Event::Moving {
                index,
                slots_done: p.slots_done,
                slots_total: p.slots_total,
                keys: p.keys_moved,
                elapsed: p.elapsed,
            })
        };
        // Journal the move before it starts; the next apply reports what it resumes.
        let journal = self
            .state_dir
            .join("moves")
            .join(format!("{from}-to-{to}.json"));
        let body = serde_json::to_vec_pretty(step).unwrap_or_default();
        let _ = fsio::ensure_dir(&self.state_dir.join("moves"), 0o750);
        fsio::write_atomic(&journal, &body, 0o640)
            .map_err(|e| StepError::Other(format!("journal {}: {e}", journal.display())))?;
        migrate::run(&job, &report).await.map_err(|e| match e {
            migrate::MoveError::Conflict(c) => StepError::Refused(c.to_string()),
            migrate::MoveError::Failed(m) => StepError::Other(m),
        })?;
        let _ = std::fs::remove_file(&journal);
        Ok(())
    }

    pub(super) async fn ensure_forgotten(&self, id: &str) -> Result<(), StepError> {
        self.forget_everywhere(id).await?;
        let _guard = self.record_lock.lock().await;
        let mut record = load_record(&self.state_dir, &self.topology.name);
        record.replaced.retain(|r| r != id);
        self.save_record(&record)
            .map_err(|e| StepError::Other(e.to_string()))
    }

    pub(super) async fn ensure_config_epoch(
        &self,
        node: &InstanceKey,
        epoch: u64,
    ) -> Result<(), StepError> {
        let mut c = self.conn(node).await?;
        match c
            .cmd(&["CLUSTER", "SET-CONFIG-EPOCH", &epoch.to_string()])
            .await
        {
            Ok(_) => Ok(()),
            // Already set, or the node met others meanwhile: Redis resolves epoch
            // collisions itself from here.
            Err(ClientError::Server {
                code: ErrorCode::Err,
                message,
                ..
            }) if message.contains("already non-zero")
                || message.contains("does not know any other node") =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn ensure_slots_added(
        &self,
        node: &InstanceKey,
        ranges: &[SlotRange],
    ) -> Result<(), StepError> {
        let mut c = self.conn(node).await?;
        let mut args: Vec<String> = vec!["CLUSTER".into(), "ADDSLOTSRANGE".into()];
        for r in ranges {
            args.push(r.start.to_string());
            args.push(r.end.to_string());
        }
        match c.cmd(&args).await {
            Ok(_) => Ok(()),
            Err(ClientError::Server { message, .. }) if message.contains("unknown subcommand") => {
                // Redis < 7.0: one ADDSLOTS with every slot.
                let mut args: Vec<String> = vec!["CLUSTER".into(), "ADDSLOTS".into()];
                for r in ranges {
                    args.extend((r.start..=r.end).map(|s| s.to_string()));
                }
                c.cmd(&args).await.map(|_| ()).map_err(Into::into)
            }
            Err(ClientError::Server { message, .. }) if message.contains("already busy") => {
                // Done by an earlier, interrupted attempt? Then every slot is ours.
                let live = observe::fetch_on(&mut c)
                    .await
                    .map_err(|e| StepError::Other(e.to_string()))?;
                let owned = |s: u16| live.myself.slots.iter().any(|r| r.contains(s));
                if ranges.iter().all(|r| (r.start..=r.end).all(owned)) {
                    Ok(())
                } else {
                    Err(StepError::Other(format!(
                        "{message}: another node claimed the slot meanwhile; run apply again to re-plan"
                    )))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn ensure_met(
        &self,
        index: usize,
        node: &InstanceKey,
        targets: &[InstanceKey],
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        // A node retired moments ago and declared again: every node refuses its id for
        // 60 s after CLUSTER FORGET, MEET included. Wait that out.
        let record = load_record(&self.state_dir, &self.topology.name);
        let until = std::iter::once(node)
            .chain(targets)
            .filter_map(|k| record.retired.get(&k.to_string()).map(|r| (k, r.at)))
            .map(|(k, at)| (k, at + crate::observe::FORGET_BAN.as_secs()))
            .max_by_key(|(_, t)| *t);
        if let Some((k, t)) = until {
            loop {
                let now = crate::observe::unix_now();
                if now >= t {
                    break;
                }
                on_event(Event::StepWaiting {
                    index,
                    missing: 1,
                    first: format!(
                        "{k} was removed from the cluster moments ago; Redis refuses a forgotten node for 60 s ({} s left)",
                        t - now
                    ),
                });
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let mut args: Vec<Vec<String>> = Vec::new();
        for who in std::iter::once(node).chain(targets) {
            let m = &self.target(who).managed;
            let bus = SocketAddr::new(m.address, m.port.saturating_add(10000));
            probe(bus, self.call_timeout).await.map_err(|e| {
                StepError::Other(format!(
                    "cannot reach the cluster bus of {who} at {bus}: {e}. The bus port (port + 10000) must be reachable between all nodes"
                ))
            })?;
            if who != node {
                args.push(vec![
                    "CLUSTER".into(),
                    "MEET".into(),
                    m.address.to_string(),
                    m.port.to_string(),
                ]);
            }
        }
        let mut c = self.conn(node).await?;
        let cmds: Vec<&[String]> = args.iter().map(Vec::as_slice).collect();
        for (reply, target) in c.pipeline(&cmds).await?.iter().zip(targets) {
            if let crate::observe::resp::Value::Error(e) = reply {
                return Err(StepError::Other(format!("CLUSTER MEET {target}: {e}")));
            }
        }
        Ok(())
    }

    pub(super) async fn ensure_replicates(
        &self,
        node: &InstanceKey,
        master: &InstanceKey,
    ) -> Result<(), StepError> {
        let master_id = self.conn(master).await?.text(&["CLUSTER", "MYID"]).await?;
        let mut c = self.conn(node).await?;
        let deadline = Instant::now() + self.gate_timeout;
        loop {
            match c.cmd(&["CLUSTER", "REPLICATE", &master_id]).await {
                Ok(_) => return Ok(()),
                // Gossip has not told this node about its master yet.
                Err(ClientError::Server { message, .. })
                    if message.contains("Unknown node") && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Stop a node the topology no longer declares and forget it everywhere, after checking
    /// once more that no node sees it owning a slot.
    pub(super) async fn retire(
        &self,
        node: &InstanceKey,
        id: &str,
        addr: &str,
    ) -> Result<(), StepError> {
        self.refuse_if_owning_slots(id, &node.to_string()).await?;
        // Stop it (keeping its data), then forget it while it cannot gossip itself back.
        let ip: std::net::IpAddr = addr
            .rsplit_once(':')
            .and_then(|(h, _)| h.trim_matches(['[', ']']).parse().ok())
            .ok_or_else(|| StepError::Other(format!("bad address {addr}")))?;
        let managed = crate::supervise::Managed {
            key: node.clone(),
            address: ip,
            port: node.port,
            paths: crate::render::InstancePaths::new(&self.state_dir, node),
            binary: PathBuf::from("redis-server"),
            config_via_stdin: true,
        };
        if let Ok(mut c) = Conn::connect(addr, self.password.as_ref(), self.call_timeout).await {
            let _ = c.cmd(&["SHUTDOWN"]).await;
        }
        let sup = self.supervisor.clone();
        let m = managed.clone();
        tokio::task::spawn_blocking(move || {
            sup.stop(&m, Duration::from_secs(10))?;
            sup.unregister(&m)
        })
        .await
        .map_err(|e| StepError::Other(e.to_string()))?
        .map_err(|e| StepError::Other(e.to_string()))?;
        self.forget_everywhere(id).await?;
        if self.options.purge && managed.paths.dir.exists() {
            std::fs::remove_dir_all(&managed.paths.dir).map_err(|e| {
                StepError::Other(format!("remove {}: {e}", managed.paths.dir.display()))
            })?;
        }
        let _guard = self.record_lock.lock().await;
        let mut record = load_record(&self.state_dir, &self.topology.name);
        if let Some(id) = record.node_ids.remove(&node.to_string()) {
            let at = crate::observe::unix_now();
            record
                .retired
                .insert(node.to_string(), crate::observe::Retired { id, at });
        }
        self.save_record(&record)
            .map_err(|e| StepError::Other(e.to_string()))?;
        Ok(())
    }

    /// A node is never stopped or forgotten while any node sees it owning a slot.
    pub(super) async fn refuse_if_owning_slots(
        &self,
        id: &str,
        name: &str,
    ) -> Result<(), StepError> {
        for t in self
            .targets
            .iter()
            .filter(|t| t.kind == TargetKind::Cluster)
        {
            if let Ok(mut c) = self.conn(&t.managed.key).await
                && let Ok(live) = observe::fetch_on(&mut c).await
                && live.peer(id).is_some_and(|l| !l.slots.is_empty())
            {
                return Err(StepError::Other(format!(
                    "{} still sees {name} owning slots; a slot-owning node is never forgotten",
                    t.managed.key
                )));
            }
        }
        Ok(())
    }

    /// `CLUSTER FORGET id` on every declared cluster node at once (within the 60 s ban), after
    /// checking that nobody sees it owning a slot.
    pub(super) async fn forget_everywhere(&self, id: &str) -> Result<(), StepError> {
        self.refuse_if_owning_slots(id, crate::plan::short(id))
            .await?;
        let declared: Vec<&Target> = self
            .targets
            .iter()
            .filter(|t| t.kind == TargetKind::Cluster)
            .collect();
        let forgets = declared.iter().map(|t| async move {
            match self.conn(&t.managed.key).await {
                Ok(mut c) => match c.cmd(&["CLUSTER", "FORGET", id]).await {
                    Ok(_) => Ok(()),
                    Err(ClientError::Server { message, .. })
                        if message.contains("Unknown node") =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            }
        });
        let errors: Vec<String> = futures::future::join_all(forgets)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if !errors.is_empty() {
            return Err(StepError::Other(format!(
                "CLUSTER FORGET {id}: {}",
                errors.join("; ")
            )));
        }
        Ok(())
    }
}

pub(super) async fn probe(addr: SocketAddr, limit: Duration) -> Result<(), String> {
    match tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
    }
}

impl Context {
    /// Switch every node between TLS modes at once (plan::tls_switch): each group of
    /// settings on all nodes concurrently before the next group (render::tls::switch_groups),
    /// then wait until every node sees every other connected again, reports cluster_state:ok
    /// and every replica is linked. A bus that speaks TLS on some nodes and plain on others
    /// is partitioned, so the groups follow each other within milliseconds.
    pub(super) async fn ensure_tls_switch(
        &self,
        index: usize,
        nodes: &[(InstanceKey, Vec<(String, String)>)],
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        let conns = futures::future::join_all(nodes.iter().map(|(k, _)| self.conn(k))).await;
        let mut conns: Vec<Conn> = conns.into_iter().collect::<Result<_, _>>()?;
        let groups: Vec<Vec<Vec<(String, String)>>> = nodes
            .iter()
            .map(|(_, p)| crate::render::tls::switch_groups(p))
            .collect();
        for g in 0..groups.first().map_or(0, Vec::len) {
            let sets = conns.iter_mut().zip(&groups).map(|(c, gs)| async move {
                if gs[g].is_empty() {
                    return Ok(());
                }
                let mut args = vec!["CONFIG".to_string(), "SET".into()];
                for (k, v) in &gs[g] {
                    args.extend([k.clone(), v.clone()]);
                }
                c.cmd(&args).await.map(|_| ())
            });
            for r in futures::future::join_all(sets).await {
                r?;
            }
        }
        // Every node must know every node's new ports before clients are sent by them: a
        // TLS client sent to a plain port (or the other way round) hangs or fails.
        let expected: Vec<(Option<u16>, Option<u16>)> = {
            let mut v: Vec<_> = self
                .topology
                .cluster_instances()
                .map(|i| crate::render::tls::announced_ports(&self.topology, i.port))
                .collect();
            v.sort_unstable();
            v
        };
        let what = "every node knows every node's new plain and TLS ports (CLUSTER SHARDS)";
        let deadline = Instant::now() + self.gate_timeout;
        loop {
            let mut missing = Vec::new();
            for ((k, _), c) in nodes.iter().zip(conns.iter_mut()) {
                let mut seen = shard_ports(&c.cmd(&["CLUSTER", "SHARDS"]).await?);
                seen.sort_unstable();
                if seen != expected {
                    missing.push(format!("{k} still announces other ports ({seen:?})"));
                }
            }
            if self.settled(index, what, deadline, missing, on_event)? {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let keys: Vec<InstanceKey> = self
            .topology
            .cluster_instances()
            .map(|i| i.key.clone())
            .collect();
        self.gate(
            index,
            &keys,
            "after the TLS switch, every node sees every other as connected, reports cluster_state:ok, and every replica is linked",
            on_event,
            |lives| {
                let mut missing = converge::membership_problems(lives);
                missing.extend(
                    lives
                        .iter()
                        .filter(|(_, l)| l.cluster_state != "ok")
                        .map(|(k, l)| format!("{k} reports cluster_state:{}", l.cluster_state)),
                );
                missing.extend(converge::problems(&self.topology, lives));
                missing
            },
        )
        .await
    }
}

/// The (plain, TLS) client ports of every node in a `CLUSTER SHARDS` reply.
fn shard_ports(v: &crate::observe::resp::Value) -> Vec<(Option<u16>, Option<u16>)> {
    fn field<'a>(
        kv: &'a [crate::observe::resp::Value],
        name: &str,
    ) -> Option<&'a crate::observe::resp::Value> {
        kv.chunks(2)
            .find(|p| p[0].as_text().as_deref() == Some(name))
            .and_then(|p| p.get(1))
    }
    let port = |kv: &[crate::observe::resp::Value], name: &str| {
        field(kv, name)
            .and_then(crate::observe::resp::Value::as_text)
            .and_then(|t| t.parse::<u16>().ok())
    };
    let mut out = Vec::new();
    let crate::observe::resp::Value::Array(shards) = v else {
        return out;
    };
    for shard in shards {
        let crate::observe::resp::Value::Array(kv) = shard else {
            continue;
        };
        let Some(crate::observe::resp::Value::Array(nodes)) = field(kv, "nodes") else {
            continue;
        };
        for n in nodes {
            if let crate::observe::resp::Value::Array(nkv) = n {
                out.push((port(nkv, "port"), port(nkv, "tls-port")));
            }
        }
    }
    out
}
