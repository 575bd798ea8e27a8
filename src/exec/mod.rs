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
            Step::ForcedFailover { node } => {
                self.cluster_failover(index, node, true, on_event).await
            }
            // Maintenance (drain, undrain, restart --rolling): exec/maintenance.rs.
            Step::MarkDrained { host, masters } => self.mark_drained(host, masters),
            Step::ClearDrainMark { host } => self.clear_drain_mark(host),
            Step::HoldPromotion { nodes } => {
                self.hold_promotion(nodes).await;
                Ok(())
            }
            Step::Stop { nodes } => self.stop_nodes(nodes).await,
            Step::Restart { node } => self.restart_one(index, node, on_event).await,
            Step::WaitCaughtUp { nodes } => self.await_caught_up(index, nodes, on_event).await,
            Step::TakeOver { node, from, reopen } => {
                self.take_over(index, node, from, reopen, on_event).await
            }
            Step::SentinelPromote { group, from } => {
                self.sentinel_promote(index, group, from, on_event).await
            }
            Step::PromoteReplica { group, node, from } => {
                self.ensure_promoted(index, group, node, from, on_event)
                    .await
            }
            Step::ConfigSet { node, params } => self.ensure_config_set(node, params).await,
            Step::TlsSwitch { nodes, .. } => self.ensure_tls_switch(index, nodes, on_event).await,
            Step::AclSetUser { node, users, .. } => self.ensure_acl_users(node, users).await,
            Step::ReplicaOf { node, master } => self.ensure_replica_of(node, master).await,
            Step::AclAddPasswords { node, user } => self.ensure_passwords_added(node, user).await,
            Step::SetMasterAuth { node } => self.ensure_master_auth(node).await,
            Step::SentinelAuthPass { sentinel, groups } => {
                self.ensure_sentinel_auth_pass(sentinel, groups).await
            }
            Step::SentinelPeerPass { sentinel } => self.ensure_sentinel_peer_pass(sentinel).await,
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

    /// The failover plan for `node` (`failover --dry-run` prints it); blocked when `node` is
    /// a master, does not answer, or lags (unless `force`): plan::maintenance::failover.
    pub async fn plan_failover(
        &self,
        node: &InstanceKey,
        force: bool,
    ) -> Result<plan::maintenance::Maintenance, ExecError> {
        let obs = self.observe().await;
        Ok(plan::maintenance::failover(
            &self.topology,
            &obs,
            node,
            force,
        ))
    }

    /// `redisctl failover NODE`: make the replica `node` the master of its shard or group,
    /// refusing a lagging replica unless `force`.
    pub async fn failover(
        &self,
        node: &InstanceKey,
        force: bool,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), ExecError> {
        let m = self.plan_failover(node, force).await?;
        if m.plan.halted() {
            return Err(ExecError::Refused(m.refusals()));
        }
        self.execute(&m.plan, on_event, &mut Summary::default())
            .await
    }
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
    plan.steps_text(estimates)
}
