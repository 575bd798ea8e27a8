//! ACL users that drifted from the topology: one `ACL SETUSER` step per instance, live, no
//! restart. Pure: it reads what observe/acl.rs found.
//!
//! Rotating the password of redisctl's internal users (`redisctl-replication`,
//! `redisctl-sentinel`) is ordered so that both sides accept the old and the new password
//! before either switches, whatever the operator declared (two files, or one file changed):
//!
//! 1. add: every instance whose user lacks a declared password gets it added, keeping the
//!    passwords it has (`AclAddPasswords`); nothing else of that user changes this round;
//! 2. switch: once no observed instance lacks one, replicas switch `masterauth`
//!    (`SetMasterAuth`) and Sentinels `auth-pass` (`SentinelAuthPass`);
//! 3. remove: once no observed instance or local Sentinel uses an old password, the user is
//!    set whole (`AclSetUser`), which drops the passwords no longer declared.
//!
//! Each phase is one round of `apply`; a replica or Sentinel that reconnects in between always
//! finds its password accepted.

use super::{Plan, Step};
use crate::observe::Observed;
use crate::topology::Topology;
use crate::topology::users::{REPLICATION_USER, SENTINEL_USER};

const INTERNAL: [&str; 2] = [REPLICATION_USER, SENTINEL_USER];

pub fn plan(topo: &Topology, obs: &Observed) -> Plan {
    let mut p = Plan::default();
    let data = || {
        topo.instances()
            .filter_map(|i| Some((i, obs.nodes.get(&i.key)?)))
    };
    let adding = |user: &str| {
        data().any(|(_, o)| o.acl_drift.iter().any(|d| d.user == user && d.to_add > 0))
    };
    let masterauth_stale = data().any(|(_, o)| !o.stale_auth.is_empty());
    let sentinels_stale = topo
        .sentinels()
        .filter_map(|s| obs.nodes.get(&s.key))
        .any(|o| !o.stale_auth.is_empty());
    // Until every side uses the new password, the old one must stay accepted.
    let switching = |user: &str| {
        adding(user)
            || if user == REPLICATION_USER {
                masterauth_stale
            } else {
                sentinels_stale
            }
    };

    // Phase 1: add.
    for (inst, o) in data() {
        for d in &o.acl_drift {
            if INTERNAL.contains(&d.user.as_str()) && d.to_add > 0 {
                p.steps.push(Step::AclAddPasswords {
                    node: inst.key.clone(),
                    user: d.user.clone(),
                });
            }
        }
    }
    // Phase 2: switch, once every instance accepts the new password.
    if !adding(REPLICATION_USER) {
        for (inst, o) in data() {
            if !o.stale_auth.is_empty() {
                p.steps.push(Step::SetMasterAuth {
                    node: inst.key.clone(),
                });
            }
        }
    }
    if !adding(SENTINEL_USER) {
        for s in topo.sentinels() {
            if let Some(o) = obs.nodes.get(&s.key)
                && !o.stale_auth.is_empty()
            {
                p.steps.push(Step::SentinelAuthPass {
                    sentinel: s.key.clone(),
                    groups: o.stale_auth.clone(),
                });
            }
        }
    }
    // Phase 3 (and every other user): set whole.
    for (inst, o) in data() {
        let drift: Vec<_> = o
            .acl_drift
            .iter()
            .filter(|d| {
                !(INTERNAL.contains(&d.user.as_str())
                    && (d.to_add > 0 || (d.to_remove > 0 && switching(&d.user))))
            })
            .collect();
        if drift.is_empty() {
            continue;
        }
        p.steps.push(Step::AclSetUser {
            node: inst.key.clone(),
            users: drift.iter().map(|d| d.user.clone()).collect(),
            why: drift
                .iter()
                .map(|d| format!("{}: {}", d.user, d.why))
                .collect(),
        });
    }
    p
}
