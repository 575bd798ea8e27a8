//! Host maintenance: `drain` (masters off a host, then its instances stopped and the host
//! marked), `undrain` (back, roles restored) and `restart --rolling` (one instance at a time,
//! a master only after a safe failover). Built from the executor's own parts: the same safe
//! failovers as `redisctl failover`, the same slot-move engine, the same Start steps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Context, Event, ExecError, StepError, Summary};
use crate::observe::{Observed, TargetKind};
use crate::plan::{self, Plan, Step, in_sync};
use crate::topology::InstanceKey;
use crate::topology::slots::{SlotRange, ranges_of};

/// What `drain` recorded about a host, kept until `undrain` finishes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DrainMark {
    pub host: String,
    /// Unix time the drain started.
    pub since: u64,
    /// The instances on the host that were masters (cluster shards and groups).
    pub masters: Vec<InstanceKey>,
}

pub fn mark_path(state_dir: &Path, host: &str) -> PathBuf {
    state_dir.join("drained").join(format!("{host}.json"))
}

pub fn load_mark(state_dir: &Path, host: &str) -> Option<DrainMark> {
    let bytes = std::fs::read(mark_path(state_dir, host)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// One mastership handed over.
#[derive(Debug, Clone, Serialize)]
pub struct Handover {
    pub from: InstanceKey,
    pub to: InstanceKey,
    /// `cluster` or the group's name.
    pub of: String,
    pub ms: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub host: String,
    pub moved: Vec<Handover>,
    /// Slot moves (drain --move-slots): "from → to: N slots".
    pub slots_moved: Vec<String>,
    pub stopped: Vec<InstanceKey>,
    pub started: Vec<InstanceKey>,
    pub restarted: Vec<InstanceKey>,
    /// Risks accepted with --force, and what stays degraded until undrain.
    pub left: Vec<String>,
    pub ms: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn lift(index: usize, what: &str) -> impl Fn(StepError) -> ExecError + '_ {
    move |e| match e {
        StepError::Gate(g) => g,
        StepError::Other(message) => ExecError::Step {
            index,
            step: what.to_string(),
            message,
        },
        StepError::Refused(message) => ExecError::StepRefused {
            index,
            step: what.to_string(),
            message,
        },
    }
}

fn offset(l: &crate::observe::Live, field: &str) -> i64 {
    l.info(field).and_then(|v| v.parse().ok()).unwrap_or(0)
}

impl Context {
    fn on_host(&self, key: &InstanceKey, host: &str) -> bool {
        key.host == host
    }

    fn host_targets(&self, host: &str) -> Vec<&crate::observe::Target> {
        self.targets
            .iter()
            .filter(|t| t.managed.key.host == host)
            .collect()
    }

    /// Refuse to act for a host this run does not run on.
    fn require_local(&self, host: &str, verb: &str) -> Result<(), ExecError> {
        if !self.topology.hosts.iter().any(|h| h.name == host) {
            let names: Vec<&str> = self
                .topology
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect();
            return Err(ExecError::Refused(format!(
                "no host {host:?} in the topology; hosts are: {}",
                names.join(", ")
            )));
        }
        let ts = self.host_targets(host);
        if ts.is_empty() {
            return Err(ExecError::Refused(format!(
                "host {host} runs no instance of this deployment; nothing to {verb}"
            )));
        }
        if ts.iter().any(|t| !t.local) {
            return Err(ExecError::Refused(format!(
                "{verb} {host} must run on {host} itself (it stops and starts {host}'s instances and keeps the mark in its state directory); run it there, or pass --host {host} if this machine is {host}"
            )));
        }
        Ok(())
    }

    /// Cluster nodes that are masters with slots, per the node itself.
    fn cluster_masters_on(&self, obs: &Observed, host: &str) -> Vec<InstanceKey> {
        obs.nodes
            .iter()
            .filter(|(k, _)| self.on_host(k, host))
            .filter_map(|(k, o)| o.live.as_ref().map(|l| (k, l)))
            .filter(|(_, l)| l.myself.flags.master && !l.myself.slots.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The most up-to-date in-sync replica of cluster master `master` on another host.
    fn best_cluster_replica(
        &self,
        obs: &Observed,
        master: &InstanceKey,
        avoid_host: &str,
    ) -> Option<InstanceKey> {
        let m = obs.nodes.get(master)?.live.as_ref()?;
        obs.nodes
            .iter()
            .filter(|(k, _)| !self.on_host(k, avoid_host))
            .filter_map(|(k, o)| o.live.as_ref().map(|l| (k, l)))
            .filter(|(_, l)| {
                l.myself.flags.replica
                    && l.myself.master_id.as_deref() == Some(m.myself.id.as_str())
                    && in_sync(&m.info, &l.info) == Ok(true)
            })
            .max_by_key(|(_, l)| offset(l, "slave_repl_offset"))
            .map(|(k, _)| k.clone())
    }

    /// The most up-to-date in-sync member of a group on another host.
    fn best_group_replica(
        &self,
        obs: &Observed,
        g: &crate::topology::Group,
        master: &InstanceKey,
        avoid_host: &str,
    ) -> Option<InstanceKey> {
        let mr = obs.nodes.get(master)?.repl.as_ref()?;
        g.members()
            .filter(|m| &m.key != master && !self.on_host(&m.key, avoid_host))
            .filter_map(|m| {
                let r = obs.nodes.get(&m.key)?.repl.as_ref()?;
                (!r.is_master && in_sync(&mr.info, &r.info) == Ok(true))
                    .then_some((m.key.clone(), r.offset))
            })
            .max_by_key(|(_, off)| *off)
            .map(|(k, _)| k)
    }

    /// `redisctl drain HOST`.
    pub async fn drain(
        &self,
        host: &str,
        force: bool,
        move_slots: bool,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<Report, ExecError> {
        let t0 = Instant::now();
        self.require_local(host, "drain")?;
        if load_mark(&self.state_dir, host).is_some() {
            return Err(ExecError::Refused(format!(
                "{host} is already drained; `redisctl undrain` brings it back"
            )));
        }
        let obs = self.observe().await;
        let mut risks = Vec::new();
        let mut report = Report {
            host: host.to_string(),
            ..Report::default()
        };

        // Another host with nothing answering: drained, or down. Both halve the margin.
        for h in &self.topology.hosts {
            let ts = self.host_targets(&h.name);
            if h.name != host
                && !ts.is_empty()
                && ts.iter().all(|t| {
                    !obs.nodes
                        .get(&t.managed.key)
                        .is_some_and(|o| o.port_answers)
                })
            {
                risks.push(format!(
                    "host {} has no instance answering (drained or down); draining {host} too leaves shards without any copy",
                    h.name
                ));
            }
        }

        // Cluster: every master here needs an in-sync replica elsewhere, or --move-slots.
        let mut failovers: Vec<(InstanceKey, InstanceKey)> = Vec::new();
        let mut evacuate: Vec<InstanceKey> = Vec::new();
        let masters_here = self.cluster_masters_on(&obs, host);
        for m in &masters_here {
            match self.best_cluster_replica(&obs, m, host) {
                Some(r) => failovers.push((m.clone(), r)),
                None if move_slots => evacuate.push(m.clone()),
                None => risks.push(format!(
                    "{m} is a master with no in-sync replica on another host; draining would leave its slots unserved. Pass --move-slots to move its slots to the other masters, or add a replica elsewhere"
                )),
            }
        }
        let other_masters = obs
            .nodes
            .iter()
            .filter(|(k, _)| !self.on_host(k, host))
            .filter_map(|(_, o)| o.live.as_ref())
            .filter(|l| l.myself.flags.master && !l.myself.slots.is_empty())
            .count();
        if !evacuate.is_empty() && other_masters == 0 {
            risks.push(format!(
                "every master is on {host}: there is no other master to move slots to"
            ));
        }

        // Groups: the master here needs an in-sync replica elsewhere and enough Sentinels
        // elsewhere to authorise the failover (and the next one).
        let mut group_failovers: Vec<(String, InstanceKey, InstanceKey)> = Vec::new();
        let mut group_masters_here = Vec::new();
        for g in &self.topology.groups {
            let current = plan::current_group_master(&self.topology, g, &obs)
                .key
                .clone();
            if !self.on_host(&current, host) {
                continue;
            }
            group_masters_here.push(current.clone());
            match self.best_group_replica(&obs, g, &current, host) {
                Some(r) => group_failovers.push((g.name.clone(), current, r)),
                None => risks.push(format!(
                    "group {}: its master {current} has no in-sync replica on another host",
                    g.name
                )),
            }
        }
        if let Some(s) = &self.topology.sentinel {
            let total = s.instances.len();
            let needed = (s.quorum as usize).max(total / 2 + 1);
            let elsewhere = s
                .instances
                .iter()
                .filter(|i| !self.on_host(&i.key, host))
                .filter(|i| obs.nodes.get(&i.key).is_some_and(|o| o.sentinel.is_some()))
                .count();
            if elsewhere < needed {
                risks.push(format!(
                    "Sentinels: {elsewhere} of {total} would remain answering without {host}; a failover needs {needed} (quorum {}, majority {})",
                    s.quorum,
                    total / 2 + 1
                ));
            }
        }
        if !risks.is_empty() {
            if !force {
                return Err(ExecError::Refused(format!(
                    "drain {host} refused; nothing was changed (--force drains anyway):\n  - {}",
                    risks.join("\n  - ")
                )));
            }
            report
                .left
                .extend(risks.iter().map(|r| format!("accepted with --force: {r}")));
        }

        // Mark first: from now on `apply` on this host starts nothing, and an interrupted
        // drain is finished by running drain again or reverted by undrain.
        let mark = DrainMark {
            host: host.to_string(),
            since: unix_now(),
            masters: masters_here
                .iter()
                .chain(group_masters_here.iter())
                .cloned()
                .collect(),
        };
        let path = mark_path(&self.state_dir, host);
        let err = |source| ExecError::State {
            path: path.display().to_string(),
            source,
        };
        crate::fsio::ensure_dir(path.parent().unwrap_or(&self.state_dir), 0o750).map_err(err)?;
        crate::fsio::write_atomic(
            &path,
            &serde_json::to_vec_pretty(&mark).unwrap_or_default(),
            0o640,
        )
        .map_err(err)?;

        // Nothing on this host may be promoted meanwhile.
        for t in self.host_targets(host) {
            let setting = match t.kind {
                TargetKind::Cluster => ["cluster-replica-no-failover", "yes"],
                TargetKind::Group => ["replica-priority", "0"],
                TargetKind::Sentinel => continue,
            };
            if let Ok(mut c) = self.conn(&t.managed.key).await {
                let _ = c.cmd(&["CONFIG", "SET", setting[0], setting[1]]).await;
            }
        }

        // Cluster masters: coordinated failovers, side by side (distinct shards).
        let runs = failovers
            .iter()
            .enumerate()
            .map(|(i, (from, to))| async move {
                let t = Instant::now();
                self.cluster_failover(i + 1, to, false, on_event)
                    .await
                    .map_err(lift(i + 1, "fail over"))?;
                Ok::<_, ExecError>(Handover {
                    from: from.clone(),
                    to: to.clone(),
                    of: "cluster".into(),
                    ms: t.elapsed().as_millis() as u64,
                })
            });
        for r in futures::future::join_all(runs).await {
            report.moved.push(r?);
        }
        for (i, (group, from, to)) in group_failovers.iter().enumerate() {
            let t = Instant::now();
            let index = failovers.len() + i + 1;
            self.sentinel_failover(index, group, to, on_event)
                .await
                .map_err(lift(index, "Sentinel failover"))?;
            report.moved.push(Handover {
                from: from.clone(),
                to: to.clone(),
                of: group.clone(),
                ms: t.elapsed().as_millis() as u64,
            });
        }

        // Masters without a replica elsewhere: their slots go to the other masters.
        if !evacuate.is_empty() {
            let plan = self.evacuation(&obs, &evacuate, host);
            report.slots_moved = plan.steps.iter().map(ToString::to_string).collect();
            let mut summary = Summary::default();
            self.execute(&plan, on_event, &mut summary).await?;
        }

        // Stop everything on the host, Sentinels included; not started at boot either.
        report.stopped = self.stop_host(host).await?;
        for g in &self.topology.groups {
            if g.members().filter(|m| !self.on_host(&m.key, host)).count() < 2 {
                report
                    .left
                    .push(format!("group {} has no replica until undrain", g.name));
            }
        }
        for (from, to) in &failovers {
            report.left.push(format!(
                "{to} (master now) runs without a replica until undrain restarts {from}"
            ));
        }
        for t in self.host_targets(host) {
            let k = &t.managed.key;
            let was_replica = obs
                .nodes
                .get(k)
                .and_then(|o| o.live.as_ref())
                .is_some_and(|l| l.myself.flags.replica);
            if t.kind == TargetKind::Cluster
                && was_replica
                && let Some(m) = self.master_of(&obs, k)
            {
                report.left.push(format!(
                    "{m} runs without a replica until undrain restarts {k}"
                ));
            }
        }
        report.ms = t0.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// Slot moves that empty `masters` (on `host`) onto the other masters, evenly.
    fn evacuation(&self, obs: &Observed, masters: &[InstanceKey], host: &str) -> Plan {
        let receivers: Vec<InstanceKey> = obs
            .nodes
            .iter()
            .filter(|(k, _)| !self.on_host(k, host))
            .filter_map(|(k, o)| o.live.as_ref().map(|l| (k, l)))
            .filter(|(_, l)| l.myself.flags.master && !l.myself.slots.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        let mut steps = Vec::new();
        for m in masters {
            let Some(l) = obs.nodes.get(m).and_then(|o| o.live.as_ref()) else {
                continue;
            };
            let slots: Vec<u16> = l
                .myself
                .slots
                .iter()
                .flat_map(|r| r.start..=r.end)
                .collect();
            let n = receivers.len().max(1);
            let per = slots.len().div_ceil(n);
            for (i, chunk) in slots.chunks(per.max(1)).enumerate() {
                let to = &receivers[i % n];
                let ranges: Vec<SlotRange> = ranges_of(chunk.iter().copied());
                steps.push(Step::MoveSlots {
                    from: m.clone(),
                    to: to.clone(),
                    from_addr: self.target(m).endpoint.clone(),
                    to_addr: self.target(to).endpoint.clone(),
                    slots: ranges,
                });
            }
        }
        Plan {
            steps,
            ..Plan::default()
        }
    }

    /// Stop every instance of `host` (SHUTDOWN saves what persistence is configured), and
    /// keep the service manager from starting them at boot.
    async fn stop_host(&self, host: &str) -> Result<Vec<InstanceKey>, ExecError> {
        // Data nodes side by side (each SHUTDOWN writes its own files), then the Sentinels.
        let mut stopped = Vec::new();
        for sentinels in [false, true] {
            let batch: Vec<&crate::observe::Target> = self
                .host_targets(host)
                .into_iter()
                .filter(|t| (t.kind == TargetKind::Sentinel) == sentinels)
                .collect();
            let runs = batch.iter().map(|t| async move {
                self.stop_one(&t.managed.key, true)
                    .await
                    .map_err(|e| lift(0, &format!("stop {}", t.managed.key))(StepError::Other(e)))
            });
            for r in futures::future::join_all(runs).await {
                r?;
            }
            stopped.extend(batch.iter().map(|t| t.managed.key.clone()));
        }
        Ok(stopped)
    }

    /// SHUTDOWN, then make sure the process is gone; `hold` also disables start at boot.
    async fn stop_one(&self, key: &InstanceKey, hold: bool) -> Result<(), String> {
        if let Ok(mut c) = self.conn(key).await {
            let _ = c.cmd(&["SHUTDOWN"]).await;
        }
        let sup = self.supervisor.clone();
        let m = self.target(key).managed.clone();
        tokio::task::spawn_blocking(move || {
            sup.stop(&m, Duration::from_secs(30))?;
            if hold {
                sup.hold(&m)?;
            }
            Ok::<_, crate::supervise::SuperviseError>(())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }

    /// Host-level convergence for `host` only (start, files, live settings, group upstreams,
    /// Sentinel monitors), whatever the coordinator role.
    async fn converge_host(
        &self,
        only: Option<&InstanceKey>,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<Vec<InstanceKey>, ExecError> {
        let mut started = Vec::new();
        for _ in 0..4 {
            let obs = self.observe().await;
            let plan = plan::plan_with(&self.topology, &obs, self.options);
            let steps: Vec<Step> = plan
                .steps
                .into_iter()
                .filter(|s| {
                    s.host_node()
                        .is_some_and(|n| self.target(n).local && only.is_none_or(|o| o == n))
                })
                .collect();
            if steps.is_empty() {
                return Ok(started);
            }
            started.extend(steps.iter().filter_map(|s| match s {
                Step::Start { node } | Step::StartReplica { node, .. } => Some(node.clone()),
                _ => None,
            }));
            let plan = Plan {
                steps,
                ..Plan::default()
            };
            let mut summary = Summary::default();
            self.execute(&plan, on_event, &mut summary).await?;
        }
        Ok(started)
    }

    /// Wait until each of `keys` answers and, if a replica, is linked and caught up.
    async fn await_caught_up(
        &self,
        keys: &[InstanceKey],
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), ExecError> {
        let groups: BTreeMap<&InstanceKey, &str> = self
            .topology
            .groups
            .iter()
            .flat_map(|g| g.members().map(move |m| (&m.key, g.name.as_str())))
            .collect();
        self.gate_observed(
            0,
            "the restarted instances are linked to their masters and caught up",
            on_event,
            |obs| {
                let mut missing = Vec::new();
                for k in keys {
                    let Some(o) = obs.nodes.get(k) else { continue };
                    match self.target(k).kind {
                        TargetKind::Cluster => match &o.live {
                            None => missing.push(format!("{k} is not answering yet")),
                            Some(l) if l.myself.flags.replica => {
                                let master = obs
                                    .nodes
                                    .values()
                                    .filter_map(|x| x.live.as_ref())
                                    .find(|x| {
                                        Some(x.myself.id.as_str()) == l.myself.master_id.as_deref()
                                    });
                                match master.map(|m| in_sync(&m.info, &l.info)) {
                                    Some(Ok(true)) => {}
                                    Some(Ok(false)) => missing.push(format!(
                                        "{k} is resynchronising ({} bytes behind)",
                                        master
                                            .and_then(
                                                |m| plan::replication::lag(&m.info, &l.info).ok()
                                            )
                                            .unwrap_or_default()
                                    )),
                                    Some(Err(e)) => missing
                                        .push(format!("{k} is resynchronising (lag unknown: {e})")),
                                    None => missing.push(format!(
                                        "{k} is resynchronising (its master is not answering)"
                                    )),
                                }
                                // A failover to it right after its restart needs the masters'
                                // votes: their bus links to it must be up (found by the
                                // namespace tests: votes lost, manual failover abandoned).
                                let id = l.myself.id.as_str();
                                for (other, x) in obs.nodes.iter().filter(|(o, _)| *o != k) {
                                    let Some(xl) = &x.live else { continue };
                                    match xl.peer(id) {
                                        Some(p)
                                            if p.connected && !p.flags.fail && !p.flags.pfail => {}
                                        _ => missing.push(format!(
                                            "{other} has no healthy link to {k} yet"
                                        )),
                                    }
                                }
                            }
                            Some(l) if l.cluster_state != "ok" => {
                                missing
                                    .push(format!("{k} reports cluster_state:{}", l.cluster_state));
                            }
                            Some(_) => {}
                        },
                        TargetKind::Group => match &o.repl {
                            None => missing.push(format!("{k} is not answering yet")),
                            Some(r) if !r.is_master && (!r.link_up || r.sync_in_progress) => {
                                missing.push(format!(
                                    "{k} ({}) is resynchronising",
                                    groups.get(k).copied().unwrap_or("group")
                                ));
                            }
                            Some(_) => {}
                        },
                        TargetKind::Sentinel => {
                            let ok = o.sentinel.as_ref().is_some_and(|s| {
                                self.topology.groups.iter().all(|g| {
                                    s.masters
                                        .iter()
                                        .any(|m| m.name == g.name && !m.flags.contains("o_down"))
                                })
                            });
                            if !ok {
                                missing
                                    .push(format!("Sentinel {k} does not monitor every group yet"));
                            }
                        }
                    }
                }
                missing
            },
        )
        .await
        .map_err(lift(0, "wait for resynchronisation"))
    }

    /// `redisctl undrain HOST`.
    pub async fn undrain(
        &self,
        host: &str,
        keep_roles: bool,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<Report, ExecError> {
        let t0 = Instant::now();
        self.require_local(host, "undrain")?;
        let Some(mark) = load_mark(&self.state_dir, host) else {
            return Err(ExecError::Refused(format!(
                "{host} is not drained (no {})",
                mark_path(&self.state_dir, host).display()
            )));
        };
        let mut report = Report {
            host: host.to_string(),
            ..Report::default()
        };
        report.started = self.converge_host(None, on_event).await?;
        let keys: Vec<InstanceKey> = self
            .host_targets(host)
            .iter()
            .map(|t| t.managed.key.clone())
            .collect();
        self.await_caught_up(&keys, on_event).await?;
        if !keep_roles {
            for k in &mark.masters {
                let obs = self.observe().await;
                let is_replica = obs.nodes.get(k).is_some_and(|o| {
                    o.live.as_ref().is_some_and(|l| l.myself.flags.replica)
                        || o.repl.as_ref().is_some_and(|r| !r.is_master)
                });
                if !is_replica {
                    continue;
                }
                let from = self.master_of(&obs, k).unwrap_or_else(|| k.clone());
                let t = Instant::now();
                self.failover(k, false, on_event).await?;
                report.moved.push(Handover {
                    from,
                    to: k.clone(),
                    of: self.shard_or_group(k),
                    ms: t.elapsed().as_millis() as u64,
                });
            }
        }
        let path = mark_path(&self.state_dir, host);
        std::fs::remove_file(&path).map_err(|source| ExecError::State {
            path: path.display().to_string(),
            source,
        })?;
        report.ms = t0.elapsed().as_millis() as u64;
        Ok(report)
    }

    fn shard_or_group(&self, k: &InstanceKey) -> String {
        self.topology
            .groups
            .iter()
            .find(|g| g.member(k).is_some())
            .map_or_else(|| "cluster".to_string(), |g| g.name.clone())
    }

    /// The instance `k` currently replicates from, as a declared key.
    fn master_of(&self, obs: &Observed, k: &InstanceKey) -> Option<InstanceKey> {
        let o = obs.nodes.get(k)?;
        if let Some(l) = &o.live {
            let mid = l.myself.master_id.as_deref()?;
            return obs
                .nodes
                .iter()
                .find(|(_, x)| x.live.as_ref().is_some_and(|x| x.myself.id == mid))
                .map(|(k, _)| k.clone());
        }
        let (ip, port) = o.repl.as_ref()?.master_addr.clone()?;
        self.targets
            .iter()
            .find(|t| t.managed.port == port && t.managed.address.to_string() == ip)
            .map(|t| t.managed.key.clone())
    }

    /// `redisctl restart --rolling`: this host's instances one at a time.
    pub async fn rolling_restart(
        &self,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<Report, ExecError> {
        let t0 = Instant::now();
        let obs = self.observe().await;
        let local: Vec<&crate::observe::Target> = self.targets.iter().filter(|t| t.local).collect();
        let is_master = |k: &InstanceKey| {
            obs.nodes.get(k).is_some_and(|o| {
                o.live
                    .as_ref()
                    .is_some_and(|l| l.myself.flags.master && !l.myself.slots.is_empty())
                    || o.repl.as_ref().is_some_and(|r| r.is_master)
            })
        };
        let down: Vec<String> = local
            .iter()
            .filter(|t| {
                !obs.nodes
                    .get(&t.managed.key)
                    .is_some_and(|o| o.port_answers)
            })
            .map(|t| t.managed.key.to_string())
            .collect();
        if !down.is_empty() {
            return Err(ExecError::Refused(format!(
                "not every instance here is running ({}); run `redisctl apply` first",
                down.join(", ")
            )));
        }
        let mut replicas = Vec::new();
        let mut masters = Vec::new();
        let mut sentinels = Vec::new();
        for t in &local {
            let k = t.managed.key.clone();
            match t.kind {
                TargetKind::Sentinel => sentinels.push(k),
                _ if is_master(&k) => masters.push(k),
                _ => replicas.push(k),
            }
        }
        // A master whose only copy is itself cannot be restarted without downtime.
        for m in &masters {
            let has = match self.target(m).kind {
                TargetKind::Cluster => self.best_cluster_replica(&obs, m, "").is_some(),
                _ => self
                    .topology
                    .groups
                    .iter()
                    .find(|g| g.member(m).is_some())
                    .and_then(|g| self.best_group_replica(&obs, g, m, ""))
                    .is_some(),
            };
            if !has {
                return Err(ExecError::Refused(format!(
                    "{m} is a master without an in-sync replica; restarting it would interrupt its shard. Add a replica, or restart it by hand"
                )));
            }
        }
        let host = hosts_of(&local);
        let mut report = Report {
            host,
            ..Report::default()
        };
        for k in &replicas {
            self.restart_one(k, on_event).await?;
            report.restarted.push(k.clone());
        }
        for m in &masters {
            // Hand mastership to the best replica (another host's first), restart, take back.
            let obs = self.observe().await;
            let to = match self.target(m).kind {
                TargetKind::Cluster => self
                    .best_cluster_replica(&obs, m, &m.host)
                    .or_else(|| self.best_cluster_replica(&obs, m, "")),
                _ => {
                    let g = self.topology.groups.iter().find(|g| g.member(m).is_some());
                    g.and_then(|g| {
                        self.best_group_replica(&obs, g, m, &m.host)
                            .or_else(|| self.best_group_replica(&obs, g, m, ""))
                    })
                }
            };
            let Some(to) = to else {
                return Err(ExecError::Refused(format!(
                    "{m}: no in-sync replica to hand mastership to right now; nothing more was restarted"
                )));
            };
            let t = Instant::now();
            self.failover(&to, false, on_event).await?;
            report.moved.push(Handover {
                from: m.clone(),
                to: to.clone(),
                of: self.shard_or_group(m),
                ms: t.elapsed().as_millis() as u64,
            });
            self.restart_one(m, on_event).await?;
            let t = Instant::now();
            self.failover(m, false, on_event).await?;
            report.moved.push(Handover {
                from: to,
                to: m.clone(),
                of: self.shard_or_group(m),
                ms: t.elapsed().as_millis() as u64,
            });
            report.restarted.push(m.clone());
        }
        for s in &sentinels {
            self.restart_one(s, on_event).await?;
            report.restarted.push(s.clone());
        }
        report.ms = t0.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// Stop one local instance and start it again the way `apply` would, then wait until
    /// it has caught up.
    async fn restart_one(
        &self,
        key: &InstanceKey,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), ExecError> {
        on_event(Event::StepStart {
            index: 0,
            total: 0,
            step: format!("restart {key}"),
        });
        self.stop_one(key, false)
            .await
            .map_err(|e| lift(0, &format!("stop {key}"))(StepError::Other(e)))?;
        self.converge_host(Some(key), on_event).await?;
        self.await_caught_up(std::slice::from_ref(key), on_event)
            .await
    }
}

/// The host(s) a rolling restart ran on.
pub fn hosts_of(targets: &[&crate::observe::Target]) -> String {
    let mut hosts: Vec<&str> = targets
        .iter()
        .map(|t| t.managed.key.host.as_str())
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts.join(",")
}
