//! Who leads a round: round-robin over the replicas (round r is led by replica
//! r mod n), as in Jolteon's evaluation and DiemBFT v4.
//!
//! Leader reputation (the documented option, not built): Aptos' "leader reputation"
//! picks round r's leader by a deterministic, seeded draw weighted by how many of the
//! last window of committed blocks each replica proposed and voted for (read from the
//! committed chain's QCs, so every replica computes the same schedule from the same
//! committed prefix), so a crashed leader stops costing one round time-out every n
//! rounds. Here it would replace [`leader`] by a function of the committed tip and a
//! window; the pacemaker, the vote routing (votes go to `leader(r+1)`) and client
//! routing would call it unchanged. Round-robin stays the default because a
//! comparison with PBFT should not hide the cost of a faulty leader.

use crate::hotstuff::block::Round;
use crate::types::ReplicaId;

/// The leader of `round` in a cluster of `n` replicas.
pub fn leader(round: Round, n: usize) -> ReplicaId {
    ReplicaId((round.0 % n.max(1) as u64) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::View;

    #[test]
    fn rotates_over_every_replica() {
        let leaders: Vec<u32> = (1..=8).map(|r| leader(View(r), 4).0).collect();
        assert_eq!(leaders, [1, 2, 3, 0, 1, 2, 3, 0]);
        assert_eq!(leader(View(u64::MAX), 7).0, (u64::MAX % 7) as u32);
    }
}
