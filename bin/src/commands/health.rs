//! `tandem health`: a replica container's health check, from its metrics file (exit 0
//! when its last line is fresh, 1 with the reason otherwise); the image has no shell.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use tandem_experiments::deploy::health::check_health_now;

/// Arguments of `tandem health`.
#[derive(Args, Debug)]
pub struct HealthArgs {
    /// The replica's metrics file (its `--metrics`).
    #[arg(long)]
    metrics: PathBuf,
    /// Unhealthy when the last metrics line is older than this, milliseconds.
    #[arg(long, default_value_t = 5000)]
    max_age_ms: u64,
}

/// Runs `tandem health`.
pub fn run(args: HealthArgs) -> Result<ExitCode> {
    match check_health_now(&args.metrics, Duration::from_millis(args.max_age_ms)) {
        Ok(line) => {
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            println!("unhealthy: {why:#}");
            Ok(ExitCode::from(1))
        }
    }
}
