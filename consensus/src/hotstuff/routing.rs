//! Where a HotStuff client sends a new request: to the leaders of the f+1 rounds after
//! the one f+1 replicas reported in their replies (that round is vouched for by a
//! correct replica, so a lone faulty replica cannot steer clients; f+1 distinct
//! leaders include a correct one, so a faulty leader cannot hold a request back until
//! the client's retransmission). Leaders rotate every round, so the client's round is
//! stale by the time a request lands: each target queues it (every replica proposes
//! from its queue when it leads), and a replica whose chain is idle hands it to the
//! leaders of its current and next rounds, so requests reach the current and next
//! leaders. Replies carry the replica's round, all a client needs to follow rotation.
//!
//! With leader reputation (`leaders.rs`) clients keep these round-robin targets: the
//! election reads the committed chain, which clients do not hold. The targets are
//! still f+1 distinct replicas, so one is correct; a correct replica votes, stays in
//! the elected set and soon leads, and a replica whose chain is idle hands requests to
//! the elected current and next leaders.

use std::collections::BTreeMap;

use crate::client::{ClientRouting, Destination};
use crate::hotstuff::leaders::leader;
use crate::types::{ReplicaId, View, kth_highest_view, max_faulty};

/// HotStuff's [`ClientRouting`].
#[derive(Debug)]
pub struct LeaderRouting {
    replicas: usize,
    weak: usize,
    reported: BTreeMap<ReplicaId, View>,
    round: View,
}

impl LeaderRouting {
    /// The policy for an `replicas`-replica cluster, starting at round 0.
    pub fn new(replicas: usize) -> LeaderRouting {
        LeaderRouting {
            replicas,
            weak: max_faulty(replicas) + 1,
            reported: BTreeMap::new(),
            round: View(0),
        }
    }

    /// The round the client follows.
    pub fn round(&self) -> View {
        self.round
    }
}

impl ClientRouting for LeaderRouting {
    fn on_reply(&mut self, replica: ReplicaId, round: View) {
        let r = self.reported.entry(replica).or_insert(View(0));
        if round <= *r {
            return;
        }
        *r = round;
        if let Some(vouched) = kth_highest_view(self.reported.values().copied(), self.weak) {
            self.round = self.round.max(vouched);
        }
    }

    fn destination(&self) -> Destination {
        let mut targets = Vec::with_capacity(self.weak);
        let mut round = self.round;
        for _ in 0..self.weak {
            round = round.next();
            let l = leader(round, self.replicas);
            if !targets.contains(&l) {
                targets.push(l);
            }
        }
        Destination::Several(targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_the_next_f_plus_one_leaders_of_a_vouched_round() {
        let mut r = LeaderRouting::new(4);
        assert_eq!(
            r.destination(),
            Destination::Several(vec![ReplicaId(1), ReplicaId(2)])
        );
        r.on_reply(ReplicaId(0), View(100));
        assert_eq!(r.round(), View(0), "one report is not enough");
        r.on_reply(ReplicaId(1), View(6));
        assert_eq!(r.round(), View(6));
        assert_eq!(
            r.destination(),
            Destination::Several(vec![ReplicaId(3), ReplicaId(0)])
        );
    }
}
