//! Command line: clap definitions → validated topology → one function per subcommand. The
//! only layer that uses anyhow and decides exit codes.

mod agent;
mod check;
mod files;
mod maintenance;
mod manpages;
mod status;
mod unit_start;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{CommandFactory, Parser, Subcommand};

use crate::exec::{self, Context, ExecError};
use crate::observe::{Target, TargetKind};
use crate::output::{Format, Printer};
use crate::render::{self, InstancePaths, LogTarget};
use crate::supervise::{Managed, Supervisor, process::ProcessSupervisor, systemd};
use crate::topology::{self, Topology, TopologyError};

pub use crate::exit::Exit;

/// Invalid input or a refused operation: exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UserError(String);

/// `-v`: the commands sent to Redis (debug events of observe::client), `-vv`: their replies
/// too; plain lines on stderr. Quiet by default.
fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .try_init();
}

/// The exit code of a failed run, from the first error in the chain that knows its own
/// (an interruption is an `ExecError::Interrupted`, never recognised by its text).
fn exit_of(e: &anyhow::Error) -> Exit {
    for cause in e.chain() {
        if let Some(x) = cause.downcast_ref::<ExecError>() {
            return x.exit();
        }
        if cause.is::<TopologyError>() || cause.is::<UserError>() {
            return Exit::User;
        }
    }
    Exit::Failure
}

#[derive(Parser)]
#[command(
    name = "redisctl",
    version,
    about = "Turn a declarative YAML topology into a running, healthy Redis deployment: Redis Cluster, master-replica groups and Sentinels",
    after_help = "Exit codes: 0 ok, 1 invalid input / refused / drift (plan --exit-code), 2 failure, 130 interrupted."
)]
pub struct Cli {
    /// Output format for reports.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "text")]
    output: Format,
    /// Root of the state directories (overrides the topology's state_dir).
    #[arg(long, global = true, env = "REDISCTL_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Seconds each convergence gate may wait before naming what is missing.
    #[arg(long, global = true, default_value_t = 60)]
    timeout: u64,
    /// Who runs the instances: `systemd` units (redis@PORT), or redisctl's own `process`
    /// supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        env = "REDISCTL_SUPERVISOR"
    )]
    supervisor: SupervisorChoice,
    /// Which of the topology's hosts this machine is (default: the hosts whose address is
    /// local here). Only this host's instances are started, stopped or rewritten.
    #[arg(long, global = true, env = "REDISCTL_HOST", value_name = "NAME")]
    host: Option<String>,
    /// Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also
    /// the replies.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SupervisorChoice {
    Auto,
    Process,
    Systemd,
}

#[derive(Subcommand)]
enum Command {
    /// Check a topology file; report every problem with file:line:column.
    Validate { file: PathBuf },
    /// Write (or print) the files redisctl would generate for each instance.
    Render {
        file: PathBuf,
        /// Write the state layout under DIR instead of printing (secrets are redacted).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show the numbered steps `apply` would execute. Changes nothing.
    Plan {
        file: PathBuf,
        /// Exit 1 when there is something to do.
        #[arg(long)]
        exit_code: bool,
    },
    /// Converge the live deployment to the topology.
    Apply {
        file: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Move mastership back to the preferred masters: cluster shards (CLUSTER FAILOVER) and
        /// replication groups (SENTINEL FAILOVER), one safe failover at a time.
        #[arg(long)]
        restore_roles: bool,
        /// When moving slots, overwrite keys that already exist on the target (BUSYKEY). Never
        /// in a move resumed after its source master was replaced: there the target's copy is
        /// the acknowledged one and the source's stale copy is deleted instead.
        #[arg(long)]
        replace: bool,
        /// How slots move: atomic slot migration when both nodes offer it (Valkey 9.0+
        /// `CLUSTER MIGRATESLOTS`), else the classic protocol (auto); or only one of them.
        #[arg(long, value_enum, default_value = "auto", value_name = "HOW")]
        slot_migration: crate::exec::migrate::Method,
        /// Delete the data directories of nodes removed from the topology.
        #[arg(long)]
        purge: bool,
        /// Stop and disable the distribution's own Redis service (e.g. redis-server) when it
        /// holds a port the topology wants, instead of refusing.
        #[arg(long)]
        stop_distro_redis: bool,
        /// The host whose `apply` makes cluster-level changes (default: the first host in
        /// `hosts`); name another while that one is down or drained.
        #[arg(long, value_name = "HOST")]
        coordinator: Option<String>,
    },
    /// Move every master off HOST (safe manual failovers; slot moves only with
    /// --move-slots), then stop HOST's instances and mark it drained. Run it on HOST.
    Drain {
        file: PathBuf,
        /// The host to drain (this machine).
        #[arg(value_name = "HOST")]
        target: String,
        /// Drain even though the pre-checks found a risk (printed); never loses acknowledged
        /// writes by itself, but may leave shards without a replica.
        #[arg(long)]
        force: bool,
        /// Move the slots of a master that has no in-sync replica on another host to the
        /// other masters (instead of refusing).
        #[arg(long)]
        move_slots: bool,
        /// Print the plan (steps, refusals, notes) and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Start HOST's instances again, wait until its replicas have resynchronised, restore the
    /// roles recorded by `drain` (safe manual failovers) and clear the mark. Run it on HOST.
    Undrain {
        file: PathBuf,
        /// The drained host (this machine).
        #[arg(value_name = "HOST")]
        target: String,
        /// Leave mastership where it is now.
        #[arg(long)]
        keep_roles: bool,
        /// Print this round's plan and change nothing (roles are planned in the round that
        /// finds the host's instances caught up).
        #[arg(long)]
        dry_run: bool,
    },
    /// Restart this host's instances one at a time (replicas first; a master only after a
    /// safe failover to a replica, and back; Sentinels last), waiting for each to catch up.
    Restart {
        file: PathBuf,
        /// One at a time, never losing availability (the only mode).
        #[arg(long, required = true)]
        rolling: bool,
        /// Print the plan (steps, refusals, notes) and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Per-node state: role, shard, slots, links, replication, keys, memory, persistence.
    /// Exits 2 when no declared node answers (not started, wrong password, unreachable).
    Status { file: PathBuf },
    /// Verify the live deployment: membership and slot maps agree everywhere, full coverage,
    /// no open slots, replicas as declared, master and replica on different hosts, no drift.
    /// Exits 1 when anything is wrong.
    Check { file: PathBuf },
    /// Make a replica the master of its shard or group (CLUSTER FAILOVER / SENTINEL
    /// FAILOVER) and wait until every node agrees. Refuses a lagging replica unless --force.
    Failover {
        file: PathBuf,
        /// The replica: host:port, or a port when it is unambiguous.
        node: String,
        #[arg(long)]
        force: bool,
        /// Print the plan (steps, refusals, notes) and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run this host's control loop: every `agent.interval`, observe, plan and execute the
    /// healing part of this host's plan (as `apply` would); report the rest. Runs until
    /// stopped (the unit redisctl-agent@NAME).
    Agent { file: PathBuf },
    /// Pause the agent on this host (persisted): it observes and reports, and changes nothing.
    Pause {
        file: PathBuf,
        /// Why (shown by `status` and in the agent's status line).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume the agent on this host after `pause`.
    Resume { file: PathBuf },
    /// Stop every instance and delete its state and data. Needs --yes.
    Destroy {
        file: PathBuf,
        /// Confirm that the deployment's data is to be deleted.
        #[arg(long)]
        yes: bool,
    },
    /// Hash slot of each key (CRC16 with {hash tags}, as CLUSTER KEYSLOT).
    Keyslot {
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Print the JSON Schema of the topology format.
    Schema,
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
    /// The start hook of a data node's systemd unit (ExecStartPre): decide how the instance
    /// at PORT on --host may come back (crash-safe restarts) and write its start options.
    #[command(hide = true)]
    UnitStart { file: PathBuf, port: u16 },
    /// Write the man pages into DIR (packaging).
    #[command(hide = true)]
    Man {
        #[arg(long, default_value = "man")]
        out: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let printer = Printer::new(cli.output);
    let result = run(&cli, &printer);
    printer.finish();
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            let code = exit_of(&e);
            if printer.json() {
                printer.document(&serde_json::json!({
                    "ok": false,
                    "error": format!("{e:#}"),
                    "diagnostics": e.downcast_ref::<TopologyError>().map(|t| &t.diagnostics),
                }));
            }
            match e.downcast_ref::<TopologyError>() {
                // Each diagnostic carries its own "file:line:col: error:" prefix; only the
                // summary line gets ours, so no line says "error:" twice.
                Some(t) => {
                    for d in &t.diagnostics {
                        eprintln!("{d}");
                    }
                    eprintln!("error: {}", t.summary());
                }
                None => eprintln!("error: {e:#}"),
            }
            code
        }
    };
    ExitCode::from(code as u8)
}

fn run(cli: &Cli, out: &Printer) -> anyhow::Result<Exit> {
    match &cli.command {
        Command::Validate { file } => validate(file, out),
        Command::Keyslot { keys } => {
            let rows: Vec<(String, u16)> = keys
                .iter()
                .map(|k| (k.clone(), topology::slots::key_slot(k.as_bytes())))
                .collect();
            if out.json() {
                out.document(&serde_json::json!(
                    rows.iter()
                        .map(|(k, s)| serde_json::json!({"key": k, "slot": s}))
                        .collect::<Vec<_>>()
                ));
            } else {
                for (k, s) in rows {
                    println!("{s}\t{k}");
                }
            }
            Ok(Exit::Ok)
        }
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&topology::json_schema())?
            );
            Ok(Exit::Ok)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "redisctl",
                &mut std::io::stdout(),
            );
            Ok(Exit::Ok)
        }
        Command::Render { file, out: dir } => render_cmd(cli, file, dir.as_deref(), out),
        Command::Man { out: dir } => {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            for (name, text) in manpages::pages() {
                std::fs::write(dir.join(&name), text)
                    .with_context(|| format!("write {}", dir.join(&name).display()))?;
            }
            Ok(Exit::Ok)
        }
        Command::Plan { file, exit_code } => {
            let ctx = context(cli, file, out)?;
            let rt = runtime()?;
            let obs = rt.block_on(ctx.observe());
            let plan = crate::plan::plan(&ctx.topology, &obs);
            let estimates = rt.block_on(ctx.estimate_moves(&plan));
            let down = rt.block_on(check::down(&ctx.topology, &obs, &ctx.state_dir));
            print_plan_with(&plan, &estimates, &down_lines(&ctx, &down), out);
            if plan.halted() {
                return Err(UserError(format!(
                    "plan is blocked:\n  - {}",
                    plan.blockers
                        .iter()
                        .map(ToString::to_string)
                        .chain(plan.waits.iter().map(ToString::to_string))
                        .collect::<Vec<_>>()
                        .join("\n  - ")
                ))
                .into());
            }
            Ok(if *exit_code && !plan.is_empty() {
                Exit::User
            } else {
                Exit::Ok
            })
        }
        Command::Apply {
            file,
            yes,
            restore_roles,
            replace,
            slot_migration,
            purge,
            stop_distro_redis,
            coordinator,
        } => {
            let opts = crate::plan::Options {
                restore_roles: *restore_roles,
                purge: *purge,
                ..Default::default()
            };
            let flags = ApplyFlags {
                yes: *yes,
                replace: *replace,
                migration: *slot_migration,
                stop_distro_redis: *stop_distro_redis,
                coordinator: coordinator.clone(),
            };
            apply(cli, file, opts, &flags, out)
        }
        Command::Drain {
            file,
            target,
            force,
            move_slots,
            dry_run,
        } => {
            let opts = crate::plan::maintenance::DrainOptions {
                force: *force,
                move_slots: *move_slots,
            };
            maintenance::drain(cli, file, target, opts, *dry_run, out)
        }
        Command::Undrain {
            file,
            target,
            keep_roles,
            dry_run,
        } => maintenance::undrain(cli, file, target, *keep_roles, *dry_run, out),
        Command::Restart { file, dry_run, .. } => maintenance::restart(cli, file, *dry_run, out),
        Command::Status { file } => {
            let ctx = context(cli, file, out)?;
            let rt = runtime()?;
            let obs = rt.block_on(ctx.observe());
            let answered = status::print(&ctx, &obs, out);
            if !out.json() {
                println!("\n{}", agent::describe(&ctx.state_dir));
            }
            if answered == 0 {
                eprintln!("error: {}", status::nobody_answered(&ctx, &obs));
                return Ok(Exit::Failure);
            }
            Ok(Exit::Ok)
        }
        Command::Destroy { file, yes } => destroy(cli, file, *yes, out),
        Command::Agent { file } => agent::run(cli, file, out),
        Command::Pause { file, reason } => agent::pause(cli, file, reason.as_deref(), out),
        Command::Resume { file } => agent::resume(cli, file, out),
        Command::UnitStart { file, port } => unit_start::run(cli, file, *port, out),
        Command::Check { file } => {
            let ctx = context(cli, file, out)?;
            let rt = runtime()?;
            let obs = rt.block_on(ctx.observe());
            let down = rt.block_on(check::down(&ctx.topology, &obs, &ctx.state_dir));
            let mut findings = check::findings(&ctx.topology, &obs, &down, &local_hosts(&ctx));
            findings.extend(files::certificate_findings(
                &ctx.topology,
                crate::observe::unix_now() as i64,
            ));
            if out.json() {
                out.document(
                    &serde_json::json!({ "ok": findings.is_empty(), "findings": findings }),
                );
            } else if findings.is_empty() {
                println!("OK: the deployment matches the topology and every node agrees.");
            } else {
                println!("{} problem(s):", findings.len());
                for f in &findings {
                    println!("  - {f}");
                }
            }
            Ok(if findings.is_empty() {
                Exit::Ok
            } else {
                Exit::User
            })
        }
        Command::Failover {
            file,
            node,
            force,
            dry_run,
        } => maintenance::failover(cli, file, node, *force, *dry_run, out),
    }
}

/// `host:port`, or a port that only one instance uses.
pub(crate) fn resolve_node(
    t: &Topology,
    text: &str,
) -> anyhow::Result<crate::topology::InstanceKey> {
    let all: Vec<&crate::topology::InstanceKey> = t.instances().map(|i| &i.key).collect();
    let found: Vec<&&crate::topology::InstanceKey> = all
        .iter()
        .filter(|k| k.to_string() == text || k.port.to_string() == text)
        .collect();
    match found.as_slice() {
        [one] => Ok((**one).clone()),
        [] => Err(UserError(format!("no instance {text:?} in the topology")).into()),
        _ => Err(UserError(format!("{text:?} is ambiguous; write host:port")).into()),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn load(file: &Path, out: &Printer) -> anyhow::Result<Topology> {
    let loaded = topology::load(file)?;
    for w in &loaded.warnings {
        out.info(w.to_string());
    }
    Ok(loaded.topology)
}

fn validate(file: &Path, out: &Printer) -> anyhow::Result<Exit> {
    let loaded = topology::load(file)?;
    let t = &loaded.topology;
    // What `apply` would refuse about the files the topology names, reported here too.
    files::read_secrets(file, t)?;
    files::read_tls(file, t, &|h| is_local(h.address))?;
    let n = t.instances().count();
    let sentinels = t.sentinels().count();
    let shards = t.cluster.as_ref().map_or(0, |c| c.shards.len());
    if out.json() {
        out.document(&serde_json::json!({
            "ok": true, "file": file.display().to_string(), "instances": n, "shards": shards,
            "sentinels": sentinels, "diagnostics": loaded.warnings,
        }));
    } else {
        for w in &loaded.warnings {
            eprintln!("{w}");
        }
        let sentinels = if sentinels > 0 {
            format!(", {sentinels} Sentinel(s)")
        } else {
            String::new()
        };
        println!(
            "{}: ok: deployment {:?}, {} host(s), {shards} shard(s), {n} Redis instance(s){sentinels}",
            file.display(),
            t.name,
            t.hosts.len()
        );
    }
    Ok(Exit::Ok)
}

fn state_dir(cli: &Cli, t: &Topology) -> PathBuf {
    cli.state_dir
        .clone()
        .unwrap_or_else(|| t.default_state_dir())
}

fn is_local(addr: std::net::IpAddr) -> bool {
    addr.is_loopback() || std::net::UdpSocket::bind((addr, 0)).is_ok()
}

fn redis_binary() -> PathBuf {
    std::env::var_os("REDISCTL_REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

fn sentinel_binary() -> PathBuf {
    std::env::var_os("REDISCTL_REDIS_SENTINEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-sentinel"))
}

fn context(cli: &Cli, file: &Path, out: &Printer) -> anyhow::Result<Context> {
    let topology = load(file, out)?;
    let state_dir = state_dir(cli, &topology);
    let state_dir = if state_dir.is_relative() {
        std::env::current_dir()?.join(state_dir)
    } else {
        state_dir
    };
    files::plain_path("the state directory", &state_dir).map_err(UserError)?;
    let secrets = files::read_secrets(file, &topology)?;
    let password = secrets
        .as_ref()
        .map(|s| render::acl::credentials(&topology, s));
    // systemd collects stdout into the journal; the process supervisor needs log files.
    let (supervisor, log): (Arc<dyn Supervisor>, LogTarget) = if use_systemd(cli, &state_dir)? {
        let hook = systemd::HookSpec {
            redisctl: std::env::current_exe().context("cannot find the redisctl binary")?,
            topology: std::path::absolute(file)
                .with_context(|| format!("cannot resolve {}", file.display()))?,
            state_root: state_dir.clone(),
        };
        (
            Arc::new(systemd::SystemdSupervisor::new(Some(hook))),
            LogTarget::Stdout,
        )
    } else {
        (Arc::new(ProcessSupervisor), LogTarget::File)
    };
    if let Some(h) = &cli.host
        && !topology.hosts.iter().any(|x| &x.name == h)
    {
        let names: Vec<&str> = topology.hosts.iter().map(|h| h.name.as_str()).collect();
        bail!(UserError(format!(
            "--host {h}: no such host in {}; hosts are: {}",
            file.display(),
            names.join(", ")
        )));
    }
    // --host names this machine; otherwise every host whose address is local here.
    let here = |host: &str, addr: std::net::IpAddr| match &cli.host {
        Some(h) => h == host,
        None => is_local(addr),
    };
    // TLS on: every connection redisctl opens from here on speaks TLS (observe/tls.rs).
    let tls = files::read_tls(file, &topology, &|h| here(&h.name, h.address))?;
    // Mode both: the declared ports stay plain, and redisctl keeps dialing them plain.
    crate::observe::tls::install(
        tls.as_ref()
            .filter(|_| topology.tls_only().is_some())
            .map(|(_, cfg)| cfg.clone()),
    );
    crate::observe::tls::set_declared_off(
        topology
            .tls
            .as_ref()
            .is_some_and(|t| t.mode != crate::topology::TlsMode::On),
    );
    // Switching to mode on: nodes not switched yet still answer plain on the declared port.
    crate::observe::tls::set_plain_fallback(
        topology.tls_only().is_some() && topology.tls_switching().is_some(),
    );
    let tls = tls.map(|(m, _)| m);
    let binary = redis_binary();
    let sentinel_binary = sentinel_binary();
    for (what, b) in [
        ("REDISCTL_REDIS_SERVER", &binary),
        ("REDISCTL_REDIS_SENTINEL", &sentinel_binary),
    ] {
        files::plain_path(what, b).map_err(UserError)?;
    }
    let mut targets: Vec<Target> = topology
        .instances()
        .map(|inst| Target {
            managed: Managed {
                key: inst.key.clone(),
                address: inst.address,
                port: inst.port,
                paths: InstancePaths::new(&state_dir, &inst.key),
                binary: binary.clone(),
                config_via_stdin: true,
            },
            endpoint: inst.endpoint(),
            local: here(&inst.key.host, inst.address),
            rendered: render::instance_files(
                &topology,
                &state_dir,
                inst,
                log,
                secrets.as_ref(),
                tls.as_ref(),
            ),
            kind: if inst.group.is_some() {
                TargetKind::Group
            } else {
                TargetKind::Cluster
            },
            live_params: {
                let mut v = render::live_params(&topology, inst);
                v.extend(render::tls_live_params(
                    &topology,
                    &state_dir,
                    inst,
                    tls.as_ref(),
                ));
                v
            },
            acl: secrets
                .as_ref()
                .map(|s| render::acl::live_users(&topology, s))
                .unwrap_or_default(),
            auth_pass: secrets
                .as_ref()
                .map(|s| render::acl::masterauth(&topology, s)),
        })
        .collect();
    targets.extend(topology.sentinels().map(|s| {
        Target {
            managed: Managed {
                key: s.key.clone(),
                address: s.address,
                port: s.port,
                paths: InstancePaths::sentinel(&state_dir, &s.key),
                binary: sentinel_binary.clone(),
                config_via_stdin: false,
            },
            endpoint: s.endpoint(),
            local: here(&s.key.host, s.address),
            rendered: render::sentinel_files(
                &topology,
                &state_dir,
                s,
                log,
                secrets.as_ref(),
                tls.as_ref(),
            ),
            kind: TargetKind::Sentinel,
            live_params: render::sentinel_tls_params(&topology, &state_dir, s, tls.as_ref()),
            // The Sentinel's own password (requirepass, sentinel-pass): the admin passwords.
            acl: secrets.iter().map(render::acl::default_user).collect(),
            auth_pass: secrets
                .as_ref()
                .map(|s| render::acl::sentinel_pass(&topology, s)),
        }
    }));
    Ok(Context {
        topology,
        state_dir,
        supervisor,
        password,
        targets,
        gate_timeout: Duration::from_secs(cli.timeout.max(1)),
        call_timeout: Duration::from_millis(2000),
        options: crate::plan::Options::default(),
        replace: false,
        migration: Default::default(),
        record_lock: tokio::sync::Mutex::new(()),
        coordinator_elsewhere: None,
    })
}

fn use_systemd(cli: &Cli, state_dir: &Path) -> anyhow::Result<bool> {
    match cli.supervisor {
        // State the units' sandbox cannot see (/tmp, /home) stays with the process supervisor.
        SupervisorChoice::Auto => Ok(systemd::auto_selects_systemd()
            && render::systemd::visible(state_dir).is_ok()),
        SupervisorChoice::Process => Ok(false),
        SupervisorChoice::Systemd if !systemd::systemd_is_pid1() => Err(UserError(
            "--supervisor systemd: systemd is not the service manager here (no /run/systemd/system); use --supervisor process".into(),
        )
        .into()),
        SupervisorChoice::Systemd if !nix::unistd::geteuid().is_root() => Err(UserError(
            "--supervisor systemd needs root (it installs units); run with sudo or use --supervisor process".into(),
        )
        .into()),
        SupervisorChoice::Systemd => Ok(true),
    }
}

/// The distribution's own Redis service on a port the topology wants: refuse, naming the
/// unit and the way out, or stop and disable it with --stop-distro-redis.
fn distro_redis_guard(ctx: &Context, stop: bool, out: &Printer) -> anyhow::Result<()> {
    if !systemd::systemd_is_pid1() {
        return Ok(());
    }
    let ports: Vec<u16> = ctx
        .targets
        .iter()
        .filter(|t| t.local)
        .flat_map(|t| {
            let bus = (t.kind == TargetKind::Cluster)
                .then(|| t.managed.port.checked_add(10000))
                .flatten();
            [Some(t.managed.port), bus]
        })
        .flatten()
        .collect();
    let conflicts = systemd::distro_conflicts(&ports);
    if conflicts.is_empty() {
        return Ok(());
    }
    if !stop {
        let lines: Vec<String> = conflicts.iter().map(|c| format!("\n  - {c}")).collect();
        return Err(UserError(format!(
            "the distribution's Redis is in the way; nothing was changed:{}",
            lines.concat()
        ))
        .into());
    }
    for c in conflicts {
        out.info(format!(
            "stopping and disabling {} (it held port {})",
            c.unit, c.port
        ));
        systemd::stop_distro_unit(&c.unit).map_err(|e| anyhow!(e))?;
    }
    Ok(())
}

fn render_cmd(cli: &Cli, file: &Path, dir: Option<&Path>, out: &Printer) -> anyhow::Result<Exit> {
    let t = load(file, out)?;
    let root = match dir {
        Some(d) => d.to_path_buf(),
        None => state_dir(cli, &t),
    };
    let redacted = "<redacted: read from the password files at apply>";
    let secrets = t.auth.as_ref().map(|a| render::Secrets {
        password: redacted.into(),
        previous: vec![redacted.to_string(); a.password_files.len().saturating_sub(1)],
        users: a
            .acl
            .iter()
            .flat_map(|acl| &acl.users)
            .map(|u| {
                (
                    u.name.clone(),
                    vec![redacted.to_string(); u.password_files.len()],
                )
            })
            .collect(),
        replication: a
            .acl
            .iter()
            .flat_map(|acl| &acl.replication_password_files)
            .map(|_| redacted.to_string())
            .collect(),
        sentinel: Vec::new(),
    });
    let pw = secrets.as_ref();
    // Certificates and keys are copied at apply; the printed files name placeholders.
    let tls = t.tls_files().map(|_| render::tls::TlsMaterial {
        ca: redacted.as_bytes().to_vec(),
        hosts: t
            .hosts
            .iter()
            .map(|h| {
                let r = redacted.as_bytes().to_vec();
                (h.name.clone(), (r.clone(), r))
            })
            .collect(),
    });
    let tls = tls.as_ref();
    let mut written = Vec::new();
    // Sentinels' files as `apply` first writes them (Sentinel rewrites them afterwards).
    let files = t
        .instances()
        .flat_map(|inst| render::instance_files(&t, &root, inst, LogTarget::File, pw, tls))
        .chain(
            t.sentinels()
                .flat_map(|s| render::sentinel_files(&t, &root, s, LogTarget::File, pw, tls)),
        );
    {
        for f in files {
            match dir {
                Some(_) => {
                    let parent = f.path.parent().unwrap_or(Path::new("."));
                    crate::fsio::ensure_dir(parent, 0o750)
                        .with_context(|| format!("create {}", parent.display()))?;
                    crate::fsio::write_atomic(&f.path, &f.contents, f.mode)
                        .with_context(|| format!("write {}", f.path.display()))?;
                }
                None if !out.json() => {
                    println!("==> {} <==", f.path.display());
                    println!("{}", String::from_utf8_lossy(&f.contents));
                }
                None => {}
            }
            written.push(f.path.display().to_string());
        }
    }
    if out.json() {
        out.document(&serde_json::json!({ "ok": true, "files": written }));
    } else if dir.is_some() {
        println!("wrote {} files under {}", written.len(), root.display());
    }
    Ok(Exit::Ok)
}

/// Declared nodes that do not answer, one line per host (see `check::Down`).
fn down_lines(ctx: &Context, down: &[check::Down]) -> Vec<String> {
    let local = local_hosts(ctx);
    down.iter()
        .map(|d| d.describe(local.contains(&d.host)))
        .collect()
}

/// What a run that found nothing to do may say: "matches" only when every declared node
/// answered; otherwise which do not (on a drained or failed host `apply` cannot help).
fn nothing_to_do(down: &[String]) -> String {
    if down.is_empty() {
        return "Nothing to do: the deployment matches the topology.".into();
    }
    format!(
        "Nothing to do from here, but the deployment does not match the topology: declared nodes are down or on a drained host:\n  - {}",
        down.join("\n  - ")
    )
}

pub(crate) fn print_plan(plan: &crate::plan::Plan, down: &[String], out: &Printer) {
    print_plan_with(plan, &[], down, out)
}

fn print_plan_with(
    plan: &crate::plan::Plan,
    estimates: &[(usize, u64, u64)],
    down: &[String],
    out: &Printer,
) {
    if out.json() {
        out.document(&serde_json::json!({
            "steps": plan.steps, "blockers": plan.blockers, "waits": plan.waits, "notes": plan.notes, "partial": plan.partial,
            "empty": plan.is_empty(), "down": down,
            "moves": estimates.iter().map(|(i, k, b)| serde_json::json!({"step": i, "keys": k, "bytes": b})).collect::<Vec<_>>(),
        }));
        return;
    }
    for n in &plan.notes {
        eprintln!("note: {n}");
    }
    if plan.is_empty() {
        println!("{}", nothing_to_do(down));
        return;
    }
    if !plan.steps.is_empty() {
        println!("Plan: {} step(s)", plan.steps.len());
        print!("{}", exec::render_plan_with(plan, estimates));
        if plan.partial {
            println!("  (more steps follow once the started nodes report their state)");
        }
    }
}

fn lock(ctx: &Context) -> anyhow::Result<crate::fsio::StateLock> {
    // The agent takes this lock for each of its rounds (a few seconds at most, bounded by
    // the gate timeout): wait for the round to end rather than refuse.
    let deadline = std::time::Instant::now() + ctx.gate_timeout;
    let mut said = false;
    let mut result = crate::fsio::lock_state(&ctx.state_dir);
    while let Err(e) = &result
        && e.kind() == std::io::ErrorKind::WouldBlock
        && std::time::Instant::now() < deadline
        && let Some(pid) = crate::fsio::agent_pid(&ctx.state_dir)
    {
        if !said {
            eprintln!("waiting for the agent (pid {pid}) to finish its round...");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(100));
        result = crate::fsio::lock_state(&ctx.state_dir);
    }
    result.map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            anyhow::Error::from(UserError(e.to_string()))
        } else {
            anyhow!("cannot lock {}: {e}", ctx.state_dir.display())
        }
    })
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(UserError(format!(
            "{question}: stdin is not a terminal; pass --yes to confirm"
        ))
        .into());
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

struct ApplyFlags {
    yes: bool,
    replace: bool,
    migration: crate::exec::migrate::Method,
    stop_distro_redis: bool,
    coordinator: Option<String>,
}

fn apply(
    cli: &Cli,
    file: &Path,
    options: crate::plan::Options,
    flags: &ApplyFlags,
    out: &Printer,
) -> anyhow::Result<Exit> {
    let yes = flags.yes;
    let mut ctx = context(cli, file, out)?;
    ctx.options = options;
    ctx.replace = flags.replace;
    ctx.migration = flags.migration;
    ctx.coordinator_elsewhere = coordinator_elsewhere(&ctx, flags.coordinator.as_deref())?;
    maintenance::refuse_if_drained(&ctx)?;
    distro_redis_guard(&ctx, flags.stop_distro_redis, out)?;
    let _lock = lock(&ctx)?;
    if let Some(c) = &ctx.coordinator_elsewhere {
        out.info(format!(
            "this host realises its own instances; cluster-level changes are made by `redisctl apply` on {c} (the coordinator)"
        ));
    }
    let rt = runtime()?;
    let t0 = std::time::Instant::now();
    if !yes {
        let obs = rt.block_on(ctx.observe());
        let plan = crate::plan::plan_with(&ctx.topology, &obs, ctx.options);
        let down = down_lines(
            &ctx,
            &rt.block_on(check::down(&ctx.topology, &obs, &ctx.state_dir)),
        );
        if plan.is_empty() {
            print_plan(&plan, &down, out);
            return Ok(Exit::Ok);
        }
        if !out.json() {
            print_plan(&plan, &down, out);
        }
        if !plan.halted() && !confirm("Apply these steps?")? {
            return Err(UserError("aborted; nothing was changed".into()).into());
        }
    }
    let on_event = |e| out.event(e);
    let result = rt.block_on(async {
        tokio::select! {
            r = ctx.apply(&on_event) => r.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(ExecError::Interrupted.into()),
        }
    });
    out.finish();
    let summary = match result {
        Ok(s) => s,
        Err(e) if exit_of(&e) == Exit::Interrupted => {
            eprintln!(
                "interrupted: every step is safe to resume; run `redisctl apply` again to finish"
            );
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    for n in &summary.notes {
        out.info(format!("note: {n}"));
    }
    // One more look: what is declared but not answering now (another host down or drained)
    // is said plainly, never "matches". apply did all it could from here: exit 0.
    let down = down_lines(
        &ctx,
        &rt.block_on(async {
            check::down(&ctx.topology, &ctx.observe().await, &ctx.state_dir).await
        }),
    );
    if out.json() {
        out.document(&serde_json::json!({
            "ok": true, "executed": summary.executed, "notes": summary.notes, "down": down,
            "elapsed_ms": t0.elapsed().as_millis() as u64,
        }));
    } else if !down.is_empty() {
        if summary.executed.is_empty() {
            println!("{}", nothing_to_do(&down));
        } else {
            println!(
                "Applied {} step(s) in {:.1} s, but the deployment does not match the topology:\n  - {}",
                summary.executed.len(),
                t0.elapsed().as_secs_f64(),
                down.join("\n  - ")
            );
        }
    } else if let Some(c) = &ctx.coordinator_elsewhere
        && summary.executed.is_empty()
    {
        println!(
            "Nothing to do on this host: its instances match the topology (cluster-level changes: apply on {c})."
        );
    } else if let Some(c) = &ctx.coordinator_elsewhere {
        println!(
            "Applied {} step(s) in {:.1} s; this host's instances match the topology (the rest: apply on {c}).",
            summary.executed.len(),
            t0.elapsed().as_secs_f64()
        );
    } else if summary.executed.is_empty() {
        println!("Nothing to do: the deployment matches the topology.");
    } else {
        println!(
            "Applied {} step(s) in {:.1} s; the deployment matches the topology.",
            summary.executed.len(),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(Exit::Ok)
}

/// The coordinator (first host in `hosts`, or `--coordinator`), when this run is not on it.
fn coordinator_elsewhere(ctx: &Context, flag: Option<&str>) -> anyhow::Result<Option<String>> {
    let hosts = &ctx.topology.hosts;
    let name = match flag {
        Some(n) if !hosts.iter().any(|h| h.name == n) => {
            let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
            return Err(UserError(format!(
                "--coordinator {n}: no such host; hosts are: {}",
                names.join(", ")
            ))
            .into());
        }
        Some(n) => n.to_string(),
        None => hosts[0].name.clone(),
    };
    let here = ctx
        .targets
        .iter()
        .any(|t| t.local && t.managed.key.host == name)
        || local_hosts(ctx).contains(&name);
    Ok((!here).then_some(name))
}

/// The topology hosts this run acts for.
pub(crate) fn local_hosts(ctx: &Context) -> Vec<String> {
    ctx.local_hosts()
}

fn destroy(cli: &Cli, file: &Path, yes: bool, out: &Printer) -> anyhow::Result<Exit> {
    let ctx = context(cli, file, out)?;
    if !yes {
        bail!(UserError(format!(
            "destroy deletes every instance's data under {}; run again with --yes to confirm",
            ctx.state_dir.display()
        )));
    }
    // The agent would start the instances again (and recreate the state directory).
    if let Some(pid) = crate::fsio::agent_pid(&ctx.state_dir) {
        bail!(UserError(format!(
            "the agent of {:?} (pid {pid}) is running on this host; stop it first (systemctl stop redisctl-agent@{}); nothing was changed",
            ctx.topology.name, ctx.topology.name
        )));
    }
    let lock = lock(&ctx)?;
    let rt = runtime()?;
    let mut removed = Vec::new();
    // The deployment is going away on this host: so is its drain mark.
    for host in local_hosts(&ctx) {
        let mark = exec::maintenance::mark_path(&ctx.state_dir, &host);
        if mark.exists() {
            std::fs::remove_file(&mark).with_context(|| format!("remove {}", mark.display()))?;
        }
    }
    for t in ctx.targets.iter().filter(|t| t.local) {
        let dir = &t.managed.paths.dir;
        let running = matches!(
            ctx.supervisor.status(&t.managed),
            crate::supervise::ProcState::Running { .. }
        );
        if !dir.exists() && !running {
            // Never deployed here (or already gone): whatever answers on its port is not ours.
            ctx.supervisor.unregister(&t.managed)?;
            continue;
        }
        // Data is being deleted: no point in a final save.
        let _ = rt.block_on(async {
            let creds = match t.kind {
                TargetKind::Sentinel => ctx.password.as_ref().map(|c| c.without_user()),
                _ => ctx.password.clone(),
            };
            let mut c = crate::observe::client::Conn::connect(
                &t.endpoint,
                creds.as_ref(),
                ctx.call_timeout,
            )
            .await?;
            c.cmd(&["SHUTDOWN", "NOSAVE"]).await
        });
        if matches!(
            ctx.supervisor.status(&t.managed),
            crate::supervise::ProcState::Running { .. }
        ) {
            ctx.supervisor.stop(&t.managed, Duration::from_secs(5))?;
        }
        ctx.supervisor.unregister(&t.managed)?;
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
            removed.push(dir.display().to_string());
        }
        out.info(format!("destroyed {} ({})", t.managed.key, t.endpoint));
        // Host directory, if now empty.
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
    // Nodes retired by scale-in keep their data until the deployment is destroyed: remove
    // every other instance directory this deployment generated (its redis.conf says so).
    let marker = format!(
        "{} for deployment {:?}",
        render::GENERATED_MARK,
        ctx.topology.name
    );
    for host in std::fs::read_dir(&ctx.state_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        for inst in std::fs::read_dir(host.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = inst.path();
            let ours = std::fs::read_to_string(dir.join("redis.conf"))
                .is_ok_and(|c| c.starts_with(&marker));
            if !ours {
                continue;
            }
            if let Ok(pid) = std::fs::read_to_string(dir.join("redis.pid"))
                && let Ok(pid) = pid.trim().parse::<i32>()
                && std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c.starts_with(&dir))
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
            removed.push(dir.display().to_string());
        }
        let _ = std::fs::remove_dir(host.path());
    }
    let _ = std::fs::remove_dir_all(ctx.state_dir.join("moves"));
    let _ = std::fs::remove_file(exec::record_path(&ctx.state_dir));
    let _ = std::fs::remove_file(ctx.state_dir.join(".lock"));
    for f in [
        crate::agent::marks::report_path(&ctx.state_dir),
        crate::agent::marks::pause_path(&ctx.state_dir),
        ctx.state_dir.join(crate::fsio::AGENT_LOCK),
    ] {
        let _ = std::fs::remove_file(f);
    }
    drop(lock);
    // The state directory itself only when redisctl made it (never /tmp or the operator's).
    crate::fsio::remove_state_dir_if_ours(&ctx.state_dir);
    if out.json() {
        out.document(&serde_json::json!({ "ok": true, "removed": removed }));
    } else if removed.is_empty() {
        println!(
            "Nothing to destroy: deployment {:?} has no instance on this host under {}.",
            ctx.topology.name,
            ctx.state_dir.display()
        );
    } else {
        println!(
            "Destroyed deployment {:?}: {} instance(s) stopped and removed.",
            ctx.topology.name,
            removed.len()
        );
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod exit_tests {
    use super::*;

    #[test]
    fn errors_say_their_exit_code_and_text_decides_nothing() {
        let interrupted = anyhow::Error::from(ExecError::Interrupted);
        assert_eq!(exit_of(&interrupted), Exit::Interrupted);
        // Context on top does not hide what the error is.
        let refused = anyhow::Error::from(ExecError::Refused("no".into())).context("drain web1");
        assert_eq!(exit_of(&refused), Exit::User);
        let blocked = anyhow::Error::from(ExecError::Blocked("x".into()));
        assert_eq!(exit_of(&blocked), Exit::User);
        let gate = anyhow::Error::from(ExecError::NoConvergence(6, String::new()));
        assert_eq!(exit_of(&gate), Exit::Failure);
        assert_eq!(exit_of(&UserError("bad".into()).into()), Exit::User);
        // A message that merely reads "interrupted" is an ordinary failure.
        assert_eq!(exit_of(&anyhow!("interrupted")), Exit::Failure);
    }
}
