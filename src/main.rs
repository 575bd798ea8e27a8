//! redisctl: declarative Redis Cluster deployments. See `redisctl --help`.

mod agent;
mod cli;
mod exec;
mod exit;
mod fsio;
mod observe;
mod output;
mod plan;
mod render;
mod supervise;
mod topology;

fn main() -> std::process::ExitCode {
    // Behave like a Unix tool in a pipe (`redisctl status | head`): exit quietly on EPIPE.
    // SAFETY: set once at startup, before any thread exists.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    cli::main()
}
