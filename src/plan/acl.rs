//! ACL users that drifted from the topology: one `ACL SETUSER` step per instance, live, no
//! restart. Pure: it reads what observe/acl.rs found.

use super::{Plan, Step};
use crate::observe::Observed;
use crate::topology::Topology;

pub fn plan(topo: &Topology, obs: &Observed) -> Plan {
    let mut p = Plan::default();
    for inst in topo.instances() {
        let Some(o) = obs.nodes.get(&inst.key) else {
            continue;
        };
        if o.acl_drift.is_empty() {
            continue;
        }
        p.steps.push(Step::AclSetUser {
            node: inst.key.clone(),
            users: o.acl_drift.iter().map(|d| d.user.clone()).collect(),
            why: o
                .acl_drift
                .iter()
                .map(|d| format!("{}: {}", d.user, d.why))
                .collect(),
        });
    }
    p
}
