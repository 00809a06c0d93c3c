//! A load client: generates workload transactions, sends them through PBFT's client
//! state machine (to the primary; to everyone on time-out), accepts results on f+1
//! matching replies, and records latency and every request it accepted (for the
//! acknowledged-loss check). Open loop (a target rate) or closed loop (a window of
//! outstanding requests).

pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use tandem_consensus::client::{ClientAction, ClientCore, Completed};
use tandem_consensus::client_auth::ClientMacs;
use tandem_consensus::{ClientId, ProtocolKind, Request, Time};
use tandem_executor::evm::{EvmAuth, EvmGenerator, EvmWorkloadSpec};
use tandem_executor::{Generator, Receipt, WorkloadSpec};
use tandem_network::{
    FaultHandle, FaultyTransport, Identity, Membership, NodeId, QuicConfig, QuicTransport,
    Transport, wait_until_connected,
};
use tokio::time::{Instant, MissedTickBehavior};

use crate::cluster::ClusterFile;
use crate::frames::{self, ClientFrame, ReplicaFrame};
use crate::load::stats::{FinalCounts, LoadStats};
use crate::payload::{encode_evm_payload, encode_payload, evm_result_succeeded};

/// How much load to offer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadMode {
    /// Open loop: submit at this many transactions per second, whatever the replies.
    Rate(f64),
    /// Closed loop: keep this many requests outstanding.
    Window(usize),
}

impl LoadMode {
    /// The mode the flags `--rate` (open loop, transactions per second) or `--window`
    /// (closed loop, requests outstanding) ask for; with neither, a closed loop of
    /// `default_window`. The error names the flag.
    pub fn from_flags(
        rate: Option<f64>,
        window: Option<usize>,
        default_window: usize,
    ) -> Result<LoadMode> {
        match (rate, window) {
            (Some(r), _) if r > 0.0 => Ok(LoadMode::Rate(r)),
            (Some(_), _) => bail!("--rate must be positive"),
            (None, Some(w)) if w > 0 => Ok(LoadMode::Window(w)),
            (None, Some(_)) => bail!("--window must be positive"),
            (None, None) => Ok(LoadMode::Window(default_window)),
        }
    }

    /// What each of `clients` clients offers when they share this load: an open-loop
    /// rate is split evenly; a window is per client.
    pub fn per_client(self, clients: usize) -> LoadMode {
        match self {
            LoadMode::Rate(r) => LoadMode::Rate(r / clients.max(1) as f64),
            window => window,
        }
    }
}

/// A load client's parameters.
#[derive(Clone, Debug)]
pub struct LoadSettings {
    /// Which transactions to generate (must match the cluster's genesis).
    pub workload: WorkloadSpec,
    /// With the EVM (`[execution] vm = "evm"`): the EVM workload to generate
    /// instead of `workload` (its genesis is rebuilt here to learn the contracts'
    /// addresses and the senders' nonces).
    pub evm: Option<EvmWorkloadSpec>,
    /// With the EVM: the cluster's `[execution] evm_auth`; under secp256k1 the
    /// client signs every transaction with its sender's key (`EvmAccounts`).
    pub evm_auth: EvmAuth,
    /// This client's index among `client_count` (they draw disjoint senders).
    pub client_index: u32,
    /// How many load clients share the workload.
    pub client_count: u32,
    /// Offered load.
    pub mode: LoadMode,
    /// How long to submit.
    pub duration: Duration,
    /// Completions in the first `warmup` are left out of the summary statistics.
    pub warmup: Duration,
    /// Pad every request payload to at least this many bytes.
    pub payload_bytes: usize,
    /// Retransmit a request to every replica after this long without a result.
    pub retransmit_after: Duration,
    /// The protocol the replicas run: it decides where new requests go.
    pub protocol: ProtocolKind,
    /// Number of replicas.
    pub replicas: usize,
    /// Replica public keys, to verify signed replies (signed-all mode).
    pub replica_keys: Option<Vec<[u8; 32]>>,
    /// The replicas' exactly-once window per client (protocol `client_window`).
    pub exactly_once_window: u64,
    /// Largest frame.
    pub max_frame: usize,
    /// After `duration`, wait at most this long for outstanding replies.
    pub drain: Duration,
    /// Open loop: later rates of this client, `(time since the run started, tx/s)`,
    /// in time order (a rate step at 30 s is `(30 s, new rate)`).
    pub rate_changes: Vec<(Duration, f64)>,
    /// Send through the fault layer with these rules (and this seed): a scenario's
    /// faults on the links between clients and replicas, applied at the client.
    pub faults: Option<ClientFaults>,
    /// The client's MAC keys, one per replica (its key file's `mac_keys`): every
    /// request carries an authenticator made with them; replicas refuse requests
    /// without one. Empty by default.
    pub client_macs: ClientMacs,
}

/// The fault layer a load client sends through.
#[derive(Clone)]
pub struct ClientFaults {
    /// The rules (shared by every client of the runner, changed as faults start and end).
    pub handle: FaultHandle,
    /// Seeds the layer's draws (mixed with the client's id).
    pub seed: u64,
}

impl std::fmt::Debug for ClientFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFaults")
            .field("rules", &self.handle.rules())
            .field("seed", &self.seed)
            .finish()
    }
}

#[cfg(test)]
mod offered_tests {
    use super::*;

    #[test]
    fn the_offered_load_integrates_rate_steps() {
        let s = Duration::from_secs;
        assert_eq!(offered_until(100.0, &[], s(3)), 300.0);
        let steps = [(s(2), 1000.0), (s(4), 10.0)];
        assert_eq!(offered_until(100.0, &steps, s(1)), 100.0);
        assert_eq!(offered_until(100.0, &steps, s(3)), 200.0 + 1000.0);
        assert_eq!(offered_until(100.0, &steps, s(5)), 200.0 + 2000.0 + 10.0);
    }
}

/// Transactions an open loop starting at `rate` and changing at `changes` offers from
/// the run's start to `t` (the integral of the rate).
pub fn offered_until(rate: f64, changes: &[(Duration, f64)], t: Duration) -> f64 {
    let mut total = 0.0;
    let mut level = rate;
    let mut since = Duration::ZERO;
    for &(at, next) in changes {
        if at >= t {
            break;
        }
        total += level * (at.saturating_sub(since)).as_secs_f64();
        level = next;
        since = at.max(since);
    }
    total + level * t.saturating_sub(since).as_secs_f64()
}

impl LoadSettings {
    /// Settings for one client of `cluster` offering `mode`: the cluster's workload,
    /// protocol, replica count, replica keys (signed-all mode), exactly-once window and frame
    /// limit; the client is the only one (index 0 of 1), submits for 20 s after a 2 s
    /// warm-up without padding, retransmits after 1 s and drains for 2 s. Callers
    /// override what they ask for.
    pub fn for_cluster(cluster: &ClusterFile, mode: LoadMode) -> LoadSettings {
        LoadSettings {
            workload: cluster.workload.clone(),
            evm: if cluster.execution.vm == "evm" {
                cluster.evm_workload.clone()
            } else {
                None
            },
            evm_auth: cluster.execution.evm_auth,
            client_index: 0,
            client_count: 1,
            mode,
            duration: Duration::from_secs(20),
            warmup: Duration::from_secs(2),
            payload_bytes: 0,
            retransmit_after: Duration::from_secs(1),
            protocol: cluster.protocol.name,
            replicas: cluster.replicas.len(),
            replica_keys: cluster
                .protocol
                .common
                .signed_all
                .then(|| cluster.replica_keys()),
            exactly_once_window: cluster.protocol.common.client_window,
            max_frame: cluster.network.max_frame_bytes,
            drain: Duration::from_secs(2),
            rate_changes: Vec::new(),
            faults: None,
            client_macs: ClientMacs::default(),
        }
    }
}

/// Counters shared with a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    /// Requests completed so far.
    pub completed: AtomicU64,
    /// Requests submitted so far.
    pub submitted: AtomicU64,
}

/// Requests submitted per tick at most, in open loop, so a stall is not followed by a
/// burst larger than 50 ms of load.
const MAX_CATCH_UP: Duration = Duration::from_millis(50);
/// In open loop, at most this much of the offered load may be outstanding; the rest is
/// shed (counted, never sent).
const OUTSTANDING_CAP: Duration = Duration::from_secs(2);

/// Runs one load client until `duration` (plus drain) has passed.
pub async fn run_load(
    identity: &Identity,
    membership: Arc<Membership>,
    client_id: u32,
    settings: LoadSettings,
    run_start: Instant,
    progress: Arc<Progress>,
) -> Result<LoadStats> {
    let quic = QuicConfig {
        max_frame_size: settings.max_frame,
        ..QuicConfig::default()
    };
    let bind = client_bind_address(membership.iter().filter_map(|m| m.addr));
    let (quic, mut inbound) = QuicTransport::bind(identity, membership, bind, quic)
        .context("cannot start the client transport")?;
    let transport: Box<dyn Transport> = match &settings.faults {
        Some(f) => Box::new(FaultyTransport::new(quic, f.handle.clone(), f.seed)?),
        None => Box::new(quic),
    };
    let replicas: Vec<NodeId> = (0..settings.replicas as u32).map(NodeId::Replica).collect();
    if !wait_until_connected(transport.as_ref(), &replicas, Duration::from_secs(10)).await {
        tracing::warn!("not every replica is reachable yet; starting anyway");
    }

    let mut generator = match &settings.evm {
        None => {
            let mut generator = settings
                .workload
                .generator(settings.client_index, settings.client_count)
                .context("cannot build the workload generator")?;
            generator.set_nonce_floor(crate::metrics::unix_ms() * 1000);
            TxSource::Ledger(generator)
        }
        Some(spec) => {
            let accounts = spec.accounts_for(settings.evm_auth);
            let (genesis, deployment) = spec
                .genesis_with(&accounts)
                .context("cannot build the EVM workload's genesis")?;
            TxSource::Evm(
                spec.client_generator_with(
                    &genesis,
                    &deployment,
                    &accounts,
                    settings.client_index,
                    settings.client_count,
                )
                .context("cannot build the EVM workload generator")?,
                EvmNonces::default(),
            )
        }
    };
    let mut core = ClientCore::new(
        ClientId(client_id),
        settings.replicas,
        settings.exactly_once_window,
        settings.retransmit_after,
        settings.replica_keys.clone(),
        settings.protocol.client_routing(settings.replicas),
    )
    .with_macs(settings.client_macs.clone());
    let mut stats = LoadStats::new(run_start, settings.warmup);
    let origin = Instant::now();
    let offered_before = match settings.mode {
        LoadMode::Rate(rate) => offered_until(
            rate,
            &settings.rate_changes,
            origin.saturating_duration_since(run_start),
        ),
        LoadMode::Window(_) => 0.0,
    };
    let now = |origin: Instant| Time(origin.elapsed().as_nanos() as u64);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let stop_submitting = origin + settings.duration;
    let hard_stop = stop_submitting + settings.drain;
    let mut submitted: u64 = 0;
    let mut shed: u64 = 0;
    // Caps follow the highest rate the client will offer.
    let peak = |rate: f64| {
        settings
            .rate_changes
            .iter()
            .map(|c| c.1)
            .fold(rate, f64::max)
    };
    let max_outstanding = match settings.mode {
        LoadMode::Rate(rate) => ((peak(rate) * OUTSTANDING_CAP.as_secs_f64()) as usize).max(64),
        LoadMode::Window(w) => w,
    };
    let mut actions = Vec::new();
    let mut done = Vec::new();
    // A run starts by asking the replicas for this key's marks in their exactly-once
    // table, so it numbers past what an earlier run under the key spent even when the
    // replicas restarted since (their reply caches empty: `client.rs`).
    core.query_marks(now(origin), &mut actions);
    send_actions(transport.as_ref(), &replicas, &mut actions);

    loop {
        tokio::select! {
            _ = tick.tick() => {
                let t = Instant::now();
                if t >= hard_stop || (t >= stop_submitting && core.outstanding() == 0) {
                    break;
                }
                if t < stop_submitting {
                    let backing_off = core.backing_off(now(origin));
                    let want = match settings.mode {
                        // Busy refusals: the offered load waits out the back-off
                        // (open loop: shed; closed loop: submitted later).
                        LoadMode::Rate(_) | LoadMode::Window(_) if backing_off => {
                            if let LoadMode::Rate(rate) = settings.mode {
                                let due = (offered_until(rate, &settings.rate_changes, run_start.elapsed()) - offered_before).max(0.0) as u64;
                                let cap = (peak(rate) * MAX_CATCH_UP.as_secs_f64()).max(1.0) as u64;
                                shed += due.saturating_sub(submitted + shed).min(cap);
                            }
                            0
                        }
                        LoadMode::Rate(rate) => {
                            let due = (offered_until(rate, &settings.rate_changes, run_start.elapsed()) - offered_before).max(0.0) as u64;
                            let cap = (peak(rate) * MAX_CATCH_UP.as_secs_f64()).max(1.0) as u64;
                            let want = due.saturating_sub(submitted + shed).min(cap);
                            // Past the outstanding cap the offered load is shed, not
                            // queued: an overloaded cluster is measured, not buried
                            // under its own retransmissions.
                            let room = max_outstanding
                                .saturating_sub(core.outstanding())
                                .min(core.congestion_room()) as u64;
                            shed += want.saturating_sub(room);
                            want.min(room)
                        }
                        LoadMode::Window(w) => w.saturating_sub(core.outstanding()).min(core.congestion_room()) as u64,
                    };
                    let sent = submit(&mut core, &mut generator, want, now(origin), settings.payload_bytes, &mut actions);
                    if matches!(settings.mode, LoadMode::Rate(_)) {
                        shed += want - sent;
                    }
                    submitted += sent;
                    progress.submitted.fetch_add(sent, Ordering::Relaxed);
                }
                core.on_tick(now(origin), &mut actions);
                send_actions(transport.as_ref(), &replicas, &mut actions);
            }
            frame = inbound.recv() => {
                let Some((from, bytes)) = frame else { break };
                handle_frame(&mut core, now(origin), from, &bytes, settings.max_frame, &mut done, &mut stats);
                while let Ok((from, bytes)) = inbound.try_recv() {
                    handle_frame(&mut core, now(origin), from, &bytes, settings.max_frame, &mut done, &mut stats);
                }
                let finished = done.len() as u64;
                record(&mut stats, client_id, &mut done, &mut generator);
                progress.completed.fetch_add(finished, Ordering::Relaxed);
                if let LoadMode::Window(w) = settings.mode && Instant::now() < stop_submitting && !core.backing_off(now(origin)) {
                    let want = w.saturating_sub(core.outstanding()).min(core.congestion_room()) as u64;
                    let sent = submit(&mut core, &mut generator, want, now(origin), settings.payload_bytes, &mut actions);
                    submitted += sent;
                    progress.submitted.fetch_add(sent, Ordering::Relaxed);
                    send_actions(transport.as_ref(), &replicas, &mut actions);
                }
            }
        }
    }
    let c = core.counters();
    stats.finish(FinalCounts {
        submitted: c.submitted,
        retransmissions: c.retransmissions,
        rejected_replies: c.rejected_replies,
        unfinished: core.outstanding() as u64,
        shed,
        busy_refusals: c.busy_refusals,
        renumbered: c.renumbered,
        skipped: c.skipped_spent,
    });
    transport.shutdown().await;
    Ok(stats)
}

/// The address a load client binds: the unspecified address of the replicas' address
/// family with a port the system picks, so the client reaches replicas on this host and
/// on others alike. `[::]:0` if any replica has an IPv6 address (on Linux such a socket
/// is dual-stack and reaches the IPv4 ones too), `0.0.0.0:0` otherwise.
pub fn client_bind_address(replicas: impl IntoIterator<Item = SocketAddr>) -> SocketAddr {
    if replicas.into_iter().any(|a| a.is_ipv6()) {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    }
}

/// Where a load client's transactions come from: the ledger's generator, or the
/// EVM's (nonces exact from genesis: an EVM client runs once per sender class) with
/// what its senders' results say about their nonces.
enum TxSource {
    Ledger(Generator),
    Evm(EvmGenerator, EvmNonces),
}

/// The EVM load client's view of its senders' nonces. EVM nonces must be exact: a
/// transaction lost before ordering (held by a primary that crashed) is resent only
/// after the client's time-out, and meanwhile the sender's later transactions are
/// ordered first and refused as invalid (nonce too high) — they do not run, so their
/// nonces stay unused. Without a rewind the generator would go on past them and every
/// later transaction of that sender would fail too, for the rest of the run. So a
/// result of a transaction that did not run rewinds its sender's next nonce to that
/// transaction's (never below one its sender is known to have used).
#[derive(Debug, Default)]
struct EvmNonces {
    /// Outstanding payloads: (sender account index, nonce).
    sent: HashMap<Bytes, (u64, u64)>,
    /// Per sender: one above the highest nonce seen to run.
    used_below: HashMap<u64, u64>,
}

impl EvmNonces {
    /// `payload` went out as `sender`'s transaction with `nonce`.
    fn sent(&mut self, payload: Bytes, sender: u64, nonce: u64) {
        self.sent.insert(payload, (sender, nonce));
    }

    /// The accepted `result` of `payload`: the sender and the nonce its next
    /// transaction should use, when the transaction did not run (its nonce unused).
    fn completed(&mut self, payload: &Bytes, result: &[u8]) -> Option<(u64, u64)> {
        let (sender, nonce) = self.sent.remove(payload)?;
        // Status bytes (`encode_evm_result`): 0 success, 1 reverted, 2 out of gas,
        // 3 halted ran and used the nonce; 4 invalid, 5 gas limit above the maximum,
        // 6 batch budget exhausted, 7 bad signature, 8 and 9 fee caps refused did
        // not run.
        let used = self.used_below.entry(sender).or_insert(0);
        match result.first() {
            Some(0..=3) => {
                *used = (*used).max(nonce.saturating_add(1));
                None
            }
            Some(4..=9) => Some((sender, nonce.max(*used))),
            _ => None,
        }
    }
}

impl TxSource {
    /// The next request payload, padded to `payload_bytes` (`encode_payload`,
    /// `encode_evm_payload`).
    fn next_payload(&mut self, payload_bytes: usize) -> bytes::Bytes {
        match self {
            TxSource::Ledger(g) => encode_payload(&g.next_transaction(), payload_bytes),
            TxSource::Evm(g, nonces) => {
                let tx = g.next_transaction();
                let (sender, nonce) = (g.last_sender(), tx.nonce);
                let tx = g
                    .accounts()
                    .sign(tx, tandem_executor::evm::CHAIN_ID)
                    .expect("generated transactions are from the workload's accounts");
                let payload = encode_evm_payload(&tx, payload_bytes);
                nonces.sent(payload.clone(), sender, nonce);
                payload
            }
        }
    }
}

/// Submits up to `want` new transactions while the exactly-once window allows;
/// returns how many were sent.
fn submit(
    core: &mut ClientCore,
    generator: &mut TxSource,
    want: u64,
    now: Time,
    payload_bytes: usize,
    actions: &mut Vec<ClientAction>,
) -> u64 {
    let mut sent = 0;
    while sent < want && core.can_submit() {
        core.submit(now, generator.next_payload(payload_bytes), actions);
        sent += 1;
    }
    sent
}

fn handle_frame(
    core: &mut ClientCore,
    now: Time,
    from: NodeId,
    bytes: &[u8],
    max_frame: usize,
    done: &mut Vec<Completed>,
    stats: &mut LoadStats,
) {
    if !matches!(from, NodeId::Replica(_)) {
        stats.bad_frames += 1;
        return;
    }
    match frames::decode_replica_frame(bytes, max_frame) {
        Ok(ReplicaFrame::Replies(replies)) => {
            for reply in &replies {
                if NodeId::Replica(reply.replica.0) != from {
                    stats.bad_frames += 1;
                    continue;
                }
                core.on_reply(now, reply, done);
            }
        }
        Ok(ReplicaFrame::Control(_)) | Err(_) => stats.bad_frames += 1,
    }
}

fn record(stats: &mut LoadStats, client: u32, done: &mut Vec<Completed>, source: &mut TxSource) {
    let evm = matches!(source, TxSource::Evm(..));
    for c in done.drain(..) {
        stats.acknowledge(client, c.number);
        if let TxSource::Evm(g, nonces) = source
            && let Some((sender, nonce)) = nonces.completed(&c.payload, &c.result)
        {
            g.rewind_nonce(sender, nonce);
        }
        let outcome = if evm {
            match evm_result_succeeded(&c.result) {
                Some(true) => stats::Outcome::Applied,
                Some(false) => stats::Outcome::Aborted,
                None => stats::Outcome::Malformed,
            }
        } else {
            match Receipt::decode(&c.result) {
                Ok(r) if r.is_success() => stats::Outcome::Applied,
                Ok(_) => stats::Outcome::Aborted,
                Err(_) => stats::Outcome::Malformed,
            }
        };
        stats.completed(c.latency, outcome);
    }
}

/// Sends the client state machine's actions: one frame per replica.
fn send_actions(transport: &dyn Transport, replicas: &[NodeId], actions: &mut Vec<ClientAction>) {
    if actions.is_empty() {
        return;
    }
    let mut per_replica: BTreeMap<NodeId, Vec<Request>> = BTreeMap::new();
    for action in actions.drain(..) {
        match action {
            ClientAction::QueryMarks => {
                if let Ok(bytes) = frames::encode(&ClientFrame::MarksQuery) {
                    for r in replicas {
                        transport.send(*r, bytes.clone());
                    }
                }
            }
            ClientAction::Send { to, request } => per_replica
                .entry(NodeId::Replica(to.0))
                .or_default()
                .push(request),
            ClientAction::Broadcast { request } => {
                for r in replicas {
                    per_replica.entry(*r).or_default().push(request.clone());
                }
            }
        }
    }
    for (to, requests) in per_replica {
        for chunk in frames::chunks_by_size(requests, |r| r.payload.len() + 16) {
            if let Ok(bytes) = frames::encode(&ClientFrame::Requests(chunk)) {
                transport.send(to, bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    /// A sender's transactions refused as invalid rewind its next nonce to the
    /// lowest unused one, never below a nonce seen to run; results of payloads not
    /// sent (or answered twice) rewind nothing.
    #[test]
    fn results_of_transactions_that_did_not_run_rewind_their_senders_nonce() {
        let mut n = EvmNonces::default();
        let p = |i: u8| Bytes::from(vec![i]);
        let (ok, reverted, invalid) = ([0u8; 9], [1u8; 9], [4u8; 9]);
        for (i, nonce) in [(1, 8), (2, 9), (3, 10), (4, 11)] {
            n.sent(p(i), 5, nonce);
        }
        assert_eq!(n.completed(&p(3), &invalid), Some((5, 10)));
        assert_eq!(n.completed(&p(3), &invalid), None, "answered once");
        assert_eq!(n.completed(&p(1), &ok), None);
        assert_eq!(
            n.completed(&p(2), &reverted),
            None,
            "a revert used its nonce"
        );
        assert_eq!(n.completed(&p(4), &invalid), Some((5, 11)));
        // A late refusal of an old nonce after a later one ran: not below it.
        n.sent(p(6), 5, 3);
        assert_eq!(n.completed(&p(6), &invalid), Some((5, 10)));
        assert_eq!(n.completed(&p(9), &invalid), None, "never sent");
        n.sent(p(7), 5, 12);
        assert_eq!(n.completed(&p(7), &[]), None, "no status byte");
    }

    #[test]
    fn load_mode_from_flags() {
        let rate = LoadMode::from_flags(Some(1000.0), None, 8).unwrap();
        assert_eq!(rate, LoadMode::Rate(1000.0));
        assert_eq!(rate.per_client(4), LoadMode::Rate(250.0));
        assert_eq!(
            LoadMode::from_flags(None, Some(3), 8)
                .unwrap()
                .per_client(4),
            LoadMode::Window(3)
        );
        assert_eq!(
            LoadMode::from_flags(None, None, 8).unwrap(),
            LoadMode::Window(8)
        );
        for (rate, window, flag) in [
            (Some(0.0), None, "--rate"),
            (Some(f64::NAN), None, "--rate"),
            (None, Some(0), "--window"),
        ] {
            let err = LoadMode::from_flags(rate, window, 8)
                .unwrap_err()
                .to_string();
            assert!(err.contains(flag), "{err}");
        }
    }

    #[test]
    fn clients_bind_the_unspecified_address_of_the_replicas_family() {
        let v4 = client_bind_address(addrs(&["10.0.0.1:7100", "10.0.0.2:7100"]));
        assert_eq!(v4, "0.0.0.0:0".parse::<SocketAddr>().unwrap());
        let local = client_bind_address(addrs(&["127.0.0.1:7100"]));
        assert!(local.ip().is_unspecified() && local.is_ipv4() && local.port() == 0);
        let v6 = client_bind_address(addrs(&["[2001:db8::1]:7100", "[2001:db8::2]:7100"]));
        assert_eq!(v6, "[::]:0".parse::<SocketAddr>().unwrap());
        let mixed = client_bind_address(addrs(&["10.0.0.1:7100", "[2001:db8::2]:7100"]));
        assert!(mixed.is_ipv6() && mixed.ip().is_unspecified());
    }

    /// A client bound by [`client_bind_address`] reaches a replica on IPv6 loopback
    /// (which the old fixed `127.0.0.1:0` bind could not) and, from the same dual-stack
    /// socket, one on IPv4 loopback.
    #[tokio::test(flavor = "current_thread")]
    async fn a_client_reaches_ipv6_and_ipv4_replicas() {
        let Ok(v6) = std::net::UdpSocket::bind("[::1]:0") else {
            eprintln!("no IPv6 loopback on this machine; skipped");
            return;
        };
        let v4 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sockets = [v6, v4];
        let ids: Vec<Identity> = (0..3).map(|_| Identity::generate().unwrap()).collect();
        let member =
            |id: NodeId, addr: Option<SocketAddr>, key: &Identity| tandem_network::Member {
                id,
                addr,
                public_key: key.public_key(),
            };
        let membership = Arc::new(
            Membership::new([
                member(
                    NodeId::Replica(0),
                    Some(sockets[0].local_addr().unwrap()),
                    &ids[0],
                ),
                member(
                    NodeId::Replica(1),
                    Some(sockets[1].local_addr().unwrap()),
                    &ids[1],
                ),
                member(NodeId::Client(0), None, &ids[2]),
            ])
            .unwrap(),
        );
        let mut replicas = Vec::new();
        for (socket, id) in sockets.into_iter().zip(&ids) {
            let (t, _inbound) =
                QuicTransport::with_socket(id, membership.clone(), socket, QuicConfig::default())
                    .unwrap();
            replicas.push(t);
        }
        let bind = client_bind_address(membership.iter().filter_map(|m| m.addr));
        let (client, _inbound) =
            QuicTransport::bind(&ids[2], membership, bind, QuicConfig::default()).unwrap();
        let both = [NodeId::Replica(0), NodeId::Replica(1)];
        let up = wait_until_connected(&client, &both, Duration::from_secs(10)).await;
        let connected = client.connected_peers();
        client.shutdown().await;
        for r in &replicas {
            r.shutdown().await;
        }
        assert!(up, "connected to {connected:?} only");
    }
}
