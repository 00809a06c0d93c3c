//! Checkpoints: signed votes on the state digest every K sequence numbers, stable
//! certificates (a quorum of matching votes), the low watermark, and garbage collection
//! of everything the stable checkpoint makes unnecessary. The votes, certificates and
//! divergence handling are the shared [`CheckpointReplica`]; PBFT supplies its
//! checkpoint digest, its vote horizon (four windows) and what it collects.

use std::collections::BTreeSet;

use crate::checkpoint::{
    CheckpointParts, CheckpointReplica, OwnCheckpoint, retain_own_checkpoints,
};
use crate::exactly_once::ClientTables;
use crate::pbft::Pbft;
use crate::pbft::counters::Counters;
use crate::pbft::durable::PbftRecord;
use crate::pbft::message::{Message, SignedCheckpoint, StableCert, checkpoint_digest};
use crate::pbft::replica::PbftAction;
use crate::state_transfer::StateTransfer;
use crate::types::{Digest, Seq, Time};

impl CheckpointReplica for Pbft {
    type Action = PbftAction;
    type Counters = Counters;

    fn checkpoint_parts(&mut self) -> CheckpointParts<'_, Counters> {
        CheckpointParts {
            me: self.me,
            quorum: self.quorum,
            interval: self.cfg.checkpoint_interval,
            keys: &mut self.keys,
            stable: &mut self.stable,
            votes: &mut self.checkpoint_votes,
            own: &mut self.own_checkpoints,
            diverged: &mut self.diverged,
            counters: &mut self.counters,
        }
    }

    fn last_delivered(&self) -> Seq {
        self.last_delivered
    }

    /// Four windows above the stable checkpoint.
    fn vote_horizon(&self) -> u64 {
        self.cfg.window.saturating_mul(4)
    }

    fn broadcast_vote(&mut self, vote: SignedCheckpoint, out: &mut Vec<PbftAction>) {
        self.broadcast(Message::Checkpoint(vote), out);
    }

    fn persist_stable(&mut self, cert: &StableCert, out: &mut Vec<PbftAction>) {
        self.persist(PbftRecord::Stable(cert.clone()), out);
    }

    fn collect_stable_garbage(&mut self) {
        self.collect_garbage();
    }

    fn start_transfer(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        self.arm_transfer(now, out);
    }

    fn after_stable(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        self.try_propose(now, false, out);
    }
}

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
        let own = OwnCheckpoint {
            digest: checkpoint_digest(seq, &app_digest, &tables.digest()),
            app_digest,
            tables,
            snapshot: None,
        };
        self.record_own_checkpoint(now, seq, own, out);
    }

    /// Whether `cert` proves a stable checkpoint ([`StableCert::verify`]).
    pub(crate) fn validate_cert(&mut self, cert: &StableCert) -> bool {
        cert.verify(&mut self.keys, self.quorum, self.cfg.checkpoint_interval)
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
        retain_own_checkpoints(&mut self.own_checkpoints, stable);
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
