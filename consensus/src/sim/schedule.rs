//! Scheduled fault plans: a timed list of steps in the scenario vocabulary (crash,
//! restart, pause, resume, byzantine, partition, isolate, one-way cut, heal, and link
//! faults — delay, loss, duplicate, reorder, delay ramp, flap: [`LinkFault`], the one
//! definition scenario files parse into and the network fault layer is translated
//! from — on chosen links), whose targets (`primary`, `backups`) are resolved when the
//! step fires, in virtual time, from the replicas' views. `tandem sim --scenario`
//! translates a scenario file into a [`SchedulePlan`] and [`run_schedule`] runs it for
//! one seed; the engine applies each step (`Engine::apply_step`) and the network model
//! the active [`NetRule`]s.
//!
//! Where the simulator differs from a real cluster: a `byzantine` step restarts the
//! replica's state machine in that mode (a running replica's mode cannot change), and
//! the replica counts as faulty for the rest of the run, also after its end (when it
//! restarts honest); `pause` holds every event for the replica (messages, timers,
//! execution reports) and delivers them in order at `resume`, as SIGSTOP/SIGCONT do.

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
use crate::sim::faults::FaultEvent;
use crate::sim::network::{Endpoint, NetworkModel};
use crate::types::{ClientId, ReplicaId, Time};

/// Who a step hits, resolved when it fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimTarget {
    /// These replicas, by index.
    Replicas(Vec<usize>),
    /// The primary (leader) when the step fires: where the protocol's client routing
    /// sends a new request, fed with the views of the running correct replicas.
    Primary,
    /// Every replica but that one.
    Backups,
    /// Every replica.
    All,
    /// The replicas the start of the plan's fault number `.0` hit (an end undoes its
    /// own start, whoever is primary by then).
    SameAs(usize),
}

impl SimTarget {
    /// The replicas it names in a cluster of `n` whose primary is `primary`, sorted;
    /// `hit` holds what each fault's start resolved to.
    pub fn resolve(
        &self,
        n: usize,
        primary: usize,
        hit: &BTreeMap<usize, Vec<usize>>,
    ) -> Vec<usize> {
        let mut out: Vec<usize> = match self {
            SimTarget::Replicas(ids) => ids.iter().copied().filter(|r| *r < n).collect(),
            SimTarget::SameAs(fault) => hit.get(fault).cloned().unwrap_or_default(),
            SimTarget::Primary => vec![primary],
            SimTarget::Backups => (0..n).filter(|r| *r != primary).collect(),
            SimTarget::All => (0..n).collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// A link fault: what happens to each message on the links it covers. The one
/// definition of the link-fault vocabulary (`delay`, `loss`, `duplicate`, `reorder`,
/// `delay-ramp`, `flap`): a scenario file's link action parses into it
/// (`tandem_experiments::scenario::Action::Link`, re-exported there as
/// `scenario::LinkFault`), the simulator applies it per message ([`StepAction::Link`],
/// [`NetRuleKind::Link`]), and the experiments runner translates it into the network
/// fault layer's `LinkFaults` (`runner::link_rules`, one function). Its names are the
/// scenario's words; a new kind of link fault is added here and in those two
/// translations (the compiler points at both).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinkFault {
    /// Extra delay, uniform in `delay ± jitter` (`delay`: `delay_ms`, `jitter_ms`).
    Delay {
        /// Mean extra delay.
        delay: Duration,
        /// Half-width of the spread.
        jitter: Duration,
    },
    /// Lose each message with this probability (`loss`: `probability`).
    Loss(f64),
    /// Deliver each message twice with this probability (`duplicate`: `probability`).
    Duplicate(f64),
    /// Hold a message back with this probability (`reorder`: `probability`); the
    /// simulator holds it up to 5 ms more, the network layer behind the next frame.
    Reorder(f64),
    /// A delay rising linearly from `from` to `to` over `over` from when the fault
    /// starts (then staying at `to` until it ends), `± jitter` (`delay-ramp`:
    /// `from_ms`, `to_ms`, `jitter_ms`; a scenario's `over` is the fault's duration,
    /// so its end is the global stabilisation time).
    DelayRamp {
        /// Delay at the start.
        from: Duration,
        /// Delay at the end of the ramp.
        to: Duration,
        /// Length of the ramp.
        over: Duration,
        /// Half-width of the spread.
        jitter: Duration,
    },
    /// Down (every message lost) for `down` at the start of every `period` (`flap`:
    /// `period_ms`, `down_ms`).
    Flap {
        /// Cycle length.
        period: Duration,
        /// Down time per cycle.
        down: Duration,
    },
}

/// What a step does.
#[derive(Clone, Debug, PartialEq)]
pub enum StepAction {
    /// Stop the replicas; their state is lost.
    Crash,
    /// Start crashed replicas again, empty.
    Restart,
    /// Freeze the replicas: their events are held.
    Pause,
    /// Deliver what was held, in order, and run again.
    Resume,
    /// Restart the replicas in this Byzantine mode of the protocol (faulty from now).
    Byzantine(&'static str),
    /// Restart Byzantine replicas honest (they stay out of the checks).
    Honest,
    /// Groups that cannot reach each other; replicas in no group form one more.
    /// Clients reach every replica.
    Partition {
        /// Rule id (an end removes it).
        id: usize,
        /// The groups.
        groups: Vec<SimTarget>,
    },
    /// Cut the target off from every other node, clients included.
    Isolate {
        /// Rule id.
        id: usize,
    },
    /// Messages from the target to `to` are lost.
    OneWayCut {
        /// Rule id.
        id: usize,
        /// The receivers.
        to: SimTarget,
    },
    /// End every partition, isolation, one-way cut and flapping link.
    Heal,
    /// A fault on the links between the target and `to` (both directions), and with
    /// `clients` also between the target and every client.
    Link {
        /// Rule id.
        id: usize,
        /// The other end.
        to: SimTarget,
        /// Also the target's links to clients.
        clients: bool,
        /// What happens on them.
        effect: LinkFault,
    },
    /// The rule with this id ends.
    EndRule {
        /// Rule id.
        id: usize,
    },
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledStep {
    /// The number of the fault it starts or ends (the engine remembers whom a start
    /// hit under it, for [`SimTarget::SameAs`]).
    pub fault: usize,
    /// Who it hits.
    pub target: SimTarget,
    /// What it does.
    pub action: StepAction,
}

/// A network rule in force, its endpoints resolved when it started.
#[derive(Clone, Debug, PartialEq)]
pub struct NetRule {
    /// The id of the step that made it.
    pub id: usize,
    /// When it started.
    pub since: Time,
    /// What it does.
    pub kind: NetRuleKind,
}

/// The kinds of [`NetRule`].
#[derive(Clone, Debug, PartialEq)]
pub enum NetRuleKind {
    /// Partition group per replica.
    Partition(Vec<u8>),
    /// Replicas cut off from everyone, clients included.
    Isolated(Vec<usize>),
    /// Messages from any of `from` to any of `to` are lost.
    OneWay {
        /// Senders.
        from: Vec<usize>,
        /// Receivers.
        to: Vec<usize>,
    },
    /// A link fault between `a` and `b` (both directions), and between `a` and
    /// clients if `clients`.
    Link {
        /// One end.
        a: Vec<usize>,
        /// The other end.
        b: Vec<usize>,
        /// Also `a`'s links to clients.
        clients: bool,
        /// The effect.
        effect: LinkFault,
    },
}

impl NetRule {
    /// Whether a `heal` step removes it (cuts and flaps; not delays or losses).
    pub fn healed_by_heal(&self) -> bool {
        match &self.kind {
            NetRuleKind::Link { effect, .. } => matches!(effect, LinkFault::Flap { .. }),
            _ => true,
        }
    }

    /// Whether it drops every message from `from` to `to` at `now`.
    pub fn cuts(&self, now: Time, from: Endpoint, to: Endpoint) -> bool {
        match &self.kind {
            NetRuleKind::Partition(groups) => match (from, to) {
                (Endpoint::Replica(a), Endpoint::Replica(b)) => {
                    groups.get(a).copied().unwrap_or(0) != groups.get(b).copied().unwrap_or(0)
                }
                _ => false,
            },
            NetRuleKind::Isolated(set) => [from, to]
                .iter()
                .any(|e| matches!(e, Endpoint::Replica(r) if set.contains(r))),
            NetRuleKind::OneWay { from: f, to: t } => match (from, to) {
                (Endpoint::Replica(a), Endpoint::Replica(b)) => f.contains(&a) && t.contains(&b),
                _ => false,
            },
            NetRuleKind::Link {
                effect: LinkFault::Flap { period, down },
                ..
            } if self.covers(from, to) => {
                let period = period.as_nanos().max(1);
                (now.since(self.since).as_nanos() % period) < down.as_nanos()
            }
            NetRuleKind::Link { .. } => false,
        }
    }

    /// Whether its link effect applies to a message from `from` to `to`.
    pub fn covers(&self, from: Endpoint, to: Endpoint) -> bool {
        let NetRuleKind::Link { a, b, clients, .. } = &self.kind else {
            return false;
        };
        let in_a = |e: Endpoint| matches!(e, Endpoint::Replica(r) if a.contains(&r));
        let in_b = |e: Endpoint| matches!(e, Endpoint::Replica(r) if b.contains(&r));
        let client = |e: Endpoint| matches!(e, Endpoint::Client(_));
        (in_a(from) && in_b(to))
            || (in_b(from) && in_a(to))
            || (*clients && ((in_a(from) && client(to)) || (client(from) && in_a(to))))
    }

    /// The link effect, if it is a link rule.
    pub fn effect(&self) -> Option<LinkFault> {
        match &self.kind {
            NetRuleKind::Link { effect, .. } => Some(*effect),
            _ => None,
        }
    }
}

/// Extra delay of a message under `effect` (started at `since`) sent at `now`, or
/// `None` if the effect does not delay; draws from `rng` only for delays.
pub(crate) fn extra_delay(
    effect: LinkFault,
    since: Time,
    now: Time,
    rng: &mut impl Rng,
) -> Option<Duration> {
    // Uniform in `mean ± jitter` (not below zero), from one draw.
    fn spread(mean: Duration, jitter: Duration, u: f64) -> Duration {
        let lo = mean.saturating_sub(jitter);
        lo + (mean + jitter - lo).mul_f64(u)
    }
    match effect {
        LinkFault::Delay { delay, jitter } => Some(spread(delay, jitter, rng.random())),
        LinkFault::DelayRamp {
            from,
            to,
            over,
            jitter,
        } => {
            let frac = if over.is_zero() {
                1.0
            } else {
                (now.since(since).as_secs_f64() / over.as_secs_f64()).min(1.0)
            };
            let mean = if to >= from {
                from + (to - from).mul_f64(frac)
            } else {
                from - (from - to).mul_f64(frac)
            };
            Some(spread(mean, jitter, rng.random()))
        }
        LinkFault::Reorder(p) => {
            (rng.random::<f64>() < p).then(|| Duration::from_micros(rng.random_range(0..5000)))
        }
        _ => None,
    }
}

/// A scenario in virtual time: the cluster, the load and the timed steps.
#[derive(Clone, Debug)]
pub struct SchedulePlan {
    /// The protocol.
    pub protocol: ProtocolKind,
    /// Replicas.
    pub replicas: usize,
    /// Replicas Byzantine from the start, and their mode.
    pub byzantine: BTreeMap<usize, &'static str>,
    /// The steps, in time order (equal times keep their order).
    pub steps: Vec<(Time, ScheduledStep)>,
    /// Per client, the times it submits a request.
    pub submissions: Vec<Vec<Time>>,
    /// Requests each client keeps outstanding at most.
    pub client_window: usize,
    /// When the last step happens: liveness is judged after it.
    pub heal_at: Time,
    /// Every request must complete within this after `heal_at` and the load's end.
    pub liveness_bound: Duration,
    /// Whether a liveness failure counts (false when the scenario expects the
    /// cluster to stall, or does not care).
    pub check_liveness: bool,
    /// Whether replicas have disks: a restart replays what was fsynced (durability
    /// `wal`); without, a restart comes back empty.
    pub disks: bool,
    /// With disks, whether a crash may also hit storage (torn write, corrupted record,
    /// lost fsync window), drawn per seed for every replica a crash step can hit.
    pub storage_faults: bool,
}

/// What one seed of a plan did.
#[derive(Clone, Debug)]
pub struct ScheduleReport {
    /// The seed.
    pub seed: u64,
    /// Safety violations (and liveness ones when checked).
    pub violations: Vec<Violation>,
    /// Whether every request completed (liveness held), checked or not.
    pub live: bool,
    /// Requests completed.
    pub completed: u64,
    /// Requests planned.
    pub planned: u64,
    /// View changes of correct replicas up at the end.
    pub view_changes: u64,
    /// State transfers of correct replicas up at the end.
    pub state_transfers: u64,
    /// Virtual time at the end.
    pub end: Time,
}

impl ScheduleReport {
    /// Whether the seed found nothing wrong.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// A seed that did not run to its end: `why` is its only violation.
    pub fn failed(seed: u64, why: String) -> ScheduleReport {
        ScheduleReport {
            seed,
            violations: vec![Violation::Panic(why)],
            live: false,
            completed: 0,
            planned: 0,
            view_changes: 0,
            state_transfers: 0,
            end: Time::ZERO,
        }
    }
}

/// Runs `plan` for `seed`: network latency, execution delay and every random choice
/// derive from the seed. A panic inside the protocol is reported as a violation.
pub fn run_schedule(plan: &SchedulePlan, seed: u64) -> ScheduleReport {
    struct Run<'a>(&'a SchedulePlan, u64);
    impl ProtocolVisitor for Run<'_> {
        type Output = ScheduleReport;
        fn visit<P: Protocol>(self) -> ScheduleReport {
            let (plan, seed) = (self.0, self.1);
            catch_unwind(AssertUnwindSafe(|| run_protocol::<P>(plan, seed))).unwrap_or_else(
                |panic| {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".to_string());
                    ScheduleReport::failed(seed, msg)
                },
            )
        }
    }
    plan.protocol.dispatch(Run(plan, seed))
}

/// The disks of a scheduled run, drawn from `seed` as the fault-mix runs draw theirs
/// ([`crate::sim::SimConfig::draw_disks`]): a crash step's targets are only known when
/// it fires, so a storage fault is drawn for every replica at every crash step's time
/// and applies to whichever replicas the step hits.
fn draw_disks(
    plan: &SchedulePlan,
    seed: u64,
) -> (Option<DiskModel>, BTreeMap<(Time, usize), StorageFault>) {
    if !plan.disks {
        return (None, BTreeMap::new());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xD15C_D15C);
    let model = DiskModel {
        fsync_delay: Duration::from_micros(rng.random_range(20..1000)),
    };
    let mut faults = BTreeMap::new();
    if plan.storage_faults {
        for (at, step) in &plan.steps {
            if !matches!(step.action, StepAction::Crash) {
                continue;
            }
            for r in 0..plan.replicas {
                if rng.random_bool(0.5) {
                    let fault = StorageFault::ALL[rng.random_range(0..StorageFault::ALL.len())];
                    faults.insert((*at, r), fault);
                }
            }
        }
    }
    (Some(model), faults)
}

/// The common parameters of a scheduled run: those of the fault-mix runs
/// ([`crate::sim::SimConfig::common_params`]), every eighth seed signing all.
fn common_params(replicas: usize, seed: u64) -> CommonParams {
    CommonParams {
        replicas,
        max_batch: 6,
        max_batch_bytes: 64 << 10,
        max_request_bytes: 1 << 10,
        batch_timeout: Duration::from_millis(5),
        checkpoint_interval: 8,
        client_window: 64,
        signed_all: seed % 8 == 7,
        status_interval: Duration::from_millis(100),
        transfer_timeout: Duration::from_millis(500),
        state_chunk_bytes: crate::state_chunks::DEFAULT_STATE_CHUNK_BYTES,
        max_unexecuted: 8,
    }
}

fn run_protocol<P: Protocol>(plan: &SchedulePlan, seed: u64) -> ScheduleReport {
    let n = plan.replicas;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let common = common_params(n, seed);
    let own = P::Params::for_simulator(&common);
    let keys = Keyring::test_cluster(n, seed);
    let replica_keys = keys[0].replica_keys().to_vec();
    let builder = {
        let (common, keys) = (common.clone(), keys.clone());
        move |id: ReplicaId, mode: Option<&'static str>| {
            registry::build::<P>(&common, &own, keys[id.index()].clone(), mode)
                .expect("simulator parameters and translated modes are valid")
        }
    };
    let initial = builder.clone();
    let at_start = plan.byzantine.clone();
    let factory = move |id: ReplicaId| initial(id, at_start.get(&id.index()).copied());
    let clients = plan
        .submissions
        .iter()
        .enumerate()
        .map(|(c, times)| {
            let core = ClientCore::new(
                ClientId(c as u32),
                n,
                common.client_window,
                Duration::from_millis(500),
                common.signed_all.then(|| replica_keys.clone()),
                P::client_routing(n),
            )
            .with_macs(ClientMacs::from_keyrings(&keys, ClientId(c as u32)));
            SimClient::new(core, times.clone(), plan.client_window)
        })
        .collect();
    let net = NetworkModel::new(
        Duration::from_micros(rng.random_range(200..2000)),
        Duration::from_micros(rng.random_range(200..5000)),
    );
    let faults = plan
        .steps
        .iter()
        .map(|(t, step)| (*t, FaultEvent::Step(step.clone())))
        .collect();
    let (disk, storage_faults) = draw_disks(plan, seed);
    let engine: Engine<P> = Engine::new(EngineSetup {
        factory: Box::new(factory),
        app_factory: Box::new(|| Box::new(HashChainApp::default())),
        correct: (0..n).map(|r| !plan.byzantine.contains_key(&r)).collect(),
        clients,
        net,
        faults,
        exec_delay: Duration::from_micros(rng.random_range(50..2000)),
        exec_per_request: Duration::ZERO,
        rng,
        record_trace: false,
        disk,
        storage_faults,
    })
    .with_mode_factory(Box::new(builder));
    let load_end = plan
        .submissions
        .iter()
        .flat_map(|t| t.last().copied())
        .max()
        .unwrap_or(Time::ZERO);
    let deadline = plan.heal_at.max(load_end) + plan.liveness_bound;
    let outcome = engine.run(plan.heal_at, deadline, Duration::from_secs(1));

    let live = !outcome
        .violations
        .iter()
        .any(|v| matches!(v, Violation::Liveness(_)));
    let violations = outcome
        .violations
        .into_iter()
        .filter(|v| plan.check_liveness || !matches!(v, Violation::Liveness(_)))
        .collect();
    let (mut view_changes, mut state_transfers) = (0, 0);
    for (i, counters) in outcome.common.iter().enumerate() {
        if let (Some(c), true) = (counters, outcome.correct_at_end.get(i) == Some(&true)) {
            view_changes += c.view_changes;
            state_transfers += c.state_transfers;
        }
    }
    ScheduleReport {
        seed,
        violations,
        live,
        completed: outcome.completed,
        planned: outcome.planned,
        view_changes,
        state_transfers,
        end: outcome.end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(steps: Vec<(u64, SimTarget, StepAction)>, heal_ms: u64) -> SchedulePlan {
        SchedulePlan {
            protocol: ProtocolKind::Pbft,
            replicas: 4,
            byzantine: BTreeMap::new(),
            steps: steps
                .into_iter()
                .enumerate()
                .map(|(fault, (ms, target, action))| {
                    (
                        Time::ZERO + Duration::from_millis(ms),
                        ScheduledStep {
                            fault,
                            target,
                            action,
                        },
                    )
                })
                .collect(),
            submissions: (0..3)
                .map(|c| {
                    (0..40)
                        .map(|i| Time::ZERO + Duration::from_millis(50 * i + c))
                        .collect()
                })
                .collect(),
            client_window: 4,
            heal_at: Time::ZERO + Duration::from_millis(heal_ms),
            liveness_bound: Duration::from_secs(30),
            check_liveness: true,
            disks: false,
            storage_faults: false,
        }
    }

    #[test]
    fn targets_resolve_against_the_primary() {
        let hit = BTreeMap::from([(3, vec![2, 0])]);
        assert_eq!(SimTarget::Primary.resolve(4, 2, &hit), vec![2]);
        assert_eq!(SimTarget::Backups.resolve(4, 2, &hit), vec![0, 1, 3]);
        assert_eq!(
            SimTarget::Replicas(vec![5, 1, 1]).resolve(4, 0, &hit),
            vec![1]
        );
        assert_eq!(SimTarget::SameAs(3).resolve(4, 1, &hit), vec![0, 2]);
        assert!(SimTarget::SameAs(4).resolve(4, 1, &hit).is_empty());
    }

    #[test]
    fn flaps_cut_at_the_start_of_each_period_and_rules_cover_their_links() {
        let rule = NetRule {
            id: 0,
            since: Time::ZERO,
            kind: NetRuleKind::Link {
                a: vec![0],
                b: vec![1],
                clients: false,
                effect: LinkFault::Flap {
                    period: Duration::from_millis(100),
                    down: Duration::from_millis(30),
                },
            },
        };
        let (r0, r1, r2) = (
            Endpoint::Replica(0),
            Endpoint::Replica(1),
            Endpoint::Replica(2),
        );
        let at = |ms| Time::ZERO + Duration::from_millis(ms);
        assert!(rule.cuts(at(10), r1, r0));
        assert!(!rule.cuts(at(50), r0, r1));
        assert!(rule.cuts(at(120), r0, r1));
        assert!(!rule.cuts(at(10), r0, r2));
        let one_way = NetRule {
            id: 1,
            since: Time::ZERO,
            kind: NetRuleKind::OneWay {
                from: vec![0],
                to: vec![1, 2],
            },
        };
        assert!(one_way.cuts(at(0), r0, r1) && !one_way.cuts(at(0), r1, r0));
    }

    #[test]
    fn a_crashed_primary_restarted_and_a_healed_partition_stay_safe_and_live() {
        let p = plan(
            vec![
                (300, SimTarget::Primary, StepAction::Crash),
                (
                    600,
                    SimTarget::All,
                    StepAction::Partition {
                        id: 1,
                        groups: vec![SimTarget::Replicas(vec![0, 1])],
                    },
                ),
                (900, SimTarget::All, StepAction::Heal),
                (1000, SimTarget::Replicas(vec![0]), StepAction::Restart),
                (
                    1100,
                    SimTarget::Primary,
                    StepAction::Link {
                        id: 2,
                        to: SimTarget::All,
                        clients: true,
                        effect: LinkFault::Loss(0.2),
                    },
                ),
                (1500, SimTarget::All, StepAction::EndRule { id: 2 }),
            ],
            1500,
        );
        for seed in 0..4 {
            let report = run_schedule(&p, seed);
            assert!(report.ok(), "seed {seed}: {:?}", report.violations);
            assert_eq!(report.completed, report.planned);
            assert!(
                report.view_changes > 0,
                "the primary's crash forced a view change"
            );
        }
    }

    #[test]
    fn a_paused_majority_stalls_until_resumed_and_f_plus_one_crashes_lose_liveness() {
        // Paused for good, two of four hold every event: nothing can commit.
        let mut forever = plan(
            vec![(200, SimTarget::Replicas(vec![1, 2]), StepAction::Pause)],
            200,
        );
        forever.liveness_bound = Duration::from_secs(5);
        let report = run_schedule(&forever, 3);
        assert!(!report.live, "a paused majority must stall the cluster");
        assert!(report.completed < report.planned);
        // Resumed, the held events are delivered and every request completes.
        let paused = plan(
            vec![
                (200, SimTarget::Replicas(vec![1, 2]), StepAction::Pause),
                (2200, SimTarget::Replicas(vec![1, 2]), StepAction::Resume),
            ],
            2200,
        );
        let report = run_schedule(&paused, 3);
        assert!(report.ok(), "{:?}", report.violations);
        assert_eq!(report.completed, report.planned);

        let mut crashed = plan(
            vec![(200, SimTarget::Replicas(vec![1, 2]), StepAction::Crash)],
            200,
        );
        crashed.liveness_bound = Duration::from_secs(5);
        let report = run_schedule(&crashed, 3);
        assert!(
            !report.live && !report.ok(),
            "two of four crashed cannot commit"
        );
        crashed.check_liveness = false;
        let report = run_schedule(&crashed, 3);
        assert!(!report.live && report.ok(), "{:?}", report.violations);
    }

    #[test]
    fn a_byzantine_switch_makes_the_replica_faulty_and_the_rest_stay_safe() {
        let switched = plan(
            vec![(300, SimTarget::Primary, StepAction::Byzantine("silent"))],
            300,
        );
        let honest = plan(Vec::new(), 1200);
        for seed in 0..4 {
            let report = run_schedule(&switched, seed);
            assert!(report.ok(), "seed {seed}: {:?}", report.violations);
            assert_eq!(report.completed, report.planned);
            assert!(
                report.view_changes > 0,
                "seed {seed}: a primary switched to silent must be voted out"
            );
            assert_eq!(run_schedule(&honest, seed).view_changes, 0, "seed {seed}");
        }
        let equivocating = plan(
            vec![
                (300, SimTarget::Primary, StepAction::Byzantine("equivocate")),
                (1200, SimTarget::Replicas(vec![0]), StepAction::Honest),
            ],
            1200,
        );
        for seed in 0..4 {
            let report = run_schedule(&equivocating, seed);
            assert!(report.ok(), "seed {seed}: {:?}", report.violations);
        }
    }
}
