//! `tandem replica`: runs one replica of a cluster until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Args;

use crate::node::{ReplicaSetup, run_replica};
use tandem_experiments::cluster::{ClusterFile, Durability, KeyFile, KeyFileAccess};

/// Arguments of `tandem replica`.
#[derive(Args, Debug)]
pub struct ReplicaArgs {
    /// The cluster file.
    #[arg(long)]
    cluster: PathBuf,
    /// This replica's id.
    #[arg(long)]
    id: u32,
    /// This replica's private key file.
    #[arg(long)]
    key: PathBuf,
    /// Accept a key file its group or others may read (containers that mount secrets
    /// with wider modes); by default such a file is refused.
    #[arg(long)]
    allow_shared_key_file: bool,
    /// Write a JSON metrics line to this file every interval.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// Metrics interval, milliseconds.
    #[arg(long, default_value_t = 1000)]
    metrics_interval_ms: u64,
    /// Misbehave, for experiments: a Byzantine mode of the cluster's protocol (pbft:
    /// silent, equivocate, slow-primary, bad-signatures, replay, corrupt-digests,
    /// view-change-storm, censor, censor-busy, censor-empty, flood, status-flood, forge-requests, corrupt-state, forge-stale).
    #[arg(long)]
    byzantine: Option<String>,
    /// Threads for the protocol and the network (1: a single-threaded runtime, which
    /// measured faster on small machines); execution runs on threads of its own.
    #[arg(long, default_value_t = 1)]
    runtime_threads: usize,
    /// What the replica keeps across a restart: `none` or `wal` (default: the
    /// cluster file's `[storage] durability`).
    #[arg(long)]
    durability: Option<Durability>,
    /// Data directory (the log goes to `<dir>/r<id>/wal`); default: `data` beside the
    /// cluster file.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Runs `tandem replica`.
pub fn run(args: ReplicaArgs) -> Result<ExitCode> {
    let cluster = ClusterFile::load(&args.cluster)?;
    let access = if args.allow_shared_key_file {
        KeyFileAccess::AllowShared
    } else {
        KeyFileAccess::OwnerOnly
    };
    let key = KeyFile::load_with(&args.key, access)?;
    let byzantine = args
        .byzantine
        .as_deref()
        .map(|name| {
            cluster
                .protocol
                .name
                .byzantine_mode(name)
                .map(str::to_string)
                .map_err(|e| anyhow!("--byzantine: {e}"))
        })
        .transpose()?;
    let durability = args.durability.unwrap_or(cluster.storage.durability);
    let setup = ReplicaSetup {
        cluster,
        id: args.id,
        key,
        key_path: args.key.clone(),
        metrics: args.metrics,
        metrics_interval: Duration::from_millis(args.metrics_interval_ms.max(10)),
        byzantine,
        durability,
        data_dir: args.data_dir.unwrap_or_else(|| {
            args.cluster
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("data")
        }),
    };
    // One thread runs the protocol driver and the QUIC tasks together (no cross-thread
    // wake-up per frame); execution has threads of its own.
    let runtime = if args.runtime_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.runtime_threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async {
        let last = run_replica(setup, shutdown_signal()).await?;
        tracing::info!(
            replica = last.replica,
            view = last.view,
            delivered = last.last_delivered,
            committed = last.requests_committed,
            "replica stopped"
        );
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("can install a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("can install a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
