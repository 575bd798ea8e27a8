//! Atomic slot migration (Valkey ≥ 9.0): `CLUSTER MIGRATESLOTS` on the source. The source
//! snapshots the slots in a child process, streams the writes that follow, pauses writes for
//! a moment and hands ownership over atomically; clients see no ASK redirections, and a job
//! that fails or is cancelled is rolled back by the engine itself. redisctl submits one job
//! per move, follows it with `CLUSTER GETSLOTMIGRATIONS`, and reports progress from the
//! target's key counts while it runs.
//!
//! Redis ≥ 8.4 has its own command family (`CLUSTER MIGRATION IMPORT`, sent to the target);
//! it is not driven here yet (no such server to test against), so Redis uses the classic
//! protocol.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::{Job, Progress};
use crate::observe::client::{ClientError, Conn};
use crate::observe::resp::Value;
use crate::topology::slots::ranges_of;

const POLL: Duration = Duration::from_millis(20);
/// Progress of a running job, measured on the target, at most this often.
const REPORT: Duration = Duration::from_millis(250);

/// Does this node accept `CLUSTER MIGRATESLOTS`?
pub async fn offered(c: &mut Conn) -> Result<bool, ClientError> {
    let v = c.cmd(&["COMMAND", "INFO", "CLUSTER|MIGRATESLOTS"]).await?;
    Ok(matches!(v, Value::Array(items) if items.iter().any(|i| matches!(i, Value::Array(_)))))
}

/// One entry of `CLUSTER GETSLOTMIGRATIONS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migration {
    pub name: String,
    pub operation: String,
    pub target: String,
    pub slots: Vec<u16>,
    pub state: String,
    pub message: String,
}

impl Migration {
    pub fn finished(&self) -> bool {
        self.succeeded() || self.failed()
    }
    pub fn succeeded(&self) -> bool {
        self.state == "success"
    }
    pub fn failed(&self) -> bool {
        // Exact words: running states include "failover-requested" and "failover-granted".
        matches!(self.state.as_str(), "failed" | "cancelled" | "canceled")
    }
}

/// Parse `CLUSTER GETSLOTMIGRATIONS` (RESP2: one flat field/value array per job).
pub fn parse(v: &Value) -> Vec<Migration> {
    let Value::Array(jobs) = v else {
        return Vec::new();
    };
    jobs.iter()
        .filter_map(|j| match j {
            Value::Array(kv) => Some(kv),
            _ => None,
        })
        .map(|kv| {
            let fields: HashMap<String, String> = kv
                .chunks(2)
                .filter_map(|p| {
                    Some((
                        p.first()?.as_text()?,
                        p.get(1)?.as_text().unwrap_or_default(),
                    ))
                })
                .collect();
            let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
            Migration {
                name: get("name"),
                operation: get("operation"),
                target: get("target_node"),
                slots: parse_ranges(&get("slot_ranges")),
                state: get("state"),
                message: get("message"),
            }
        })
        .collect()
}

/// "0-1364 2000 3000-3001" → slots.
fn parse_ranges(text: &str) -> Vec<u16> {
    text.split([' ', ','])
        .filter(|w| !w.is_empty())
        .filter_map(|w| {
            let (a, b) = w.split_once('-').unwrap_or((w, w));
            Some(a.parse::<u16>().ok()?..=b.parse::<u16>().ok()?)
        })
        .flatten()
        .collect()
}

async fn migrations(c: &mut Conn) -> Result<Vec<Migration>, ClientError> {
    Ok(parse(&c.cmd(&["CLUSTER", "GETSLOTMIGRATIONS"]).await?))
}

/// Move `job.slots` with atomic slot migration. Returns the slots left for the classic
/// protocol: those open from an interrupted classic move, and those of jobs that failed (the
/// engine rolled them back; the classic protocol then moves them or names the conflict).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    src: &mut Conn,
    dst: &mut Conn,
    dst_id: &str,
    job: &Job<'_>,
    state: &mut Progress,
    t0: Instant,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Fallback, String> {
    let err = |e: ClientError| e.to_string();
    // Slots left open by a classic move finish the classic way.
    let open: BTreeSet<u16> = open_slots(src, true)
        .await?
        .into_iter()
        .chain(open_slots(dst, false).await?)
        .collect();
    let (mut legacy, mut slots): (Vec<u16>, Vec<u16>) =
        job.slots.iter().partition(|s| open.contains(s));

    // Jobs already running for these slots (an earlier apply was interrupted): follow them.
    let before = migrations(src).await.map_err(err)?;
    let mut watch: Vec<String> = Vec::new();
    for m in before
        .iter()
        .filter(|m| m.operation == "EXPORT" && !m.finished())
    {
        if !m.slots.iter().any(|s| slots.contains(s)) {
            continue;
        }
        if m.target != dst_id {
            return Err(format!(
                "{}: slots {} are being migrated to node {} by an atomic migration this apply did not start; wait for it, or cancel it with CLUSTER CANCELSLOTMIGRATIONS",
                job.from_addr,
                crate::topology::slots::format_ranges(&ranges_of(m.slots.iter().copied())),
                crate::plan::short(&m.target)
            ));
        }
        slots.retain(|s| !m.slots.contains(s));
        watch.push(m.name.clone());
    }

    // Keys per slot, for progress (the jobs report states, not keys).
    let counts = super::keys_in_slots(src, &job.slots).await.map_err(err)?;
    let keys_in: HashMap<u16, u64> = job.slots.iter().copied().zip(counts).collect();

    if !slots.is_empty() {
        // One job for the whole move: each job costs a fork and a hand-over, and the jobs of
        // one source run one after another (measured: 8 jobs took 4-6x longer than 1).
        let mut cmd: Vec<String> =
            vec!["CLUSTER".into(), "MIGRATESLOTS".into(), "SLOTSRANGE".into()];
        for r in ranges_of(slots.iter().copied()) {
            cmd.push(r.start.to_string());
            cmd.push(r.end.to_string());
        }
        cmd.push("NODE".into());
        cmd.push(dst_id.to_string());
        if let Err(e) = src.cmd(&cmd).await {
            // Refused up front (e.g. keys of these slots on the target): the classic protocol
            // moves them, or names the conflict.
            legacy.extend(slots);
            legacy.sort_unstable();
            return Ok(Fallback {
                slots: legacy,
                why: Some(e.to_string()),
            });
        }
        let known: BTreeSet<&str> = before.iter().map(|m| m.name.as_str()).collect();
        let after = migrations(src).await.map_err(err)?;
        watch.extend(
            after
                .iter()
                .filter(|m| {
                    m.operation == "EXPORT"
                        && m.target == dst_id
                        && !known.contains(m.name.as_str())
                })
                .map(|m| m.name.clone()),
        );
    }

    // Follow the jobs until each has finished.
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut failures: Vec<String> = Vec::new();
    let mut reported = Instant::now();
    loop {
        let now = migrations(src).await.map_err(err)?;
        let mut running: Vec<u16> = Vec::new();
        for name in &watch {
            if done.contains(name) {
                continue;
            }
            let Some(m) = now.iter().find(|m| &m.name == name) else {
                // Dropped from the log (it keeps recent jobs only): the next round's plan
                // sees from the slot map whether it moved.
                done.insert(name.clone());
                continue;
            };
            if m.succeeded() {
                state.slots_done += m.slots.len();
                state.keys_moved += m
                    .slots
                    .iter()
                    .map(|s| keys_in.get(s).copied().unwrap_or(0))
                    .sum::<u64>();
            } else if m.failed() {
                failures.push(format!("{} ({})", m.state, m.message));
                legacy.extend(m.slots.iter().copied());
            } else {
                running.extend(m.slots.iter().copied());
                continue;
            }
            done.insert(name.clone());
            state.elapsed = t0.elapsed();
            progress(*state);
        }
        if done.len() >= watch.len() {
            break;
        }
        if reported.elapsed() >= REPORT {
            reported = Instant::now();
            let partial = arrived(dst, &running, &keys_in).await.map_err(err)?;
            progress(Progress {
                slots_done: state.slots_done + partial.0,
                keys_moved: state.keys_moved + partial.1,
                elapsed: t0.elapsed(),
                ..*state
            });
        }
        tokio::time::sleep(POLL).await;
    }
    legacy.sort_unstable();
    legacy.dedup();
    Ok(Fallback {
        slots: legacy,
        why: (!failures.is_empty()).then(|| failures.join("; ")),
    })
}

/// What is left for the classic protocol, and why atomic migration did not move it.
pub struct Fallback {
    pub slots: Vec<u16>,
    pub why: Option<String>,
}

/// How far running jobs are: the target counts a slot's keys as they arrive during the
/// snapshot (`COUNTKEYSINSLOT`), before the hand-over makes them visible to clients. (slots
/// complete, keys arrived), measured against the source's counts at the start.
async fn arrived(
    dst: &mut Conn,
    slots: &[u16],
    keys_in: &HashMap<u16, u64>,
) -> Result<(usize, u64), ClientError> {
    let counts = super::keys_in_slots(dst, slots).await?;
    let mut out = (0, 0);
    for (s, n) in slots.iter().zip(counts) {
        let want = keys_in.get(s).copied().unwrap_or(0);
        let have = n.min(want);
        out.1 += have;
        if have >= want {
            out.0 += 1;
        }
    }
    Ok(out)
}

/// Slots with a classic MIGRATING (source) or IMPORTING (target) mark on this node.
async fn open_slots(c: &mut Conn, migrating: bool) -> Result<Vec<u16>, String> {
    let view = super::cluster_view(c).await?;
    Ok(view
        .iter()
        .filter(|l| l.flags.myself)
        .flat_map(|l| {
            if migrating {
                &l.migrating
            } else {
                &l.importing
            }
        })
        .map(|(s, _)| *s)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    /// Captured from valkey-server 9.1.2 (RESP2).
    #[test]
    fn parses_getslotmigrations() {
        let job = |name: &str, ranges: &str, st: &str, msg: &str| {
            Value::Array(vec![
                bulk("name"),
                bulk(name),
                bulk("operation"),
                bulk("EXPORT"),
                bulk("slot_ranges"),
                bulk(ranges),
                bulk("target_node"),
                bulk("b5cb704bd494cf751eab875fe4053fe5b811d3e9"),
                bulk("source_node"),
                bulk("1a9aabef65e8cdcac5f0f119d8e9540d6e475752"),
                bulk("create_time"),
                Value::Int(1795603164),
                bulk("state"),
                bulk(st),
                bulk("message"),
                bulk(msg),
                bulk("cow_size"),
                Value::Int(0),
            ])
        };
        let v = Value::Array(vec![
            job("5c32", "0-1364", "success", ""),
            job("77aa", "2000 3000-3001", "failed", "target OOM"),
            job("9911", "5", "failover-granted", ""),
        ]);
        let m = parse(&v);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].slots.len(), 1365);
        assert!(m[0].succeeded() && m[0].finished());
        assert_eq!(m[0].target, "b5cb704bd494cf751eab875fe4053fe5b811d3e9");
        assert_eq!(m[1].slots, vec![2000, 3000, 3001]);
        assert!(m[1].failed() && m[1].message == "target OOM");
        assert!(!m[2].finished());
        assert_eq!(m[2].slots, vec![5]);
    }
}
