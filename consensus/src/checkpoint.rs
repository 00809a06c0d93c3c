//! Checkpoints and state transfer, shared by every protocol: signed checkpoint votes
//! on the state after a sequence number, the stable certificate a quorum of matching
//! votes makes ([`StableCert`]), the vote collection that builds one
//! ([`CheckpointVotes`]), a replica's own checkpoints kept to serve state transfer
//! ([`OwnCheckpoint`]), and the state snapshot a lagging replica fetches and checks
//! against a certificate before installing it ([`StateSnapshot`]).
//!
//! What a protocol decides itself: when it votes (after executing every
//! `checkpoint_interval`-th sequence number), what the checkpoint digest binds (PBFT:
//! [`checkpoint_digest`] of the application digest and the exactly-once table; a
//! chained protocol adds the committed block, so a replica that installs the state
//! knows where its log continues), and whom it asks for state.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::crypto::{Keyring, Signed, SignedBody};
use crate::exactly_once::ClientTables;
use crate::types::{Digest, ReplicaId, Seq};

/// A checkpoint vote: the replica's checkpoint digest after executing `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBody {
    /// The checkpoint's sequence number.
    pub seq: Seq,
    /// Digest over the application digest and the client tables at `seq` (and what
    /// else the protocol binds, see the module docs).
    pub digest: Digest,
}

impl SignedBody for CheckpointBody {
    const DOMAIN: &'static [u8] = b"tandem-checkpoint-v1";
}

/// A signed checkpoint vote.
pub type SignedCheckpoint = Signed<CheckpointBody>;

/// Proof that a checkpoint is stable: a quorum of matching signed checkpoint votes.
/// Sequence 0 (genesis) is stable without proof.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StableCert {
    /// The checkpoint's sequence number.
    pub seq: Seq,
    /// The checkpoint digest.
    pub digest: Digest,
    /// The quorum of votes, from distinct signers.
    pub votes: Vec<SignedCheckpoint>,
}

impl StableCert {
    /// Whether the certificate proves a stable checkpoint: genesis, or at least
    /// `quorum` (and at most n) valid votes from distinct replicas of `keys` on the
    /// same checkpoint sequence number (a multiple of `interval`) and digest.
    pub fn verify(&self, keys: &mut Keyring, quorum: usize, interval: u64) -> bool {
        if self.seq == Seq(0) {
            return self.votes.is_empty() && self.digest == Digest::default();
        }
        if !self.seq.is_checkpoint(interval)
            || self.votes.len() < quorum
            || self.votes.len() > keys.replica_keys().len()
        {
            return false;
        }
        let mut signers = BTreeSet::new();
        self.votes.iter().all(|vote| {
            vote.body.seq == self.seq
                && vote.body.digest == self.digest
                && signers.insert(vote.signer)
                && keys.verify(vote.signer, &vote.body.signing_bytes(), &vote.signature)
        })
    }

    /// The replicas that signed it: they hold the checkpoint's state.
    pub fn signers(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        self.votes.iter().map(|v| v.signer)
    }
}

/// What adding a vote to [`CheckpointVotes`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoteOutcome {
    /// The signer already voted at this sequence number: ignored.
    Duplicate,
    /// Recorded; no quorum yet.
    Recorded,
    /// Recorded, and a quorum now matches: the certificate.
    Stable(StableCert),
}

/// Checkpoint votes above the stable checkpoint, by sequence number and signer (one
/// vote per signer and sequence number). Its size is bounded by the protocol, which
/// only adds votes within its window above the stable checkpoint and prunes below it.
#[derive(Clone, Debug, Default)]
pub struct CheckpointVotes {
    votes: BTreeMap<Seq, BTreeMap<ReplicaId, SignedCheckpoint>>,
}

impl CheckpointVotes {
    /// Records a vote (its signature already checked); a certificate once `quorum`
    /// votes at its sequence number carry its digest.
    pub fn add(&mut self, vote: SignedCheckpoint, quorum: usize) -> VoteOutcome {
        let CheckpointBody { seq, digest } = vote.body;
        let votes = self.votes.entry(seq).or_default();
        if votes.contains_key(&vote.signer) {
            return VoteOutcome::Duplicate;
        }
        votes.insert(vote.signer, vote);
        let matching: Vec<SignedCheckpoint> = votes
            .values()
            .filter(|v| v.body.digest == digest)
            .cloned()
            .collect();
        if matching.len() >= quorum {
            VoteOutcome::Stable(StableCert {
                seq,
                digest,
                votes: matching,
            })
        } else {
            VoteOutcome::Recorded
        }
    }

    /// Forgets every vote at or below `stable`.
    pub fn prune_through(&mut self, stable: Seq) {
        self.votes = self.votes.split_off(&stable.next());
    }

    /// The sequence numbers votes are held for.
    pub fn seqs(&self) -> impl Iterator<Item = Seq> + '_ {
        self.votes.keys().copied()
    }
}

/// A replica's own checkpoint, kept to serve state transfer.
#[derive(Debug, Clone)]
pub struct OwnCheckpoint {
    /// The checkpoint digest it voted for.
    pub digest: Digest,
    /// The application digest after the checkpoint's sequence number.
    pub app_digest: Digest,
    /// The exactly-once table as of the checkpoint.
    pub tables: ClientTables,
    /// The application's serialised state, once it reported it.
    pub snapshot: Option<Bytes>,
}

/// A state snapshot handed to the application, awaiting its verdict.
#[derive(Debug)]
pub struct PendingInstall {
    /// The certificate the snapshot matched.
    pub cert: StableCert,
    /// The checkpoint it becomes once installed.
    pub own: OwnCheckpoint,
}

/// The state at a stable checkpoint, for state transfer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// Certificate for the checkpoint.
    pub cert: StableCert,
    /// The application digest at the checkpoint.
    pub app_digest: Digest,
    /// Exactly-once table at the checkpoint.
    pub tables: ClientTables,
    /// The application's serialised state.
    pub snapshot: Bytes,
}

impl StateSnapshot {
    /// The snapshot of `own`, vouched for by `cert`, if its state was serialised.
    pub fn of(cert: &StableCert, own: &OwnCheckpoint) -> Option<StateSnapshot> {
        Some(StateSnapshot {
            cert: cert.clone(),
            app_digest: own.app_digest,
            tables: own.tables.clone(),
            snapshot: own.snapshot.clone()?,
        })
    }

    /// Whether the snapshot is what its certificate vouches for: the certificate is
    /// valid ([`StableCert::verify`]), the exactly-once table respects the client
    /// window, and `expected_digest` — the protocol's checkpoint digest recomputed
    /// from the snapshot's parts — is the certified one. The application checks its
    /// own state against `app_digest` when it installs it.
    pub fn verify(
        &self,
        keys: &mut Keyring,
        quorum: usize,
        interval: u64,
        client_window: u64,
        expected_digest: Digest,
    ) -> bool {
        self.cert.verify(keys, quorum, interval)
            && self.tables.is_well_formed(client_window)
            && expected_digest == self.cert.digest
    }

    /// The pending install of this snapshot, once the application was asked to
    /// install it.
    pub fn into_pending(self) -> PendingInstall {
        PendingInstall {
            own: OwnCheckpoint {
                digest: self.cert.digest,
                app_digest: self.app_digest,
                tables: self.tables,
                snapshot: Some(self.snapshot),
            },
            cert: self.cert,
        }
    }
}

/// Checkpoint digest: binds the sequence number, the application digest and the
/// digest of the exactly-once table.
pub fn checkpoint_digest(seq: Seq, app_digest: &Digest, tables_digest: &Digest) -> Digest {
    Digest::of(&[
        b"tandem-checkpoint-digest-v1",
        &seq.0.to_le_bytes(),
        &app_digest.0,
        &tables_digest.0,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(keys: &Keyring, seq: u64, digest: Digest) -> SignedCheckpoint {
        let body = CheckpointBody {
            seq: Seq(seq),
            digest,
        };
        Signed {
            signature: keys.sign(&body.signing_bytes()),
            body,
            signer: keys.me(),
        }
    }

    #[test]
    fn a_quorum_of_matching_votes_makes_a_certificate_that_verifies() {
        let mut keys = Keyring::test_cluster(4, 3);
        let d = Digest::of(&[b"state"]);
        let other = Digest::of(&[b"other"]);
        let mut votes = CheckpointVotes::default();
        assert_eq!(votes.add(vote(&keys[0], 8, d), 3), VoteOutcome::Recorded);
        assert_eq!(votes.add(vote(&keys[0], 8, d), 3), VoteOutcome::Duplicate);
        assert_eq!(
            votes.add(vote(&keys[1], 8, other), 3),
            VoteOutcome::Recorded
        );
        assert_eq!(votes.add(vote(&keys[2], 8, d), 3), VoteOutcome::Recorded);
        let VoteOutcome::Stable(cert) = votes.add(vote(&keys[3], 8, d), 3) else {
            panic!("three matching votes are a quorum");
        };
        assert_eq!(cert.votes.len(), 3);
        assert!(cert.verify(&mut keys[1], 3, 8));
        assert!(
            !cert.verify(&mut keys[1], 3, 16),
            "not a checkpoint of interval 16"
        );
        let mut forged = cert.clone();
        forged.votes[1] = forged.votes[0].clone();
        assert!(!forged.verify(&mut keys[1], 3, 8), "a signer counted twice");
        let mut forged = cert.clone();
        forged.digest = other;
        assert!(!forged.verify(&mut keys[1], 3, 8));
        assert!(StableCert::default().verify(&mut keys[1], 3, 8), "genesis");
        votes.prune_through(Seq(8));
        assert_eq!(votes.seqs().count(), 0);
    }
}
