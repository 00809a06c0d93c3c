//! `tandem run SCENARIO.toml`: an experiment from a scenario file — the cluster, the
//! load, the fault schedule and the expectations — on a real cluster on this machine,
//! of processes or of containers (`[cluster] backend`, or `--backend` for every file).
//! Prints progress and fault events, the summary table, the per-phase table, recovery
//! times and the expectations; exits 1 naming each expectation that failed.
//! `tandem run --check FILE...` only reads and checks the files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use tandem_experiments::report;
use tandem_experiments::runner::{self, RunPlan, report_text};
use tandem_experiments::scenario::{BackendKind, Scenario};

/// Arguments of `tandem run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario files (see experiments/README.md; examples in experiments/scenarios/).
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Only read and check the files (every error names the file, line and field).
    #[arg(long)]
    check: bool,
    /// Folder that receives results folders.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Run every scenario on this backend whatever its `[cluster] backend` says:
    /// `process` (one process per replica) or `docker` (one container per replica).
    #[arg(long)]
    backend: Option<BackendKind>,
}

/// Runs `tandem run`.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    let mut scenarios = Vec::new();
    for path in &args.scenarios {
        let mut scenario = Scenario::load(path)?;
        if let Some(backend) = args.backend {
            scenario.cluster.backend = backend;
        }
        scenarios.push(scenario);
    }
    if args.check {
        for (path, s) in args.scenarios.iter().zip(&scenarios) {
            println!(
                "{}: ok ({} replicas on {}, vm {}, {} faults, {:.0} s)",
                path.display(),
                s.cluster.replicas,
                s.cluster.backend,
                s.vm(),
                s.faults.len(),
                s.load.duration.as_secs_f64()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let program = std::env::current_exe().context("cannot find the tandem executable")?;
    let mut failed = false;
    for scenario in scenarios {
        eprintln!("running scenario {} ...", scenario.name);
        let plan = RunPlan::for_scenario(scenario, program.clone(), args.results.clone());
        let outcome = runner::run(&plan)?;
        println!("{}", report::render_table(&outcome.summary));
        println!("{}", report_text::render(&outcome.summary));
        println!("results: {}", outcome.dir.display());
        let failures = outcome.failures();
        if !failures.is_empty() {
            failed = true;
            eprintln!(
                "scenario {}: {} expectation(s) failed:",
                plan.scenario.name,
                failures.len()
            );
            for f in failures {
                eprintln!("  {f}");
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
