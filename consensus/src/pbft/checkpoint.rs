//! Checkpoints: signed votes on the state digest every K sequence numbers, stable
//! certificates (a quorum of matching votes), the low watermark, and garbage collection
//! of everything the stable checkpoint makes unnecessary.

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::checkpoint::{OwnCheckpoint, VoteOutcome};
use crate::exactly_once::ClientTables;
use crate::pbft::Pbft;
use crate::pbft::durable::PbftRecord;
use crate::pbft::message::{
    CheckpointBody, Message, Signed, SignedBody, SignedCheckpoint, StableCert, checkpoint_digest,
};
use crate::pbft::replica::PbftAction;
use crate::types::{Digest, ReplicaId, Seq, Time};

impl Pbft {
    /// Records our checkpoint after executing `seq` and broadcasts a signed vote.
    pub(crate) fn take_checkpoint(
        &mut self,
        now: Time,
        seq: Seq,
        app_digest: Digest,
        tables: ClientTables,
        out: &mut Vec<PbftAction>,
    ) {
        let digest = checkpoint_digest(seq, &app_digest, &tables.digest());
        self.own_checkpoints.insert(
            seq,
            OwnCheckpoint {
                digest,
                app_digest,
                tables,
                snapshot: None,
            },
        );
        if self.stable.seq == seq && self.stable.digest != digest {
            self.note_divergence(seq);
            self.arm_transfer(now, out);
        }
        if seq <= self.stable.seq {
            return;
        }
        let body = CheckpointBody { seq, digest };
        let vote = Signed {
            signature: self.keys.sign(&body.signing_bytes()),
            body,
            signer: self.me,
        };
        self.broadcast(Message::Checkpoint(vote.clone()), out);
        self.add_checkpoint_vote(now, vote, out);
    }

    /// The application's state at one of our checkpoints, for serving state transfer.
    pub(crate) fn on_snapshot(&mut self, seq: Seq, snapshot: Bytes) {
        match self.own_checkpoints.get_mut(&seq) {
            Some(own) => own.snapshot = Some(snapshot),
            None => self.counters.unexpected_executions += u64::from(seq > self.stable.seq),
        }
    }

    fn note_divergence(&mut self, seq: Seq) {
        self.counters.checkpoint_mismatches += 1;
        self.diverged = true;
        tracing::error!(replica = %self.me, %seq,
            "our checkpoint digest differs from the stable certificate: state diverged, fetching state");
    }

    /// A checkpoint vote from a peer.
    pub(crate) fn on_checkpoint(
        &mut self,
        now: Time,
        from: ReplicaId,
        vote: SignedCheckpoint,
        out: &mut Vec<PbftAction>,
    ) {
        let seq = vote.body.seq;
        if vote.signer != from {
            self.counters.dropped_wrong_sender += 1;
            return;
        }
        if seq <= self.stable.seq {
            self.counters.dropped_duplicate += 1;
            return;
        }
        if !seq.is_checkpoint(self.cfg.checkpoint_interval) {
            self.counters.dropped_malformed += 1;
            return;
        }
        if seq.0
            > self
                .stable
                .seq
                .0
                .saturating_add(self.cfg.window.saturating_mul(4))
        {
            self.counters.dropped_future += 1;
            return;
        }
        if !self
            .keys
            .verify(from, &vote.body.signing_bytes(), &vote.signature)
        {
            self.counters.dropped_bad_signature += 1;
            return;
        }
        self.add_checkpoint_vote(now, vote, out);
    }

    fn add_checkpoint_vote(
        &mut self,
        now: Time,
        vote: SignedCheckpoint,
        out: &mut Vec<PbftAction>,
    ) {
        match self.checkpoint_votes.add(vote, self.quorum) {
            VoteOutcome::Duplicate => self.counters.dropped_duplicate += 1,
            VoteOutcome::Recorded => {}
            VoteOutcome::Stable(cert) => self.make_stable(now, cert, out),
        }
    }

    /// A stable certificate sent by a peer that saw we are behind.
    pub(crate) fn on_checkpoint_cert(
        &mut self,
        now: Time,
        cert: StableCert,
        out: &mut Vec<PbftAction>,
    ) {
        if cert.seq <= self.stable.seq {
            self.counters.dropped_duplicate += 1;
            return;
        }
        if !self.validate_cert(&cert) {
            self.counters.dropped_invalid_checkpoint += 1;
            return;
        }
        self.make_stable(now, cert, out);
    }

    /// Whether `cert` proves a stable checkpoint ([`StableCert::verify`]).
    pub(crate) fn validate_cert(&mut self, cert: &StableCert) -> bool {
        cert.verify(&mut self.keys, self.quorum, self.cfg.checkpoint_interval)
    }

    /// Moves the low watermark to a (validated) stable certificate and collects
    /// garbage; starts state transfer if we are behind it.
    pub(crate) fn make_stable(&mut self, now: Time, cert: StableCert, out: &mut Vec<PbftAction>) {
        if cert.seq <= self.stable.seq {
            return;
        }
        let seq = cert.seq;
        if let Some(own) = self.own_checkpoints.get(&seq)
            && own.digest != cert.digest
        {
            self.note_divergence(seq);
        }
        self.persist(PbftRecord::Stable(cert.clone()), out);
        self.stable = cert;
        self.counters.checkpoints_stable += 1;
        self.collect_garbage();
        if self.last_delivered < seq || self.diverged {
            self.arm_transfer(now, out);
        }
        self.try_propose(now, false, out);
    }

    /// Drops log state the stable checkpoint made unnecessary. Slots and committed
    /// batches above `min(stable, last_delivered)` stay: a replica slightly behind can
    /// still finish them through the normal case.
    pub(crate) fn collect_garbage(&mut self) {
        let stable = self.stable.seq;
        let keep_log = stable.min(self.last_delivered).next();
        let keep_claims = stable.next();
        self.slots = self.slots.split_off(&keep_log);
        self.committed = self.committed.split_off(&keep_log);
        self.committed_claims = self.committed_claims.split_off(&keep_claims);
        self.prepared_claims = self.prepared_claims.split_off(&keep_claims);
        self.pre_prepared_claims = self.pre_prepared_claims.split_off(&keep_claims);
        self.checkpoint_votes.prune_through(stable);
        self.own_checkpoints = self.own_checkpoints.split_off(&stable);
        self.prune_batches();
        debug_assert!(self.slots.keys().all(|s| *s >= keep_log));
    }

    /// Drops batches nothing pins (issue 10 item 3). A batch stays while it is the
    /// current view's proposal at some sequence number, committed and not yet
    /// collected, our prepared claim, or our newest pre-prepared claim for its sequence
    /// number; older pre-prepared claims keep their digest (the Q set carries only
    /// digests) but not their batch — a new view that re-proposes one is fetched by
    /// digest. So batches held are at most 4 × window × `max_batch_bytes` whatever
    /// the views a faulty primary led (before: `MAX_CLAIMS_PER_SEQ` + 3 per sequence
    /// number).
    pub(crate) fn prune_batches(&mut self) {
        let mut referenced: BTreeSet<Digest> = BTreeSet::new();
        referenced.insert(crate::request::null_digest());
        referenced.extend(self.slots.values().filter_map(|s| s.digest));
        referenced.extend(self.committed.values().map(|c| c.digest));
        referenced.extend(self.prepared_claims.values().map(|(_, d)| *d));
        referenced.extend(
            self.pre_prepared_claims
                .values()
                .filter_map(|m| m.iter().max_by_key(|(d, v)| (**v, **d)).map(|(d, _)| *d)),
        );
        self.wanted_batches.retain(|d| referenced.contains(d));
        self.batches.retain(|d, _| referenced.contains(d));
    }
}
