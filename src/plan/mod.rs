//! The planner: declared topology + observed state → the steps that converge one to the
//! other. Pure and synchronous: no sockets, no clock, no randomness, so `redisctl plan`,
//! `apply` and the tests all see the same plan for the same inputs. Every step names its
//! nodes and slots; the executor only looks up node ids by address.

mod acl;
pub mod converge;
pub mod findings;
mod groups;
pub mod maintenance;
pub mod replication;
pub mod restart;
pub use groups::{current_master as current_group_master, problems as group_problems};
pub use replication::in_sync;
#[cfg(test)]
mod group_sim;
#[cfg(test)]
mod sim;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::Serialize;

pub use findings::{Blocker, BlockerKind, Note, NoteKind, Wait, WaitKind};

use crate::observe::parse::NodeLine;
use crate::observe::{Live, NodeObs, Observed};
use crate::supervise::ProcState;
use crate::topology::slots::{SlotRange, count, format_ranges, ranges_of};
use crate::topology::{InstanceKey, Topology};

/// Slots a dead master was moving to `to` when it died: `to` still imports them from it
/// (`TakeOver`). Its replica is promoted with these marked MIGRATING towards `to` again, and
/// without the copies of keys `to` already holds (exec/cluster.rs, `take_over`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Reopen {
    pub to: InstanceKey,
    pub to_addr: String,
    pub slots: Vec<SlotRange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Render the instance's files and start its process.
    Start { node: InstanceKey },
    /// Rewrite the rendered files of a running instance (takes effect at its next restart).
    WriteConfig { node: InstanceKey },
    /// `CLUSTER SET-CONFIG-EPOCH` on a master that knows no other node yet.
    SetConfigEpoch { node: InstanceKey, epoch: u64 },
    /// `CLUSTER ADDSLOTSRANGE` for slots no node claims.
    AddSlots {
        node: InstanceKey,
        ranges: Vec<SlotRange>,
    },
    /// Probe the bus ports, then `CLUSTER MEET` from `node` to each target.
    Meet {
        node: InstanceKey,
        targets: Vec<InstanceKey>,
    },
    /// `CLUSTER REPLICATE <id of master>` on an empty node.
    Replicate {
        node: InstanceKey,
        master: InstanceKey,
    },
    /// Start a group member as a replica of `master` (`--replicaof` for this start only): its
    /// persistence is off, so starting it as a master would wipe the replicas holding the data.
    StartReplica {
        node: InstanceKey,
        master: InstanceKey,
    },
    /// `CLUSTER FAILOVER FORCE` (then `TAKEOVER` if the other masters do not vote in time)
    /// on a replica whose master is down: it takes over the slots before `from` is started
    /// again, so `from` cannot come back as a master with older data (crash-safe restarts).
    /// With `reopen` (`from` died moving slots away): `CLUSTER FAILOVER TAKEOVER` in one
    /// transaction with the deletion of the stale copies and the slots' MIGRATING marks.
    TakeOver {
        node: InstanceKey,
        from: InstanceKey,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reopen: Vec<Reopen>,
    },
    /// A group's master `from` is down: the Sentinels promote the best replica (`SENTINEL
    /// FAILOVER`) before `from` restarts as a replica; done when a majority of them report
    /// another live member as master.
    SentinelPromote { group: String, from: InstanceKey },
    /// A group without Sentinels whose master `from` is down (or a replication loop):
    /// `REPLICAOF NO ONE` on `node`, the member with the newest data.
    PromoteReplica {
        group: String,
        node: InstanceKey,
        from: InstanceKey,
    },
    /// Coordinated `CLUSTER FAILOVER` on a replica (its master pauses writes until the
    /// replica has them all), then wait until every node sees the new roles.
    ClusterFailover { node: InstanceKey },
    /// Wait until every node sees every other as connected (before slots move to new nodes).
    WaitMembership { nodes: Vec<InstanceKey> },
    /// Move slots with their keys from one master to another (IMPORTING/MIGRATING,
    /// GETKEYSINSLOT + MIGRATE batches, SETSLOT NODE everywhere). Also finishes open slots.
    MoveSlots {
        from: InstanceKey,
        to: InstanceKey,
        from_addr: String,
        to_addr: String,
        slots: Vec<SlotRange>,
    },
    /// Stop a node the topology no longer declares (it owns no slots) and `CLUSTER FORGET`
    /// it on every node. Its data directory is kept unless `--purge`.
    Retire {
        node: InstanceKey,
        id: String,
        addr: String,
    },
    /// `CLUSTER FORGET` on every node of an old identity still listed at the address of a
    /// declared node that was recreated empty (it owns no slots).
    Forget { id: String, addr: String },
    /// `CONFIG SET` of live-changeable settings that drifted from the topology.
    ConfigSet {
        node: InstanceKey,
        params: Vec<(String, String)>,
    },
    /// Switch a running cluster between TLS modes (`tls.mode` with `tls.port_offset`): the
    /// bus and replication modes, listening and announced ports of every node, at once
    /// (render::tls::switch_groups gives the order). Planned only when every node answers,
    /// every TLS port it needs is open, and nothing else is left to do.
    TlsSwitch {
        mode: String,
        nodes: Vec<(InstanceKey, Vec<(String, String)>)>,
    },
    /// `ACL SETUSER` of declared users that differ from the live ones (each whole, in one
    /// command: a user being rotated accepts both passwords in between), no restart.
    AclSetUser {
        node: InstanceKey,
        users: Vec<String>,
        /// How each differs (never a password or hash).
        why: Vec<String>,
    },
    /// Let redisctl's internal user `user` (replication or Sentinel) on `node` accept its
    /// declared passwords too, keeping those it has (`ACL SETUSER user #<hash>…`): the first
    /// phase of a rotation, planned before anyone switches to the new password.
    AclAddPasswords { node: InstanceKey, user: String },
    /// `CONFIG SET masterauth` to the declared replication password (live; the replica uses
    /// it at its next connection to its master). Planned once every instance accepts it.
    SetMasterAuth { node: InstanceKey },
    /// `SENTINEL SET <group> auth-pass` to the declared Sentinel password (live). Planned
    /// once every instance accepts it.
    SentinelAuthPass {
        sentinel: InstanceKey,
        groups: Vec<String>,
    },
    /// `SENTINEL CONFIG SET sentinel-pass` to the last of redisctl's passwords (what this
    /// Sentinel sends to the other Sentinels; live, it reconnects at once). Planned once
    /// every Sentinel accepts it.
    SentinelPeerPass { sentinel: InstanceKey },
    /// `REPLICAOF` on a live group member.
    ReplicaOf {
        node: InstanceKey,
        master: InstanceKey,
    },
    /// Restart a Sentinel so that it loads renewed TLS files: Sentinel has no `CONFIG SET`,
    /// so its `tls-*-file` lines in sentinel.conf are pointed at the new copies while it is
    /// stopped. Planned for one Sentinel at a time, while every Sentinel answers.
    RestartSentinel { node: InstanceKey },
    /// `SENTINEL MONITOR` the group's current master, then its settings and auth-pass.
    SentinelMonitor {
        sentinel: InstanceKey,
        group: String,
        master: InstanceKey,
    },
    /// `SENTINEL SET` settings that drifted.
    SentinelSet {
        sentinel: InstanceKey,
        group: String,
        params: Vec<(String, String)>,
    },
    /// `SENTINEL REMOVE` a master name the topology no longer declares.
    SentinelRemove {
        sentinel: InstanceKey,
        group: String,
    },
    /// Move mastership to `to` with a Sentinel failover (other replicas' priority held at 0
    /// meanwhile), then wait until every Sentinel reports it.
    SentinelFailover { group: String, to: InstanceKey },
    /// Wait until every group replica is linked to its upstream and every Sentinel sees its
    /// masters, replicas and the other Sentinels.
    WaitGroups { groups: Vec<String> },
    /// Wait until the cluster has converged: one slot map everywhere, full coverage, no open
    /// slots, replicas linked.
    WaitConverged { nodes: Vec<InstanceKey> },
    /// `CLUSTER FAILOVER FORCE` on a replica whose link to its live-or-not master is down
    /// (`failover --force`): the writes it has not received are lost.
    ForcedFailover { node: InstanceKey },
    /// Record that `host` is drained (`drained/HOST.json`, with the masters it had), so that
    /// `apply` and `restart` there start nothing until `undrain`.
    MarkDrained {
        host: String,
        masters: Vec<InstanceKey>,
    },
    /// Keep these instances from being promoted while they are drained away
    /// (`cluster-replica-no-failover yes` on cluster nodes, `replica-priority 0` on group
    /// members), live, until their next start.
    HoldPromotion { nodes: Vec<InstanceKey> },
    /// Stop these instances side by side (SHUTDOWN saves what persistence is configured; the
    /// data is kept) and keep the service manager from starting them at boot.
    Stop { nodes: Vec<InstanceKey> },
    /// Stop one instance and start it again the way `apply` would, then wait until it has
    /// caught up (rolling restart).
    Restart { node: InstanceKey },
    /// Wait until each instance answers and, if a replica, is linked and caught up (and the
    /// masters' bus links to a cluster replica are healthy); a Sentinel monitors every group.
    WaitCaughtUp { nodes: Vec<InstanceKey> },
    /// Remove the drain mark of `host`: `apply` and `restart` run there again.
    ClearDrainMark { host: String },
}

impl Step {
    /// The step's kind, as `plan --output json` names it (`"step"`: `start`, `move_slots`,
    /// …), for callers that filter or count steps by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Start { .. } => "start",
            Step::WriteConfig { .. } => "write_config",
            Step::SetConfigEpoch { .. } => "set_config_epoch",
            Step::AddSlots { .. } => "add_slots",
            Step::Meet { .. } => "meet",
            Step::Replicate { .. } => "replicate",
            Step::StartReplica { .. } => "start_replica",
            Step::TakeOver { .. } => "take_over",
            Step::SentinelPromote { .. } => "sentinel_promote",
            Step::PromoteReplica { .. } => "promote_replica",
            Step::ClusterFailover { .. } => "cluster_failover",
            Step::WaitMembership { .. } => "wait_membership",
            Step::MoveSlots { .. } => "move_slots",
            Step::Retire { .. } => "retire",
            Step::Forget { .. } => "forget",
            Step::ConfigSet { .. } => "config_set",
            Step::TlsSwitch { .. } => "tls_switch",
            Step::ReplicaOf { .. } => "replica_of",
            Step::RestartSentinel { .. } => "restart_sentinel",
            Step::SentinelMonitor { .. } => "sentinel_monitor",
            Step::SentinelSet { .. } => "sentinel_set",
            Step::SentinelRemove { .. } => "sentinel_remove",
            Step::SentinelFailover { .. } => "sentinel_failover",
            Step::WaitGroups { .. } => "wait_groups",
            Step::WaitConverged { .. } => "wait_converged",
            Step::AclSetUser { .. } => "acl_set_user",
            Step::AclAddPasswords { .. } => "acl_add_passwords",
            Step::SetMasterAuth { .. } => "set_masterauth",
            Step::SentinelAuthPass { .. } => "sentinel_auth_pass",
            Step::SentinelPeerPass { .. } => "sentinel_peer_pass",
            Step::ForcedFailover { .. } => "forced_failover",
            Step::MarkDrained { .. } => "mark_drained",
            Step::HoldPromotion { .. } => "hold_promotion",
            Step::Stop { .. } => "stop",
            Step::Restart { .. } => "restart",
            Step::WaitCaughtUp { .. } => "wait_caught_up",
            Step::ClearDrainMark { .. } => "clear_drain_mark",
        }
    }

    /// The instance a host-level step acts on: starting it, its files, its live settings,
    /// whom a group member replicates, what a Sentinel monitors. Every host's redisctl runs
    /// these for its own instances; everything else (meet, slots, replicas of the cluster,
    /// failovers, moves, retirements) is cluster-level and only the coordinator runs it.
    pub fn host_node(&self) -> Option<&InstanceKey> {
        match self {
            Step::Start { node }
            | Step::StartReplica { node, .. }
            | Step::WriteConfig { node }
            | Step::ConfigSet { node, .. }
            | Step::AclSetUser { node, .. }
            | Step::AclAddPasswords { node, .. }
            | Step::SetMasterAuth { node }
            | Step::RestartSentinel { node }
            | Step::ReplicaOf { node, .. } => Some(node),
            // The host that is about to restart `from` promotes its replacement first.
            Step::TakeOver { from, .. }
            | Step::SentinelPromote { from, .. }
            | Step::PromoteReplica { from, .. } => Some(from),
            Step::SentinelMonitor { sentinel, .. }
            | Step::SentinelSet { sentinel, .. }
            | Step::SentinelRemove { sentinel, .. }
            | Step::SentinelAuthPass { sentinel, .. }
            | Step::SentinelPeerPass { sentinel } => Some(sentinel),
            _ => None,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Start { node } => write!(f, "start {node}"),
            Step::WriteConfig { node } => write!(f, "rewrite the configuration files of {node}"),
            Step::RestartSentinel { node } => write!(
                f,
                "restart Sentinel {node} to load its renewed TLS certificate (one at a time)"
            ),
            Step::SetConfigEpoch { node, epoch } => {
                write!(f, "set config epoch of {node} to {epoch}")
            }
            Step::AddSlots { node, ranges } => write!(
                f,
                "assign {} slots ({}) to {node}",
                count(ranges),
                format_ranges(ranges)
            ),
            Step::Meet { node, targets } => {
                let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
                write!(f, "meet {node} with {}", names.join(", "))
            }
            Step::Replicate { node, master } => write!(f, "make {node} a replica of {master}"),
            Step::StartReplica { node, master } => {
                write!(f, "start {node} as a replica of {master}")
            }
            Step::SentinelPromote { group, from } => write!(
                f,
                "{group}: the Sentinels promote a replica (SENTINEL FAILOVER) before {from} restarts"
            ),
            Step::PromoteReplica { group, node, from } => write!(
                f,
                "{group}: promote {node} (REPLICAOF NO ONE) in place of {from}"
            ),
            Step::WaitMembership { nodes } => {
                write!(f, "wait until all {} nodes see each other", nodes.len())
            }
            Step::Forget { id, addr } => write!(
                f,
                "forget the old identity {} of {addr} on every node (recreated)",
                short(id)
            ),
            Step::ClusterFailover { node } => {
                write!(f, "fail over to {node} (CLUSTER FAILOVER, no write lost)")
            }
            Step::MoveSlots {
                from, to, slots, ..
            } => write!(
                f,
                "move {} slots ({}) with their keys from {from} to {to}",
                count(slots),
                format_ranges(slots)
            ),
            Step::Retire { node, id, addr } => write!(
                f,
                "retire {node} ({addr}, id {}): stop it and forget it on every node",
                short(id)
            ),
            Step::TakeOver { node, from, reopen } if reopen.is_empty() => write!(
                f,
                "{node} takes over the slots of {from} (CLUSTER FAILOVER FORCE) before {from} restarts"
            ),
            Step::TakeOver { node, from, reopen } => {
                let open: Vec<String> = reopen
                    .iter()
                    .map(|r| format!("{} to {}", format_ranges(&r.slots), r.to))
                    .collect();
                write!(
                    f,
                    "{node} takes over the slots of {from} (CLUSTER FAILOVER TAKEOVER) before {from} restarts, \
                     in one transaction with MIGRATING marks again on the slots {from} was moving ({}) \
                     and the deletion of its copies of keys already moved",
                    open.join(", ")
                )
            }
            Step::ConfigSet { node, params } => {
                let kv: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                write!(f, "set {} on {node} (live, no restart)", kv.join(" "))
            }
            Step::TlsSwitch { mode, nodes } => {
                let names: Vec<String> = nodes.iter().map(|(k, _)| k.to_string()).collect();
                let mut keys: Vec<&str> = nodes
                    .iter()
                    .flat_map(|(_, p)| p.iter().map(|(k, _)| k.as_str()))
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                write!(
                    f,
                    "switch the cluster to tls.mode {mode} on {} at once (live, no restart): {}",
                    names.join(", "),
                    keys.join(", ")
                )
            }
            Step::AclSetUser { node, why, .. } => write!(
                f,
                "update ACL users on {node} (live, no restart): {}",
                why.join(", ")
            ),
            Step::AclAddPasswords { node, user } => write!(
                f,
                "let {user} on {node} accept its new password too (live, the old one stays until every side has switched)"
            ),
            Step::SetMasterAuth { node } => write!(
                f,
                "switch {node} to the new replication password (CONFIG SET masterauth, live)"
            ),
            Step::SentinelAuthPass { sentinel, groups } => write!(
                f,
                "Sentinel {sentinel}: switch to the new password for {} (SENTINEL SET auth-pass, live)",
                groups.join(", ")
            ),
            Step::SentinelPeerPass { sentinel } => write!(
                f,
                "Sentinel {sentinel}: switch to the new password towards the other Sentinels (SENTINEL CONFIG SET sentinel-pass, live)"
            ),
            Step::ReplicaOf { node, master } => write!(f, "make {node} replicate from {master}"),
            Step::SentinelMonitor {
                sentinel,
                group,
                master,
            } => {
                write!(f, "Sentinel {sentinel}: monitor {group} at {master}")
            }
            Step::SentinelSet {
                sentinel,
                group,
                params,
            } => {
                let kv: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "Sentinel {sentinel}: set {} for {group}", kv.join(" "))
            }
            Step::SentinelRemove { sentinel, group } => {
                write!(
                    f,
                    "Sentinel {sentinel}: stop monitoring {group} (not in the topology)"
                )
            }
            Step::SentinelFailover { group, to } => {
                write!(
                    f,
                    "fail {group} over to {to} (Sentinel failover, writes paused until it has them all)"
                )
            }
            Step::WaitGroups { groups } => write!(
                f,
                "wait until {} is replicated as declared and known to every Sentinel",
                groups.join(", ")
            ),
            Step::WaitConverged { nodes } => write!(
                f,
                "wait until all {} nodes agree on slots and replicas are in sync",
                nodes.len()
            ),
            Step::ForcedFailover { node } => write!(
                f,
                "fail over to {node} by force (CLUSTER FAILOVER FORCE: writes it has not received are lost)"
            ),
            Step::MarkDrained { host, masters } => {
                write!(
                    f,
                    "mark {host} drained (apply and restart there start nothing until undrain)"
                )?;
                if !masters.is_empty() {
                    write!(f, "; it records its masters now: {}", names(masters))?;
                }
                Ok(())
            }
            Step::HoldPromotion { nodes } => write!(
                f,
                "keep {} from being promoted (live, until their next start)",
                names(nodes)
            ),
            Step::Stop { nodes } => {
                write!(f, "stop {} (data kept; not started at boot)", names(nodes))
            }
            Step::Restart { node } => write!(f, "restart {node} and wait until it has caught up"),
            Step::WaitCaughtUp { nodes } => write!(
                f,
                "wait until {} answer and have caught up with their masters",
                names(nodes)
            ),
            Step::ClearDrainMark { host } => {
                write!(f, "clear the drain mark of {host} (apply runs there again)")
            }
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Conditions redisctl refuses to act on; `apply` stops and changes nothing.
    pub blockers: Vec<Blocker>,
    /// Conditions that clear by themselves (a process still starting or loading its data, a
    /// node that has not yet accepted a newer slot owner after a failover): `apply` plans
    /// again until they are gone, up to the gate timeout, then refuses naming them.
    pub waits: Vec<Wait>,
    /// Facts the operator should know that need no step.
    pub notes: Vec<Note>,
    /// Cluster steps wait for instances being started; `apply` plans again after them.
    pub partial: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && !self.halted()
    }
    /// Blocked or waiting: no step may run on this plan.
    pub fn halted(&self) -> bool {
        !self.blockers.is_empty() || !self.waits.is_empty()
    }

    /// The part of the plan a host that is not the coordinator runs: the host-level steps on
    /// its `local` instances, and the blockers and waits that name one of them (compared as
    /// keys: host `web1` is not `eu-web1`, port 700 is not 7000). Also returns the steps left
    /// to other hosts and the coordinator.
    pub fn host_part(self, local: &[&InstanceKey]) -> (Plan, Vec<Step>) {
        let (mine, theirs): (Vec<Step>, Vec<Step>) = self
            .steps
            .into_iter()
            .partition(|s| s.host_node().is_some_and(|n| local.contains(&n)));
        let plan = Plan {
            steps: mine,
            blockers: self
                .blockers
                .into_iter()
                .filter(|b| b.concerns(local))
                .collect(),
            waits: self
                .waits
                .into_iter()
                .filter(|w| w.concerns(local))
                .collect(),
            notes: self.notes,
            partial: self.partial,
        };
        (plan, theirs)
    }
}

impl Plan {
    /// The numbered steps, one a line, and under each slot move the data it carries when it
    /// was estimated (`estimates`: step number, keys, bytes). The one rendering of steps:
    /// `Display`, `plan`, the dry runs and apply's last plan use it.
    pub fn steps_text(&self, estimates: &[(usize, u64, u64)]) -> String {
        let mut s = String::new();
        for (i, step) in self.steps.iter().enumerate() {
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
}

/// The plan as a person reads it: the numbered steps (as `redisctl plan` prints them), then
/// each blocker, wait and note with its kind and the instance it is about.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.steps_text(&[]))?;
        if self.partial {
            writeln!(
                f,
                "  (more steps follow once the started nodes report their state)"
            )?;
        }
        fn list<K: Serialize>(
            f: &mut fmt::Formatter<'_>,
            what: &str,
            items: &[findings::Finding<K>],
        ) -> fmt::Result {
            for x in items {
                let kind = serde_json::to_value(&x.kind).unwrap_or_default();
                write!(f, "{what} [{}", kind.as_str().unwrap_or("?"))?;
                if let Some(k) = &x.instance {
                    write!(f, " {k}")?;
                }
                writeln!(f, "]: {x}")?;
            }
            Ok(())
        }
        list(f, "blocked", &self.blockers)?;
        list(f, "waiting", &self.waits)?;
        list(f, "note", &self.notes)
    }
}

/// What the planner knows about a declared node.
#[derive(Clone, Copy)]
enum State<'a> {
    Live(&'a Live),
    /// Will be started with no nodes.conf: comes up empty and alone.
    StartsFresh,
    /// Unknown until it runs (will be started with its old nodes.conf, or is remote and down).
    Unknown,
}

impl<'a> State<'a> {
    fn live(&self) -> Option<&'a Live> {
        match self {
            State::Live(l) => Some(l),
            _ => None,
        }
    }
    fn id(&self) -> Option<&'a str> {
        self.live().map(|l| l.myself.id.as_str())
    }
}

/// `cluster-node-timeout` while a brand-new cluster forms (see plan_cluster).
pub const BOOTSTRAP_NODE_TIMEOUT_MS: u64 = 500;

/// Choices the operator makes on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Move mastership back to the preferred nodes (safe Sentinel failovers).
    pub restore_roles: bool,
    /// Delete the data directories of retired nodes.
    pub purge: bool,
    /// Plan cluster-level steps around declared nodes on other hosts that do not answer and
    /// that the live cluster itself marks failed (the agent, while a host is down); without
    /// it (apply) the cluster part waits until every node is known.
    pub around_failed_hosts: bool,
}

pub fn plan(topo: &Topology, obs: &Observed) -> Plan {
    plan_with(topo, obs, Options::default())
}

pub fn plan_with(topo: &Topology, obs: &Observed, opts: Options) -> Plan {
    let parts = [
        plan_cluster(topo, obs, opts),
        groups::plan(topo, obs, opts),
        drift(topo, obs),
        acl::plan(topo, obs),
    ];
    let mut out = Plan::default();
    let mut later = Vec::new();
    for part in parts {
        for step in part.steps {
            match step {
                Step::Start { .. }
                | Step::StartReplica { .. }
                | Step::WriteConfig { .. }
                | Step::TakeOver { .. }
                | Step::SentinelPromote { .. }
                | Step::PromoteReplica { .. } => out.steps.push(step),
                _ => later.push(step),
            }
        }
        out.blockers.extend(part.blockers);
        out.waits.extend(part.waits);
        out.notes.extend(part.notes);
        out.partial |= part.partial;
    }
    out.steps.extend(later);
    if out.steps.is_empty() && out.blockers.is_empty() {
        let switch = tls_switch(topo, obs);
        out.steps.extend(switch.steps);
        out.waits.extend(switch.waits);
    }
    // A replica still syncing holds nothing else up: its wait only keeps the last round
    // (nothing else to do) going until it has synced.
    if !out.steps.is_empty() || !out.blockers.is_empty() {
        out.waits.retain(|w| w.kind != WaitKind::ReplicaSyncing);
    }
    if out.halted() {
        out.steps.clear();
    }
    out
}

/// Command-line options for starting a group member as a replica of `master` (this start
/// only): `--replicaof`, and `replica-priority 0` so that the Sentinels cannot promote it
/// before it has synced. A member restarted after a crash still holds its old data set until
/// its first sync completes; promoted meanwhile (seen when Sentinels misjudged a fresh master
/// down under load) it would be a master with old data, and the others would resync from it.
/// The declared priority comes back by `drift` once the member is linked and synced.
pub fn replica_start_args(topo: &Topology, master: &InstanceKey) -> Vec<String> {
    let Some(m) = topo.instances().find(|i| i.key == *master) else {
        return Vec::new();
    };
    vec![
        "--replicaof".into(),
        m.address.to_string(),
        m.port.to_string(),
        "--replica-priority".into(),
        "0".into(),
    ]
}

/// The live switch of a running cluster between TLS modes (`tls.port_offset` declared): one
/// step that sets the bus and replication modes and the ports on every node at once. Only
/// once nothing else is left to do, every node answers, and every node has its TLS port and
/// files (the per-node drift of mode both) — a node left behind would be cut off the bus.
fn tls_switch(topo: &Topology, obs: &Observed) -> Plan {
    let mut p = Plan::default();
    let Some(t) = topo.tls_switching() else {
        return p;
    };
    let mut nodes = Vec::new();
    let mut waiting = Vec::new();
    for inst in topo.cluster_instances() {
        let Some(o) = obs.nodes.get(&inst.key) else {
            waiting.push(format!("{}: not observed", inst.key));
            continue;
        };
        if o.error.is_some() || o.live.is_none() {
            waiting.push(format!("{}: does not answer", inst.key));
            continue;
        }
        let (switch, other): (Vec<_>, Vec<_>) = o
            .live_drift
            .iter()
            .partition(|(k, _, _)| crate::render::tls::is_switch_key(topo, k));
        if other.iter().any(|(k, _, _)| k.starts_with("tls-")) {
            waiting.push(format!(
                "{}: its TLS port and files are not set yet",
                inst.key
            ));
            continue;
        }
        if !switch.is_empty() {
            nodes.push((
                inst.key.clone(),
                switch
                    .iter()
                    .map(|(k, _, v)| (k.clone(), v.clone()))
                    .collect::<Vec<_>>(),
            ));
        }
    }
    if nodes.is_empty() {
        return p;
    }
    if !waiting.is_empty() {
        p.waits.push(Wait::on(
            WaitKind::TlsSwitch,
            &nodes[0].0,
            format!(
                "switching the cluster to tls.mode {} waits for every node: {}",
                mode_name(t.mode),
                waiting.join("; ")
            ),
        ));
        return p;
    }
    p.steps.push(Step::TlsSwitch {
        mode: mode_name(t.mode).into(),
        nodes,
    });
    p
}

fn mode_name(m: crate::topology::TlsMode) -> &'static str {
    match m {
        crate::topology::TlsMode::Off => "off",
        crate::topology::TlsMode::On => "on",
        crate::topology::TlsMode::Both => "both",
    }
}

/// Live settings that differ from the topology: set them with CONFIG SET, no restart.
fn drift(topo: &Topology, obs: &Observed) -> Plan {
    let mut p = Plan::default();
    for inst in topo.instances() {
        let Some(o) = obs.nodes.get(&inst.key) else {
            continue;
        };
        // A replica not yet in sync keeps the priority 0 it started with (replica_start_args).
        let unsynced = o
            .repl
            .as_ref()
            .is_some_and(|r| !r.is_master && (!r.link_up || r.sync_in_progress));
        let params: Vec<(String, String)> = o
            .live_drift
            .iter()
            .filter(|(k, _, _)| !(unsynced && k == "replica-priority"))
            .filter(|(k, _, _)| !crate::render::tls::is_switch_key(topo, k))
            .map(|(k, _, want)| (k.clone(), want.clone()))
            .collect();
        // Its sync with a master that answers is under way: wait for it, so that the run
        // that started the replica also gives it back its declared priority (otherwise it
        // would stay 0, unpromotable, until someone runs apply again).
        let master_answers = o
            .repl
            .as_ref()
            .and_then(|r| r.master_addr.as_ref())
            .is_some_and(|(h, port)| {
                topo.instances().any(|m| {
                    m.address.to_string() == *h
                        && m.port == *port
                        && obs
                            .nodes
                            .get(&m.key)
                            .and_then(|mo| mo.repl.as_ref())
                            .is_some_and(|mr| mr.is_master)
                })
            });
        if unsynced
            && master_answers
            && o.live_drift.iter().any(|(k, _, _)| k == "replica-priority")
        {
            p.waits.push(Wait::on(
                WaitKind::ReplicaSyncing,
                &inst.key,
                format!(
                    "{}: started as an unpromotable replica (replica-priority 0) and still syncing; its declared priority follows once it has synced",
                    inst.key
                ),
            ));
        }
        if !params.is_empty() {
            p.steps.push(Step::ConfigSet {
                node: inst.key.clone(),
                params,
            });
        }
    }
    p
}

fn plan_cluster(topo: &Topology, obs: &Observed, opts: Options) -> Plan {
    let mut p = Plan::default();
    let Some(cluster) = &topo.cluster else {
        return p;
    };
    let instances: Vec<_> = topo.cluster_instances().collect();
    let all_keys: Vec<InstanceKey> = instances.iter().map(|i| i.key.clone()).collect();

    // Processes, ownership and reachability.
    let mut state: HashMap<&InstanceKey, State> = HashMap::new();
    for inst in &instances {
        let key = &inst.key;
        let Some(o) = obs.nodes.get(key) else {
            p.blockers.push(Blocker::on(
                BlockerKind::NotObserved,
                key,
                format!("{key}: not observed"),
            ));
            continue;
        };
        let st = node_state(key, o, obs, &mut p);
        state.insert(key, st);
    }
    if p.halted() {
        p.steps.clear();
        return p;
    }
    // Starts and config rewrites come first.
    let mut pre: Vec<Step> = Vec::new();
    for inst in &instances {
        let o = &obs.nodes[&inst.key];
        if matches!(o.process, ProcState::Stopped | ProcState::Stale { .. }) && o.live.is_none() {
            match restart::cluster(topo, inst, o, obs) {
                restart::Comeback::PromoteFirst { step, why } => {
                    p.notes.push(Note::on(NoteKind::Restart, &inst.key, why));
                    pre.push(step);
                }
                restart::Comeback::Refuse(why) => {
                    p.blockers
                        .push(Blocker::on(BlockerKind::UnsafeRestart, &inst.key, why))
                }
                restart::Comeback::InPlace { why } => {
                    p.notes
                        .extend(why.map(|w| Note::on(NoteKind::Restart, &inst.key, w)));
                    pre.push(Step::Start {
                        node: inst.key.clone(),
                    });
                }
                restart::Comeback::AsReplica { .. } => pre.push(Step::Start {
                    node: inst.key.clone(),
                }),
            }
        } else if o.config_drift && o.live.is_some() && !matches!(o.process, ProcState::Remote) {
            pre.push(Step::WriteConfig {
                node: inst.key.clone(),
            });
        }
    }
    let failed_elsewhere =
        |k: &InstanceKey| opts.around_failed_hosts && failed_remote(k, obs, &instances);
    if state
        .iter()
        .any(|(k, s)| matches!(s, State::Unknown) && !failed_elsewhere(k))
    {
        p.partial = true;
        p.steps = pre;
        return p;
    }

    let st = |k: &InstanceKey| state[k];

    // Two masters claiming one slot in their own views: one has not yet heard of a newer
    // owner (an old master restarted after its replica took over, or a move whose target has
    // just taken the slot). Redis settles it by config epoch within a few gossip rounds;
    // planning from the stale view would open or move the slot from the wrong node.
    p.waits.extend(stale_claims(
        instances
            .iter()
            .filter_map(|i| st(&i.key).live().map(|l| (&i.key, l))),
    ));
    if p.halted() {
        return p;
    }

    // Shard masters: the member that serves the shard now (after a failover that may be a
    // declared replica; Redis Cluster owns elections), else the preferred master.
    let mut owners: Vec<&InstanceKey> = Vec::new();
    for shard in &cluster.shards {
        let members: Vec<&InstanceKey> = shard.members().map(|i| &i.key).collect();
        let serving: Vec<&InstanceKey> = members
            .iter()
            .copied()
            .filter(|k| {
                st(k)
                    .live()
                    .is_some_and(|l| l.myself.flags.master && !l.myself.slots.is_empty())
            })
            .collect();
        let owner = match serving.as_slice() {
            [one] => *one,
            [] => members
                .iter()
                .copied()
                .find(|k| {
                    let Some(id) = st(k).id() else { return false };
                    members.iter().any(|o| {
                        st(o)
                            .live()
                            .is_some_and(|l| l.myself.master_id.as_deref() == Some(id))
                    })
                })
                .unwrap_or(&shard.master.key),
            many => {
                let names: Vec<String> = many.iter().map(ToString::to_string).collect();
                p.blockers.push(
                    Blocker::general(
                        BlockerKind::SeveralMasters,
                        format!(
                            "shard {} has {} masters owning slots ({}); redisctl will not pick one",
                            shard.number,
                            many.len(),
                            names.join(", ")
                        ),
                    )
                    .related(many.iter().map(|k| (*k).clone()))
                    .in_shard(shard.number),
                );
                &shard.master.key
            }
        };
        owners.push(owner);
    }
    if p.halted() {
        return p;
    }

    // Config epochs: distinct per master, only while it still knows nobody.
    for (i, shard) in cluster.shards.iter().enumerate() {
        let k = owners[i];
        let needs = match st(k) {
            State::Live(l) => l.peers.is_empty() && l.myself.config_epoch == 0,
            State::StartsFresh => true,
            State::Unknown => false,
        };
        if needs {
            p.steps.push(Step::SetConfigEpoch {
                node: k.clone(),
                epoch: u64::from(shard.number),
            });
        }
    }

    // Slots nobody claims go to their shard's master.
    // A flat table (one entry per slot): filled from every node's view in every round.
    let mut claimed = vec![false; usize::from(crate::topology::slots::SLOTS)];
    let mut owner_of: HashMap<u16, String> = HashMap::new();
    for s in state.values() {
        if let Some(l) = s.live() {
            for line in l.view() {
                for r in &line.slots {
                    for slot in r.start..=r.end {
                        if let Some(c) = claimed.get_mut(usize::from(slot)) {
                            *c = true;
                        }
                        if line.flags.myself {
                            owner_of.insert(slot, line.id.clone());
                        }
                    }
                }
                for (slot, _) in line.migrating.iter().chain(line.importing.iter()) {
                    if let Some(c) = claimed.get_mut(usize::from(*slot)) {
                        *c = true;
                    }
                }
            }
        }
    }
    let allocation = cluster.slot_allocation();
    for (i, range) in allocation.iter().enumerate() {
        let free: Vec<u16> = (range.start..=range.end)
            .filter(|s| !claimed.get(usize::from(*s)).copied().unwrap_or(false))
            .collect();
        if !free.is_empty() {
            p.steps.push(Step::AddSlots {
                node: owners[i].clone(),
                ranges: ranges_of(free),
            });
        }
    }

    // Membership: every pair of nodes where one does not know the other meets directly.
    // Gossip would get there too, but takes seconds per hop (and never brings back a node
    // the others forgot, such as a retired node declared again, while it still knows them);
    // a direct handshake takes one cron tick.
    let knows = |x: State, y: State| match (x.live(), y.id()) {
        (Some(l), Some(id)) => l.peer(id).is_some(),
        _ => false,
    };
    // (Unknown here: failed nodes on other hosts, see Options::around_failed_hosts.)
    let unknown = |k: &InstanceKey| matches!(st(k), State::Unknown);
    for (j, node) in all_keys.iter().enumerate() {
        if unknown(node) {
            continue;
        }
        let targets: Vec<InstanceKey> = all_keys[..j]
            .iter()
            .filter(|t| !unknown(t))
            .filter(|t| !knows(st(node), st(t)) || !knows(st(t), st(node)))
            .cloned()
            .collect();
        if !targets.is_empty() {
            p.steps.push(Step::Meet {
                node: node.clone(),
                targets,
            });
        }
    }
    let lives: Vec<(&InstanceKey, &Live)> = all_keys
        .iter()
        .filter_map(|k| st(k).live().map(|l| (k, l)))
        .collect();
    let all_live = lives.len() == all_keys.len();

    // Replicas.
    let lives_ids: Vec<&str> = lives.iter().map(|(_, l)| l.myself.id.as_str()).collect();
    let lives_lines = |id: &str| {
        let id = id.to_string();
        lives.iter().filter_map(move |(_, l)| l.peer(&id).cloned())
    };
    for (i, shard) in cluster.shards.iter().enumerate() {
        let owner = owners[i];
        let owner_id = st(owner).id();
        for m in shard.members().map(|x| &x.key).filter(|k| *k != owner) {
            match st(m) {
                State::StartsFresh => p.steps.push(Step::Replicate {
                    node: m.clone(),
                    master: owner.clone(),
                }),
                State::Unknown => {}
                State::Live(l) => {
                    let me = &l.myself;
                    if me.flags.replica && owner_id.is_some() && me.master_id.as_deref() == owner_id
                    {
                        continue;
                    }
                    if me.flags.master && !me.slots.is_empty() {
                        // Already reported as a two-master shard, or serving another shard.
                        p.blockers.push(
                            Blocker::on(BlockerKind::MasterOwningSlots, m, format!(
                                "{m} should be a replica in shard {} but is a master owning {} slots; move its slots first",
                                shard.number,
                                count(&me.slots)
                            ))
                            .in_shard(shard.number),
                        );
                    } else if let Some(old) = me.master_id.as_deref().filter(|old| {
                        me.flags.replica
                            && !lives_ids.contains(old)
                            && lives_lines(old).any(|x| x.flags.master && !x.slots.is_empty())
                    }) {
                        p.blockers.push(
                            Blocker::on(BlockerKind::OnlyLiveCopy, m, format!(
                                "{m} replicates {}, which still owns slots but is not a live node of this deployment (its node was recreated empty?); {m} holds the only live copy of them and replicating {owner} would delete it. Let the cluster fail over to {m} (or run CLUSTER FAILOVER TAKEOVER on it), then apply again",
                                short(old)
                            ))
                            .related([owner.clone()])
                            .in_shard(shard.number),
                        );
                    } else if me.flags.master && l.keys > 0 {
                        p.blockers.push(
                            Blocker::on(BlockerKind::WouldDiscardKeys, m, format!(
                                "{m} should be a replica in shard {} but holds {} keys and no slots; making it a replica would delete them. Inspect the node and remove the keys yourself if they are not needed",
                                shard.number, l.keys
                            ))
                            .in_shard(shard.number),
                        );
                    } else {
                        p.steps.push(Step::Replicate {
                            node: m.clone(),
                            master: owner.clone(),
                        });
                    }
                }
            }
        }
    }
    if p.halted() {
        p.steps.clear();
        return p;
    }

    // Preferred masters: Redis Cluster owns elections; --restore-roles hands mastership back
    // with a coordinated CLUSTER FAILOVER when the preferred node is an in-sync replica.
    for (i, shard) in cluster.shards.iter().enumerate() {
        let (owner, preferred) = (owners[i], &shard.master.key);
        if owner == preferred {
            continue;
        }
        let owner_live = st(owner).live();
        let ready = match (st(preferred).live(), owner_live) {
            (Some(pl), Some(ol)) => {
                pl.myself.flags.replica
                    && pl.myself.master_id.as_deref() == Some(ol.myself.id.as_str())
                    && in_sync(&ol.info, &pl.info) == Ok(true)
            }
            _ => false,
        };
        if !opts.restore_roles {
            p.notes.push(
                Note::on(NoteKind::NotPreferredMaster, owner, format!(
                    "shard {}: the master is {owner} (preferred: {preferred}) after a failover; `apply --restore-roles` moves it back",
                    shard.number
                ))
                .related([preferred.clone()])
                .in_shard(shard.number),
            );
        } else if ready {
            p.steps.push(Step::ClusterFailover {
                node: preferred.clone(),
            });
        } else {
            p.notes.push(
                Note::on(NoteKind::RolesNotRestored, preferred, format!(
                    "shard {}: not moving mastership back to {preferred}: it is not a replica of {owner} in sync yet",
                    shard.number
                ))
                .related([owner.clone()])
                .in_shard(shard.number),
            );
        }
    }

    // Slot movement: finish open slots, drain retired shards, balance the declared ones.
    let planned_add: HashMap<usize, u32> = p
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::AddSlots { node, ranges } => owners
                .iter()
                .position(|o| *o == node)
                .map(|i| (i, count(ranges))),
            _ => None,
        })
        .collect();
    let moves = slot_moves(topo, obs, &owners, &state, &owner_of, &planned_add, &mut p);
    if !moves.is_empty() {
        p.steps.push(Step::WaitMembership {
            nodes: all_keys.clone(),
        });
        p.steps.extend(moves);
    }
    let planned = p.steps.clone();
    let retire = retirements(topo, obs, &all_keys, &planned, &mut p);
    p.steps.extend(retire);

    let converged = all_live && converge::problems(topo, &lives).is_empty();
    if !p.steps.is_empty() || !converged {
        p.steps.push(Step::WaitConverged {
            nodes: all_keys.clone(),
        });
    }
    // A brand-new cluster forms on a short node timeout: nodes ping a peer they have not
    // heard from after half of it, so slot maps spread in a few hundred milliseconds instead
    // of seconds. The declared timeout is set back before apply returns (and, should apply
    // be interrupted, the next one sees the drift and restores it).
    let declared_timeout = cluster.settings.node_timeout_ms;
    let brand_new = all_keys.iter().all(|k| match st(k) {
        State::StartsFresh => true,
        State::Live(l) => l.is_fresh(),
        State::Unknown => false,
    });
    if brand_new && declared_timeout > BOOTSTRAP_NODE_TIMEOUT_MS && !p.steps.is_empty() {
        let set = |ms: u64| {
            all_keys.iter().map(move |k| Step::ConfigSet {
                node: k.clone(),
                params: vec![("cluster-node-timeout".into(), ms.to_string())],
            })
        };
        pre.extend(set(BOOTSTRAP_NODE_TIMEOUT_MS));
        p.steps.extend(set(declared_timeout));
    }
    pre.append(&mut p.steps);
    p.steps = pre;
    // A plan that only waits on an already converged cluster is empty.
    if p.steps
        .iter()
        .all(|s| matches!(s, Step::WaitConverged { .. }))
        && converged
    {
        p.steps.clear();
    }
    p
}

fn parse_key(s: &str) -> Option<InstanceKey> {
    let (host, port) = s.rsplit_once(':')?;
    Some(InstanceKey {
        host: host.to_string(),
        port: port.parse().ok()?,
    })
}

/// Nodes redisctl created (recorded) that the topology no longer declares, as seen by the
/// live nodes: (key, line).
fn retired_nodes<'a>(
    topo: &Topology,
    obs: &'a Observed,
) -> Vec<(InstanceKey, &'a crate::observe::parse::NodeLine)> {
    let declared: Vec<&InstanceKey> = topo.cluster_instances().map(|i| &i.key).collect();
    let mut out: Vec<(InstanceKey, &crate::observe::parse::NodeLine)> = Vec::new();
    for (key_text, id) in &obs.record.node_ids {
        let Some(key) = parse_key(key_text) else {
            continue;
        };
        if declared.contains(&&key) {
            continue;
        }
        // The freshest line about it: prefer one that shows slots.
        let lines = obs
            .nodes
            .values()
            .filter_map(|o| o.live.as_ref())
            .filter_map(|l| l.peer(id));
        let best = lines.max_by_key(|l| count(&l.slots));
        if let Some(line) = best {
            out.push((key, line));
        }
    }
    out
}

/// The moves that finish open slots, drain retired masters and bring every declared shard
/// to its even share (exact counts of the contiguous split), moving as few slots as possible.
fn slot_moves<'a>(
    topo: &Topology,
    obs: &Observed,
    owners: &[&InstanceKey],
    state: &HashMap<&InstanceKey, State<'a>>,
    owner_of: &HashMap<u16, String>,
    planned_add: &HashMap<usize, u32>,
    p: &mut Plan,
) -> Vec<Step> {
    let Some(cluster) = &topo.cluster else {
        return Vec::new();
    };
    let st = |k: &InstanceKey| state[k];
    let retired = retired_nodes(topo, obs);
    let mut key_of: HashMap<&str, (InstanceKey, String)> = HashMap::new();
    for inst in topo.cluster_instances() {
        if let Some(l) = st(&inst.key).live() {
            key_of.insert(&l.myself.id, (inst.key.clone(), inst.endpoint()));
        }
    }
    for (k, line) in &retired {
        key_of.insert(&line.id, (k.clone(), line.addr()));
    }
    let master_of: HashMap<&str, &str> = topo
        .cluster_instances()
        .filter_map(|i| st(&i.key).live())
        .filter_map(|l| Some((l.myself.id.as_str(), l.myself.master_id.as_deref()?)))
        .collect();
    let mut moves: Vec<Move> = Vec::new();
    let mut push = |from: &(InstanceKey, String), to: &(InstanceKey, String), slot: u16| match moves
        .iter_mut()
        .find(|(f, t, _)| f.0 == from.0 && t.0 == to.0)
    {
        Some((_, _, v)) => v.push(slot),
        None => moves.push((from.clone(), to.clone(), vec![slot])),
    };

    // 1. Open slots, from any earlier interrupted move: finish towards the same target.
    let mut open: BTreeSet<u16> = BTreeSet::new();
    for inst in topo.cluster_instances() {
        let Some(l) = st(&inst.key).live() else {
            continue;
        };
        let me = (inst.key.clone(), inst.endpoint());
        for (slot, dst) in &l.myself.migrating {
            // The target may have failed over since (and rejoined as a replica): the keys it
            // got are on the replica that took over, and the move goes on there.
            let dst = master_of.get(dst.as_str()).copied().unwrap_or(dst.as_str());
            // A mark on a slot this node no longer serves, now served by a third node (its
            // replica took over mid-move): the keys are there; the target's IMPORTING mark
            // leads to them below, and the hand-over clears this mark.
            let serves = l.myself.slots.iter().any(|r| r.contains(*slot));
            if !serves && owner_of.get(slot).is_some_and(|o| o != dst) {
                continue;
            }
            match key_of.get(dst) {
                Some(to) if open.insert(*slot) => push(&me, to, *slot),
                Some(_) => {}
                None => p.blockers.push(Blocker::on(
                    BlockerKind::UnknownSlotPeer,
                    &inst.key,
                    format!(
                        "slot {slot} is migrating from {} to unknown node {}; redisctl will not guess where its keys belong",
                        inst.key,
                        short(dst)
                    ),
                )),
            }
        }
        for (slot, _src) in &l.myself.importing {
            if open.contains(slot) {
                continue;
            }
            // The keys are wherever the slot is owned now (after a failover: the replica);
            // a retired master is not observed itself, only in its peers' views.
            let owner = owner_of.get(slot).map(String::as_str).or_else(|| {
                retired
                    .iter()
                    .find(|(_, l)| l.flags.master && l.slots.iter().any(|r| r.contains(*slot)))
                    .map(|(_, l)| l.id.as_str())
            });
            match owner.and_then(|o| key_of.get(o)) {
                Some(from) => {
                    open.insert(*slot);
                    push(from, &me, *slot);
                }
                None => p.blockers.push(Blocker::on(
                    BlockerKind::UnknownSlotPeer,
                    &inst.key,
                    format!(
                        "slot {slot} is being imported by {} but no known master owns it",
                        inst.key
                    ),
                )),
            }
        }
    }
    if !open.is_empty() {
        p.notes.push(Note::general(
            NoteKind::OpenSlots,
            format!(
                "{} slot(s) were left open by an interrupted migration; finishing them",
                open.len()
            ),
        ));
        return move_steps(moves);
    }

    // 2. Balance: every slot of a retired master, and each declared shard's surplus over its
    // share, goes to the shards below their share, in order.
    let n = cluster.shards.len();
    let targets: Vec<u32> = cluster.slot_allocation().iter().map(|r| r.len()).collect();
    let mut slots_of: Vec<Vec<u16>> = vec![Vec::new(); n];
    for (i, owner) in owners.iter().enumerate() {
        if let Some(id) = st(owner).id() {
            slots_of[i] = owner_of
                .iter()
                .filter(|(_, o)| o.as_str() == id)
                .map(|(s, _)| *s)
                .collect();
            slots_of[i].sort_unstable();
        }
    }
    let count_of = |i: usize| slots_of[i].len() as u32 + planned_add.get(&i).copied().unwrap_or(0);
    let mut surplus: Vec<((InstanceKey, String), u16)> = Vec::new();
    for (k, line) in &retired {
        if line.flags.master {
            let mut v: Vec<u16> = line.slots.iter().flat_map(|r| r.start..=r.end).collect();
            v.sort_unstable();
            surplus.extend(v.into_iter().map(|s| ((k.clone(), line.addr()), s)));
        }
    }
    for i in 0..n {
        let extra = count_of(i).saturating_sub(targets[i]) as usize;
        if extra > 0 {
            let from = (owners[i].clone(), endpoint_of(topo, owners[i]));
            let take = slots_of[i].len().saturating_sub(extra);
            surplus.extend(slots_of[i][take..].iter().map(|s| (from.clone(), *s)));
        }
    }
    let mut it = surplus.into_iter();
    for i in 0..n {
        let need = targets[i].saturating_sub(count_of(i));
        let to = (owners[i].clone(), endpoint_of(topo, owners[i]));
        for _ in 0..need {
            let Some((from, slot)) = it.next() else { break };
            push(&from, &to, slot);
        }
    }
    move_steps(moves)
}

/// ((source, address), (target, address), slots) → MoveSlots steps.
type Move = ((InstanceKey, String), (InstanceKey, String), Vec<u16>);

fn move_steps(moves: Vec<Move>) -> Vec<Step> {
    moves
        .into_iter()
        .map(|(f, t, v)| Step::MoveSlots {
            from: f.0,
            to: t.0,
            from_addr: f.1,
            to_addr: t.1,
            slots: ranges_of(v),
        })
        .collect()
}

fn endpoint_of(topo: &Topology, key: &InstanceKey) -> String {
    topo.cluster_instances()
        .find(|i| &i.key == key)
        .map(|i| i.endpoint())
        .unwrap_or_default()
}

/// Retire recorded nodes the topology no longer declares: replicas first, then masters
/// (which by then own no slots; the executor checks again before forgetting).
fn retirements(
    topo: &Topology,
    obs: &Observed,
    declared: &[InstanceKey],
    planned: &[Step],
    p: &mut Plan,
) -> Vec<Step> {
    let mut retired = retired_nodes(topo, obs);
    retired.sort_by_key(|(k, l)| (l.flags.master, k.clone()));
    let mut steps = Vec::new();
    for (key, line) in retired {
        if declared.contains(&key) {
            continue;
        }
        // A master is retired once this plan moves all its slots away (an interrupted move
        // is finished alone first; the rest of its slots move in the next round).
        let leaving: BTreeSet<u16> = planned
            .iter()
            .filter_map(|s| match s {
                Step::MoveSlots { from, slots, .. } if *from == key => Some(slots),
                _ => None,
            })
            .flatten()
            .flat_map(|r| r.start..=r.end)
            .collect();
        if line
            .slots
            .iter()
            .flat_map(|r| r.start..=r.end)
            .any(|s| !leaving.contains(&s))
        {
            continue;
        }
        steps.push(Step::Retire {
            node: key,
            id: line.id.clone(),
            addr: line.addr(),
        });
    }
    // Old identities of declared nodes that were recreated empty at the same address: the
    // rest of the cluster still lists them (failing). Forget them unless they own slots.
    let live_ids: HashMap<String, &str> = topo
        .cluster_instances()
        .filter_map(|i| {
            obs.nodes
                .get(&i.key)
                .and_then(|o| o.live.as_ref())
                .map(|l| (i.endpoint(), l.myself.id.as_str()))
        })
        .collect();
    let mut stale: BTreeSet<(String, String)> = BTreeSet::new();
    for o in obs.nodes.values().filter_map(|o| o.live.as_ref()) {
        for peer in &o.peers {
            let same_address = live_ids
                .get(&peer.addr())
                .is_some_and(|current| *current != peer.id);
            let replaced = obs.record.replaced.contains(&peer.id);
            if (same_address || replaced) && peer.slots.is_empty() && !peer.flags.handshake {
                stale.insert((peer.id.clone(), peer.addr()));
            }
        }
    }
    for (id, addr) in &stale {
        steps.push(Step::Forget {
            id: id.clone(),
            addr: addr.clone(),
        });
    }
    // Members nobody declared and redisctl did not create: reported only. (A node at a
    // declared address is declared, whichever host's redisctl recorded it.)
    let declared: BTreeSet<String> = topo.cluster_instances().map(|i| i.endpoint()).collect();
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    for o in obs.nodes.values().filter_map(|o| o.live.as_ref()) {
        for peer in &o.peers {
            let known = obs.record.node_ids.values().any(|id| *id == peer.id)
                || declared.contains(&peer.addr())
                || stale.iter().any(|(id, _)| *id == peer.id)
                || peer.flags.handshake;
            if !known && reported.insert(&peer.id) {
                p.notes.push(Note::general(
                    NoteKind::UndeclaredMember,
                    format!(
                        "{} ({}) is a member of this cluster that the topology does not declare and redisctl did not create; it is left alone",
                        peer.addr(),
                        peer.id
                    ),
                ));
            }
        }
    }
    steps
}

/// The blocker for a node that refused redisctl's credentials.
pub(crate) fn auth_failed(key: &InstanceKey, o: &NodeObs) -> Blocker {
    Blocker::on(
        BlockerKind::AuthFailed,
        key,
        format!(
            "{key} ({}): {}",
            o.endpoint,
            o.error.as_deref().unwrap_or("authentication failed")
        ),
    )
}

fn node_state<'a>(key: &InstanceKey, o: &'a NodeObs, obs: &Observed, p: &mut Plan) -> State<'a> {
    if o.auth_failed {
        p.blockers.push(auth_failed(key, o));
        return State::Unknown;
    }
    match (&o.process, &o.live) {
        (ProcState::Stopped | ProcState::Stale { .. }, Some(_)) => {
            p.blockers.push(Blocker::on(BlockerKind::ForeignProcess, key, format!(
                "{key}: {} answers, but redisctl did not start that process ({}); stop it or change the port",
                o.endpoint,
                match o.process {
                    ProcState::Stale { pid } => format!("its pid file names pid {pid}, which is not this instance"),
                    _ => "no pid file in its state directory".to_string(),
                }
            )));
            State::Unknown
        }
        (ProcState::Stopped | ProcState::Stale { .. }, None) if o.port_answers => {
            p.blockers.push(Blocker::on(BlockerKind::ForeignProcess, key, format!(
                "{key}: {} answers, but redisctl did not start that process ({}); stop it or change the port",
                o.endpoint,
                o.error.as_deref().unwrap_or("not a node of this deployment")
            )));
            State::Unknown
        }
        (ProcState::Stopped | ProcState::Stale { .. }, None) => {
            if o.has_nodes_conf {
                State::Unknown
            } else {
                State::StartsFresh
            }
        }
        (_, Some(l)) => {
            let recorded = obs.record.id_of(key);
            if !l.is_fresh()
                && recorded != Some(l.myself.id.as_str())
                && !(recorded.is_none() && member_of_our_cluster(&l.myself.id, obs))
            {
                p.blockers.push(Blocker::on(BlockerKind::UnrecordedNode, key, format!(
                    "{key} ({}): node {} holds data or belongs to a cluster, but redisctl has no record of creating it (state.json{}); it is reported, not touched",
                    o.endpoint,
                    short(&l.myself.id),
                    match recorded {
                        Some(r) => format!(" records {} at this address", short(r)),
                        None => String::new(),
                    }
                )));
                return State::Unknown;
            }
            State::Live(l)
        }
        (ProcState::Running { .. }, None) => {
            p.waits.push(Wait::on(
                WaitKind::NotAnswering,
                key,
                format!(
                    "{key} ({}): process is running but not answering yet: {}",
                    o.endpoint,
                    o.error.as_deref().unwrap_or("unknown error")
                ),
            ));
            State::Unknown
        }
        (ProcState::Remote, None) => {
            p.notes.push(Note::on(
                NoteKind::RemoteDown,
                key,
                format!(
                    "{key} ({}) is not answering and runs on another host: run `redisctl apply` there ({})",
                    o.endpoint,
                    o.error.as_deref().unwrap_or("no answer")
                ),
            ));
            State::Unknown
        }
    }
}

/// A declared node on another host that does not answer and that every live node listing
/// it marks failed (`fail`): the cluster itself agrees it is gone for now.
fn failed_remote(
    key: &InstanceKey,
    obs: &Observed,
    instances: &[&crate::topology::Instance],
) -> bool {
    let Some(o) = obs.nodes.get(key) else {
        return false;
    };
    if !matches!(o.process, ProcState::Remote) || o.port_answers || o.auth_failed {
        return false;
    }
    let Some(endpoint) = instances
        .iter()
        .find(|i| &i.key == key)
        .map(|i| i.endpoint())
    else {
        return false;
    };
    let lines: Vec<&NodeLine> = obs
        .nodes
        .values()
        .filter_map(|n| n.live.as_ref())
        .filter_map(|l| l.peers.iter().find(|p| p.addr() == endpoint))
        .collect();
    !lines.is_empty() && lines.iter().all(|p| p.flags.fail)
}

/// Masters whose own view claims slots that another master claims with a newer config
/// epoch, one wait per (stale, newer) pair.
fn stale_claims<'a>(lives: impl Iterator<Item = (&'a InstanceKey, &'a Live)>) -> Vec<Wait> {
    let mut claim: HashMap<u16, (&InstanceKey, &NodeLine)> = HashMap::new();
    // Ordered by the keys' text, as the waits are listed.
    type Pair<'k> = (&'k InstanceKey, &'k InstanceKey, u64, u64, usize);
    let mut pairs: BTreeMap<(String, String), Pair> = BTreeMap::new();
    for (key, l) in lives {
        if !l.myself.flags.master {
            continue;
        }
        for slot in l.myself.slots.iter().flat_map(|r| r.start..=r.end) {
            match claim.get(&slot) {
                None => {
                    claim.insert(slot, (key, &l.myself));
                }
                Some((other, line)) => {
                    let (stale, newer) = if line.config_epoch < l.myself.config_epoch {
                        ((*other, *line), (key, &l.myself))
                    } else {
                        ((key, &l.myself), (*other, *line))
                    };
                    let e = pairs
                        .entry((stale.0.to_string(), newer.0.to_string()))
                        .or_insert((
                            stale.0,
                            newer.0,
                            stale.1.config_epoch,
                            newer.1.config_epoch,
                            0,
                        ));
                    e.4 += 1;
                }
            }
        }
    }
    pairs
        .into_values()
        .map(|(stale, newer, e1, e2, n)| {
            Wait::on(WaitKind::StaleSlotClaim, stale, format!(
                "{stale} still claims {n} slot(s) that {newer} serves (config epoch {e1} vs {e2}); waiting for it to accept the newer owner"
            ))
            .related([newer.clone()])
        })
        .collect()
}

/// Several hosts each record the nodes they started; a node another host's redisctl created
/// is accepted when a node this state directory recorded lists it as a member of its
/// cluster (never a node of some other cluster at a declared address).
fn member_of_our_cluster(id: &str, obs: &Observed) -> bool {
    obs.nodes.iter().any(|(k, o)| {
        o.live.as_ref().is_some_and(|l| {
            obs.record.id_of(k) == Some(l.myself.id.as_str()) && l.peer(id).is_some()
        })
    })
}

/// "a:1, b:2" for a step's text.
fn names(keys: &[InstanceKey]) -> String {
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(host: &str, port: u16) -> InstanceKey {
        InstanceKey {
            host: host.into(),
            port,
        }
    }

    /// A host keeps the blockers and waits about its own instances only. The filter used to
    /// look for a local node's name in the text: host `web1` kept the blockers of
    /// `eu-web1:7000`, and `h:700` those of `h:7000`.
    #[test]
    fn a_host_keeps_only_findings_about_its_own_instances_web1_is_not_eu_web1() {
        let (web1, eu_web1) = (key("web1", 7000), key("eu-web1", 7000));
        let (h700, h7000) = (key("h", 700), key("h", 7000));
        let blocked = |k: &InstanceKey| {
            Blocker::on(
                BlockerKind::ForeignProcess,
                k,
                format!(
                    "{k}: 127.0.0.1:{} answers, but redisctl did not start it",
                    k.port
                ),
            )
        };
        let plan = Plan {
            steps: vec![
                Step::Start { node: web1.clone() },
                Step::Start {
                    node: eu_web1.clone(),
                },
                Step::Start {
                    node: h7000.clone(),
                },
                Step::WaitConverged {
                    nodes: vec![web1.clone()],
                },
            ],
            blockers: vec![blocked(&eu_web1), blocked(&h7000), blocked(&web1)],
            waits: vec![
                Wait::on(WaitKind::NotAnswering, &h7000, format!("{h7000}: loading")),
                // Names a local node as the newer owner: kept.
                Wait::on(
                    WaitKind::StaleSlotClaim,
                    &eu_web1,
                    format!("{eu_web1} still claims slots {web1} serves"),
                )
                .related([web1.clone()]),
            ],
            notes: vec![Note::general(NoteKind::OpenSlots, "1 slot open")],
            partial: false,
        };
        let (mine, theirs) = plan.host_part(&[&web1, &h700]);
        assert_eq!(mine.steps, [Step::Start { node: web1.clone() }]);
        assert_eq!(theirs.len(), 3);
        let about: Vec<_> = mine.blockers.iter().map(|b| b.instance.clone()).collect();
        assert_eq!(about, [Some(web1.clone())]);
        assert_eq!(mine.waits.len(), 1);
        assert_eq!(mine.waits[0].kind, WaitKind::StaleSlotClaim);
        assert_eq!(mine.notes.len(), 1, "notes are for every host");
    }
}
