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
    // Groups the topology still declares (one being removed gets SENTINEL REMOVE instead).
    let stale_groups = |o: &crate::observe::NodeObs| -> Vec<String> {
        o.stale_auth
            .iter()
            .filter(|g| topo.groups.iter().any(|d| &d.name == *g))
            .cloned()
            .collect()
    };
    let sentinels_stale = topo
        .sentinels()
        .filter_map(|s| obs.nodes.get(&s.key))
        .any(|o| !stale_groups(o).is_empty());
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
            let groups = obs.nodes.get(&s.key).map(stale_groups).unwrap_or_default();
            if !groups.is_empty() {
                p.steps.push(Step::SentinelAuthPass {
                    sentinel: s.key.clone(),
                    groups,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::NodeObs;
    use crate::observe::acl::AclDrift;
    use crate::supervise::ProcState;

    fn topo() -> Topology {
        let src = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\nauth:\n  password_file: pw\n  users: []\n  replication_password_files: [new.pw]\n  sentinel_password_files: [new.pw]\ngroups:\n  - name: g\n    master: {host: a, port: 6379}\n    replicas: [{host: a, port: 6380}]\nsentinel:\n  instances: [{host: a, port: 26379}]\n  quorum: 1\n";
        crate::topology::parse(src, "t.yaml", std::path::Path::new("/x"))
            .unwrap()
            .topology
    }

    fn node(drift: Vec<AclDrift>, stale: &[&str]) -> NodeObs {
        NodeObs {
            endpoint: String::new(),
            process: ProcState::Remote,
            live: None,
            error: None,
            auth_failed: false,
            port_answers: true,
            has_nodes_conf: false,
            config_drift: false,
            repl: None,
            sentinel: None,
            live_drift: Vec::new(),
            acl_drift: drift,
            stale_auth: stale.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn drift(user: &str, to_add: usize, to_remove: usize) -> AclDrift {
        AclDrift {
            user: user.into(),
            why: "passwords differ".into(),
            to_add,
            to_remove,
        }
    }

    /// The steps' kinds for members (6379, 6380) and the Sentinel in the given states.
    fn kinds(members: [(Vec<AclDrift>, &[&str]); 2], sentinel: &[&str]) -> Vec<String> {
        let t = topo();
        let mut obs = Observed::default();
        let keys: Vec<_> = t.instances().map(|i| i.key.clone()).collect();
        for (k, (d, s)) in keys.into_iter().zip(members) {
            obs.nodes.insert(k, node(d, s));
        }
        let s = t.sentinels().next().unwrap().key.clone();
        obs.nodes.insert(s, node(Vec::new(), sentinel));
        plan(&t, &obs)
            .steps
            .iter()
            .map(|s| match s {
                Step::AclAddPasswords { node, user } => format!("add {user} {}", node.port),
                Step::AclSetUser { node, users, .. } => {
                    format!("set {} {}", users.join(","), node.port)
                }
                Step::SetMasterAuth { node } => format!("masterauth {}", node.port),
                Step::SentinelAuthPass { groups, .. } => format!("auth-pass {}", groups.join(",")),
                other => format!("{other}"),
            })
            .collect()
    }

    #[test]
    fn nobody_switches_before_every_member_accepts_and_old_passwords_go_last() {
        let r = REPLICATION_USER;
        // One file replaced: 6380 still lacks the new password, 6379 has it already. Only
        // the add; nothing switches or is removed yet.
        assert_eq!(
            kinds(
                [
                    (vec![drift(r, 0, 1)], &["masterauth"]),
                    (vec![drift(r, 1, 1)], &["masterauth"])
                ],
                &[]
            ),
            ["add redisctl-replication 6380"]
        );
        // Everyone accepts it: switch, keep the old one.
        assert_eq!(
            kinds(
                [
                    (vec![drift(r, 0, 1)], &["masterauth"]),
                    (vec![drift(r, 0, 1)], &[])
                ],
                &[]
            ),
            ["masterauth 6379"]
        );
        // Everyone switched: the old password goes.
        assert_eq!(
            kinds(
                [(vec![drift(r, 0, 1)], &[]), (vec![drift(r, 0, 1)], &[])],
                &[]
            ),
            [
                "set redisctl-replication 6379",
                "set redisctl-replication 6380"
            ]
        );
        // The Sentinel user likewise, independently of the replication user.
        let s = SENTINEL_USER;
        assert_eq!(
            kinds(
                [
                    (vec![drift(s, 1, 0), drift(r, 0, 1)], &[]),
                    (vec![drift(s, 0, 1)], &[])
                ],
                &["g"]
            ),
            [
                "add redisctl-sentinel 6379",
                "set redisctl-replication 6379"
            ]
        );
        assert_eq!(
            kinds(
                [(vec![drift(s, 0, 1)], &[]), (vec![drift(s, 0, 1)], &[])],
                &["g"]
            ),
            ["auth-pass g"]
        );
        assert_eq!(
            kinds([(vec![drift(s, 0, 1)], &[]), (vec![], &[])], &[]),
            ["set redisctl-sentinel 6379"]
        );
    }
}
