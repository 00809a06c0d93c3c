//! The runner: a whole cluster on 127.0.0.1 under load. [`run`] generates keys into a
//! temporary folder, starts the replica processes ([`process_backend`]), runs the load
//! clients in this process, injects the planned faults on schedule ([`faults`]), shows
//! progress, then stops everything, aggregates what replicas and clients recorded
//! (with the digest agreement verdict) and writes the results folder.
//! [`LocalOptions`] turns what `tandem local` asks for into a [`RunPlan`];
//! [`saturation`] runs a plan once per offered rate.

pub mod faults;
mod local_options;
pub mod process_backend;
mod progress;
pub mod saturation;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tandem_network::Identity;
use tokio::time::Instant;

use crate::aggregate::{self, ReplicaTrace, RunRecord};
use crate::cluster::{ClusterFile, save_cluster_folder};
use crate::cluster_params::ClusterParams;
use crate::load::stats::LoadStats;
use crate::load::{LoadMode, LoadSettings, Progress, run_load};
use crate::metrics::{read_metrics, unix_ms};
use crate::report;
use crate::runner::faults::{FaultAction, TimedFault};
use crate::runner::process_backend::{ProcessBackend, ReplicaCommand};

pub use local_options::LocalOptions;

/// How often replicas write a metrics line during a run, milliseconds.
const METRICS_INTERVAL_MS: u64 = 250;

/// What a run is asked to do.
#[derive(Clone, Debug)]
pub struct RunPlan {
    /// Cluster parameters.
    pub cluster: ClusterParams,
    /// The `tandem` executable whose `replica` command runs each replica.
    pub replica_program: PathBuf,
    /// Load clients.
    pub clients: usize,
    /// Offered load per client.
    pub mode: LoadMode,
    /// Seconds of load.
    pub duration: Duration,
    /// Left out of the statistics.
    pub warmup: Duration,
    /// Transaction padding.
    pub payload: usize,
    /// Client retransmission time-out.
    pub retransmit_after: Duration,
    /// Name of the results folder.
    pub name: String,
    /// Where results folders go.
    pub results: PathBuf,
    /// Timed faults.
    pub faults: Vec<TimedFault>,
    /// Byzantine mode per replica.
    pub byzantine: Vec<Option<String>>,
    /// The parameters as given, for summary.json.
    pub parameters: serde_json::Value,
}

/// What a run produced.
pub struct RunOutcome {
    /// The summary.
    pub summary: report::RunSummary,
    /// Where the results are.
    pub dir: PathBuf,
}

/// Runs the plan: the cluster, its load and its faults; writes the results folder and
/// returns it with the summary. Ctrl-C stops the replicas and is an error.
pub fn run(plan: &RunPlan) -> Result<RunOutcome> {
    let n = plan.cluster.replicas;
    let keys_dir = tempfile::tempdir().context("cannot create a temporary folder for keys")?;
    let addresses = free_ports(n)?;
    let (cluster, keys) = plan.cluster.generate_at(&addresses, plan.clients)?;
    let (cluster_path, key_paths) = save_cluster_folder(keys_dir.path(), &cluster, &keys)?;
    let out = report::results_dir(&plan.results, &plan.name);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    cluster.save(&out.join("cluster.toml"))?;

    let command = ReplicaCommand {
        program: plan.replica_program.clone(),
        cluster: cluster_path,
        keys: key_paths[..n].to_vec(),
        out: out.clone(),
        byzantine: plan.byzantine.clone(),
        metrics_interval_ms: METRICS_INTERVAL_MS,
    };
    let client_identities: Vec<Identity> = keys[n..n + plan.clients]
        .iter()
        .map(|k| Identity::from_pkcs8(&k.pkcs8_bytes()?).map_err(anyhow::Error::from))
        .collect::<Result<_>>()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started_at = report::now_rfc3339();
    let (load, replicas, events, start_unix_ms) =
        runtime.block_on(drive(plan, &cluster, command, client_identities))?;

    let record = RunRecord {
        name: plan.name.clone(),
        parameters: plan.parameters.clone(),
        started_at,
        start_unix_ms,
        duration: plan.duration,
        warmup: plan.warmup,
        offered_tps: match plan.mode {
            LoadMode::Rate(r) => Some(r * plan.clients as f64),
            LoadMode::Window(_) => None,
        },
        load,
        replicas,
        events,
        executor: (plan.cluster.executor.clone(), plan.cluster.threads),
    };
    let summary = aggregate::summary(&record);
    let timeline = aggregate::timeline(&record);
    report::write_results(&out, &summary, &timeline, &record.load.latency)?;
    Ok(RunOutcome { summary, dir: out })
}

type Driven = (LoadStats, Vec<ReplicaTrace>, Vec<(Duration, String)>, u64);

/// Starts replicas and clients, injects faults, waits for the clients, stops the
/// replicas and collects their metrics. Ctrl-C stops everything.
async fn drive(
    plan: &RunPlan,
    cluster: &ClusterFile,
    command: ReplicaCommand,
    identities: Vec<Identity>,
) -> Result<Driven> {
    let n = plan.cluster.replicas;
    let mut backend = ProcessBackend::start(command)?;
    let run_start = Instant::now();
    let start_unix_ms = unix_ms();
    let progress = Arc::new(Progress::default());
    let membership = cluster.membership()?;

    let mut clients = Vec::new();
    for (c, identity) in identities.into_iter().enumerate() {
        let settings = LoadSettings {
            client_index: c as u32,
            client_count: plan.clients as u32,
            duration: plan.duration,
            warmup: plan.warmup,
            payload_bytes: plan.payload,
            retransmit_after: plan.retransmit_after,
            drain: Duration::from_secs(3),
            ..LoadSettings::for_cluster(cluster, plan.mode)
        };
        let membership = membership.clone();
        let progress = progress.clone();
        clients.push(tokio::spawn(async move {
            run_load(
                &identity, membership, c as u32, settings, run_start, progress,
            )
            .await
        }));
    }

    let mut events = Vec::new();
    let reporter = tokio::spawn(progress::show(progress.clone(), run_start, plan.duration));
    let work = async {
        for fault in &plan.faults {
            tokio::time::sleep_until(run_start + fault.at).await;
            match fault.action {
                FaultAction::Kill(r) => backend.kill(r).await?,
                FaultAction::Restart(r) => backend.restart(r).await?,
            }
            events.push((run_start.elapsed(), fault.action.label()));
        }
        let mut load = LoadStats::new(run_start, plan.warmup);
        for client in clients {
            load.merge(&client.await.context("a load client panicked")??);
        }
        Ok::<_, anyhow::Error>(load)
    };
    let load = tokio::select! {
        load = work => load?,
        _ = tokio::signal::ctrl_c() => {
            reporter.abort();
            backend.stop_all(Duration::from_secs(2)).await;
            bail!("interrupted: replicas stopped");
        }
    };
    reporter.abort();
    let alive: Vec<bool> = (0..n).map(|i| backend.is_running(i)).collect();
    backend.stop_all(Duration::from_secs(5)).await;

    let mut replicas = Vec::new();
    for (i, alive_at_end) in alive.into_iter().enumerate() {
        let mut lines = Vec::new();
        for file in backend.metrics_files(i) {
            if file.exists() {
                lines.extend(read_metrics(&file)?);
            }
        }
        replicas.push(ReplicaTrace {
            lines,
            alive_at_end,
        });
    }
    Ok((load, replicas, events, start_unix_ms))
}

/// `n` UDP ports free on 127.0.0.1 right now.
fn free_ports(n: usize) -> Result<Vec<SocketAddr>> {
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()
        .context("cannot find free UDP ports on 127.0.0.1")?;
    sockets
        .iter()
        .map(|s| s.local_addr().context("no local address"))
        .collect()
}
