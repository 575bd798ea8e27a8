//! redisctl: declarative Redis Cluster deployments. See `redisctl --help`.

mod cli;
mod exec;
mod fsio;
mod observe;
mod output;
mod plan;
mod render;
mod supervise;
mod topology;

fn main() -> std::process::ExitCode {
    cli::main()
}
