//! In-memory simulator of Redis Cluster for planner property tests: random topologies and
//! random starting states (an interrupted first apply, stopped, restarted, failed-over and
//! wiped nodes, an interrupted slot move) must converge to the declared layout, and a
//! converged cluster plans nothing.
//!
//! The model is deliberately simple: gossip is instant (a meet merges two components and
//! every node of the result knows every other; slot owners and roles are the same in every
//! view), and replicas hold their master's keys as soon as they are attached. Each step
//! checks what Redis would refuse (or what would lose data), and each wait checks that its
//! gate passes: with instant gossip a gate that does not hold right away never would.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use super::{Options, Step, converge, plan_with};
use crate::observe::parse::{Flags, NodeLine};
use crate::observe::{Live, NodeObs, Observed, Record};
use crate::supervise::ProcState;
use crate::topology::Cluster;
use crate::topology::slots::{SLOTS, SlotRange, count, even_split, ranges_of};
use crate::topology::{InstanceKey, Topology};

/// One instance: its process, its nodes.conf and its dataset.
#[derive(Debug, Clone, Default)]
struct Node {
    ip: String,
    running: bool,
    /// data/nodes.conf exists: a (re)start keeps the identity below.
    has_conf: bool,
    id: String,
    epoch: u64,
    slots: BTreeSet<u16>,
    /// Id of its master when it is a replica.
    master: Option<String>,
    keys: u64,
    /// Ids of the other nodes it knows.
    known: BTreeSet<String>,
    /// Slots left open by an interrupted move: slot → id of the other side.
    migrating: BTreeMap<u16, String>,
    importing: BTreeMap<u16, String>,
    /// The running `cluster-node-timeout` (the configured one after each start).
    timeout_ms: u64,
}

struct Sim {
    topo: Topology,
    nodes: BTreeMap<InstanceKey, Node>,
    /// Old identities of wiped nodes, as the others list them until they forget them.
    ghosts: BTreeMap<String, NodeLine>,
    next_id: u64,
    record: Record,
    /// How many steps (and perturbations) of each kind happened.
    seen: BTreeMap<String, usize>,
}

impl Sim {
    fn new(topo: Topology) -> Sim {
        let record = Record {
            deployment: topo.name.clone(),
            ..Record::default()
        };
        let mut sim = Sim {
            topo: topo.clone(),
            nodes: BTreeMap::new(),
            ghosts: BTreeMap::new(),
            next_id: 1,
            record,
            seen: BTreeMap::new(),
        };
        sim.declare(topo);
        sim
    }

    /// Switch to another topology; instances not seen before are added, stopped and empty.
    fn declare(&mut self, topo: Topology) {
        for i in topo.cluster_instances() {
            let ip = i.address.to_string();
            self.nodes.entry(i.key.clone()).or_insert(Node {
                ip,
                ..Node::default()
            });
        }
        self.topo = topo;
    }

    fn node(&mut self, key: &InstanceKey) -> &mut Node {
        self.nodes.get_mut(key).expect("a simulated node")
    }

    fn by_id(&self, id: &str) -> Option<&Node> {
        self.nodes.values().find(|n| n.id == id)
    }

    fn note(&mut self, what: &str) {
        *self.seen.entry(what.to_string()).or_default() += 1;
    }

    fn declared_timeout(&self) -> u64 {
        self.topo
            .cluster
            .as_ref()
            .map_or(0, |c| c.settings.node_timeout_ms)
    }

    fn persistence_off(&self, key: &InstanceKey) -> bool {
        let mut insts = self.topo.cluster_instances();
        insts.any(|i| &i.key == key && i.settings.persistence.is_off())
    }

    /// What every node that knows `key` says about it (a stopped node is failing).
    fn line(&self, key: &InstanceKey) -> NodeLine {
        let n = &self.nodes[key];
        NodeLine {
            id: n.id.clone(),
            ip: n.ip.clone(),
            port: key.port,
            bus_port: key.port + 10000,
            flags: Flags {
                master: n.master.is_none(),
                replica: n.master.is_some(),
                fail: !n.running,
                ..Flags::default()
            },
            master_id: n.master.clone(),
            config_epoch: n.epoch,
            connected: n.running,
            slots: ranges_of(n.slots.iter().copied()),
            migrating: Vec::new(),
            importing: Vec::new(),
        }
    }

    fn live(&self, n: &Node, lines: &HashMap<String, NodeLine>) -> Live {
        let mut myself = lines[&n.id].clone();
        myself.flags.myself = true;
        // As in CLUSTER NODES, open slots show on the myself line only.
        myself.migrating = n.migrating.clone().into_iter().collect();
        myself.importing = n.importing.clone().into_iter().collect();
        let peers: Vec<NodeLine> = n
            .known
            .iter()
            .filter_map(|id| lines.get(id))
            .cloned()
            .collect();
        let served: u32 = std::iter::once(&myself)
            .chain(peers.iter().filter(|p| p.healthy()))
            .map(|l| count(&l.slots))
            .sum();
        // Every node reports its replication offset (masters' decide whether a replica is in
        // sync: plan::replication); replication is instant, so offsets follow the keys.
        let mut info =
            HashMap::from([("master_repl_offset".to_string(), (1 + n.keys).to_string())]);
        if let Some(m) = &n.master {
            let up = lines.get(m).is_some_and(|l| l.connected);
            let link = if up { "up" } else { "down" };
            info.insert("master_link_status".to_string(), link.to_string());
            // Replication is instant here: a replica lost its link when its master stopped.
            info.insert("master_link_down_since_seconds".into(), "0".into());
            info.insert("master_sync_in_progress".into(), "0".into());
            info.insert("slave_repl_offset".into(), (1 + n.keys).to_string());
        }
        Live {
            current_epoch: peers.iter().map(|p| p.config_epoch).fold(n.epoch, u64::max),
            myself,
            peers,
            info,
            keys: n.keys,
            cluster_enabled: true,
            cluster_state: if served == u32::from(SLOTS) {
                "ok"
            } else {
                "fail"
            }
            .into(),
        }
    }

    /// What `observe` would report for the declared instances.
    fn observed(&self) -> Observed {
        let mut lines: HashMap<String, NodeLine> = self.ghosts.clone().into_iter().collect();
        for (k, n) in self.nodes.iter().filter(|(_, n)| !n.id.is_empty()) {
            lines.insert(n.id.clone(), self.line(k));
        }
        let declared = self.declared_timeout().to_string();
        let mut nodes = BTreeMap::new();
        for inst in self.topo.cluster_instances() {
            let n = &self.nodes[&inst.key];
            let timeout = n.timeout_ms.to_string();
            let drift = (n.running && timeout != declared).then(|| {
                (
                    "cluster-node-timeout".to_string(),
                    timeout,
                    declared.clone(),
                )
            });
            let obs = NodeObs {
                endpoint: inst.endpoint(),
                process: match n.running {
                    true => ProcState::Running { pid: 1 },
                    false => ProcState::Stopped,
                },
                live: n.running.then(|| self.live(n, &lines)),
                error: None,
                auth_failed: false,
                port_answers: n.running,
                has_nodes_conf: n.has_conf,
                config_drift: false,
                repl: None,
                sentinel: None,
                live_drift: drift.into_iter().collect(),
                acl_drift: Vec::new(),
                stale_auth: Vec::new(),
                peer_pass_stale: false,
            };
            nodes.insert(inst.key.clone(), obs);
        }
        let record = self.record.clone();
        Observed { nodes, record }
    }

    /// The gate of a wait step must pass now: with instant gossip it never would later.
    fn assert_gate(&self, step: &Step, nodes: &[InstanceKey]) {
        let obs = self.observed();
        let live = |k: &InstanceKey| obs.nodes[k].live.as_ref().expect("a live node at a gate");
        let lives: Vec<(&InstanceKey, &Live)> = nodes.iter().map(|k| (k, live(k))).collect();
        let problems = match step {
            Step::WaitMembership { .. } => {
                let mut v = converge::membership_problems(&lives);
                let not_ok = lives.iter().filter(|(_, l)| l.cluster_state != "ok");
                v.extend(not_ok.map(|(k, _)| format!("{k} is not ok")));
                v
            }
            _ => converge::problems(&self.topo, &lives),
        };
        assert!(problems.is_empty(), "`{step}` would time out: {problems:?}");
    }

    /// The catch-up gate of `step` must pass now (replication is instant here).
    fn assert_caught_up(&self, step: &Step, nodes: &[InstanceKey]) {
        let missing = super::maintenance::catching_up(&self.topo, &self.observed(), nodes);
        assert!(missing.is_empty(), "`{step}` would time out: {missing:?}");
    }

    /// Failover: the replica `key` takes its master's slots (that master may be the old
    /// identity of a wiped node); the other replicas follow it.
    fn promote(&mut self, key: &InstanceKey) {
        let old = self.nodes[key]
            .master
            .clone()
            .expect("only a replica is promoted");
        let new = self.nodes[key].id.clone();
        let epoch = self.nodes.values().map(|n| n.epoch).max().unwrap_or(0) + 1;
        let slots: BTreeSet<u16> = match self.nodes.values_mut().find(|n| n.id == old) {
            Some(n) => std::mem::take(&mut n.slots),
            None => {
                let ghost = self.ghosts.get_mut(&old).expect("a known master");
                let ranges = std::mem::take(&mut ghost.slots);
                ranges.iter().flat_map(|r| r.start..=r.end).collect()
            }
        };
        for n in self
            .nodes
            .values_mut()
            .filter(|n| n.id == old || n.master == Some(old.clone()))
        {
            n.master = Some(new.clone());
            // A master turned replica closes its open slots (cluster.c, clusterSetMaster).
            n.migrating.clear();
            n.importing.clear();
        }
        let n = self.node(key);
        (n.master, n.slots, n.epoch) = (None, slots, epoch);
    }

    /// Replication is instant: every linked replica holds its master's keys.
    fn sync_replicas(&mut self) {
        let up = self.nodes.values().filter(|n| n.running);
        let keys: HashMap<String, u64> = up.map(|n| (n.id.clone(), n.keys)).collect();
        for n in self.nodes.values_mut().filter(|n| n.running) {
            if let Some(k) = n.master.as_ref().and_then(|m| keys.get(m)) {
                n.keys = *k;
            }
        }
    }

    fn start(&mut self, key: &InstanceKey) {
        let (off, timeout_ms) = (self.persistence_off(key), self.declared_timeout());
        let n = &self.nodes[key];
        assert!(!n.running, "start {key}: already running");
        if off && n.has_conf && n.master.is_none() && !n.slots.is_empty() && n.keys > 0 {
            let copies = self
                .nodes
                .values()
                .any(|r| r.running && r.master == Some(n.id.clone()));
            assert!(
                !copies,
                "{key} restarts empty owning slots; its replica would copy that"
            );
        }
        let fresh = !n.has_conf;
        let n = self.node(key);
        (n.running, n.timeout_ms) = (true, timeout_ms);
        if off {
            n.keys = 0;
        }
        if fresh {
            // 40 hex digits whose short form (the first 8) tells nodes apart in plan text.
            let id = format!("{:08x}{}", self.next_id, "0".repeat(32));
            self.next_id += 1;
            let n = self.node(key);
            let ip = std::mem::take(&mut n.ip);
            *n = Node {
                ip,
                running: true,
                has_conf: true,
                id: id.clone(),
                timeout_ms,
                ..Node::default()
            };
            // The executor records a fresh node's id as soon as it answers.
            if let Some(old) = self.record.node_ids.insert(key.to_string(), id) {
                self.record.replaced.push(old);
            }
        }
    }

    /// The effect of one step on the cluster, after checking what Redis would refuse.
    fn apply(&mut self, step: &Step) {
        let up = |s: &Sim, k: &InstanceKey| assert!(s.nodes[k].running, "{step}: {k} is down");
        match step {
            Step::Start { node } => self.start(node),
            Step::SetConfigEpoch { node, epoch } => {
                up(self, node);
                let n = self.node(node);
                if n.known.is_empty() && n.epoch == 0 {
                    n.epoch = *epoch;
                }
            }
            Step::AddSlots { node, ranges } => {
                up(self, node);
                let slots: Vec<u16> = ranges.iter().flat_map(|r| r.start..=r.end).collect();
                for (k, n) in self.nodes.iter().filter(|(k, _)| *k != node) {
                    assert!(
                        slots.iter().all(|s| !n.slots.contains(s)),
                        "{step}: busy at {k}"
                    );
                }
                self.node(node).slots.extend(slots);
            }
            Step::Meet { node, targets } => {
                for t in targets {
                    up(self, node);
                    up(self, t);
                    let mut comp: BTreeSet<String> = BTreeSet::new();
                    for k in [node, t] {
                        comp.insert(self.nodes[k].id.clone());
                        comp.extend(self.nodes[k].known.iter().cloned());
                    }
                    for n in self.nodes.values_mut().filter(|n| comp.contains(&n.id)) {
                        n.known = comp.iter().filter(|id| **id != n.id).cloned().collect();
                    }
                }
            }
            Step::Replicate { node, master } => {
                up(self, node);
                up(self, master);
                let (n, m) = (&self.nodes[node], &self.nodes[master]);
                assert!(n.known.contains(&m.id), "{step}: Unknown node");
                assert!(m.master.is_none(), "{step}: I can only replicate a master");
                if n.master.is_none() {
                    assert!(
                        n.slots.is_empty() && n.keys == 0,
                        "{step}: the node is not empty"
                    );
                }
                // Leaving a master that is down but owns slots drops their only live copy.
                if let Some(old) = n.master.as_ref().filter(|o| **o != m.id) {
                    let lost = match self.by_id(old) {
                        Some(x) => !x.running && !x.slots.is_empty(),
                        None => self.ghosts.get(old).is_some_and(|g| !g.slots.is_empty()),
                    };
                    assert!(
                        !lost,
                        "{step}: drops the only live copy of the slots of {old}"
                    );
                }
                let id = m.id.clone();
                self.node(node).master = Some(id);
            }
            Step::TakeOver { node, reopen, .. } => {
                // CLUSTER FAILOVER FORCE: its master (by id) must be down.
                let m = self.nodes[node]
                    .master
                    .clone()
                    .expect("a replica takes over");
                assert!(
                    self.by_id(&m).is_none_or(|x| !x.running),
                    "{step}: master is up"
                );
                self.promote(node);
                // With `reopen`: the promoted node marks those slots MIGRATING in the same
                // transaction (the targets still import them from the dead master).
                for r in reopen {
                    let to = self.nodes[&r.to].id.clone();
                    for slot in r.slots.iter().flat_map(|r| r.start..=r.end) {
                        assert!(
                            self.nodes[&r.to].importing.get(&slot) == Some(&m),
                            "{step}: {} does not import {slot} from the dead master",
                            r.to
                        );
                        self.node(node).migrating.insert(slot, to.clone());
                    }
                }
            }
            Step::ClusterFailover { node } => {
                up(self, node);
                let m = self.nodes[node]
                    .master
                    .clone()
                    .expect("a replica fails over");
                assert!(
                    self.by_id(&m).is_some_and(|x| x.running),
                    "{step}: master is down"
                );
                self.promote(node);
            }
            Step::MoveSlots {
                from, to, slots, ..
            } => {
                up(self, from);
                up(self, to);
                let moved: BTreeSet<u16> = slots.iter().flat_map(|r| r.start..=r.end).collect();
                self.move_slots(from, to, &moved);
            }
            Step::Retire { node, id, .. } => {
                assert!(self.nodes[node].slots.is_empty(), "{step}: it owns slots");
                for n in self.nodes.values_mut() {
                    n.known.remove(id);
                }
                self.node(node).running = false;
                if let Some(id) = self.record.node_ids.remove(&node.to_string()) {
                    let r = crate::observe::Retired { id, at: 0 };
                    self.record.retired.insert(node.to_string(), r);
                }
            }
            Step::Forget { id, .. } => {
                assert!(
                    self.by_id(id).is_none_or(|n| !n.running),
                    "{step}: a live node"
                );
                let ghost = self.ghosts.remove(id);
                assert!(
                    ghost.is_none_or(|g| g.slots.is_empty()),
                    "{step}: it owns slots"
                );
                for n in self.nodes.values_mut() {
                    n.known.remove(id);
                }
                self.record.replaced.retain(|r| r != id);
            }
            Step::WaitMembership { nodes } | Step::WaitConverged { nodes } => {
                self.assert_gate(step, nodes)
            }
            Step::ConfigSet { node, params } => {
                up(self, node);
                for (_, v) in params.iter().filter(|(k, _)| k == "cluster-node-timeout") {
                    self.node(node).timeout_ms = v.parse().expect("a timeout in ms");
                }
            }
            Step::ForcedFailover { node } => {
                up(self, node);
                self.promote(node);
            }
            // State files and live settings the model does not hold.
            Step::MarkDrained { .. } | Step::ClearDrainMark { .. } | Step::HoldPromotion { .. } => {
            }
            Step::Stop { nodes } => {
                for k in nodes {
                    self.node(k).running = false;
                }
            }
            Step::Restart { node } => {
                up(self, node);
                self.node(node).running = false;
                self.start(node);
                self.sync_replicas();
                self.assert_caught_up(step, std::slice::from_ref(node));
            }
            Step::WaitCaughtUp { nodes } => self.assert_caught_up(step, nodes),
            other => panic!("unexpected step for a cluster: {other}"),
        }
        self.sync_replicas();
        self.note(&kind(step));
    }

    /// Keys go along in proportion; open slots among `moved` are closed.
    fn move_slots(&mut self, from: &InstanceKey, to: &InstanceKey, moved: &BTreeSet<u16>) {
        let f = self.node(from);
        assert!(
            moved.is_subset(&f.slots),
            "{from} does not own all of {moved:?}"
        );
        let keys = f.keys * moved.len() as u64 / f.slots.len() as u64;
        f.keys -= keys;
        f.slots.retain(|s| !moved.contains(s));
        f.migrating.retain(|s, _| !moved.contains(s));
        let t = self.node(to);
        t.keys += keys;
        t.importing.retain(|s, _| !moved.contains(s));
        t.slots.extend(moved);
    }

    /// A node's data directory is lost: it will start fresh; the others list its old identity.
    fn wipe(&mut self, key: &InstanceKey) {
        let mut ghost = self.line(key);
        (ghost.flags.fail, ghost.connected) = (true, false);
        let n = self.node(key);
        let ip = std::mem::take(&mut n.ip);
        *n = Node {
            ip,
            ..Node::default()
        };
        if self.nodes.values().any(|n| n.known.contains(&ghost.id)) {
            self.ghosts.insert(ghost.id.clone(), ghost);
        }
    }
}

/// Small deterministic PRNG (xorshift), so a failure is reproduced from its seed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

fn kind(s: &Step) -> String {
    // The same name as the JSON tag.
    let json = serde_json::to_value(s).expect("a step serialises");
    assert_eq!(json["step"], s.kind(), "{s:?}");
    s.kind().to_string()
}

fn topology(shards: u64, replicas: u64, hosts: u64, persistence_off: bool) -> Topology {
    let mut y = String::from("version: 1\nname: sim\nhosts:\n");
    for h in 0..hosts {
        y.push_str(&format!("  - {{name: h{h}, address: 127.0.0.{}}}\n", h + 1));
    }
    if persistence_off {
        y.push_str("defaults:\n  persistence: {save: [], appendonly: false}\n");
    }
    y.push_str(&format!(
        "cluster:\n  shards: {shards}\n  replicas: {replicas}\n  ports: 7000-7020\n"
    ));
    let loaded = crate::topology::parse(&y, "sim.yaml", Path::new("."));
    loaded.unwrap_or_else(|e| panic!("{y}\n{e}")).topology
}

/// observe → plan → execute until the plan is empty (that last plan, of a converged
/// cluster, is the idempotence check); returns the number of executed rounds.
fn converge_sim(sim: &mut Sim, opts: Options, ctx: &str) -> usize {
    for round in 0..=4 {
        let p = plan_with(&sim.topo, &sim.observed(), opts);
        assert!(
            p.blockers.is_empty(),
            "{ctx} round {round}: {:?}",
            p.blockers
        );
        if p.steps.is_empty() {
            return round;
        }
        assert!(
            round < 4,
            "{ctx}: not converged after 4 rounds, still:\n{p:#?}"
        );
        for s in &p.steps {
            sim.apply(s);
        }
    }
    unreachable!()
}

/// Every slot owned once, one serving master per shard with its share (`exact`: the
/// contiguous even split itself), replicas attached, ids recorded, nothing to wait for.
fn assert_converged(sim: &Sim, exact: bool, preferred: bool, ctx: &str) {
    let c = sim.topo.cluster.as_ref().expect("a cluster");
    let split = Cluster::slot_allocation(c);
    let mut owners = vec![0u8; usize::from(SLOTS)];
    for s in sim.nodes.values().flat_map(|n| &n.slots) {
        owners[usize::from(*s)] += 1;
    }
    assert!(
        owners.iter().all(|o| *o == 1),
        "{ctx}: slots not owned exactly once"
    );
    for (i, shard) in c.shards.iter().enumerate() {
        let members: Vec<&InstanceKey> = shard.members().map(|m| &m.key).collect();
        let masters: Vec<&&InstanceKey> = members
            .iter()
            .filter(|k| sim.nodes[**k].master.is_none())
            .collect();
        assert_eq!(masters.len(), 1, "{ctx}: shard {} masters", shard.number);
        let (mk, m) = (*masters[0], &sim.nodes[*masters[0]]);
        assert!(
            !preferred || mk == &shard.master.key,
            "{ctx}: shard {}",
            shard.number
        );
        match exact {
            true => assert_eq!(ranges_of(m.slots.iter().copied()), vec![split[i]], "{ctx}"),
            false => assert_eq!(m.slots.len() as u32, split[i].len(), "{ctx}"),
        }
        for r in members.iter().filter(|k| **k != mk) {
            let got = sim.nodes[*r].master.as_deref();
            assert_eq!(got, Some(m.id.as_str()), "{ctx}: replica {r}");
        }
    }
    let obs = sim.observed();
    let mut lives = Vec::new();
    for (k, o) in &obs.nodes {
        lives.push((
            k,
            o.live
                .as_ref()
                .unwrap_or_else(|| panic!("{ctx}: {k} is down")),
        ));
        assert_eq!(
            obs.record.id_of(k),
            Some(sim.nodes[k].id.as_str()),
            "{ctx}: record"
        );
        assert_eq!(
            sim.nodes[k].timeout_ms,
            sim.declared_timeout(),
            "{ctx}: node timeout"
        );
    }
    let problems = converge::problems(&sim.topo, &lives);
    assert!(problems.is_empty(), "{ctx}: {problems:?}");
}

#[test]
fn fresh_plan_has_the_expected_shape() {
    for (shards, replicas, hosts) in [(3, 1, 1), (4, 0, 2), (5, 2, 3), (6, 1, 3)] {
        let topo = topology(shards, replicas, hosts, false);
        let c = topo.cluster.clone().expect("a cluster");
        let keys: Vec<InstanceKey> = topo.cluster_instances().map(|i| i.key.clone()).collect();
        let (n, s) = (keys.len(), c.shards.len());
        let mut sim = Sim::new(topo);
        let p = plan_with(&sim.topo, &sim.observed(), Options::default());
        assert!(p.blockers.is_empty() && !p.partial);
        // The new cluster forms on a short node timeout (ConfigSet ×N, then back). There is
        // no WaitMembership: the executor's Replicate retries "Unknown node" until gossip
        // brings the master, and WaitMembership only precedes slot moves.
        let mut expect = vec![("start", n), ("config_set", n), ("set_config_epoch", s)];
        expect.extend([("add_slots", s), ("meet", n - 1), ("replicate", n - s)]);
        expect.extend([("wait_converged", 1), ("config_set", n)]);
        let expect: Vec<String> = expect
            .iter()
            .flat_map(|(k, times)| std::iter::repeat_n(k.to_string(), *times))
            .collect();
        assert_eq!(p.steps.iter().map(kind).collect::<Vec<_>>(), expect);
        let (mut adds, mut epochs, mut meets, mut attach) = (vec![], vec![], vec![], vec![]);
        for step in &p.steps {
            match step {
                Step::AddSlots { node, ranges } => adds.push((node.clone(), ranges.clone())),
                Step::SetConfigEpoch { node, epoch } => epochs.push((node.clone(), *epoch)),
                Step::Meet { node, targets } => meets.push((node.clone(), targets.clone())),
                Step::Replicate { node, master } => attach.push((node.clone(), master.clone())),
                _ => {}
            }
        }
        let split = even_split(s);
        for (i, shard) in c.shards.iter().enumerate() {
            let m = &shard.master.key;
            assert_eq!(adds[i], (m.clone(), vec![split[i]]));
            assert_eq!(epochs[i], (m.clone(), u64::from(shard.number)));
            for r in &shard.replicas {
                assert!(attach.contains(&(r.key.clone(), m.clone())));
            }
        }
        for (j, (node, targets)) in meets.iter().enumerate() {
            assert_eq!((node, &targets[..]), (&keys[j + 1], &keys[..=j]));
        }
        for step in &p.steps {
            sim.apply(step);
        }
        assert_converged(&sim, true, true, "fresh");
        assert!(plan_with(&sim.topo, &sim.observed(), Options::default()).is_empty());
    }
}

/// Random perturbations of a started cluster, each one Redis or an operator could cause.
fn perturb(sim: &mut Sim, rng: &mut Rng) {
    let keys: Vec<InstanceKey> = sim.nodes.keys().cloned().collect();
    // Clients write to masters that serve.
    for k in &keys {
        if sim.nodes[k].running && !sim.nodes[k].slots.is_empty() && rng.one_in(2) {
            sim.node(k).keys += 1 + rng.below(100);
        }
    }
    sim.sync_replicas();
    // A replica restarts (from its nodes.conf).
    for k in &keys {
        if sim.nodes[k].running && sim.nodes[k].master.is_some() && rng.one_in(3) {
            sim.node(k).running = false;
            sim.start(k);
            sim.sync_replicas();
            sim.note("restart");
        }
    }
    // Some nodes stop.
    for k in &keys {
        if sim.nodes[k].running && rng.one_in(5) {
            sim.node(k).running = false;
        }
    }
    // The cluster fails a stopped master over to a replica (a majority of masters is up).
    for k in &keys {
        let serving = sim.nodes.values().filter(|n| !n.slots.is_empty());
        let (all, up) = serving.fold((0, 0), |(a, u), n| (a + 1, u + usize::from(n.running)));
        let n = &sim.nodes[k];
        if n.running || n.slots.is_empty() || 2 * up <= all || rng.one_in(2) {
            continue;
        }
        let id = Some(n.id.clone());
        let replica = keys
            .iter()
            .find(|r| sim.nodes[*r].running && sim.nodes[*r].master == id);
        if let Some(r) = replica.cloned() {
            sim.promote(&r);
            sim.note("failover");
        }
    }
    // A node that owns no slots loses its data directory.
    for k in &keys {
        if sim.nodes[k].slots.is_empty() && rng.one_in(8) {
            sim.node(k).running = false;
            sim.wipe(k);
            sim.note("wipe");
        }
    }
}

/// Seeded random cases: a random topology, an interrupted first apply, random
/// perturbations; then apply must converge in at most 4 rounds to the declared layout.
fn random_cases(seeds: std::ops::RangeInclusive<u64>) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for seed in seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let (shards, replicas) = (3 + rng.below(4), rng.below(3));
        let (hosts, off) = (1 + rng.below(3), rng.one_in(3));
        let restore_roles = rng.one_in(2);
        let opts = Options {
            restore_roles,
            ..Options::default()
        };
        let ctx =
            format!("seed {seed}: {shards}x{replicas} on {hosts} hosts, no persistence {off}");
        let mut sim = Sim::new(topology(shards, replicas, hosts, off));

        // An interrupted first apply: a prefix of its plan, then part of the next group of
        // steps of one kind (the executor runs those together).
        let first = plan_with(&sim.topo, &sim.observed(), opts);
        let cut = rng.below(first.steps.len() as u64 + 1) as usize;
        for s in &first.steps[..cut] {
            sim.apply(s);
        }
        let rest = &first.steps[cut..];
        let together = |s: &Step| {
            use Step::*;
            matches!(
                s,
                Start { .. }
                    | ConfigSet { .. }
                    | SetConfigEpoch { .. }
                    | AddSlots { .. }
                    | Meet { .. }
            )
        };
        for s in rest
            .iter()
            .take_while(|s| together(s) && kind(s) == kind(&rest[0]))
        {
            if rng.one_in(2) {
                sim.apply(s);
            }
        }
        perturb(&mut sim, &mut rng);

        let rounds = converge_sim(&mut sim, opts, &ctx);
        sim.note(&format!("{rounds} rounds"));
        assert_converged(&sim, true, restore_roles, &ctx);
        for (k, v) in sim.seen {
            *seen.entry(k).or_default() += v;
        }
    }
    eprintln!("{seen:?}");
    for k in [
        "take_over",
        "cluster_failover",
        "forget",
        "failover",
        "wipe",
        "restart",
        "3 rounds",
    ] {
        assert!(seen.contains_key(k), "no case went through {k}: {seen:?}");
    }
}

// Two halves run in parallel: the planner is slow in a debug build (~0.5 s per plan of 18
// nodes, mostly per-slot maps), and 256 cases take a few minutes on one core.
#[test]
fn random_interrupted_starts_converge_1() {
    random_cases(1..=128);
}

#[test]
fn random_interrupted_starts_converge_2() {
    random_cases(129..=256);
}

/// Re-declare a converged `from`-shard cluster with `to` shards and apply; `interrupt`: the
/// scaling apply stops inside its first slot move, half of its slots moved and the next one
/// left open on both sides.
fn scale(from: u64, to: u64, interrupt: bool) {
    let ctx = format!("{from}->{to}, interrupted {interrupt}");
    let mut sim = Sim::new(topology(from, 1, 2, false));
    converge_sim(&mut sim, Options::default(), &ctx);
    sim.declare(topology(to, 1, 2, false));
    if interrupt {
        let p = plan_with(&sim.topo, &sim.observed(), Options::default());
        let at = p
            .steps
            .iter()
            .position(|s| matches!(s, Step::MoveSlots { .. }));
        let at = at.expect("a slot move");
        for s in &p.steps[..at] {
            sim.apply(s);
        }
        let Step::MoveSlots {
            from, to, slots, ..
        } = &p.steps[at]
        else {
            unreachable!()
        };
        let all: Vec<u16> = slots.iter().flat_map(|r| r.start..=r.end).collect();
        let (done, open) = all.split_at(all.len() / 2);
        sim.move_slots(from, to, &done.iter().copied().collect());
        let (fid, tid) = (sim.nodes[from].id.clone(), sim.nodes[to].id.clone());
        sim.node(from).migrating.insert(open[0], tid);
        sim.node(to).importing.insert(open[0], fid);
    }
    let rounds = converge_sim(&mut sim, Options::default(), &ctx);
    assert!(rounds <= 3, "{ctx}: {rounds} rounds");
    assert_converged(&sim, false, true, &ctx);
}

/// `cluster.weights` changes move slots until every shard has its weighted share.
#[test]
fn weights_converge_to_weighted_shares() {
    let weighted = |w: &str| {
        let y = format!(
            "version: 1\nname: sim\nhosts:\n  - {{name: h0, address: 127.0.0.1}}\n  - {{name: h1, address: 127.0.0.2}}\n\
             cluster:\n  shards: 3\n  replicas: 1\n  ports: 7000-7020\n  weights: {w}\n"
        );
        crate::topology::parse(&y, "sim.yaml", Path::new("."))
            .unwrap_or_else(|e| panic!("{y}\n{e}"))
            .topology
    };
    let mut sim = Sim::new(weighted("[1, 1, 2]"));
    converge_sim(&mut sim, Options::default(), "weights 1,1,2");
    assert_converged(&sim, true, true, "weights 1,1,2");
    let sizes: Vec<u32> = Cluster::slot_allocation(sim.topo.cluster.as_ref().unwrap())
        .iter()
        .map(|r| r.len())
        .collect();
    assert_eq!(sizes, [4096, 4096, 8192]);
    for (w, ctx) in [("[3, 2, 1]", "reweighted"), ("[1, 1, 1]", "equal again")] {
        sim.declare(weighted(w));
        let rounds = converge_sim(&mut sim, Options::default(), ctx);
        assert!(rounds <= 3, "{ctx}: {rounds} rounds");
        assert_converged(&sim, false, true, ctx);
    }
}

#[test]
fn scaling_converges_to_exact_shares() {
    for (from, to) in [(3, 4), (4, 3), (3, 6), (6, 3), (5, 4), (4, 5)] {
        scale(from, to, false);
    }
    // Moves between declared nodes resume from their open slot.
    for (from, to) in [(3, 4), (3, 6), (4, 5)] {
        scale(from, to, true);
    }
}

/// Scaling in moves slots away from retired masters, which are not observed themselves:
/// the target's IMPORTING slot is then owned by a node that only peers' views show.
#[test]
fn an_interrupted_move_from_a_retired_master_resumes() {
    for (from, to) in [(4, 3), (6, 3), (5, 4)] {
        scale(from, to, true);
    }
}

#[test]
fn a_non_fresh_node_without_a_record_blocks_and_nothing_is_planned() {
    let mut sim = Sim::new(topology(3, 1, 1, false));
    converge_sim(&mut sim, Options::default(), "setup");
    let c = sim.topo.cluster.clone().expect("a cluster");
    let key = c.shards[1].master.key.clone();
    sim.record.node_ids.remove(&key.to_string());
    // A node of another cluster at that address: none of our recorded nodes knows it.
    let id = sim.nodes[&key].id.clone();
    for n in sim.nodes.values_mut() {
        n.known.remove(&id);
    }
    // Also a stopped node, which alone would plan a start.
    sim.node(&c.shards[0].replicas[0].key).running = false;
    let p = plan_with(&sim.topo, &sim.observed(), Options::default());
    assert!(p.steps.is_empty(), "{:?}", p.steps);
    assert_eq!(p.blockers.len(), 1, "{:?}", p.blockers);
    assert_eq!(p.blockers[0].kind, super::BlockerKind::UnrecordedNode);
    assert_eq!(p.blockers[0].instance.as_ref(), Some(&key));
    assert!(
        p.blockers[0].message.starts_with(&format!("{key} (")),
        "{:?}",
        p.blockers
    );
    assert!(
        p.blockers[0]
            .message
            .contains("has no record of creating it")
    );
}

/// Another host's redisctl created this node (so this state directory has no record of
/// it), but our recorded nodes list it as a member of their cluster: it is ours to plan
/// with, and nothing is refused.
#[test]
fn a_node_another_host_recorded_is_accepted_as_a_member_of_our_cluster() {
    let mut sim = Sim::new(topology(3, 1, 1, false));
    converge_sim(&mut sim, Options::default(), "setup");
    let c = sim.topo.cluster.clone().expect("a cluster");
    let key = c.shards[1].master.key.clone();
    sim.record.node_ids.remove(&key.to_string());
    let p = plan_with(&sim.topo, &sim.observed(), Options::default());
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert!(p.steps.is_empty(), "{:?}", p.steps);
}

/// A master's data directory is lost and its node restarted empty before the cluster
/// failed it over (within the node timeout, or no majority of masters is up). Its replica
/// holds the only copy of the shard; the planner must not make it replicate the new, empty
/// node: it refuses, naming the replica, and plans nothing. Once the cluster has failed over
/// to the replica (the way out the refusal names), apply converges with the data kept.
#[test]
fn a_wiped_master_does_not_take_its_replicas_data_with_it() {
    let mut sim = Sim::new(topology(3, 1, 1, false));
    converge_sim(&mut sim, Options::default(), "setup");
    let shard = sim.topo.cluster.clone().expect("a cluster").shards[0].clone();
    let (master, replica) = (&shard.master.key, &shard.replicas[0].key);
    sim.node(master).keys = 10;
    sim.sync_replicas();
    assert_eq!(sim.nodes[replica].keys, 10);
    sim.node(master).running = false;
    sim.wipe(master);
    let p = plan_with(&sim.topo, &sim.observed(), Options::default());
    assert!(p.steps.is_empty(), "{:?}", p.steps);
    assert_eq!(p.blockers.len(), 1, "{:?}", p.blockers);
    assert_eq!(p.blockers[0].kind, super::BlockerKind::OnlyLiveCopy);
    assert_eq!(p.blockers[0].instance.as_ref(), Some(replica));
    assert!(
        p.blockers[0].message.contains("only live copy"),
        "{}",
        p.blockers[0]
    );
    // The cluster fails over to the replica (CLUSTER FAILOVER TAKEOVER).
    sim.promote(replica);
    sim.note("failover");
    converge_sim(&mut sim, Options::default(), "wiped master");
    assert_converged(&sim, true, false, "wiped master");
    assert_eq!(
        sim.nodes[replica].master, None,
        "the replica serves the shard"
    );
    assert_eq!(sim.nodes[replica].keys, 10, "its data is kept");
    assert_eq!(
        sim.nodes[master].keys, 10,
        "the recreated node replicates it"
    );
}

/// An old master restarted after its replica took over still claims its slots (with its old
/// config epoch, and maybe a MIGRATING mark) until it hears of the newer owner. The planner
/// waits instead of planning from that view, then plans nothing once it has settled.
#[test]
fn a_stale_slot_claim_is_waited_for_not_acted_on() {
    let mut sim = Sim::new(topology(3, 1, 1, false));
    converge_sim(&mut sim, Options::default(), "setup");
    let c = sim.topo.cluster.clone().expect("a cluster");
    let (old, new) = (&c.shards[0].master.key, &c.shards[0].replicas[0].key);
    let before = sim.nodes[old].clone();
    sim.promote(new);
    let settled = sim.nodes[old].clone();
    // The restarted old master's own view, before the cluster's UPDATE reaches it.
    let target = sim.nodes[&c.shards[1].master.key].id.clone();
    let n = sim.node(old);
    (n.master, n.slots, n.epoch) = (None, before.slots.clone(), before.epoch);
    n.migrating.insert(*before.slots.first().unwrap(), target);
    let p = plan_with(&sim.topo, &sim.observed(), Options::default());
    assert!(p.steps.is_empty() && p.blockers.is_empty(), "{p:?}");
    assert_eq!(p.waits.len(), 1, "{:?}", p.waits);
    assert_eq!(p.waits[0].kind, super::WaitKind::StaleSlotClaim);
    assert_eq!(p.waits[0].instance.as_ref(), Some(old));
    assert_eq!(p.waits[0].related, std::slice::from_ref(new));
    assert!(
        p.waits[0].message.starts_with(&format!(
            "{old} still claims {} slot(s) that {new}",
            before.slots.len()
        )),
        "{:?}",
        p.waits
    );
    // Redis settles it (the old master becomes a replica, its marks closed): nothing to do
    // but hand the roles back when asked.
    *sim.node(old) = settled;
    let p = plan_with(&sim.topo, &sim.observed(), Options::default());
    assert!(p.waits.is_empty() && p.blockers.is_empty(), "{p:?}");
    assert!(p.steps.is_empty(), "{:?}", p.steps);
}

/// The source of a slot move dies in the middle of it (kill -9, `apply` at once): its replica
/// takes over with the slot its target still imports from it named in the step (`reopen`:
/// marked MIGRATING again in the promotion's transaction, exec/cluster.rs), and the move
/// finishes from the promoted node.
#[test]
fn a_source_killed_mid_move_is_taken_over_with_its_open_slot() {
    let ctx = "source killed mid-move";
    let mut sim = Sim::new(topology(3, 1, 2, false));
    converge_sim(&mut sim, Options::default(), ctx);
    sim.declare(topology(4, 1, 2, false));
    let p = plan_with(&sim.topo, &sim.observed(), Options::default());
    let at = p
        .steps
        .iter()
        .position(|s| matches!(s, Step::MoveSlots { .. }))
        .expect("a slot move");
    for s in &p.steps[..at] {
        sim.apply(s);
    }
    let Step::MoveSlots {
        from,
        to,
        to_addr,
        slots,
        ..
    } = p.steps[at].clone()
    else {
        unreachable!()
    };
    let all: Vec<u16> = slots.iter().flat_map(|r| r.start..=r.end).collect();
    let (done, open) = all.split_at(all.len() / 2);
    sim.move_slots(&from, &to, &done.iter().copied().collect());
    let (fid, tid) = (sim.nodes[&from].id.clone(), sim.nodes[&to].id.clone());
    sim.node(&from).migrating.insert(open[0], tid);
    sim.node(&to).importing.insert(open[0], fid);
    sim.node(&from).running = false;
    let replica = sim
        .nodes
        .iter()
        .find(|(_, n)| n.master.as_deref() == Some(sim.nodes[&from].id.as_str()))
        .map(|(k, _)| k.clone())
        .expect("a replica of the source");
    let p = plan_with(&sim.topo, &sim.observed(), Options::default());
    let expected = Step::TakeOver {
        node: replica,
        from: from.clone(),
        reopen: vec![super::Reopen {
            to: to.clone(),
            to_addr,
            slots: vec![SlotRange::new(open[0], open[0])],
        }],
    };
    assert!(p.steps.contains(&expected), "{:?}", p.steps);
    converge_sim(&mut sim, Options::default(), ctx);
    // The replica that took over stays master (no --restore-roles).
    assert_converged(&sim, false, false, ctx);
}

/// Scaling in keeps the retired nodes' data directories; scaling out again onto the same
/// addresses brings those nodes back (recorded as retired), rather than refusing them as
/// unknown nodes.
#[test]
fn scaling_in_and_out_again_reuses_the_retired_nodes() {
    let ctx = "3->4->3->4";
    let mut sim = Sim::new(topology(3, 1, 2, false));
    converge_sim(&mut sim, Options::default(), ctx);
    sim.declare(topology(4, 1, 2, false));
    converge_sim(&mut sim, Options::default(), ctx);
    sim.declare(topology(3, 1, 2, false));
    converge_sim(&mut sim, Options::default(), ctx);
    assert_eq!(sim.record.retired.len(), 2, "{:?}", sim.record);
    sim.declare(topology(4, 1, 2, false));
    let p = plan_with(&sim.topo, &sim.observed(), Options::default());
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    converge_sim(&mut sim, Options::default(), ctx);
    assert_converged(&sim, false, true, ctx);
}

/// The plan for the simulator's situation now, compared with tests/golden/plans/NAME.txt
/// (UPDATE_GOLDEN=1 rewrites it; review the diff).
fn golden_plan(name: &str, situation: &str, sim: &Sim, opts: Options) {
    let p = plan_with(&sim.topo, &sim.observed(), opts);
    let text = format!("# {situation}\n{p}");
    crate::render::golden(&format!("plans/{name}.txt"), &text);
}

fn converged(shards: u64, replicas: u64, hosts: u64) -> Sim {
    let mut sim = Sim::new(topology(shards, replicas, hosts, false));
    converge_sim(&mut sim, Options::default(), "setup");
    sim
}

/// Golden plans of representative situations: what a person sees in `redisctl plan`.
#[test]
fn golden_plans_of_representative_situations() {
    let apply = Options::default();
    let restore = Options {
        restore_roles: true,
        ..Options::default()
    };
    let sim = Sim::new(topology(3, 1, 2, false));
    let what = "3 shards x 1 replica on 2 hosts, nothing started yet";
    golden_plan("fresh-3x1-on-2-hosts", what, &sim, apply);
    let what = "3x1 on 2 hosts, converged";
    golden_plan("converged-nothing-to-do", what, &converged(3, 1, 2), apply);

    let mut sim = converged(3, 1, 2);
    sim.declare(topology(4, 1, 2, false));
    let what = "3x1 converged, the topology now declares 4 shards";
    golden_plan("scale-out-3-to-4", what, &sim, apply);

    let mut sim = converged(4, 1, 2);
    sim.declare(topology(3, 1, 2, false));
    let what = "4x1 converged, the topology now declares 3 shards";
    golden_plan("scale-in-4-to-3", what, &sim, apply);

    // The cluster failed shard 1 over to its replica (its old master rejoined as a replica).
    let mut sim = converged(3, 1, 2);
    let c = sim.topo.cluster.clone().expect("a cluster");
    sim.promote(&c.shards[0].replicas[0].key);
    let what = "shard 1 failed over to its replica";
    golden_plan("failed-over-shard", &format!("{what}: apply"), &sim, apply);
    let what = format!("{what}: apply --restore-roles");
    golden_plan("failed-over-shard-restore-roles", &what, &sim, restore);

    let mut sim = converged(3, 1, 2);
    sim.node(&c.shards[0].master.key).running = false;
    let what = "shard 1's master died (files kept); its replica was linked until the crash";
    golden_plan("restart-a-dead-master", what, &sim, apply);
    let mut sim = converged(3, 1, 2);
    sim.node(&c.shards[1].replicas[0].key).running = false;
    let what = "a replica of shard 2 died";
    golden_plan("restart-a-dead-replica", what, &sim, apply);

    let mut sim = converged(3, 1, 1);
    let c = sim.topo.cluster.clone().expect("a cluster");
    sim.node(&c.shards[0].master.key).running = false;
    sim.wipe(&c.shards[0].master.key);
    let what = "shard 1's master lost its data directory before the cluster failed it over";
    golden_plan("blocked-wiped-master", what, &sim, apply);
}

// ---- Maintenance plans (plan/maintenance.rs) on the simulator: drain, undrain, failover and
// rolling restart, executed step by step with the same checks as apply's steps.

use super::maintenance::{self, DrainOptions, Maintenance};

/// Execute a maintenance plan that is not blocked.
fn run_maintenance(sim: &mut Sim, m: &Maintenance, ctx: &str) {
    assert!(!m.plan.halted(), "{ctx}: blocked:\n{}", m.plan);
    for s in &m.plan.steps {
        sim.apply(s);
    }
}

/// The masters `drain` recorded in its mark.
fn marked(m: &Maintenance) -> Vec<InstanceKey> {
    m.plan
        .steps
        .iter()
        .find_map(|s| match s {
            Step::MarkDrained { masters, .. } => Some(masters.clone()),
            _ => None,
        })
        .expect("a drain marks the host")
}

/// undrain's rounds (observe → plan → execute) until the mark is cleared; the rounds taken.
fn undrain_sim(sim: &mut Sim, host: &str, masters: &[InstanceKey], ctx: &str) -> usize {
    for round in 1..=4 {
        let m = maintenance::undrain(
            &sim.topo,
            &sim.observed(),
            host,
            masters,
            false,
            Options::default(),
        );
        run_maintenance(sim, &m, ctx);
        if m.plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::ClearDrainMark { .. }))
        {
            return round;
        }
    }
    panic!("{ctx}: undrain did not finish in 4 rounds");
}

/// Every slot is owned by exactly one running master.
fn assert_served(sim: &Sim, ctx: &str) {
    let mut owners = vec![0u8; usize::from(SLOTS)];
    for n in sim
        .nodes
        .values()
        .filter(|n| n.running && n.master.is_none())
    {
        for s in &n.slots {
            owners[usize::from(*s)] += 1;
        }
    }
    let bad = owners.iter().filter(|o| **o != 1).count();
    assert_eq!(
        bad, 0,
        "{ctx}: {bad} slots not served by exactly one running master"
    );
}

/// Keys held by masters (each master's keys are its slots' keys).
fn master_keys(sim: &Sim) -> u64 {
    let masters = sim.nodes.values().filter(|n| n.master.is_none());
    masters.map(|n| n.keys).sum()
}

/// A converged cluster whose masters hold some keys (replicas copy them).
fn loaded(shards: u64, replicas: u64, hosts: u64) -> Sim {
    let mut sim = converged(shards, replicas, hosts);
    let masters: Vec<InstanceKey> = sim
        .nodes
        .iter()
        .filter(|(_, n)| n.master.is_none() && !n.slots.is_empty())
        .map(|(k, _)| k.clone())
        .collect();
    for (i, k) in masters.iter().enumerate() {
        sim.node(k).keys = 1000 * (i as u64 + 1);
    }
    sim.sync_replicas();
    sim
}

fn hosts_of_sim(sim: &Sim) -> Vec<String> {
    let mut v: Vec<String> = sim.nodes.keys().map(|k| k.host.clone()).collect();
    v.dedup();
    v
}

/// Drain each host in turn, then undrain it: while drained every slot is served by a running
/// master off the host and no key is lost; after undrain the layout is the declared one again
/// (preferred masters, exact slot split) and a second undrain plan has nothing to hand back.
#[test]
fn drain_and_undrain_every_host_keep_every_slot_served_and_every_key() {
    for (shards, replicas, hosts) in [(3, 1, 2), (4, 1, 3), (5, 2, 3), (6, 1, 3), (3, 2, 2)] {
        for host in hosts_of_sim(&loaded(shards, replicas, hosts)) {
            let ctx = format!("{shards}x{replicas} on {hosts} hosts, drain {host}");
            let mut sim = loaded(shards, replicas, hosts);
            let keys = master_keys(&sim);
            let m = maintenance::drain(&sim.topo, &sim.observed(), &host, DrainOptions::default());
            run_maintenance(&mut sim, &m, &ctx);
            assert_served(&sim, &ctx);
            assert_eq!(master_keys(&sim), keys, "{ctx}: keys lost");
            for (k, n) in &sim.nodes {
                assert_eq!(n.running, k.host != host, "{ctx}: {k} running");
            }
            let rounds = undrain_sim(&mut sim, &host, &marked(&m), &ctx);
            assert_eq!(
                rounds, 2,
                "{ctx}: start, then hand the roles back (caught up at once)"
            );
            assert_converged(&sim, true, true, &ctx);
            assert_eq!(master_keys(&sim), keys, "{ctx}: keys lost");
            let p = plan_with(&sim.topo, &sim.observed(), Options::default());
            assert!(p.is_empty(), "{ctx}: apply after undrain:\n{p}");
        }
    }
}

/// A master whose shard has no replica on another host: drain refuses and names the way
/// out; with --move-slots its slots go to the other masters first and no key is lost.
#[test]
fn drain_refuses_a_master_without_a_replica_elsewhere_and_move_slots_evacuates_it() {
    let ctx = "3x0 on 2 hosts, drain h0";
    let mut sim = loaded(3, 0, 2);
    let keys = master_keys(&sim);
    let m = maintenance::drain(&sim.topo, &sim.observed(), "h0", DrainOptions::default());
    assert!(m.plan.steps.is_empty(), "{ctx}: a refused plan has no step");
    assert!(!m.plan.blockers.is_empty(), "{ctx}");
    for b in &m.plan.blockers {
        assert_eq!(b.kind, super::BlockerKind::DrainRisk);
        assert!(b.message.contains("--move-slots"), "{ctx}: {b}");
    }
    let forced = DrainOptions {
        force: true,
        move_slots: false,
    };
    let f = maintenance::drain(&sim.topo, &sim.observed(), "h0", forced);
    assert!(!f.plan.halted(), "{ctx}: --force drains anyway");
    assert!(
        f.plan
            .notes
            .iter()
            .any(|n| n.message.starts_with("accepted with --force")),
        "{ctx}: {}",
        f.plan
    );
    let opts = DrainOptions {
        force: false,
        move_slots: true,
    };
    let m = maintenance::drain(&sim.topo, &sim.observed(), "h0", opts);
    run_maintenance(&mut sim, &m, ctx);
    assert_served(&sim, ctx);
    assert_eq!(master_keys(&sim), keys, "{ctx}: keys lost");
    let on_h0 = sim.nodes.iter().filter(|(k, _)| k.host == "h0");
    assert!(on_h0.clone().all(|(_, n)| n.slots.is_empty() && !n.running));
    // Every master that was on h0 is recorded; none is handed back (they own no slot now).
    assert!(!marked(&m).is_empty());
    undrain_sim(&mut sim, "h0", &marked(&m), ctx);
    assert_served(&sim, ctx);
}

/// Every master here is handed to its replica on another host, restarted and handed back;
/// replicas first. Afterwards the layout is the declared one.
#[test]
fn a_rolling_restart_keeps_the_roles_and_restarts_every_local_instance() {
    for (shards, replicas, hosts) in [(3, 1, 2), (5, 2, 3), (3, 1, 1)] {
        for host in hosts_of_sim(&loaded(shards, replicas, hosts)) {
            let ctx = format!("{shards}x{replicas} on {hosts} hosts, restart {host}");
            let mut sim = loaded(shards, replicas, hosts);
            let keys = master_keys(&sim);
            let local: Vec<InstanceKey> = sim
                .nodes
                .keys()
                .filter(|k| k.host == host)
                .cloned()
                .collect();
            let m = maintenance::restart(&sim.topo, &sim.observed(), &local);
            let restarted = m
                .plan
                .steps
                .iter()
                .filter(|s| matches!(s, Step::Restart { .. }))
                .count();
            assert_eq!(restarted, local.len(), "{ctx}: every local instance once");
            // Each handover goes out and comes back.
            assert_eq!(m.handovers.len() % 2, 0, "{ctx}");
            run_maintenance(&mut sim, &m, &ctx);
            assert_converged(&sim, true, true, &ctx);
            assert_eq!(master_keys(&sim), keys, "{ctx}: keys lost");
        }
    }
}

#[test]
fn a_rolling_restart_refuses_a_master_without_a_replica_and_a_stopped_instance() {
    let sim = loaded(3, 0, 1);
    let local: Vec<InstanceKey> = sim.nodes.keys().cloned().collect();
    let m = maintenance::restart(&sim.topo, &sim.observed(), &local);
    assert_eq!(m.plan.blockers.len(), 3, "{}", m.plan);
    assert!(m.plan.steps.is_empty());
    assert!(
        m.plan.blockers[0]
            .message
            .contains("without an in-sync replica"),
        "{}",
        m.plan
    );
    let mut sim = loaded(3, 1, 2);
    let local: Vec<InstanceKey> = sim.nodes.keys().cloned().collect();
    sim.node(&local[1]).running = false;
    let m = maintenance::restart(&sim.topo, &sim.observed(), &local);
    assert!(m.plan.steps.is_empty());
    assert_eq!(m.plan.blockers[0].kind, super::BlockerKind::NotRunning);
    assert!(m.plan.blockers[0].message.contains("redisctl apply"));
}

/// failover: an in-sync replica gets a coordinated failover; the new master is refused; a
/// replica whose master is down is refused unless --force, then promoted by force.
#[test]
fn failover_plans_one_step_and_refuses_what_would_lose_writes() {
    let mut sim = loaded(3, 1, 2);
    let c = sim.topo.cluster.clone().expect("a cluster");
    let (master, replica) = (&c.shards[0].master.key, &c.shards[0].replicas[0].key);
    let m = maintenance::failover(&sim.topo, &sim.observed(), replica, false);
    assert_eq!(
        m.plan.steps,
        [Step::ClusterFailover {
            node: replica.clone()
        }]
    );
    assert_eq!(
        (&m.handovers[0].from, &m.handovers[0].to),
        (master, replica)
    );
    run_maintenance(&mut sim, &m, "failover");
    let again = maintenance::failover(&sim.topo, &sim.observed(), replica, false);
    assert_eq!(
        again.plan.blockers[0].kind,
        super::BlockerKind::AlreadyMaster
    );
    assert!(again.plan.steps.is_empty());

    let mut sim = loaded(3, 1, 2);
    sim.node(master).running = false;
    let m = maintenance::failover(&sim.topo, &sim.observed(), replica, false);
    assert_eq!(m.plan.blockers[0].kind, super::BlockerKind::ReplicaBehind);
    assert!(m.plan.blockers[0].message.contains("--force"));
    let m = maintenance::failover(&sim.topo, &sim.observed(), replica, true);
    assert_eq!(
        m.plan.steps,
        [Step::ForcedFailover {
            node: replica.clone()
        }]
    );
    run_maintenance(&mut sim, &m, "forced failover");
    assert_served(&sim, "forced failover");
}

/// The plan of a maintenance command as `--dry-run` prints it, compared with
/// tests/golden/plans/NAME.txt (UPDATE_GOLDEN=1 rewrites it; review the diff).
fn golden_maintenance(name: &str, situation: &str, m: &Maintenance) {
    let text = format!("# {situation}\n{}", m.plan);
    crate::render::golden(&format!("plans/{name}.txt"), &text);
}

/// Golden plans of the maintenance commands on a converged cluster.
#[test]
fn golden_maintenance_plans() {
    let sim = loaded(3, 1, 2);
    let masters_on = |host: &str| {
        sim.nodes
            .iter()
            .filter(|(k, n)| k.host == host && n.master.is_none())
            .count()
    };
    let (two, one) = if masters_on("h0") == 2 {
        ("h0", "h1")
    } else {
        ("h1", "h0")
    };
    assert_eq!((masters_on(two), masters_on(one)), (2, 1));
    let obs = sim.observed();
    let m = maintenance::drain(&sim.topo, &obs, one, DrainOptions::default());
    let what = format!("3x1 on 2 hosts, converged: drain {one} (one master there)");
    golden_maintenance("drain-a-host-with-one-master", &what, &m);
    let m = maintenance::drain(&sim.topo, &obs, two, DrainOptions::default());
    let what = format!("3x1 on 2 hosts, converged: drain {two} (two masters there)");
    golden_maintenance("drain-a-host-with-two-masters", &what, &m);

    // Undrain: the first round starts and waits, the next hands the roles back.
    let mut drained = loaded(3, 1, 2);
    run_maintenance(&mut drained, &m, "drain");
    let masters = marked(&m);
    let undrain = |sim: &Sim| {
        maintenance::undrain(
            &sim.topo,
            &sim.observed(),
            two,
            &masters,
            false,
            Options::default(),
        )
    };
    let first = undrain(&drained);
    let what = format!("{two} drained: undrain, first round");
    golden_maintenance("undrain-first-round", &what, &first);
    run_maintenance(&mut drained, &first, "undrain round 1");
    let what = format!("{two} drained: undrain, once its instances have caught up");
    golden_maintenance("undrain-restore-roles", &what, &undrain(&drained));

    let sl = loaded(3, 0, 2);
    let m = maintenance::drain(&sl.topo, &sl.observed(), "h0", DrainOptions::default());
    let what = "3x0 on 2 hosts: drain h0 (its masters have no replica)";
    golden_maintenance("drain-refused-no-replica-elsewhere", what, &m);
    let opts = DrainOptions {
        force: false,
        move_slots: true,
    };
    let m = maintenance::drain(&sl.topo, &sl.observed(), "h0", opts);
    golden_maintenance("drain-move-slots", &format!("{what} --move-slots"), &m);

    let c = sim.topo.cluster.clone().expect("a cluster");
    let replica = &c.shards[0].replicas[0].key;
    let m = maintenance::failover(&sim.topo, &obs, replica, false);
    let what = format!("3x1 on 2 hosts, converged: failover {replica}");
    golden_maintenance("failover-cluster", &what, &m);

    let local: Vec<InstanceKey> = sim
        .nodes
        .keys()
        .filter(|k| k.host == two)
        .cloned()
        .collect();
    let m = maintenance::restart(&sim.topo, &obs, &local);
    let what = format!("3x1 on 2 hosts, converged: restart --rolling on {two}");
    golden_maintenance("rolling-restart", &what, &m);
}

/// A converged cluster being switched to `tls.mode: both`: the switch is one step over every
/// node, planned only when every node answers and has its TLS port open, never while other
/// steps are pending; with nothing left to switch, nothing is planned.
#[test]
fn a_tls_switch_is_one_step_over_every_node_once_all_are_ready() {
    let topo = topology(3, 1, 1, false);
    let mut sim = Sim::new(topo);
    let p = plan_with(&sim.topo, &sim.observed(), Options::default());
    for s in &p.steps {
        sim.apply(s);
    }
    assert!(plan_with(&sim.topo, &sim.observed(), Options::default()).is_empty());
    let mut topo = sim.topo.clone();
    topo.tls = Some(crate::topology::Tls {
        mode: crate::topology::TlsMode::Both,
        port_offset: 1000,
        ca_file: "ca.crt".into(),
        cert_file: "c.crt".into(),
        key_file: "c.key".into(),
        client: None,
        auth_clients: "yes",
        expiry_warning_days: 30,
    });
    let keys: Vec<InstanceKey> = topo.cluster_instances().map(|i| i.key.clone()).collect();
    let drifted = |tls_port_open: bool| {
        let mut obs = sim.observed();
        for k in &keys {
            let o = obs.nodes.get_mut(k).unwrap();
            o.live_drift
                .push(("tls-cluster".into(), "no".into(), "yes".into()));
            if !tls_port_open {
                o.live_drift
                    .push(("tls-port".into(), "0".into(), (k.port + 1000).to_string()));
            }
        }
        obs
    };
    // TLS ports not open yet: each node opens its own (config_set), the switch waits.
    let p = plan_with(&topo, &drifted(false), Options::default());
    assert_eq!(p.steps.len(), keys.len(), "{p:#?}");
    assert!(
        p.steps
            .iter()
            .all(|s| matches!(s, Step::ConfigSet { params, .. }
            if params.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>() == ["tls-port"])),
        "{p:#?}"
    );
    // All open: one switch over every node.
    let p = plan_with(&topo, &drifted(true), Options::default());
    assert_eq!(p.steps.len(), 1, "{p:#?}");
    match &p.steps[0] {
        Step::TlsSwitch { mode, nodes } => {
            assert_eq!(mode, "both");
            assert_eq!(
                nodes.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                keys.iter().collect::<Vec<_>>()
            );
        }
        s => panic!("{s}"),
    }
    // One node does not answer: the switch waits, naming it.
    let mut obs = drifted(true);
    obs.nodes.get_mut(&keys[2]).unwrap().error = Some("connection refused".into());
    let p = plan_with(&topo, &obs, Options::default());
    assert!(
        p.steps.iter().all(|s| !matches!(s, Step::TlsSwitch { .. })),
        "{p:#?}"
    );
    // Switched: nothing left.
    assert!(plan_with(&topo, &sim.observed(), Options::default()).is_empty());
}
