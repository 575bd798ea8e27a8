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
//!
//! redisctl's own passwords (`auth.password_files: [old, new]`) go through the same phases:
//! the `redisctl` and `default` users of every data node and each Sentinel's default user
//! (its `requirepass`) get the new one added first; then replicas (`masterauth`) and
//! Sentinels (`auth-pass` without ACL users, `sentinel-pass` towards the other Sentinels,
//! `SentinelPeerPass`) switch to the last one; the old one is dropped only once the list
//! drops it and nothing sends it any more. redisctl itself authenticates with the first
//! listed password an instance accepts (the old one, until the list drops it).

use super::{Plan, Step};
use crate::observe::Observed;
use crate::topology::Topology;
use crate::topology::users::{ADMIN_USER, REPLICATION_USER, SENTINEL_USER};

const INTERNAL: [&str; 2] = [REPLICATION_USER, SENTINEL_USER];
/// The users holding redisctl's own passwords (`auth.password_files`): rotated in the same
/// phases, so that nothing is dropped while anything may still send it.
const ADMIN: [&str; 2] = ["default", ADMIN_USER];

pub fn plan(topo: &Topology, obs: &Observed) -> Plan {
    let mut p = Plan::default();
    let data = || {
        topo.instances()
            .filter_map(|i| Some((i, obs.nodes.get(&i.key)?)))
    };
    let sentinels = || {
        topo.sentinels()
            .filter_map(|s| Some((s, obs.nodes.get(&s.key)?)))
    };
    let ordered = |user: &str| INTERNAL.contains(&user) || ADMIN.contains(&user);
    // Without ACL users replicas and Sentinels authenticate as the default user, with
    // redisctl's own password.
    let acl = topo.auth.as_ref().is_some_and(|a| a.acl.is_some());
    let (repl_user, sent_user) = if acl {
        (REPLICATION_USER, SENTINEL_USER)
    } else {
        ("default", "default")
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
    let sentinels_stale = sentinels().any(|(_, o)| !stale_groups(o).is_empty());
    // Until every side uses the new password, the old one must stay accepted.
    let switching = |user: &str| {
        adding(user)
            || (user == repl_user && masterauth_stale)
            || (user == sent_user && sentinels_stale)
    };
    // The Sentinels' own password (requirepass): each Sentinel's default user, and what
    // each sends to the others (sentinel-pass).
    let sentinel_adding = sentinels().any(|(_, o)| o.acl_drift.iter().any(|d| d.to_add > 0));
    let peer_pass_stale = sentinels().any(|(_, o)| o.peer_pass_stale);

    // Phase 1: add.
    for (inst, o) in data() {
        for d in &o.acl_drift {
            if ordered(&d.user) && d.to_add > 0 {
                p.steps.push(Step::AclAddPasswords {
                    node: inst.key.clone(),
                    user: d.user.clone(),
                });
            }
        }
    }
    for (s, o) in sentinels() {
        for d in o.acl_drift.iter().filter(|d| d.to_add > 0) {
            p.steps.push(Step::AclAddPasswords {
                node: s.key.clone(),
                user: d.user.clone(),
            });
        }
    }
    // Phase 2: switch, once every instance accepts the new password.
    if !adding(repl_user) {
        for (inst, o) in data() {
            if !o.stale_auth.is_empty() {
                p.steps.push(Step::SetMasterAuth {
                    node: inst.key.clone(),
                });
            }
        }
    }
    if !adding(sent_user) {
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
    if !sentinel_adding {
        for (s, o) in sentinels() {
            if o.peer_pass_stale {
                p.steps.push(Step::SentinelPeerPass {
                    sentinel: s.key.clone(),
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
                !(ordered(&d.user) && (d.to_add > 0 || (d.to_remove > 0 && switching(&d.user))))
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
    for (s, o) in sentinels() {
        let drift: Vec<_> = o
            .acl_drift
            .iter()
            .filter(|d| d.to_add == 0 && !(d.to_remove > 0 && (sentinel_adding || peer_pass_stale)))
            .collect();
        if drift.is_empty() {
            continue;
        }
        p.steps.push(Step::AclSetUser {
            node: s.key.clone(),
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
            peer_pass_stale: false,
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

    /// Without ACL users: the steps for members (6379, 6380) and the Sentinel, whose states
    /// are (default user's drift, stale masterauth / auth-pass, sentinel-pass stale).
    fn admin_kinds(
        members: [(Option<(usize, usize)>, bool); 2],
        sentinel: (Option<(usize, usize)>, bool, bool),
    ) -> Vec<String> {
        let src = "name: t\nhosts:\n  - {name: a, address: 127.0.0.1}\nauth:\n  password_files: [old.pw, new.pw]\ngroups:\n  - name: g\n    master: {host: a, port: 6379}\n    replicas: [{host: a, port: 6380}]\nsentinel:\n  instances: [{host: a, port: 26379}]\n  quorum: 1\n";
        let t = crate::topology::parse(src, "t.yaml", std::path::Path::new("/x"))
            .unwrap()
            .topology;
        let d = |x: Option<(usize, usize)>| {
            x.map(|(a, r)| drift("default", a, r))
                .into_iter()
                .collect::<Vec<_>>()
        };
        let mut obs = Observed::default();
        let keys: Vec<_> = t.instances().map(|i| i.key.clone()).collect();
        for (k, (dr, stale)) in keys.into_iter().zip(members) {
            obs.nodes
                .insert(k, node(d(dr), if stale { &["masterauth"] } else { &[] }));
        }
        let s = t.sentinels().next().unwrap().key.clone();
        let mut so = node(d(sentinel.0), if sentinel.1 { &["g"] } else { &[] });
        so.peer_pass_stale = sentinel.2;
        obs.nodes.insert(s, so);
        plan(&t, &obs)
            .steps
            .iter()
            .map(|s| format!("{} {}", s.kind(), s.host_node().map_or(0, |n| n.port)))
            .collect()
    }

    #[test]
    fn redisctls_own_password_is_added_everywhere_then_switched_then_dropped() {
        // [old, new] declared: members and the Sentinel lack the new one. Only adds.
        assert_eq!(
            admin_kinds(
                [(Some((1, 0)), true), (Some((1, 0)), true)],
                (Some((1, 0)), true, true)
            ),
            [
                "acl_add_passwords 6379",
                "acl_add_passwords 6380",
                "acl_add_passwords 26379"
            ]
        );
        // One member still lacks it: the Sentinel's peers may switch (every Sentinel accepts
        // it), the replicas and auth-pass not yet.
        assert_eq!(
            admin_kinds([(None, true), (Some((1, 0)), true)], (None, true, true)),
            ["acl_add_passwords 6380", "sentinel_peer_pass 26379"]
        );
        // Everyone accepts both: everyone switches.
        assert_eq!(
            admin_kinds([(None, true), (None, true)], (None, true, true)),
            [
                "set_masterauth 6379",
                "set_masterauth 6380",
                "sentinel_auth_pass 26379",
                "sentinel_peer_pass 26379"
            ]
        );
        // [new] declared while a replica still sends the old one: nothing is dropped yet.
        assert_eq!(
            admin_kinds(
                [(Some((0, 1)), false), (Some((0, 1)), true)],
                (Some((0, 1)), false, true)
            ),
            ["set_masterauth 6380", "sentinel_peer_pass 26379"]
        );
        // Nobody sends it any more: the old one goes everywhere.
        assert_eq!(
            admin_kinds(
                [(Some((0, 1)), false), (Some((0, 1)), false)],
                (Some((0, 1)), false, false)
            ),
            [
                "acl_set_user 6379",
                "acl_set_user 6380",
                "acl_set_user 26379"
            ]
        );
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
