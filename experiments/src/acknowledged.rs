//! The acknowledged-loss checker's two halves: what clients acknowledged, and the
//! comparison with what a replica executed.
//!
//! A load client records every request whose result it accepted (f+1 matching
//! replies) in an [`AckRanges`]: its acknowledged numbers as disjoint ranges. Clients
//! number requests 1, 2, 3, … and never abandon one, so every gap between two ranges
//! holds a request still outstanding: a client keeps at most (requests outstanding + 1)
//! ranges, and outstanding requests stay below the protocol's `client_window` (the
//! client refuses to number beyond it). Memory is therefore at most
//! `client_window + 1` ranges per client (16 bytes each plus the map's overhead),
//! whether the run acknowledges a thousand requests or a billion.
//!
//! The evidence on the replica side is the replicated exactly-once table (consensus's
//! `exactly_once.rs`): per client a low mark — every number ≤ it was delivered — and
//! the delivered numbers above it ([`ExecutedWindow`]). It is part of the checkpoint
//! digest, restored by log replay and by state transfer, so it is exactly as durable
//! as the ledger itself; delivery order is execution order, so once a replica's
//! `last_executed` reaches its `last_delivered` every number in the table has taken
//! effect. A number ≤ the low mark counts as executed: the low mark only rises over
//! delivered numbers (a number too far above it is refused, never slid over).
//! [`missing`] finds the acknowledged numbers a table lacks; [`LossCheck`] does it for
//! every client of one replica.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One client's acknowledged request numbers, as disjoint, non-adjacent inclusive
/// ranges. See the module header for the memory bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckRanges {
    /// Range start → range end (inclusive); ranges neither overlap nor touch.
    ranges: BTreeMap<u64, u64>,
    /// Numbers recorded (each counted once).
    count: u64,
}

impl AckRanges {
    /// Records `number` as acknowledged; a number recorded before changes nothing.
    pub fn insert(&mut self, number: u64) {
        if self.contains(number) {
            return;
        }
        self.count += 1;
        let mut start = number;
        let mut end = number;
        // A range ending just below `number` (number ≥ 1 here, or it would be found).
        if let Some(below) = number.checked_sub(1)
            && let Some((&s, &e)) = self.ranges.range(..=below).next_back()
            && e == below
        {
            start = s;
            self.ranges.remove(&s);
        }
        // A range starting just above it.
        if let Some(above) = number.checked_add(1)
            && let Some(e) = self.ranges.remove(&above)
        {
            end = e;
        }
        self.ranges.insert(start, end);
    }

    /// Whether `number` was recorded.
    pub fn contains(&self, number: u64) -> bool {
        self.ranges
            .range(..=number)
            .next_back()
            .is_some_and(|(_, &e)| number <= e)
    }

    /// Numbers recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The ranges, ascending, as `(first, last)` inclusive.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }

    /// How many ranges are held (the memory used, in ranges).
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Adds every number of `other`.
    pub fn merge(&mut self, other: &AckRanges) {
        for (s, e) in other.ranges() {
            self.insert_range(s, e);
        }
    }

    /// Records every number in `first..=last`.
    fn insert_range(&mut self, first: u64, last: u64) {
        let mut start = first;
        let mut end = last;
        // Every range overlapping or touching [first, last] is absorbed.
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(..=last.saturating_add(1))
            .rev()
            .take_while(|&(_, &e)| e.saturating_add(1) >= first)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.ranges.remove(&s);
            self.count -= e - s + 1;
            start = start.min(s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
        self.count = self.count.saturating_add((end - start).saturating_add(1));
    }
}

/// Acknowledged requests per client id.
pub type Acknowledged = BTreeMap<u32, AckRanges>;

/// Requests acknowledged over every client.
pub fn total(acked: &Acknowledged) -> u64 {
    acked
        .values()
        .fold(0, |sum, r| sum.saturating_add(r.count()))
}

/// One client's row of a replica's exactly-once table as the launcher reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutedWindow {
    /// Every number ≤ it was delivered.
    pub low: u64,
    /// Delivered numbers above `low`, ascending.
    pub above: Vec<u64>,
}

impl ExecutedWindow {
    /// Whether `number` was delivered.
    pub fn has(&self, number: u64) -> bool {
        number <= self.low || self.above.binary_search(&number).is_ok()
    }
}

/// The acknowledged numbers in `acked` that `window` lacks (`None`: the replica has
/// no row for the client, so it lacks them all): how many, and the first `keep` of
/// them, ascending. Cost: O(ranges + |above| + keep), whatever the number of requests.
pub fn missing(acked: &AckRanges, window: Option<&ExecutedWindow>, keep: usize) -> (u64, Vec<u64>) {
    let empty = ExecutedWindow::default();
    let w = window.unwrap_or(&empty);
    let mut count = 0u64;
    let mut first = Vec::new();
    for (s, e) in acked.ranges() {
        if e <= w.low {
            continue;
        }
        let s = s.max(w.low.saturating_add(1));
        // Numbers of [s, e] the window holds above its low mark.
        let lo = w.above.partition_point(|&n| n < s);
        let hi = w.above.partition_point(|&n| n <= e);
        let held = (hi - lo) as u64;
        count = count.saturating_add((e - s).saturating_add(1).saturating_sub(held));
        if first.len() < keep {
            let mut held = w.above[lo..hi].iter().peekable();
            let mut n = s;
            while first.len() < keep {
                while held.next_if(|&&h| h < n).is_some() {}
                if held.peek() == Some(&&n) {
                    held.next();
                } else {
                    first.push(n);
                }
                if n == e {
                    break;
                }
                n += 1;
            }
        }
    }
    (count, first)
}

/// What one replica lacks of what the clients acknowledged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaLoss {
    /// The replica.
    pub replica: u32,
    /// Acknowledged requests not in its table.
    pub missing: u64,
    /// The first few of them, as `(client, number)`, in client then number order.
    pub first: Vec<(u32, u64)>,
}

/// How many missing requests [`check_replica`] lists per replica.
pub const FIRST_MISSING: usize = 5;

/// Compares one replica's table (`table`: per client id its window; clients without a
/// row lack everything) with what the clients acknowledged.
pub fn check_replica(
    replica: u32,
    acked: &Acknowledged,
    table: &BTreeMap<u32, ExecutedWindow>,
) -> ReplicaLoss {
    let mut loss = ReplicaLoss {
        replica,
        ..ReplicaLoss::default()
    };
    for (client, ranges) in acked {
        let keep = FIRST_MISSING.saturating_sub(loss.first.len());
        let (count, first) = missing(ranges, table.get(client), keep);
        loss.missing = loss.missing.saturating_add(count);
        loss.first.extend(first.into_iter().map(|n| (*client, n)));
    }
    loss
}

/// Acknowledged requests missing from at least one of `tables` (each a replica's
/// table): the run's `lost` figure. Counts each request once however many replicas
/// lack it. Walks, per client, only the acknowledged numbers above the lowest low
/// mark among the tables.
pub fn lost_anywhere(acked: &Acknowledged, tables: &[&BTreeMap<u32, ExecutedWindow>]) -> u64 {
    let empty = ExecutedWindow::default();
    let mut lost = 0u64;
    for (client, ranges) in acked {
        let windows: Vec<&ExecutedWindow> = tables
            .iter()
            .map(|t| t.get(client).unwrap_or(&empty))
            .collect();
        let floor = windows.iter().map(|w| w.low).min().unwrap_or(u64::MAX);
        for (s, e) in ranges.ranges() {
            if e <= floor {
                continue;
            }
            let mut n = s.max(floor.saturating_add(1));
            loop {
                if windows.iter().any(|w| !w.has(n)) {
                    lost = lost.saturating_add(1);
                }
                if n == e {
                    break;
                }
                n += 1;
            }
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_in_order_and_out_of_order() {
        let mut r = AckRanges::default();
        for n in 1..=1000 {
            r.insert(n);
        }
        assert_eq!(r.ranges().collect::<Vec<_>>(), [(1, 1000)]);
        assert_eq!((r.count(), r.range_count()), (1000, 1));
        r.insert(1002);
        r.insert(1004);
        r.insert(1004);
        assert_eq!(
            r.ranges().collect::<Vec<_>>(),
            [(1, 1000), (1002, 1002), (1004, 1004)]
        );
        r.insert(1003);
        r.insert(1001);
        assert_eq!(r.ranges().collect::<Vec<_>>(), [(1, 1004)]);
        assert_eq!(r.count(), 1004);
        assert!(r.contains(1) && r.contains(1004) && !r.contains(0) && !r.contains(1005));
        let mut edge = AckRanges::default();
        edge.insert(u64::MAX);
        edge.insert(0);
        edge.insert(u64::MAX - 1);
        assert_eq!(
            edge.ranges().collect::<Vec<_>>(),
            [(0, 0), (u64::MAX - 1, u64::MAX)]
        );
    }

    /// The memory bound: with at most `w` outstanding at any time (numbers issued in
    /// order, acknowledged in a scrambled order within the window), never more than
    /// `w + 1` ranges are held.
    #[test]
    fn ranges_stay_within_the_outstanding_bound() {
        let w = 32u64;
        let mut r = AckRanges::default();
        let mut outstanding: Vec<u64> = Vec::new();
        let mut next = 1u64;
        let mut seed = 7u64;
        while next < 100_000 {
            while (outstanding.len() as u64) < w {
                outstanding.push(next);
                next += 1;
            }
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (seed >> 33) as usize % outstanding.len();
            r.insert(outstanding.swap_remove(i));
            assert!(r.range_count() as u64 <= w + 1, "{}", r.range_count());
        }
        assert_eq!(r.count(), next - 1 - outstanding.len() as u64);
    }

    #[test]
    fn merging_adds_counts_once() {
        let mut a = AckRanges::default();
        let mut b = AckRanges::default();
        for n in [1, 2, 3, 10, 11] {
            a.insert(n);
        }
        for n in [3, 4, 5, 9, 20] {
            b.insert(n);
        }
        a.merge(&b);
        assert_eq!(a.ranges().collect::<Vec<_>>(), [(1, 5), (9, 11), (20, 20)]);
        assert_eq!(a.count(), 9);
    }

    fn acked(numbers: impl IntoIterator<Item = u64>) -> AckRanges {
        let mut r = AckRanges::default();
        for n in numbers {
            r.insert(n);
        }
        r
    }

    #[test]
    fn a_number_at_or_below_the_low_mark_counts_as_executed() {
        let a = acked(1..=100);
        let w = ExecutedWindow {
            low: 100,
            above: vec![],
        };
        assert_eq!(missing(&a, Some(&w), 5), (0, vec![]));
        let w = ExecutedWindow {
            low: 90,
            above: vec![91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 150],
        };
        assert_eq!(missing(&a, Some(&w), 5), (0, vec![]));
    }

    #[test]
    fn a_missing_number_is_found() {
        let a = acked((1..=100).chain(200..=205));
        // 97 lies above the low mark and is not held; 200..=205 are beyond everything.
        let w = ExecutedWindow {
            low: 90,
            above: vec![91, 92, 93, 94, 95, 96, 98, 99, 100, 201],
        };
        let (count, first) = missing(&a, Some(&w), 3);
        assert_eq!(count, 1 + 5);
        assert_eq!(first, [97, 200, 202]);
        // No row at all: everything is missing.
        let (count, first) = missing(&a, None, 2);
        assert_eq!((count, first), (106, vec![1, 2]));
    }

    #[test]
    fn a_replica_lacking_an_acknowledged_number_is_named() {
        let mut all = Acknowledged::new();
        all.insert(0, acked(1..=50));
        all.insert(1, acked(1..=40));
        let full = ExecutedWindow {
            low: 50,
            above: vec![],
        };
        let good: BTreeMap<u32, ExecutedWindow> = [(0, full.clone()), (1, full.clone())].into();
        // Client 1's 40 is missing on the second replica.
        let holed: BTreeMap<u32, ExecutedWindow> = [
            (0, full.clone()),
            (
                1,
                ExecutedWindow {
                    low: 39,
                    above: vec![41],
                },
            ),
        ]
        .into();
        // The third replica restarted empty.
        let empty = BTreeMap::new();
        assert_eq!(check_replica(0, &all, &good).missing, 0);
        let loss = check_replica(1, &all, &holed);
        assert_eq!((loss.missing, loss.first), (1, vec![(1, 40)]));
        let loss = check_replica(2, &all, &empty);
        assert_eq!(loss.missing, 90);
        assert_eq!(loss.first, [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)]);
        assert_eq!(total(&all), 90);
        assert_eq!(lost_anywhere(&all, &[&good, &good]), 0);
        assert_eq!(lost_anywhere(&all, &[&good, &holed]), 1);
        assert_eq!(lost_anywhere(&all, &[&good, &holed, &empty]), 90);
    }
}
