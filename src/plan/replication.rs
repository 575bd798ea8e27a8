//! Is a replica in sync with its master? One answer for the planner (`--restore-roles`), the
//! executor (`failover`, `drain`, `undrain`) and `status`, read from the two nodes' INFO
//! replication fields. It fails closed: an offset or link state that is missing or unreadable
//! is `Unknown`, never "in sync" (a missing master offset used to read as 0, so any replica
//! looked caught up). Pure.
//!
//! (Whether a replica of a master that *died* may replace it is another question, with its
//! own rule: plan/restart.rs.)

use std::collections::HashMap;

/// Replication offset distance within which a replica counts as in sync for a planned
/// failover (bytes).
pub const IN_SYNC_BYTES: i64 = 1 << 20;

/// INFO fields of one node.
pub type Info = HashMap<String, String>;

/// What could not be read, so the answer is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unknown {
    #[error("the master reports no master_repl_offset")]
    MasterOffset,
    #[error("the replica reports no slave_repl_offset")]
    ReplicaOffset,
    #[error("the replica reports no master_link_status")]
    Link,
}

fn number(info: &Info, field: &str) -> Option<i64> {
    info.get(field).and_then(|v| v.parse().ok())
}

/// How many bytes of the master's replication stream the replica has not got yet (negative
/// when the master's figure is older than the replica's, read a moment earlier).
pub fn lag(master: &Info, replica: &Info) -> Result<i64, Unknown> {
    let m = number(master, "master_repl_offset").ok_or(Unknown::MasterOffset)?;
    let r = number(replica, "slave_repl_offset").ok_or(Unknown::ReplicaOffset)?;
    Ok(m - r)
}

/// Whether the replica's link is up.
pub fn link_up(replica: &Info) -> Result<bool, Unknown> {
    match replica.get("master_link_status").map(String::as_str) {
        Some(s) => Ok(s == "up"),
        None => Err(Unknown::Link),
    }
}

/// The replica's link is up and it is within `IN_SYNC_BYTES` of the master.
pub fn in_sync(master: &Info, replica: &Info) -> Result<bool, Unknown> {
    Ok(link_up(replica)? && lag(master, replica)? <= IN_SYNC_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pairs: &[(&str, &str)]) -> Info {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_linked_replica_close_behind_is_in_sync_and_a_distant_one_is_not() {
        let m = info(&[("master_repl_offset", "5000000")]);
        let near = info(&[
            ("master_link_status", "up"),
            ("slave_repl_offset", "4999000"),
        ]);
        let far = info(&[("master_link_status", "up"), ("slave_repl_offset", "1000")]);
        let down = info(&[
            ("master_link_status", "down"),
            ("slave_repl_offset", "5000000"),
        ]);
        assert_eq!(in_sync(&m, &near), Ok(true));
        assert_eq!(lag(&m, &near), Ok(1000));
        assert_eq!(in_sync(&m, &far), Ok(false));
        assert_eq!(in_sync(&m, &down), Ok(false));
    }

    /// The old checks read a missing offset as 0: a master that reported none made every
    /// replica look in sync.
    #[test]
    fn a_missing_offset_is_unknown_never_in_sync() {
        let r = info(&[("master_link_status", "up"), ("slave_repl_offset", "42")]);
        assert_eq!(in_sync(&Info::new(), &r), Err(Unknown::MasterOffset));
        let garbled = info(&[("master_repl_offset", "x")]);
        assert_eq!(in_sync(&garbled, &r), Err(Unknown::MasterOffset));
        let m = info(&[("master_repl_offset", "42")]);
        let no_offset = info(&[("master_link_status", "up")]);
        assert_eq!(in_sync(&m, &no_offset), Err(Unknown::ReplicaOffset));
        let no_link = info(&[("slave_repl_offset", "42")]);
        assert_eq!(in_sync(&m, &no_link), Err(Unknown::Link));
    }
}
