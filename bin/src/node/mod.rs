//! A replica process: checks its key against the cluster file, builds the protocol the
//! cluster file names (through the registry: one monomorphised driver per protocol),
//! the application and its execution thread, binds the QUIC transport wrapped in the
//! fault layer (rules applied at the sender, changed by the launcher's control frames),
//! and runs the driver until shutdown.
//!
//! With `durability = "wal"` it first recovers from its write-ahead log (`wal/`): the
//! snapshot into the application, the records through `Protocol::recover`, then it
//! catches up from its peers. A log that is damaged (corruption before its tail, a
//! missing segment, a record the protocol refuses) is moved aside with an error naming
//! the file and offset, and the replica starts empty and recovers by state transfer; a
//! log from another cluster or a newer format stops the replica with that error.

pub mod driver;
pub mod execution;
pub mod metrics;
pub mod wal;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tandem_consensus::Digest;
use tandem_consensus::application::HashChainApp;
use tandem_consensus::crypto::{Keyring, SigningKey};
use tandem_consensus::registry;
use tandem_consensus::state_chunks::restore_from_chunk_list;
use tandem_consensus::{ClientId, Protocol, ProtocolVisitor, ReplicaId, Seq};
use tandem_experiments::cluster::{ClusterFile, Durability, ExecutionConfig, KeyFile};
use tandem_experiments::metrics::MetricsLine;
use tandem_experiments::metrics::unix_ms;
use tandem_network::{
    FaultHandle, FaultyTransport, Identity, Inbound, NodeId, QuicConfig, QuicTransport,
};
use tokio::sync::mpsc::unbounded_channel;

use crate::ledger_app::{Admission, LedgerApp};
use crate::node::driver::{ControlPlane, Driver};
use crate::node::execution::{ExecutionStage, ReplicatedApp};
use crate::node::metrics::MetricsWriter;
use crate::node::wal::format::{WalError, WalErrorKind};
use crate::node::wal::{WalConfig, WalHandle};

/// Everything a replica needs to start.
pub struct ReplicaSetup {
    /// The cluster.
    pub cluster: ClusterFile,
    /// Which replica this is.
    pub id: u32,
    /// Its private key.
    pub key: KeyFile,
    /// Where the key came from, for error messages.
    pub key_path: PathBuf,
    /// Where to write metrics lines, if anywhere.
    pub metrics: Option<PathBuf>,
    /// How often to write them.
    pub metrics_interval: Duration,
    /// Misbehave, for experiments: the name of one of the protocol's Byzantine modes.
    pub byzantine: Option<String>,
    /// What the replica keeps across a restart.
    pub durability: Durability,
    /// The data directory; the log goes to `<data_dir>/r<id>/wal`.
    pub data_dir: PathBuf,
}

/// Runs a replica until `shutdown` completes.
pub async fn run_replica(
    setup: ReplicaSetup,
    shutdown: impl Future<Output = ()>,
) -> Result<MetricsLine> {
    let cluster = &setup.cluster;
    let Some(entry) = cluster.replicas.get(setup.id as usize) else {
        bail!(
            "--id {} is not a replica of the cluster (it has {})",
            setup.id,
            cluster.replicas.len()
        );
    };
    let key_path = setup.key_path.display();
    let key_id = setup.key.node_id()?;
    if key_id != NodeId::Replica(setup.id) {
        bail!(
            "key file {key_path}: field id is `{key_id}` but this is replica r{}",
            setup.id
        );
    }
    let pkcs8 = setup.key.pkcs8_bytes()?;
    let identity = Identity::from_pkcs8(&pkcs8)
        .with_context(|| format!("key file {key_path}: field pkcs8"))?;
    let signing = SigningKey::from_pkcs8(&pkcs8)
        .with_context(|| format!("key file {key_path}: field pkcs8"))?;
    let replica_keys = cluster.replica_keys();
    if replica_keys[setup.id as usize] != identity.public_key() {
        bail!(
            "key file {key_path} does not match the public key of replica r{} in the cluster file",
            setup.id
        );
    }
    // Client requests must carry a valid MAC for this replica: its MAC secret is
    // derived from `signing` (tandem_consensus::client_auth), nothing else on disk.
    let keyring = Keyring::new(ReplicaId(setup.id), signing, replica_keys);
    if let Some(mode) = &setup.byzantine {
        tracing::warn!(replica = setup.id, mode, "running as a Byzantine replica");
    }

    let quic = QuicConfig {
        max_frame_size: cluster.network.max_frame_bytes,
        ..QuicConfig::default()
    };
    let (transport, inbound) = QuicTransport::bind(
        &identity,
        cluster.membership()?,
        cluster.listen_address(setup.id)?,
        quic,
    )
    .with_context(|| format!("cannot listen on {}", entry.address))?;
    let address = transport.local_addr();
    let fault_seed = cluster.control.as_ref().map_or(0, |c| c.fault_seed);
    let faults = FaultHandle::new();
    let mut transport = FaultyTransport::new(transport, faults.clone(), fault_seed)?;
    if let Some(launcher) = cluster.launcher() {
        // Control frames and their answers pass every fault rule.
        transport = transport.exempt(launcher);
    }
    tracing::info!(replica = setup.id, %address, protocol = %cluster.protocol.name, executor = %cluster.execution.executor, "replica started");

    let metrics = setup
        .metrics
        .as_deref()
        .map(MetricsWriter::create)
        .transpose()?;
    let parts = Parts {
        setup: &setup,
        keyring,
        transport,
        faults,
        inbound,
        metrics,
        shutdown: Box::pin(shutdown),
    };
    cluster.protocol.name.dispatch(parts).await
}

/// What a replica has before it knows its protocol's type: everything but the
/// protocol and its driver.
struct Parts<'a> {
    setup: &'a ReplicaSetup,
    keyring: Keyring,
    transport: FaultyTransport<QuicTransport>,
    faults: FaultHandle,
    inbound: Inbound,
    metrics: Option<MetricsWriter>,
    shutdown: Pin<Box<dyn Future<Output = ()> + 'a>>,
}

impl<'a> ProtocolVisitor for Parts<'a> {
    type Output = Pin<Box<dyn Future<Output = Result<MetricsLine>> + 'a>>;

    fn visit<P: Protocol>(self) -> Self::Output {
        Box::pin(run_protocol::<P>(self))
    }
}

/// Builds protocol `P`'s replica and runs its driver until shutdown.
async fn run_protocol<P: Protocol>(parts: Parts<'_>) -> Result<MetricsLine> {
    let setup = parts.setup;
    let cluster = &setup.cluster;
    let own = cluster.protocol.own_params::<P>()?;
    let build = || -> Result<(P, Box<dyn ReplicatedApp + Send>)> {
        let mut proto: P = registry::build(
            &cluster.protocol.common,
            &own,
            parts.keyring.clone(),
            setup.byzantine.as_deref(),
        )?;
        let clients: Vec<ClientId> = cluster.clients.iter().map(|c| ClientId(c.id)).collect();
        proto.set_allowed_clients(&clients);
        Ok((proto, build_app(cluster)?))
    };
    let (mut proto, mut app) = build()?;
    let mut wal = None;
    if setup.durability == Durability::Wal {
        let cfg = WalConfig {
            dir: setup.data_dir.join(format!("r{}", setup.id)).join("wal"),
            cluster: cluster_id(cluster),
            segment_bytes: cluster.storage.segment_bytes,
            compact_bytes: cluster.storage.compact_bytes,
        };
        let recovered = match recover(&cfg, &mut proto, app.as_mut()) {
            Ok(recovered) => recovered,
            Err(e) if e.is_damage() => {
                let aside = cfg.dir.with_file_name(format!("wal.damaged-{}", unix_ms()));
                tracing::error!(error = %e, moved_to = %aside.display(),
                    "write-ahead log damaged: moved aside; starting empty, recovering from peers by state transfer");
                (proto, app) = build()?;
                let salvaged = salvage(&cfg, &mut proto);
                tracing::warn!(
                    records = salvaged,
                    "records of the damaged log handed to the protocol for its safety floor"
                );
                std::fs::rename(&cfg.dir, &aside)
                    .with_context(|| format!("cannot move {} aside", cfg.dir.display()))?;
                wal::open(&cfg)?
            }
            Err(e) => return Err(anyhow::Error::new(e).context("cannot use the write-ahead log")),
        };
        let (handle, reports) = WalHandle::start(cfg, &recovered)?;
        let snapshot = recovered.snapshot.map(|s| (Seq(s.seq), s.state));
        wal = Some((handle, reports, snapshot));
    }
    let (done_tx, done_rx) = unbounded_channel();
    let exec = ExecutionStage::start(app, done_tx, cluster.protocol.common.state_chunk_bytes)?;
    let mut driver = Driver::new(
        proto,
        parts.transport,
        cluster.replicas.len(),
        exec,
        cluster.execution.executor.clone(),
        cluster.network.max_frame_bytes,
    )
    .with_admission(admission(&cluster.execution));
    if let Some((handle, reports, snapshot)) = wal {
        driver = driver.with_wal(handle, reports);
        if let Some((seq, state)) = snapshot {
            driver = driver.with_recovered_snapshot(seq, state);
        }
    }
    if let Some(launcher) = cluster.launcher() {
        driver = driver.with_control(ControlPlane {
            launcher,
            faults: parts.faults,
        });
    }
    driver
        .run(
            parts.inbound,
            done_rx,
            parts.metrics,
            setup.metrics_interval,
            parts.shutdown,
        )
        .await
}

/// Opens the log and replays it: the snapshot into `app`, the records into `proto`.
pub(crate) fn recover<P: Protocol>(
    cfg: &WalConfig,
    proto: &mut P,
    app: &mut (dyn ReplicatedApp + Send),
) -> Result<wal::Recovered, WalError> {
    let recovered = wal::open(cfg)?;
    for (i, torn) in recovered.torn.iter().enumerate() {
        tracing::warn!(torn = %torn, count = i + 1, of = recovered.torn.len(),
            "write-ahead log: torn tail cut off (a write the crash interrupted)");
    }
    let first_segment = cfg.dir.clone();
    if let Some(s) = &recovered.snapshot
        && !restore_from_chunk_list(app, &s.state, &Digest(s.app_digest))
    {
        return Err(WalError::at(
            first_segment,
            0,
            WalErrorKind::Snapshot(format!("the state at {} does not match its digest", s.seq)),
        ));
    }
    for (i, bytes) in recovered.records.iter().enumerate() {
        let refused = |problem: String| {
            WalError::at(
                cfg.dir.clone(),
                0,
                WalErrorKind::Record(format!("record {i}: {problem}")),
            )
        };
        let record: P::Record = tandem_network::decode(bytes, wal::format::MAX_RECORD)
            .map_err(|e| refused(e.to_string()))?;
        proto
            .recover(i as u64, record)
            .map_err(|e| refused(e.to_string()))?;
    }
    tracing::info!(
        records = recovered.records.len(),
        snapshot = recovered.snapshot.as_ref().map(|s| s.seq),
        "recovered from the write-ahead log"
    );
    Ok(recovered)
}

/// A refused log's records, to a fresh replica (`Protocol::salvage`): it keeps the
/// safety floor they hold (HotStuff: last voted round and lock) and logs it again at
/// start, so a log refused by replay (not one the WAL cannot read: nothing is
/// salvaged from that) does not make the replica forget its votes. Returns how many
/// records were handed over.
pub(crate) fn salvage<P: Protocol>(cfg: &WalConfig, proto: &mut P) -> usize {
    let Ok(recovered) = wal::open(cfg) else {
        return 0;
    };
    let mut handed = 0;
    for bytes in &recovered.records {
        if let Ok(record) = tandem_network::decode::<P::Record>(bytes, wal::format::MAX_RECORD) {
            proto.salvage(record);
            handed += 1;
        }
    }
    handed
}

/// The cluster's id in log headers: SHA-256 of its replicas' public keys.
fn cluster_id(cluster: &ClusterFile) -> wal::format::ClusterId {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for key in cluster.replica_keys() {
        ctx.update(&key);
    }
    ctx.finish().as_ref().try_into().expect("32 bytes")
}

/// What the driver checks before a client request is ordered: the cost limit when
/// the replicas execute a ledger, nothing for the hash-chain application or the EVM
/// (whose gas bounds apply in execution, the same on every replica).
fn admission(exec: &ExecutionConfig) -> Admission {
    if exec.executor == "none" || exec.vm == "evm" {
        Admission::default()
    } else {
        Admission::ledger(exec.executor_options().limits)
    }
}

/// The application the cluster file asks for, at genesis.
fn build_app(cluster: &ClusterFile) -> Result<Box<dyn ReplicatedApp + Send>> {
    let exec = &cluster.execution;
    if exec.executor == "none" {
        return Ok(Box::new(HashChainApp::default()));
    }
    if let (true, Some(spec)) = (exec.vm == "evm", &cluster.evm_workload) {
        let (genesis, _) = spec
            .genesis_with(&spec.accounts_for(exec.evm_auth))
            .context("cannot build the EVM genesis state from [evm_workload]")?;
        return Ok(Box::new(
            crate::evm_app::EvmApp::new(
                genesis,
                exec.evm_config(),
                &exec.executor,
                exec.threads,
                &exec.executor_options(),
            )?
            .with_auth(exec.evm_auth),
        ));
    }
    let genesis = cluster
        .workload
        .genesis()
        .context("cannot build the genesis state from [workload]")?;
    Ok(Box::new(LedgerApp::new(
        genesis,
        &exec.executor,
        exec.threads,
        &exec.executor_options(),
    )?))
}
