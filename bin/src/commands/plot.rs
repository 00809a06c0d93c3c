//! `tandem plot`: redraws the SVG plots of a results folder from its `summary.json` and
//! `timeline.csv` (after editing them, or with a newer `tandem`), without rerunning.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use tandem_experiments::report;

/// Arguments of `tandem plot`.
#[derive(Args, Debug)]
pub struct PlotArgs {
    /// A results folder written by `tandem local`.
    dir: PathBuf,
}

/// Runs `tandem plot`.
pub fn run(args: PlotArgs) -> Result<ExitCode> {
    report::rewrite_plots(&args.dir)?;
    println!("redrew the plots in {}", args.dir.display());
    Ok(ExitCode::SUCCESS)
}
