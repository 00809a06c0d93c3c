//! Fault mixes and the seeded fault plans drawn from them: which replicas are
//! Byzantine, when replicas crash and restart, when partitions start and heal, and how
//! lossy the links are. Every fault stops by the plan's heal time, and at most f
//! replicas are ever faulty (crashed or Byzantine).

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;

use crate::pbft::ByzantineMode;
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
    /// f replicas (the first primary among them) misbehave in one mode.
    Byzantine(ByzantineMode),
    /// All of the above at once: lossy links, partitions, and f faulty replicas that
    /// crash or misbehave in random modes.
    Mixed,
}

impl FaultMix {
    /// Every mix, in the order the test suite and `tandem sim --faults all` run them.
    pub fn all() -> Vec<FaultMix> {
        let mut all = vec![
            FaultMix::None,
            FaultMix::Crash,
            FaultMix::Partition,
            FaultMix::Lossy,
        ];
        all.extend(ByzantineMode::ALL.into_iter().map(FaultMix::Byzantine));
        all.push(FaultMix::Mixed);
        all
    }

    /// The mix's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultMix::None => "none",
            FaultMix::Crash => "crash",
            FaultMix::Partition => "partition",
            FaultMix::Lossy => "lossy",
            FaultMix::Byzantine(mode) => mode.name(),
            FaultMix::Mixed => "mixed",
        }
    }

    /// Parses a name from [`FaultMix::name`].
    pub fn from_name(name: &str) -> Option<FaultMix> {
        FaultMix::all().into_iter().find(|m| m.name() == name)
    }

    /// Every name, for help texts and errors.
    pub fn names() -> Vec<&'static str> {
        FaultMix::all().into_iter().map(FaultMix::name).collect()
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
}

/// The faults of one run.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// Replicas that misbehave for the whole run.
    pub byzantine: BTreeMap<usize, ByzantineMode>,
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

/// Draws the plan for `mix` in a cluster of `n`, with faults inside `[0, period]`.
pub fn plan(mix: FaultMix, n: usize, period: Duration, rng: &mut impl Rng) -> FaultPlan {
    let mut p = FaultPlan::default();
    let end = Time::ZERO + period;
    match mix {
        FaultMix::None => return p,
        FaultMix::Crash => {
            let count = rng.random_range(1..=max_faulty(n));
            for r in pick_faulty(n, count, rng) {
                add_crash(&mut p, r, period, rng);
            }
        }
        FaultMix::Partition => add_partitions(&mut p, n, period, rng),
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
                if rng.random_bool(0.3) {
                    add_crash(&mut p, r, period, rng);
                } else {
                    let mode = ByzantineMode::ALL[rng.random_range(0..ByzantineMode::ALL.len())];
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
        for mix in FaultMix::all() {
            for n in [4, 7, 10] {
                for seed in 0..50 {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    let p = plan(mix, n, Duration::from_secs(3), &mut rng);
                    assert!(p.faulty().len() <= max_faulty(n), "{mix:?} n={n}");
                    assert!(p.events.iter().all(|(t, _)| *t <= p.heal_at));
                    assert!(p.events.windows(2).all(|w| w[0].0 <= w[1].0));
                }
            }
        }
    }

    #[test]
    fn names_roundtrip() {
        for mix in FaultMix::all() {
            assert_eq!(FaultMix::from_name(mix.name()), Some(mix));
        }
        assert_eq!(FaultMix::from_name("nope"), None);
    }
}
