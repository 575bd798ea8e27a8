//! Typed findings of a planning run: what the planner refuses to act on (blockers), what it
//! waits for (waits) and what the operator should know (notes). Each finding says what kind
//! of condition it is and which instances, shard or group it is about, so callers filter by
//! key (`concerns`) and by kind, never by text; `Display` gives the sentence for people and
//! serde the JSON of `plan --output json`. Modelled on omicron's planning report
//! (nexus/types/src/deployment/planning_report.rs): a value per condition, not a string.
//!
//! Owns no decisions: the planner builds these; nothing here looks at live state.

use std::fmt;

use serde::Serialize;

use crate::topology::InstanceKey;

/// Conditions redisctl refuses to act on; `apply` stops and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockerKind {
    /// A declared instance is missing from the observation.
    NotObserved,
    /// The instance refused redisctl's password.
    AuthFailed,
    /// Something redisctl did not start answers on a declared port.
    ForeignProcess,
    /// A node holds data or belongs to a cluster, and state.json has no record of it.
    UnrecordedNode,
    /// Several masters of one shard own slots.
    SeveralMasters,
    /// A declared replica is a master owning slots.
    MasterOwningSlots,
    /// A replica holds the only live copy of slots whose master vanished.
    OnlyLiveCopy,
    /// Making the instance a replica would delete the keys it holds.
    WouldDiscardKeys,
    /// A slot migrates to, or is imported from, a node nobody knows.
    UnknownSlotPeer,
    /// A down master cannot be restarted safely now (crash-safe restart rule).
    UnsafeRestart,
    /// `drain` would leave slots or a group unserved, or Sentinels short of a failover
    /// (`--force` drains anyway).
    DrainRisk,
    /// A master has no in-sync replica to hand its role to (rolling restart).
    NoSafeHandover,
    /// The failover target is not (known to be) in sync with its master (`--force`).
    ReplicaBehind,
    /// The failover target is a master already.
    AlreadyMaster,
    /// The instance is not running or does not answer.
    NotRunning,
}

/// Conditions that clear by themselves; `apply` plans again until they are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    /// The process runs but does not answer yet (starting, loading its data).
    NotAnswering,
    /// A master still claims slots a newer owner serves (it has not heard of the failover).
    StaleSlotClaim,
    /// A replica started with priority 0 is still syncing from a master that answers.
    ReplicaSyncing,
    /// A live TLS mode switch waits for every cluster node to answer with its TLS port open.
    TlsSwitch,
}

/// Facts the operator should know that need no step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// An instance on another host does not answer; its host's `apply` starts it.
    RemoteDown,
    /// A replica was still syncing when apply's wait ran out.
    StillSyncing,
    /// How a down master comes back (restart in place, or a promotion first).
    Restart,
    /// Slots left open by an interrupted migration are being finished.
    OpenSlots,
    /// A cluster member nobody declared and redisctl did not create.
    UndeclaredMember,
    /// Sentinel is in charge of a group right now (failover running, master down).
    SentinelBusy,
    /// Every member of a group is a replica; the freshest is promoted.
    ReplicationLoop,
    /// A stale master holds keys; Sentinel decides.
    SentinelDecides,
    /// The master is not the preferred one (after a failover).
    NotPreferredMaster,
    /// `--restore-roles` cannot move mastership back (yet).
    RolesNotRestored,
    /// A slot move an earlier apply journaled and did not finish is resumed (apply).
    ResumedMove,
    /// Steps for the cluster or other hosts are left to their `apply` (a host that is not the
    /// coordinator).
    LeftToOtherHosts,
    /// A risk `drain --force` accepted.
    AcceptedRisk,
    /// What stays degraded until `undrain` (a master without a replica, a group without one).
    Degraded,
    /// Roles are restored in a later round of `undrain`, once the instances have caught up.
    RolesLater,
}

/// One finding: its kind, what it is about, and the sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding<K> {
    pub kind: K,
    /// The instance it is about; none when it is about a shard or group as a whole.
    pub instance: Option<InstanceKey>,
    /// Other instances it names (the newer owner, the other masters of a shard, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<InstanceKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub message: String,
}

pub type Blocker = Finding<BlockerKind>;
pub type Wait = Finding<WaitKind>;
pub type Note = Finding<NoteKind>;

impl<K> Finding<K> {
    /// A finding about one instance.
    pub fn on(kind: K, instance: &InstanceKey, message: impl Into<String>) -> Self {
        Finding {
            kind,
            instance: Some(instance.clone()),
            related: Vec::new(),
            shard: None,
            group: None,
            message: message.into(),
        }
    }

    /// A finding about no instance in particular (a shard, a group, the deployment).
    pub fn general(kind: K, message: impl Into<String>) -> Self {
        Finding {
            kind,
            instance: None,
            related: Vec::new(),
            shard: None,
            group: None,
            message: message.into(),
        }
    }

    pub fn related(mut self, keys: impl IntoIterator<Item = InstanceKey>) -> Self {
        self.related.extend(keys);
        self
    }

    pub fn in_shard(mut self, number: u32) -> Self {
        self.shard = Some(number);
        self
    }

    pub fn in_group(mut self, name: &str) -> Self {
        self.group = Some(name.to_string());
        self
    }

    /// Every instance the finding names, the one it is about first.
    pub fn instances(&self) -> impl Iterator<Item = &InstanceKey> {
        self.instance.iter().chain(self.related.iter())
    }

    /// Whether the finding names one of `keys` (compared as keys, never as text).
    pub fn concerns(&self, keys: &[&InstanceKey]) -> bool {
        self.instances().any(|k| keys.contains(&k))
    }
}

impl<K> fmt::Display for Finding<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The findings' sentences, for error messages and plain lists.
pub fn lines<K>(findings: &[Finding<K>]) -> Vec<String> {
    findings.iter().map(ToString::to_string).collect()
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

    #[test]
    fn json_names_the_kind_and_the_instance() {
        let b = Blocker::on(BlockerKind::ForeignProcess, &key("web1", 7000), "x answers")
            .related([key("web2", 7001)])
            .in_shard(2);
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "kind": "foreign_process",
                "instance": {"host": "web1", "port": 7000},
                "related": [{"host": "web2", "port": 7001}],
                "shard": 2,
                "message": "x answers",
            })
        );
        assert_eq!(b.to_string(), "x answers");
    }

    #[test]
    fn concerns_compares_keys_not_text() {
        let b = Blocker::on(
            BlockerKind::AuthFailed,
            &key("eu-web1", 7000),
            "eu-web1:7000",
        );
        assert!(!b.concerns(&[&key("web1", 7000)]));
        let b = Blocker::on(BlockerKind::AuthFailed, &key("h", 7000), "h:7000");
        assert!(!b.concerns(&[&key("h", 700)]));
        assert!(b.concerns(&[&key("h", 7000)]));
    }
}
