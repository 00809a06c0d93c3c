//! A scenario in virtual time (`tandem sim --scenario FILE`): its cluster, load shape
//! and fault schedule translated into the simulator's [`SchedulePlan`] — the same
//! words, no second vocabulary — run over many seeds, with safety checked on every
//! seed and liveness after the last fault step when the scenario expects it kept.
//!
//! What carries over: the replica count and protocol, every `[[fault]]` at its time
//! (starts and ends, in [`Scenario::steps`] order; `primary`/`backups` resolved when
//! the step fires, from the simulated replicas' views; an end undoes its own fault on
//! the replicas its start hit), and the load's shape in time (clients, duration,
//! closed or open loop, rate changes). What is scaled: the simulator runs a few
//! hundred requests per client spread over the load's duration with the density of
//! its rate (not thousands per second), with the simulator's protocol parameters
//! (small batches and checkpoint intervals, short timers) rather than the file's, on
//! the hash-chain application rather than the file's VM — the ledger, or the EVM of
//! `[cluster] vm = "evm"`, whose executor, gas bounds and `[evm_workload]` are not
//! simulated either; the run's header says so ([`application_note`]). The simulator
//! judges ordering, faults and exactly-once, which are the same whichever VM executes.
//! The scenario's `durability`
//! carries over: with `wal` the simulated replicas have disks (a restart replays what
//! was fsynced, and a crash may also hit storage unless storage faults are turned
//! off); with `none` they restart empty.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tandem_consensus::sim::schedule::{
    SchedulePlan, ScheduleReport, ScheduledStep, SimTarget, StepAction, run_schedule,
};
use tandem_consensus::types::Time;

use crate::scenario::{Action, Durability, Liveness, LoadShape, Scenario, StepKind, Target};

/// Most simulated clients (the scenario's count, capped).
const MAX_CLIENTS: usize = 4;
/// Simulated requests per client per second of load, and the bounds on the total.
const REQUESTS_PER_SECOND: f64 = 8.0;
const MIN_REQUESTS: usize = 20;
const MAX_REQUESTS: usize = 400;
/// Most requests a simulated client keeps outstanding.
const MAX_WINDOW: usize = 16;
/// Every request must complete within this after the last step and the load's end.
const LIVENESS_BOUND: Duration = Duration::from_secs(40);

fn time(d: Duration) -> Time {
    Time::ZERO + d
}

/// A scenario target as a simulator target; `random-minority` is drawn from `rng`
/// (the seed), at most f replicas.
fn target(t: &Target, n: usize, rng: &mut ChaCha8Rng) -> SimTarget {
    match t {
        Target::Replicas(ids) => SimTarget::Replicas(ids.iter().map(|r| *r as usize).collect()),
        Target::Primary => SimTarget::Primary,
        Target::Backups => SimTarget::Backups,
        Target::All => SimTarget::All,
        Target::RandomMinority => {
            let view = crate::scenario::KnownPrimary {
                replicas: n,
                primary: 0,
            };
            SimTarget::Replicas(
                t.resolve(&view, rng)
                    .into_iter()
                    .map(|r| r as usize)
                    .collect(),
            )
        }
    }
}

/// The simulator plan of `scenario` for `seed`; `storage_faults` lets crashes hit the
/// disks too when the scenario's durability is `wal`.
///
/// # Errors
/// A Byzantine mode the scenario's protocol does not have.
/// What the simulated replicas execute, for the run's header: the simulator's
/// hash-chain application, not the scenario's VM (named with the sections it leaves
/// out), so an EVM scenario is not taken for a simulated EVM.
pub fn application_note(scenario: &Scenario) -> String {
    let (vm, workload) = match scenario.evm {
        Some(_) => ("evm", "[evm_workload]"),
        None => ("ledger", "[workload]"),
    };
    format!(
        "application: the simulator's hash chain, not the file's VM ([cluster] vm = \"{vm}\"; \
         its executor and {workload} are not simulated — ordering, faults and exactly-once are)"
    )
}

/// The simulator's plan of `scenario` for `seed`: its steps, load and replicas.
pub fn plan(scenario: &Scenario, seed: u64, storage_faults: bool) -> Result<SchedulePlan> {
    let protocol = scenario.cluster.protocol.name;
    let n = scenario.cluster.replicas;
    let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed ^ seed.rotate_left(17));
    let mut steps = Vec::new();
    for step in scenario.steps() {
        let fault = &scenario.faults[step.fault];
        let id = step.fault;
        let at = time(step.at);
        let start_target = || SimTarget::SameAs(id);
        let (target, action) = match (step.kind, &fault.action) {
            (StepKind::Start, action) => {
                let t = target(&fault.target, n, &mut rng);
                let a = match action {
                    Action::Crash | Action::Stop => StepAction::Crash,
                    Action::Restart => StepAction::Restart,
                    Action::Pause => StepAction::Pause,
                    Action::Resume => StepAction::Resume,
                    Action::Byzantine { mode } => match protocol.byzantine_mode(mode) {
                        Ok(mode) => StepAction::Byzantine(mode),
                        Err(e) => bail!("fault {}: {e}", fault.number),
                    },
                    Action::Partition { groups } => StepAction::Partition {
                        id,
                        groups: groups.iter().map(|g| target(g, n, &mut rng)).collect(),
                    },
                    Action::Isolate => StepAction::Isolate { id },
                    Action::OneWayCut { to } => StepAction::OneWayCut {
                        id,
                        to: target(to, n, &mut rng),
                    },
                    Action::Heal => StepAction::Heal,
                    Action::Link {
                        to,
                        clients,
                        fault: link,
                    } => StepAction::Link {
                        id,
                        to: target(to, n, &mut rng),
                        clients: *clients,
                        effect: *link,
                    },
                };
                (t, a)
            }
            (StepKind::End, action) => {
                let a = match action {
                    Action::Crash | Action::Stop => StepAction::Restart,
                    Action::Pause => StepAction::Resume,
                    Action::Byzantine { .. } => StepAction::Honest,
                    Action::Partition { .. }
                    | Action::Isolate
                    | Action::OneWayCut { .. }
                    | Action::Link { .. } => StepAction::EndRule { id },
                    Action::Restart | Action::Resume | Action::Heal => continue,
                };
                (start_target(), a)
            }
        };
        steps.push((
            at,
            ScheduledStep {
                fault: id,
                target,
                action,
            },
        ));
    }
    let heal_at = steps.iter().map(|(t, _)| *t).max().unwrap_or(Time::ZERO);
    let (submissions, client_window) = load(scenario, &mut rng);
    Ok(SchedulePlan {
        protocol,
        replicas: n,
        byzantine: BTreeMap::new(),
        steps,
        submissions,
        client_window,
        heal_at,
        liveness_bound: LIVENESS_BOUND,
        check_liveness: scenario.expect.liveness == Liveness::Kept,
        disks: scenario.cluster.durability == Durability::Wal,
        storage_faults,
    })
}

/// The simulated load: per client the submission times over the load's duration,
/// denser where the offered rate is higher (open loop), uniform in closed loop.
fn load(scenario: &Scenario, rng: &mut ChaCha8Rng) -> (Vec<Vec<Time>>, usize) {
    let l = &scenario.load;
    let clients = l.clients.clamp(1, MAX_CLIENTS);
    let secs = l.duration.as_secs_f64();
    let per_client = ((secs * REQUESTS_PER_SECOND) as usize).clamp(MIN_REQUESTS, MAX_REQUESTS);
    let (window, peak) = match &l.shape {
        LoadShape::Closed { window } => ((*window).clamp(1, MAX_WINDOW), None),
        LoadShape::Open { rate, changes } => (
            MAX_WINDOW,
            Some(changes.iter().map(|c| c.rate).fold(*rate, f64::max)),
        ),
    };
    let submissions = (0..clients)
        .map(|_| {
            let mut times = Vec::with_capacity(per_client);
            // Rejection sampling against the rate's shape, bounded in tries.
            for _ in 0..per_client * 64 {
                if times.len() == per_client {
                    break;
                }
                let t = Duration::from_secs_f64(secs * rng.random::<f64>());
                let keep = match (peak, l.shape.rate_at(t)) {
                    (Some(peak), Some(rate)) if peak > 0.0 => rng.random::<f64>() < rate / peak,
                    _ => true,
                };
                if keep {
                    times.push(time(t));
                }
            }
            times.sort();
            times
        })
        .collect();
    (submissions, window)
}

/// Runs `scenario` for every seed in `seeds` on `threads` threads (storage faults as
/// [`plan`] takes them); `done` is called after each seed (for progress). Reports
/// come back in seed order.
///
/// # Errors
/// The scenario cannot be translated (checked on the first seed, before any runs).
pub fn run_seeds(
    scenario: &Scenario,
    seeds: std::ops::Range<u64>,
    threads: usize,
    storage_faults: bool,
    done: &(dyn Fn(&ScheduleReport) + Sync),
) -> Result<Vec<ScheduleReport>> {
    plan(scenario, seeds.start, storage_faults)?;
    let next = AtomicU64::new(seeds.start);
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let report = match plan(scenario, seed, storage_faults) {
                        Ok(p) => run_schedule(&p, seed),
                        Err(e) => ScheduleReport::failed(seed, format!("{e:#}")),
                    };
                    done(&report);
                    reports
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by_key(|r| r.seed);
    Ok(reports)
}

/// The seeds' results, summed.
#[derive(Clone, Debug, Default)]
pub struct SimTotals {
    /// Seeds run.
    pub runs: u64,
    /// Requests completed / planned.
    pub completed: u64,
    /// Requests planned.
    pub planned: u64,
    /// View changes of correct replicas.
    pub view_changes: u64,
    /// State transfers of correct replicas.
    pub state_transfers: u64,
    /// Seeds where some request never completed.
    pub stalled: u64,
    /// Seeds with a violation (safety, or liveness when expected kept).
    pub failed: u64,
}

impl SimTotals {
    /// Sums `reports`.
    pub fn of(reports: &[ScheduleReport]) -> SimTotals {
        let mut t = SimTotals::default();
        for r in reports {
            t.runs += 1;
            t.completed += r.completed;
            t.planned += r.planned;
            t.view_changes += r.view_changes;
            t.state_transfers += r.state_transfers;
            t.stalled += u64::from(!r.live);
            t.failed += u64::from(!r.ok());
        }
        t
    }

    /// The result table: one line of totals under a header.
    pub fn render(&self, liveness: Liveness) -> String {
        let mut out = String::from(
            "runs  requests committed  view changes  state transfers  stalled  violations\n",
        );
        let _ = writeln!(
            out,
            "{:>4}  {:>18}  {:>12}  {:>15}  {:>7}  {:>10}",
            self.runs,
            format!("{}/{}", self.completed, self.planned),
            self.view_changes,
            self.state_transfers,
            self.stalled,
            self.failed
        );
        let _ = write!(
            out,
            "liveness expected {}: stalled seeds {}",
            liveness.name(),
            if liveness == Liveness::Kept {
                "are violations"
            } else {
                "are not violations"
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const SCENARIO: &str = r#"
name = "small"
seed = 7

[cluster]
replicas = 4

[load]
clients = 2
window = 4
duration = 4

[[fault]]
at = 1
duration = 1
action = "crash"
target = "primary"

[[fault]]
at = 2.5
until = 3
action = "partition"
groups = [["r0", "r1"]]

[[fault]]
at = 2
duration = 1
action = "loss"
target = "random-minority"
probability = 0.1
clients = true

[expect]
liveness = "kept"
"#;

    #[test]
    fn a_scenario_translates_step_by_step_in_the_same_words() {
        let s = Scenario::parse(Path::new("small.toml"), SCENARIO).unwrap();
        let p = plan(&s, 0, true).unwrap();
        let got: Vec<(u64, &StepAction)> = p
            .steps
            .iter()
            .map(|(t, s)| (t.since(Time::ZERO).as_millis() as u64, &s.action))
            .collect();
        assert!(matches!(got[0], (1000, StepAction::Crash)));
        assert!(matches!(got[1], (2000, StepAction::Restart)));
        assert!(matches!(
            got[2],
            (
                2000,
                StepAction::Link {
                    id: 2,
                    clients: true,
                    ..
                }
            )
        ));
        assert!(matches!(
            got[3],
            (2500, StepAction::Partition { id: 1, .. })
        ));
        assert!(matches!(got[4], (3000, StepAction::EndRule { id: 1 })));
        assert!(matches!(got[5], (3000, StepAction::EndRule { id: 2 })));
        assert_eq!(p.steps[0].1.target, SimTarget::Primary);
        assert_eq!(
            p.steps[1].1.target,
            SimTarget::SameAs(0),
            "the restart hits whom the crash hit"
        );
        assert!(matches!(&p.steps[2].1.target, SimTarget::Replicas(r) if r.len() == 1));
        assert_eq!(p.heal_at, time(Duration::from_secs(3)));
        assert_eq!(p.submissions.len(), 2);
        // 4 s of load × 8 requests per second per client.
        assert!(p.submissions.iter().all(|t| t.len() == 32));
        assert!(p.check_liveness);
    }

    /// One vocabulary: a scenario's link faults reach the simulator's plan as the very
    /// values the parser made (a ramp's `over` its duration), and the network layer's
    /// rules with the same parameters.
    #[test]
    fn a_link_fault_reaches_the_simulator_and_the_network_layer_with_the_same_parameters() {
        use crate::runner::link_rules::{ActiveNetworkFault, rules_for};
        use tandem_consensus::sim::schedule::LinkFault;
        use tandem_network::{Delay, Flap, NodeId};

        let text = r#"
name = "links"
[cluster]
replicas = 4
[load]
clients = 1
duration = 10

[[fault]]
at = 1
duration = 3
action = "delay-ramp"
target = "r0"
to = "r1"
from_ms = 10
to_ms = 200
jitter_ms = 5

[[fault]]
at = 2
until = 6
action = "delay"
target = "r0"
to = "r1"
delay_ms = 50
jitter_ms = 10

[[fault]]
at = 3
duration = 1
action = "flap"
target = "r0"
to = "r1"
period_ms = 100
down_ms = 30

[[fault]]
at = 4
duration = 1
action = "reorder"
target = "r0"
to = "r1"
probability = 0.25
"#;
        let s = Scenario::parse(Path::new("links.toml"), text).unwrap();
        let ms = Duration::from_millis;
        let parsed: Vec<LinkFault> = s
            .faults
            .iter()
            .map(|f| match f.action {
                Action::Link { fault, .. } => fault,
                ref other => panic!("not a link action: {other:?}"),
            })
            .collect();
        assert_eq!(
            parsed[0],
            LinkFault::DelayRamp {
                from: ms(10),
                to: ms(200),
                over: Duration::from_secs(3),
                jitter: ms(5),
            },
            "a ramp's length is its fault's duration"
        );

        // The simulator: each Link step carries the parsed value itself.
        let p = plan(&s, 0, false).unwrap();
        let sim: Vec<(usize, LinkFault)> = p
            .steps
            .iter()
            .filter_map(|(_, step)| match step.action {
                StepAction::Link { effect, .. } => Some((step.fault, effect)),
                _ => None,
            })
            .collect();
        assert_eq!(sim.len(), parsed.len());
        for (fault, effect) in sim {
            assert_eq!(effect, parsed[fault], "fault {fault} in the simulator");
        }

        // The network layer: the runner's rules for the same faults, all active.
        let active: Vec<ActiveNetworkFault> = parsed
            .iter()
            .map(|&fault| ActiveNetworkFault::Link {
                a: vec![0],
                b: vec![1],
                clients: false,
                fault,
            })
            .collect();
        let rules = rules_for(&active[..1], 4, 1);
        let r01 = rules
            .links
            .iter()
            .find(|l| l.from == NodeId::Replica(0) && l.to == NodeId::Replica(1))
            .unwrap()
            .faults;
        assert_eq!(
            r01.delay,
            Delay::Ramp {
                from: ms(10),
                to: ms(200),
                over: Duration::from_secs(3),
                jitter: ms(5),
            }
        );
        let rules = rules_for(&active[1..], 4, 1);
        let r10 = rules
            .links
            .iter()
            .find(|l| l.from == NodeId::Replica(1) && l.to == NodeId::Replica(0))
            .unwrap()
            .faults;
        assert_eq!(
            r10.delay,
            Delay::Uniform {
                min: ms(40),
                max: ms(60)
            }
        );
        assert_eq!(
            r10.flap,
            Some(Flap {
                period: ms(100),
                down: ms(30)
            })
        );
        assert_eq!(r10.reorder, 0.25);
    }

    /// `[cluster] vm = "evm"`: the checked-in EVM scenario runs its cluster, load
    /// and crash on the hash-chain application (the simulator judges ordering and
    /// exactly-once, not the VM), and the header says the EVM is not simulated. It
    /// used to run silently, as if simulated.
    #[test]
    fn the_evm_scenario_runs_on_the_hash_chain_and_says_so() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join("evm-uniswap-primary-crash.toml");
        let s = Scenario::load(&path).unwrap();
        assert!(s.evm.is_some());
        let note = application_note(&s);
        assert!(note.contains("vm = \"evm\""), "{note}");
        assert!(note.contains("[evm_workload] are not simulated"), "{note}");
        let ledger = Scenario::parse(Path::new("small.toml"), SCENARIO).unwrap();
        assert!(application_note(&ledger).contains("vm = \"ledger\""));
        let reports = run_seeds(&s, 0..2, 2, true, &|_| {}).unwrap();
        for r in &reports {
            assert!(r.ok(), "seed {}: {:?}", r.seed, r.violations);
        }
        let totals = SimTotals::of(&reports);
        assert_eq!(totals.completed, totals.planned);
    }

    #[test]
    fn the_small_scenario_is_safe_and_live_over_a_few_seeds() {
        let s = Scenario::parse(Path::new("small.toml"), SCENARIO).unwrap();
        let reports = run_seeds(&s, 0..3, 2, true, &|_| {}).unwrap();
        assert_eq!(
            reports.iter().map(|r| r.seed).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        for r in &reports {
            assert!(r.ok(), "seed {}: {:?}", r.seed, r.violations);
        }
        let totals = SimTotals::of(&reports);
        assert_eq!(totals.completed, totals.planned);
        assert!(
            totals.view_changes > 0,
            "crashing the primary changes the view"
        );
        assert!(totals.render(Liveness::Kept).contains("   3 "));
    }

    #[test]
    fn crashing_f_plus_one_stalls_without_a_violation_when_liveness_is_lost() {
        let text = SCENARIO
            .replace("target = \"primary\"", "target = [\"r1\", \"r2\"]")
            .replace("duration = 1\naction = \"crash\"", "action = \"crash\"")
            .replace("liveness = \"kept\"", "liveness = \"lost\"");
        let s = Scenario::parse(Path::new("lost.toml"), &text).unwrap();
        let mut p = plan(&s, 1, true).unwrap();
        assert!(!p.check_liveness);
        p.liveness_bound = Duration::from_secs(3);
        let r = run_schedule(&p, 1);
        assert!(!r.live && r.ok(), "{:?}", r.violations);
    }

    /// Every replica crashes at once and restarts: a scenario with `durability =
    /// "wal"` resumes from its disks with every acknowledged result, the same scenario
    /// without disks forgets what it acknowledged (before, `tandem sim --scenario`
    /// ignored the scenario's durability and every such run failed).
    #[test]
    fn a_wal_scenario_survives_a_crash_of_every_replica() {
        let text = SCENARIO
            .replace("target = \"primary\"", "target = \"all\"")
            .replace(
                "duration = 1\naction = \"crash\"",
                "duration = 0.2\naction = \"crash\"",
            );
        let with = |durability: &str| {
            let t = text.replace(
                "[cluster]\n",
                &format!("[cluster]\ndurability = \"{durability}\"\n"),
            );
            Scenario::parse(Path::new("all.toml"), &t).unwrap()
        };
        let wal = with("wal");
        assert!(plan(&wal, 0, false).unwrap().disks);
        for r in run_seeds(&wal, 0..3, 2, false, &|_| {}).unwrap() {
            assert!(r.ok(), "seed {} with disks: {:?}", r.seed, r.violations);
        }
        let none = with("none");
        assert!(!plan(&none, 0, false).unwrap().disks);
        let amnesiac = run_seeds(&none, 0..3, 2, false, &|_| {}).unwrap();
        assert!(
            amnesiac.iter().any(|r| !r.ok()),
            "restarting every replica empty must lose acknowledged results"
        );
    }
}
