//! Checkpoints and state transfer, shared by every protocol: signed checkpoint votes
//! on the state after a sequence number, the stable certificate a quorum of matching
//! votes makes ([`StableCert`]), the vote collection that builds one
//! ([`CheckpointVotes`]), a replica's own checkpoints kept to serve state transfer
//! ([`OwnCheckpoint`]), and the state a lagging replica fetches: the certified
//! header it checks against a certificate ([`StateSnapshot`]), then the application
//! state chunk by chunk ([`StateChunk`]), each verified before it is kept.
//!
//! What a protocol decides itself: when it votes (after executing every
//! `checkpoint_interval`-th sequence number), what the checkpoint digest binds (PBFT:
//! [`checkpoint_digest`] of the application digest and the exactly-once table; a
//! chained protocol adds the committed block, so a replica that installs the state
//! knows where its log continues), and whom it asks for state.
//!
//! [`CheckpointReplica`] is the one copy of a replica's checkpoint handling: taking
//! its own checkpoint and voting, admitting peers' votes, adopting a stable
//! certificate and noticing that its state diverged from it. A protocol gives it
//! access to its checkpoint state ([`CheckpointParts`]) and a few hooks (how a vote
//! is sent, how the certificate is logged, what it collects once a checkpoint is
//! stable).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::crypto::{Keyring, Signed, SignedBody};
use crate::exactly_once::ClientTables;
use crate::types::{Digest, ReplicaId, Seq, Time};

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
    /// The application's state as a chunk list ([`crate::state_chunks`]), once it
    /// reported it.
    pub snapshot: Option<Bytes>,
}

/// The replica's own checkpoint at `stable` and its chunk list, when that checkpoint
/// may be its log's compaction point ([`crate::Protocol::durable_checkpoint`]): past
/// genesis, executed (`last_executed` reached it), no state transfer installing a
/// state (`installing`), its state reported, and its digest the certified one.
pub(crate) fn compaction_snapshot<'a>(
    stable: &StableCert,
    own_checkpoints: &'a BTreeMap<Seq, OwnCheckpoint>,
    last_executed: Seq,
    installing: bool,
) -> Option<(&'a OwnCheckpoint, Bytes)> {
    let seq = stable.seq;
    if seq == Seq(0) || last_executed < seq || installing {
        return None;
    }
    let own = own_checkpoints.get(&seq)?;
    let snapshot = own.snapshot.clone()?;
    (own.digest == stable.digest).then_some((own, snapshot))
}

/// Drops our own checkpoints below the one before `stable`: the stable checkpoint's
/// state serves new transfers, and the one before serves transfers that began before
/// the checkpoint moved (their chunks must all come from one checkpoint's state). Two
/// states are held at most.
pub(crate) fn retain_own_checkpoints(own: &mut BTreeMap<Seq, OwnCheckpoint>, stable: Seq) {
    let previous = own
        .range(..stable)
        .next_back()
        .map_or(stable, |(seq, _)| *seq);
    *own = own.split_off(&previous);
}

/// A state snapshot handed to the application, awaiting its verdict.
#[derive(Debug)]
pub struct PendingInstall {
    /// The certificate the snapshot matched.
    pub cert: StableCert,
    /// The checkpoint it becomes once installed.
    pub own: OwnCheckpoint,
}

/// The state at a stable checkpoint, for state transfer: everything but the
/// application state, which follows in chunks ([`StateChunk`]), each verified against
/// `app_digest` by the application before it is kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// Certificate for the checkpoint.
    pub cert: StableCert,
    /// The application digest at the checkpoint.
    pub app_digest: Digest,
    /// Exactly-once table at the checkpoint.
    pub tables: ClientTables,
}

impl StateSnapshot {
    /// The header of `own`, vouched for by `cert`, if its state was reported (the
    /// receiver's application, not the header, says when the state is complete).
    pub fn of(cert: &StableCert, own: &OwnCheckpoint) -> Option<StateSnapshot> {
        own.snapshot.as_ref()?;
        Some(StateSnapshot {
            cert: cert.clone(),
            app_digest: own.app_digest,
            tables: own.tables.clone(),
        })
    }

    /// Whether the header is what its certificate vouches for: the certificate is
    /// valid ([`StableCert::verify`]), the exactly-once table respects the client
    /// window, and `expected_digest` — the protocol's checkpoint digest recomputed
    /// from the header's parts — is the certified one. The application checks each
    /// chunk of its state against `app_digest` as it arrives.
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

    /// The pending install of this checkpoint, once its restore began. Its state is
    /// reported again ([`crate::Event::Snapshot`]) once installed.
    pub fn into_pending(self) -> PendingInstall {
        PendingInstall {
            own: OwnCheckpoint {
                digest: self.cert.digest,
                app_digest: self.app_digest,
                tables: self.tables,
                snapshot: None,
            },
            cert: self.cert,
        }
    }
}

/// Asks for chunk `index` of the state at the stable checkpoint `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchChunk {
    /// The checkpoint.
    pub seq: Seq,
    /// The chunk's position, from 0.
    pub index: u64,
}

/// Chunk `index` of the application state at checkpoint `seq`, in answer to a
/// [`FetchChunk`]. Its bytes are the application's and verified by it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateChunk {
    /// The checkpoint.
    pub seq: Seq,
    /// The chunk's position.
    pub index: u64,
    /// The chunk.
    pub chunk: Bytes,
}

impl StateChunk {
    /// Chunk `index` of our own checkpoint `seq` in `own`, if we hold its state and it
    /// has that chunk.
    pub fn of(own: &BTreeMap<Seq, OwnCheckpoint>, fetch: FetchChunk) -> Option<StateChunk> {
        let list = own.get(&fetch.seq)?.snapshot.as_ref()?;
        Some(StateChunk {
            seq: fetch.seq,
            index: fetch.index,
            chunk: crate::state_chunks::chunk_at(list, fetch.index)?,
        })
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

/// What the shared checkpoint logic counts; each protocol adds it to its counter of
/// the same name (see `checkpoint_counters!`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointCount {
    /// A vote signed by another replica than the one that sent it.
    DroppedWrongSender,
    /// A vote or certificate at or below the stable checkpoint, or a repeated vote.
    DroppedDuplicate,
    /// A vote on a sequence number that is not a checkpoint.
    DroppedMalformed,
    /// A vote too far above the stable checkpoint.
    DroppedFuture,
    /// A vote whose signature did not verify.
    DroppedBadSignature,
    /// A certificate that does not prove a stable checkpoint.
    DroppedInvalidCheckpoint,
    /// A snapshot report for a checkpoint above the stable one that we do not hold.
    UnexpectedExecutions,
    /// Our checkpoint digest disagreed with a stable certificate.
    CheckpointMismatches,
    /// A stable checkpoint reached.
    CheckpointsStable,
    /// A state transfer completed.
    StateTransfers,
}

/// A protocol's counters as the shared checkpoint logic sees them.
pub trait CheckpointCounters {
    /// Adds one to the counter `what` names.
    fn count(&mut self, what: CheckpointCount);
}

/// Implements [`CheckpointCounters`] for a protocol's `Counters` (declared with
/// `counters!`), whose fields carry the snake-case names of [`CheckpointCount`].
macro_rules! checkpoint_counters {
    () => {
        impl $crate::checkpoint::CheckpointCounters for Counters {
            fn count(&mut self, what: $crate::checkpoint::CheckpointCount) {
                use $crate::checkpoint::CheckpointCount as C;
                let counter = match what {
                    C::DroppedWrongSender => &mut self.dropped_wrong_sender,
                    C::DroppedDuplicate => &mut self.dropped_duplicate,
                    C::DroppedMalformed => &mut self.dropped_malformed,
                    C::DroppedFuture => &mut self.dropped_future,
                    C::DroppedBadSignature => &mut self.dropped_bad_signature,
                    C::DroppedInvalidCheckpoint => &mut self.dropped_invalid_checkpoint,
                    C::UnexpectedExecutions => &mut self.unexpected_executions,
                    C::CheckpointMismatches => &mut self.checkpoint_mismatches,
                    C::CheckpointsStable => &mut self.checkpoints_stable,
                    C::StateTransfers => &mut self.state_transfers,
                };
                *counter += 1;
            }
        }
    };
}
pub(crate) use checkpoint_counters;

/// A replica's checkpoint state, borrowed at once for the shared checkpoint logic.
pub(crate) struct CheckpointParts<'a, C> {
    /// This replica.
    pub me: ReplicaId,
    /// Matching votes that make a checkpoint stable.
    pub quorum: usize,
    /// The checkpoint interval (checkpoints are its multiples).
    pub interval: u64,
    /// Keys to sign our votes and verify peers'.
    pub keys: &'a mut Keyring,
    /// The stable checkpoint's certificate.
    pub stable: &'a mut StableCert,
    /// Votes above the stable checkpoint.
    pub votes: &'a mut CheckpointVotes,
    /// Our own checkpoints at and above the stable one.
    pub own: &'a mut BTreeMap<Seq, OwnCheckpoint>,
    /// Whether our state disagreed with a stable certificate (until a transfer).
    pub diverged: &'a mut bool,
    /// The protocol's counters.
    pub counters: &'a mut C,
}

/// The checkpoint handling every protocol shares: own checkpoints and votes, peers'
/// votes and certificates, and the move to a new stable checkpoint. A protocol
/// implements the required methods; the provided ones are the shared logic.
pub(crate) trait CheckpointReplica {
    /// The protocol's action type.
    type Action;
    /// The protocol's counters.
    type Counters: CheckpointCounters;

    /// The checkpoint state, borrowed at once.
    fn checkpoint_parts(&mut self) -> CheckpointParts<'_, Self::Counters>;
    /// The highest sequence number delivered to the application.
    fn last_delivered(&self) -> Seq;
    /// How far (in sequence numbers) above the stable checkpoint a peer's vote is
    /// still recorded.
    fn vote_horizon(&self) -> u64;
    /// Sends our vote to every peer.
    fn broadcast_vote(&mut self, vote: SignedCheckpoint, out: &mut Vec<Self::Action>);
    /// Logs a new stable certificate (before any later message leaves).
    fn persist_stable(&mut self, cert: &StableCert, out: &mut Vec<Self::Action>);
    /// Drops what the stable checkpoint made unnecessary.
    fn collect_stable_garbage(&mut self);
    /// Starts state transfer's grace period, unless one is under way.
    fn start_transfer(&mut self, now: Time, out: &mut Vec<Self::Action>);
    /// What the protocol does once a new checkpoint is stable, after garbage
    /// collection (PBFT: the window may have room for a proposal).
    fn after_stable(&mut self, now: Time, out: &mut Vec<Self::Action>);

    /// Records our checkpoint `own` after executing `seq` (fetching state if it
    /// contradicts the stable certificate at `seq`) and, above the stable
    /// checkpoint, broadcasts a signed vote for it.
    fn record_own_checkpoint(
        &mut self,
        now: Time,
        seq: Seq,
        own: OwnCheckpoint,
        out: &mut Vec<Self::Action>,
    ) {
        let digest = own.digest;
        let p = self.checkpoint_parts();
        p.own.insert(seq, own);
        let diverged = p.stable.seq == seq && p.stable.digest != digest;
        if diverged {
            self.note_divergence(seq);
            self.start_transfer(now, out);
        }
        let p = self.checkpoint_parts();
        if seq <= p.stable.seq {
            return;
        }
        let body = CheckpointBody { seq, digest };
        let vote = Signed {
            signature: p.keys.sign(&body.signing_bytes()),
            body,
            signer: p.me,
        };
        self.broadcast_vote(vote.clone(), out);
        self.add_checkpoint_vote(now, vote, out);
    }

    /// The application's state at one of our checkpoints, for serving state transfer.
    fn on_snapshot(&mut self, seq: Seq, snapshot: Bytes) {
        let p = self.checkpoint_parts();
        match p.own.get_mut(&seq) {
            Some(own) => own.snapshot = Some(snapshot),
            None if seq > p.stable.seq => p.counters.count(CheckpointCount::UnexpectedExecutions),
            None => {}
        }
    }

    /// Our checkpoint digest at `seq` differs from the stable certificate's: our state
    /// diverged, and only a state transfer repairs it.
    fn note_divergence(&mut self, seq: Seq) {
        let p = self.checkpoint_parts();
        p.counters.count(CheckpointCount::CheckpointMismatches);
        *p.diverged = true;
        tracing::error!(replica = %p.me, %seq,
            "our checkpoint digest differs from the stable certificate: state diverged, fetching state");
    }

    /// A checkpoint vote from peer `from`: recorded if it is its own, above the
    /// stable checkpoint, at a checkpoint within the vote horizon, and signed.
    fn on_checkpoint(
        &mut self,
        now: Time,
        from: ReplicaId,
        vote: SignedCheckpoint,
        out: &mut Vec<Self::Action>,
    ) {
        let horizon = self.vote_horizon();
        let p = self.checkpoint_parts();
        let seq = vote.body.seq;
        let dropped = if vote.signer != from {
            Some(CheckpointCount::DroppedWrongSender)
        } else if seq <= p.stable.seq {
            Some(CheckpointCount::DroppedDuplicate)
        } else if !seq.is_checkpoint(p.interval) {
            Some(CheckpointCount::DroppedMalformed)
        } else if seq.0 > p.stable.seq.0.saturating_add(horizon) {
            Some(CheckpointCount::DroppedFuture)
        } else if !p
            .keys
            .verify(from, &vote.body.signing_bytes(), &vote.signature)
        {
            Some(CheckpointCount::DroppedBadSignature)
        } else {
            None
        };
        match dropped {
            Some(what) => p.counters.count(what),
            None => self.add_checkpoint_vote(now, vote, out),
        }
    }

    /// Records a verified vote (ours or a peer's); a quorum makes the checkpoint stable.
    fn add_checkpoint_vote(
        &mut self,
        now: Time,
        vote: SignedCheckpoint,
        out: &mut Vec<Self::Action>,
    ) {
        let p = self.checkpoint_parts();
        match p.votes.add(vote, p.quorum) {
            VoteOutcome::Duplicate => p.counters.count(CheckpointCount::DroppedDuplicate),
            VoteOutcome::Recorded => {}
            VoteOutcome::Stable(cert) => self.make_stable(now, cert, out),
        }
    }

    /// A stable certificate sent by a peer that saw we are behind.
    fn on_checkpoint_cert(&mut self, now: Time, cert: StableCert, out: &mut Vec<Self::Action>) {
        let p = self.checkpoint_parts();
        if cert.seq <= p.stable.seq {
            p.counters.count(CheckpointCount::DroppedDuplicate);
            return;
        }
        if !cert.verify(p.keys, p.quorum, p.interval) {
            p.counters.count(CheckpointCount::DroppedInvalidCheckpoint);
            return;
        }
        self.make_stable(now, cert, out);
    }

    /// Moves the stable checkpoint to a (validated) certificate above it, logs it and
    /// collects garbage; starts state transfer if we are behind it or diverged.
    fn make_stable(&mut self, now: Time, cert: StableCert, out: &mut Vec<Self::Action>) {
        let p = self.checkpoint_parts();
        if cert.seq <= p.stable.seq {
            return;
        }
        let seq = cert.seq;
        if p.own.get(&seq).is_some_and(|own| own.digest != cert.digest) {
            self.note_divergence(seq);
        }
        self.persist_stable(&cert, out);
        let p = self.checkpoint_parts();
        *p.stable = cert;
        p.counters.count(CheckpointCount::CheckpointsStable);
        self.collect_stable_garbage();
        if self.last_delivered() < seq || *self.checkpoint_parts().diverged {
            self.start_transfer(now, out);
        }
        self.after_stable(now, out);
    }
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
