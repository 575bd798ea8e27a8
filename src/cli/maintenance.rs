//! `drain`, `undrain`, `restart --rolling`: the CLI side (lock, progress, report).

use std::path::Path;

use super::{Cli, Exit, UserError, context, lock, runtime};
use crate::exec::maintenance::{self, Report};
use crate::exec::{Context, Event};
use crate::output::Printer;

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

fn run(
    ctx: &Context,
    out: &Printer,
    work: impl std::future::Future<Output = Result<Report, crate::exec::ExecError>>,
) -> anyhow::Result<Report> {
    let rt = runtime()?;
    let result = rt.block_on(async {
        tokio::select! {
            r = work => r.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(crate::exec::ExecError::Interrupted.into()),
        }
    });
    out.finish();
    let _ = ctx;
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

pub fn drain(
    cli: &Cli,
    file: &Path,
    host: &str,
    force: bool,
    move_slots: bool,
    out: &Printer,
) -> anyhow::Result<Exit> {
    let ctx = context(cli, file, out)?;
    let _lock = lock(&ctx)?;
    let on_event = |e| out.event(e);
    let r = run(&ctx, out, ctx.drain(host, force, move_slots, &on_event))?;
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
    out: &Printer,
) -> anyhow::Result<Exit> {
    let ctx = context(cli, file, out)?;
    let _lock = lock(&ctx)?;
    let on_event = |e| out.event(e);
    let r = run(&ctx, out, ctx.undrain(host, keep_roles, &on_event))?;
    print("Undrained", &r, out);
    Ok(Exit::Ok)
}

pub fn restart(cli: &Cli, file: &Path, out: &Printer) -> anyhow::Result<Exit> {
    let ctx = context(cli, file, out)?;
    refuse_if_drained(&ctx)?;
    let _lock = lock(&ctx)?;
    // The executor announces each instance's restart without its place in the sequence
    // ("[0/0] restart …"); number them here: every local instance is restarted once.
    let total = ctx.targets.iter().filter(|t| t.local).count();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let on_event = |e| match e {
        Event::StepStart {
            index: 0,
            total: 0,
            step,
        } if step.starts_with("restart ") => {
            let index = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            out.event(Event::StepStart { index, total, step })
        }
        e => out.event(e),
    };
    let r = run(&ctx, out, ctx.rolling_restart(&on_event))?;
    print("Restarted the instances of", &r, out);
    Ok(Exit::Ok)
}
