//! `redisctl agent`: the per-host control loop. Every interval it observes, plans and executes
//! this host's part of the plan through the same `Context` (planner and executor) as `apply`,
//! keeping only what `policy` lets it do alone; the rest is reported ("waiting for apply").
//! It owns the loop's memory (back-off, stability, counters) and what it tells the world
//! (systemd notifications, journal events, the snapshot behind the HTTP endpoints, the
//! report `redisctl status` reads). It must not plan or run any step the planner did not make.

pub mod http;
pub mod journal;
pub mod marks;
pub mod policy;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::exec::{Context, Event, ExecError, Summary};
use crate::observe::{Observed, TargetKind, unix_now};
use crate::plan::{Plan, Step};
use crate::topology::{InstanceKey, Role};
use journal::{Journal, Priority};
use policy::Withheld;

/// Builds a fresh `Context` from the topology file (the CLI's `context()`): called again when
/// the file changes. Err carries the message to report; the last good context stays.
pub type Loader<'a> = dyn Fn() -> Result<Context, String> + 'a;

/// One declared instance as the endpoints and metrics show it.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    pub instance: String,
    pub host: String,
    pub port: u16,
    pub local: bool,
    /// cluster, group or sentinel.
    pub kind: &'static str,
    /// master or replica (Sentinels: sentinel).
    pub declared_role: &'static str,
    /// What it is now, when it answers.
    pub role: Option<&'static str>,
    pub up: bool,
    /// Replicas: bytes behind their master (when both answer).
    pub lag_bytes: Option<i64>,
    pub link_up: bool,
    pub slots: u32,
    pub keys: u64,
}

/// What the agent knows now: served by the HTTP endpoints, summarised in STATUS=.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub deployment: String,
    pub status: String,
    /// One observation has been made.
    pub ready: bool,
    pub converged: bool,
    pub paused: bool,
    pub waiting_for_apply: bool,
    pub instances: Vec<InstanceView>,
    pub executed: BTreeMap<String, u64>,
    pub failures: BTreeMap<String, u64>,
    pub failovers_seen: u64,
    /// Unix time the deployment was last seen converged.
    pub last_convergence: Option<u64>,
    pub rounds: u64,
    /// The hosts this agent serves, and those of them that are drained (`GET /drained`:
    /// how the other hosts learn of a drain, whose mark lives in this host's state dir).
    pub hosts: Vec<String>,
    pub drained: Vec<DrainedHost>,
}

/// A host this agent serves that `redisctl drain` took out (its mark in the state dir).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrainedHost {
    pub host: String,
    /// Unix time the drain started.
    pub since: u64,
}

pub type Shared = Arc<Mutex<Snapshot>>;

struct Backoff {
    failures: u32,
    next: Instant,
    error: String,
}

/// The loop's memory between rounds.
pub struct Agent<'a> {
    pub ctx: Context,
    load: &'a Loader<'a>,
    file: PathBuf,
    /// Contents of the topology file the context was built from.
    file_text: Option<Vec<u8>>,
    /// The last invalid contents reported (reported once).
    bad_text: Option<Vec<u8>>,
    backoff: HashMap<String, Backoff>,
    stable_since: Instant,
    masters: Option<BTreeMap<String, InstanceKey>>,
    last_change: Option<(u64, String)>,
    config_error: Option<String>,
    /// The planner's notes of the last round (each is journaled once when it appears).
    notes: Vec<String>,
    pub shared: Shared,
    journal: Journal,
    /// Refreshed at each round and each step event: the watchdog pings only while it is fresh.
    pub heartbeat: Arc<Mutex<Instant>>,
}

/// What a round did, for the pace of the next one.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do, or nothing the agent may do: wait a full interval.
    Idle,
    /// Something changed or is settling (steps ran, a node is loading): look again soon.
    Busy,
}

fn hhmm(unix: u64) -> String {
    let s = unix % 86_400;
    format!("{:02}:{:02} UTC", s / 3600, (s % 3600) / 60)
}

impl<'a> Agent<'a> {
    pub fn new(ctx: Context, load: &'a Loader<'a>, file: PathBuf) -> Agent<'a> {
        let file_text = watched(&file, &ctx.topology);
        let journal = Journal::new(&ctx.topology.name);
        let shared = Arc::new(Mutex::new(Snapshot {
            deployment: ctx.topology.name.clone(),
            status: "starting: no observation yet".into(),
            ..Snapshot::default()
        }));
        Agent {
            ctx,
            load,
            file,
            file_text,
            bad_text: None,
            backoff: HashMap::new(),
            stable_since: Instant::now(),
            masters: None,
            last_change: None,
            config_error: None,
            notes: Vec::new(),
            shared,
            journal,
            heartbeat: Arc::new(Mutex::new(Instant::now())),
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.ctx.topology.agent.interval_ms)
    }

    fn beat(&self) {
        if let Ok(mut h) = self.heartbeat.lock() {
            *h = Instant::now();
        }
    }

    /// Re-read the topology when its file (or a TLS file it names: a renewed certificate)
    /// changed; an invalid file is reported once and the
    /// last good one stays in force.
    pub fn reload_if_changed(&mut self) {
        let Some(text) = watched(&self.file, &self.ctx.topology) else {
            return;
        };
        if Some(&text) == self.file_text.as_ref() || Some(&text) == self.bad_text.as_ref() {
            return;
        }
        match (self.load)() {
            Ok(ctx) => {
                if ctx.topology.name != self.ctx.topology.name
                    || ctx.state_dir != self.ctx.state_dir
                {
                    let msg = format!(
                        "topology {} now names deployment {:?} in {}; this agent runs {:?} in {}: restart it for another deployment (keeping the last good topology)",
                        self.file.display(),
                        ctx.topology.name,
                        ctx.state_dir.display(),
                        self.ctx.topology.name,
                        self.ctx.state_dir.display()
                    );
                    self.journal
                        .event(Priority::Err, "topology_invalid", &msg, &[]);
                    self.config_error = Some(msg);
                    self.bad_text = Some(text);
                    return;
                }
                self.journal.event(
                    Priority::Notice,
                    "topology_reloaded",
                    &format!("topology {} re-read and valid", self.file.display()),
                    &[],
                );
                self.ctx = ctx;
                self.file_text = Some(text);
                self.bad_text = None;
                self.config_error = None;
            }
            Err(e) => {
                let msg = format!(
                    "topology {} is invalid; the last good one stays in force: {e}",
                    self.file.display()
                );
                self.journal
                    .event(Priority::Err, "topology_invalid", &msg, &[]);
                self.config_error = Some(msg);
                self.bad_text = Some(text);
            }
        }
    }

    /// One round: observe, plan, keep what the policy allows, execute it, report.
    pub async fn round(&mut self) -> Outcome {
        self.beat();
        self.reload_if_changed();
        let state_dir = self.ctx.state_dir.clone();
        if let Some(m) = marks::load_pause(&state_dir) {
            let obs = self.ctx.observe().await;
            let status = format!(
                "paused by {} at {}{} (`redisctl resume` to heal again); {}",
                m.by,
                hhmm(m.since),
                m.reason.map(|r| format!(" ({r})")).unwrap_or_default(),
                self.nodes_up(&obs)
            );
            self.publish(&obs, status, false, true, false);
            return Outcome::Idle;
        }
        for host in self.local_hosts() {
            if let Some(m) = crate::exec::maintenance::load_mark(&state_dir, &host) {
                let obs = self.ctx.observe().await;
                let status = format!(
                    "host {host} is drained since {}: nothing is done here until `redisctl undrain FILE {host}`",
                    hhmm(m.since)
                );
                self.publish(&obs, status, false, false, false);
                return Outcome::Idle;
            }
        }
        // One change at a time on this host: apply by hand holds this lock while it runs.
        let _lock = match crate::fsio::lock_state(&state_dir) {
            Ok(l) => l,
            Err(e) => {
                let obs = self.ctx.observe().await;
                let status = format!("not acting: {e}");
                self.publish(&obs, status, false, false, false);
                return Outcome::Idle;
            }
        };
        let obs = match self.ctx.observe_recorded().await {
            Ok(o) => o,
            Err(e) => {
                let obs = self.ctx.observe().await;
                self.publish(
                    &obs,
                    format!("cannot record node ids: {e}"),
                    false,
                    false,
                    false,
                );
                return Outcome::Idle;
            }
        };
        self.ctx.coordinator_elsewhere = self.coordinator(&obs);
        self.track_stability(&obs);
        let settings = self.ctx.topology.agent.clone();
        self.ctx.options = crate::plan::Options {
            restore_roles: settings.restore_roles
                && self.stable_since.elapsed() >= Duration::from_millis(settings.stable_for_ms),
            purge: false,
            // Heal around a host that is down (the cluster marks its nodes failed): the
            // agent is what keeps the rest healthy meanwhile.
            around_failed_hosts: true,
        };
        let (plan, _pending) = self.ctx.plan_here(&obs);
        let notes: Vec<String> = plan.notes.iter().map(ToString::to_string).collect();
        for n in &notes {
            if !self.notes.contains(n) {
                self.journal.event(Priority::Info, "note", n, &[]);
            }
        }
        self.notes = notes;
        let all_up = self.all_answer(&obs);
        let converged = plan.is_empty() && all_up;
        if converged {
            let status = self.converged_status(&obs, &plan);
            self.publish(&obs, status, true, false, false);
            return Outcome::Idle;
        }
        if let Some(b) = plan.blockers.first() {
            let status = format!("refused (as apply would; a person must act): {b}");
            self.publish(&obs, status, false, false, false);
            return Outcome::Idle;
        }
        if let Some(w) = plan.waits.first() {
            let status = format!("waiting: {w}");
            self.publish(&obs, status, false, false, false);
            return Outcome::Busy;
        }
        let decision = {
            let known = |k: &InstanceKey| self.known(&obs, k);
            let restarting = |k: &InstanceKey| self.restarting(k);
            let backing_off = |kind: &str| {
                self.backoff.get(kind).and_then(|b| {
                    let now = Instant::now();
                    (b.next > now).then(|| (b.failures, (b.next - now).as_secs() + 1))
                })
            };
            policy::decide(
                &self.ctx.topology,
                &plan,
                &obs,
                &policy::Facts {
                    known: &known,
                    restarting: &restarting,
                    backing_off: &backing_off,
                },
            )
        };
        let mut outcome = Outcome::Idle;
        let mut summary = Summary::default();
        if !decision.run.is_empty() {
            outcome = Outcome::Busy;
            let run = Plan {
                steps: decision.run.clone(),
                ..Plan::default()
            };
            let heartbeat = self.heartbeat.clone();
            let journal = &self.journal;
            let on_event = move |e: Event| {
                if let Ok(mut h) = heartbeat.lock() {
                    *h = Instant::now();
                }
                if let Event::StepDone { step, elapsed, .. } = e {
                    journal.event(
                        Priority::Info,
                        "step_done",
                        &format!("{step} ({:.1} s)", elapsed.as_secs_f64()),
                        &[("step", &step)],
                    );
                }
            };
            let result = self.ctx.execute(&run, &on_event, &mut summary).await;
            self.account(&run, &summary, result);
        }
        let status = self.status_line(&obs, &plan, &decision, &summary);
        let waiting = decision
            .withheld
            .iter()
            .any(|(_, w)| *w == Withheld::NeedsApply);
        self.publish(&obs, status, false, false, waiting);
        outcome
    }

    /// Counters, back-off and journal for an execution.
    fn account(&mut self, run: &Plan, summary: &Summary, result: Result<(), ExecError>) {
        let now = unix_now();
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        for step in &summary.executed {
            let kind = policy::kind(step);
            *shared.executed.entry(kind.clone()).or_default() += 1;
            self.backoff.remove(&kind);
        }
        let real: Vec<&Step> = summary
            .executed
            .iter()
            .filter(|s| {
                !matches!(
                    s,
                    Step::WaitConverged { .. }
                        | Step::WaitGroups { .. }
                        | Step::WaitMembership { .. }
                )
            })
            .collect();
        if let Some(first) = real.first() {
            let text = if real.len() == 1 {
                first.to_string()
            } else {
                format!("{first} and {} more step(s)", real.len() - 1)
            };
            self.last_change = Some((now, text));
            self.stable_since = Instant::now();
        }
        if let Err(e) = result {
            // The step that failed: the first one not executed.
            let failed = run
                .steps
                .iter()
                .find(|s| !summary.executed.contains(s))
                .cloned();
            let kind = failed.as_ref().map(policy::kind).unwrap_or_default();
            *shared.failures.entry(kind.clone()).or_default() += 1;
            let b = self.backoff.entry(kind.clone()).or_insert(Backoff {
                failures: 0,
                next: Instant::now(),
                error: String::new(),
            });
            b.failures += 1;
            // interval × 2^(failures-1), at most 5 minutes.
            let base = self.ctx.topology.agent.interval_ms.max(1000);
            let wait = base
                .saturating_mul(1 << (b.failures - 1).min(10))
                .min(300_000);
            b.next = Instant::now() + Duration::from_millis(wait);
            b.error = e.to_string();
            let step = failed.map(|s| s.to_string()).unwrap_or_default();
            self.journal.event(
                Priority::Warning,
                "step_failed",
                &format!(
                    "{step} failed ({} time(s); next try in {} s): {e}",
                    b.failures,
                    wait / 1000
                ),
                &[("step", &step), ("kind", &kind)],
            );
        }
    }

    fn status_line(
        &self,
        obs: &Observed,
        plan: &Plan,
        decision: &policy::Decision,
        summary: &Summary,
    ) -> String {
        let mut parts = Vec::new();
        if let Some(e) = &self.config_error {
            parts.push(e.clone());
        }
        if !summary.executed.is_empty()
            && let Some((at, what)) = &self.last_change
        {
            parts.push(format!("healing: {what} at {}", hhmm(*at)));
        }
        let failing: Vec<String> = self
            .backoff
            .iter()
            .map(|(k, b)| format!("{k} failed {} time(s): {}", b.failures, b.error))
            .collect();
        if !failing.is_empty() {
            parts.push(format!("backing off: {}", failing.join("; ")));
        }
        let apply: Vec<&Step> = decision
            .withheld
            .iter()
            .filter(|(_, w)| *w == Withheld::NeedsApply)
            .map(|(s, _)| s)
            .collect();
        if !apply.is_empty() {
            parts.push(format!("waiting for apply: {}", self.needs_apply(&apply)));
        }
        for (step, why) in &decision.withheld {
            if !matches!(why, Withheld::NeedsApply | Withheld::BackingOff { .. }) {
                parts.push(format!("not now: {step}: {why}"));
                break;
            }
        }
        if parts.is_empty() {
            let note = plan
                .notes
                .first()
                .map(|n| format!("; {n}"))
                .unwrap_or_default();
            parts.push(if plan.steps.is_empty() {
                format!("not converged: {}{note}", self.nodes_up(obs))
            } else {
                format!("settling: {} step(s) planned{note}", plan.steps.len())
            });
        }
        parts.join("; ")
    }

    /// What `apply` would do that the agent leaves, in a person's words.
    fn needs_apply(&self, steps: &[&Step]) -> String {
        let mut what = Vec::new();
        let moves = steps.iter().any(|s| matches!(s, Step::MoveSlots { .. }));
        if let Some(c) = &self.ctx.topology.cluster {
            let serving = self.serving_shards();
            if moves || serving != c.shards.len() {
                what.push(format!(
                    "shards {serving}→{} needs data movement",
                    c.shards.len()
                ));
            }
        } else if moves {
            what.push("slots to move".to_string());
        }
        let new: Vec<String> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Start { node } | Step::StartReplica { node, .. } => Some(node.to_string()),
                _ => None,
            })
            .collect();
        if !new.is_empty() {
            what.push(format!("new instance(s) {}", new.join(", ")));
        }
        let retire = steps
            .iter()
            .filter(|s| matches!(s, Step::Retire { .. } | Step::SentinelRemove { .. }))
            .count();
        if retire > 0 {
            what.push(format!("{retire} removal(s)"));
        }
        if what.is_empty() {
            let list: Vec<String> = steps.iter().take(3).map(|s| s.to_string()).collect();
            what.push(list.join("; "));
        }
        format!(
            "{} ({} step(s); run `redisctl apply`)",
            what.join(", "),
            steps.len()
        )
    }

    /// Shards serving slots now, from the last snapshot's masters.
    fn serving_shards(&self) -> usize {
        let shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared
            .instances
            .iter()
            .filter(|i| i.kind == "cluster" && i.role == Some("master") && i.slots > 0)
            .count()
    }

    fn converged_status(&self, obs: &Observed, plan: &Plan) -> String {
        let views = views(&self.ctx, obs);
        let up = views.iter().filter(|v| v.up).count();
        let slots: u32 = views
            .iter()
            .filter(|v| v.role == Some("master"))
            .map(|v| v.slots)
            .sum();
        let moved = views
            .iter()
            .filter(|v| v.kind != "sentinel" && v.role.is_some_and(|r| r != v.declared_role))
            .count();
        let masters = if moved == 0 {
            "masters as declared".to_string()
        } else if self.ctx.topology.agent.restore_roles {
            format!(
                "{} node(s) not in their declared role (restored once stable for {} s)",
                moved,
                self.ctx.topology.agent.stable_for_ms / 1000
            )
        } else {
            format!("{moved} node(s) not in their declared role (policy.restore_roles is off)")
        };
        let slots = if self.ctx.topology.cluster.is_some() {
            format!(", {slots} slots")
        } else {
            String::new()
        };
        let change = match &self.last_change {
            Some((at, what)) => format!("; last change {} ({what})", hhmm(*at)),
            None => String::new(),
        };
        let note = self
            .config_error
            .as_ref()
            .map(|e| format!("; {e}"))
            .unwrap_or_default();
        let _ = plan;
        format!(
            "converged: {up}/{} nodes{slots}, {masters}{change}{note}",
            views.len()
        )
    }

    fn nodes_up(&self, obs: &Observed) -> String {
        let v = views(&self.ctx, obs);
        format!(
            "{}/{} nodes answer",
            v.iter().filter(|x| x.up).count(),
            v.len()
        )
    }

    fn all_answer(&self, obs: &Observed) -> bool {
        obs.nodes
            .values()
            .all(|o| o.live.is_some() || o.repl.is_some() || o.sentinel.is_some())
    }

    /// An instance this deployment has run before: its id is recorded, or its directory
    /// holds files a start wrote.
    fn known(&self, obs: &Observed, key: &InstanceKey) -> bool {
        if obs.record.node_ids.contains_key(&key.to_string()) {
            return true;
        }
        self.ctx
            .targets
            .iter()
            .find(|t| &t.managed.key == key)
            .is_some_and(|t| {
                t.managed.paths.config.exists() || t.managed.paths.data.exists() || !t.local
            })
    }

    fn restarting(&self, key: &InstanceKey) -> bool {
        self.ctx
            .targets
            .iter()
            .find(|t| &t.managed.key == key && t.local)
            .is_some_and(|t| self.ctx.supervisor.restarting(&t.managed))
    }

    fn local_hosts(&self) -> Vec<String> {
        self.ctx.local_hosts()
    }

    /// The coordinating host: the first host in `hosts` order that is this one or has an
    /// instance answering. So when the first host is down (or drained), the next live host's
    /// agent coordinates; every agent that sees the same nodes picks the same host.
    fn coordinator(&self, obs: &Observed) -> Option<String> {
        let local = self.local_hosts();
        for h in &self.ctx.topology.hosts {
            if local.contains(&h.name) {
                return None;
            }
            let answers = obs
                .nodes
                .iter()
                .any(|(k, o)| k.host == h.name && o.port_answers);
            if answers {
                return Some(h.name.clone());
            }
        }
        None
    }

    /// Roles that changed since the last round count as failovers seen; any change (or a
    /// node not answering) restarts the stability clock of restore_roles.
    fn track_stability(&mut self, obs: &Observed) {
        // A shard whose master is down keeps its last known master: the failover is seen
        // when another member answers as master.
        let mut masters: BTreeMap<String, InstanceKey> = self.masters.clone().unwrap_or_default();
        let mut now: BTreeMap<String, InstanceKey> = BTreeMap::new();
        for v in views(&self.ctx, obs) {
            // A cluster node is a shard's master only while it owns slots (a node restarted
            // empty is a master of nothing).
            if v.role == Some("master")
                && v.kind != "sentinel"
                && (v.kind != "cluster" || v.slots > 0)
            {
                let unit = self
                    .ctx
                    .topology
                    .instances()
                    .find(|i| i.key.to_string() == v.instance)
                    .map(|i| match &i.group {
                        Some(g) => format!("group {g}"),
                        None => format!("shard {}", i.shard),
                    })
                    .unwrap_or_default();
                now.insert(
                    unit,
                    InstanceKey {
                        host: v.host.clone(),
                        port: v.port,
                    },
                );
            }
        }
        if let Some(old) = &self.masters {
            let changed: Vec<String> = now
                .iter()
                .filter(|(unit, k)| old.get(*unit).is_some_and(|o| o != *k))
                .map(|(unit, k)| format!("{unit}: master is now {k}"))
                .collect();
            if !changed.is_empty() {
                let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
                shared.failovers_seen += changed.len() as u64;
                drop(shared);
                for c in &changed {
                    self.journal
                        .event(Priority::Notice, "failover_seen", c, &[]);
                }
                self.stable_since = Instant::now();
            }
            if now.len() != old.len() {
                self.stable_since = Instant::now();
            }
        }
        masters.extend(now);
        if !self.all_answer(obs) {
            self.stable_since = Instant::now();
        }
        self.masters = Some(masters);
    }

    fn publish(
        &self,
        obs: &Observed,
        status: String,
        converged: bool,
        paused: bool,
        waiting_for_apply: bool,
    ) {
        let views = views(&self.ctx, obs);
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        if s.status != status {
            self.journal.event(
                if converged {
                    Priority::Info
                } else {
                    Priority::Notice
                },
                "status",
                &status,
                &[],
            );
        }
        s.deployment = self.ctx.topology.name.clone();
        s.status = status.clone();
        s.ready = true;
        s.converged = converged;
        s.paused = paused;
        s.waiting_for_apply = waiting_for_apply;
        s.instances = views;
        s.hosts = self.local_hosts();
        s.drained = s
            .hosts
            .iter()
            .filter_map(|h| {
                crate::exec::maintenance::load_mark(&self.ctx.state_dir, h).map(|m| DrainedHost {
                    host: h.clone(),
                    since: m.since,
                })
            })
            .collect();
        s.rounds += 1;
        if converged {
            s.last_convergence = Some(unix_now());
        }
        let rounds = s.rounds;
        drop(s);
        let _ = marks::save_report(
            &self.ctx.state_dir,
            &marks::Report {
                pid: std::process::id(),
                at: unix_now(),
                status,
                converged,
                paused,
                waiting_for_apply,
                rounds,
            },
        );
    }
}

/// Every declared instance and Sentinel as the endpoints show it.
pub fn views(ctx: &Context, obs: &Observed) -> Vec<InstanceView> {
    // Cluster masters' offsets by node id; group members' offsets by address.
    let mut by_id: HashMap<&str, i64> = HashMap::new();
    let mut by_addr: HashMap<(String, u16), i64> = HashMap::new();
    let off = |v: Option<&str>| v.and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    for t in &ctx.targets {
        let Some(o) = obs.nodes.get(&t.managed.key) else {
            continue;
        };
        if let Some(l) = &o.live
            && l.myself.flags.master
        {
            by_id.insert(l.myself.id.as_str(), off(l.info("master_repl_offset")));
        }
        if let Some(r) = &o.repl
            && r.is_master
        {
            by_addr.insert((t.managed.address.to_string(), t.managed.port), r.offset);
        }
    }
    let declared: HashMap<&InstanceKey, Role> =
        ctx.topology.instances().map(|i| (&i.key, i.role)).collect();
    let mut out = Vec::new();
    for t in &ctx.targets {
        let key = &t.managed.key;
        let o = obs.nodes.get(key);
        let mut v = InstanceView {
            instance: key.to_string(),
            host: key.host.clone(),
            port: key.port,
            local: t.local,
            kind: match t.kind {
                TargetKind::Cluster => "cluster",
                TargetKind::Group => "group",
                TargetKind::Sentinel => "sentinel",
            },
            declared_role: match declared.get(key) {
                Some(Role::Master) => "master",
                Some(Role::Replica) => "replica",
                None => "sentinel",
            },
            role: None,
            up: false,
            lag_bytes: None,
            link_up: false,
            slots: 0,
            keys: 0,
        };
        if let Some(o) = o {
            if let Some(l) = &o.live {
                v.up = true;
                v.keys = l.keys;
                v.slots = crate::topology::slots::count(&l.myself.slots);
                if l.myself.flags.master {
                    v.role = Some("master");
                } else {
                    v.role = Some("replica");
                    v.link_up = l.info("master_link_status") == Some("up");
                    v.lag_bytes = l
                        .myself
                        .master_id
                        .as_deref()
                        .and_then(|m| by_id.get(m))
                        .map(|m| (m - off(l.info("slave_repl_offset"))).max(0));
                }
            } else if let Some(r) = &o.repl {
                v.up = true;
                v.keys = r.keys;
                if r.is_master {
                    v.role = Some("master");
                } else {
                    v.role = Some("replica");
                    v.link_up = r.link_up;
                    v.lag_bytes = r
                        .master_addr
                        .as_ref()
                        .and_then(|a| by_addr.get(a))
                        .map(|m| (m - r.offset).max(0));
                }
            } else if o.sentinel.is_some() {
                v.up = true;
                v.role = Some("sentinel");
            }
        }
        out.push(v);
    }
    out
}

/// What the agent watches for a reload: the topology file's bytes, followed by a SHA-256 of
/// each TLS file it names (a renewal replaces those and not the topology). Digests, so no
/// key material is kept around for the comparison.
fn watched(file: &std::path::Path, topo: &crate::topology::Topology) -> Option<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let mut text = std::fs::read(file).ok()?;
    if let Some(t) = &topo.tls {
        let mut paths = vec![t.ca_file.clone(), t.cert_file.clone(), t.key_file.clone()];
        paths.extend(t.client.iter().flat_map(|(c, k)| [c.clone(), k.clone()]));
        for h in &topo.hosts {
            paths.extend(h.tls.iter().flat_map(|(c, k)| [c.clone(), k.clone()]));
        }
        for p in paths {
            let bytes = std::fs::read(&p).unwrap_or_default();
            text.extend_from_slice(&Sha256::digest(&bytes));
        }
    }
    Some(text)
}
