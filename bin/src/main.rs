//! The `tandem` command: one subcommand per module under `commands/`.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A testbed for Byzantine-fault-tolerant replication.
#[derive(Parser)]
#[command(name = "tandem", version, about, long_about = None)]
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Exec(args) => commands::exec::run(args),
        Command::BenchExec(args) => commands::bench_exec::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
