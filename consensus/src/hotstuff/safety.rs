//! The safety rules: what a replica may vote for, when it must stop voting in a round,
//! what it locks, and when a chain of certified blocks commits.
//!
//! Jolteon (2-chain; Gelashvili et al., FC 2022, Algorithm 2; DiemBFT v4 report
//! §5 "safety rules"):
//! - vote at most once per round, and never in a round after timing out in it:
//!   `last_voted_round` only grows and covers both;
//! - vote for block B of round r only if r > last_voted_round and either B's QC is from
//!   round r−1, or B carries a TC of round r−1 and B's QC is at least as high as the
//!   highest QC the TC names (the TC rule replaces the lock of 3-chain HotStuff);
//! - 2-chain commit: a QC for B' whose parent B has round(B') = round(B)+1 commits B
//!   and its ancestors.
//!
//! Chained HotStuff (3-chain; Yin et al., PODC 2019; the LibraBFT v2 voting rule):
//! - lock: the preferred round is the highest round of a parent of a certified block
//!   (the head of a 2-chain); vote for B only if round(B.qc) ≥ preferred round;
//! - 3-chain commit: certified B'' → B' → B in consecutive rounds commits B.
//!
//! Why a 2-chain is safe (sketch): if B of round r commits, 2f+1 replicas saw QC(B) in
//! B' of round r+1 and hold a highest QC of round ≥ r. Every TC of a later round holds
//! a timeout of one of them (two quorums share a correct replica), so its highest QC
//! is of round ≥ r, and a block that follows a TC must extend a QC of round ≥ r; a QC
//! of round ≥ r extends B by induction over rounds (one QC per round: two quorums in
//! one round share a correct replica, which votes once).

use crate::hotstuff::block::Round;
use crate::hotstuff::qc::Tc;
use crate::types::{Digest, View};

/// A replica's voting state: what it voted and locked. Its fields only grow.
#[derive(Clone, Debug)]
pub struct SafetyRules {
    /// 2 (Jolteon) or 3 (chained HotStuff); 1 only in the test-only broken rule.
    chain_length: usize,
    /// The highest round this replica voted or timed out in.
    last_voted_round: Round,
    /// The 2-chain lock: the highest round of a parent of a certified block.
    preferred_round: Round,
}

impl SafetyRules {
    /// Rules for commit chains of `chain_length` blocks.
    pub fn new(chain_length: usize) -> SafetyRules {
        SafetyRules {
            chain_length,
            last_voted_round: View(0),
            preferred_round: View(0),
        }
    }

    /// The highest round voted or timed out in.
    pub fn last_voted_round(&self) -> Round {
        self.last_voted_round
    }

    /// The locked (preferred) round.
    pub fn preferred_round(&self) -> Round {
        self.preferred_round
    }

    /// The commit rule's chain length.
    pub fn chain_length(&self) -> usize {
        self.chain_length
    }

    /// Whether a block of `round` whose QC is of `qc_round`, carrying `tc`, may get
    /// this replica's vote.
    pub fn safe_to_vote(&self, round: Round, qc_round: Round, tc: Option<&Tc>) -> bool {
        if round <= self.last_voted_round || qc_round >= round {
            return false;
        }
        if self.chain_length >= 3 {
            return qc_round >= self.preferred_round;
        }
        let after_qc = qc_round.next() == round;
        let after_tc =
            tc.is_some_and(|tc| tc.round.next() == round && qc_round >= tc.max_hqc_round());
        after_qc || after_tc
    }

    /// Records a vote in `round` (checked with [`SafetyRules::safe_to_vote`]).
    pub fn record_vote(&mut self, round: Round) {
        assert!(round > self.last_voted_round, "one vote per round");
        self.last_voted_round = round;
    }

    /// Records a timeout in `round`: no vote in it afterwards.
    pub fn record_timeout(&mut self, round: Round) {
        self.last_voted_round = self.last_voted_round.max(round);
    }

    /// A QC certified a block whose own QC (its parent's) is of `parent_round`: moves
    /// the lock up.
    pub fn observe_qc(&mut self, parent_round: Round) {
        self.preferred_round = self.preferred_round.max(parent_round);
    }

    /// Restores the state from a durable log (only ever moves up).
    pub fn restore(&mut self, last_voted_round: Round, preferred_round: Round) {
        self.last_voted_round = self.last_voted_round.max(last_voted_round);
        self.preferred_round = self.preferred_round.max(preferred_round);
    }
}

/// The commit rule over a certified chain: `chain[0]` is the block a new QC certifies,
/// `chain[i+1]` the parent of `chain[i]`, as `(digest, round)`. Returns the block the
/// rule commits: `chain[len−1]` when the first `len` blocks have consecutive rounds,
/// else `None`. `chain` must hold at least `len` blocks.
pub fn commit_target(chain: &[(Digest, Round)], len: usize) -> Option<Digest> {
    let len = len.max(1);
    if chain.len() < len {
        return None;
    }
    let consecutive = chain[..len]
        .windows(2)
        .all(|w| w[1].1.next() == w[0].1 && w[1].1 < w[0].1);
    consecutive.then_some(chain[len - 1].0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hotstuff::qc::Qc;

    fn tc(round: u64, hqc: u64) -> Tc {
        use crate::crypto::{Signature, Signed};
        use crate::hotstuff::qc::TimeoutBody;
        Tc {
            round: View(round),
            timeouts: vec![Signed {
                body: TimeoutBody {
                    round: View(round),
                    hqc_round: View(hqc),
                },
                signer: crate::types::ReplicaId(0),
                signature: Signature([0; 64]),
            }],
            high_qc: Qc::genesis(),
        }
    }

    #[test]
    fn jolteon_votes_once_per_round_after_a_qc_or_a_tc() {
        let mut s = SafetyRules::new(2);
        assert!(s.safe_to_vote(View(1), View(0), None));
        assert!(!s.safe_to_vote(View(2), View(0), None), "QC not from r-1");
        s.record_vote(View(1));
        assert!(!s.safe_to_vote(View(1), View(0), None), "voted in round 1");
        assert!(s.safe_to_vote(View(2), View(1), None));
        // Round 2 timed out; a TC whose highest QC is of round 1.
        s.record_timeout(View(2));
        assert!(
            !s.safe_to_vote(View(2), View(1), None),
            "timed out in round 2"
        );
        let t = tc(2, 1);
        assert!(s.safe_to_vote(View(3), View(1), Some(&t)));
        assert!(
            !s.safe_to_vote(View(3), View(0), Some(&t)),
            "below the TC's highest QC"
        );
        assert!(
            !s.safe_to_vote(View(4), View(1), Some(&t)),
            "TC not from r-1"
        );
    }

    #[test]
    fn chained_hotstuff_votes_above_its_lock() {
        let mut s = SafetyRules::new(3);
        s.observe_qc(View(4));
        assert_eq!(s.preferred_round(), View(4));
        s.observe_qc(View(2));
        assert_eq!(s.preferred_round(), View(4), "the lock never goes down");
        assert!(!s.safe_to_vote(View(7), View(3), None));
        assert!(s.safe_to_vote(View(7), View(4), None));
        assert!(
            s.safe_to_vote(View(9), View(5), None),
            "no consecutive QC needed"
        );
    }

    #[test]
    fn commits_need_consecutive_rounds() {
        let d = |i: u8| Digest([i; 32]);
        let chain = [
            (d(3), View(7)),
            (d(2), View(6)),
            (d(1), View(5)),
            (d(0), View(2)),
        ];
        assert_eq!(commit_target(&chain, 2), Some(d(2)));
        assert_eq!(commit_target(&chain, 3), Some(d(1)));
        assert_eq!(commit_target(&chain, 4), None, "round 2 → 5 is a gap");
        assert_eq!(commit_target(&chain, 1), Some(d(3)));
        let gap = [(d(3), View(7)), (d(2), View(5))];
        assert_eq!(commit_target(&gap, 2), None);
        assert_eq!(commit_target(&gap[..1], 2), None, "chain too short");
    }
}
