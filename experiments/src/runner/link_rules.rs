//! The network faults active at one moment, translated into the fault layer's
//! [`FaultRules`]: the whole rule set is recomputed from the active faults whenever one
//! starts or ends, and installed everywhere with `FaultHandle::replace` (replicas
//! through the control channel, the runner's load clients directly).
//!
//! Everything is written as explicit directed links between replicas and load clients,
//! never as the layer's catch-all `default` or its `isolated` list, so the launcher's
//! own link (control frames and their answers) is never faulted. Partitions and
//! isolation become one-way cuts in both directions, which compose: two partitions at
//! once cut the union of their links. Link faults on the same link merge field by field
//! (a `delay` and a `loss` on one link give a delayed, lossy link).
//!
//! [`apply_link_fault`] is the one place a scenario's [`LinkFault`] (the simulator's
//! enum, the one definition of the link-fault words) becomes the network layer's
//! [`LinkFaults`].

use std::collections::{BTreeMap, BTreeSet};

use tandem_network::{Delay, FaultRules, Flap, LinkFaults, LinkRule, NodeId};

use crate::scenario::LinkFault;

/// A network fault as it fired: its targets resolved to replica indices.
#[derive(Clone, Debug, PartialEq)]
pub enum ActiveNetworkFault {
    /// Replicas in different groups cannot reach each other (replicas in no group
    /// form one more group); clients reach everyone.
    Partition {
        /// The groups, resolved.
        groups: Vec<Vec<u32>>,
    },
    /// These replicas reach no other node, clients included.
    Isolate {
        /// The isolated replicas.
        replicas: Vec<u32>,
    },
    /// Frames from `from` to `to` are lost.
    OneWayCut {
        /// Senders.
        from: Vec<u32>,
        /// Receivers.
        to: Vec<u32>,
    },
    /// A link fault on the links between `a` and `b` (both directions), and between
    /// `a` and the load clients when `clients`.
    Link {
        /// One end.
        a: Vec<u32>,
        /// The other end.
        b: Vec<u32>,
        /// Also the links to and from the load clients.
        clients: bool,
        /// What happens on the links (a delay ramp carries its length).
        fault: LinkFault,
    },
}

/// The fault layer's rules for `active` faults in a cluster of `replicas` replicas and
/// `clients` load clients (ids `0..clients`).
pub fn rules_for(active: &[ActiveNetworkFault], replicas: u32, clients: u32) -> FaultRules {
    let mut cuts: BTreeSet<(NodeId, NodeId)> = BTreeSet::new();
    let mut links: BTreeMap<(NodeId, NodeId), LinkFaults> = BTreeMap::new();
    let r = NodeId::Replica;
    let both = |cuts: &mut BTreeSet<(NodeId, NodeId)>, x: NodeId, y: NodeId| {
        if x != y {
            cuts.insert((x, y));
            cuts.insert((y, x));
        }
    };
    for fault in active {
        match fault {
            ActiveNetworkFault::Partition { groups } => {
                let mut group_of: BTreeMap<u32, usize> = BTreeMap::new();
                for (g, members) in groups.iter().enumerate() {
                    for m in members {
                        group_of.entry(*m).or_insert(g);
                    }
                }
                let rest = groups.len();
                let of = |x: u32| group_of.get(&x).copied().unwrap_or(rest);
                for x in 0..replicas {
                    for y in 0..replicas {
                        if of(x) != of(y) {
                            cuts.insert((r(x), r(y)));
                        }
                    }
                }
            }
            ActiveNetworkFault::Isolate { replicas: isolated } => {
                for &x in isolated {
                    for y in 0..replicas {
                        both(&mut cuts, r(x), r(y));
                    }
                    for c in 0..clients {
                        both(&mut cuts, r(x), NodeId::Client(c));
                    }
                }
            }
            ActiveNetworkFault::OneWayCut { from, to } => {
                for &x in from {
                    for &y in to {
                        if x != y {
                            cuts.insert((r(x), r(y)));
                        }
                    }
                }
            }
            ActiveNetworkFault::Link {
                a,
                b,
                clients: with_clients,
                fault,
            } => {
                let mut ends: Vec<(NodeId, NodeId)> = Vec::new();
                for &x in a {
                    for &y in b {
                        if x != y {
                            ends.push((r(x), r(y)));
                            ends.push((r(y), r(x)));
                        }
                    }
                    if *with_clients {
                        for c in 0..clients {
                            ends.push((r(x), NodeId::Client(c)));
                            ends.push((NodeId::Client(c), r(x)));
                        }
                    }
                }
                for link in ends {
                    apply_link_fault(links.entry(link).or_default(), *fault);
                }
            }
        }
    }
    FaultRules {
        default: None,
        links: links
            .into_iter()
            .map(|((from, to), faults)| LinkRule { from, to, faults })
            .collect(),
        partition: Vec::new(),
        isolated: Vec::new(),
        one_way_cuts: cuts.into_iter().collect(),
    }
}

/// The network layer's form of a link fault: sets the field of `faults` that `fault`
/// controls, leaving the others (so faults on one link merge). The one translation
/// from [`LinkFault`] to [`LinkFaults`].
pub fn apply_link_fault(faults: &mut LinkFaults, fault: LinkFault) {
    match fault {
        LinkFault::Delay { delay, jitter } => {
            faults.delay = if jitter.is_zero() {
                Delay::Fixed(delay)
            } else {
                Delay::Uniform {
                    min: delay.saturating_sub(jitter),
                    max: delay + jitter,
                }
            }
        }
        LinkFault::Loss(p) => faults.loss = p,
        LinkFault::Duplicate(p) => faults.duplicate = p,
        LinkFault::Reorder(p) => faults.reorder = p,
        LinkFault::DelayRamp {
            from,
            to,
            over,
            jitter,
        } => {
            faults.delay = Delay::Ramp {
                from,
                to,
                over,
                jitter,
            }
        }
        LinkFault::Flap { period, down } => faults.flap = Some(Flap { period, down }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn r(i: u32) -> NodeId {
        NodeId::Replica(i)
    }

    #[test]
    fn a_partition_cuts_every_link_between_groups_and_spares_clients() {
        let rules = rules_for(
            &[ActiveNetworkFault::Partition {
                groups: vec![vec![0]],
            }],
            4,
            2,
        );
        let cuts: BTreeSet<_> = rules.one_way_cuts.iter().copied().collect();
        assert_eq!(cuts.len(), 6, "r0 <-> r1, r2, r3");
        assert!(cuts.contains(&(r(0), r(3))) && cuts.contains(&(r(2), r(0))));
        assert!(!cuts.contains(&(r(1), r(2))));
        assert!(rules.default.is_none() && rules.isolated.is_empty());
    }

    #[test]
    fn isolation_includes_clients_but_never_the_launcher() {
        let rules = rules_for(&[ActiveNetworkFault::Isolate { replicas: vec![2] }], 4, 1);
        assert_eq!(rules.one_way_cuts.len(), 2 * 3 + 2);
        assert!(rules.one_way_cuts.contains(&(NodeId::Client(0), r(2))));
        assert!(
            rules
                .one_way_cuts
                .iter()
                .all(|(a, b)| *a != NodeId::Client(u32::MAX) && *b != NodeId::Client(u32::MAX))
        );
    }

    #[test]
    fn link_faults_on_one_link_merge_and_a_ramp_spans_its_fault() {
        let delay = ActiveNetworkFault::Link {
            a: vec![0],
            b: vec![1],
            clients: false,
            fault: LinkFault::Delay {
                delay: Duration::from_millis(50),
                jitter: Duration::from_millis(10),
            },
        };
        let loss = ActiveNetworkFault::Link {
            a: vec![0, 1],
            b: vec![0, 1],
            clients: true,
            fault: LinkFault::Loss(0.02),
        };
        let rules = rules_for(&[delay, loss], 4, 1);
        let link = |from, to| rules.links.iter().find(|l| l.from == from && l.to == to);
        let l01 = link(r(0), r(1)).unwrap().faults;
        assert_eq!(l01.loss, 0.02);
        assert_eq!(
            l01.delay,
            Delay::Uniform {
                min: Duration::from_millis(40),
                max: Duration::from_millis(60)
            }
        );
        assert_eq!(link(NodeId::Client(0), r(1)).unwrap().faults.loss, 0.02);
        assert!(link(r(2), r(3)).is_none());

        let ramp = rules_for(
            &[ActiveNetworkFault::Link {
                a: vec![0, 1, 2, 3],
                b: vec![0, 1, 2, 3],
                clients: false,
                fault: LinkFault::DelayRamp {
                    from: Duration::ZERO,
                    to: Duration::from_millis(400),
                    over: Duration::from_secs(10),
                    jitter: Duration::ZERO,
                },
            }],
            4,
            0,
        );
        assert_eq!(ramp.links.len(), 12);
        assert!(matches!(
            ramp.links[0].faults.delay,
            Delay::Ramp { over, .. } if over == Duration::from_secs(10)
        ));
    }
}
