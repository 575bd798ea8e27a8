//! In-memory simulator of Redis Cluster state for planner property tests: random topologies
//! and random starting states (an interrupted first apply, stopped nodes) must converge to
//! the declared layout, and a converged cluster must plan nothing.
//!
//! The model is deliberately simple: gossip is instant (a meet merges two components and
//! every node of the result knows every other), and replication links are up as soon as a
//! replica is attached. It checks the planner's decisions, not Redis.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{Plan, Step, converge, plan};
use crate::observe::parse::{Flags, NodeLine};
use crate::observe::{Live, NodeObs, Observed, Record};
use crate::supervise::ProcState;
use crate::topology::slots::{SLOTS, SlotRange, even_split, ranges_of};
use crate::topology::{InstanceKey, Topology};

#[derive(Debug, Clone, Default)]
struct Node {
    running: bool,
    has_conf: bool,
    id: String,
    epoch: u64,
    slots: BTreeSet<u16>,
    master: Option<String>,
    known: BTreeSet<String>,
}

struct Sim {
    topo: Topology,
    nodes: BTreeMap<InstanceKey, Node>,
    next_id: u64,
    record: Record,
}

impl Sim {
    fn new(topo: Topology) -> Sim {
        let nodes = topo
            .cluster_instances()
            .map(|i| (i.key.clone(), Node::default()))
            .collect();
        let record = Record {
            deployment: topo.name.clone(),
            ..Record::default()
        };
        Sim {
            topo,
            nodes,
            next_id: 1,
            record,
        }
    }

    fn by_id(&self, id: &str) -> Option<&Node> {
        self.nodes.values().find(|n| n.id == id && n.running)
    }

    fn ip_of(&self, key: &InstanceKey) -> String {
        self.topo
            .cluster_instances()
            .find(|i| &i.key == key)
            .map(|i| i.address.to_string())
            // Retired nodes are no longer declared; any address not used by a declared one.
            .unwrap_or_else(|| "127.0.0.99".into())
    }

    fn line(&self, n: &Node, myself: bool) -> NodeLine {
        let key = self
            .nodes
            .iter()
            .find(|(_, x)| x.id == n.id)
            .map(|(k, _)| k.clone())
            .unwrap();
        let ip = self.ip_of(&key);
        NodeLine {
            id: n.id.clone(),
            ip,
            port: key.port,
            bus_port: key.port + 10000,
            flags: Flags {
                myself,
                master: n.master.is_none(),
                replica: n.master.is_some(),
                ..Flags::default()
            },
            master_id: n.master.clone(),
            config_epoch: n.epoch,
            connected: true,
            slots: ranges_of(n.slots.iter().copied()),
            migrating: Vec::new(),
            importing: Vec::new(),
        }
    }

    fn observed(&self) -> Observed {
        let mut nodes = BTreeMap::new();
        // Like the real observer: only the declared instances are asked.
        let declared: BTreeSet<&InstanceKey> =
            self.topo.cluster_instances().map(|i| &i.key).collect();
        for (key, n) in self.nodes.iter().filter(|(k, _)| declared.contains(k)) {
            let live = n.running.then(|| {
                let peers: Vec<NodeLine> = n
                    .known
                    .iter()
                    .filter_map(|id| self.by_id(id))
                    .map(|p| self.line(p, false))
                    .collect();
                let mut covered = n.slots.len();
                for p in n.known.iter().filter_map(|id| self.by_id(id)) {
                    covered += p.slots.len();
                }
                let mut info = std::collections::HashMap::new();
                if n.master.is_some() {
                    info.insert("master_link_status".to_string(), "up".to_string());
                }
                Live {
                    myself: self.line(n, true),
                    peers,
                    info,
                    keys: 0,
                    cluster_enabled: true,
                    current_epoch: n.epoch,
                    cluster_state: if covered == usize::from(SLOTS) {
                        "ok"
                    } else {
                        "fail"
                    }
                    .into(),
                }
            });
            nodes.insert(
                key.clone(),
                NodeObs {
                    endpoint: format!("{}:{}", self.ip_of(key), key.port),
                    process: if n.running {
                        ProcState::Running { pid: 1 }
                    } else {
                        ProcState::Stopped
                    },
                    port_answers: n.running,
                    live,
                    error: None,
                    auth_failed: false,
                    has_nodes_conf: n.has_conf,
                    config_drift: false,
                    repl: None,
                    sentinel: None,
                    live_drift: Vec::new(),
                },
            );
        }
        Observed {
            nodes,
            record: self.record.clone(),
        }
    }

    fn id_of(&self, key: &InstanceKey) -> String {
        self.nodes[key].id.clone()
    }

    fn apply(&mut self, step: &Step) {
        match step {
            Step::Start { node } | Step::StartReplica { node, .. } => {
                let fresh = !self.nodes[node].has_conf;
                let id = format!("{:040x}", self.next_id);
                self.next_id += 1;
                let n = self.nodes.get_mut(node).unwrap();
                n.running = true;
                if fresh {
                    *n = Node {
                        running: true,
                        has_conf: true,
                        id: id.clone(),
                        ..Node::default()
                    };
                    // The executor records a fresh node's id as soon as it answers.
                    self.record.node_ids.insert(node.to_string(), id);
                }
            }
            Step::SetConfigEpoch { node, epoch } => {
                let n = self.nodes.get_mut(node).unwrap();
                if n.known.is_empty() && n.epoch == 0 {
                    n.epoch = *epoch;
                }
            }
            Step::AddSlots { node, ranges } => {
                for r in ranges {
                    for s in r.start..=r.end {
                        let claimed = self.nodes.values().any(|x| x.slots.contains(&s));
                        assert!(!claimed, "slot {s} assigned twice");
                    }
                }
                let n = self.nodes.get_mut(node).unwrap();
                n.slots.extend(ranges.iter().flat_map(|r| r.start..=r.end));
            }
            Step::Meet { node, targets } => {
                for t in targets {
                    assert!(
                        self.nodes[t].running && self.nodes[node].running,
                        "meet with a stopped node"
                    );
                    // Merge the two components: everyone knows everyone.
                    let mut comp: BTreeSet<String> = BTreeSet::new();
                    for k in [node, t] {
                        let n = &self.nodes[k];
                        comp.insert(n.id.clone());
                        comp.extend(n.known.iter().cloned());
                    }
                    for n in self.nodes.values_mut().filter(|n| comp.contains(&n.id)) {
                        n.known = comp.iter().filter(|id| **id != n.id).cloned().collect();
                    }
                }
            }
            Step::Replicate { node, master } => {
                let mid = self.id_of(master);
                let n = self.nodes.get_mut(node).unwrap();
                assert!(n.slots.is_empty(), "CLUSTER REPLICATE on a node with slots");
                assert!(
                    n.known.contains(&mid),
                    "CLUSTER REPLICATE of an unknown master"
                );
                n.master = Some(mid);
            }
            Step::MoveSlots {
                from, to, slots, ..
            } => {
                let moved: Vec<u16> = slots.iter().flat_map(|r| r.start..=r.end).collect();
                for s in &moved {
                    assert!(
                        self.nodes[from].slots.contains(s),
                        "moving slot {s} its source does not own"
                    );
                }
                self.nodes
                    .get_mut(from)
                    .unwrap()
                    .slots
                    .retain(|s| !moved.contains(s));
                self.nodes.get_mut(to).unwrap().slots.extend(moved);
            }
            Step::Retire { node, id, .. } => {
                assert!(
                    self.nodes[node].slots.is_empty(),
                    "retiring {node} while it owns slots"
                );
                for n in self.nodes.values_mut() {
                    n.known.remove(id);
                }
                self.nodes.get_mut(node).unwrap().running = false;
                self.record.node_ids.remove(&node.to_string());
            }
            Step::ConfigSet { .. }
            | Step::WaitConverged { .. }
            | Step::WaitMembership { .. }
            | Step::WriteConfig { .. } => {}
            other => panic!("unexpected step for a cluster: {other}"),
        }
    }

    fn stop(&mut self, key: &InstanceKey) {
        self.nodes.get_mut(key).unwrap().running = false;
    }
}

/// Small deterministic PRNG (xorshift), so failures are reproducible from the seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn topology(shards: u32, replicas: u32, hosts: u32) -> Topology {
    let mut y = String::from("name: sim\nhosts:\n");
    for h in 0..hosts {
        y.push_str(&format!("  - {{name: h{h}, address: 127.0.0.{}}}\n", h + 1));
    }
    y.push_str(&format!(
        "cluster:\n  shards: {shards}\n  replicas: {replicas}\n  ports: 7000-7020\n"
    ));
    crate::topology::parse(&y, "sim.yaml", Path::new("."))
        .expect("valid generated topology")
        .topology
}

/// observe → plan → execute until the plan is empty; returns the number of rounds.
fn converge_sim(sim: &mut Sim, seed: u64) -> usize {
    for round in 0..8 {
        let obs = sim.observed();
        let p: Plan = plan(&sim.topo, &obs);
        assert!(
            p.blockers.is_empty(),
            "seed {seed} round {round}: blocked: {:?}",
            p.blockers
        );
        if p.steps.is_empty() {
            return round;
        }
        for s in &p.steps {
            sim.apply(s);
        }
    }
    panic!("seed {seed}: did not converge in 8 rounds");
}

fn assert_declared_layout(sim: &Sim, seed: u64) {
    let c = sim.topo.cluster.as_ref().unwrap();
    let split = even_split(c.shards.len());
    let mut seen = BTreeSet::new();
    for (i, shard) in c.shards.iter().enumerate() {
        // Exactly one master (the preferred one: no failover happens in the simulator).
        let master = &sim.nodes[&shard.master.key];
        assert!(
            master.master.is_none(),
            "seed {seed}: shard {} master is a replica",
            shard.number
        );
        assert_eq!(
            master.slots.len() as u32,
            split[i].len(),
            "seed {seed}: shard {} slot count",
            shard.number
        );
        for s in &master.slots {
            assert!(seen.insert(*s), "seed {seed}: slot {s} owned twice");
        }
        for r in &shard.replicas {
            assert_eq!(
                sim.nodes[&r.key].master.as_deref(),
                Some(master.id.as_str()),
                "seed {seed}: replica {}",
                r.key
            );
        }
    }
    assert_eq!(seen.len(), usize::from(SLOTS), "seed {seed}: coverage");
    let obs = sim.observed();
    let lives: Vec<(&InstanceKey, &Live)> = obs
        .nodes
        .iter()
        .filter_map(|(k, o)| o.live.as_ref().map(|l| (k, l)))
        .collect();
    let problems = converge::problems(&sim.topo, &lives);
    assert!(problems.is_empty(), "seed {seed}: {problems:?}");
}

#[test]
fn fresh_plan_has_the_expected_shape() {
    let sim = Sim::new(topology(3, 1, 1));
    let p = plan(&sim.topo, &sim.observed());
    let kinds: Vec<&str> = p
        .steps
        .iter()
        .map(|s| match s {
            Step::Start { .. } => "start",
            Step::ConfigSet { .. } => "config",
            Step::SetConfigEpoch { .. } => "epoch",
            Step::AddSlots { .. } => "slots",
            Step::Meet { .. } => "meet",
            Step::Replicate { .. } => "replicate",
            Step::WaitConverged { .. } => "wait",
            _ => "other",
        })
        .collect();
    let mut expect = vec!["start"; 6];
    expect.extend(["config"; 6]);
    expect.extend(["epoch"; 3]);
    expect.extend(["slots"; 3]);
    expect.extend(["meet"; 5]);
    expect.extend(["replicate"; 3]);
    expect.push("wait");
    expect.extend(["config"; 6]);
    assert_eq!(kinds, expect);
    let ranges: Vec<Vec<SlotRange>> = p
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::AddSlots { ranges, .. } => Some(ranges.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        ranges,
        even_split(3)
            .into_iter()
            .map(|r| vec![r])
            .collect::<Vec<_>>()
    );
}

#[test]
fn random_interrupted_starts_always_converge() {
    // 60 seeds keep this under half a minute in a debug build; raise locally to explore.
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let shards = 3 + rng.below(4) as u32;
        let replicas = rng.below(3) as u32;
        let hosts = 1 + rng.below(3) as u32;
        let topo = topology(shards, replicas, hosts);
        let mut sim = Sim::new(topo.clone());

        // An interrupted first apply: a random prefix of its plan.
        let first = plan(&sim.topo, &sim.observed());
        let cut = rng.below(first.steps.len() as u64 + 1) as usize;
        // Starts always come first; a prefix past them may be planned from a partial view.
        for s in &first.steps[..cut] {
            sim.apply(s);
        }
        // Then some nodes die (they come back from their nodes.conf).
        let keys: Vec<InstanceKey> = sim.nodes.keys().cloned().collect();
        for k in &keys {
            if sim.nodes[k].running && rng.below(5) == 0 {
                sim.stop(k);
            }
        }
        let rounds = converge_sim(&mut sim, seed);
        assert!(rounds <= 4, "seed {seed}: {rounds} rounds");
        assert_declared_layout(&sim, seed);
        // Idempotent: a converged cluster plans nothing.
        assert!(
            plan(&sim.topo, &sim.observed()).steps.is_empty(),
            "seed {seed}"
        );
    }
}

#[test]
fn scaling_out_and_in_converges_with_exact_shares() {
    for (from, to) in [(3u32, 4u32), (4, 3), (3, 6), (6, 3), (5, 4)] {
        let mut sim = Sim::new(topology(from, 1, 2));
        converge_sim(&mut sim, u64::from(from));
        // Re-declare with another shard count over the same nodes (placement appends).
        let bigger = topology(to, 1, 2);
        let mut nodes = sim.nodes.clone();
        for i in bigger.cluster_instances() {
            nodes.entry(i.key.clone()).or_default();
        }
        let mut next = Sim {
            topo: bigger,
            nodes,
            next_id: sim.next_id,
            record: sim.record.clone(),
        };
        let rounds = converge_sim(&mut next, u64::from(to));
        assert!(rounds <= 3, "{from}->{to}: {rounds} rounds");
        let c = next.topo.cluster.as_ref().unwrap();
        let split = even_split(c.shards.len());
        for (i, shard) in c.shards.iter().enumerate() {
            assert_eq!(
                next.nodes[&shard.master.key].slots.len() as u32,
                split[i].len(),
                "{from}->{to}"
            );
        }
        let owned: usize = c
            .shards
            .iter()
            .map(|s| next.nodes[&s.master.key].slots.len())
            .sum();
        assert_eq!(
            owned,
            usize::from(SLOTS),
            "{from}->{to}: slots left on retired nodes"
        );
    }
}

#[test]
fn a_non_fresh_node_without_a_record_blocks_and_nothing_is_planned() {
    let mut sim = Sim::new(topology(3, 0, 1));
    converge_sim(&mut sim, 7);
    sim.record.node_ids.clear();
    let p = plan(&sim.topo, &sim.observed());
    assert!(!p.blockers.is_empty());
    assert!(p.steps.is_empty());
    assert!(
        p.blockers[0].contains("has no record of creating it"),
        "{:?}",
        p.blockers
    );
}
