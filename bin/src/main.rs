//! The `tandem` command: one subcommand per module under `commands/`.

mod commands;
mod report;

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
    /// Run the deterministic cluster simulator over many seeds and check safety and
    /// liveness.
    Sim(commands::sim::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(args) => commands::sim::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
