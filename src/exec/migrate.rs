//! The slot-migration engine: moves slots with their keys from one master to another using
//! the cluster's own protocol, fast and safe to interrupt.
//!
//! Per chunk of slots (several in flight): IMPORTING on the target, MIGRATING on the source,
//! then GETKEYSINSLOT + `MIGRATE … KEYS` batches (many keys per round trip, pipelined) until
//! the source is empty, then SETSLOT NODE on the target, the source and every other master.
//! A slot already owned by the target counts as moved, so a move interrupted at any point is
//! finished by running it again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

mod atomic;

use crate::observe::client::{ClientError, Conn, Credentials};
use crate::observe::resp::{ErrorCode, ServerError, Value};
use crate::topology::slots::SlotRange;

/// Slots handled together: one pipeline of SETSLOTs and GETKEYSINSLOTs for all of them.
const CHUNK: usize = 128;
/// Keys per GETKEYSINSLOT and per MIGRATE to start with.
const BATCH: usize = 1000;
/// Transient MIGRATE failures tolerated per move before giving up (the move resumes later).
const MAX_RETRIES: u32 = 100;

pub struct Job<'a> {
    pub from_addr: &'a str,
    pub to_addr: &'a str,
    pub slots: Vec<u16>,
    pub password: Option<&'a Credentials>,
    /// Overwrite keys that already exist on the target (BUSYKEY) with the source's values.
    pub replace: bool,
    /// Other nodes to tell about the new owner (replicas refuse; that is fine).
    pub others: Vec<String>,
    pub call_timeout: Duration,
    pub method: Method,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub slots_done: usize,
    pub slots_total: usize,
    pub keys_moved: u64,
    pub elapsed: Duration,
}

fn text(v: &Value) -> String {
    match v {
        Value::Error(e) => e.to_string(),
        other => other.as_text().unwrap_or_default(),
    }
}

/// How slots move.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Atomic slot migration when both nodes offer it, else the classic protocol.
    #[default]
    Auto,
    /// Only atomic slot migration (Valkey ≥ 9.0 `CLUSTER MIGRATESLOTS`); refuse otherwise.
    Atomic,
    /// Only the classic protocol (SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE).
    Legacy,
}

/// Why a move stopped.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    /// Keys of moving slots hold other values on the target: a refusal, not a failure.
    #[error("{0}")]
    Conflict(Conflict),
    #[error("{0}")]
    Failed(String),
}

impl From<String> for MoveError {
    fn from(e: String) -> Self {
        MoveError::Failed(e)
    }
}

/// Keys that exist on both sides with different values (`DUMP` compared), by slot. Every other
/// slot of the move was handed over; these stay open (MIGRATING on the source, IMPORTING on
/// the target) and nothing was overwritten.
#[derive(Debug)]
pub struct Conflict {
    pub source: String,
    pub target: String,
    pub keys: BTreeMap<u16, Vec<Vec<u8>>>,
    /// Node ids the target still imports conflicting slots from: their owner before the
    /// source took over mid-move, not (yet) seen replicating the source (down?). There the
    /// source's copies may be stale and `--replace` is never the way out.
    pub former: BTreeSet<String>,
}

/// Keys named in a refusal; the rest are counted.
const NAMED_KEYS: usize = 10;

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all: Vec<String> = self
            .keys
            .values()
            .flatten()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        let mut names = all
            .iter()
            .take(NAMED_KEYS)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if all.len() > NAMED_KEYS {
            names.push_str(&format!(" and {} more", all.len() - NAMED_KEYS));
        }
        let slots = crate::topology::slots::format_ranges(&crate::topology::slots::ranges_of(
            self.keys.keys().copied(),
        ));
        let (host, port) = self
            .target
            .rsplit_once(':')
            .map_or((self.target.as_str(), ""), |(h, p)| (h, p));
        if !self.former.is_empty() {
            let ids: Vec<&str> = self.former.iter().map(|i| crate::plan::short(i)).collect();
            return write!(
                f,
                "{} key(s) exist on {} and on the source {} with different values (BUSYKEY): {names}; nothing was overwritten. \
                 Slot(s) {slots} are still imported from node {}, their owner before {} took over in the middle of the move; \
                 the source's copies may be stale ones that node had already moved (the target holds the acknowledged writes), \
                 but it is not seen replicating {} yet, so nothing is decided. Start that node (`redisctl apply` on its host: \
                 it rejoins as a replica), then run apply again: the target's copies win. Do not use --replace here: it would \
                 put the source's copies over the acknowledged ones",
                all.len(),
                self.target,
                self.source,
                ids.join(", "),
                self.source,
                self.source,
            );
        }
        write!(
            f,
            "{} key(s) exist on {} and on the source {} with different values (BUSYKEY): {names}; nothing was overwritten. \
             The move's other slots were handed over; slot(s) left open: {slots} (MIGRATING on {}, IMPORTING on {}). \
             Either delete the target's copies (keep them elsewhere first if they matter), e.g. \
             `printf 'ASKING\\nDEL KEY\\n' | redis-cli -h {host} -p {port}`, then run apply again; \
             or run apply again with --replace to let the source's values win",
            all.len(),
            self.target,
            self.source,
            self.source,
            self.target,
        )
    }
}

/// Move `job.slots`; reports progress as slots finish.
pub async fn run(
    job: &Job<'_>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Progress, MoveError> {
    let t0 = Instant::now();
    let err = |e: ClientError| e.to_string();
    let mut src = Conn::connect(job.from_addr, job.password, job.call_timeout)
        .await
        .map_err(err)?;
    let mut dst = Conn::connect(job.to_addr, job.password, job.call_timeout)
        .await
        .map_err(err)?;
    let src_id = src.text(&["CLUSTER", "MYID"]).await.map_err(err)?;
    let dst_id = dst.text(&["CLUSTER", "MYID"]).await.map_err(err)?;
    let mut state = Progress {
        slots_total: job.slots.len(),
        ..Progress::default()
    };
    let mut legacy_slots = job.slots.clone();
    let mut why = None;
    if job.method != Method::Legacy {
        let offered = atomic::offered(&mut src).await.map_err(err)?
            && atomic::offered(&mut dst).await.map_err(err)?;
        if offered {
            let left =
                atomic::run(&mut src, &mut dst, &dst_id, job, &mut state, t0, progress).await?;
            if job.method == Method::Atomic && !left.slots.is_empty() {
                return Err(format!(
                    "atomic slot migration of {} slot(s) did not succeed: {}",
                    left.slots.len(),
                    left.why
                        .as_deref()
                        .unwrap_or("slots left open by a classic migration")
                )
                .into());
            }
            (legacy_slots, why) = (left.slots, left.why);
        } else if job.method == Method::Atomic {
            return Err(format!(
                "atomic slot migration was asked for, but {} or {} does not offer CLUSTER MIGRATESLOTS (Valkey 9.0 or later)",
                job.from_addr, job.to_addr
            )
            .into());
        }
    }
    if !legacy_slots.is_empty() {
        legacy(
            &mut src,
            &mut dst,
            &src_id,
            &dst_id,
            &legacy_slots,
            job,
            &mut state,
            t0,
            progress,
        )
        .await
        .map_err(|e| match (e, &why) {
            (MoveError::Failed(e), Some(w)) => {
                MoveError::Failed(format!("{e} (atomic slot migration had failed first: {w})"))
            }
            (e, _) => e,
        })?;
    }
    state.elapsed = t0.elapsed();
    Ok(state)
}

/// The classic protocol, chunk by chunk (see the module comment).
#[allow(clippy::too_many_arguments)]
async fn legacy(
    src: &mut Conn,
    dst: &mut Conn,
    src_id: &str,
    dst_id: &str,
    slots: &[u16],
    job: &Job<'_>,
    state: &mut Progress,
    t0: Instant,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(), MoveError> {
    let err = |e: ClientError| e.to_string();
    let (dst_host, dst_port) = job
        .to_addr
        .rsplit_once(':')
        .map(|(h, p)| (h.trim_matches(['[', ']']).to_string(), p.to_string()))
        .ok_or_else(|| format!("bad address {}", job.to_addr))?;
    let mut others = Vec::new();
    for addr in &job.others {
        if let Ok(c) = Conn::connect(addr, job.password, job.call_timeout).await {
            others.push(c);
        }
    }
    // Read before anything is re-marked: which slots the target still imports from the
    // source's former master (see `foreign_slots`).
    let Foreign { replaced, unproven } = foreign_slots(src, dst, &mut others, src_id, slots)
        .await
        .map_err(|e| format!("{}: {e}", job.to_addr))?;
    repair_target_view(dst, src_id, dst_id, slots)
        .await
        .map_err(|e| format!("{}: {e}", job.to_addr))?;
    let mut batch = BATCH;
    let mut migrate_timeout_ms: u64 = 10_000;
    let mut retries = 0u32;
    // Keys on both sides with different values, by slot: never overwritten without --replace.
    let mut conflicts: BTreeMap<u16, Vec<Vec<u8>>> = BTreeMap::new();
    for chunk in slots.chunks(CHUNK) {
        // Open the slots on both sides. A slot the target already owns is done. A slot the
        // target imports from the source's former master keeps that mark (it accepts ASKING
        // all the same), so a resumed move killed again is still recognised as one.
        let (kept, fresh): (Vec<u16>, Vec<u16>) = chunk
            .iter()
            .partition(|s| replaced.contains(s) || unproven.contains_key(s));
        let cmds: Vec<Vec<String>> = fresh
            .iter()
            .map(|s| setslot(*s, "IMPORTING", src_id))
            .collect();
        let replies = dst.pipeline(&refs(&cmds)).await.map_err(err)?;
        let mut active: Vec<u16> = kept;
        for (slot, r) in fresh.iter().zip(&replies) {
            match r {
                Value::Error(e) if e.contains("already the owner") => {}
                Value::Error(e) => {
                    return Err(format!("{}: SETSLOT {slot} IMPORTING: {e}", job.to_addr).into());
                }
                _ => active.push(*slot),
            }
        }
        active.sort_unstable();
        let cmds: Vec<Vec<String>> = active
            .iter()
            .map(|s| setslot(*s, "MIGRATING", dst_id))
            .collect();
        let replies = src.pipeline(&refs(&cmds)).await.map_err(err)?;
        for (slot, r) in active.iter().zip(&replies) {
            if let Value::Error(e) = r {
                return Err(format!(
                    "{}: SETSLOT {slot} MIGRATING: {e} (the slot map changed since planning; run apply again)",
                    job.from_addr
                )
                .into());
            }
        }

        // Move keys until every slot of the chunk is empty on the source, but for keys that
        // conflict (see `conflicts`): those stay, and so does their slot's open state.
        let mut pending = active.clone();
        while !pending.is_empty() {
            // Ask for more than the known conflicts, so a slot's other keys still come.
            let cmds: Vec<Vec<String>> = pending
                .iter()
                .map(|s| {
                    let known = conflicts.get(s).map_or(0, Vec::len);
                    vec![
                        "CLUSTER".into(),
                        "GETKEYSINSLOT".into(),
                        s.to_string(),
                        (batch + known).to_string(),
                    ]
                })
                .collect();
            let replies = src.pipeline(&refs(&cmds)).await.map_err(err)?;
            // MIGRATE takes keys of one slot at a time (CROSSSLOT otherwise): one command per
            // slot, all of them in one pipeline.
            let mut per_slot: Vec<(u16, Vec<Vec<u8>>)> = Vec::new();
            for (slot, r) in pending.iter().zip(replies) {
                match r {
                    Value::Array(items) => {
                        let known = conflicts.get(slot);
                        let keys: Vec<Vec<u8>> = items
                            .into_iter()
                            .filter_map(|v| match v {
                                Value::Bulk(b) => Some(b),
                                _ => None,
                            })
                            .filter(|k| !known.is_some_and(|c| c.contains(k)))
                            .collect();
                        if !keys.is_empty() {
                            per_slot.push((*slot, keys));
                        }
                    }
                    Value::Error(e) => {
                        return Err(format!("{}: GETKEYSINSLOT {slot}: {e}", job.from_addr).into());
                    }
                    _ => {}
                }
            }
            pending = per_slot.iter().map(|(s, _)| *s).collect();
            if per_slot.is_empty() {
                break;
            }
            if retries > MAX_RETRIES {
                return Err(format!(
                    "{}: MIGRATE to {} kept failing after {MAX_RETRIES} retries; the slots stay open and the next apply resumes them",
                    job.from_addr, job.to_addr
                )
                .into());
            }
            let commands: Vec<Vec<Vec<u8>>> = per_slot
                .iter()
                .map(|(slot, keys)| {
                    // Where the source was replaced mid-move the target's copies win, even
                    // with --replace: they hold the acknowledged writes (see below).
                    let mut args = migrate_args(
                        &dst_host,
                        &dst_port,
                        migrate_timeout_ms,
                        job.replace && !replaced.contains(slot) && !unproven.contains_key(slot),
                        job.password,
                    );
                    args.extend(keys.iter().cloned());
                    args
                })
                .collect();
            let slices: Vec<&[Vec<u8>]> = commands.iter().map(Vec::as_slice).collect();
            // Big values need time: MIGRATE blocks the source while it copies.
            src.timeout = job.call_timeout + Duration::from_millis(migrate_timeout_ms * 2);
            let replies = src.pipeline(&slices).await;
            src.timeout = job.call_timeout;
            for ((slot, keys), reply) in per_slot.iter().zip(replies.map_err(err)?) {
                match reply {
                    Value::Error(e) if target_code(&e) == ErrorCode::BusyKey => {
                        // Some keys are on both sides. Redis restored the others and deleted
                        // them from the source all the same: those moved. Identical copies (a
                        // move interrupted after the target got a key but before the source
                        // forgot it, e.g. when the source's replica took over) are overwritten
                        // with the same value. Different values: where the source was replaced
                        // mid-move, the source's copy is a stale one the target's copy
                        // supersedes, and it is deleted; elsewhere they are conflicts, left in
                        // place.
                        let sides = compare_keys(src, dst, keys)
                            .await
                            .map_err(|e| format!("{} after BUSYKEY: {e}", job.from_addr))?;
                        if sides.iter().all(|s| *s == Sides::SourceOnly) {
                            retries += 1; // no progress: bounded like any other retry
                        }
                        let mut same = Vec::new();
                        let mut stale = Vec::new();
                        for (key, side) in keys.iter().zip(sides) {
                            match side {
                                Sides::Moved => state.keys_moved += 1,
                                Sides::Identical => same.push(key.clone()),
                                Sides::Different if replaced.contains(slot) => {
                                    stale.push(key.clone())
                                }
                                Sides::Different => {
                                    conflicts.entry(*slot).or_default().push(key.clone())
                                }
                                Sides::SourceOnly => {} // fetched again
                            }
                        }
                        if !stale.is_empty() {
                            state.keys_moved += drop_stale_copies(src, &stale)
                                .await
                                .map_err(|e| format!("{}: {e}", job.from_addr))?;
                        }
                        if same.is_empty() {
                            continue;
                        }
                        let mut args = migrate_args(
                            &dst_host,
                            &dst_port,
                            migrate_timeout_ms,
                            true,
                            job.password,
                        );
                        args.extend(same.iter().cloned());
                        match src.pipeline(&[args.as_slice()]).await.map_err(err)?.pop() {
                            Some(Value::Error(e)) => {
                                return Err(
                                    format!("{}: MIGRATE REPLACE: {e}", job.from_addr).into()
                                );
                            }
                            _ => state.keys_moved += same.len() as u64,
                        }
                    }
                    Value::Error(e) if e.contains("IOERR") || e.contains("timeout") => {
                        // Slow target or big keys: smaller batches, more time; the keys are
                        // still on the source and are fetched again.
                        batch = (batch / 2).max(1);
                        migrate_timeout_ms = (migrate_timeout_ms * 2).min(120_000);
                        retries += 1;
                    }
                    Value::Error(e)
                        if matches!(
                            target_code(&e),
                            ErrorCode::ClusterDown | ErrorCode::TryAgain
                        ) =>
                    {
                        // The target is not serving yet (just started, or a failover is
                        // settling): wait a moment; the keys are fetched again.
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Value::Error(e) => {
                        return Err(format!("{}: MIGRATE: {e}", job.from_addr).into());
                    }
                    _ => state.keys_moved += keys.len() as u64,
                }
            }
        }

        // Hand the slots over: target first, then source, then everyone else. A source that
        // has become a replica meanwhile (an old master restarted after its replica took over,
        // with stale MIGRATING marks this move finishes) refuses SETSLOT; becoming a replica
        // cleared its marks, so that is fine. Slots with conflicting keys stay open.
        let cmds: Vec<Vec<String>> = chunk
            .iter()
            .filter(|s| !conflicts.contains_key(s))
            .map(|s| setslot(*s, "NODE", dst_id))
            .collect();
        for (conn, required) in std::iter::once((&mut *dst, true))
            .chain(std::iter::once((&mut *src, true)))
            .chain(others.iter_mut().map(|c| (c, false)))
        {
            let replies = conn.pipeline(&refs(&cmds)).await.map_err(err)?;
            if required
                && let Some(e) = replies
                    .iter()
                    .find(|r| matches!(r, Value::Error(e) if !e.contains("only with masters")))
            {
                return Err(format!("{}: SETSLOT NODE: {}", conn.addr(), text(e)).into());
            }
        }
        state.slots_done += chunk.iter().filter(|s| !conflicts.contains_key(s)).count();
        state.elapsed = t0.elapsed();
        progress(*state);
    }
    if conflicts.is_empty() {
        Ok(())
    } else {
        let former = conflicts
            .keys()
            .filter_map(|s| unproven.get(s).cloned())
            .collect();
        Err(MoveError::Conflict(Conflict {
            source: job.from_addr.to_string(),
            target: job.to_addr.to_string(),
            keys: conflicts,
            former,
        }))
    }
}

/// Slots of the move that the target imports from a node that now replicates the source:
/// the source's former master, which died (or was failed over) mid-move while its replica,
/// the source now, took over. (The planner resumes such a slot from its owner.)
///
/// In those slots a key on both sides is resolved in favour of the target. Why (cluster.c,
/// `migrateCommand` and `getNodeByQuery`): MIGRATE restores a key on the target, then deletes
/// it on the old master and propagates that as a `DEL` to its replica — asynchronously. From
/// then on clients asking the old master for the key are sent to the target with `ASK` (the
/// key is missing on a migrating node), and the target serves them (importing + `ASKING`), so
/// every write acknowledged after the key moved is on the target, on top of the value MIGRATE
/// copied. A replica promoted before the `DEL` reached it still holds the key as it was before
/// the move: a stale copy whose history the target's copy includes. `--replace` (source wins)
/// would put that stale copy over the acknowledged writes, so it is not used there.
///
/// What this cannot repair: a replica promoted by the cluster itself has no MIGRATING mark
/// (Redis 7.0 keeps those per node), so until the move is resumed it serves the slot as its
/// own, and a write to a moved key in that window lands on it (on the stale copy, or on a new
/// key). Such a write is acknowledged and its copy still loses to the target's; the window is
/// from the promotion to the resumed move. When redisctl promotes the replica (`apply`, the
/// agent or the unit's start hook after a crash, before the cluster's own failover), there is
/// no such window: `take_over_mid_move` deletes the stale copies and sets the marks in the
/// promotion's own transaction.
///
/// Slots the target imports from the source itself (a move interrupted some other way, or a
/// slot left open by a refused conflict) are not included: there both copies may be
/// legitimate, and a conflict is refused as before.
///
/// Whether the former master now replicates the source is read from every node's view,
/// its own included: the apply that restarts it makes it a replica moments before the move
/// resumes, and the target's and the source's views learn that by gossip only later (seen in
/// CI: the move started 17 ms after CLUSTER REPLICATE and found no view saying so yet).
async fn foreign_slots(
    src: &mut Conn,
    dst: &mut Conn,
    others: &mut [Conn],
    src_id: &str,
    slots: &[u16],
) -> Result<Foreign, String> {
    let theirs = cluster_view(dst).await?;
    let Some(me) = theirs.iter().find(|l| l.flags.myself) else {
        return Ok(Foreign::default());
    };
    if !me.importing.iter().any(|(_, from)| from != src_id) {
        return Ok(Foreign::default());
    }
    let mut views = theirs.clone();
    views.extend(cluster_view(src).await?);
    for c in others.iter_mut() {
        // A node that does not answer has no say.
        if let Ok(v) = cluster_view(c).await {
            views.extend(v);
        }
    }
    let replica_of_source = |id: &str| {
        views
            .iter()
            .any(|l| l.id == id && l.master_id.as_deref() == Some(src_id))
    };
    let wanted: BTreeSet<u16> = slots.iter().copied().collect();
    let mut out = Foreign::default();
    for (slot, from) in &me.importing {
        if !wanted.contains(slot) || from == src_id {
            continue;
        }
        if replica_of_source(from) {
            out.replaced.insert(*slot);
        } else {
            out.unproven.insert(*slot, from.clone());
        }
    }
    Ok(out)
}

/// Slots of a move that the target imports from a node other than the source.
#[derive(Default)]
struct Foreign {
    /// From the source's former master, now seen replicating the source: the target's
    /// copies win.
    replaced: BTreeSet<u16>,
    /// From another node (slot → its id), not seen replicating the source (down, or not yet
    /// rejoined): the target's mark is kept (the evidence for the next run) and a conflict
    /// there is refused without `--replace` as a way out.
    unproven: BTreeMap<u16, String>,
}

/// `DEL` on the source of keys whose target copy supersedes them (see
/// `foreign_slots`); the slot is MIGRATING there, so clients asking for them from now
/// on are sent to the target. The number of keys handled.
async fn drop_stale_copies(src: &mut Conn, keys: &[Vec<u8>]) -> Result<u64, String> {
    for (key, r) in keys.iter().zip(del_each(src, keys).await?) {
        if let Value::Error(e) = r {
            return Err(format!(
                "DEL of the stale copy of {}: {e}",
                String::from_utf8_lossy(key)
            ));
        }
    }
    Ok(keys.len() as u64)
}

/// One `DEL` per key, pipelined: the reply of each, in order.
async fn del_each(c: &mut Conn, keys: &[Vec<u8>]) -> Result<Vec<Value>, String> {
    let cmds: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .map(|k| vec![b"DEL".to_vec(), k.clone()])
        .collect();
    let slices: Vec<&[Vec<u8>]> = cmds.iter().map(Vec::as_slice).collect();
    c.pipeline(&slices).await.map_err(|e| e.to_string())
}

/// The slots a dead master was moving to one target, for `take_over_mid_move`.
pub struct OpenMove<'a> {
    pub to_addr: &'a str,
    pub slots: Vec<u16>,
}

/// What `take_over_mid_move` did.
#[derive(Debug, Default)]
pub struct TakenOver {
    /// `TAKEOVER` found the node a master already (the cluster promoted it between the check
    /// of its role and the transaction): the marks and deletions were made all the same.
    pub already_master: bool,
    /// Stale copies deleted (keys the targets already held).
    pub stale: u64,
    /// Of those, deleted only after the transaction (Redis refused the deletion inside it,
    /// e.g. `cluster_state` not ok yet): clients could have reached them for that moment.
    pub late: u64,
    /// Slots marked MIGRATING again.
    pub reopened: usize,
}

/// Deletes its ARGV keys (passed as arguments, not as keys, so the transaction can be queued
/// while the node is still a replica: a keyed command would be refused with MOVED).
const DEL_SCRIPT: &str =
    "local n = 0 for _, k in ipairs(ARGV) do n = n + redis.call('DEL', k) end return n";
/// Stale copies per `EVAL`.
const STALE_PER_EVAL: usize = 1000;

/// Promote `replica`, a replica of a master that died moving `moves` away, so that it never
/// serves a moved key as its own: in one `MULTI`, `CLUSTER FAILOVER TAKEOVER`, the deletion of
/// its copies of keys the target already holds, and `SETSLOT MIGRATING` towards the target
/// for every slot the target still imports from the dead master. Clients see the node as a
/// master only with all three done (cluster.c: TAKEOVER claims the slots synchronously, in
/// `clusterFailoverReplaceYourMaster`; a transaction runs with no other client in between).
///
/// Why these copies are stale, and why the target's copy wins: `foreign_slots` (a key reaches
/// a target importing from a node only after that node no longer had it; the replica's copy
/// predates that). With the mark set, a key the promoted node does not hold is answered with
/// `ASK` to the target, which holds it (or creates it); a key it holds was never moved and is
/// served here until the resumed move carries it over. Before the promotion nothing changes
/// on either side: the replica's master is dead, and no client reaches the target for those
/// slots without an `ASK` from a live source.
///
/// `TAKEOVER` claims every slot the replica's view gives its master, with a new config epoch
/// and no vote. Right after a chunk of the move was handed over, that view can still give the
/// dead master slots the target owns now (gossip has not brought the target's claim yet): a
/// vote would be refused then (cluster.c, `clusterSendFailoverAuthIfNeeded`), a takeover would
/// take those slots from the target. So first wait until no live master (`others`: every
/// other node, the unreachable ones have no say) claims any of them itself; past `wait`,
/// `Ok(None)`, and the caller falls back to `FORCE`, which the vote guards.
///
/// The keys on both sides are found with `GETKEYSINSLOT` on each (keyless: it works on a
/// replica and in `cluster_state:fail`). `Ok(None)` also when `replica` is not a replica
/// (nothing to promote; the caller's usual path applies).
pub async fn take_over_mid_move(
    replica: &mut Conn,
    moves: &[OpenMove<'_>],
    others: &[String],
    wait: Duration,
    password: Option<&Credentials>,
    call_timeout: Duration,
) -> Result<Option<TakenOver>, String> {
    let err = |e: ClientError| e.to_string();
    let mut peers = Vec::new();
    for addr in others {
        if let Ok(c) = Conn::connect(addr, password, call_timeout).await {
            peers.push(c);
        }
    }
    let deadline = Instant::now() + wait;
    let master_id = loop {
        let view = cluster_view(replica).await?;
        let Some(me) = view.iter().find(|l| l.flags.myself) else {
            return Err("CLUSTER NODES has no line for the node itself".into());
        };
        let Some(master_id) = me.master_id.clone().filter(|_| me.flags.replica) else {
            return Ok(None);
        };
        let claimed: Vec<SlotRange> = view
            .iter()
            .find(|l| l.id == master_id)
            .map(|l| l.slots.clone())
            .unwrap_or_default();
        let mut taken = false;
        for c in peers.iter_mut() {
            if let Ok(v) = cluster_view(c).await
                && let Some(m) = v.iter().find(|l| l.flags.myself)
            {
                taken |= m.flags.master
                    && m.id != master_id
                    && m.slots
                        .iter()
                        .any(|a| claimed.iter().any(|b| a.start <= b.end && b.start <= a.end));
            }
        }
        if !taken {
            break master_id;
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stale: Vec<Vec<u8>> = Vec::new();
    let mut marks: Vec<Vec<String>> = Vec::new();
    for m in moves {
        let mut dst = Conn::connect(m.to_addr, password, call_timeout)
            .await
            .map_err(err)?;
        let theirs = cluster_view(&mut dst)
            .await
            .map_err(|e| format!("{}: {e}", m.to_addr))?;
        let Some(target) = theirs.iter().find(|l| l.flags.myself) else {
            continue;
        };
        // Only what the target still imports from the dead master (it may have changed
        // since planning); the rule above holds for nothing else.
        let slots: Vec<u16> = m
            .slots
            .iter()
            .copied()
            .filter(|s| target.importing.contains(&(*s, master_id.clone())))
            .collect();
        let here = keys_in_slots(replica, &slots).await.map_err(err)?;
        let there = keys_in_slots(&mut dst, &slots).await.map_err(err)?;
        let both: Vec<(u16, u64, u64)> = slots
            .iter()
            .zip(here.iter().zip(&there))
            .filter(|(_, (h, t))| **h > 0 && **t > 0)
            .map(|(s, (h, t))| (*s, *h, *t))
            .collect();
        for chunk in both.chunks(CHUNK) {
            let ask = |pick: fn(&(u16, u64, u64)) -> u64| -> Vec<Vec<String>> {
                chunk
                    .iter()
                    .map(|x| {
                        vec![
                            "CLUSTER".into(),
                            "GETKEYSINSLOT".into(),
                            x.0.to_string(),
                            pick(x).to_string(),
                        ]
                    })
                    .collect()
            };
            let mine = replica.pipeline(&refs(&ask(|x| x.1))).await.map_err(err)?;
            let theirs = dst.pipeline(&refs(&ask(|x| x.2))).await.map_err(err)?;
            for (a, b) in mine.into_iter().zip(theirs) {
                let (a, b) = match (a, b) {
                    (Value::Array(a), Value::Array(b)) => (a, b),
                    (a, b) => {
                        return Err(format!("GETKEYSINSLOT: unexpected replies {a} / {b}"));
                    }
                };
                let bulk = |v: Value| match v {
                    Value::Bulk(k) => Some(k),
                    _ => None,
                };
                let b: BTreeSet<Vec<u8>> = b.into_iter().filter_map(bulk).collect();
                stale.extend(a.into_iter().filter_map(bulk).filter(|k| b.contains(k)));
            }
        }
        marks.extend(slots.iter().map(|s| setslot(*s, "MIGRATING", &target.id)));
    }

    let mut cmds: Vec<Vec<Vec<u8>>> = vec![
        vec![b"MULTI".to_vec()],
        ["CLUSTER", "FAILOVER", "TAKEOVER"]
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect(),
    ];
    for batch in stale.chunks(STALE_PER_EVAL) {
        let mut eval = vec![
            b"EVAL".to_vec(),
            DEL_SCRIPT.as_bytes().to_vec(),
            b"0".to_vec(),
        ];
        eval.extend(batch.iter().cloned());
        cmds.push(eval);
    }
    cmds.extend(
        marks
            .iter()
            .map(|m| m.iter().map(|a| a.as_bytes().to_vec()).collect()),
    );
    cmds.push(vec![b"EXEC".to_vec()]);
    let slices: Vec<&[Vec<u8>]> = cmds.iter().map(Vec::as_slice).collect();
    let mut replies = replica.pipeline(&slices).await.map_err(err)?;
    let results = match replies.pop() {
        Some(Value::Array(r)) if r.len() == cmds.len() - 2 => r,
        other => {
            // EXECABORT: a command was refused while queueing (nothing ran); say which.
            let why = replies
                .iter()
                .find_map(|r| matches!(r, Value::Error(_)).then(|| text(r)))
                .or(other.map(|v| text(&v)))
                .unwrap_or_default();
            return Err(format!("MULTI with CLUSTER FAILOVER TAKEOVER: {why}"));
        }
    };
    let mut out = TakenOver::default();
    let mut results = results.into_iter();
    match results.next() {
        Some(Value::Error(e)) if e.contains("CLUSTER FAILOVER to a replica") => {
            out.already_master = true
        }
        Some(Value::Error(e)) => {
            // Still a replica: the deletions and marks were refused as well.
            return Err(format!("CLUSTER FAILOVER TAKEOVER: {e}"));
        }
        _ => {}
    }
    let mut left: Vec<Vec<u8>> = Vec::new();
    for batch in stale.chunks(STALE_PER_EVAL) {
        match results.next() {
            Some(Value::Int(n)) => out.stale += n.max(0) as u64,
            // E.g. the node's cluster_state was not ok yet (then it refused clients too):
            // deleted below instead, as soon as it serves.
            _ => left.extend(batch.iter().cloned()),
        }
    }
    for (m, r) in marks.iter().zip(results) {
        if let Value::Error(e) = r {
            return Err(format!("SETSLOT {} MIGRATING: {e}", m[2]));
        }
        out.reopened += 1;
    }
    let deadline = Instant::now() + call_timeout.max(Duration::from_secs(5));
    while !left.is_empty() {
        let replies = del_each(replica, &left).await?;
        let mut again = Vec::new();
        for (k, r) in left.into_iter().zip(replies) {
            match r {
                Value::Int(n) => {
                    out.stale += n.max(0) as u64;
                    out.late += n.max(0) as u64;
                }
                // The key is gone already (ASK: missing on a migrating node).
                Value::Error(e) if e.code == ErrorCode::Ask => {}
                Value::Error(e) if Instant::now() > deadline => {
                    return Err(format!(
                        "DEL of the stale copy of {}: {e}",
                        String::from_utf8_lossy(&k)
                    ));
                }
                _ => again.push(k),
            }
        }
        left = again;
        if !left.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(Some(out))
}

/// A target importing a slot ignores every owner change for it that gossip brings (Redis
/// leaves importing slots to the operator). When the source's replica took over mid-move,
/// the target's view still names the old master, or nobody once it rejoined as a replica, and
/// the target stays in cluster_state:fail, refusing the keys. Tell it who serves those slots
/// now: the planner's source. Slots the target owns are left alone.
async fn repair_target_view(
    dst: &mut Conn,
    src_id: &str,
    dst_id: &str,
    slots: &[u16],
) -> Result<(), String> {
    let view = cluster_view(dst).await?;
    let owner = |slot: u16| {
        view.iter()
            .find(|l| l.slots.iter().any(|r| r.contains(slot)))
            .map(|l| l.id.as_str())
    };
    let cmds: Vec<Vec<String>> = slots
        .iter()
        .filter(|&&s| !matches!(owner(s), Some(o) if o == src_id || o == dst_id))
        .map(|&s| setslot(s, "NODE", src_id))
        .collect();
    if cmds.is_empty() {
        return Ok(());
    }
    for (cmd, r) in cmds.iter().zip(
        dst.pipeline(&refs(&cmds))
            .await
            .map_err(|e| e.to_string())?,
    ) {
        if let Value::Error(e) = r {
            return Err(format!("SETSLOT {} NODE (source): {e}", cmd[2]));
        }
    }
    Ok(())
}

/// The code of a MIGRATE error: the target's own when the source relays it (cluster.c wraps
/// it: `ERR Target instance replied with error: BUSYKEY …`), else the source's.
fn target_code(e: &ServerError) -> ErrorCode {
    match e
        .message
        .strip_prefix("ERR Target instance replied with error: ")
    {
        Some(theirs) => ErrorCode::of(theirs),
        None => e.code.clone(),
    }
}

/// `MIGRATE host port "" 0 timeout [REPLACE] [AUTH pw] KEYS` (keys to be appended).
fn migrate_args(
    host: &str,
    port: &str,
    timeout_ms: u64,
    replace: bool,
    password: Option<&Credentials>,
) -> Vec<Vec<u8>> {
    let mut args: Vec<Vec<u8>> = vec![
        b"MIGRATE".to_vec(),
        host.as_bytes().to_vec(),
        port.as_bytes().to_vec(),
        Vec::new(),
        b"0".to_vec(),
        timeout_ms.to_string().into_bytes(),
    ];
    if replace {
        args.push(b"REPLACE".to_vec());
    }
    match password {
        Some(Credentials {
            user: Some(user),
            password,
            ..
        }) => {
            args.push(b"AUTH2".to_vec());
            args.push(user.as_bytes().to_vec());
            args.push(password.as_bytes().to_vec());
        }
        Some(c) => {
            args.push(b"AUTH".to_vec());
            args.push(c.password.as_bytes().to_vec());
        }
        None => {}
    }
    args.push(b"KEYS".to_vec());
    args
}

/// Where a key of a MIGRATE that met BUSYKEY is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sides {
    /// Gone from the source: the same MIGRATE restored it on the target.
    Moved,
    /// Still only on the source (fetched again).
    SourceOnly,
    /// On both sides with the same `DUMP` payload.
    Identical,
    /// On both sides with different values: a conflict.
    Different,
}

/// `DUMP` of every key on both sides (the target is importing, hence ASKING), classified.
async fn compare_keys(
    src: &mut Conn,
    dst: &mut Conn,
    keys: &[Vec<u8>],
) -> Result<Vec<Sides>, String> {
    let err = |e: ClientError| e.to_string();
    let dump: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .map(|k| vec![b"DUMP".to_vec(), k.clone()])
        .collect();
    let src_cmds: Vec<&[Vec<u8>]> = dump.iter().map(Vec::as_slice).collect();
    let asking = vec![b"ASKING".to_vec()];
    let mut dst_cmds: Vec<&[Vec<u8>]> = Vec::new();
    for d in &dump {
        dst_cmds.push(asking.as_slice());
        dst_cmds.push(d.as_slice());
    }
    let theirs = src.pipeline(&src_cmds).await.map_err(err)?;
    let ours = dst.pipeline(&dst_cmds).await.map_err(err)?;
    theirs
        .iter()
        .zip(ours.iter().skip(1).step_by(2))
        .map(|(s, d)| sides(s, d))
        .collect()
}

/// One key's `DUMP` on the source and on the target. A source migrating the slot answers a
/// key it no longer has with an `ASK` redirection to the target, not with nil.
fn sides(source: &Value, target: &Value) -> Result<Sides, String> {
    match (source, target) {
        (Value::Nil, _) => Ok(Sides::Moved),
        (Value::Error(e), _) if e.starts_with("ASK ") => Ok(Sides::Moved),
        (Value::Error(e), _) => Err(format!("DUMP on the source: {e}")),
        (_, Value::Error(e)) => Err(format!("DUMP on the target: {e}")),
        (_, Value::Nil) => Ok(Sides::SourceOnly),
        (s, t) if s == t => Ok(Sides::Identical),
        _ => Ok(Sides::Different),
    }
}

fn setslot(slot: u16, how: &str, id: &str) -> Vec<String> {
    vec![
        "CLUSTER".into(),
        "SETSLOT".into(),
        slot.to_string(),
        how.into(),
        id.into(),
    ]
}

fn refs(cmds: &[Vec<String>]) -> Vec<&[String]> {
    cmds.iter().map(Vec::as_slice).collect()
}

/// `CLUSTER COUNTKEYSINSLOT` of every slot, in order (pipelined, 1024 at a time).
async fn keys_in_slots(c: &mut Conn, slots: &[u16]) -> Result<Vec<u64>, ClientError> {
    let mut out = Vec::with_capacity(slots.len());
    for chunk in slots.chunks(1024) {
        let cmds: Vec<Vec<String>> = chunk
            .iter()
            .map(|s| vec!["CLUSTER".into(), "COUNTKEYSINSLOT".into(), s.to_string()])
            .collect();
        for r in c.pipeline(&refs(&cmds)).await? {
            out.push(if let Value::Int(n) = r {
                n.max(0) as u64
            } else {
                0
            });
        }
    }
    Ok(out)
}

/// This node's `CLUSTER NODES`, parsed.
async fn cluster_view(c: &mut Conn) -> Result<Vec<crate::observe::parse::NodeLine>, String> {
    let text = c
        .text(&["CLUSTER", "NODES"])
        .await
        .map_err(|e| e.to_string())?;
    crate::observe::parse::cluster_nodes(&text).map_err(|e| e.to_string())
}

/// Keys and bytes a move would carry: COUNTKEYSINSLOT for every slot, MEMORY USAGE of up to
/// 32 sampled keys for the average size.
pub async fn estimate(
    from_addr: &str,
    slots: &[u16],
    password: Option<&Credentials>,
    limit: Duration,
) -> Result<(u64, u64), String> {
    let mut c = Conn::connect(from_addr, password, limit)
        .await
        .map_err(|e| e.to_string())?;
    let counts = keys_in_slots(&mut c, slots)
        .await
        .map_err(|e| e.to_string())?;
    let keys: u64 = counts.iter().sum();
    let with_keys: Vec<u16> = slots
        .iter()
        .zip(&counts)
        .filter(|(_, n)| **n > 0)
        .map(|(s, _)| *s)
        .collect();
    let step = (with_keys.len() / 32).max(1);
    let sample: Vec<u16> = with_keys.iter().step_by(step).take(32).copied().collect();
    let cmds: Vec<Vec<String>> = sample
        .iter()
        .map(|s| {
            vec![
                "CLUSTER".into(),
                "GETKEYSINSLOT".into(),
                s.to_string(),
                "1".into(),
            ]
        })
        .collect();
    let mut sizes = Vec::new();
    for r in c.pipeline(&refs(&cmds)).await.map_err(|e| e.to_string())? {
        if let Value::Array(items) = r
            && let Some(Value::Bulk(k)) = items.into_iter().next()
            && let Ok(Value::Int(n)) = c
                .cmd(&[
                    b"MEMORY".as_slice(),
                    b"USAGE".as_slice(),
                    &k,
                    b"SAMPLES",
                    b"0",
                ])
                .await
        {
            sizes.push(n as u64);
        }
    }
    let avg = if sizes.is_empty() {
        0
    } else {
        sizes.iter().sum::<u64>() / sizes.len() as u64
    };
    Ok((keys, keys * avg))
}

#[cfg(test)]
mod tests {
    use super::{Conflict, Sides, sides, target_code};
    use crate::observe::resp::{ErrorCode, ServerError, Value};
    use std::collections::{BTreeMap, BTreeSet};

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    /// Issue #10: keys the same MIGRATE restored are gone from the source, which answers
    /// DUMP of them with ASK (the slot is migrating): moved, not conflicting.
    #[test]
    fn keys_gone_from_the_source_are_moved_not_conflicts() {
        let ask = Value::Error("ASK 5459 127.0.0.1:7006".into());
        assert_eq!(sides(&ask, &bulk("v")), Ok(Sides::Moved));
        assert_eq!(sides(&Value::Nil, &bulk("v")), Ok(Sides::Moved));
        assert_eq!(sides(&bulk("v"), &Value::Nil), Ok(Sides::SourceOnly));
        assert_eq!(sides(&bulk("v"), &bulk("v")), Ok(Sides::Identical));
        assert_eq!(sides(&bulk("v"), &bulk("w")), Ok(Sides::Different));
        assert!(sides(&bulk("v"), &Value::Error("MOVED 1 x:1".into())).is_err());
    }

    /// MIGRATE relays the target's error inside an ERR (seen: "ERR Target instance replied
    /// with error: BUSYKEY Target key name already exists.").
    #[test]
    fn a_relayed_target_error_is_typed_by_the_target_code() {
        let busy: ServerError =
            "ERR Target instance replied with error: BUSYKEY Target key name already exists."
                .into();
        assert_eq!(target_code(&busy), ErrorCode::BusyKey);
        let own: ServerError = "TRYAGAIN Multiple keys request during rehashing of slot".into();
        assert_eq!(target_code(&own), ErrorCode::TryAgain);
        let err: ServerError = "ERR syntax error".into();
        assert_eq!(target_code(&err), ErrorCode::Err);
    }

    #[test]
    fn a_conflict_names_its_keys_capped_its_open_slots_and_both_ways_out() {
        let mut keys = BTreeMap::new();
        keys.insert(
            7u16,
            (0..12).map(|i| format!("k{i}").into_bytes()).collect(),
        );
        keys.insert(8u16, vec![b"x".to_vec()]);
        let text = Conflict {
            source: "127.0.0.1:7000".into(),
            target: "127.0.0.1:7006".into(),
            keys: keys.clone(),
            former: BTreeSet::new(),
        }
        .to_string();
        assert!(
            text.starts_with("13 key(s) exist on 127.0.0.1:7006 and on the source 127.0.0.1:7000"),
            "{text}"
        );
        assert!(
            text.contains("k0, k1,") && text.contains("k9 and 3 more"),
            "{text}"
        );
        assert!(!text.contains("k10"), "{text}");
        assert!(text.contains("slot(s) left open: 7-8 "), "{text}");
        assert!(text.contains("redis-cli -h 127.0.0.1 -p 7006"), "{text}");
        assert!(text.contains("--replace"), "{text}");
        // Imported from the source's former owner, not seen rejoined: the way out is to bring
        // it back, never --replace.
        let text = Conflict {
            source: "127.0.0.1:7000".into(),
            target: "127.0.0.1:7006".into(),
            keys,
            former: ["e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0".to_string()].into(),
        }
        .to_string();
        assert!(text.contains("still imported from node e1f2a3b4"), "{text}");
        assert!(text.contains("Start that node"), "{text}");
        assert!(text.contains("Do not use --replace"), "{text}");
        assert!(!text.contains("run apply again with --replace"), "{text}");
    }
}
