//! Steps on one instance: start (as declared or as a replica), configuration files and live
//! settings, ACL users, REPLICAOF, promotion of a group replica.

use super::*;

impl Context {
    pub(super) async fn ensure_started_replica(
        &self,
        node: &InstanceKey,
        master: &InstanceKey,
    ) -> Result<(), StepError> {
        self.refuse_loop(node, master).await?;
        self.start(
            node,
            crate::plan::replica_start_args(&self.topology, master),
        )
        .await
    }

    pub(super) async fn ensure_promoted(
        &self,
        index: usize,
        group: &str,
        node: &InstanceKey,
        from: &InstanceKey,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        let mut c = self.conn(node).await?;
        c.cmd(&["REPLICAOF", "NO", "ONE"]).await?;
        self.gate_observed(
            index,
            &format!("{node} acts as master of {group} in place of {from}"),
            on_event,
            |obs| match obs.nodes.get(node).and_then(|o| o.repl.as_ref()) {
                Some(r) if r.is_master => Vec::new(),
                _ => vec![format!("{node} is not acting as master yet")],
            },
        )
        .await
    }

    pub(super) async fn ensure_config_set(
        &self,
        node: &InstanceKey,
        params: &[(String, String)],
    ) -> Result<(), StepError> {
        let mut c = self.conn(node).await?;
        // A certificate, its key and CA change in one CONFIG SET: Redis reloads its TLS
        // context once, and would refuse a new certificate with the old key.
        let (tls, other): (Vec<_>, Vec<_>) =
            params.iter().partition(|(k, _)| k.starts_with("tls-"));
        if !tls.is_empty() {
            let mut args = vec!["CONFIG".to_string(), "SET".into()];
            for (k, v) in tls {
                args.extend([k.clone(), v.clone()]);
            }
            c.cmd(&args).await?;
        }
        for (k, v) in other {
            c.cmd(&["CONFIG", "SET", k, v]).await?;
        }
        Ok(())
    }

    pub(super) async fn ensure_acl_users(
        &self,
        node: &InstanceKey,
        users: &[String],
    ) -> Result<(), StepError> {
        let t = self.target(node);
        let mut c = self.conn(node).await?;
        for name in users {
            let Some(u) = t.acl.iter().find(|u| &u.name == name) else {
                continue;
            };
            let mut args = vec!["ACL".to_string(), "SETUSER".into(), u.name.clone()];
            if t.kind == TargetKind::Sentinel {
                // A Sentinel's default user: only its passwords (its rules are its own).
                args.extend(["on".to_string(), "resetpass".into()]);
                args.extend(u.hashes.iter().map(|h| format!("#{h}")));
            } else {
                args.extend(u.setuser_args());
            }
            c.cmd(&args).await?;
        }
        persist_sentinel_acl(&mut c, t.kind).await
    }

    pub(super) async fn ensure_replica_of(
        &self,
        node: &InstanceKey,
        master: &InstanceKey,
    ) -> Result<(), StepError> {
        self.refuse_loop(node, master).await?;
        let m = &self.target(master).managed;
        let mut c = self.conn(node).await?;
        c.cmd(&[
            "REPLICAOF".to_string(),
            m.address.to_string(),
            m.port.to_string(),
        ])
        .await?;
        Ok(())
    }

    pub(super) fn write_files(&self, node: &InstanceKey) -> Result<(), StepError> {
        let t = self.target(node);
        let paths = &t.managed.paths;
        let io = |what: &str, e: std::io::Error| {
            StepError::Other(format!("{what} {}: {e}", paths.dir.display()))
        };
        fsio::ensure_dir(&paths.dir, 0o750).map_err(|e| io("create", e))?;
        fsio::ensure_dir(&paths.data, 0o750).map_err(|e| io("create", e))?;
        for f in &t.rendered {
            // Sentinel owns its file once written.
            if t.kind == TargetKind::Sentinel && f.path.exists() {
                continue;
            }
            fsio::write_atomic(&f.path, &f.contents, f.mode).map_err(|e| io("write", e))?;
        }
        // Copies of renewed certificates and keys (content-hashed names, render/tls.rs) that
        // the new redis.conf no longer names. Redis holds its TLS context in memory, so the
        // running instance needs none of them. Sentinels keep theirs: their sentinel.conf is
        // theirs to rewrite and still names the copies it started with.
        if t.kind != TargetKind::Sentinel
            && let Ok(dir) = std::fs::read_dir(&paths.dir)
        {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let path = e.path();
                if name.starts_with("tls-")
                    && name.ends_with(".pem")
                    && !t.rendered.iter().any(|f| f.path == path)
                {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok(())
    }

    /// Stop a Sentinel, point the `tls-*-file` lines of its sentinel.conf at the renewed
    /// copies (everything else in the file is Sentinel's and stays as it wrote it), start it
    /// and wait until it answers.
    pub(super) async fn restart_sentinel(&self, node: &InstanceKey) -> Result<(), StepError> {
        self.write_files(node)?;
        let t = self.target(node);
        let conf_path = t.managed.paths.config.clone();
        let sup = self.supervisor.clone();
        let m = t.managed.clone();
        // SIGTERM at once: Sentinel saves its state and exits (no data to flush).
        tokio::task::spawn_blocking(move || sup.stop(&m, Duration::ZERO))
            .await
            .map_err(|e| StepError::Other(e.to_string()))?
            .map_err(|e| StepError::Other(e.to_string()))?;
        let conf = std::fs::read_to_string(&conf_path)
            .map_err(|e| StepError::Other(format!("read {}: {e}", conf_path.display())))?;
        let mut lines: Vec<String> = conf
            .lines()
            .filter(|l| {
                let k = l.split_whitespace().next().unwrap_or("");
                !t.live_params.iter().any(|(p, _)| k.eq_ignore_ascii_case(p))
            })
            .map(str::to_string)
            .collect();
        for (k, v) in &t.live_params {
            lines.push(format!("{k} {}", crate::render::quote(v)));
        }
        let text = lines.join("\n") + "\n";
        fsio::write_atomic(&conf_path, text.as_bytes(), 0o600)
            .map_err(|e| StepError::Other(format!("write {}: {e}", conf_path.display())))?;
        self.start(node, Vec::new()).await
    }

    pub(super) async fn start(
        &self,
        node: &InstanceKey,
        args: Vec<String>,
    ) -> Result<(), StepError> {
        self.write_files(node)?;
        let t = self.target(node);
        if t.kind == TargetKind::Sentinel {
            // Stopped here: its file is not being rewritten. Drop a rotated-away password.
            let conf_path = &t.managed.paths.config;
            if let Some(text) = std::fs::read_to_string(conf_path)
                .ok()
                .and_then(|c| crate::render::acl::without_inert_requirepass(&c))
            {
                fsio::write_atomic(conf_path, text.as_bytes(), 0o600)
                    .map_err(|e| StepError::Other(format!("write {}: {e}", conf_path.display())))?;
            }
        }
        let sup = self.supervisor.clone();
        let m = t.managed.clone();
        let pid = tokio::task::spawn_blocking(move || sup.start(&m, &args))
            .await
            .map_err(|e| StepError::Other(e.to_string()))?
            .map_err(|e| StepError::Other(e.to_string()))?;
        // Ready = answers PING (after loading its data).
        let deadline = Instant::now() + self.gate_timeout;
        let mut last: String;
        loop {
            match self.conn(node).await {
                Ok(mut c) => match c.cmd(&["PING"]).await {
                    Ok(_) if t.kind != TargetKind::Cluster => return Ok(()),
                    Ok(_) => {
                        let id = c.text(&["CLUSTER", "MYID"]).await?;
                        let _guard = self.record_lock.lock().await;
                        let mut record = load_record(&self.state_dir, &self.topology.name);
                        let live = observe::fetch_on(&mut c).await.ok();
                        // Record only ids we can vouch for: a node that came up empty, or
                        // the id this address already had.
                        if live.as_ref().is_some_and(Live::is_fresh)
                            || record.id_of(node) == Some(id.as_str())
                        {
                            if let Some(old) = record.node_ids.insert(node.to_string(), id.clone())
                                && old != id
                                && !record.replaced.contains(&old)
                            {
                                record.replaced.push(old);
                            }
                            self.save_record(&record)
                                .map_err(|e| StepError::Other(e.to_string()))?;
                        }
                        return Ok(());
                    }
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            if let ProcState::Stopped | ProcState::Stale { .. } = self.supervisor.status(&t.managed)
            {
                return Err(StepError::Other(format!(
                    "{} (pid {pid}) exited during startup; last lines of {}:\n{}",
                    t.managed.binary.display(),
                    t.managed.paths.log.display(),
                    log_tail(&t.managed.paths.log, 8)
                )));
            }
            if Instant::now() > deadline {
                return Err(StepError::Other(format!(
                    "not answering {} s after start: {last}",
                    self.gate_timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Refuse a `REPLICAOF` (or a start as replica) that would close a replication loop:
    /// `master` replicates, directly or through a chain, from `node`.
    pub(super) async fn refuse_loop(
        &self,
        node: &InstanceKey,
        master: &InstanceKey,
    ) -> Result<(), StepError> {
        let me = &self.target(node).managed;
        let me_addr = (me.address.to_string(), me.port);
        let mut chain = vec![master.to_string()];
        let mut cur = master.clone();
        for _ in 0..self.targets.len() {
            let Ok(mut c) = self.conn(&cur).await else {
                return Ok(());
            };
            let Ok(text) = c.text(&["INFO", "replication"]).await else {
                return Ok(());
            };
            let info = observe::parse::info(&text);
            if info.get("role").map(String::as_str) != Some("slave") {
                return Ok(());
            }
            let (Some(h), Some(p)) = (
                info.get("master_host"),
                info.get("master_port").and_then(|p| p.parse::<u16>().ok()),
            ) else {
                return Ok(());
            };
            if (h.clone(), p) == me_addr {
                chain.push(node.to_string());
                return Err(StepError::Other(format!(
                    "refused: making {node} a replica of {master} would close a replication loop ({node} ← {}); no member would accept writes",
                    chain.join(" ← ")
                )));
            }
            let Some(next) = self
                .targets
                .iter()
                .find(|t| t.managed.address.to_string() == *h && t.managed.port == p)
            else {
                return Ok(());
            };
            cur = next.managed.key.clone();
            chain.push(cur.to_string());
        }
        Ok(())
    }

    pub(super) async fn ensure_passwords_added(
        &self,
        node: &InstanceKey,
        user: &str,
    ) -> Result<(), StepError> {
        let t = self.target(node);
        let Some(u) = t.acl.iter().find(|u| u.name == user) else {
            return Ok(());
        };
        // The declared user whole, with the passwords it accepts now kept (read
        // back first): nobody authenticating with the old password is refused.
        let mut c = self.conn(node).await?;
        if t.kind == TargetKind::Sentinel {
            // Adding hashes keeps the passwords it has and its own rules.
            let mut args = vec![
                "ACL".to_string(),
                "SETUSER".into(),
                u.name.clone(),
                "on".into(),
            ];
            args.extend(u.hashes.iter().map(|h| format!("#{h}")));
            c.cmd(&args).await?;
            return persist_sentinel_acl(&mut c, t.kind).await;
        }
        let live = c
            .cmd(&["ACL".to_string(), "GETUSER".into(), u.name.clone()])
            .await?;
        let mut keep = u.clone();
        if let Some(view) = crate::observe::acl::parse_getuser(&live) {
            keep.hashes
                .extend(view.hashes.into_iter().filter(|h| !u.hashes.contains(h)));
        }
        let mut args = vec!["ACL".to_string(), "SETUSER".into(), u.name.clone()];
        args.extend(keep.setuser_args());
        c.cmd(&args).await?;
        Ok(())
    }

    pub(super) async fn ensure_master_auth(&self, node: &InstanceKey) -> Result<(), StepError> {
        let Some(pass) = &self.target(node).auth_pass else {
            return Ok(());
        };
        let mut c = self.conn(node).await?;
        c.cmd(&["CONFIG", "SET", "masterauth", pass]).await?;
        Ok(())
    }
}

/// A Sentinel keeps ACL changes only in memory until it rewrites sentinel.conf (which writes
/// every user, the default one included): `SENTINEL FLUSHCONFIG` now, so that a restart
/// comes back with the passwords it accepts live.
async fn persist_sentinel_acl(c: &mut Conn, kind: TargetKind) -> Result<(), StepError> {
    if kind == TargetKind::Sentinel {
        c.cmd(&["SENTINEL", "FLUSHCONFIG"]).await?;
    }
    Ok(())
}
