//! `redisctl unit-start FILE PORT`: the start hook (`ExecStartPre=+`) of a data node's systemd
//! unit. Before every start — those `apply` asks for and those systemd makes on its own after a
//! crash — it applies the crash-safe restart rule (plan/restart.rs) to this one instance:
//! promote a replica first when the instance was a master that died, start a group member as a
//! replica of the group's master, or let it start in place. It writes the start's options
//! (`REDISCTL_ARGS=`) to the file the unit reads right before ExecStart.
//!
//! It never takes the state-directory lock: `apply` holds it while it starts units, and
//! waits for this hook. Its output goes to the unit's journal.

use std::path::Path;

use anyhow::Context as _;

use super::{Cli, Exit, context, runtime};
use crate::exec::Summary;
use crate::output::Printer;
use crate::plan::Plan;
use crate::plan::restart::{self, Comeback};
use crate::render::systemd::start_env_file;
use crate::topology::InstanceKey;

pub fn run(cli: &Cli, file: &Path, port: u16, out: &Printer) -> anyhow::Result<Exit> {
    let say = |m: String| eprintln!("redisctl unit-start: {m}");
    let env_file = start_env_file(port);
    // Whatever happens below, the previous start's options must not be reused by accident.
    write_env(&env_file, &[])?;
    let ctx = match context(cli, file, out) {
        Ok(c) => c,
        Err(e) => {
            // Fail open: an unreadable topology must not keep Redis down. Say it loudly.
            say(format!(
                "cannot read the topology ({e:#}); starting port {port} as it is, without the crash-safe restart check"
            ));
            return Ok(Exit::Ok);
        }
    };
    let Some(host) = &cli.host else {
        say(format!("no --host given; starting port {port} as it is"));
        return Ok(Exit::Ok);
    };
    let key = InstanceKey {
        host: host.clone(),
        port,
    };
    if !ctx.topology.instances().any(|i| i.key == key) {
        say(format!(
            "{key} is not declared in {} any more; starting it as it is",
            file.display()
        ));
        return Ok(Exit::Ok);
    }
    let rt = runtime()?;
    let deadline = std::time::Instant::now() + ctx.gate_timeout;
    let on_event = |_| {};
    loop {
        let obs = rt.block_on(ctx.observe());
        match restart::of(&ctx.topology, &obs, &key) {
            None | Some(Comeback::InPlace { why: None }) => return Ok(Exit::Ok),
            Some(Comeback::InPlace { why: Some(why) }) => {
                say(why);
                return Ok(Exit::Ok);
            }
            Some(Comeback::AsReplica { master }) => {
                say(format!(
                    "{key} starts as a replica of {master} (not promotable until it has synced)"
                ));
                write_env(
                    &env_file,
                    &crate::plan::replica_start_args(&ctx.topology, &master),
                )?;
                return Ok(Exit::Ok);
            }
            Some(Comeback::Refuse(why)) => {
                say(format!("not starting {key}: {why}"));
                return Ok(Exit::User);
            }
            Some(Comeback::PromoteFirst { step, why }) => {
                if std::time::Instant::now() > deadline {
                    say(format!(
                        "not starting {key}: the promotion did not finish within {} s ({why})",
                        ctx.gate_timeout.as_secs()
                    ));
                    return Ok(Exit::Failure);
                }
                say(why);
                let plan = Plan {
                    steps: vec![step],
                    ..Plan::default()
                };
                let mut summary = Summary::default();
                if let Err(e) = rt.block_on(ctx.execute(&plan, &on_event, &mut summary)) {
                    say(format!("{e}; asking again"));
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
            }
        }
    }
}

/// `REDISCTL_ARGS=...` for this start only, owner-only, written atomically.
fn write_env(path: &str, args: &[String]) -> anyhow::Result<()> {
    let path = Path::new(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let text = format!(
        "# Written by `redisctl unit-start` for this start only.\nREDISCTL_ARGS={}\n",
        args.join(" ")
    );
    crate::fsio::write_atomic(path, text.as_bytes(), 0o600)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
