//! `drain`, `undrain`, `restart --rolling`: the CLI side (lock, progress, report).

use std::path::Path;

use super::{Cli, Exit, UserError, context, lock, runtime};
use crate::exec::maintenance::{self, Report};
use crate::exec::{Context, ExecError};
use crate::output::Printer;
use crate::plan::maintenance::{DrainOptions, Maintenance};

/// `apply` and `restart` on a drained host would bring back what drain stopped.
pub fn refuse_if_drained(ctx: &Context) -> anyhow::Result<()> {
    for host in super::local_hosts(ctx) {
        if let Some(m) = maintenance::load_mark(&ctx.state_dir, &host) {
            return Err(UserError(format!(
                "host {host} is drained (since unix time {}, {}); nothing was changed. `redisctl undrain FILE {host}` brings it back",
                m.since,
                maintenance::mark_path(&ctx.state_dir, &host).display()
            ))
            .into());
        }
    }
    Ok(())
}

/// Run a maintenance command to its end, or until Ctrl-C (exit 130; every step is safe to
/// resume).
fn run<T>(
    out: &Printer,
    work: impl std::future::Future<Output = Result<T, ExecError>>,
) -> anyhow::Result<T> {
    let rt = runtime()?;
    let result = rt.block_on(async {
        tokio::select! {
            r = work => r.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(ExecError::Interrupted.into()),
        }
    });
    out.finish();
    result
}

fn print(verb: &str, r: &Report, out: &Printer) {
    if out.json() {
        out.document(&serde_json::json!({
            "ok": true,
            "host": r.host,
            "moved": r.moved,
            "slots_moved": r.slots_moved,
            "stopped": r.stopped,
            "started": r.started,
            "restarted": r.restarted,
            "left": r.left,
            "secs": r.ms as f64 / 1000.0,
        }));
        return;
    }
    for h in &r.moved {
        println!(
            "  {} → {} ({}): master moved in {:.1} s",
            h.from,
            h.to,
            h.of,
            h.ms as f64 / 1000.0
        );
    }
    for s in &r.slots_moved {
        println!("  {s}");
    }
    let list = |v: &[crate::topology::InstanceKey]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !r.started.is_empty() {
        println!("  started: {}", list(&r.started));
    }
    if !r.restarted.is_empty() {
        println!("  restarted: {}", list(&r.restarted));
    }
    if !r.stopped.is_empty() {
        println!("  stopped: {}", list(&r.stopped));
    }
    for l in &r.left {
        println!("  left: {l}");
    }
    println!("{verb} {} in {:.1} s.", r.host, r.ms as f64 / 1000.0);
}

/// `--dry-run`: print the plan as `redisctl plan` does (text, or `--output json`); a plan
/// with refusals exits 1 naming them.
fn dry_run(m: &Maintenance, what: &str, out: &Printer) -> anyhow::Result<Exit> {
    super::print_plan(&m.plan, &[], out);
    maintenance::refuse_halted(m, what)?;
    Ok(Exit::Ok)
}

pub fn drain(
    cli: &Cli,
    file: &Path,
    host: &str,
    opts: DrainOptions,
    dry: bool,
    out: &Printer,
) -> anyhow::Result<Exit> {
    let ctx = context(cli, file, out)?;
    if dry {
        let m = runtime()?.block_on(ctx.plan_drain(host, opts))?;
        return dry_run(&m, &format!("drain {host}"), out);
    }
    let _lock = lock(&ctx)?;
    let on_event = |e| out.event(e);
    let work = ctx.drain(host, opts.force, opts.move_slots, &on_event);
    let r = run(out, work)?;
    print("Drained", &r, out);
    if !out.json() {
        println!(
            "`redisctl undrain {} {host}` brings it back.",
            file.display()
        );
    }
    Ok(Exit::Ok)
}

pub fn undrain(
    cli: &Cli,
    file: &Path,
    host: &str,
    keep_roles: bool,
    dry: bool,
    out: &Printer,
) -> anyhow::Result<Exit> {
    let ctx = context(cli, file, out)?;
    if dry {
        let m = runtime()?.block_on(ctx.plan_undrain(host, keep_roles))?;
        return dry_run(&m, &format!("undrain {host}"), out);
    }
    let _lock = lock(&ctx)?;
    let on_event = |e| out.event(e);
    let r = run(out, ctx.undrain(host, keep_roles, &on_event))?;
    print("Undrained", &r, out);
    Ok(Exit::Ok)
}

pub fn restart(cli: &Cli, file: &Path, dry: bool, out: &Printer) -> anyhow::Result<Exit> {
    let ctx = context(cli, file, out)?;
    refuse_if_drained(&ctx)?;
    if dry {
        let m = runtime()?.block_on(ctx.plan_rolling_restart())?;
        return dry_run(&m, "restart --rolling", out);
    }
    let _lock = lock(&ctx)?;
    let on_event = |e| out.event(e);
    let r = run(out, ctx.rolling_restart(&on_event))?;
    print("Restarted the instances of", &r, out);
    Ok(Exit::Ok)
}

/// `redisctl failover NODE`.
pub fn failover(
    cli: &Cli,
    file: &Path,
    node: &str,
    force: bool,
    dry: bool,
    out: &Printer,
) -> anyhow::Result<Exit> {
    let ctx = context(cli, file, out)?;
    let key = super::resolve_node(&ctx.topology, node)?;
    if dry {
        let m = runtime()?.block_on(ctx.plan_failover(&key, force))?;
        return dry_run(&m, &format!("failover to {key}"), out);
    }
    let _lock = lock(&ctx)?;
    let t0 = std::time::Instant::now();
    let on_event = |e| out.event(e);
    run(out, ctx.failover(&key, force, &on_event))?;
    if out.json() {
        out.document(&serde_json::json!({"ok": true, "master": key.to_string(), "elapsed_ms": t0.elapsed().as_millis() as u64}));
    } else {
        println!(
            "{key} is now the master; every node agrees ({:.1} s).",
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(Exit::Ok)
}
