//! The runner: a scenario on a whole cluster on this machine. [`run`] generates keys
//! into a temporary folder (with the launcher's), starts the replicas through a
//! [`backend`] — processes on 127.0.0.1 ([`process_backend`]) or containers on a
//! private Docker network ([`docker_backend`]) —, connects the launcher ([`launcher`]:
//! the control channel),
//! runs the load clients in this process (their transport in the fault layer), carries
//! out the fault schedule ([`nemesis`], network faults through [`link_rules`]), shows
//! progress, checks that every request a client acknowledged is in every correct
//! replica's final state ([`ack_check`]), then stops everything, aggregates what replicas and clients recorded
//! (with the digest agreement verdict), cuts the run into phases around the faults and
//! measures recoveries ([`phases`]), checks the scenario's expectations and writes the
//! results folder. [`LocalOptions`] turns `tandem local`'s flags into a one-line
//! scenario run the same way ([`faults`] parses its fault flags); [`saturation`] runs
//! a plan once per offered rate; [`report_text`] prints the phase table.

mod ack_check;
pub mod backend;
pub mod docker_backend;
pub mod faults;
pub mod launcher;
pub mod link_rules;
mod local_options;
pub mod nemesis;
pub mod phases;
pub mod process_backend;
mod progress;
pub mod report_text;
pub mod saturation;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tandem_consensus::client_auth::ClientMacs;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tandem_network::{FaultHandle, Identity};
use tokio::time::Instant;

use crate::aggregate::{self, ReplicaTrace, RunRecord};
use crate::cluster::ReplicaAddress;
use crate::cluster::{ClusterFile, save_cluster_folder};
use crate::cluster_params::ClusterParams;
use crate::cpu_budget::{self, CpuSet, ReplicaBudget};
use crate::deploy::docker::docker_unavailable;
use crate::load::stats::LoadStats;
use crate::load::{ClientFaults, LoadMode, LoadSettings, Progress, run_load};
use crate::metrics::{read_metrics, unix_ms};
use crate::report::{self, Machine, ScenarioRecord};
use crate::runner::backend::Backend;
use crate::runner::docker_backend::{
    DockerBackend, DockerNetwork, DockerSpec, REPLICA_PORT, ensure_image,
};
use crate::runner::launcher::Launcher;
use crate::runner::nemesis::Nemesis;
use crate::runner::phases::Measured;
use crate::runner::process_backend::{ProcessBackend, ReplicaCommand};
use crate::scenario::{BackendKind, Durability, LoadShape, Scenario};

pub use local_options::LocalOptions;

/// How often replicas write a metrics line during a run, milliseconds.
const METRICS_INTERVAL_MS: u64 = 250;
/// How often the launcher re-sends the current fault rules (a restarted replica starts
/// without any).
const RULES_RESEND: Duration = Duration::from_secs(1);

/// What a run is asked to do: a scenario (from a file, or the one `tandem local`'s
/// flags stand for), the program that runs replicas, and where results go.
#[derive(Clone, Debug)]
pub struct RunPlan {
    /// The scenario: cluster, workload, load shape, faults, expectations, seed.
    pub scenario: Scenario,
    /// The `tandem` executable whose `replica` command runs each replica.
    pub replica_program: PathBuf,
    /// Where results folders go.
    pub results: PathBuf,
    /// The parameters as given, for summary.json.
    pub parameters: serde_json::Value,
}

impl RunPlan {
    /// A plan for `scenario` with the parameters `summary.json` records for it.
    pub fn for_scenario(scenario: Scenario, replica_program: PathBuf, results: PathBuf) -> RunPlan {
        let parameters = scenario_parameters(&scenario);
        RunPlan {
            scenario,
            replica_program,
            results,
            parameters,
        }
    }
}

/// The parameters of a scenario as `summary.json` and the table show them.
pub fn scenario_parameters(s: &Scenario) -> serde_json::Value {
    let w = &s.workload;
    let (rate, window) = match &s.load.shape {
        LoadShape::Open { rate, .. } => (Some(*rate), None),
        LoadShape::Closed { window } => (None, Some(*window)),
    };
    let common = &s.cluster.protocol.common;
    json!({
        "scenario": s.name,
        "protocol": s.cluster.protocol.name.name(),
        "replicas": s.cluster.replicas,
        "backend": s.cluster.backend.name(),
        "executor": s.cluster.executor,
        "threads": s.cluster.threads,
        "vm": s.vm(),
        "workload": match &s.evm {
            Some(evm) => evm.label(),
            None => format!("{} ({} accounts, zipf {})", w.kind.as_str(), w.accounts, w.zipf),
        },
        "workload_spec": match &s.evm {
            Some(evm) => json!(evm.workload),
            None => json!(w),
        },
        "max_tx_gas": s.evm.as_ref().map(|e| e.max_tx_gas),
        "max_batch_gas": s.evm.as_ref().map(|e| e.max_batch_gas),
        "evm_auth": s.evm.as_ref().map(|e| e.auth.as_str()),
        "evm_base_fee": s.evm.as_ref().map(|e| e.base_fee),
        "evm_beneficiary": s.evm.as_ref().map(|e| format!("0x{}", hex::encode(e.beneficiary.as_slice()))),
        "clients": s.load.clients,
        "rate": rate,
        "window": window,
        "duration_secs": s.load.duration.as_secs_f64(),
        "warmup_secs": s.load.warmup.as_secs_f64(),
        "payload_bytes": s.load.payload_bytes,
        "batch_size": common.max_batch,
        "checkpoint_interval": common.checkpoint_interval,
        "signed_all": common.signed_all,
        "cpu_budget": s.cluster.cpu.label(),
        "seed": s.seed,
        "faults": s.faults.iter().map(|f| format!("{:.1}s {}", f.at.as_secs_f64(), f.label())).collect::<Vec<_>>(),
    })
}

/// What a run produced.
pub struct RunOutcome {
    /// The summary, with the expectations checked.
    pub summary: report::RunSummary,
    /// Where the results are.
    pub dir: PathBuf,
}

impl RunOutcome {
    /// One line per expectation that failed, e.g. `min_tps: expected >= 5000 tx/s, got 812 tx/s`.
    pub fn failures(&self) -> Vec<String> {
        crate::scenario::expect::failures(&self.summary.expectations)
    }
}

/// The cluster file of `scenario` with fresh keys, its replicas at `addresses`.
fn cluster_for(
    scenario: &Scenario,
    addresses: &[SocketAddr],
) -> Result<(ClusterFile, Vec<crate::cluster::KeyFile>)> {
    let params = ClusterParams {
        replicas: scenario.cluster.replicas,
        ..ClusterParams::default()
    };
    let (mut cluster, keys) = params.generate_at(addresses, scenario.load.clients)?;
    let mut protocol = scenario.cluster.protocol.clone();
    protocol.common.replicas = scenario.cluster.replicas;
    cluster.protocol = protocol;
    cluster.execution.executor = scenario.cluster.executor.clone();
    cluster.execution.threads = scenario.cluster.threads;
    cluster.workload = scenario.workload.clone();
    if let Some(evm) = &scenario.evm {
        cluster.execution.vm = "evm".to_string();
        cluster.evm_workload = Some(evm.workload.clone());
        cluster.execution.max_tx_gas = evm.max_tx_gas;
        cluster.execution.max_batch_gas = evm.max_batch_gas;
        cluster.execution.evm_auth = evm.auth;
        cluster.execution.evm_base_fee = evm.base_fee;
        cluster.execution.evm_beneficiary = evm.beneficiary;
    }
    cluster.storage.durability = scenario.cluster.durability;
    if let Some(control) = cluster.control.as_mut() {
        control.fault_seed = scenario.seed;
    }
    cluster.validate()?;
    Ok((cluster, keys))
}

/// How the replicas of a run are started: the process backend's command, or the
/// Docker backend's containers on their network.
enum BackendStart {
    Process(ReplicaCommand),
    Docker(DockerSpec, DockerNetwork),
}

impl BackendStart {
    async fn start(self) -> Result<Backend> {
        Ok(match self {
            BackendStart::Process(command) => Backend::Process(ProcessBackend::start(command)?),
            BackendStart::Docker(spec, network) => {
                Backend::Docker(DockerBackend::start(spec, network).await?)
            }
        })
    }
}

/// The containers' view of `cluster`: replica `i` at the host name `r<i>` (its alias on
/// the run's network), port [`REPLICA_PORT`].
fn cluster_by_host_names(cluster: &ClusterFile) -> ClusterFile {
    let mut inside = cluster.clone();
    for r in &mut inside.replicas {
        r.address = ReplicaAddress::Host {
            name: format!("r{}", r.id),
            port: REPLICA_PORT,
        };
    }
    inside
}

/// Runs the plan: the cluster, its load and its fault schedule; checks the scenario's
/// expectations; writes the results folder and returns it with the summary. Ctrl-C
/// stops the replicas (and removes the containers) and is an error.
pub fn run(plan: &RunPlan) -> Result<RunOutcome> {
    let scenario = &plan.scenario;
    let n = scenario.cluster.replicas;
    let clients = scenario.load.clients;
    let budgets = replica_budgets(scenario)?;
    let keys_dir = tempfile::tempdir().context("cannot create a temporary folder for keys")?;
    // Docker: the image and the network first; the replicas' addresses are on it.
    let docker = match scenario.cluster.backend {
        BackendKind::Process => None,
        BackendKind::Docker => {
            if let Some(why) = docker_unavailable() {
                bail!("backend = \"docker\" needs the Docker engine: {why}");
            }
            let image = ensure_image(&plan.replica_program)?;
            let prefix = format!("tandem-{}-{}", std::process::id(), unix_ms() % 1_000_000);
            Some((image, DockerNetwork::create(&prefix)?))
        }
    };
    let addresses = match &docker {
        None => free_ports(n)?,
        Some((_, network)) => (0..n).map(|i| network.replica_address(i)).collect(),
    };
    let (cluster, keys) = cluster_for(scenario, &addresses)?;
    let (cluster_path, key_paths) = save_cluster_folder(keys_dir.path(), &cluster, &keys)?;
    let out = report::results_dir(&plan.results, &scenario.name);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(out.join("scenario.toml"), &scenario.source.text)
        .context("cannot write scenario.toml")?;

    let mut nemesis = Nemesis::new(scenario);
    let byzantine = nemesis.initial_modes();
    let start = match docker {
        None => {
            cluster.save(&out.join("cluster.toml"))?;
            BackendStart::Process(ReplicaCommand {
                program: plan.replica_program.clone(),
                cluster: cluster_path,
                keys: key_paths[..n].to_vec(),
                out: out.clone(),
                byzantine,
                metrics_interval_ms: METRICS_INTERVAL_MS,
                cpu_sets: budgets.iter().map(|b| b.set.clone()).collect(),
            })
        }
        Some((image, network)) => {
            // The replicas read the file naming hosts; this process reaches them at
            // their addresses on the bridge.
            let inside = cluster_by_host_names(&cluster);
            let inside_path = keys_dir.path().join("containers").join("cluster.toml");
            std::fs::create_dir_all(inside_path.parent().expect("a parent"))?;
            inside.save(&inside_path)?;
            inside.save(&out.join("cluster.toml"))?;
            let data = (scenario.cluster.durability == Durability::Wal)
                .then(|| keys_dir.path().join("data"));
            BackendStart::Docker(
                DockerSpec {
                    image,
                    cluster: inside_path,
                    keys: key_paths[..n].to_vec(),
                    out: out.clone(),
                    data,
                    byzantine,
                    metrics_interval_ms: METRICS_INTERVAL_MS,
                    cpu: budgets.clone(),
                },
                network,
            )
        }
    };
    let identity = |k: &crate::cluster::KeyFile| {
        Identity::from_pkcs8(&k.pkcs8_bytes()?).map_err(anyhow::Error::from)
    };
    let client_identities: Vec<Identity> = keys[n..n + clients]
        .iter()
        .map(identity)
        .collect::<Result<_>>()?;
    let client_macs: Vec<ClientMacs> = keys[n..n + clients]
        .iter()
        .map(|k| k.mac_keys().map(|m| ClientMacs::new(&m)))
        .collect::<Result<_>>()?;
    let launcher_identity = identity(&keys[n + clients])?;

    let machine = machine();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started_at = report::now_rfc3339();
    let (load, mut replicas, start_unix_ms, acknowledged) = runtime.block_on(drive(
        plan,
        &cluster,
        start,
        client_identities.into_iter().zip(client_macs).collect(),
        launcher_identity,
        &mut nemesis,
    ))?;
    for (trace, byzantine) in replicas.iter_mut().zip(nemesis.byzantine_replicas()) {
        trace.byzantine = *byzantine;
    }

    let record = RunRecord {
        name: scenario.name.clone(),
        parameters: plan.parameters.clone(),
        started_at,
        start_unix_ms,
        duration: scenario.load.duration,
        warmup: scenario.load.warmup,
        offered_tps: scenario.load.shape.rate_at(Duration::ZERO),
        load,
        replicas,
        events: nemesis.events.clone(),
        executor: (scenario.cluster.executor.clone(), scenario.cluster.threads),
    };
    let mut summary = aggregate::summary(&record);
    let enforced_by = scenario.cluster.cpu.enforced_by(scenario.cluster.backend);
    for (replica, budget) in summary.replicas.iter_mut().zip(&budgets) {
        replica.cpu = Some(budget.record(scenario.cluster.threads, &enforced_by));
    }
    let timeline = aggregate::timeline(&record);
    let spans = nemesis.spans();
    let measured = Measured {
        buckets: &record.load.buckets,
        timeline: &timeline,
        warmup: scenario.load.warmup.as_secs() as usize,
        end: (scenario.load.duration.as_secs() as usize)
            .max(scenario.load.warmup.as_secs() as usize + 1),
    };
    summary.machine = Some(machine);
    summary.scenario = Some(ScenarioRecord {
        path: scenario
            .source
            .path
            .as_ref()
            .map(|p| p.display().to_string()),
        text: scenario.source.text.clone(),
        sha256: scenario.source.sha256(),
        seed: scenario.seed,
    });
    summary.phases = measured.phases(&spans);
    summary.recoveries = measured.recoveries(&spans);
    summary.liveness = Some(measured.liveness(&spans));
    summary.faults = spans;
    summary.acknowledged = Some(acknowledged);
    summary.expectations = scenario.expect.check(&summary);
    report::write_results(&out, &summary, &timeline, &record.load.latency)?;
    Ok(RunOutcome { summary, dir: out })
}

/// Each replica's CPU budget on the scenario's backend and this machine; an error
/// naming the scenario file's field (or, for `tandem local`'s scenario, the flag) when
/// they cannot meet it.
fn replica_budgets(scenario: &Scenario) -> Result<Vec<ReplicaBudget>> {
    let n = scenario.cluster.replicas;
    let budget = &scenario.cluster.cpu;
    if budget.is_none() {
        return Ok(vec![ReplicaBudget::default(); n]);
    }
    match &scenario.source.path {
        None => budget.resolve(
            n,
            scenario.cluster.backend,
            &CpuSet::this_process()?,
            cpu_budget::FLAGS,
        ),
        Some(path) => budget
            .resolve(
                n,
                scenario.cluster.backend,
                &CpuSet::this_process()?,
                cpu_budget::FIELDS,
            )
            .with_context(|| format!("{}", path.display())),
    }
}

/// Reads, checks and runs the scenario file at `path`.
pub fn run_file(path: &Path, replica_program: PathBuf, results: PathBuf) -> Result<RunOutcome> {
    let scenario = Scenario::load(path)?;
    run(&RunPlan::for_scenario(scenario, replica_program, results))
}

/// The machine now: logical CPUs and load averages.
fn machine() -> Machine {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut load_average = [0.0; 3];
    if let Ok(text) = std::fs::read_to_string("/proc/loadavg") {
        for (slot, word) in load_average.iter_mut().zip(text.split_whitespace()) {
            *slot = word.parse().unwrap_or(0.0);
        }
    }
    Machine {
        cores,
        load_average,
    }
}

type Driven = (LoadStats, Vec<ReplicaTrace>, u64, report::AcknowledgedCheck);

/// Starts replicas, the launcher and the clients, carries out the fault schedule,
/// waits for the clients, stops the replicas and collects their metrics. Ctrl-C stops
/// everything.
async fn drive(
    plan: &RunPlan,
    cluster: &ClusterFile,
    start: BackendStart,
    identities: Vec<(Identity, ClientMacs)>,
    launcher_identity: Identity,
    nemesis: &mut Nemesis,
) -> Result<Driven> {
    let scenario = &plan.scenario;
    let n = scenario.cluster.replicas;
    let clients = scenario.load.clients;
    // Listening from here on: a Ctrl-C while the replicas start is seen in the loop
    // below, which stops them (the default action would leave containers behind).
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot listen for Ctrl-C")?;
    let mut backend = start.start().await?;
    let run_start = Instant::now();
    if let Backend::Docker(docker) = &mut backend {
        docker.set_origin(run_start);
    }
    let start_unix_ms = unix_ms();
    let progress = Arc::new(Progress::default());
    let membership = cluster.membership()?;
    let mut launcher = Launcher::connect(
        &launcher_identity,
        membership.clone(),
        cluster.protocol.name,
        cluster.network.max_frame_bytes,
    )?;
    let client_faults = FaultHandle::new();

    let (mode, rate_changes) = match &scenario.load.shape {
        LoadShape::Open { rate, changes } => (
            LoadMode::Rate(*rate / clients as f64),
            changes
                .iter()
                .map(|c| (c.at, c.rate / clients as f64))
                .collect(),
        ),
        LoadShape::Closed { window } => (LoadMode::Window(*window), Vec::new()),
    };
    let mut tasks = Vec::new();
    for (c, (identity, client_macs)) in identities.into_iter().enumerate() {
        let settings = LoadSettings {
            client_macs,
            client_index: c as u32,
            client_count: clients as u32,
            duration: scenario.load.duration,
            warmup: scenario.load.warmup,
            payload_bytes: scenario.load.payload_bytes,
            retransmit_after: scenario.load.retransmit_after,
            drain: Duration::from_secs(3),
            rate_changes: rate_changes.clone(),
            faults: Some(ClientFaults {
                handle: client_faults.clone(),
                seed: scenario.seed,
            }),
            ..LoadSettings::for_cluster(cluster, mode)
        };
        let membership = membership.clone();
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            run_load(
                &identity, membership, c as u32, settings, run_start, progress,
            )
            .await
        }));
    }

    let reporter = tokio::spawn(progress::show(
        progress.clone(),
        run_start,
        scenario.load.duration,
    ));
    let mut clients_done = Box::pin(async {
        let mut load = LoadStats::new(run_start, scenario.load.warmup);
        for task in tasks {
            load.merge(&task.await.context("a load client panicked")??);
        }
        Ok::<_, anyhow::Error>(load)
    });
    let steps = scenario.steps();
    let mut next = 0;
    let mut resend = tokio::time::interval(RULES_RESEND);
    let load = loop {
        let due = steps.get(next).map(|s| run_start + s.at);
        tokio::select! {
            load = &mut clients_done => break load?,
            _ = interrupt.recv() => {
                reporter.abort();
                backend.stop_all(Duration::from_secs(2)).await;
                bail!("interrupted: replicas stopped");
            }
            _ = async { tokio::time::sleep_until(due.unwrap_or(run_start)).await }, if due.is_some() => {
                let step = steps[next];
                next += 1;
                let t = run_start.elapsed();
                nemesis.apply(&step, t, &mut backend, &mut launcher, &client_faults).await?;
                let label = nemesis.events.last().map_or("", |e| e.1.as_str());
                eprintln!("{:>6.1} s  {label}", t.as_secs_f64());
            }
            _ = resend.tick() => {
                if !nemesis.rules().is_empty() {
                    launcher.install(nemesis.rules())?;
                }
            }
        }
    };
    reporter.abort();
    let mut alive = Vec::with_capacity(n);
    for i in 0..n {
        alive.push(backend.is_running(i).await);
    }
    let correct_and_up: Vec<u32> = (0..n as u32)
        .filter(|&r| {
            alive[r as usize] && !nemesis.byzantine_replicas()[r as usize] && !nemesis.is_paused(r)
        })
        .collect();
    let acknowledged = ack_check::check(
        &mut launcher,
        &load.acknowledged,
        &correct_and_up,
        cluster.protocol.common.client_window,
        ack_check::PATIENCE,
    )
    .await?;
    eprintln!("acknowledged: {}", acknowledged.detail());
    launcher.shutdown().await;
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
            byzantine: false,
        });
    }
    Ok((load, replicas, start_unix_ms, acknowledged))
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
