//! In-memory simulator of replication groups and their Sentinels, for the groups planner
//! (plan/groups.rs) what sim.rs is for the cluster planner: a fresh deployment, a dead master
//! (crash-safe restart: the Sentinels promote first), `--restore-roles`, drifted Sentinel
//! settings and random stops must converge, and a converged deployment plans nothing.
//!
//! The model: replication is instant (a linked replica holds its master's keys and offset),
//! Sentinels agree at once (a failover moves every Sentinel's view), and every instance runs
//! on this host. Each step checks what Redis or Sentinel would refuse, or what would lose
//! data; each wait checks that its gate passes now.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Options, Step, group_problems, plan_with};
use crate::observe::{NodeObs, Observed, Record, ReplLive, SentinelLive, SentinelMaster};
use crate::supervise::ProcState;
use crate::topology::{InstanceKey, Topology};

#[derive(Debug, Clone, Default)]
struct Member {
    running: bool,
    /// Whom it replicates from; None: a master.
    master: Option<InstanceKey>,
    keys: u64,
}

#[derive(Debug, Clone, Default)]
struct Sentinel {
    running: bool,
    /// group → (monitored master, quorum, down-after ms)
    monitors: BTreeMap<String, (InstanceKey, u32, u64)>,
}

struct GroupSim {
    topo: Topology,
    members: BTreeMap<InstanceKey, Member>,
    sentinels: BTreeMap<InstanceKey, Sentinel>,
    executed: Vec<String>,
}

fn topology(replicas: usize, sentinels: usize) -> Topology {
    topology_with(replicas, sentinels, false)
}

fn topology_with(replicas: usize, sentinels: usize, persistence_off: bool) -> Topology {
    let mut y =
        String::from("version: 1\nname: gsim\nhosts:\n  - {name: h0, address: 127.0.0.1}\n");
    if persistence_off {
        y.push_str("defaults:\n  persistence: {save: [], appendonly: false}\n");
    }
    y.push_str("groups:\n  - name: g\n    master: {host: h0, port: 6379}\n    replicas:\n");
    for r in 0..replicas {
        y.push_str(&format!("      - {{host: h0, port: {}}}\n", 6380 + r));
    }
    if sentinels > 0 {
        y.push_str("sentinel:\n  instances:\n");
        for s in 0..sentinels {
            y.push_str(&format!("    - {{host: h0, port: {}}}\n", 26379 + s));
        }
        y.push_str(&format!("  quorum: {}\n", sentinels / 2 + 1));
    }
    let loaded = crate::topology::parse(&y, "gsim.yaml", Path::new("."));
    loaded.unwrap_or_else(|e| panic!("{y}\n{e}")).topology
}

impl GroupSim {
    fn new(topo: Topology) -> GroupSim {
        let members = topo
            .groups
            .iter()
            .flat_map(|g| g.members())
            .map(|m| {
                let member = Member {
                    // A fresh member starts as what its files say: a master, empty.
                    ..Member::default()
                };
                (m.key.clone(), member)
            })
            .collect();
        let sentinels = topo
            .sentinels()
            .map(|s| (s.key.clone(), Sentinel::default()))
            .collect();
        GroupSim {
            topo,
            members,
            sentinels,
            executed: Vec::new(),
        }
    }

    fn addr(&self, key: &InstanceKey) -> (String, u16) {
        let m = self
            .topo
            .instances()
            .find(|i| i.key == *key)
            .expect("a member");
        (m.address.to_string(), m.port)
    }

    fn observed(&self) -> Observed {
        let mut nodes = BTreeMap::new();
        let down = |endpoint: String| NodeObs {
            endpoint,
            process: ProcState::Stopped,
            live: None,
            error: Some("connection refused".into()),
            auth_failed: false,
            port_answers: false,
            has_nodes_conf: false,
            config_drift: false,
            repl: None,
            sentinel: None,
            live_drift: Vec::new(),
            acl_drift: Vec::new(),
            stale_auth: Vec::new(),
            peer_pass_stale: false,
        };
        for (k, m) in &self.members {
            let (ip, port) = self.addr(k);
            let mut o = down(format!("{ip}:{port}"));
            if m.running {
                let upstream = m.master.as_ref().map(|u| &self.members[u]);
                let link_up = upstream.is_some_and(|u| u.running);
                let offset = (1 + m.keys) as i64;
                let mut info = BTreeMap::from([
                    ("master_repl_offset".to_string(), offset.to_string()),
                    (
                        "role".to_string(),
                        if m.master.is_none() {
                            "master"
                        } else {
                            "slave"
                        }
                        .to_string(),
                    ),
                ]);
                if m.master.is_some() {
                    let link = if link_up { "up" } else { "down" };
                    info.insert("master_link_status".into(), link.into());
                    info.insert("master_link_down_since_seconds".into(), "0".into());
                    info.insert("master_sync_in_progress".into(), "0".into());
                    info.insert("slave_repl_offset".into(), offset.to_string());
                }
                let connected = self
                    .members
                    .values()
                    .filter(|r| r.running && r.master.as_ref() == Some(k))
                    .count() as u32;
                (o.process, o.error, o.port_answers) = (ProcState::Running { pid: 1 }, None, true);
                o.repl = Some(ReplLive {
                    is_master: m.master.is_none(),
                    master_addr: m.master.as_ref().map(|u| self.addr(u)),
                    link_up,
                    sync_in_progress: false,
                    offset,
                    connected_replicas: connected,
                    keys: m.keys,
                    info: info.into_iter().collect(),
                });
            }
            nodes.insert(k.clone(), o);
        }
        let sc = self.topo.sentinel.as_ref();
        for (k, s) in &self.sentinels {
            let inst = self
                .topo
                .sentinels()
                .find(|x| x.key == *k)
                .expect("declared");
            let mut o = down(format!("{}:{}", inst.address, inst.port));
            if s.running {
                let masters = s
                    .monitors
                    .iter()
                    .map(|(name, (m, quorum, down_after_ms))| {
                        let (ip, port) = self.addr(m);
                        let num_replicas = self
                            .members
                            .values()
                            .filter(|r| r.running && r.master.as_ref() == Some(m))
                            .count() as u32;
                        let others = self
                            .sentinels
                            .iter()
                            .filter(|(o, x)| *o != k && x.running && x.monitors.contains_key(name))
                            .count() as u32;
                        SentinelMaster {
                            name: name.clone(),
                            ip,
                            port,
                            flags: "master".into(),
                            quorum: *quorum,
                            down_after_ms: *down_after_ms,
                            failover_timeout_ms: sc.map_or(0, |c| c.failover_timeout_ms),
                            parallel_syncs: sc.map_or(0, |c| c.parallel_syncs),
                            num_replicas,
                            num_other_sentinels: others,
                        }
                    })
                    .collect();
                (o.process, o.error, o.port_answers) = (ProcState::Running { pid: 1 }, None, true);
                o.sentinel = Some(SentinelLive { masters });
            }
            nodes.insert(k.clone(), o);
        }
        let record = Record {
            deployment: self.topo.name.clone(),
            ..Record::default()
        };
        Observed { nodes, record }
    }

    /// Replication is instant: every linked replica holds its upstream's keys (chains too).
    fn sync(&mut self) {
        for _ in 0..self.members.len() {
            let snapshot = self.members.clone();
            for m in self.members.values_mut().filter(|m| m.running) {
                if let Some(u) = m
                    .master
                    .as_ref()
                    .map(|u| &snapshot[u])
                    .filter(|u| u.running)
                {
                    m.keys = u.keys;
                }
            }
        }
    }

    /// Make `to` the master of group `g`: the other members and every Sentinel follow it.
    fn promote(&mut self, g: &str, to: &InstanceKey) {
        for (k, m) in self.members.iter_mut() {
            m.master = (k != to).then(|| to.clone());
        }
        for s in self.sentinels.values_mut() {
            if let Some(e) = s.monitors.get_mut(g) {
                e.0 = to.clone();
            }
        }
    }

    fn persistence_off(&self, k: &InstanceKey) -> bool {
        let mut all = self.topo.instances();
        all.any(|i| i.key == *k && i.settings.persistence.is_off())
    }

    fn member(&mut self, k: &InstanceKey) -> &mut Member {
        self.members.get_mut(k).expect("a member")
    }

    fn apply(&mut self, step: &Step) {
        let up = |s: &GroupSim, k: &InstanceKey| {
            let running = s.members.get(k).map(|m| m.running);
            let running = running.or(s.sentinels.get(k).map(|x| x.running));
            assert_eq!(running, Some(true), "{step}: {k} is down");
        };
        match step {
            Step::Start { node } => {
                if let Some(s) = self.sentinels.get_mut(node) {
                    assert!(!s.running, "{step}: already running");
                    s.running = true;
                } else {
                    let off = self.persistence_off(node);
                    let m = self.member(node);
                    assert!(!m.running, "{step}: already running");
                    // Started as its files say (roles are never written to them): a master.
                    (m.running, m.master) = (true, None);
                    if off {
                        m.keys = 0;
                    }
                    let had = m.keys;
                    // Its replicas would copy its older dataset over the newer writes they hold.
                    let newer = self.members.iter().find(|(k, r)| {
                        *k != node && r.running && r.master.as_ref() == Some(node) && r.keys > had
                    });
                    assert!(newer.is_none(), "{step}: {newer:?} holds newer writes");
                }
            }
            Step::StartReplica { node, master } => {
                // Its master may be starting in the same round: the replica retries its link.
                let _ = master;
                let m = self.member(node);
                assert!(!m.running, "{step}: already running");
                (m.running, m.master) = (true, Some(master.clone()));
            }
            Step::WriteConfig { .. } | Step::ConfigSet { .. } => {}
            Step::ReplicaOf { node, master } => {
                up(self, node);
                up(self, master);
                let (n, m) = (&self.members[node], &self.members[master]);
                assert!(
                    !(n.master.is_none() && n.keys > m.keys),
                    "{step}: {node} holds {} keys its new master lacks",
                    n.keys
                );
                self.member(node).master = Some(master.clone());
            }
            Step::SentinelMonitor {
                sentinel,
                group,
                master,
            } => {
                up(self, sentinel);
                let sc = self.topo.sentinel.clone().expect("sentinels");
                let s = self.sentinels.get_mut(sentinel).expect("a sentinel");
                assert!(
                    !s.monitors.contains_key(group),
                    "{step}: duplicated master name"
                );
                s.monitors
                    .insert(group.clone(), (master.clone(), sc.quorum, sc.down_after_ms));
            }
            Step::SentinelSet {
                sentinel,
                group,
                params,
            } => {
                up(self, sentinel);
                let s = self.sentinels.get_mut(sentinel).expect("a sentinel");
                let e = s.monitors.get_mut(group).expect("a monitored group");
                for (k, v) in params {
                    match k.as_str() {
                        "quorum" => e.1 = v.parse().expect("a number"),
                        "down-after-milliseconds" => e.2 = v.parse().expect("a number"),
                        _ => {}
                    }
                }
            }
            Step::SentinelRemove { sentinel, group } => {
                self.sentinels
                    .get_mut(sentinel)
                    .expect("a sentinel")
                    .monitors
                    .remove(group);
            }
            Step::SentinelFailover { group, to } => {
                up(self, to);
                let current = self
                    .members
                    .iter()
                    .find(|(_, m)| m.running && m.master.is_none());
                let (ck, cm) = current.expect("a master");
                let t = &self.members[to];
                assert_eq!(t.master.as_ref(), Some(ck), "{step}: not a replica of {ck}");
                assert_eq!(t.keys, cm.keys, "{step}: {to} lacks writes");
                self.promote(group, to);
            }
            Step::SentinelPromote { group, from } => {
                assert!(!self.members[from].running, "{step}: {from} is up");
                let up_sentinels = self.sentinels.values().filter(|s| s.running).count();
                assert!(
                    2 * up_sentinels > self.sentinels.len(),
                    "{step}: no majority"
                );
                let best = self
                    .members
                    .iter()
                    .filter(|(_, m)| m.running && m.master.as_ref() == Some(from))
                    .max_by_key(|(k, m)| (m.keys, std::cmp::Reverse((*k).clone())))
                    .map(|(k, _)| k.clone())
                    .expect("NOGOODSLAVE: no replica to promote");
                self.promote(group, &best);
            }
            Step::PromoteReplica { node, .. } => {
                up(self, node);
                self.member(node).master = None;
            }
            Step::WaitGroups { .. } => {
                let problems = group_problems(&self.topo, &self.observed());
                assert!(problems.is_empty(), "`{step}` would time out: {problems:?}");
            }
            // State files and live settings the model does not hold.
            Step::MarkDrained { .. } | Step::ClearDrainMark { .. } | Step::HoldPromotion { .. } => {
            }
            Step::Stop { nodes } => {
                for k in nodes {
                    match self.sentinels.get_mut(k) {
                        Some(s) => s.running = false,
                        None => self.member(k).running = false,
                    }
                }
            }
            Step::Restart { node } => {
                up(self, node);
                // Its role and upstream come back as they were (apply's start of a running
                // deployment's member); replication is instant.
                let off = self.persistence_off(node);
                if let Some(m) = self.members.get_mut(node)
                    && off
                    && m.master.is_some()
                {
                    m.keys = 0;
                }
                self.sync();
                self.assert_caught_up(step, std::slice::from_ref(node));
            }
            Step::WaitCaughtUp { nodes } => self.assert_caught_up(step, nodes),
            other => panic!("unexpected step for groups: {other}"),
        }
        self.sync();
        self.executed.push(step.to_string());
    }

    /// The catch-up gate of `step` must pass now (replication is instant here).
    fn assert_caught_up(&self, step: &Step, nodes: &[InstanceKey]) {
        let missing = super::maintenance::catching_up(&self.topo, &self.observed(), nodes);
        assert!(missing.is_empty(), "`{step}` would time out: {missing:?}");
    }

    /// observe → plan → execute until the plan is empty; the number of executed rounds.
    fn converge(&mut self, opts: Options, ctx: &str) -> usize {
        for round in 0..=5 {
            let p = plan_with(&self.topo, &self.observed(), opts);
            assert!(
                p.blockers.is_empty(),
                "{ctx} round {round}: {:?}",
                p.blockers
            );
            assert!(p.waits.is_empty(), "{ctx} round {round}: {:?}", p.waits);
            if p.steps.is_empty() {
                return round;
            }
            assert!(round < 5, "{ctx}: not converged after 5 rounds:\n{p}");
            for s in &p.steps {
                self.apply(s);
            }
        }
        unreachable!()
    }

    /// The declared shape holds: one master (`preferred`: the declared one), every other
    /// member replicating from it with its keys, every Sentinel monitoring it.
    fn assert_converged(&self, preferred: bool, ctx: &str) {
        let problems = group_problems(&self.topo, &self.observed());
        assert!(problems.is_empty(), "{ctx}: {problems:?}");
        let g = &self.topo.groups[0];
        let masters: Vec<&InstanceKey> = self
            .members
            .iter()
            .filter(|(_, m)| m.running && m.master.is_none())
            .map(|(k, _)| k)
            .collect();
        assert_eq!(masters.len(), 1, "{ctx}: masters {masters:?}");
        if preferred {
            assert_eq!(masters[0], &g.master.key, "{ctx}");
        }
        let keys = self.members[masters[0]].keys;
        for (k, m) in &self.members {
            assert!(m.running, "{ctx}: {k} is down");
            assert_eq!(m.keys, keys, "{ctx}: {k} lacks keys");
        }
        for (k, s) in &self.sentinels {
            assert!(s.running, "{ctx}: Sentinel {k} is down");
            assert_eq!(
                s.monitors.get(&g.name).map(|e| &e.0),
                Some(masters[0]),
                "{ctx}"
            );
        }
    }
}

#[test]
fn a_fresh_group_with_sentinels_converges_and_then_plans_nothing() {
    for (replicas, sentinels) in [(2, 3), (1, 0), (2, 0), (1, 1), (3, 5)] {
        let ctx = format!("{replicas} replicas, {sentinels} Sentinels");
        let mut sim = GroupSim::new(topology(replicas, sentinels));
        let rounds = sim.converge(Options::default(), &ctx);
        assert!(rounds <= 3, "{ctx}: {rounds} rounds");
        sim.assert_converged(true, &ctx);
        let as_replicas = sim
            .executed
            .iter()
            .filter(|s| s.contains("as a replica of"));
        assert_eq!(as_replicas.count(), replicas, "{ctx}: {:?}", sim.executed);
        let monitors = sim.executed.iter().filter(|s| s.contains(": monitor g at"));
        assert_eq!(monitors.count(), sentinels, "{ctx}: {:?}", sim.executed);
    }
}

/// The group's master dies with writes its replicas have: the Sentinels promote the best
/// replica first (crash-safe restarts), the old master comes back as a replica and no key
/// is lost; `--restore-roles` then hands mastership back through Sentinel.
#[test]
fn a_dead_group_master_is_replaced_before_it_restarts_and_roles_come_back_on_request() {
    let ctx = "dead master";
    let mut sim = GroupSim::new(topology(2, 3));
    sim.converge(Options::default(), ctx);
    let g = sim.topo.groups[0].clone();
    sim.member(&g.master.key).keys = 42;
    sim.sync();
    sim.member(&g.master.key).running = false;
    let p = plan_with(&sim.topo, &sim.observed(), Options::default());
    assert!(
        matches!(&p.steps[..], [Step::SentinelPromote { from, .. }] if *from == g.master.key),
        "{p}"
    );
    assert_eq!(p.notes[0].kind, super::NoteKind::Restart);
    sim.executed.clear();
    sim.converge(Options::default(), ctx);
    sim.assert_converged(false, ctx);
    assert!(
        sim.executed[0].contains("SENTINEL FAILOVER"),
        "{:?}",
        sim.executed
    );
    assert_eq!(sim.members[&g.master.key].keys, 42);
    let p = plan_with(&sim.topo, &sim.observed(), Options::default());
    assert!(p.steps.is_empty(), "{p}");
    assert_eq!(p.notes.len(), 1, "{p}");
    assert_eq!(p.notes[0].kind, super::NoteKind::NotPreferredMaster);
    let restore = Options {
        restore_roles: true,
        ..Options::default()
    };
    sim.converge(restore, "restore roles");
    sim.assert_converged(true, "restore roles");
}

/// Without Sentinels a dead master is replaced by `REPLICAOF NO ONE` on its freshest replica.
#[test]
fn without_sentinels_a_dead_master_is_replaced_by_its_freshest_replica() {
    let ctx = "no sentinels";
    let mut sim = GroupSim::new(topology(2, 0));
    sim.converge(Options::default(), ctx);
    let g = sim.topo.groups[0].clone();
    sim.member(&g.master.key).keys = 7;
    sim.sync();
    sim.member(&g.master.key).running = false;
    sim.executed.clear();
    sim.converge(Options::default(), ctx);
    sim.assert_converged(false, ctx);
    assert!(
        sim.executed[0].contains("REPLICAOF NO ONE"),
        "{:?}",
        sim.executed
    );
    assert_eq!(sim.members[&g.master.key].keys, 7);
}

/// Drifted Sentinel settings are set back; a name no longer declared is removed.
#[test]
fn sentinel_drift_and_foreign_names_are_converged() {
    let ctx = "drift";
    let mut sim = GroupSim::new(topology(1, 3));
    sim.converge(Options::default(), ctx);
    let g = sim.topo.groups[0].clone();
    let s0 = sim.sentinels.keys().next().cloned().expect("a sentinel");
    let s = sim.sentinels.get_mut(&s0).expect("a sentinel");
    s.monitors.get_mut("g").expect("g").1 = 1;
    s.monitors
        .insert("old".into(), (g.master.key.clone(), 2, 1000));
    sim.executed.clear();
    assert_eq!(sim.converge(Options::default(), ctx), 1);
    sim.assert_converged(true, ctx);
    assert!(!sim.sentinels[&s0].monitors.contains_key("old"));
    assert_eq!(sim.executed.len(), 3, "{:?}", sim.executed);
}

/// Seeded random stops of members and Sentinels in a converged deployment with data:
/// apply converges, and no key is lost.
#[test]
fn random_stops_converge_without_losing_keys() {
    for seed in 1..=64u64 {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let (replicas, sentinels) = (1 + next(3) as usize, [0, 3, 5][next(3) as usize]);
        let off = next(2) == 0;
        let ctx = format!(
            "seed {seed}: {replicas} replicas, {sentinels} Sentinels, no persistence {off}"
        );
        let mut sim = GroupSim::new(topology_with(replicas, sentinels, off));
        sim.converge(Options::default(), &ctx);
        let master = sim
            .members
            .iter()
            .find(|(_, m)| m.master.is_none())
            .map(|(k, _)| k.clone())
            .expect("a master");
        sim.member(&master).keys = 1 + next(100);
        sim.sync();
        let keys = sim.members[&master].keys;
        let members: Vec<InstanceKey> = sim.members.keys().cloned().collect();
        // Stop up to all replicas and maybe the master, but keep one copy of the data.
        for k in &members {
            let holders = sim.members.values().filter(|m| m.running).count();
            if holders > 1 && next(2) == 0 {
                sim.member(k).running = false;
            }
        }
        // Sentinels: a minority may stop (with no majority the planner refuses, by design).
        let sk: Vec<InstanceKey> = sim.sentinels.keys().cloned().collect();
        for k in sk.iter().take(sentinels.saturating_sub(1) / 2) {
            if next(2) == 0 {
                sim.sentinels.get_mut(k).expect("sentinel").running = false;
            }
        }
        sim.converge(Options::default(), &ctx);
        sim.assert_converged(false, &ctx);
        for (k, m) in &sim.members {
            assert_eq!(m.keys, keys, "{ctx}: {k}");
        }
    }
}

// ---- Maintenance plans (plan/maintenance.rs) on groups spread over hosts.

use super::maintenance::{self, DrainOptions, Maintenance};

/// One group, its master on h0 and a replica on each other host, a Sentinel on every host.
fn spread(hosts: usize) -> Topology {
    let mut y = String::from("version: 1\nname: gsim\nhosts:\n");
    for h in 0..hosts {
        y.push_str(&format!("  - {{name: h{h}, address: 127.0.0.{}}}\n", h + 1));
    }
    y.push_str("groups:\n  - name: g\n    master: {host: h0, port: 6379}\n    replicas:\n");
    for h in 1..hosts {
        y.push_str(&format!("      - {{host: h{h}, port: 6379}}\n"));
    }
    y.push_str("sentinel:\n  instances:\n");
    for h in 0..hosts {
        y.push_str(&format!("    - {{host: h{h}, port: 26379}}\n"));
    }
    y.push_str(&format!("  quorum: {}\n", hosts / 2 + 1));
    let loaded = crate::topology::parse(&y, "gsim.yaml", Path::new("."));
    loaded.unwrap_or_else(|e| panic!("{y}\n{e}")).topology
}

fn run_maintenance(sim: &mut GroupSim, m: &Maintenance, ctx: &str) {
    assert!(!m.plan.halted(), "{ctx}: blocked:\n{}", m.plan);
    for s in &m.plan.steps {
        sim.apply(s);
    }
}

fn converged_spread(hosts: usize) -> GroupSim {
    let mut sim = GroupSim::new(spread(hosts));
    sim.converge(Options::default(), "setup");
    let g = sim.topo.groups[0].clone();
    sim.member(&g.master.key).keys = 77;
    sim.sync();
    sim
}

/// Draining the master's host hands the group to a replica elsewhere through the Sentinels,
/// stops the host's member and Sentinel, loses no key; undrain starts them, waits, and hands
/// the role back. Draining a replica's host moves nothing.
#[test]
fn drain_and_undrain_of_each_host_keep_the_group_served() {
    for hosts in [3, 5] {
        for h in 0..hosts {
            let host = format!("h{h}");
            let ctx = format!("{hosts} hosts, drain {host}");
            let mut sim = converged_spread(hosts);
            let m = maintenance::drain(&sim.topo, &sim.observed(), &host, DrainOptions::default());
            let failovers = m
                .plan
                .steps
                .iter()
                .filter(|s| matches!(s, Step::SentinelFailover { .. }))
                .count();
            assert_eq!(failovers, usize::from(h == 0), "{ctx}:\n{}", m.plan);
            run_maintenance(&mut sim, &m, &ctx);
            let serving: Vec<_> = sim
                .members
                .iter()
                .filter(|(_, x)| x.running && x.master.is_none())
                .collect();
            assert_eq!(serving.len(), 1, "{ctx}: {serving:?}");
            assert_ne!(serving[0].0.host, host, "{ctx}");
            assert_eq!(serving[0].1.keys, 77, "{ctx}: keys lost");
            let masters = m
                .plan
                .steps
                .iter()
                .find_map(|s| match s {
                    Step::MarkDrained { masters, .. } => Some(masters.clone()),
                    _ => None,
                })
                .expect("marked");
            let mut done = false;
            for _ in 0..4 {
                let u = maintenance::undrain(
                    &sim.topo,
                    &sim.observed(),
                    &host,
                    &masters,
                    false,
                    Options::default(),
                );
                run_maintenance(&mut sim, &u, &ctx);
                if u.plan
                    .steps
                    .iter()
                    .any(|s| matches!(s, Step::ClearDrainMark { .. }))
                {
                    done = true;
                    break;
                }
            }
            assert!(done, "{ctx}: undrain did not finish");
            sim.assert_converged(true, &ctx);
            let p = plan_with(&sim.topo, &sim.observed(), Options::default());
            assert!(p.is_empty(), "{ctx}: apply after undrain:\n{p}");
        }
    }
}

/// With 3 Sentinels and one host already down, draining another would leave 1 of 3: refused,
/// naming both reasons; --force accepts them as notes.
#[test]
fn drain_refuses_when_the_sentinels_left_could_not_fail_over() {
    let mut sim = converged_spread(3);
    let k2 = InstanceKey {
        host: "h2".into(),
        port: 26379,
    };
    sim.sentinels.get_mut(&k2).expect("declared").running = false;
    let r2 = InstanceKey {
        host: "h2".into(),
        port: 6379,
    };
    sim.member(&r2).running = false;
    let m = maintenance::drain(&sim.topo, &sim.observed(), "h0", DrainOptions::default());
    assert!(m.plan.steps.is_empty());
    let text = m.refusals();
    assert!(text.contains("host h2 has no instance answering"), "{text}");
    assert!(text.contains("Sentinels: 1 of 3"), "{text}");
    let forced = DrainOptions {
        force: true,
        move_slots: false,
    };
    let m = maintenance::drain(&sim.topo, &sim.observed(), "h0", forced);
    assert!(!m.plan.halted());
    assert_eq!(
        m.plan
            .notes
            .iter()
            .filter(|n| n.message.starts_with("accepted with --force"))
            .count(),
        2
    );
}

/// failover of a group replica: one Sentinel failover, from the current master; a lagging
/// replica (link down) is refused unless --force.
#[test]
fn group_failover_and_rolling_restart_plans() {
    let mut sim = converged_spread(3);
    let g = sim.topo.groups[0].clone();
    let r = g.replicas[0].key.clone();
    let m = maintenance::failover(&sim.topo, &sim.observed(), &r, false);
    assert_eq!(
        m.plan.steps,
        [Step::SentinelFailover {
            group: "g".into(),
            to: r.clone()
        }]
    );
    crate::render::golden(
        "plans/failover-group.txt",
        &format!(
            "# a group over 3 hosts, converged: failover {r}\n{}",
            m.plan
        ),
    );
    // Rolling restart of h0 (the master's host): out to the replica, restart, back.
    let local = vec![
        g.master.key.clone(),
        InstanceKey {
            host: "h0".into(),
            port: 26379,
        },
    ];
    let m = maintenance::restart(&sim.topo, &sim.observed(), &local);
    crate::render::golden(
        "plans/rolling-restart-group.txt",
        &format!(
            "# a group over 3 hosts, converged: restart --rolling on h0\n{}",
            m.plan
        ),
    );
    run_maintenance(&mut sim, &m, "rolling restart");
    sim.assert_converged(true, "rolling restart");

    sim.member(&g.master.key).running = false;
    let m = maintenance::failover(&sim.topo, &sim.observed(), &r, false);
    assert_eq!(
        m.plan.blockers[0].kind,
        super::BlockerKind::ReplicaBehind,
        "{}",
        m.plan
    );
}

/// A group replica counts as caught up by the one rule (`in_sync`, failing closed): linked
/// and close behind its master. Far behind, or with its master not answering, it is not.
#[test]
fn a_group_replica_far_behind_or_without_a_master_has_not_caught_up() {
    let mut sim = converged_spread(3);
    let g = sim.topo.groups[0].clone();
    let r = g.replicas[0].key.clone();
    let ready = |sim: &GroupSim| {
        maintenance::catching_up(&sim.topo, &sim.observed(), std::slice::from_ref(&r))
    };
    assert_eq!(ready(&sim), Vec::<String>::new());
    sim.member(&g.master.key).keys = 5_000_000;
    let far = ready(&sim);
    assert!(
        far.len() == 1 && far[0].contains("resynchronising"),
        "{far:?}"
    );
    sim.sync();
    assert!(ready(&sim).is_empty());
    sim.member(&g.master.key).running = false;
    assert_eq!(ready(&sim).len(), 1, "master down: unknown, not caught up");
}

/// Renewed TLS files on every Sentinel: one restart per plan, followed by the wait for all
/// Sentinels to agree; none while a Sentinel does not answer (the quorum must hold).
#[test]
fn sentinels_with_renewed_tls_files_restart_one_per_plan_with_all_answering() {
    let ctx = "tls renewal";
    let mut sim = GroupSim::new(topology(2, 3));
    sim.converge(Options::default(), ctx);
    let mut obs = sim.observed();
    let sentinels: Vec<InstanceKey> = sim.topo.sentinels().map(|s| s.key.clone()).collect();
    for k in &sentinels {
        obs.nodes.get_mut(k).expect("observed").live_drift = vec![(
            "tls-cert-file".into(),
            "/s/tls-cert-old.pem".into(),
            "/s/tls-cert-new.pem".into(),
        )];
    }
    let p = crate::plan::plan(&sim.topo, &obs);
    let restarts: Vec<usize> = (0..p.steps.len())
        .filter(|&i| matches!(p.steps[i], Step::RestartSentinel { .. }))
        .collect();
    assert_eq!(restarts.len(), 1, "{:?}", p.steps);
    assert!(
        p.steps[restarts[0]..]
            .iter()
            .any(|s| matches!(s, Step::WaitGroups { .. })),
        "{:?}",
        p.steps
    );
    // One Sentinel silent: restart none of the others.
    let o = obs.nodes.get_mut(&sentinels[2]).expect("observed");
    o.sentinel = None;
    o.error = Some("connection refused".into());
    let p = crate::plan::plan(&sim.topo, &obs);
    assert!(
        !p.steps
            .iter()
            .any(|s| matches!(s, Step::RestartSentinel { .. })),
        "{:?}",
        p.steps
    );
}
