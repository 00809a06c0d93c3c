//! The `tandem` command.

mod commands;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "A testbed for Byzantine-fault-tolerant replication"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply a transaction file to a genesis and print receipts and digest as JSON.
    Exec(commands::exec::ExecArgs),
    /// Benchmark executors × threads × workloads against sequential.
    BenchExec(commands::bench_exec::BenchExecArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Exec(args) => commands::exec::run(args),
        Command::BenchExec(args) => commands::bench_exec::run(args),
    }
}
