//! Votes, quorum certificates and timeout certificates (Jolteon, Gelashvili et al.,
//! FC 2022, §3; DiemBFT v4 report §4).
//!
//! - A vote is an Ed25519 signature on `(block digest, round)` ([`VoteBody`]), sent to
//!   the next round's leader.
//! - A QC ([`Qc`]) is 2f+1 votes from distinct replicas on one `(digest, round)`. ring
//!   has no signature aggregation, so a QC carries 2f+1 signatures (64 bytes each) and
//!   verifying one costs 2f+1 verifications; a BLS aggregate would make it one
//!   signature of 96 bytes and one pairing check (README, "HotStuff").
//! - A timeout ([`TimeoutMsg`]) is a signature on `(round, round of the sender's
//!   highest QC)` ([`TimeoutBody`]) together with that QC; a TC ([`Tc`]) is 2f+1
//!   timeouts of one round and the highest QC among them, which a leader extends after
//!   the round failed.
//!
//! Verification never panics and checks everything a faulty peer controls: signer
//! indices, distinct signers, counts between the quorum and n, matching bodies.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::crypto::{Keyring, Signed, SignedBody};
use crate::hotstuff::block::{Round, genesis_digest};
use crate::types::{Digest, View};

/// What a vote signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VoteBody {
    /// The block voted for.
    pub block: Digest,
    /// Its round.
    pub round: Round,
}

impl SignedBody for VoteBody {
    const DOMAIN: &'static [u8] = b"tandem-hotstuff-vote-v1";
}

/// A signed vote.
pub type Vote = Signed<VoteBody>;

/// A quorum certificate: 2f+1 votes on one block (genesis: none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qc {
    /// The certified block.
    pub block: Digest,
    /// Its round.
    pub round: Round,
    /// The votes, from distinct replicas.
    pub votes: Vec<Vote>,
}

impl Qc {
    /// The genesis QC, valid without votes.
    pub fn genesis() -> Qc {
        Qc {
            block: genesis_digest(),
            round: View(0),
            votes: Vec::new(),
        }
    }

    /// Whether this QC is valid: genesis, or between `quorum` and n votes from
    /// distinct replicas of `keys`, each a valid signature on `(block, round)`.
    pub fn verify(&self, keys: &mut Keyring, quorum: usize) -> bool {
        if self.round == View(0) {
            return self.block == genesis_digest() && self.votes.is_empty();
        }
        if self.votes.len() < quorum || self.votes.len() > keys.replica_keys().len() {
            return false;
        }
        let body = VoteBody {
            block: self.block,
            round: self.round,
        };
        let bytes = body.signing_bytes();
        let mut signers = BTreeSet::new();
        self.votes.iter().all(|v| {
            v.body == body
                && signers.insert(v.signer)
                && keys.verify(v.signer, &bytes, &v.signature)
        })
    }
}

/// What a timeout signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutBody {
    /// The round the sender gives up on.
    pub round: Round,
    /// The round of the sender's highest QC.
    pub hqc_round: Round,
}

impl SignedBody for TimeoutBody {
    const DOMAIN: &'static [u8] = b"tandem-hotstuff-timeout-v1";
}

/// A signed timeout.
pub type SignedTimeout = Signed<TimeoutBody>;

/// A replica's timeout message: its signed timeout and its highest QC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutMsg {
    /// The signed timeout; `timeout.body.hqc_round == high_qc.round`.
    pub timeout: SignedTimeout,
    /// The sender's highest QC.
    pub high_qc: Qc,
}

/// A timeout certificate: 2f+1 timeouts of one round, and the highest QC they name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tc {
    /// The round that timed out.
    pub round: Round,
    /// The timeouts, from distinct replicas.
    pub timeouts: Vec<SignedTimeout>,
    /// The highest QC among the timeouts (`high_qc.round` = max `hqc_round`).
    pub high_qc: Qc,
}

impl Tc {
    /// The highest `hqc_round` among the timeouts.
    pub fn max_hqc_round(&self) -> Round {
        self.timeouts
            .iter()
            .map(|t| t.body.hqc_round)
            .max()
            .unwrap_or_default()
    }

    /// Whether this TC is valid: between `quorum` and n timeouts of `round` from
    /// distinct replicas with valid signatures, none naming a QC at or above the
    /// round, and a valid `high_qc` whose round is the highest they name.
    pub fn verify(&self, keys: &mut Keyring, quorum: usize) -> bool {
        if self.timeouts.len() < quorum || self.timeouts.len() > keys.replica_keys().len() {
            return false;
        }
        let mut signers = BTreeSet::new();
        let well_formed = self.timeouts.iter().all(|t| {
            t.body.round == self.round && t.body.hqc_round < self.round && signers.insert(t.signer)
        });
        well_formed
            && self.max_hqc_round() == self.high_qc.round
            && self
                .timeouts
                .iter()
                .all(|t| keys.verify(t.signer, &t.body.signing_bytes(), &t.signature))
            && self.high_qc.verify(keys, quorum)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::types::ReplicaId;

    /// A QC on `(block, round)` signed by the first `count` keyrings.
    pub(crate) fn qc_of(keys: &[Keyring], block: Digest, round: u64, count: usize) -> Qc {
        let body = VoteBody {
            block,
            round: View(round),
        };
        Qc {
            block,
            round: View(round),
            votes: keys[..count]
                .iter()
                .map(|k| Signed {
                    signature: k.sign(&body.signing_bytes()),
                    body,
                    signer: k.me(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_qc_needs_a_quorum_of_distinct_valid_votes() {
        let mut keys = Keyring::test_cluster(4, 5);
        let d = Digest::of(&[b"b"]);
        let qc = qc_of(&keys, d, 3, 3);
        assert!(qc.verify(&mut keys[0], 3));
        assert!(!qc_of(&keys, d, 3, 2).verify(&mut keys[0], 3), "too few");
        let mut dup = qc.clone();
        dup.votes[2] = dup.votes[0].clone();
        assert!(!dup.verify(&mut keys[0], 3), "a signer twice");
        let mut wrong = qc.clone();
        wrong.round = View(4);
        assert!(!wrong.verify(&mut keys[0], 3), "votes for another round");
        let mut forged = qc.clone();
        forged.votes[1].signature.0[0] ^= 1;
        assert!(!forged.verify(&mut keys[0], 3));
        let mut unknown = qc.clone();
        unknown.votes[1].signer = ReplicaId(77);
        assert!(!unknown.verify(&mut keys[0], 3));
        assert!(Qc::genesis().verify(&mut keys[0], 3));
        let mut fake_genesis = Qc::genesis();
        fake_genesis.block = d;
        assert!(!fake_genesis.verify(&mut keys[0], 3));
    }

    #[test]
    fn a_tc_names_its_highest_qc() {
        let mut keys = Keyring::test_cluster(4, 5);
        let d = Digest::of(&[b"b"]);
        let high = qc_of(&keys, d, 2, 3);
        let timeout = |k: &Keyring, hqc: u64| {
            let body = TimeoutBody {
                round: View(5),
                hqc_round: View(hqc),
            };
            Signed {
                signature: k.sign(&body.signing_bytes()),
                body,
                signer: k.me(),
            }
        };
        let tc = Tc {
            round: View(5),
            timeouts: vec![
                timeout(&keys[0], 2),
                timeout(&keys[1], 0),
                timeout(&keys[2], 1),
            ],
            high_qc: high.clone(),
        };
        assert!(tc.verify(&mut keys[3], 3));
        let mut lower = tc.clone();
        lower.high_qc = Qc::genesis();
        assert!(!lower.verify(&mut keys[3], 3), "must carry the highest");
        let mut short = tc.clone();
        short.timeouts.pop();
        assert!(!short.verify(&mut keys[3], 3));
        let mut future_qc = tc.clone();
        future_qc.timeouts[0] = timeout(&keys[0], 5);
        assert!(!future_qc.verify(&mut keys[3], 3));
    }
}
