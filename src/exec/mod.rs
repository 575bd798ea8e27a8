//! The executor: one idempotent attempt per planned step, reporting events. Replies that
//! mean "already done" count as success, so an interrupted apply is finished by the next
//! one. Gates poll the real condition (never a fixed sleep) with a bounded deadline and name
//! what is still missing when it expires.

mod cluster;
mod gates;
mod instances;
pub mod maintenance;
pub mod migrate;
mod sentinel;
mod state;

pub use state::{load_record, record_path};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fsio;
use crate::observe::client::{ClientError, Conn, Credentials, ErrorCode};
use crate::observe::{self, Live, Observed, Observer, Record, Target, TargetKind};
use crate::plan::{self, Plan, Step, converge};
use crate::supervise::{ProcState, Supervisor};
use crate::topology::{InstanceKey, Topology};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("step {index} ({step}) failed: {message}")]
    Step {
        index: usize,
        step: String,
        message: String,
    },
    #[error("timed out after {secs} s waiting until {what}; still missing:\n  - {missing}")]
    Gate {
        secs: u64,
        what: String,
        missing: String,
    },
    #[error("apply refused; nothing was changed:\n  - {0}")]
    Blocked(String),
    /// A step stopped rather than do harm; the message says what it left and the ways out.
    #[error("step {index} ({step}) refused: {message}")]
    StepRefused {
        index: usize,
        step: String,
        message: String,
    },
    /// A maintenance command refused before changing anything; the message says why.
    #[error("{0}")]
    Refused(String),
    #[error("the deployment did not converge after {0} rounds of planning; last plan:\n{1}")]
    NoConvergence(usize, String),
    #[error("cannot write state in {path}: {source}")]
    State {
        path: String,
        source: std::io::Error,
    },
    /// Ctrl-C: every step is safe to resume.
    #[error("interrupted")]
    Interrupted,
}

impl ExecError {
    /// The exit code this error means: a refusal is the operator's to resolve (1), an
    /// interruption is 130, anything else an unexpected failure (2).
    pub fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        match self {
            ExecError::Blocked(_) | ExecError::Refused(_) | ExecError::StepRefused { .. } => {
                Exit::User
            }
            ExecError::Interrupted => Exit::Interrupted,
            ExecError::Step { .. }
            | ExecError::Gate { .. }
            | ExecError::NoConvergence(..)
            | ExecError::State { .. } => Exit::Failure,
        }
    }
}

/// Progress of an apply, for the printer.
#[derive(Debug, Clone)]
pub enum Event {
    Round {
        round: usize,
        steps: usize,
    },
    StepStart {
        index: usize,
        total: usize,
        step: String,
    },
    StepWaiting {
        index: usize,
        missing: usize,
        first: String,
    },
    /// Slot migration progress.
    Moving {
        index: usize,
        slots_done: usize,
        slots_total: usize,
        keys: u64,
        elapsed: Duration,
    },
    StepDone {
        index: usize,
        total: usize,
        step: String,
        elapsed: Duration,
    },
}

pub struct Context {
    pub topology: Topology,
    pub state_dir: PathBuf,
    pub supervisor: Arc<dyn Supervisor>,
    pub password: Option<Credentials>,
    pub targets: Vec<Target>,
    /// Deadline of each gate.
    pub gate_timeout: Duration,
    /// Timeout of each Redis call.
    pub call_timeout: Duration,
    pub options: plan::Options,
    /// Let migrations overwrite keys that already exist on the target.
    pub replace: bool,
    /// How slots move (atomic slot migration when offered, by default).
    pub migration: migrate::Method,
    /// Serialises updates of state.json by steps running side by side.
    pub record_lock: tokio::sync::Mutex<()>,
    /// The host whose redisctl makes cluster-level changes, when it is not this one: then
    /// this run realises only its own instances (host-level steps).
    pub coordinator_elsewhere: Option<String>,
}

impl Context {
    /// The topology hosts this run acts for (their instances are local here), sorted.
    pub fn local_hosts(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .targets
            .iter()
            .filter(|t| t.local)
            .map(|t| t.managed.key.host.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// (step index, keys, bytes) for every slot move of `plan`, read from the sources.
    pub async fn estimate_moves(&self, plan: &Plan) -> Vec<(usize, u64, u64)> {
        let mut out = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            if let Step::MoveSlots {
                from_addr, slots, ..
            } = step
            {
                let list: Vec<u16> = slots.iter().flat_map(|r| r.start..=r.end).collect();
                if let Ok((keys, bytes)) =
                    migrate::estimate(from_addr, &list, self.password.as_ref(), self.call_timeout)
                        .await
                {
                    out.push((i + 1, keys, bytes));
                }
            }
        }
        out
    }

    pub fn observer(&self) -> Observer {
        Observer {
            supervisor: self.supervisor.clone(),
            password: self.password.clone(),
            timeout: self.call_timeout,
        }
    }

    pub async fn observe(&self) -> Observed {
        let record = load_record(&self.state_dir, &self.topology.name);
        self.observer().observe(&self.targets, record).await
    }

    fn target(&self, key: &InstanceKey) -> &Target {
        self.targets
            .iter()
            .find(|t| &t.managed.key == key)
            .expect("planned node is a target")
    }

    async fn conn(&self, key: &InstanceKey) -> Result<Conn, ClientError> {
        let t = self.target(key);
        // Sentinels keep `requirepass`: redisctl is their default user.
        let creds = match t.kind {
            TargetKind::Sentinel => self.password.as_ref().map(Credentials::without_user),
            _ => self.password.clone(),
        };
        Conn::connect(&t.endpoint, creds.as_ref(), self.call_timeout).await
    }

    fn save_record(&self, record: &Record) -> Result<(), ExecError> {
        state::save(&self.state_dir, record)
    }

    /// Remember the ids of our empty nodes before any step can make them non-empty, so a
    /// crash between steps never turns our own node into an unknown one.
    fn record_fresh(&self, obs: &Observed) -> Result<Record, ExecError> {
        let record = state::with_fresh_nodes(obs, crate::observe::unix_now());
        if record != obs.record {
            self.save_record(&record)?;
        }
        Ok(record)
    }

    /// Slot moves journaled by an apply that did not finish them.
    pub fn interrupted_moves(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.state_dir.join("moves")) else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| serde_json::from_slice::<Step>(&std::fs::read(e.path()).ok()?).ok())
            .map(|s| s.to_string())
            .collect()
    }

    /// One observation, with the ids of fresh nodes recorded before any step runs (the first
    /// half of every round of `apply` and of the agent).
    pub async fn observe_recorded(&self) -> Result<Observed, ExecError> {
        let obs = self.observe().await;
        self.record_fresh(&obs)?;
        Ok(obs)
    }

    /// The plan for `obs` with this run's options, cut to this host's part (see
    /// `this_hosts_part`), and the note on what is left to other hosts.
    pub fn plan_here(&self, obs: &Observed) -> (Plan, Option<String>) {
        self.this_hosts_part(plan::plan_with(&self.topology, obs, self.options))
    }

    /// observe → plan → execute until the plan is empty.
    pub async fn apply(&self, on_event: &(dyn Fn(Event) + Sync)) -> Result<Summary, ExecError> {
        let mut summary = Summary::default();
        let resumed: Vec<plan::Note> = self
            .interrupted_moves()
            .into_iter()
            .map(|m| {
                plan::Note::general(
                    plan::NoteKind::ResumedMove,
                    format!("an earlier apply did not finish: {m}; open slots are completed first"),
                )
            })
            .collect();
        if self.coordinator_elsewhere.is_none() {
            self.await_other_hosts(on_event).await;
        }
        const ROUNDS: usize = 6;
        let mut last = String::new();
        let wait_deadline = Instant::now() + self.gate_timeout;
        let mut round = 0;
        while round < ROUNDS {
            round += 1;
            let obs = self.observe_recorded().await?;
            let (plan, pending) = self.plan_here(&obs);
            let pending = pending.map(|p| plan::Note::general(plan::NoteKind::LeftToOtherHosts, p));
            summary.notes = resumed
                .iter()
                .cloned()
                .chain(plan.notes.iter().cloned())
                .chain(pending)
                .collect();
            if !plan.blockers.is_empty() {
                let lines = plan::findings::lines(&plan.blockers);
                return Err(ExecError::Blocked(lines.join("\n  - ")));
            }
            if !plan.waits.is_empty() {
                // E.g. a process still loading its data after an apply was killed right after
                // starting it, or a restarted old master that has not yet heard of the
                // failover: plan again shortly, until the gate timeout.
                if Instant::now() >= wait_deadline {
                    // Only replicas still syncing (a large data set): everything else is done.
                    // Not a failure: say so; the next apply or the agent restores their
                    // declared priority once they have synced.
                    if plan
                        .waits
                        .iter()
                        .all(|w| w.kind == plan::WaitKind::ReplicaSyncing)
                    {
                        summary.notes.extend(plan.waits.iter().map(|w| {
                            plan::Note::general(
                                plan::NoteKind::StillSyncing,
                                format!("{w}; run `redisctl apply` again when it has (or let the agent do it)"),
                            )
                        }));
                        summary.rounds = round - 1;
                        return Ok(summary);
                    }
                    let lines = plan::findings::lines(&plan.waits);
                    return Err(ExecError::Blocked(lines.join("\n  - ")));
                }
                on_event(Event::StepWaiting {
                    index: 0,
                    missing: plan.waits.len(),
                    first: plan.waits[0].to_string(),
                });
                tokio::time::sleep(Duration::from_millis(200)).await;
                round -= 1;
                continue;
            }
            if plan.steps.is_empty() {
                summary.rounds = round - 1;
                return Ok(summary);
            }
            last.clear();
            last.push_str(&render_plan_text(&plan));
            on_event(Event::Round {
                round,
                steps: plan.steps.len(),
            });
            self.execute(&plan, on_event, &mut summary).await?;
        }
        Err(ExecError::NoConvergence(ROUNDS, last))
    }

    /// Without the coordinator role, the part of `plan` this host runs: host-level steps on
    /// its own instances, and only the blockers that name them. The rest is described in a
    /// note for the operator.
    pub fn this_hosts_part(&self, plan: Plan) -> (Plan, Option<String>) {
        let Some(coordinator) = &self.coordinator_elsewhere else {
            return (plan, None);
        };
        let local: Vec<&InstanceKey> = self
            .targets
            .iter()
            .filter(|t| t.local)
            .map(|t| &t.managed.key)
            .collect();
        let (plan, theirs) = plan.host_part(&local);
        let pending = (!theirs.is_empty()).then(|| {
            let list: Vec<String> = theirs.iter().take(5).map(ToString::to_string).collect();
            format!(
                "{} step(s) for the cluster or other hosts are left to `redisctl apply` there (cluster-level: the coordinator, {coordinator}): {}{}",
                theirs.len(),
                list.join("; "),
                if theirs.len() > 5 { "; ..." } else { "" }
            )
        });
        (plan, pending)
    }

    /// The coordinator waits (bounded by the gate timeout) for declared cluster nodes on other
    /// hosts that no node knows yet and that do not answer: their hosts' `apply` is starting
    /// them (all hosts are usually applied at once). A node the cluster knows (e.g. on a
    /// drained host) is not waited for.
    async fn await_other_hosts(&self, on_event: &(dyn Fn(Event) + Sync)) {
        if self.targets.iter().all(|t| t.local) {
            return;
        }
        let deadline = Instant::now() + self.gate_timeout;
        loop {
            let obs = self.observe().await;
            let known = |t: &Target| {
                obs.nodes.values().filter_map(|o| o.live.as_ref()).any(|l| {
                    l.peers
                        .iter()
                        .any(|p| p.port == t.managed.port && p.ip == t.managed.address.to_string())
                })
            };
            let missing: Vec<String> = self
                .targets
                .iter()
                .filter(|t| t.kind == TargetKind::Cluster && !t.local)
                .filter(|t| {
                    obs.nodes
                        .get(&t.managed.key)
                        .is_some_and(|o| !o.port_answers)
                })
                .filter(|t| !known(t))
                .map(|t| {
                    format!(
                        "{} ({}) on another host: not started yet (run `redisctl apply` there)",
                        t.managed.key, t.endpoint
                    )
                })
                .collect();
            if missing.is_empty() || Instant::now() > deadline {
                return;
            }
            on_event(Event::StepWaiting {
                index: 0,
                missing: missing.len(),
                first: missing[0].clone(),
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn execute(
        &self,
        plan: &Plan,
        on_event: &(dyn Fn(Event) + Sync),
        summary: &mut Summary,
    ) -> Result<(), ExecError> {
        let total = plan.steps.len();
        let mut i = 0;
        while i < total {
            // Independent steps of one kind run together (starts, meets, slot moves between
            // disjoint pairs, …); events keep their plan numbers.
            let mut end = i + 1;
            while end < total && parallel_with(&plan.steps[i..end], &plan.steps[end]) {
                end += 1;
            }
            let runs = (i..end).map(|k| {
                let step = &plan.steps[k];
                async move {
                    let index = k + 1;
                    on_event(Event::StepStart {
                        index,
                        total,
                        step: step.to_string(),
                    });
                    let t = Instant::now();
                    self.step(step, index, on_event)
                        .await
                        .map_err(|e| match e {
                            StepError::Gate(g) => g,
                            StepError::Other(message) => ExecError::Step {
                                index,
                                step: step.to_string(),
                                message,
                            },
                            StepError::Refused(message) => ExecError::StepRefused {
                                index,
                                step: step.to_string(),
                                message,
                            },
                        })?;
                    on_event(Event::StepDone {
                        index,
                        total,
                        step: step.to_string(),
                        elapsed: t.elapsed(),
                    });
                    Ok::<(), ExecError>(())
                }
            });
            let results = futures::future::join_all(runs).await;
            for (k, r) in (i..end).zip(results) {
                r?;
                summary.executed.push(plan.steps[k].clone());
            }
            i = end;
        }
        Ok(())
    }

    async fn step(
        &self,
        step: &Step,
        index: usize,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        match step {
            Step::Start { node } => self.start(node, Vec::new()).await,
            Step::StartReplica { node, master } => self.ensure_started_replica(node, master).await,
            Step::WaitMembership { nodes } => self.ensure_membership(index, nodes, on_event).await,
            Step::MoveSlots { .. } => self.ensure_slots_moved(step, index, on_event).await,
            Step::Retire { node, id, addr } => self.retire(node, id, addr).await,
            Step::Forget { id, .. } => self.ensure_forgotten(id).await,
            Step::ClusterFailover { node } => {
                self.cluster_failover(index, node, false, on_event).await
            }
            Step::TakeOver { node, from } => self.take_over(index, node, from, on_event).await,
            Step::SentinelPromote { group, from } => {
                self.sentinel_promote(index, group, from, on_event).await
            }
            Step::PromoteReplica { group, node, from } => {
                self.ensure_promoted(index, group, node, from, on_event)
                    .await
            }
            Step::ConfigSet { node, params } => self.ensure_config_set(node, params).await,
            Step::AclSetUser { node, users, .. } => self.ensure_acl_users(node, users).await,
            Step::ReplicaOf { node, master } => self.ensure_replica_of(node, master).await,
            Step::SentinelMonitor {
                sentinel,
                group,
                master,
            } => self.ensure_monitored(sentinel, group, master).await,
            Step::SentinelSet {
                sentinel,
                group,
                params,
            } => self.ensure_sentinel_set(sentinel, group, params).await,
            Step::SentinelRemove { sentinel, group } => {
                self.ensure_sentinel_removed(sentinel, group).await
            }
            Step::SentinelFailover { group, to } => {
                self.sentinel_failover(index, group, to, on_event).await
            }
            Step::WaitGroups { groups } => {
                self.ensure_groups_settled(index, groups, on_event).await
            }
            Step::WriteConfig { node } => self.write_files(node),
            Step::RestartSentinel { node } => self.restart_sentinel(node).await,
            Step::SetConfigEpoch { node, epoch } => self.ensure_config_epoch(node, *epoch).await,
            Step::AddSlots { node, ranges } => self.ensure_slots_added(node, ranges).await,
            Step::Meet { node, targets } => self.ensure_met(index, node, targets, on_event).await,
            Step::Replicate { node, master } => self.ensure_replicates(node, master).await,
            Step::WaitConverged { nodes } => self.ensure_converged(index, nodes, on_event).await,
        }
    }

    /// `redisctl failover NODE`: make the replica `node` the master of its shard or group,
    /// refusing a lagging replica unless `force`.
    pub async fn failover(
        &self,
        node: &InstanceKey,
        force: bool,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), ExecError> {
        let fail = |message: String| ExecError::Step {
            index: 1,
            step: format!("fail over to {node}"),
            message,
        };
        let lift = |e: StepError| match e {
            StepError::Gate(g) => g,
            StepError::Other(m) => fail(m),
            StepError::Refused(m) => ExecError::Refused(m),
        };
        let obs = self.observe().await;
        let o = obs
            .nodes
            .get(node)
            .ok_or_else(|| fail("not in the topology".into()))?;
        if let Some(g) = self
            .topology
            .groups
            .iter()
            .find(|g| g.member(node).is_some())
        {
            let current = crate::plan::current_group_master(&self.topology, g, &obs);
            let r = o
                .repl
                .as_ref()
                .ok_or_else(|| fail(o.error.clone().unwrap_or_else(|| "not answering".into())))?;
            if r.is_master {
                return Err(ExecError::Refused(format!(
                    "{node} is already the master of {}; nothing to fail over. To move mastership away, name the replica that should take over: redisctl failover FILE REPLICA",
                    g.name
                )));
            }
            let master = obs.nodes.get(&current.key).and_then(|x| x.repl.as_ref());
            let (in_sync, lag) = sync_of(master.map(|m| &m.info), &r.info);
            if !force && in_sync != Ok(true) {
                return Err(ExecError::Refused(format!(
                    "{node} lags {lag} behind {} (link {}); a failover now would lose writes. Wait, or pass --force",
                    current.key,
                    if r.link_up { "up" } else { "down" }
                )));
            }
            return self
                .sentinel_failover(1, &g.name, node, on_event)
                .await
                .map_err(lift);
        }
        let l = o
            .live
            .as_ref()
            .ok_or_else(|| fail(o.error.clone().unwrap_or_else(|| "not answering".into())))?;
        if !l.myself.flags.replica {
            return Err(ExecError::Refused(format!(
                "{node} is already a master; nothing to fail over. To move mastership away, name the replica that should take over: redisctl failover FILE REPLICA"
            )));
        }
        let master = obs
            .nodes
            .values()
            .filter_map(|x| x.live.as_ref())
            .find(|x| Some(x.myself.id.as_str()) == l.myself.master_id.as_deref());
        let (in_sync, lag) = sync_of(master.map(|m| &m.info), &l.info);
        let link_up = l.info("master_link_status") == Some("up");
        if !force && in_sync != Ok(true) {
            return Err(ExecError::Refused(format!(
                "{node} is not in sync with its master (link {}, {lag} behind); pass --force to promote it anyway (CLUSTER FAILOVER FORCE)",
                if link_up { "up" } else { "down" },
            )));
        }
        self.cluster_failover(1, node, force && !link_up, on_event)
            .await
            .map_err(lift)
    }

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
    async fn failover_gate(
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

    /// Hand mastership of `group` to `to` through Sentinel: the other replicas' priority is
    /// held at 0 so Sentinel can only pick `to`; the declared priorities come back after
    /// (and, if redisctl dies meanwhile, the next apply restores them as config drift).
    async fn sentinel_failover(
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

    /// `CLUSTER FAILOVER FORCE` on `node`, a replica of the down master `from`; when the other
    /// masters have not voted within twice the node timeout (e.g. a majority of masters is
    /// down too), `CLUSTER FAILOVER TAKEOVER`: `from`'s process is known to be stopped on this
    /// host, so no second master can be serving. Done when `node` serves slots.
    async fn take_over(
        &self,
        index: usize,
        node: &InstanceKey,
        from: &InstanceKey,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        let mut c = self.conn(node).await?;
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
        ask("FORCE").await?;
        let node_timeout = self
            .topology
            .cluster
            .as_ref()
            .map_or(5000, |c| c.settings.node_timeout_ms);
        let takeover_at = Instant::now() + Duration::from_millis((2 * node_timeout).max(3000));
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

    /// The declared group `name`.
    fn group(&self, name: &str) -> Result<&crate::topology::Group, StepError> {
        self.topology
            .groups
            .iter()
            .find(|g| g.name == name)
            .ok_or_else(|| StepError::Other(format!("unknown group {name}")))
    }

    /// Have the Sentinels promote a replica of `group`, whose master `from` is down: their own
    /// failover is waited for, `SENTINEL FAILOVER` forced only when none starts (see below);
    /// done when a majority of them report another member as master and it acts as one.
    async fn sentinel_promote(
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
    async fn sentinel_views(
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
}

/// Whether a replica is in sync with its master (unknown when the master does not answer),
/// and its lag for a message.
fn sync_of(
    master: Option<&plan::replication::Info>,
    replica: &plan::replication::Info,
) -> (Result<bool, plan::replication::Unknown>, String) {
    use plan::replication::{Unknown, lag};
    let Some(m) = master else {
        return (
            Err(Unknown::MasterOffset),
            "an unknown number of bytes (its master does not answer)".into(),
        );
    };
    let text = match lag(m, replica) {
        Ok(n) => format!("{n} bytes"),
        Err(e) => format!("an unknown number of bytes ({e})"),
    };
    (plan::in_sync(m, replica), text)
}

pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line per Sentinel that refused a failover: its answer, and how it sees the target now.
fn sentinel_refusals(
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
fn sentinel_pick(
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

pub enum StepError {
    Gate(ExecError),
    Other(String),
    /// The step stopped on purpose (e.g. keys that would be overwritten): exit 1, not 2.
    Refused(String),
}

impl From<ClientError> for StepError {
    fn from(e: ClientError) -> Self {
        StepError::Other(e.to_string())
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub executed: Vec<Step>,
    pub rounds: usize,
    /// The last plan's notes, and what apply itself reports (a resumed move, steps left to
    /// other hosts).
    pub notes: Vec<plan::Note>,
}

/// Can `next` run at the same time as `group` (consecutive steps)? Same kind, and for slot
/// moves distinct sources.
fn parallel_with(group: &[Step], next: &Step) -> bool {
    use Step::*;
    let same = |a: &Step| a.kind() == next.kind();
    match next {
        Start { .. }
        | StartReplica { .. }
        | TakeOver { .. }
        | ConfigSet { .. }
        | SetConfigEpoch { .. }
        | AddSlots { .. }
        | Meet { .. } => group.iter().all(|g| {
            same(g)
                || matches!(
                    (g, next),
                    (
                        Start { .. } | StartReplica { .. },
                        Start { .. } | StartReplica { .. }
                    )
                )
        }),
        // A source runs one MIGRATE at a time, so each move needs its own source; a target
        // imports from several sources at once just fine.
        MoveSlots { from, to, .. } => group.iter().all(|g| match g {
            MoveSlots { from: f, to: t, .. } => f != from && f != to && t != from,
            _ => false,
        }),
        _ => false,
    }
}

pub fn render_plan_text(plan: &Plan) -> String {
    render_plan_with(plan, &[])
}

/// The numbered steps, with the data each slot move carries when it was estimated.
pub fn render_plan_with(plan: &Plan, estimates: &[(usize, u64, u64)]) -> String {
    let mut s = String::new();
    for (i, step) in plan.steps.iter().enumerate() {
        s.push_str(&format!("  {:>3}. {step}\n", i + 1));
        if let Some((_, keys, bytes)) = estimates.iter().find(|e| e.0 == i + 1) {
            s.push_str(&format!(
                "       ~{keys} keys, ~{:.1} MiB\n",
                *bytes as f64 / (1024.0 * 1024.0)
            ));
        }
    }
    s
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
