//! The simulated network: per-message latency from a distribution, loss, duplication,
//! reordering (through jitter) and partitions, all drawn from the simulator's seeded RNG.

use std::time::Duration;

use rand::Rng;

use crate::sim::schedule::{LinkFault, NetRule, extra_delay};
use crate::types::Time;

/// Faults applied to every link while active.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Probability a message is lost.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Extra delay drawn uniformly from [0, jitter]: reorders messages.
    pub jitter: Duration,
}

/// Latency, link faults and partitions.
#[derive(Clone, Debug)]
pub struct NetworkModel {
    /// Minimum one-way latency.
    pub base: Duration,
    /// Mean of the exponential part of the latency.
    pub mean_extra: Duration,
    /// Active link faults.
    pub faults: LinkFaults,
    /// Partition group of each replica; replicas in different groups cannot talk.
    /// Clients reach every replica.
    pub partition: Option<Vec<u8>>,
    /// Rules of a scheduled plan in force: cuts, isolations, per-link faults.
    pub rules: Vec<NetRule>,
}

/// An endpoint of a simulated link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A replica, by index.
    Replica(usize),
    /// A client, by index.
    Client(usize),
}

impl NetworkModel {
    /// A healthy network with the given latency.
    pub fn new(base: Duration, mean_extra: Duration) -> NetworkModel {
        NetworkModel {
            base,
            mean_extra,
            faults: LinkFaults::default(),
            partition: None,
            rules: Vec::new(),
        }
    }

    /// Whether a partition separates `from` and `to`.
    pub fn cut(&self, from: Endpoint, to: Endpoint) -> bool {
        match (&self.partition, from, to) {
            (Some(groups), Endpoint::Replica(a), Endpoint::Replica(b)) => groups[a] != groups[b],
            _ => false,
        }
    }

    /// Arrival times of a message sent now: none if lost or cut, two if duplicated.
    pub fn arrivals(
        &self,
        rng: &mut impl Rng,
        now: Time,
        from: Endpoint,
        to: Endpoint,
    ) -> Vec<Time> {
        if self.cut(from, to) || rng.random::<f64>() < self.faults.loss {
            return Vec::new();
        }
        // Scheduled rules draw from the RNG only when one applies, so runs without
        // them replay as before.
        if self.rules.iter().any(|r| r.cuts(now, from, to)) {
            return Vec::new();
        }
        let mut duplicate = self.faults.duplicate;
        let mut delays = Vec::new();
        for rule in self.rules.iter().filter(|r| r.covers(from, to)) {
            match rule.effect() {
                Some(LinkFault::Loss(p)) if rng.random::<f64>() < p => return Vec::new(),
                Some(LinkFault::Loss(_)) => {}
                Some(LinkFault::Duplicate(p)) => duplicate = 1.0 - (1.0 - duplicate) * (1.0 - p),
                Some(effect) => delays.push((effect, rule.since)),
                None => {}
            }
        }
        let copies = if rng.random::<f64>() < duplicate {
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                let mut at = now + self.latency(rng);
                for (effect, since) in &delays {
                    if let Some(extra) = extra_delay(*effect, *since, now, rng) {
                        at = at + extra;
                    }
                }
                at
            })
            .collect()
    }

    fn latency(&self, rng: &mut impl Rng) -> Duration {
        let u: f64 = rng.random();
        let extra = self
            .mean_extra
            .mul_f64(-(1.0 - u).ln())
            .min(self.mean_extra * 20);
        let jitter = self.faults.jitter.mul_f64(rng.random::<f64>());
        self.base + extra + jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn partitions_cut_replicas_but_not_clients() {
        let mut net = NetworkModel::new(Duration::from_millis(1), Duration::from_millis(1));
        net.partition = Some(vec![0, 0, 1, 1]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(
            net.arrivals(
                &mut rng,
                Time(0),
                Endpoint::Replica(0),
                Endpoint::Replica(2)
            )
            .is_empty()
        );
        assert_eq!(
            net.arrivals(
                &mut rng,
                Time(0),
                Endpoint::Replica(0),
                Endpoint::Replica(1)
            )
            .len(),
            1
        );
        assert_eq!(
            net.arrivals(&mut rng, Time(0), Endpoint::Client(0), Endpoint::Replica(2))
                .len(),
            1
        );
    }

    #[test]
    fn loss_and_duplication_rates_are_roughly_as_configured() {
        let mut net = NetworkModel::new(Duration::from_millis(1), Duration::from_millis(1));
        net.faults = LinkFaults {
            loss: 0.25,
            duplicate: 0.5,
            jitter: Duration::from_millis(5),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut lost = 0;
        let mut dup = 0;
        for _ in 0..10_000 {
            match net
                .arrivals(
                    &mut rng,
                    Time(0),
                    Endpoint::Replica(0),
                    Endpoint::Replica(1),
                )
                .len()
            {
                0 => lost += 1,
                2 => dup += 1,
                _ => {}
            }
        }
        assert!((2_200..2_800).contains(&lost), "lost {lost}");
        assert!((3_400..4_100).contains(&dup), "dup {dup}");
    }
}
