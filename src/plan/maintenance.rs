//! Maintenance plans: `drain` (masters off a host, then its instances stopped and the host
//! marked), `undrain` (back, roles restored), `failover` (one replica made master) and
//! `restart --rolling` (one instance at a time, a master only after a safe handover). Each is
//! a `Plan` of the same steps `apply` runs, built from the topology and one observation: the
//! replica that takes over, the slots that move, the refusals and what stays degraded are
//! decided here, so `--dry-run` prints exactly what the executor will do and the executor
//! chooses nothing. Pure, like all of plan/: no sockets, no clock, no files.
//!
//! Whether a replica may take over is one rule everywhere: `replication::in_sync`, which
//! fails closed.

use serde::Serialize;

use super::groups::current_master;
use super::replication::{Info, Unknown, lag};
use super::{
    Blocker, BlockerKind, Note, NoteKind, Options, Plan, Step, endpoint_of, in_sync, plan_with,
};
use crate::observe::{Live, Observed};
use crate::topology::slots::ranges_of;
use crate::topology::{Group, InstanceKey, Topology};

/// One mastership a plan hands over: `plan.steps[step]` moves it from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handover {
    pub step: usize,
    pub from: InstanceKey,
    pub to: InstanceKey,
    /// `cluster` or the group's name.
    pub of: String,
}

/// A maintenance plan and the handovers it makes (for the report).
#[derive(Debug, Clone, Default)]
pub struct Maintenance {
    pub plan: Plan,
    pub handovers: Vec<Handover>,
}

impl Maintenance {
    fn push(&mut self, step: Step) {
        self.plan.steps.push(step);
    }
    fn hand_over(&mut self, step: Step, from: &InstanceKey, to: &InstanceKey, of: &str) {
        self.handovers.push(Handover {
            step: self.plan.steps.len(),
            from: from.clone(),
            to: to.clone(),
            of: of.to_string(),
        });
        self.plan.steps.push(step);
    }
    /// The blockers' sentences, one per line, for a refusal.
    pub fn refusals(&self) -> String {
        super::findings::lines(&self.plan.blockers).join("\n  - ")
    }
}

/// What an instance of the topology is.
enum Role<'a> {
    Cluster,
    Member(&'a Group),
    Sentinel,
}

fn role_of<'a>(topo: &'a Topology, key: &InstanceKey) -> Option<Role<'a>> {
    if topo.cluster_instances().any(|i| &i.key == key) {
        return Some(Role::Cluster);
    }
    if let Some(g) = topo.groups.iter().find(|g| g.member(key).is_some()) {
        return Some(Role::Member(g));
    }
    topo.sentinels()
        .any(|s| &s.key == key)
        .then_some(Role::Sentinel)
}

/// Every instance on `host`: cluster nodes, group members, then Sentinels.
fn on_host(topo: &Topology, host: &str) -> (Vec<InstanceKey>, Vec<InstanceKey>) {
    let data = topo
        .instances()
        .filter(|i| i.key.host == host)
        .map(|i| i.key.clone())
        .collect();
    let sentinels = topo
        .sentinels()
        .filter(|s| s.key.host == host)
        .map(|s| s.key.clone())
        .collect();
    (data, sentinels)
}

fn live<'a>(obs: &'a Observed, k: &InstanceKey) -> Option<&'a Live> {
    obs.nodes.get(k).and_then(|o| o.live.as_ref())
}

fn serves_slots(l: &Live) -> bool {
    l.myself.flags.master && !l.myself.slots.is_empty()
}

fn offset(l: &Live) -> i64 {
    l.info("slave_repl_offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The most up-to-date in-sync replica of cluster master `master`, not on `avoid_host`.
pub fn best_cluster_replica(
    obs: &Observed,
    master: &InstanceKey,
    avoid_host: Option<&str>,
) -> Option<InstanceKey> {
    let m = live(obs, master)?;
    obs.nodes
        .iter()
        .filter(|(k, _)| avoid_host != Some(k.host.as_str()))
        .filter_map(|(k, o)| o.live.as_ref().map(|l| (k, l)))
        .filter(|(_, l)| {
            l.myself.flags.replica
                && l.myself.master_id.as_deref() == Some(m.myself.id.as_str())
                && in_sync(&m.info, &l.info) == Ok(true)
        })
        .max_by_key(|(_, l)| offset(l))
        .map(|(k, _)| k.clone())
}

/// The most up-to-date in-sync member of group `g` replicating from `master`, not on
/// `avoid_host`.
pub fn best_group_replica(
    obs: &Observed,
    g: &Group,
    master: &InstanceKey,
    avoid_host: Option<&str>,
) -> Option<InstanceKey> {
    let mr = obs.nodes.get(master)?.repl.as_ref()?;
    g.members()
        .filter(|m| &m.key != master && avoid_host != Some(m.key.host.as_str()))
        .filter_map(|m| {
            let r = obs.nodes.get(&m.key)?.repl.as_ref()?;
            (!r.is_master && in_sync(&mr.info, &r.info) == Ok(true))
                .then_some((m.key.clone(), r.offset))
        })
        .max_by_key(|(_, off)| *off)
        .map(|(k, _)| k)
}

/// The instance `k` replicates from now, as a declared key.
pub fn master_of(topo: &Topology, obs: &Observed, k: &InstanceKey) -> Option<InstanceKey> {
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
    topo.instances()
        .find(|i| i.port == port && i.address.to_string() == ip)
        .map(|i| i.key.clone())
}

/// Whether a replica is in sync with its master (unknown when the master does not answer),
/// and its lag for a message.
fn sync_of(master: Option<&Info>, replica: &Info) -> (Result<bool, Unknown>, String) {
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
    (in_sync(m, replica), text)
}

/// `drain` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct DrainOptions {
    /// Drain even though the pre-checks found risks (they become notes).
    pub force: bool,
    /// Move the slots of masters without an in-sync replica elsewhere to the other masters.
    pub move_slots: bool,
}

/// `redisctl drain HOST`: mark the host, keep its instances from being promoted, hand every
/// master on it to an in-sync replica elsewhere (cluster shards side by side, then groups
/// through the Sentinels), move the slots of masters without one (`--move-slots`), then stop
/// its data nodes and its Sentinels. Refused (blockers, `DrainRisk`) when that would leave
/// slots or a group unserved or the Sentinels short of a failover, unless `force`.
pub fn drain(topo: &Topology, obs: &Observed, host: &str, opts: DrainOptions) -> Maintenance {
    let mut m = Maintenance::default();
    let mut risks = Vec::new();
    let answers = |k: &InstanceKey| obs.nodes.get(k).is_some_and(|o| o.port_answers);

    // Another host with nothing answering: drained, or down. Both halve the margin.
    for h in &topo.hosts {
        let (data, sentinels) = on_host(topo, &h.name);
        let all: Vec<&InstanceKey> = data.iter().chain(&sentinels).collect();
        if h.name != host && !all.is_empty() && !all.iter().any(|k| answers(k)) {
            risks.push(format!(
                "host {} has no instance answering (drained or down); draining {host} too leaves shards without any copy",
                h.name
            ));
        }
    }

    // Cluster: every master here needs an in-sync replica elsewhere, or --move-slots.
    let masters_here: Vec<InstanceKey> = obs
        .nodes
        .iter()
        .filter(|(k, o)| k.host == host && o.live.as_ref().is_some_and(serves_slots))
        .map(|(k, _)| k.clone())
        .collect();
    let mut failovers: Vec<(InstanceKey, InstanceKey)> = Vec::new();
    let mut evacuate: Vec<InstanceKey> = Vec::new();
    for k in &masters_here {
        match best_cluster_replica(obs, k, Some(host)) {
            Some(r) => failovers.push((k.clone(), r)),
            None if opts.move_slots => evacuate.push(k.clone()),
            None => risks.push(format!(
                "{k} is a master with no in-sync replica on another host; draining would leave its slots unserved. Pass --move-slots to move its slots to the other masters, or add a replica elsewhere"
            )),
        }
    }
    let receivers: Vec<InstanceKey> = obs
        .nodes
        .iter()
        .filter(|(k, o)| k.host != host && o.live.as_ref().is_some_and(serves_slots))
        .map(|(k, _)| k.clone())
        .collect();
    if !evacuate.is_empty() && receivers.is_empty() {
        risks.push(format!(
            "every master is on {host}: there is no other master to move slots to"
        ));
    }

    // Groups: the master here needs an in-sync replica elsewhere and enough Sentinels
    // elsewhere to authorise the failover (and the next one).
    let mut group_failovers: Vec<(&Group, InstanceKey, InstanceKey)> = Vec::new();
    let mut group_masters_here = Vec::new();
    for g in &topo.groups {
        let current = current_master(topo, g, obs).key.clone();
        if current.host != host {
            continue;
        }
        group_masters_here.push(current.clone());
        match best_group_replica(obs, g, &current, Some(host)) {
            Some(r) => group_failovers.push((g, current, r)),
            None => risks.push(format!(
                "group {}: its master {current} has no in-sync replica on another host",
                g.name
            )),
        }
    }
    if let Some(s) = &topo.sentinel {
        let total = s.instances.len();
        let needed = (s.quorum as usize).max(total / 2 + 1);
        let elsewhere = s
            .instances
            .iter()
            .filter(|i| i.key.host != host)
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
    for r in risks {
        if opts.force {
            m.plan.notes.push(Note::general(
                NoteKind::AcceptedRisk,
                format!("accepted with --force: {r}"),
            ));
        } else {
            m.plan
                .blockers
                .push(Blocker::general(BlockerKind::DrainRisk, r));
        }
    }
    if m.plan.halted() {
        return m;
    }

    // Mark first: from then on `apply` on this host starts nothing, and an interrupted drain
    // is reverted by undrain.
    let (data, sentinels) = on_host(topo, host);
    m.push(Step::MarkDrained {
        host: host.to_string(),
        masters: masters_here
            .iter()
            .chain(&group_masters_here)
            .cloned()
            .collect(),
    });
    if !data.is_empty() {
        m.push(Step::HoldPromotion {
            nodes: data.clone(),
        });
    }
    for (from, to) in &failovers {
        m.hand_over(
            Step::ClusterFailover { node: to.clone() },
            from,
            to,
            "cluster",
        );
    }
    for (g, from, to) in &group_failovers {
        let step = Step::SentinelFailover {
            group: g.name.clone(),
            to: to.clone(),
        };
        m.hand_over(step, from, to, &g.name);
    }
    // Masters without a replica elsewhere: their slots go to the other masters, evenly.
    for k in &evacuate {
        let Some(l) = live(obs, k) else { continue };
        let slots: Vec<u16> = l
            .myself
            .slots
            .iter()
            .flat_map(|r| r.start..=r.end)
            .collect();
        let n = receivers.len().max(1);
        let per = slots.len().div_ceil(n).max(1);
        for (i, chunk) in slots.chunks(per).enumerate() {
            let to = &receivers[i % n];
            m.push(Step::MoveSlots {
                from: k.clone(),
                to: to.clone(),
                from_addr: endpoint_of(topo, k),
                to_addr: endpoint_of(topo, to),
                slots: ranges_of(chunk.iter().copied()),
            });
        }
    }
    // Everything on the host stops, the Sentinels last.
    if !data.is_empty() {
        m.push(Step::Stop {
            nodes: data.clone(),
        });
    }
    if !sentinels.is_empty() {
        m.push(Step::Stop { nodes: sentinels });
    }

    // What stays degraded until undrain.
    let degraded = |m: &mut Maintenance, text: String| {
        m.plan.notes.push(Note::general(NoteKind::Degraded, text));
    };
    for g in &topo.groups {
        if g.members().filter(|x| x.key.host != host).count() < 2 {
            degraded(
                &mut m,
                format!("group {} has no replica until undrain", g.name),
            );
        }
    }
    for (from, to) in &failovers {
        degraded(
            &mut m,
            format!("{to} (master now) runs without a replica until undrain restarts {from}"),
        );
    }
    for k in data
        .iter()
        .filter(|k| matches!(role_of(topo, k), Some(Role::Cluster)))
    {
        if live(obs, k).is_some_and(|l| l.myself.flags.replica)
            && let Some(master) = master_of(topo, obs, k)
        {
            degraded(
                &mut m,
                format!("{master} runs without a replica until undrain restarts {k}"),
            );
        }
    }
    m
}

/// What is still missing before each of `keys` counts as back: answering and, for a replica,
/// linked and caught up (a cluster replica also needs healthy bus links from every other
/// node, or a failover to it right after its restart lacks the masters' votes); a Sentinel
/// monitoring every group. Empty when all are back.
pub fn catching_up(topo: &Topology, obs: &Observed, keys: &[InstanceKey]) -> Vec<String> {
    let mut missing = Vec::new();
    for k in keys {
        let Some(o) = obs.nodes.get(k) else { continue };
        match role_of(topo, k) {
            None => {}
            Some(Role::Cluster) => match &o.live {
                None => missing.push(format!("{k} is not answering yet")),
                Some(l) if l.myself.flags.replica => {
                    let master = obs
                        .nodes
                        .values()
                        .filter_map(|x| x.live.as_ref())
                        .find(|x| Some(x.myself.id.as_str()) == l.myself.master_id.as_deref());
                    match master.map(|m| in_sync(&m.info, &l.info)) {
                        Some(Ok(true)) => {}
                        Some(Ok(false)) => missing.push(format!(
                            "{k} is resynchronising ({} bytes behind)",
                            master
                                .and_then(|m| lag(&m.info, &l.info).ok())
                                .unwrap_or_default()
                        )),
                        Some(Err(e)) => {
                            missing.push(format!("{k} is resynchronising (lag unknown: {e})"))
                        }
                        None => missing.push(format!(
                            "{k} is resynchronising (its master is not answering)"
                        )),
                    }
                    let id = l.myself.id.as_str();
                    for (other, x) in obs.nodes.iter().filter(|(o, _)| *o != k) {
                        let Some(xl) = &x.live else { continue };
                        match xl.peer(id) {
                            Some(p) if p.connected && !p.flags.fail && !p.flags.pfail => {}
                            _ => missing.push(format!("{other} has no healthy link to {k} yet")),
                        }
                    }
                }
                Some(l) if l.cluster_state != "ok" => {
                    missing.push(format!("{k} reports cluster_state:{}", l.cluster_state));
                }
                Some(_) => {}
            },
            Some(Role::Member(g)) => match &o.repl {
                None => missing.push(format!("{k} is not answering yet")),
                Some(r) if !r.is_master => {
                    // The same rule as a cluster replica's (it used to be "link up and no sync
                    // running", which let a replica far behind count as caught up).
                    let upstream = master_of(topo, obs, k)
                        .and_then(|u| obs.nodes.get(&u)?.repl.as_ref().map(|x| &x.info));
                    let (synced, lag) = sync_of(upstream, &r.info);
                    if r.sync_in_progress || synced != Ok(true) {
                        missing.push(format!(
                            "{k} ({}) is resynchronising ({lag} behind)",
                            g.name
                        ));
                    }
                }
                Some(_) => {}
            },
            Some(Role::Sentinel) => {
                let ok = o.sentinel.as_ref().is_some_and(|s| {
                    topo.groups.iter().all(|g| {
                        s.masters
                            .iter()
                            .any(|m| m.name == g.name && !m.flags.contains("o_down"))
                    })
                });
                if !ok {
                    missing.push(format!("Sentinel {k} does not monitor every group yet"));
                }
            }
        }
    }
    missing
}

/// Whether `k` is a replica now (cluster node or group member).
fn is_replica(obs: &Observed, k: &InstanceKey) -> bool {
    obs.nodes.get(k).is_some_and(|o| {
        o.live.as_ref().is_some_and(|l| l.myself.flags.replica)
            || o.repl.as_ref().is_some_and(|r| !r.is_master)
    })
}

/// `redisctl undrain HOST`, one round of three: start the host's instances as `apply` would;
/// then (observed afresh) the rest of the host's part of apply's plan and a wait until they
/// have caught up; once they have, hand the masters recorded by drain (`masters`) their role
/// back unless `keep_roles`, and clear the mark. Which of them is a replica is only known once
/// they are back, so the handovers are planned in the round that finds them caught up.
pub fn undrain(
    topo: &Topology,
    obs: &Observed,
    host: &str,
    masters: &[InstanceKey],
    keep_roles: bool,
    opts: Options,
) -> Maintenance {
    let mut m = Maintenance::default();
    let (data, sentinels) = on_host(topo, host);
    let keys: Vec<InstanceKey> = data.into_iter().chain(sentinels).collect();
    // The host's part of apply's plan: starts, files, live settings, upstreams, monitors.
    let host_steps: Vec<Step> = plan_with(topo, obs, opts)
        .steps
        .into_iter()
        .filter(|s| s.host_node().is_some_and(|n| n.host == host))
        .collect();
    let starting = host_steps
        .iter()
        .any(|s| matches!(s, Step::Start { .. } | Step::StartReplica { .. }));
    let missing = catching_up(topo, obs, &keys);
    m.plan.steps = host_steps;
    if starting || !missing.is_empty() {
        // Started instances report their state (and need their monitors, upstreams and
        // settings) before anything else is planned for them, as `apply`'s partial plans.
        if !starting {
            m.push(Step::WaitCaughtUp { nodes: keys });
        }
        if !keep_roles && !masters.is_empty() {
            m.plan.notes.push(Note::general(
                NoteKind::RolesLater,
                format!(
                    "once {host}'s instances have caught up, undrain hands their roles back to {} where another instance serves them",
                    super::names(masters)
                ),
            ));
        }
        return m;
    }
    if !keep_roles {
        for k in masters.iter().filter(|k| is_replica(obs, k)) {
            let from = master_of(topo, obs, k).unwrap_or_else(|| k.clone());
            match role_of(topo, k) {
                Some(Role::Member(g)) => {
                    let step = Step::SentinelFailover {
                        group: g.name.clone(),
                        to: k.clone(),
                    };
                    m.hand_over(step, &from, k, &g.name);
                }
                _ => m.hand_over(
                    Step::ClusterFailover { node: k.clone() },
                    &from,
                    k,
                    "cluster",
                ),
            }
        }
    }
    m.push(Step::ClearDrainMark {
        host: host.to_string(),
    });
    m
}

/// `redisctl failover NODE`: make the replica `node` the master of its shard or group.
/// Refused when it is a master already, does not answer, or is not known to be in sync with
/// its master (unless `force`; a cluster replica whose link is down is then promoted with
/// `CLUSTER FAILOVER FORCE`).
pub fn failover(topo: &Topology, obs: &Observed, node: &InstanceKey, force: bool) -> Maintenance {
    let mut m = Maintenance::default();
    let refuse = |m: &mut Maintenance, kind, text: String| {
        m.plan.blockers.push(Blocker::on(kind, node, text));
    };
    let Some(o) = obs.nodes.get(node) else {
        refuse(
            &mut m,
            BlockerKind::NotObserved,
            format!("{node}: not in the topology"),
        );
        return m;
    };
    let not_answering = || {
        format!(
            "{node}: not answering ({}); nothing to fail over to",
            o.error.as_deref().unwrap_or("no reply")
        )
    };
    if let Some(g) = topo.groups.iter().find(|g| g.member(node).is_some()) {
        let current = current_master(topo, g, obs).key.clone();
        let Some(r) = &o.repl else {
            refuse(&mut m, BlockerKind::NotRunning, not_answering());
            return m;
        };
        if r.is_master {
            refuse(
                &mut m,
                BlockerKind::AlreadyMaster,
                format!(
                    "{node} is already the master of {}; nothing to fail over. To move mastership away, name the replica that should take over: redisctl failover FILE REPLICA",
                    g.name
                ),
            );
            return m;
        }
        let master = obs.nodes.get(&current).and_then(|x| x.repl.as_ref());
        let (synced, lag) = sync_of(master.map(|x| &x.info), &r.info);
        if !force && synced != Ok(true) {
            refuse(
                &mut m,
                BlockerKind::ReplicaBehind,
                format!(
                    "{node} lags {lag} behind {current} (link {}); a failover now would lose writes. Wait, or pass --force",
                    if r.link_up { "up" } else { "down" }
                ),
            );
            return m;
        }
        let step = Step::SentinelFailover {
            group: g.name.clone(),
            to: node.clone(),
        };
        m.hand_over(step, &current, node, &g.name);
        return m;
    }
    let Some(l) = &o.live else {
        refuse(&mut m, BlockerKind::NotRunning, not_answering());
        return m;
    };
    if !l.myself.flags.replica {
        refuse(
            &mut m,
            BlockerKind::AlreadyMaster,
            format!(
                "{node} is already a master; nothing to fail over. To move mastership away, name the replica that should take over: redisctl failover FILE REPLICA"
            ),
        );
        return m;
    }
    let master = obs
        .nodes
        .values()
        .filter_map(|x| x.live.as_ref())
        .find(|x| Some(x.myself.id.as_str()) == l.myself.master_id.as_deref());
    let (synced, lag) = sync_of(master.map(|x| &x.info), &l.info);
    let link_up = l.info("master_link_status") == Some("up");
    if !force && synced != Ok(true) {
        refuse(
            &mut m,
            BlockerKind::ReplicaBehind,
            format!(
                "{node} is not in sync with its master (link {}, {lag} behind); pass --force to promote it anyway (CLUSTER FAILOVER FORCE)",
                if link_up { "up" } else { "down" },
            ),
        );
        return m;
    }
    let from = master_of(topo, obs, node).unwrap_or_else(|| node.clone());
    let step = if force && !link_up {
        Step::ForcedFailover { node: node.clone() }
    } else {
        Step::ClusterFailover { node: node.clone() }
    };
    m.hand_over(step, &from, node, "cluster");
    m
}

/// `redisctl restart --rolling` on the hosts of `local`: replicas first, then each master
/// (its role handed to its best in-sync replica, another host's first, then restarted and its
/// role taken back), the Sentinels last; each restart waits until the instance has caught
/// up. Refused when an instance here is down, or a master has no in-sync replica.
pub fn restart(topo: &Topology, obs: &Observed, local: &[InstanceKey]) -> Maintenance {
    let mut m = Maintenance::default();
    let down: Vec<&InstanceKey> = local
        .iter()
        .filter(|k| !obs.nodes.get(*k).is_some_and(|o| o.port_answers))
        .collect();
    if !down.is_empty() {
        let names: Vec<String> = down.iter().map(ToString::to_string).collect();
        m.plan.blockers.push(
            Blocker::general(
                BlockerKind::NotRunning,
                format!(
                    "not every instance here is running ({}); run `redisctl apply` first",
                    names.join(", ")
                ),
            )
            .related(down.into_iter().cloned()),
        );
        return m;
    }
    let is_master = |k: &InstanceKey| {
        obs.nodes.get(k).is_some_and(|o| {
            o.live.as_ref().is_some_and(serves_slots)
                || o.repl.as_ref().is_some_and(|r| r.is_master)
        })
    };
    let (mut replicas, mut masters, mut sentinels) = (Vec::new(), Vec::new(), Vec::new());
    for k in local {
        match role_of(topo, k) {
            Some(Role::Sentinel) => sentinels.push(k),
            Some(_) if is_master(k) => masters.push(k),
            Some(_) => replicas.push(k),
            None => {}
        }
    }
    // Another host's replica first; the handover itself waits for every write.
    let best = |k: &InstanceKey, avoid: Option<&str>| match role_of(topo, k) {
        Some(Role::Member(g)) => best_group_replica(obs, g, k, avoid).map(|r| (r, g.name.clone())),
        _ => best_cluster_replica(obs, k, avoid).map(|r| (r, "cluster".to_string())),
    };
    let mut handovers = Vec::new();
    for k in &masters {
        match best(k, Some(&k.host)).or_else(|| best(k, None)) {
            Some((to, of)) => handovers.push((*k, to, of)),
            None => m.plan.blockers.push(Blocker::on(
                BlockerKind::NoSafeHandover,
                k,
                format!(
                    "{k} is a master without an in-sync replica; restarting it would interrupt its shard. Add a replica, or restart it by hand"
                ),
            )),
        }
    }
    if m.plan.halted() {
        return m;
    }
    for k in replicas {
        m.push(Step::Restart { node: k.clone() });
    }
    let failover_to = |to: &InstanceKey, of: &str| {
        if of == "cluster" {
            Step::ClusterFailover { node: to.clone() }
        } else {
            Step::SentinelFailover {
                group: of.to_string(),
                to: to.clone(),
            }
        }
    };
    for (k, to, of) in handovers {
        m.hand_over(failover_to(&to, &of), k, &to, &of);
        m.push(Step::Restart { node: k.clone() });
        m.hand_over(failover_to(k, &of), &to, k, &of);
    }
    for k in sentinels {
        m.push(Step::Restart { node: k.clone() });
    }
    m
}
