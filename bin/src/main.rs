//! The `tandem` command: one subcommand per module under `commands/`.

mod commands;
mod evm_app;
mod ledger_app;
mod node;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// A testbed for Byzantine-fault-tolerant replication.
#[derive(Parser)]
#[command(name = "tandem", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a whole cluster on this machine under load and report throughput and
    /// latency (the main job).
    Local(commands::local::LocalArgs),
    /// Run a scenario file: a cluster, its load, a timed fault schedule and
    /// expectations (exit status 1 when one fails); `--check` only validates.
    Run(commands::run::RunArgs),
    /// Run a matrix of settings (executors × workloads × …), each cell several times
    /// interleaved, and compare them in a table, a CSV and bar charts.
    Compare(commands::compare::CompareArgs),
    /// Write a cluster file and key files for a cluster started by hand.
    Keygen(commands::keygen::KeygenArgs),
    /// Run one replica of a cluster.
    Replica(commands::replica::ReplicaArgs),
    /// Run one load client against a cluster.
    Client(commands::client::ClientArgs),
    /// Redraw the plots of a results folder.
    Plot(commands::plot::PlotArgs),
    /// Apply a transaction file to a genesis and print receipts and digest as JSON.
    Exec(commands::exec::ExecArgs),
    /// Benchmark executors × threads × workloads against sequential.
    BenchExec(commands::bench_exec::BenchExecArgs),
    /// Run the deterministic cluster simulator over many seeds and check safety and
    /// liveness.
    Sim(commands::sim::SimArgs),
    /// Build a container image holding the tandem binary (FROM scratch, nothing pulled).
    Image(commands::image::ImageArgs),
    /// Write a deployment of a cluster: a Compose file (also a Swarm stack), keys, a
    /// results folder.
    Deploy(commands::deploy::DeployArgs),
    /// Check a replica's health from its metrics file (container health checks).
    Health(commands::health::HealthArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Replica(_) => "info",
        Command::Sim(_) => "off",
        _ => "warn",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Local(args) => commands::local::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Replica(args) => commands::replica::run(args),
        Command::Client(args) => commands::client::run(args),
        Command::Plot(args) => commands::plot::run(args),
        Command::Exec(args) => commands::exec::run(args),
        Command::BenchExec(args) => commands::bench_exec::run(args),
        Command::Sim(args) => commands::sim::run(args),
        Command::Image(args) => commands::image::run(args),
        Command::Deploy(args) => commands::deploy::run(args),
        Command::Health(args) => commands::health::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
