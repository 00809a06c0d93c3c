//! Fault mixes and the seeded fault plans drawn from them: which replicas are
//! Byzantine, when replicas crash and restart, when partitions start and heal, and how
//! lossy the links are. Every fault stops by the plan's heal time, and at most f
//! replicas are ever faulty (crashed or Byzantine).
//!
//! Byzantine behaviours are named by the protocol's own modes
//! ([`ByzantineBehaviour`]): [`FaultMix::all`] builds one mix per mode of the protocol,
//! so each protocol is tested against the misbehaviours that make sense for it.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;

use crate::protocol::ByzantineBehaviour;
use crate::registry::ProtocolKind;
use crate::sim::network::LinkFaults;
use crate::types::{Time, max_faulty};

/// A family of faults a simulation run draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultMix {
    /// A healthy cluster.
    None,
    /// Up to f replicas crash, the first primary among them; some restart (with an
    /// empty state) before the faults end.
    Crash,
    /// Partitions start and heal: a replica isolated, or the cluster split in two.
    Partition,
    /// Links lose, duplicate and reorder messages.
    Lossy,
    /// No fault, but clients offer far more than execution carries (each executed
    /// request costs time in the simulator): a healthy overloaded cluster must never
    /// change view, time out a round or transfer state (`Violation::Overload`).
    Overload,
    /// Every replica restarts from its disk between two runs of a client key
    /// ([`FaultEvent::ClusterRestart`] then [`FaultEvent::ClientRestart`], twice), with
    /// the default exactly-once window (65,536): the replicas keep their exactly-once
    /// tables but not their reply caches, so no stale-number notice witnesses the
    /// spent numbers, and the new run must number past them from its marks query.
    /// Runs with disks whatever the command line says ([`FaultMix::needs_disks`]).
    ClientRerun,
    /// f replicas (replica 0, the first primary or leader, among them) misbehave in
    /// the protocol's Byzantine mode of this name.
    Byzantine(&'static str),
    /// All of the above at once: lossy links, partitions, and f faulty replicas that
    /// crash or misbehave in random modes of the protocol.
    Mixed,
}

impl FaultMix {
    /// Every mix for `protocol`, in the order the test suite and
    /// `tandem sim --faults all` run them: one per Byzantine mode of the protocol.
    pub fn all(protocol: ProtocolKind) -> Vec<FaultMix> {
        let mut all = vec![
            FaultMix::None,
            FaultMix::Crash,
            FaultMix::Partition,
            FaultMix::Lossy,
            FaultMix::Overload,
            FaultMix::ClientRerun,
        ];
        all.extend(
            protocol
                .byzantine_modes()
                .into_iter()
                .map(FaultMix::Byzantine),
        );
        all.push(FaultMix::Mixed);
        all
    }

    /// The mix of Byzantine replicas in `mode`.
    pub fn byzantine(mode: impl ByzantineBehaviour) -> FaultMix {
        FaultMix::Byzantine(mode.name())
    }

    /// The mix's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultMix::None => "none",
            FaultMix::Crash => "crash",
            FaultMix::Partition => "partition",
            FaultMix::Lossy => "lossy",
            FaultMix::Overload => "overload",
            FaultMix::ClientRerun => "client-rerun",
            FaultMix::Byzantine(mode) => mode,
            FaultMix::Mixed => "mixed",
        }
    }

    /// Whether the mix only makes sense with disks (a restart without one loses the
    /// exactly-once table the mix is about): its runs get them.
    pub fn needs_disks(self) -> bool {
        self == FaultMix::ClientRerun
    }

    /// Parses a name from [`FaultMix::name`] among `protocol`'s mixes.
    pub fn from_name(protocol: ProtocolKind, name: &str) -> Option<FaultMix> {
        FaultMix::all(protocol)
            .into_iter()
            .find(|m| m.name() == name)
    }

    /// Every name of `protocol`'s mixes, for help texts and errors.
    pub fn names(protocol: ProtocolKind) -> Vec<&'static str> {
        FaultMix::all(protocol)
            .into_iter()
            .map(FaultMix::name)
            .collect()
    }
}

/// A fault that happens at a point in time.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultEvent {
    /// The replica stops; its state is lost.
    Crash(usize),
    /// The replica starts again from an empty state.
    Restart(usize),
    /// Replicas in different groups can no longer talk.
    Partition(Vec<u8>),
    /// The partition ends.
    Heal,
    /// Links start losing, duplicating and reordering.
    Links(LinkFaults),
    /// Links are healthy again.
    CleanLinks,
    /// A step of a scheduled plan (a scenario's fault in virtual time).
    Step(crate::sim::schedule::ScheduledStep),
    /// Client `c`'s process starts again: it forgets its outstanding requests and
    /// numbers from 1 again under the same key (a new `tandem client` run), while the
    /// replicas remember the numbers its previous run used. The requests it forgot are
    /// submitted again as new ones, so it must still complete all it planned.
    ClientRestart(usize),
    /// Every replica crashes at once and restarts from its disk (a cluster restarted
    /// by its operator; without disks they restart empty). Not a fault in the BFT
    /// sense — nothing durable is lost, no storage fault is drawn — so it does not
    /// count against f ([`FaultPlan::faulty`]); what it loses is soft state, such as
    /// the reply caches.
    ClusterRestart,
}

/// The faults of one run.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// Replicas that misbehave for the whole run, and the name of their mode.
    pub byzantine: BTreeMap<usize, &'static str>,
    /// Timed faults, in time order.
    pub events: Vec<(Time, FaultEvent)>,
    /// When the last fault ends: the network is healthy and no replica crashes or
    /// restarts afterwards.
    pub heal_at: Time,
}

impl FaultPlan {
    /// Replicas that are faulty at some point (crashed or Byzantine).
    pub fn faulty(&self) -> Vec<usize> {
        let mut f: Vec<usize> = self.byzantine.keys().copied().collect();
        for (_, e) in &self.events {
            if let FaultEvent::Crash(r) = e {
                f.push(*r);
            }
        }
        f.sort_unstable();
        f.dedup();
        f
    }
}

/// Draws the plan for `mix` in a cluster of `n`, with faults inside `[0, period]`;
/// [`FaultMix::Mixed`] draws Byzantine modes from `modes` (the protocol's, in their
/// fixed order).
pub fn plan(
    mix: FaultMix,
    modes: &[&'static str],
    n: usize,
    period: Duration,
    rng: &mut impl Rng,
) -> FaultPlan {
    let mut p = FaultPlan::default();
    let end = Time::ZERO + period;
    match mix {
        FaultMix::None | FaultMix::Overload => return p,
        FaultMix::Crash => {
            let count = rng.random_range(1..=max_faulty(n));
            for r in pick_faulty(n, count, rng) {
                add_crash(&mut p, r, period, rng);
            }
        }
        FaultMix::Partition => add_partitions(&mut p, n, period, rng),
        FaultMix::ClientRerun => {
            for (client, from, to) in [(0, 0.25, 0.4), (1, 0.6, 0.8)] {
                let at = Time::ZERO + period.mul_f64(rng.random_range(from..to));
                p.events.push((at, FaultEvent::ClusterRestart));
                let rerun = at + Duration::from_millis(rng.random_range(20..200));
                p.events.push((rerun, FaultEvent::ClientRestart(client)));
            }
        }
        FaultMix::Lossy => {
            let faults = LinkFaults {
                loss: rng.random_range(0.05..0.3),
                duplicate: rng.random_range(0.0..0.2),
                jitter: Duration::from_millis(rng.random_range(1..40)),
            };
            p.events.push((Time::ZERO, FaultEvent::Links(faults)));
            p.events.push((end, FaultEvent::CleanLinks));
        }
        FaultMix::Byzantine(mode) => {
            for r in pick_faulty(n, max_faulty(n), rng) {
                p.byzantine.insert(r, mode);
            }
        }
        FaultMix::Mixed => {
            let faults = LinkFaults {
                loss: rng.random_range(0.0..0.15),
                duplicate: rng.random_range(0.0..0.1),
                jitter: Duration::from_millis(rng.random_range(1..20)),
            };
            p.events.push((Time::ZERO, FaultEvent::Links(faults)));
            p.events.push((end, FaultEvent::CleanLinks));
            add_partitions(&mut p, n, period, rng);
            for r in pick_faulty(n, max_faulty(n), rng) {
                if modes.is_empty() || rng.random_bool(0.3) {
                    add_crash(&mut p, r, period, rng);
                } else {
                    let mode = modes[rng.random_range(0..modes.len())];
                    p.byzantine.insert(r, mode);
                }
            }
        }
    }
    p.events.sort_by_key(|(t, _)| *t);
    p.heal_at = end;
    debug_assert!(p.faulty().len() <= max_faulty(n));
    p
}

/// `count` distinct replicas, replica 0 (the first primary) always among them.
fn pick_faulty(n: usize, count: usize, rng: &mut impl Rng) -> Vec<usize> {
    let mut others: Vec<usize> = (1..n).collect();
    others.shuffle(rng);
    let mut picked = vec![0];
    picked.extend(others.into_iter().take(count.saturating_sub(1)));
    picked
}

fn add_crash(p: &mut FaultPlan, r: usize, period: Duration, rng: &mut impl Rng) {
    let at = Time::ZERO + period.mul_f64(rng.random_range(0.05..0.6));
    p.events.push((at, FaultEvent::Crash(r)));
    if rng.random_bool(0.6) {
        let back = at + period.mul_f64(rng.random_range(0.1..0.35));
        p.events.push((back, FaultEvent::Restart(r)));
    }
}

/// One to three partition episodes, one after the other, all healed by `period`.
fn add_partitions(p: &mut FaultPlan, n: usize, period: Duration, rng: &mut impl Rng) {
    let end = Time::ZERO + period;
    let mut t = Time::ZERO + Duration::from_millis(rng.random_range(50..500));
    for _ in 0..rng.random_range(1..=3) {
        if t >= end {
            break;
        }
        let groups = if rng.random_bool(0.5) {
            let isolated = if rng.random_bool(0.5) {
                0
            } else {
                rng.random_range(0..n)
            };
            (0..n).map(|r| u8::from(r == isolated)).collect()
        } else {
            let mut ids: Vec<usize> = (0..n).collect();
            ids.shuffle(rng);
            let cut = rng.random_range(1..n);
            let mut groups = vec![0u8; n];
            for r in &ids[..cut] {
                groups[*r] = 1;
            }
            groups
        };
        p.events.push((t, FaultEvent::Partition(groups)));
        let heal = (t + Duration::from_millis(rng.random_range(200..1200))).min(end);
        p.events.push((heal, FaultEvent::Heal));
        t = heal + Duration::from_millis(rng.random_range(50..500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn plans_respect_the_fault_budget_and_heal_in_time() {
        let modes = ProtocolKind::Pbft.byzantine_modes();
        for mix in FaultMix::all(ProtocolKind::Pbft) {
            for n in [4, 7, 10] {
                for seed in 0..50 {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    let p = plan(mix, &modes, n, Duration::from_secs(3), &mut rng);
                    assert!(p.faulty().len() <= max_faulty(n), "{mix:?} n={n}");
                    assert!(p.events.iter().all(|(t, _)| *t <= p.heal_at));
                    assert!(p.events.windows(2).all(|w| w[0].0 <= w[1].0));
                }
            }
        }
    }

    #[test]
    fn names_roundtrip() {
        for kind in ProtocolKind::ALL {
            for mix in FaultMix::all(*kind) {
                assert_eq!(FaultMix::from_name(*kind, mix.name()), Some(mix));
            }
            assert_eq!(FaultMix::from_name(*kind, "nope"), None);
        }
    }

    #[test]
    fn byzantine_mixes_are_the_protocols_modes() {
        let mixes = FaultMix::all(ProtocolKind::Pbft);
        let modes = ProtocolKind::Pbft.byzantine_modes();
        assert_eq!(mixes.len(), 7 + modes.len());
        assert_eq!(
            FaultMix::byzantine(crate::pbft::ByzantineMode::SlowPrimary),
            FaultMix::Byzantine("slow-primary")
        );
        assert!(mixes.contains(&FaultMix::Byzantine("view-change-storm")));
    }

    #[test]
    fn mixed_without_modes_only_crashes() {
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let p = plan(FaultMix::Mixed, &[], 4, Duration::from_secs(3), &mut rng);
            assert!(p.byzantine.is_empty());
        }
    }
}
