//! Recovery: how a replica that lost messages, missed a view, or fell behind the stable
//! checkpoint catches up without a view change.
//!
//! Every replica broadcasts a small status message periodically. A peer that sees the
//! sender is behind answers with what it lacks, bounded per status, and sends batches
//! and votes only if the sender delivered nothing for two status intervals (a peer
//! that progresses is slow, not missing anything):
//! - an older view: the new-view message that started ours (self-certifying);
//! - during a view change: our own view change, so the new primary gathers a quorum;
//! - an older stable checkpoint: our stable certificate;
//! - fewer batches delivered: committed batches, accepted once f+1 peers vouch for the
//!   same digest;
//! - the same view: our own pre-prepare (as primary), prepare and commit for slots the
//!   sender has not voted on.
//!
//! Everything sent in answer to one peer's status or fetch messages is charged to that
//! peer's resend budget (`resend_budget_bytes` per status interval, issue 10 item 4),
//! so no number of forged status or fetch messages makes a replica send more.
//!
//! A replica behind the stable checkpoint fetches the checkpoint's header from a peer
//! that signed the certificate, checks it against the certificate, then fetches the
//! application state chunk by chunk, each verified by the application against the
//! certified digest before it is kept (the shared `state_transfer.rs`; PBFT supplies
//! its timer, digest and what it resets). Every chunk served is charged to the
//! requester's resend budget.

use std::sync::Arc;

use crate::checkpoint::{FetchChunk, PendingInstall, StableCert, StateChunk};
use crate::exactly_once::is_delivered;
use crate::pbft::Pbft;
use crate::pbft::message::{
    CommittedBatch, Message, PbftTimer, PrePrepare, StateSnapshot, Status, Vote, checkpoint_digest,
};
use crate::pbft::replica::{PbftAction, PeerProgress, RETRANSMIT_LIMIT};
use crate::protocol::Action;
use crate::request::Batch;
use crate::state_chunks::RestoreStep;
use crate::state_transfer::{StateTransfer, Transfer, TransferParams, take_installed};
use crate::types::{Digest, ReplicaId, Seq, Time};

impl Pbft {
    pub(crate) fn on_status_timer(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        let status = Status {
            view: self.view,
            view_active: self.view_active,
            stable: self.stable.seq,
            last_delivered: self.last_delivered,
        };
        self.broadcast(Message::Status(status), out);
        let wanted: Vec<Digest> = self
            .wanted_batches
            .iter()
            .take(RETRANSMIT_LIMIT)
            .copied()
            .collect();
        for d in wanted {
            self.broadcast(Message::FetchBatch(d), out);
        }
        self.set_timer(PbftTimer::Status, now + self.cfg.status_interval, out);
    }

    pub(crate) fn on_status(
        &mut self,
        now: Time,
        from: ReplicaId,
        st: Status,
        out: &mut Vec<PbftAction>,
    ) {
        self.answer_view_lag(now, from, &st, out);
        if st.stable < self.stable.seq
            && self.resend(now, from, Message::CheckpointCert(self.stable.clone()), out)
        {
            self.counters.retransmissions += 1;
        }
        // Resending to a peer that progresses on its own multiplies the traffic of an
        // overloaded link until it drops frames: under overload this once turned a
        // slow backup into a cascade of view changes.
        let patience = self.cfg.status_interval * 2;
        let progress = self.peers.entry(from).or_insert(PeerProgress {
            delivered: st.last_delivered,
            since: now,
            resent_to: None,
        });
        if !progress.wants_resend(now, st.last_delivered, patience) {
            progress.resent_to = None;
            return;
        }
        let mut budget = RETRANSMIT_LIMIT;
        let mut resent_to = None;
        if st.last_delivered < self.last_delivered {
            (budget, resent_to) = self.resend_committed(now, from, st.last_delivered, budget, out);
        }
        if st.view == self.view && st.view_active && self.view_active {
            let votes_to = self.resend_votes(now, from, st.last_delivered, budget, out);
            resent_to = resent_to.max(votes_to);
        }
        if let Some(progress) = self.peers.get_mut(&from) {
            progress.resent_to = resent_to;
        }
    }

    /// Sends a peer in an older view our new view; during a view change, our view
    /// change (so a new primary that lost it still gathers a quorum) and, when the peer
    /// is still in the view change of an older view we also asked for, the view change
    /// we sent for that view: we may have timed out of it after a quorum asked for it
    /// while its new primary never got ours (lost in a partition), and then the peers
    /// left in that view wait for a quorum that never comes while we wait in the next
    /// view for them (found by `tandem sim --faults mixed --seed 110 --durability wal`).
    fn answer_view_lag(
        &mut self,
        now: Time,
        from: ReplicaId,
        st: &Status,
        out: &mut Vec<PbftAction>,
    ) {
        let behind = st.view < self.view || (st.view == self.view && !st.view_active);
        if !behind {
            return;
        }
        if self.view_active {
            if let Some(nv) = &self.new_view_msg {
                let msg = Message::NewView(Arc::clone(nv));
                if self.resend(now, from, msg, out) {
                    self.counters.retransmissions += 1;
                }
            }
            return;
        }
        let mut ours = Vec::new();
        if st.view < self.view
            && !st.view_active
            && let Some(vc) = self.own_view_changes.get(&st.view)
        {
            ours.push(vc.clone());
        }
        if let Some(vc) = self
            .view_changes
            .get(&self.view)
            .and_then(|m| m.get(&self.me))
        {
            ours.push(vc.clone());
        }
        for vc in ours {
            if self.resend(now, from, Message::ViewChange(Box::new(vc)), out) {
                self.counters.retransmissions += 1;
            }
        }
    }

    /// Committed batches above `their_last` that we delivered at least one status
    /// interval ago (younger ones are probably still on their way).
    fn resend_committed(
        &mut self,
        now: Time,
        to: ReplicaId,
        their_last: Seq,
        mut budget: usize,
        out: &mut Vec<PbftAction>,
    ) -> (usize, Option<Seq>) {
        let interval = self.cfg.status_interval;
        let batches: Vec<CommittedBatch> = self
            .committed
            .range(their_last.next()..)
            .filter(|(_, e)| e.delivered_at.is_some_and(|t| now >= t + interval))
            .take(budget)
            .map(|(seq, e)| CommittedBatch {
                seq: *seq,
                digest: e.digest,
                batch: e.batch.clone(),
            })
            .collect();
        let mut resent_to = None;
        for c in batches {
            let seq = c.seq;
            if !self.resend(now, to, Message::Committed(c), out) {
                return (0, resent_to);
            }
            resent_to = Some(seq);
            self.counters.retransmissions += 1;
            budget -= 1;
        }
        (budget, resent_to)
    }

    /// Our own normal-case messages for slots the peer has not voted on, older than a
    /// status interval.
    fn resend_votes(
        &mut self,
        now: Time,
        to: ReplicaId,
        their_last: Seq,
        mut budget: usize,
        out: &mut Vec<PbftAction>,
    ) -> Option<Seq> {
        let interval = self.cfg.status_interval;
        let primary = self.is_primary();
        let mut msgs = Vec::new();
        let mut resent_to = None;
        for (seq, slot) in self.slots.range(their_last.next()..) {
            if budget == 0 {
                break;
            }
            let Some(digest) = slot.digest else { continue };
            if slot.accepted_at.is_none_or(|t| now < t + interval) {
                continue;
            }
            let vote = Vote {
                view: self.view,
                seq: *seq,
                digest,
            };
            let before = msgs.len();
            let their_prepare = slot.prepares.contains_key(&to);
            let their_commit = slot.commits.contains_key(&to);
            if primary && !their_prepare && !their_commit {
                if let Some(batch) = self.batches.get(&digest) {
                    msgs.push(Message::PrePrepare(PrePrepare {
                        view: self.view,
                        seq: *seq,
                        digest,
                        batch: batch.clone(),
                    }));
                }
            } else if !primary && slot.prepares.contains_key(&self.me) && !their_commit {
                msgs.push(Message::Prepare(vote));
            }
            if slot.prepared && !their_commit {
                msgs.push(Message::Commit(vote));
            }
            if msgs.len() > before {
                resent_to = Some(*seq);
            }
            budget -= 1;
        }
        for msg in msgs {
            if !self.resend(now, to, msg, out) {
                break;
            }
            self.counters.retransmissions += 1;
        }
        resent_to
    }

    /// Answers a batch fetch, within the peer's resend budget.
    pub(crate) fn on_fetch_batch(
        &mut self,
        now: Time,
        from: ReplicaId,
        digest: Digest,
        out: &mut Vec<PbftAction>,
    ) {
        if let Some(batch) = self.batches.get(&digest) {
            let msg = Message::BatchData(batch.clone());
            self.resend(now, from, msg, out);
        }
    }

    pub(crate) fn on_batch_data(
        &mut self,
        now: Time,
        batch: Arc<Batch>,
        out: &mut Vec<PbftAction>,
    ) {
        if !self.batch_within_limits(&batch) {
            self.counters.dropped_oversize_batch += 1;
            return;
        }
        let digest = batch.digest();
        if !self.wanted_batches.remove(&digest) {
            self.counters.dropped_duplicate += 1;
            return;
        }
        self.batches.insert(digest, batch);
        let waiting: Vec<Seq> = self
            .slots
            .iter()
            .filter(|(_, s)| s.digest == Some(digest))
            .map(|(seq, _)| *seq)
            .collect();
        for seq in waiting {
            self.send_prepare(now, seq, digest, out);
        }
        self.try_build_new_view(now, out);
    }

    /// A committed batch vouched for by a peer; committed here once f+1 agree.
    pub(crate) fn on_committed(
        &mut self,
        now: Time,
        from: ReplicaId,
        c: CommittedBatch,
        out: &mut Vec<PbftAction>,
    ) {
        if c.seq <= self.last_delivered {
            self.counters.dropped_duplicate += 1;
            return;
        }
        if c.seq > self.high_watermark() {
            self.counters.dropped_out_of_window += 1;
            return;
        }
        if !self.batch_within_limits(&c.batch) {
            self.counters.dropped_oversize_batch += 1;
            return;
        }
        if c.batch.digest() != c.digest {
            self.counters.dropped_bad_digest += 1;
            return;
        }
        let claims = self.committed_claims.entry(c.seq).or_default();
        if claims.contains_key(&from) {
            self.counters.dropped_duplicate += 1;
            return;
        }
        claims.insert(from, c.digest);
        let vouching = claims.values().filter(|d| **d == c.digest).count();
        if vouching >= self.weak {
            self.batches.insert(c.digest, c.batch);
            self.commit_locally(now, c.seq, c.digest, out);
        }
    }

    /// Answers a state fetch with our stable checkpoint's header (the application
    /// state follows in chunks the peer asks for), within the peer's resend budget.
    pub(crate) fn on_fetch_state(
        &mut self,
        now: Time,
        from: ReplicaId,
        seq: Seq,
        out: &mut Vec<PbftAction>,
    ) {
        if self.stable.seq < seq {
            return;
        }
        let Some(own) = self.own_checkpoints.get(&self.stable.seq) else {
            return;
        };
        let Some(snapshot) = StateSnapshot::of(&self.stable, own) else {
            return; // not serialised yet: the requester retries elsewhere
        };
        self.resend(now, from, Message::StateSnapshot(Box::new(snapshot)), out);
    }

    /// A fetched state header: if it is the one to install, its state is fetched
    /// chunk by chunk from the sender.
    pub(crate) fn on_state_snapshot(
        &mut self,
        now: Time,
        from: ReplicaId,
        s: StateSnapshot,
        out: &mut Vec<PbftAction>,
    ) {
        let seq = s.cert.seq;
        let expected =
            |s: &StateSnapshot| Some(checkpoint_digest(seq, &s.app_digest, &s.tables.digest()));
        if !self.accept_snapshot(from, &s, expected) {
            return;
        }
        let app_digest = s.app_digest;
        self.installing = Some(s.into_pending());
        self.begin_chunk_fetch(now, from, seq, app_digest, out);
    }
}

impl StateTransfer for Pbft {
    /// The application's verdict on the snapshot it was asked to install.
    fn on_snapshot_installed(&mut self, now: Time, seq: Seq, ok: bool, out: &mut Vec<PbftAction>) {
        let Some(install) =
            take_installed(&mut self.installing, seq, ok, |i| i, &mut self.counters)
        else {
            return;
        };
        self.complete_transfer(now, seq, install, out);
        self.progressed = true;
        self.try_deliver(now, out);
    }

    fn transfer_mut(&mut self) -> &mut Option<Transfer> {
        &mut self.transfer
    }

    fn installing_cert(&self) -> Option<&StableCert> {
        self.installing.as_ref().map(|i| &i.cert)
    }

    fn abandon_install(&mut self) {
        self.installing = None;
    }

    fn transfer_params(&self) -> TransferParams {
        TransferParams {
            status_interval: self.cfg.status_interval,
            transfer_timeout: self.cfg.transfer_timeout,
            client_window: self.cfg.client_window,
            state_chunk_bytes: self.cfg.state_chunk_bytes,
        }
    }

    fn set_transfer_timer(&mut self, at: Time, out: &mut Vec<PbftAction>) {
        self.set_timer(PbftTimer::Transfer, at, out);
    }

    fn cancel_transfer_timer(&mut self, out: &mut Vec<PbftAction>) {
        self.cancel_timer(PbftTimer::Transfer, out);
    }

    fn send_fetch_state(&mut self, peer: ReplicaId, seq: Seq, out: &mut Vec<PbftAction>) {
        self.send(peer, Message::FetchState(seq), out);
    }

    fn send_fetch_chunk(&mut self, peer: ReplicaId, fetch: FetchChunk, out: &mut Vec<PbftAction>) {
        self.send(peer, Message::FetchChunk(fetch), out);
    }

    fn send_state_chunk(
        &mut self,
        now: Time,
        peer: ReplicaId,
        chunk: StateChunk,
        out: &mut Vec<PbftAction>,
    ) {
        self.resend(now, peer, Message::StateChunk(chunk), out);
    }

    fn push_restore(&mut self, step: RestoreStep, out: &mut Vec<PbftAction>) {
        out.push(Action::Restore(step));
    }

    fn adopt_installed(&mut self, seq: Seq, install: &PendingInstall) {
        self.last_delivered = seq;
        self.last_executed = seq;
        self.pending_execution.clear();
        self.delivered_table = install.own.tables.delivered.clone();
        let delivered = &self.delivered_table;
        self.awaited
            .retain(|(client, number), _| !is_delivered(delivered, *client, *number));
    }
}
