//! `tandem client`: one load client against a running cluster; prints throughput,
//! latency percentiles and outcomes when it is done.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tandem_consensus::client_auth::ClientMacs;

use anyhow::{Context, Result, bail};
use clap::Args;
use tandem_network::{Identity, NodeId};
use tokio::time::Instant;

use tandem_experiments::cluster::{ClusterFile, KeyFile, KeyFileAccess};
use tandem_experiments::cluster_params::parse_workload;
use tandem_experiments::load::{LoadMode, LoadSettings, Progress, run_load};
use tandem_experiments::payload::MAX_EVM_PAYLOAD_BYTES;

/// Arguments of `tandem client`.
#[derive(Args, Debug)]
pub struct ClientArgs {
    /// The cluster file.
    #[arg(long)]
    cluster: PathBuf,
    /// This client's private key file.
    #[arg(long)]
    key: PathBuf,
    /// Accept a key file its group or others may read (containers that mount secrets
    /// with wider modes); by default such a file is refused.
    #[arg(long)]
    allow_shared_key_file: bool,
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
    /// Also write the summary to this file (a container's results folder).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Closed-loop window when neither `--rate` nor `--window` is given.
const DEFAULT_WINDOW: usize = 256;

/// Runs `tandem client`.
pub fn run(args: ClientArgs) -> Result<ExitCode> {
    let cluster = ClusterFile::load(&args.cluster)?;
    let access = if args.allow_shared_key_file {
        KeyFileAccess::AllowShared
    } else {
        KeyFileAccess::OwnerOnly
    };
    let key = KeyFile::load_with(&args.key, access)?;
    let NodeId::Client(client_id) = key.node_id()? else {
        bail!(
            "key file {}: field id names a replica; a client needs a client key",
            args.key.display()
        );
    };
    let identity = Identity::from_pkcs8(&key.pkcs8_bytes()?)?;
    let mac_keys = key.mac_keys()?;
    if mac_keys.len() != cluster.replicas.len() {
        bail!(
            "key file {}: field mac_keys holds {} keys but the cluster has {} replicas; replicas \
             refuse requests without an authenticator — regenerate the cluster folder with \
             tandem keygen",
            args.key.display(),
            mac_keys.len(),
            cluster.replicas.len()
        );
    }
    let mut workload = cluster.workload.clone();
    match (&args.workload, &cluster.evm_workload) {
        (Some(kind), None) => workload.kind = parse_workload(kind)?,
        (Some(kind), Some(evm)) if kind != evm.kind.as_str() => bail!(
            "--workload {kind}: the cluster runs the EVM with the `{}` genesis ([evm_workload]); its clients send that workload",
            evm.kind
        ),
        _ => {}
    }
    if cluster.evm_workload.is_some() && args.payload > MAX_EVM_PAYLOAD_BYTES {
        bail!(
            "--payload {}: the cluster runs the EVM, whose requests are at most {MAX_EVM_PAYLOAD_BYTES} bytes, padding included",
            args.payload
        );
    }
    if args.client_index >= args.client_count {
        bail!("--client-index must be below --client-count");
    }
    let mode = LoadMode::from_flags(args.rate, args.window, DEFAULT_WINDOW)?;
    let settings = LoadSettings {
        workload,
        client_index: args.client_index,
        client_count: args.client_count,
        duration: Duration::from_secs_f64(args.duration),
        warmup: Duration::from_secs_f64(args.warmup.min(args.duration / 2.0)),
        payload_bytes: args.payload,
        retransmit_after: Duration::from_millis(args.retransmit_ms),
        drain: Duration::from_secs(2),
        client_macs: ClientMacs::new(&mac_keys),
        ..LoadSettings::for_cluster(&cluster, mode)
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
    let summary = stats.render_client_summary(settings.duration, settings.warmup);
    println!("{summary}");
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{summary}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
