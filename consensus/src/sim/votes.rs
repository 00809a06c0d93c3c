//! The vote ledger: no correct replica casts two different votes on one
//! `(phase, view, seq)`, nor votes in a view it left — across crashes and restarts from
//! disk. Resending a vote cast before is no new vote, even after leaving its view. A replica that forgot a vote it cast (its log lost it) would act like a
//! Byzantine one; this is the rule that finds a missing `Persist`.

use std::collections::BTreeMap;

use crate::protocol::CastVote;
use crate::types::{Digest, Seq, View};

/// Every vote each replica cast, and the highest view each left.
#[derive(Debug, Default)]
pub struct VoteLedger {
    votes: BTreeMap<(usize, &'static str, View, Seq), Digest>,
    left: BTreeMap<usize, View>,
}

impl VoteLedger {
    /// Replica `r` sent a message casting `vote`; returns what it contradicts, if
    /// anything.
    pub fn cast(&mut self, r: usize, vote: CastVote) -> Option<String> {
        if vote.phase == CastVote::LEAVE {
            let left = self.left.entry(r).or_default();
            *left = (*left).max(vote.view);
            return None;
        }
        let key = (r, vote.phase, vote.view, vote.seq);
        match self.votes.get(&key) {
            Some(d) if *d != vote.digest => Some(format!(
                "r{r} cast a {} for {} at {} in {} after one for {d}",
                vote.phase, vote.digest, vote.seq, vote.view
            )),
            // A resend of a vote cast before (even after leaving its view, as
            // HotStuff resends its vote with its timeout): nothing new.
            Some(_) => None,
            None => match self.left.get(&r) {
                Some(left) if vote.view < *left => Some(format!(
                    "r{r} cast a {} at {} in {} after leaving for {left}",
                    vote.phase, vote.seq, vote.view
                )),
                _ => {
                    self.votes.insert(key, vote.digest);
                    None
                }
            },
        }
    }

    /// Replica `r` no longer answers for its past votes (its disk lied, or it
    /// restarted empty): forget them.
    pub fn forget(&mut self, r: usize) {
        self.votes.retain(|(i, ..), _| *i != r);
        self.left.remove(&r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(phase: &'static str, view: u64, seq: u64, d: u8) -> CastVote {
        CastVote {
            phase,
            view: View(view),
            seq: Seq(seq),
            digest: Digest([d; 32]),
        }
    }

    #[test]
    fn contradictions_and_votes_in_left_views_are_found() {
        let mut l = VoteLedger::default();
        assert_eq!(l.cast(1, vote("prepare", 0, 5, 1)), None);
        assert_eq!(l.cast(1, vote("prepare", 0, 5, 1)), None, "a resend");
        assert_eq!(l.cast(2, vote("prepare", 0, 5, 2)), None, "another replica");
        assert!(l.cast(1, vote("prepare", 0, 5, 2)).is_some());
        assert_eq!(l.cast(1, vote(CastVote::LEAVE, 1, 0, 0)), None);
        assert!(l.cast(1, vote("commit", 0, 6, 1)).is_some());
        assert_eq!(
            l.cast(1, vote("prepare", 0, 5, 1)),
            None,
            "a resend of a vote cast before leaving"
        );
        assert!(l.cast(1, vote("prepare", 0, 5, 3)).is_some());
        assert_eq!(l.cast(1, vote("commit", 1, 6, 1)), None);
        l.forget(1);
        assert_eq!(l.cast(1, vote("prepare", 0, 5, 2)), None);
    }
}
