//! The new-view decision: from a set S of valid view-change messages, which checkpoint
//! the new view starts from and which batch it re-proposes at each sequence number.
//!
//! Prepares are not signed, so a view change cannot prove what its sender prepared; it
//! only claims it (the P set) together with what it pre-prepared (the Q set). The rule
//! from Castro's thesis ("PBFT without signatures", the view-change decision procedure)
//! makes the claims safe to use. With h the highest stable checkpoint proven in S, for
//! every n above h, digest d is chosen if some message in S claims (n, d, v) prepared
//! and
//!
//! - A1: a quorum of messages in S do not contradict it: their prepared claim for n is
//!   in a view below v, or is (v, d), or absent;
//! - A2: f+1 messages in S claim d pre-prepared at n in a view ≥ v;
//!
//! and the null batch is chosen if
//!
//! - B: a quorum of messages in S claim nothing prepared at n.
//!
//! If a batch committed at n in view v*, at least f+1 correct replicas claim (n, d*,
//! v' ≥ v*), so every quorum holds one of them: B fails, and A1 fails for any other
//! digest unless its view exceeds v', in which case A2 would need a correct replica to
//! have pre-prepared another digest at n in a view above v* — impossible, because every
//! later new view re-proposed d*. When neither rule applies yet, the new primary waits
//! for more view changes. The function is deterministic in S, so every replica that
//! receives the new view recomputes the same decision and checks the primary's.

use std::collections::BTreeMap;

use crate::pbft::message::{SignedViewChange, StableCert};
use crate::request::null_digest;
use crate::types::{Digest, Seq, View};

/// The outcome for a view-change set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The new view can start.
    Decided {
        /// The checkpoint it starts from (the highest proven in S).
        checkpoint: StableCert,
        /// `(seq, digest)` for every sequence number above the checkpoint up to the
        /// highest one prepared in S; the null digest where rule B applied.
        proposals: Vec<(Seq, Digest)>,
    },
    /// Neither rule applies at this sequence number yet: wait for more view changes.
    Undecided(Seq),
}

/// Per view change: its prepared claim per sequence number, and its pre-prepared claims
/// as the latest view per (seq, digest).
struct Claims {
    prepared: BTreeMap<Seq, (View, Digest)>,
    pre_prepared: BTreeMap<(Seq, Digest), View>,
}

/// Decides the new view from `view_changes` (already validated: signatures, distinct
/// senders, one target view, valid certificates, at most one prepared claim per
/// sequence number). `quorum` is 2f+1 and `weak` is f+1.
pub fn decide(view_changes: &[SignedViewChange], quorum: usize, weak: usize) -> Decision {
    let checkpoint = view_changes
        .iter()
        .map(|vc| &vc.body.stable)
        .max_by(|a, b| a.seq.cmp(&b.seq).then(b.digest.cmp(&a.digest)))
        .cloned()
        .unwrap_or_default();
    let h = checkpoint.seq;

    let claims: Vec<Claims> = view_changes.iter().map(claims_of).collect();
    let highest = claims
        .iter()
        .flat_map(|c| c.prepared.keys())
        .copied()
        .filter(|s| *s > h)
        .max();

    let mut proposals = Vec::new();
    if let Some(highest) = highest {
        for n in h.next().0..=highest.0 {
            let n = Seq(n);
            match decide_one(&claims, n, quorum, weak) {
                Some(d) => proposals.push((n, d)),
                None => return Decision::Undecided(n),
            }
        }
    }
    Decision::Decided {
        checkpoint,
        proposals,
    }
}

fn claims_of(vc: &SignedViewChange) -> Claims {
    let prepared = vc
        .body
        .prepared
        .iter()
        .map(|p| (p.seq, (p.view, p.digest)))
        .collect();
    let mut pre_prepared = BTreeMap::new();
    for q in &vc.body.pre_prepared {
        let v = pre_prepared.entry((q.seq, q.digest)).or_insert(q.view);
        *v = (*v).max(q.view);
    }
    Claims {
        prepared,
        pre_prepared,
    }
}

/// Rule A (highest view first, then lowest digest, for determinism), else rule B.
fn decide_one(claims: &[Claims], n: Seq, quorum: usize, weak: usize) -> Option<Digest> {
    let mut candidates: Vec<(View, Digest)> = claims
        .iter()
        .filter_map(|c| c.prepared.get(&n).copied())
        .collect();
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    candidates.dedup();

    for (v, d) in candidates {
        let not_contradicting = claims
            .iter()
            .filter(|c| match c.prepared.get(&n) {
                None => true,
                Some((v2, d2)) => *v2 < v || (*v2 == v && *d2 == d),
            })
            .count();
        let vouching = claims
            .iter()
            .filter(|c| c.pre_prepared.get(&(n, d)).is_some_and(|v2| *v2 >= v))
            .count();
        if not_contradicting >= quorum && vouching >= weak {
            return Some(d);
        }
    }

    let silent = claims
        .iter()
        .filter(|c| !c.prepared.contains_key(&n))
        .count();
    (silent >= quorum).then(null_digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Signature;
    use crate::pbft::message::{PrePreparedClaim, PreparedClaim, Signed, ViewChangeBody};
    use crate::types::ReplicaId;

    fn d(x: u8) -> Digest {
        Digest([x; 32])
    }

    fn vc(
        signer: u32,
        stable: u64,
        prepared: &[(u64, u64, u8)],
        pre_prepared: &[(u64, u8, u64)],
    ) -> SignedViewChange {
        Signed {
            body: ViewChangeBody {
                new_view: View(5),
                stable: StableCert {
                    seq: Seq(stable),
                    digest: d(0),
                    votes: vec![],
                },
                prepared: prepared
                    .iter()
                    .map(|&(s, v, x)| PreparedClaim {
                        seq: Seq(s),
                        view: View(v),
                        digest: d(x),
                    })
                    .collect(),
                pre_prepared: pre_prepared
                    .iter()
                    .map(|&(s, x, v)| PrePreparedClaim {
                        seq: Seq(s),
                        digest: d(x),
                        view: View(v),
                    })
                    .collect(),
            },
            signer: ReplicaId(signer),
            signature: Signature([0; 64]),
        }
    }

    #[test]
    fn nothing_prepared_means_no_proposals() {
        let s = vec![vc(0, 0, &[], &[]), vc(1, 0, &[], &[]), vc(2, 0, &[], &[])];
        let Decision::Decided {
            checkpoint,
            proposals,
        } = decide(&s, 3, 2)
        else {
            panic!("undecided")
        };
        assert_eq!(checkpoint.seq, Seq(0));
        assert!(proposals.is_empty());
    }

    #[test]
    fn prepared_batch_is_reproposed_and_gaps_are_null() {
        // Seq 2 prepared at two replicas; seq 1 prepared nowhere.
        let s = vec![
            vc(0, 0, &[(2, 1, 7)], &[(2, 7, 1)]),
            vc(1, 0, &[(2, 1, 7)], &[(2, 7, 1)]),
            vc(2, 0, &[], &[]),
        ];
        let Decision::Decided { proposals, .. } = decide(&s, 3, 2) else {
            panic!("undecided")
        };
        assert_eq!(proposals, vec![(Seq(1), null_digest()), (Seq(2), d(7))]);
    }

    #[test]
    fn highest_checkpoint_wins_and_bounds_the_range() {
        let s = vec![
            vc(0, 8, &[(9, 1, 3)], &[(9, 3, 1)]),
            vc(1, 0, &[(5, 0, 4), (9, 1, 3)], &[(5, 4, 0), (9, 3, 1)]),
            vc(2, 0, &[], &[]),
        ];
        let Decision::Decided {
            checkpoint,
            proposals,
        } = decide(&s, 3, 2)
        else {
            panic!("undecided")
        };
        assert_eq!(checkpoint.seq, Seq(8));
        assert_eq!(proposals, vec![(Seq(9), d(3))]);
    }

    #[test]
    fn a_lone_unvouched_claim_waits_for_more_view_changes() {
        // One replica claims seq 1 prepared, but only it pre-prepared it: neither A
        // (A2 needs f+1 = 2) nor B (2 silent < quorum 3) holds.
        let s = vec![
            vc(0, 0, &[(1, 2, 9)], &[(1, 9, 2)]),
            vc(1, 0, &[], &[]),
            vc(2, 0, &[], &[]),
        ];
        assert_eq!(decide(&s, 3, 2), Decision::Undecided(Seq(1)));
        // A fourth view change that stays silent on seq 1 makes B hold.
        let mut s4 = s.clone();
        s4.push(vc(3, 0, &[], &[]));
        let Decision::Decided { proposals, .. } = decide(&s4, 3, 2) else {
            panic!("undecided")
        };
        assert_eq!(proposals, vec![(Seq(1), null_digest())]);
    }

    #[test]
    fn later_view_claim_beats_earlier_one() {
        // d(1) prepared in view 1 at replica 0; d(2) prepared in view 3 at replicas 1, 2.
        let s = vec![
            vc(0, 0, &[(1, 1, 1)], &[(1, 1, 1)]),
            vc(1, 0, &[(1, 3, 2)], &[(1, 2, 3), (1, 1, 1)]),
            vc(2, 0, &[(1, 3, 2)], &[(1, 2, 3)]),
        ];
        let Decision::Decided { proposals, .. } = decide(&s, 3, 2) else {
            panic!("undecided")
        };
        assert_eq!(proposals, vec![(Seq(1), d(2))]);
    }

    #[test]
    fn forged_high_view_claim_without_vouchers_is_not_chosen() {
        // Replica 3 (Byzantine) claims d(9) prepared in view 4; nobody pre-prepared it.
        // The committed d(2) (view 3) is claimed by replicas 1 and 2.
        let s = vec![
            vc(1, 0, &[(1, 3, 2)], &[(1, 2, 3)]),
            vc(2, 0, &[(1, 3, 2)], &[(1, 2, 3)]),
            vc(3, 0, &[(1, 4, 9)], &[(1, 9, 4)]),
            vc(0, 0, &[], &[(1, 2, 3)]),
        ];
        let Decision::Decided { proposals, .. } = decide(&s, 3, 2) else {
            panic!("undecided")
        };
        assert_eq!(proposals, vec![(Seq(1), d(2))]);
    }
}
