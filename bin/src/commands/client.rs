//! `tandem client`: one load client against a running cluster; prints throughput,
//! latency percentiles and outcomes when it is done.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use tandem_network::{Identity, NodeId};
use tokio::time::Instant;

use tandem_experiments::cluster::{ClusterFile, KeyFile};
use tandem_experiments::cluster_params::parse_workload;
use tandem_experiments::load::stats::LoadStats;
use tandem_experiments::load::{LoadMode, LoadSettings, Progress, run_load};

/// Arguments of `tandem client`.
#[derive(Args, Debug)]
pub struct ClientArgs {
    /// The cluster file.
    #[arg(long)]
    cluster: PathBuf,
    /// This client's private key file.
    #[arg(long)]
    key: PathBuf,
    /// Workload kind (default: the cluster's); must fit the cluster's genesis.
    #[arg(long)]
    workload: Option<String>,
    /// Open loop: offered transactions per second.
    #[arg(long, conflicts_with = "window")]
    rate: Option<f64>,
    /// Closed loop: requests kept outstanding.
    #[arg(long)]
    window: Option<usize>,
    /// Seconds to submit for.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds at the start left out of the statistics.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Pad each transaction to this many bytes.
    #[arg(long, default_value_t = 0)]
    payload: usize,
    /// This client's index among --client-count clients (disjoint senders).
    #[arg(long, default_value_t = 0)]
    client_index: u32,
    /// Number of load clients sharing the workload.
    #[arg(long, default_value_t = 1)]
    client_count: u32,
    /// Retransmit after this many milliseconds without a result.
    #[arg(long, default_value_t = 1000)]
    retransmit_ms: u64,
}

/// Runs `tandem client`.
pub fn run(args: ClientArgs) -> Result<ExitCode> {
    let cluster = ClusterFile::load(&args.cluster)?;
    let key = KeyFile::load(&args.key)?;
    let NodeId::Client(client_id) = key.node_id()? else {
        bail!(
            "key file {}: field id names a replica; a client needs a client key",
            args.key.display()
        );
    };
    let identity = Identity::from_pkcs8(&key.pkcs8_bytes()?)?;
    let mut workload = cluster.workload.clone();
    if let Some(kind) = &args.workload {
        workload.kind = parse_workload(kind)?;
    }
    if args.client_index >= args.client_count {
        bail!("--client-index must be below --client-count");
    }
    let mode = match (args.rate, args.window) {
        (Some(r), _) if r > 0.0 => LoadMode::Rate(r),
        (Some(_), _) => bail!("--rate must be positive"),
        (None, Some(w)) if w > 0 => LoadMode::Window(w),
        (None, Some(_)) => bail!("--window must be positive"),
        (None, None) => LoadMode::Window(256),
    };
    let settings = LoadSettings {
        workload,
        client_index: args.client_index,
        client_count: args.client_count,
        mode,
        duration: Duration::from_secs_f64(args.duration),
        warmup: Duration::from_secs_f64(args.warmup.min(args.duration / 2.0)),
        payload_bytes: args.payload,
        retransmit_after: Duration::from_millis(args.retransmit_ms),
        replicas: cluster.replicas.len(),
        replica_keys: cluster.protocol.signed_all.then(|| cluster.replica_keys()),
        exactly_once_window: cluster.protocol.client_window,
        max_frame: cluster.network.max_frame_bytes,
        drain: Duration::from_secs(2),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stats = runtime.block_on(async {
        let membership = cluster.membership()?;
        run_load(
            &identity,
            membership,
            client_id,
            settings.clone(),
            Instant::now(),
            Arc::new(Progress::default()),
        )
        .await
    })?;
    print_client_summary(&stats, &settings);
    Ok(ExitCode::SUCCESS)
}

/// Prints one client's results.
fn print_client_summary(stats: &LoadStats, settings: &LoadSettings) {
    let measured = settings
        .duration
        .saturating_sub(settings.warmup)
        .as_secs_f64()
        .max(1e-9);
    let from = settings.warmup.as_secs() as usize;
    let to = settings.duration.as_secs() as usize;
    let tps = stats.completed_between(from, to) as f64 / (to - from).max(1) as f64;
    let h = &stats.latency;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "submitted {}  completed {}  ({:.0} tx/s over {:.0} s)",
        stats.submitted, stats.completed, tps, measured
    );
    println!(
        "latency ms  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0
    );
    println!(
        "outcomes    applied {}  aborted {}  malformed {}  unfinished {}  shed {}  retransmissions {}",
        stats.applied,
        stats.aborted,
        stats.malformed,
        stats.unfinished,
        stats.shed,
        stats.retransmissions
    );
}
