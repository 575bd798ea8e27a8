//! Gates: poll the real condition (never a fixed sleep) until it holds, bounded by the gate
//! timeout, naming what is still missing when it expires.

use super::*;

impl Context {
    pub(super) async fn ensure_membership(
        &self,
        index: usize,
        nodes: &[InstanceKey],
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        // Slots move next: every node must also serve (a node refuses imports while
        // its cluster_state is not ok, e.g. in the first 2 s after it starts) -- except
        // a node importing slots: its view of them may have lost the owner (see
        // migrate::repair_target_view), and the move about to run repairs it.
        self.gate(
            index,
            nodes,
            "every node sees every other as connected and reports cluster_state:ok",
            on_event,
            |lives| {
                let mut missing = converge::membership_problems(lives);
                missing.extend(
                    lives
                        .iter()
                        .filter(|(_, l)| l.cluster_state != "ok" && l.myself.importing.is_empty())
                        .map(|(k, l)| format!("{k} reports cluster_state:{}", l.cluster_state)),
                );
                missing
            },
        )
        .await
    }

    pub(super) async fn ensure_groups_settled(
        &self,
        index: usize,
        groups: &[String],
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        let what = format!(
            "{} is replicated as declared and known to every Sentinel",
            groups.join(", ")
        );
        self.gate_observed(index, &what, on_event, |obs| {
            crate::plan::group_problems(&self.topology, obs)
        })
        .await
    }

    pub(super) async fn ensure_converged(
        &self,
        index: usize,
        nodes: &[InstanceKey],
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StepError> {
        self.gate(
            index,
            nodes,
            "all nodes agree on the slot map and every replica is in sync",
            on_event,
            |lives| converge::problems(&self.topology, lives),
        )
        .await
    }

    /// One poll of a gate: done when nothing is missing; past the deadline, an error naming
    /// everything still missing; otherwise report progress and poll again.
    pub(super) fn settled(
        &self,
        index: usize,
        what: &str,
        deadline: Instant,
        missing: Vec<String>,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<bool, StepError> {
        if missing.is_empty() {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Err(StepError::Gate(ExecError::Gate {
                secs: self.gate_timeout.as_secs(),
                what: what.to_string(),
                missing: missing.join("\n  - "),
            }));
        }
        on_event(Event::StepWaiting {
            index,
            missing: missing.len(),
            first: missing[0].clone(),
        });
        Ok(false)
    }

    /// Re-observe the whole deployment until `check` finds nothing missing, or the deadline
    /// passes.
    pub(super) async fn gate_observed(
        &self,
        index: usize,
        what: &str,
        on_event: &(dyn Fn(Event) + Sync),
        check: impl Fn(&Observed) -> Vec<String>,
    ) -> Result<(), StepError> {
        let deadline = Instant::now() + self.gate_timeout;
        loop {
            let obs = self.observe().await;
            if self.settled(index, what, deadline, check(&obs), on_event)? {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Poll all `nodes` until `check` finds nothing missing, or the deadline passes.
    pub(super) async fn gate(
        &self,
        index: usize,
        nodes: &[InstanceKey],
        what: &str,
        on_event: &(dyn Fn(Event) + Sync),
        check: impl Fn(&[(&InstanceKey, &Live)]) -> Vec<String>,
    ) -> Result<(), StepError> {
        let deadline = Instant::now() + self.gate_timeout;
        self.gate_until(index, nodes, what, deadline, on_event, check)
            .await
    }

    /// `gate` with its own deadline.
    pub(super) async fn gate_until(
        &self,
        index: usize,
        nodes: &[InstanceKey],
        what: &str,
        deadline: Instant,
        on_event: &(dyn Fn(Event) + Sync),
        check: impl Fn(&[(&InstanceKey, &Live)]) -> Vec<String>,
    ) -> Result<(), StepError> {
        let mut conns: Vec<Option<Conn>> = (0..nodes.len()).map(|_| None).collect();
        loop {
            let mut fetched: Vec<(InstanceKey, Result<Live, String>)> = Vec::new();
            let futs = nodes
                .iter()
                .zip(conns.iter_mut())
                .map(|(k, slot)| async move {
                    if slot.is_none() {
                        *slot = self.conn(k).await.ok();
                    }
                    let r = match slot {
                        Some(c) => observe::fetch_on(c).await.map_err(|e| e.to_string()),
                        None => Err(format!(
                            "{k} ({}) is not answering",
                            self.target(k).endpoint
                        )),
                    };
                    if r.is_err() {
                        *slot = None;
                    }
                    (k.clone(), r)
                });
            fetched.extend(futures::future::join_all(futs).await);
            let mut missing: Vec<String> = fetched
                .iter()
                .filter_map(|(k, r)| r.as_ref().err().map(|e| format!("{k}: {e}")))
                .collect();
            let lives: Vec<(&InstanceKey, &Live)> = fetched
                .iter()
                .filter_map(|(k, r)| r.as_ref().ok().map(|l| (k, l)))
                .collect();
            if missing.is_empty() {
                missing = check(&lives);
            }
            if self.settled(index, what, deadline, missing, on_event)? {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
