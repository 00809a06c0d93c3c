//! The deterministic cluster simulator: n replicas of any [`Protocol`], a virtual
//! clock, a seeded network (latency, loss, duplication, reordering, partitions),
//! crashes and restarts, Byzantine replicas, clients, and a checker for safety and
//! liveness. One seed is one run; a failing seed replays exactly with the command
//! [`SimReport::replay_command`] prints.
//!
//! [`run`] simulates the protocol [`SimConfig::protocol`] names with a fault mix: it
//! dispatches through the registry to [`engine::Engine`], generic over the protocol.
//! Neither the engine nor the checker knows which protocol runs: safety is judged on
//! deliveries (position, batch digest), executions and client results, plus the
//! protocol's count of conflicting commits ([`crate::protocol::CommonCounters`]).

pub mod checker;
pub mod disk;
pub mod engine;
pub mod faults;
pub mod network;
pub mod schedule;
pub mod votes;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::application::HashChainApp;
use crate::client::ClientCore;
use crate::client_auth::ClientMacs;
use crate::crypto::Keyring;
use crate::params::{CommonParams, ProtocolParams};
use crate::protocol::Protocol;
use crate::registry::{self, ProtocolKind, ProtocolVisitor};
use crate::sim::checker::Violation;
use crate::sim::disk::{DiskModel, StorageFault};
use crate::sim::engine::{Engine, EngineSetup, SimClient};
use crate::sim::faults::{FaultEvent, FaultMix, FaultPlan, plan};
use crate::sim::network::NetworkModel;
use crate::types::{ClientId, Digest, ReplicaId, Seq, Time};

/// What executing one request costs a replica in the `overload` mix (beyond the
/// per-batch delay): execution carries about 250 requests a second.
pub const OVERLOAD_EXEC_PER_REQUEST: Duration = Duration::from_millis(4);

/// Busy refusals per planned request above which the `overload` mix reports a
/// violation: clients that keep offering past refusals (no congestion window; the
/// simulator's clients never hold new requests during a back-off, only the refused
/// requests wait it out) made PBFT's replicas refuse 2.1–3.3 per request over seeds
/// 0–5; with the congestion window ([`crate::client::ClientCore::congestion_room`])
/// 0.85–1.1. Refusals are counted per replica, so with HotStuff, whose requests go to
/// several next leaders, the ratio also grows with the route.
pub const OVERLOAD_REFUSALS_PER_REQUEST: u64 = 2;

/// One simulation run's parameters.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The protocol simulated.
    pub protocol: ProtocolKind,
    /// The seed: everything random derives from it.
    pub seed: u64,
    /// Number of replicas.
    pub replicas: usize,
    /// Which faults to draw.
    pub faults: FaultMix,
    /// Number of clients.
    pub clients: usize,
    /// Requests each client submits, spread over the fault period and a little after.
    pub requests_per_client: usize,
    /// Requests a client keeps outstanding at most.
    pub client_window: usize,
    /// The replicas' exactly-once window per client (protocol `client_window`).
    pub exactly_once_window: u64,
    /// Faults happen in [0, fault_period]; everything heals at its end.
    pub fault_period: Duration,
    /// Every request must complete within this after the faults heal.
    pub liveness_bound: Duration,
    /// Record a textual trace of every event.
    pub record_trace: bool,
    /// Whether replicas have disks (`sim/disk.rs`): a restart replays what was
    /// fsynced. Without (the default, as `durability = "none"` is the cluster file's),
    /// replicas restart empty.
    pub disks: bool,
    /// Timed faults replacing the drawn plan's (its Byzantine replicas stay): a
    /// scripted run, such as every replica crashing at once. The last one is the heal
    /// time.
    pub scripted_faults: Option<Vec<(Time, faults::FaultEvent)>>,
    /// Whether crashes draw storage faults (torn writes, corrupted records, lost
    /// fsyncs) for the disks.
    pub storage_faults: bool,
    /// The protocol's own parameters set by name over its simulator defaults
    /// ([`ProtocolParams::set_param`]; `tandem sim --protocol-param KEY=VALUE`), such
    /// as HotStuff's `leader_election = reputation`. Empty by default.
    pub protocol_params: Vec<(String, String)>,
    /// [`CommonParams::max_unexecuted`] of every replica (8, the default; a test may
    /// set `1 << 20` to run without back-pressure). Not part of
    /// [`SimConfig::replay_command`]: `tandem sim` runs the default.
    pub max_unexecuted: u64,
    /// Test-only: run the protocol with a safety rule broken
    /// ([`ProtocolParams::break_safety`]), to show the checker catches it.
    #[cfg(test)]
    pub break_safety: bool,
    /// Test-only: restarted clients skip the marks query (the liveness gap it
    /// closes: `client-rerun` stalls).
    #[cfg(test)]
    pub no_marks_query: bool,
    /// Test-only: clients believe one replica's stale-number notice or marks answer
    /// (f+1 rule broken), to show the checker catches `forge-stale` replicas then.
    #[cfg(test)]
    pub trust_one_replica: bool,
    /// Test-only: clients submit past their congestion window (and, as every
    /// simulated client, do not hold new requests during a back-off), to show the
    /// `overload` mix's refusal rule catches clients that keep offering.
    #[cfg(test)]
    pub ignore_congestion_window: bool,
}

impl SimConfig {
    /// The run of `protocol` for `seed`, `mix` and `replicas`. The load also derives
    /// from the seed: 2–4 clients keeping 1, 4 or 16 requests outstanding, 30–120
    /// requests each, against an exactly-once window of 32 that their numbering slides
    /// across.
    pub fn new(protocol: ProtocolKind, seed: u64, faults: FaultMix, replicas: usize) -> SimConfig {
        if faults == FaultMix::Overload {
            return SimConfig::overload(protocol, seed, replicas);
        }
        if faults == FaultMix::ClientRerun {
            return SimConfig::client_rerun(protocol, seed, replicas);
        }
        let mut load = ChaCha8Rng::seed_from_u64(seed ^ 0x10AD_10AD);
        SimConfig {
            clients: load.random_range(2..=4),
            requests_per_client: load.random_range(30..=120),
            client_window: [1, 4, 16][load.random_range(0..3)],
            exactly_once_window: 32,
            ..SimConfig::light(protocol, seed, faults, replicas)
        }
    }

    /// The `overload` mix's load: 4 clients × 300 requests over 4 s, 32 outstanding
    /// each, against execution that carries about 250 requests a second
    /// ([`OVERLOAD_EXEC_PER_REQUEST`]): the clients offer 1.2× what execution carries,
    /// and keep 2.7× the proposer's admission bound outstanding.
    pub fn overload(protocol: ProtocolKind, seed: u64, replicas: usize) -> SimConfig {
        SimConfig {
            clients: 4,
            requests_per_client: 300,
            client_window: 32,
            exactly_once_window: 64,
            ..SimConfig::light(protocol, seed, FaultMix::Overload, replicas)
        }
    }

    /// The `client-rerun` mix's run: the seeded load of [`SimConfig::new`] with
    /// disks (its replicas restart from them) and the default exactly-once window,
    /// 65,536, far above the numbers a run uses, so no done number lies a window above
    /// a spent one (the stale-number notices' other witness).
    pub fn client_rerun(protocol: ProtocolKind, seed: u64, replicas: usize) -> SimConfig {
        let mut load = ChaCha8Rng::seed_from_u64(seed ^ 0x10AD_10AD);
        SimConfig {
            clients: load.random_range(2..=4),
            requests_per_client: load.random_range(30..=120),
            client_window: [1, 4, 16][load.random_range(0..3)],
            exactly_once_window: crate::params::CommonParams::default().client_window,
            disks: true,
            ..SimConfig::light(protocol, seed, FaultMix::ClientRerun, replicas)
        }
    }

    /// A light, fixed load (3 clients × 30 requests, 4 outstanding, window 64): the
    /// configuration early regression seeds were found with.
    pub fn light(
        protocol: ProtocolKind,
        seed: u64,
        faults: FaultMix,
        replicas: usize,
    ) -> SimConfig {
        SimConfig {
            protocol,
            seed,
            replicas,
            faults,
            clients: 3,
            requests_per_client: 30,
            client_window: 4,
            exactly_once_window: 64,
            fault_period: Duration::from_secs(3),
            liveness_bound: Duration::from_secs(40),
            record_trace: false,
            disks: false,
            storage_faults: true,
            scripted_faults: None,
            protocol_params: Vec::new(),
            max_unexecuted: 8,
            #[cfg(test)]
            break_safety: false,
            #[cfg(test)]
            no_marks_query: false,
            #[cfg(test)]
            trust_one_replica: false,
            #[cfg(test)]
            ignore_congestion_window: false,
        }
    }

    /// The common parameters every protocol runs with in the simulator: small batches
    /// and checkpoint intervals so a short run exercises checkpoints, garbage
    /// collection and state transfer; every eighth seed signs every message. The
    /// protocol's own come from [`ProtocolParams::for_simulator`].
    pub fn common_params(&self) -> CommonParams {
        CommonParams {
            replicas: self.replicas,
            max_batch: 6,
            max_batch_bytes: 64 << 10,
            max_request_bytes: 1 << 10,
            batch_timeout: Duration::from_millis(5),
            checkpoint_interval: 8,
            client_window: self.exactly_once_window,
            signed_all: self.seed % 8 == 7,
            status_interval: Duration::from_millis(100),
            transfer_timeout: Duration::from_millis(500),
            state_chunk_bytes: crate::state_chunks::DEFAULT_STATE_CHUNK_BYTES,
            max_unexecuted: self.max_unexecuted,
        }
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        let disks = match (self.disks, self.storage_faults) {
            (false, _) => "",
            (true, false) => " --durability wal --no-storage-faults",
            (true, true) => " --durability wal",
        };
        let params: String = self
            .protocol_params
            .iter()
            .map(|(k, v)| format!(" --protocol-param {k}={v}"))
            .collect();
        format!(
            "cargo run --release -- sim --protocol {} --seed {} --faults {} --replicas {}{disks}{params}",
            self.protocol,
            self.seed,
            self.faults.name(),
            self.replicas
        )
    }

    /// Sets HotStuff's (or any protocol's) own parameter `key` to `value` for this run.
    pub fn with_protocol_param(mut self, key: &str, value: &str) -> SimConfig {
        self.protocol_params
            .push((key.to_string(), value.to_string()));
        self
    }

    /// Checks [`SimConfig::protocol_params`] against the protocol's parameters.
    ///
    /// # Errors
    /// The first key the protocol does not take, or a value it refuses.
    pub fn check_protocol_params(&self) -> Result<(), crate::params::ParamsError> {
        struct Check<'a>(&'a SimConfig);
        impl ProtocolVisitor for Check<'_> {
            type Output = Result<(), crate::params::ParamsError>;
            fn visit<P: Protocol>(self) -> Self::Output {
                self.0.own_params::<P>().map(drop)
            }
        }
        self.protocol.dispatch(Check(self))
    }

    /// Protocol `P`'s own parameters for this run: its simulator defaults with
    /// [`SimConfig::protocol_params`] set over them.
    fn own_params<P: Protocol>(&self) -> Result<P::Params, crate::params::ParamsError> {
        let common = self.common_params();
        let mut own = P::Params::for_simulator(&common);
        for (k, v) in &self.protocol_params {
            own.set_param(k, v)?;
        }
        own.validate(&common)?;
        Ok(own)
    }

    /// The disks of this run and the storage faults at its crashes, drawn from the
    /// seed apart from the rest of the run: an fsync of 20 µs – 1 ms; each crash
    /// suffers no fault (half of them) or one of [`StorageFault::ALL`].
    pub fn draw_disks(
        &self,
        plan: &FaultPlan,
    ) -> (Option<DiskModel>, BTreeMap<(Time, usize), StorageFault>) {
        if !self.disks {
            return (None, BTreeMap::new());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0xD15C_D15C);
        let model = DiskModel {
            fsync_delay: Duration::from_micros(rng.random_range(20..1000)),
        };
        let mut faults = BTreeMap::new();
        for (at, event) in &plan.events {
            if let FaultEvent::Crash(r) = event
                && self.storage_faults
                && rng.random_bool(0.5)
            {
                let fault = StorageFault::ALL[rng.random_range(0..StorageFault::ALL.len())];
                faults.insert((*at, *r), fault);
            }
        }
        (Some(model), faults)
    }
}

/// What one run did and found.
#[derive(Clone, Debug)]
pub struct SimReport {
    /// The run's parameters.
    pub config: SimConfig,
    /// Violations found (empty on success).
    pub violations: Vec<Violation>,
    /// Requests completed at clients.
    pub requests_completed: u64,
    /// Requests planned.
    pub requests_planned: u64,
    /// View changes (a rotating-leader protocol: round time-outs) of correct replicas
    /// still up at the end.
    pub view_changes: u64,
    /// State transfers completed by correct replicas still up at the end.
    pub state_transfers: u64,
    /// Highest sequence number delivered.
    pub highest_delivered: Seq,
    /// Busy refusals sent by correct replicas still up at the end (admission control).
    pub refused_busy: u64,
    /// Busy refusals the clients received from their requests' routes.
    pub client_busy_refusals: u64,
    /// Requests the clients sent again after a busy refusal's back-off.
    pub client_busy_retries: u64,
    /// Requests the clients numbered again because f+1 replicas witnessed their
    /// numbers spent (a client restarted under its key: [`FaultEvent::ClientRestart`]).
    pub client_renumbered: u64,
    /// Replicas that were Byzantine, and the name of their mode.
    pub byzantine: Vec<(ReplicaId, &'static str)>,
    /// Events processed.
    pub events: u64,
    /// Restarts from disk that restored a compacted log's snapshot (and replayed its
    /// base record and the records after it).
    pub restarts_from_snapshot: u64,
    /// Virtual time at the end.
    pub end: Time,
    /// Digest of the whole run: equal seeds give equal hashes.
    pub trace_hash: Digest,
    /// The trace, if recorded.
    pub trace: Vec<String>,
}

impl SimReport {
    /// Whether the run found nothing wrong.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        self.config.replay_command()
    }
}

/// Simulates `cfg.protocol` under `cfg`. A panic inside the protocol is caught and
/// reported as a violation.
pub fn run(cfg: &SimConfig) -> SimReport {
    struct Run<'a>(&'a SimConfig);
    impl ProtocolVisitor for Run<'_> {
        type Output = SimReport;
        fn visit<P: Protocol>(self) -> SimReport {
            run_protocol::<P>(self.0)
        }
    }
    cfg.protocol.dispatch(Run(cfg))
}

/// Simulates protocol `P` under `cfg` (whose `protocol` should name `P`).
fn run_protocol<P: Protocol>(cfg: &SimConfig) -> SimReport {
    match catch_unwind(AssertUnwindSafe(|| run_inner::<P>(cfg))) {
        Ok(report) => report,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            SimReport {
                config: cfg.clone(),
                violations: vec![Violation::Panic(msg)],
                requests_completed: 0,
                requests_planned: 0,
                view_changes: 0,
                state_transfers: 0,
                highest_delivered: Seq(0),
                refused_busy: 0,
                client_busy_refusals: 0,
                client_busy_retries: 0,
                client_renumbered: 0,
                byzantine: Vec::new(),
                events: 0,
                restarts_from_snapshot: 0,
                end: Time::ZERO,
                trace_hash: Digest::default(),
                trace: Vec::new(),
            }
        }
    }
}

fn run_inner<P: Protocol>(cfg: &SimConfig) -> SimReport {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let modes = cfg.protocol.byzantine_modes();
    let mut fault_plan = plan(cfg.faults, &modes, cfg.replicas, cfg.fault_period, &mut rng);
    if let Some(events) = &cfg.scripted_faults {
        fault_plan.events = events.clone();
        fault_plan.heal_at = events.iter().map(|(t, _)| *t).max().unwrap_or(Time::ZERO);
    }
    let common = cfg.common_params();
    #[allow(unused_mut)] // only tests break the protocol
    let mut own = cfg
        .own_params::<P>()
        .expect("protocol parameters are checked before a run");
    #[cfg(test)]
    if cfg.break_safety {
        own.break_safety(&common);
    }
    let keys = Keyring::test_cluster(cfg.replicas, cfg.seed);
    let replica_keys = keys[0].replica_keys().to_vec();
    let client_macs: Vec<ClientMacs> = (0..cfg.clients)
        .map(|c| ClientMacs::from_keyrings(&keys, ClientId(c as u32)))
        .collect();
    let byzantine = fault_plan.byzantine.clone();
    let factory = {
        let byzantine = byzantine.clone();
        let common = common.clone();
        move |id: ReplicaId| {
            let ring = keys[id.index()].clone();
            let mode = byzantine.get(&id.index()).copied();
            registry::build::<P>(&common, &own, ring, mode)
                .expect("simulator parameters and fault-mix modes are valid")
        }
    };
    let overload = cfg.faults == FaultMix::Overload;
    let span = cfg.fault_period + Duration::from_secs(1);
    let clients = (0..cfg.clients)
        .map(|c| {
            let mut times: Vec<Time> = (0..cfg.requests_per_client)
                .map(|_| Time::ZERO + span.mul_f64(rng.random::<f64>()))
                .collect();
            times.sort();
            let core = ClientCore::new(
                ClientId(c as u32),
                cfg.replicas,
                cfg.exactly_once_window,
                Duration::from_millis(500),
                common.signed_all.then(|| replica_keys.clone()),
                P::client_routing(cfg.replicas),
            )
            .with_macs(client_macs[c].clone());
            #[cfg(test)]
            let core = if cfg.trust_one_replica {
                core.trusting_one_replica()
            } else {
                core
            };
            let client = SimClient::new(core, times, cfg.client_window);
            #[cfg(test)]
            let client = if cfg.no_marks_query {
                client.without_marks_query()
            } else {
                client
            };
            #[cfg(test)]
            let client = if cfg.ignore_congestion_window {
                client.ignore_congestion_window()
            } else {
                client
            };
            client
        })
        .collect();
    let net = NetworkModel::new(
        Duration::from_micros(rng.random_range(200..2000)),
        Duration::from_micros(rng.random_range(200..5000)),
    );
    let correct = (0..cfg.replicas)
        .map(|r| !byzantine.contains_key(&r))
        .collect();
    let (disk, storage_faults) = cfg.draw_disks(&fault_plan);
    let engine: Engine<P> = Engine::new(EngineSetup {
        factory: Box::new(factory),
        app_factory: Box::new(|| Box::new(HashChainApp::default())),
        correct,
        clients,
        net,
        faults: fault_plan.events.clone(),
        exec_delay: Duration::from_micros(rng.random_range(50..2000)),
        exec_per_request: if overload {
            OVERLOAD_EXEC_PER_REQUEST
        } else {
            Duration::ZERO
        },
        rng,
        record_trace: cfg.record_trace,
        disk,
        storage_faults,
    });
    let heal_at = fault_plan.heal_at;
    let deadline = heal_at.max(Time::ZERO + span) + cfg.liveness_bound;
    let outcome = engine.run(heal_at, deadline, Duration::from_secs(1));

    let mut view_changes = 0;
    let mut state_transfers = 0;
    let mut refused_busy = 0;
    for (i, counters) in outcome.common.iter().enumerate() {
        let Some(counters) = counters else { continue };
        if byzantine.contains_key(&i) {
            continue;
        }
        view_changes += counters.view_changes;
        state_transfers += counters.state_transfers;
        refused_busy += counters.refused_busy;
    }
    let mut violations = outcome.violations;
    if overload && (view_changes > 0 || state_transfers > 0) {
        violations.push(Violation::Overload(format!(
            "without faults, correct replicas changed view or timed out {view_changes} \
             times and transferred state {state_transfers} times"
        )));
    }
    if overload && refused_busy > OVERLOAD_REFUSALS_PER_REQUEST.saturating_mul(outcome.planned) {
        violations.push(Violation::Overload(format!(
            "correct replicas refused {refused_busy} requests as busy for {} planned: \
             clients kept offering past the refusals",
            outcome.planned
        )));
    }
    SimReport {
        config: cfg.clone(),
        violations,
        requests_completed: outcome.completed,
        requests_planned: outcome.planned,
        view_changes,
        state_transfers,
        highest_delivered: outcome.highest_delivered,
        refused_busy,
        client_busy_refusals: outcome.client_busy_refusals,
        client_busy_retries: outcome.client_busy_retries,
        client_renumbered: outcome.client_renumbered,
        byzantine: byzantine
            .into_iter()
            .map(|(r, m)| (ReplicaId(r as u32), m))
            .collect(),
        events: outcome.events,
        restarts_from_snapshot: outcome.restarts_from_snapshot,
        end: outcome.end,
        trace_hash: outcome.trace_hash,
        trace: outcome.trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pbft::ByzantineMode;

    fn equivocate() -> FaultMix {
        FaultMix::byzantine(ByzantineMode::Equivocate)
    }

    /// With quorums of 2f instead of 2f+1, an equivocating primary splits the correct
    /// replicas: the checker must notice. This proves the checker can fail.
    #[test]
    fn broken_quorum_is_caught() {
        let mut caught = None;
        for seed in 0..50 {
            let mut cfg = SimConfig::new(ProtocolKind::Pbft, seed, equivocate(), 4);
            cfg.break_safety = true;
            let report = run(&cfg);
            if report
                .violations
                .iter()
                .any(|v| matches!(v, Violation::Safety(_)))
            {
                caught = Some(report);
                break;
            }
        }
        let report = caught.expect("a 2f quorum must produce a safety violation");
        assert!(report.replay_command().contains("--protocol pbft --seed"));
    }

    /// Regression (`tandem local --payload 512 --rate 120000`: 90,000 tx/s at 90,000
    /// offered, about 65,000 at 120,000): clients that only backed off after busy
    /// refusals alternated between silence and bursts the proposer refused. In the
    /// `overload` mix the refusal rule catches such clients, and clients that keep
    /// within their congestion window pass it.
    #[test]
    fn clients_that_ignore_refusals_are_caught_in_the_overload_mix() {
        for seed in 0..3 {
            let mut cfg = SimConfig::overload(ProtocolKind::Pbft, seed, 4);
            let report = run(&cfg);
            assert!(
                report.violations.is_empty(),
                "seed {seed}: {:?}",
                report.violations
            );
            cfg.ignore_congestion_window = true;
            let report = run(&cfg);
            assert!(
                report
                    .violations
                    .iter()
                    .any(|v| matches!(v, Violation::Overload(s) if s.contains("refused"))),
                "seed {seed}: {:?} ({} refused)",
                report.violations,
                report.refused_busy
            );
        }
    }

    /// Every replica crashes at once, twice, and restarts: with disks the cluster
    /// resumes from what was fsynced and every request completes with the results
    /// clients accepted before; restarting empty, the replicas forget what they
    /// acknowledged and the run fails.
    #[test]
    fn all_replicas_crash_at_once_and_resume_from_disk() {
        all_crash_at_once(ProtocolKind::Pbft);
    }

    /// The same for HotStuff, whose logs compact at stable checkpoints: the second
    /// crash finds compacted logs, and the committed blocks above their compaction
    /// points come back from the logs (re-derived from the logged QCs, or committed
    /// again) — nothing a client accepted is lost and no vote is contradicted.
    #[test]
    fn all_hotstuff_replicas_crash_at_once_and_resume_from_disk() {
        all_crash_at_once(ProtocolKind::HotStuff);
    }

    fn all_crash_at_once(protocol: ProtocolKind) {
        let script = |at_ms: [u64; 2]| {
            let mut events = Vec::new();
            for at in at_ms {
                let t = Time::ZERO + Duration::from_millis(at);
                for r in 0..4 {
                    events.push((t, FaultEvent::Crash(r)));
                    events.push((t + Duration::from_millis(50), FaultEvent::Restart(r)));
                }
            }
            events
        };
        let mut amnesiac_failures = 0;
        let mut from_snapshot = 0;
        for seed in 0..6 {
            let mut cfg = SimConfig::new(protocol, seed, FaultMix::None, 4);
            cfg.disks = true;
            cfg.scripted_faults = Some(script([700, 1900]));
            cfg.storage_faults = false;
            let report = run(&cfg);
            assert!(
                report.ok(),
                "{protocol} seed {seed} with disks: {:?}\n    replay: {}",
                report.violations,
                report.replay_command()
            );
            assert_eq!(report.requests_completed, report.requests_planned);
            from_snapshot += report.restarts_from_snapshot;
            cfg.disks = false;
            amnesiac_failures += usize::from(!run(&cfg).ok());
        }
        assert!(
            amnesiac_failures > 0,
            "restarting empty must lose something"
        );
        assert!(
            from_snapshot > 0,
            "{protocol}: no restart found a compacted log"
        );
    }

    /// Every replica crashes in turn (one at a time) and restarts from a disk that
    /// may suffer a storage fault: nothing contradicts a vote, nothing is refused that
    /// an honest disk wrote, and every request completes.
    #[test]
    fn rolling_crashes_with_storage_faults() {
        for seed in 0..8 {
            let mut cfg = SimConfig::new(ProtocolKind::Pbft, seed, FaultMix::None, 4);
            cfg.disks = true;
            let mut events = Vec::new();
            for (r, at) in [300u64, 900, 1500, 2100].into_iter().enumerate() {
                let t = Time::ZERO + Duration::from_millis(at);
                events.push((t, FaultEvent::Crash(r)));
                events.push((t + Duration::from_millis(40), FaultEvent::Restart(r)));
            }
            cfg.scripted_faults = Some(events);
            let report = run(&cfg);
            assert!(report.ok(), "seed {seed}: {:?}", report.violations);
        }
    }

    /// A client's process restarts twice mid-run under its key and numbers from 1
    /// again while the replicas remember its earlier numbers: it must renumber the
    /// requests whose numbers are spent (f+1 replicas witnessing it) and complete
    /// everything it planned, and no payload may run under two numbers. Before stale
    /// numbers were answered, the restarted client got at most the cached results of
    /// its previous run's requests (refused: they name other payloads) and stalled.
    #[test]
    fn a_restarted_client_numbers_again_and_completes() {
        for protocol in [ProtocolKind::Pbft, ProtocolKind::HotStuff] {
            let mut renumbered = 0;
            for seed in 0..6 {
                let mut cfg = SimConfig::new(protocol, seed, FaultMix::None, 4);
                cfg.clients = 2;
                cfg.requests_per_client = 120;
                let at = |ms: u64| Time::ZERO + Duration::from_millis(ms);
                cfg.scripted_faults = Some(vec![
                    (at(1500), FaultEvent::ClientRestart(0)),
                    (at(2500), FaultEvent::ClientRestart(0)),
                    (at(2600), FaultEvent::ClientRestart(1)),
                ]);
                let report = run(&cfg);
                assert!(
                    report.ok(),
                    "{protocol} seed {seed}: {:?}\n    replay: {}",
                    report.violations,
                    report.replay_command()
                );
                assert_eq!(report.requests_completed, report.requests_planned);
                renumbered += report.client_renumbered;
            }
            assert!(renumbered > 0, "{protocol}: nothing was numbered again");
        }
    }

    /// The same restarts with a Byzantine replica of every mode of each protocol
    /// (one mode per seed): whatever a faulty replica answers, the restarted clients
    /// renumber only what f+1 replicas witness spent, run nothing twice and complete.
    #[test]
    fn a_restarted_client_completes_beside_every_byzantine_mode() {
        for protocol in [ProtocolKind::Pbft, ProtocolKind::HotStuff] {
            for (seed, mode) in protocol.byzantine_modes().into_iter().enumerate() {
                let mut cfg = SimConfig::new(protocol, seed as u64, FaultMix::Byzantine(mode), 4);
                cfg.clients = 2;
                cfg.requests_per_client = 80;
                let at = |ms: u64| Time::ZERO + Duration::from_millis(ms);
                cfg.scripted_faults = Some(vec![
                    (at(1200), FaultEvent::ClientRestart(0)),
                    (at(2400), FaultEvent::ClientRestart(1)),
                ]);
                let report = run(&cfg);
                assert!(
                    report.ok(),
                    "{protocol} {mode} seed {seed}: {:?}\n    replay: {}",
                    report.violations,
                    report.replay_command()
                );
                assert_eq!(report.requests_completed, report.requests_planned);
            }
        }
    }

    /// The `client-rerun` mix: every replica restarts from its disk between two runs
    /// of a client key, with the default window, so the reply caches hold nothing of
    /// the previous run and no done number lies a window above a spent one. The new
    /// runs must complete everything they planned (the checker's per-client
    /// liveness), numbering past their marks, and run no payload twice. Without the
    /// marks query (the test-only switch), the same runs stall: nothing witnesses the
    /// spent numbers (README's liveness gap).
    #[test]
    fn a_client_run_after_the_replicas_restarted_completes_from_its_marks() {
        for protocol in [ProtocolKind::Pbft, ProtocolKind::HotStuff] {
            let mut stalled = 0;
            for seed in 0..4 {
                let mut cfg = SimConfig::new(protocol, seed, FaultMix::ClientRerun, 4);
                assert!(cfg.disks);
                let report = run(&cfg);
                assert!(
                    report.ok(),
                    "{protocol} seed {seed}: {:?}\n    replay: {}",
                    report.violations,
                    report.replay_command()
                );
                assert_eq!(report.requests_completed, report.requests_planned);
                cfg.no_marks_query = true;
                let without = run(&cfg);
                stalled += usize::from(
                    without
                        .violations
                        .iter()
                        .any(|v| matches!(v, Violation::Liveness(_))),
                );
            }
            assert!(
                stalled > 0,
                "{protocol}: without the marks query nothing stalled"
            );
        }
    }

    /// `forge-stale` replicas answer every request with a stale-number notice
    /// witnessing its number spent and every marks query with marks far above the
    /// truth. With the f+1 rule, restarted clients (and the client-rerun mix's) still
    /// complete everything and run nothing twice; with the rule broken (a client
    /// believing one replica), the checker catches it — a payload run under two
    /// numbers, or requests numbered past the window that never complete.
    #[test]
    fn forged_stale_answers_are_harmless_with_f_plus_one_and_caught_without() {
        for protocol in [ProtocolKind::Pbft, ProtocolKind::HotStuff] {
            let mut caught = 0;
            for seed in 0..4 {
                let mut cfg = SimConfig::new(protocol, seed, FaultMix::ClientRerun, 4);
                cfg.faults = FaultMix::Byzantine("forge-stale");
                cfg.clients = 2;
                cfg.requests_per_client = 60;
                let at = |ms: u64| Time::ZERO + Duration::from_millis(ms);
                cfg.scripted_faults = Some(vec![
                    (at(1000), FaultEvent::ClusterRestart),
                    (at(1100), FaultEvent::ClientRestart(0)),
                    (at(2000), FaultEvent::ClientRestart(1)),
                ]);
                let report = run(&cfg);
                assert_eq!(report.byzantine.len(), 1, "{:?}", report.byzantine);
                assert!(
                    report.ok(),
                    "{protocol} seed {seed}: {:?}\n    replay: {}",
                    report.violations,
                    report.replay_command()
                );
                assert_eq!(report.requests_completed, report.requests_planned);
                cfg.trust_one_replica = true;
                let broken = run(&cfg);
                caught += usize::from(!broken.ok());
            }
            assert_eq!(caught, 4, "{protocol}: the broken rule went unnoticed");
        }
    }

    #[test]
    fn correct_quorum_survives_the_same_seeds() {
        for seed in 0..10 {
            let cfg = SimConfig::new(ProtocolKind::Pbft, seed, equivocate(), 4);
            let report = run(&cfg);
            assert!(report.ok(), "seed {seed}: {:?}", report.violations);
        }
    }
}
