//! `tandem local`: the main job — a whole cluster on this machine, a load, a summary
//! table and a results folder. With no flags: 4 replicas, the dex workload on
//! block-stm, about 20 seconds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use tandem_experiments::report;
use tandem_experiments::runner::{self, LocalOptions, saturation};

use crate::commands::cluster_args::{ClusterArgs, CpuBudgetArgs};

/// Arguments of `tandem local`.
#[derive(Args, Debug)]
pub struct LocalArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Load clients (each its own key and connection).
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Open loop: total offered transactions per second, split over the clients.
    #[arg(long, conflicts_with = "window")]
    rate: Option<f64>,
    /// Closed loop: requests each client keeps outstanding.
    #[arg(long)]
    window: Option<usize>,
    /// Saturation sweep: one run per total offered rate (open loop), then a table of
    /// offered rate → achieved tx/s and latency, e.g. 25000,50000,75000,100000.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["rate", "window"])]
    rates: Vec<f64>,
    /// Seconds of load.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds at the start left out of the summary statistics.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Pad each transaction to this many bytes (e.g. 512).
    #[arg(long, default_value_t = 0)]
    payload: usize,
    /// Client retransmission time-out, milliseconds.
    #[arg(long, default_value_t = 1000)]
    retransmit_ms: u64,
    /// Kill a replica's process at a time: r<id>@<seconds>, e.g. r0@8 (repeatable).
    #[arg(long)]
    kill: Vec<String>,
    /// Restart a replica with an empty state: r<id>@<seconds> (repeatable).
    #[arg(long)]
    restart: Vec<String>,
    /// Make a replica Byzantine: r<id>=<mode>, a mode of the chosen protocol (pbft:
    /// silent, equivocate, slow-primary, bad-signatures, replay, corrupt-digests,
    /// view-change-storm, censor, censor-busy, censor-empty, flood, status-flood, forge-requests, corrupt-state, forge-stale).
    #[arg(long)]
    byzantine: Vec<String>,
    #[command(flatten)]
    cpu: CpuBudgetArgs,
    /// Name of the run (the results folder is <results>/<name>-<time>).
    #[arg(long, default_value = "local")]
    name: String,
    /// Folder that receives results folders.
    #[arg(long, default_value = "results")]
    results: PathBuf,
}

/// Runs `tandem local`.
pub fn run(args: LocalArgs) -> Result<ExitCode> {
    let cpu_budget = args.cpu.budget(args.cluster.replicas)?;
    let mut cluster = args.cluster.params();
    cluster.threads = cpu_budget.threads(args.cluster.threads, cluster.replicas);
    let options = LocalOptions {
        cluster,
        cpu_budget,
        replica_program: std::env::current_exe().context("cannot find the tandem executable")?,
        clients: args.clients,
        rate: args.rate,
        window: args.window,
        duration_secs: args.duration,
        warmup_secs: args.warmup,
        payload: args.payload,
        retransmit_ms: args.retransmit_ms,
        kill: args.kill,
        restart: args.restart,
        byzantine: args.byzantine,
        name: args.name,
        results: args.results,
    };
    let plan = options.plan()?;
    let agreed = if args.rates.is_empty() {
        let outcome = runner::run(&plan)?;
        println!("{}", report::render_table(&outcome.summary));
        println!("results: {}", outcome.dir.display());
        // Lost acknowledged requests fail the run like a safety violation.
        outcome.summary.held()
    } else {
        let sweep = saturation::sweep(&plan, &args.rates)?;
        println!("{}", sweep.render_table());
        println!("saturation table: {}", sweep.csv.display());
        sweep.all_held()
    };
    Ok(if agreed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
