//! `tandem local`: the main job — a whole cluster on this machine, a load, a summary
//! table and a results folder. With no flags: 4 replicas, the dex workload on
//! block-stm, about 20 seconds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use serde_json::json;

use crate::commands::cluster_args::ClusterArgs;
use tandem_experiments::load::LoadMode;
use tandem_experiments::report;
use tandem_experiments::runner::{self as local, LocalPlan, faults};

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
    /// Make a replica Byzantine: r<id>=<mode> (silent, equivocate, slow-primary,
    /// bad-signatures, replay, corrupt-digests, view-change-storm).
    #[arg(long)]
    byzantine: Vec<String>,
    /// Name of the run (the results folder is <results>/<name>-<time>).
    #[arg(long, default_value = "local")]
    name: String,
    /// Folder that receives results folders.
    #[arg(long, default_value = "results")]
    results: PathBuf,
}

/// Runs `tandem local`.
pub fn run(args: LocalArgs) -> Result<ExitCode> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if !(args.duration.is_finite() && args.duration >= 1.0) {
        bail!("--duration must be at least 1 second");
    }
    let warmup = args.warmup.clamp(0.0, args.duration / 2.0);
    let mode = match (args.rate, args.window) {
        (Some(r), _) if r > 0.0 => LoadMode::Rate(r / args.clients as f64),
        (Some(_), _) => bail!("--rate must be positive"),
        (None, Some(w)) if w > 0 => LoadMode::Window(w),
        (None, Some(_)) => bail!("--window must be positive"),
        (None, None) => LoadMode::Window(1024),
    };
    let args_rates = args.rates.clone();
    let plan = LocalPlan {
        faults: faults::schedule(&args.kill, &args.restart, args.cluster.replicas)?,
        byzantine: faults::byzantine_modes(&args.byzantine, args.cluster.replicas)?,
        parameters: json!({
            "replicas": args.cluster.replicas,
            "executor": args.cluster.executor,
            "threads": args.cluster.threads,
            "workload": workload_label(&args.cluster),
            "workload_spec": args.cluster.params().workload_spec()?,
            "clients": args.clients,
            "rate": args.rate,
            "window": match mode { LoadMode::Window(w) => Some(w), LoadMode::Rate(_) => None },
            "duration_secs": args.duration,
            "warmup_secs": warmup,
            "payload_bytes": args.payload,
            "batch_size": args.cluster.batch_size,
            "batch_timeout_ms": args.cluster.batch_timeout_ms,
            "checkpoint_interval": args.cluster.checkpoint_interval,
            "view_timeout_ms": args.cluster.view_timeout_ms,
            "signed_all": args.cluster.signed_all,
            "kill": args.kill,
            "restart": args.restart,
            "byzantine": args.byzantine,
        }),
        cluster: args.cluster.params(),
        replica_program: std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot find the tandem executable: {e}"))?,
        clients: args.clients,
        mode,
        duration: Duration::from_secs_f64(args.duration),
        warmup: Duration::from_secs_f64(warmup),
        payload: args.payload,
        retransmit_after: Duration::from_millis(args.retransmit_ms),
        name: args.name,
        results: args.results,
    };
    if !args_rates.is_empty() {
        return sweep(plan, &args_rates);
    }
    let outcome = local::run(plan)?;
    println!("{}", report::render_table(&outcome.summary));
    println!("results: {}", outcome.dir.display());
    Ok(if outcome.summary.safety.agreed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs the plan once per offered rate and prints the saturation table.
fn sweep(plan: LocalPlan, rates: &[f64]) -> Result<ExitCode> {
    if rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        bail!("--rates must all be positive");
    }
    let mut rows = Vec::new();
    for &rate in rates {
        let mut p = plan.clone();
        p.mode = LoadMode::Rate(rate / p.clients as f64);
        p.name = format!("{}-{}", plan.name, rate as u64);
        p.parameters["rate"] = json!(rate);
        p.parameters["window"] = serde_json::Value::Null;
        eprintln!("offered {rate:.0} tx/s ...");
        let outcome = local::run(p)?;
        rows.push((rate, outcome.summary, outcome.dir));
    }
    let mut table = String::from(
        "offered tx/s   achieved tx/s   p50 ms   p90 ms   p99 ms   view changes   safety   results\n",
    );
    let mut csv = String::from(
        "offered_tps,end_to_end_tps,consensus_tps,p50_ms,p90_ms,p99_ms,view_changes,agreed,results\n",
    );
    for (rate, s, dir) in &rows {
        let l = &s.latency_ms;
        table.push_str(&format!(
            "{:>12.0}   {:>13.0}   {:>6.1}   {:>6.1}   {:>6.1}   {:>12}   {:>6}   {}\n",
            rate,
            s.throughput.end_to_end_tps,
            l.p50,
            l.p90,
            l.p99,
            s.consensus.view_changes,
            if s.safety.agreed { "ok" } else { "FAIL" },
            dir.display()
        ));
        csv.push_str(&format!(
            "{rate},{},{},{},{},{},{},{},{}\n",
            s.throughput.end_to_end_tps,
            s.throughput.consensus_tps,
            l.p50,
            l.p90,
            l.p99,
            s.consensus.view_changes,
            s.safety.agreed,
            dir.display()
        ));
    }
    println!("{table}");
    let dir = report::results_dir(&plan.results, &format!("{}-saturation", plan.name));
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let csv_path = dir.join("saturation.csv");
    std::fs::write(&csv_path, csv)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", csv_path.display()))?;
    println!("saturation table: {}", csv_path.display());
    let all_agreed = rows.iter().all(|(_, s, _)| s.safety.agreed);
    Ok(if all_agreed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A short description of the workload, e.g. `dex (10000 accounts, 4 pools, zipf 0)`.
fn workload_label(c: &ClusterArgs) -> String {
    let mut parts = vec![format!("{} accounts", c.accounts)];
    if matches!(c.workload.as_str(), "dex" | "mixed") {
        parts.push(format!("{} pools", c.pools));
    }
    parts.push(format!("zipf {}", c.zipf));
    if c.work > 0 {
        parts.push(format!("work {}", c.work));
    }
    if c.signed_txs {
        parts.push("signed".to_string());
    }
    format!("{} ({})", c.workload, parts.join(", "))
}
