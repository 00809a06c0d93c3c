//! View changes: suspecting the primary, signed VIEW-CHANGE messages carrying the
//! stable checkpoint and the P and Q sets, joining a view change that f+1 replicas
//! asked for, the new primary's NEW-VIEW (built by [`decide`]), and its validation and
//! installation on every replica. The view timer doubles with each consecutive view
//! that fails to deliver anything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::checkpoint::CheckpointReplica;
use crate::exactly_once::is_delivered;
use crate::pbft::Pbft;
use crate::pbft::decision::{Decision, decide};
use crate::pbft::durable::PbftRecord;
use crate::pbft::message::{
    Message, NewViewBody, PbftTimer, PrePreparedClaim, PreparedClaim, Signed, SignedBody,
    SignedNewView, SignedViewChange, StableCert, ViewChangeBody, encoded_len,
};
use crate::pbft::replica::{
    MAX_CLAIMS_PER_SEQ, MAX_VIEW_TIMER_EXTENSIONS, MAX_VIEWS_AHEAD, OWN_VIEW_CHANGES_KEPT,
    PbftAction,
};
use crate::request::Request;
use crate::types::{ReplicaId, Seq, Time, View, kth_highest_view};

impl Pbft {
    /// The view timer fired: the primary made no progress on work we wait for, or the
    /// new view we wait for did not arrive. Move on to the next view.
    pub(crate) fn on_view_timer(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        // A slow primary is not a dead one: if it made progress since the timer was
        // armed (`primary_progressed`: fresh requests delivered, some of them awaited
        // or in full batches — under overload it orders at the pace execution
        // allows), wait another time-out, at most MAX_VIEW_TIMER_EXTENSIONS times per
        // awaited request over the view — so a primary that orders others' requests
        // (or empty batches) but never the awaited one is still replaced, and cannot
        // restart the count by ordering the awaited requests one by one.
        // Nor past the timed request's wait deadline (`wait_deadline`): its wait is
        // bounded by time, not only by the extensions counted against it.
        let (extensions, before_deadline) =
            match self.timed_request.and_then(|k| self.awaited.get(&k)) {
                Some(awaited) => (awaited.extensions, now < self.wait_deadline(awaited.since)),
                None => (self.timer_extensions, true),
            };
        if self.view_active
            && before_deadline
            && extensions < MAX_VIEW_TIMER_EXTENSIONS
            && self.primary_progressed()
        {
            self.timer_extensions = self.timer_extensions.saturating_add(1);
            let arrived_by = self.timer_mark.arrivals;
            for awaited in self.awaited.values_mut() {
                if awaited.arrival <= arrived_by {
                    awaited.extensions = awaited.extensions.saturating_add(1);
                }
            }
            self.counters.view_timer_extensions += 1;
            let at = match self.timed_request {
                Some(key) => self.timer_for_awaited(now, key),
                None => now + self.view_timeout(),
            };
            self.set_timer(PbftTimer::View, at, out);
            self.mark_timer_progress();
            return;
        }
        let target = self.view.next();
        self.start_view_change(now, target, out);
    }

    /// Leaves the current view for `target`: broadcast a view change and wait for the
    /// new primary's new view.
    pub(crate) fn start_view_change(&mut self, now: Time, target: View, out: &mut Vec<PbftAction>) {
        if target <= self.view {
            return;
        }
        tracing::debug!(replica = %self.me, from = %self.view, to = %target, "view change");
        self.view = target;
        self.view_active = false;
        self.new_view_msg = None;
        self.counters.view_changes_started += 1;
        self.slots.clear();
        self.max_accepted = Seq(0);
        self.requeue_as_awaited(now);
        self.cancel_timer(PbftTimer::Batch, out);
        self.view_changes = self.view_changes.split_off(&target);
        self.prune_future();

        let vc = self.make_view_change(target);
        self.persist(PbftRecord::ViewChange { view: target }, out);
        self.broadcast(Message::ViewChange(Box::new(vc.clone())), out);
        self.remember_own_view_change(vc.clone());
        self.view_changes
            .entry(target)
            .or_default()
            .insert(self.me, vc);

        self.cancel_timer(PbftTimer::View, out);
        self.arm_view_change_timer(now, out);

        if target.primary(self.n) == self.me {
            self.try_build_new_view(now, out);
        }
        self.maybe_join(now, out);
    }

    /// Keeps `vc`, our own view change, to resend to a peer still in the view change
    /// of its view ([`OWN_VIEW_CHANGES_KEPT`] newest at most).
    pub(crate) fn remember_own_view_change(&mut self, vc: SignedViewChange) {
        self.own_view_changes.insert(vc.body.new_view, vc);
        while self.own_view_changes.len() > OWN_VIEW_CHANGES_KEPT {
            self.own_view_changes.pop_first();
        }
    }

    /// The primary's queued requests become requests we wait for as a backup.
    fn requeue_as_awaited(&mut self, now: Time) {
        let cap = self.queue_capacity();
        let queued: Vec<Request> = self.queue.drain(..).collect();
        self.queued_by_client.recount([]);
        self.forwarded_by.clear();
        self.forwarded_counts.clear();
        for req in queued {
            // At most a client's share, as for requests a backup receives: then what
            // a correct backup forwards to the next primary stays within its share
            // there (`on_forward`). A request left out is not awaited; its client
            // resends it.
            if self.awaited.len() < cap && !self.awaited_share_used(req.client) {
                self.await_request(now, req);
            }
        }
        self.pending.clear();
        self.queue_since = None;
    }

    /// Drops buffered messages for views already left.
    pub(crate) fn prune_future(&mut self) {
        self.future = self.future.split_off(&self.view);
        self.future_load.clear();
        for (from, msg) in self.future.values().flatten() {
            let load = self.future_load.entry(*from).or_default();
            load.messages += 1;
            load.bytes = load.bytes.saturating_add(encoded_len(msg));
        }
    }

    /// Our signed view change for `target`: the stable checkpoint and the P and Q sets
    /// above it.
    pub(crate) fn make_view_change(&self, target: View) -> SignedViewChange {
        let low = self.stable.seq.next();
        let high = self.high_watermark();
        let prepared = self
            .prepared_claims
            .range(low..=high)
            .map(|(seq, (view, digest))| PreparedClaim {
                seq: *seq,
                view: *view,
                digest: *digest,
            })
            .collect();
        let pre_prepared = self
            .pre_prepared_claims
            .range(low..=high)
            .flat_map(|(seq, m)| {
                m.iter().map(|(digest, view)| PrePreparedClaim {
                    seq: *seq,
                    digest: *digest,
                    view: *view,
                })
            })
            .collect();
        let body = ViewChangeBody {
            new_view: target,
            stable: self.stable.clone(),
            prepared,
            pre_prepared,
        };
        Signed {
            signature: self.keys.sign(&body.signing_bytes()),
            body,
            signer: self.me,
        }
    }

    pub(crate) fn on_view_change(
        &mut self,
        now: Time,
        from: ReplicaId,
        vc: SignedViewChange,
        out: &mut Vec<PbftAction>,
    ) {
        let target = vc.body.new_view;
        if vc.signer != from {
            self.counters.dropped_wrong_sender += 1;
            return;
        }
        if target < self.view || (target == self.view && self.view_active) {
            self.counters.dropped_stale_view += 1;
            return;
        }
        if target.0 > self.view.0.saturating_add(MAX_VIEWS_AHEAD) {
            self.counters.dropped_future += 1;
            return;
        }
        if self
            .view_changes
            .get(&target)
            .is_some_and(|m| m.contains_key(&from))
        {
            self.counters.dropped_duplicate += 1;
            return;
        }
        if !self.validate_view_change(&vc) {
            self.counters.dropped_invalid_view_change += 1;
            return;
        }
        self.view_changes
            .entry(target)
            .or_default()
            .insert(from, vc);
        if target == self.view && !self.view_active {
            self.arm_view_change_timer(now, out);
            if target.primary(self.n) == self.me {
                self.try_build_new_view(now, out);
            }
        }
        self.maybe_join(now, out);
    }

    /// During a view change, the timer that moves on to the next view starts only once
    /// a quorum asked for this view (PBFT §4.5.2). A replica can thus only leave a
    /// view that a quorum also reached, and correct replicas cannot drift apart by
    /// timing out alone; the timeout doubles with each consecutive failed view.
    pub(crate) fn arm_view_change_timer(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        let asked = self.view_changes.get(&self.view).map_or(0, |m| m.len());
        if self.view_active || asked < self.quorum || self.timer_armed(PbftTimer::View) {
            return;
        }
        let timeout = self.view_timeout();
        self.view_backoff = self.view_backoff.saturating_add(1);
        self.set_timer(PbftTimer::View, now + timeout, out);
    }

    /// Joins a view change once f+1 replicas asked for views above ours: at least one
    /// of them is correct, so waiting for our own timer would only delay the change.
    fn maybe_join(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        let mut highest: BTreeMap<ReplicaId, View> = BTreeMap::new();
        for (view, senders) in self.view_changes.range(self.view.next()..) {
            for sender in senders.keys().filter(|r| **r != self.me) {
                highest.insert(*sender, *view);
            }
        }
        let Some(join) = kth_highest_view(highest.into_values(), self.weak) else {
            return;
        };
        if join > self.view {
            self.start_view_change(now, join, out);
        }
    }

    /// Checks a view change's signature, certificate and claims.
    pub(crate) fn validate_view_change(&mut self, vc: &SignedViewChange) -> bool {
        if vc.signer.index() >= self.n
            || !self
                .keys
                .verify(vc.signer, &vc.body.signing_bytes(), &vc.signature)
        {
            return false;
        }
        let body = &vc.body;
        if !self.validate_cert(&body.stable) {
            return false;
        }
        let low = body.stable.seq;
        let high = low.0.saturating_add(self.cfg.window);
        let in_range = |seq: Seq, view: View| seq > low && seq.0 <= high && view < body.new_view;
        let prepared_ok = body.prepared.windows(2).all(|w| w[0].seq < w[1].seq)
            && body.prepared.iter().all(|p| in_range(p.seq, p.view));
        let mut seen = BTreeSet::new();
        let pre_prepared_ok = body.pre_prepared.len() as u64
            <= self.cfg.window.saturating_mul(MAX_CLAIMS_PER_SEQ as u64)
            && body
                .pre_prepared
                .iter()
                .all(|q| in_range(q.seq, q.view) && seen.insert((q.seq, q.digest)));
        prepared_ok && pre_prepared_ok
    }

    /// The new primary: once the view changes it holds decide every sequence number
    /// and it holds every re-proposed batch, send the new view and start it.
    pub(crate) fn try_build_new_view(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        if self.view_active || self.view.primary(self.n) != self.me {
            return;
        }
        let Some(received) = self.view_changes.get(&self.view) else {
            return;
        };
        if received.len() < self.quorum {
            return;
        }
        let vcs: Vec<SignedViewChange> = received.values().cloned().collect();
        let Decision::Decided {
            checkpoint,
            proposals,
        } = decide(&vcs, self.quorum, self.weak)
        else {
            return;
        };
        let missing: Vec<_> = proposals
            .iter()
            .map(|(_, d)| *d)
            .filter(|d| !self.batches.contains_key(d))
            .collect();
        if !missing.is_empty() {
            for d in missing {
                if self.wanted_batches.insert(d) {
                    self.broadcast(Message::FetchBatch(d), out);
                }
            }
            return;
        }
        let body = NewViewBody {
            view: self.view,
            view_changes: vcs,
            checkpoint: checkpoint.seq,
            proposals,
        };
        let nv = Signed {
            signature: self.keys.sign(&body.signing_bytes()),
            body,
            signer: self.me,
        };
        let nv = Arc::new(nv);
        self.persist(PbftRecord::NewView(Arc::clone(&nv)), out);
        self.broadcast(Message::NewView(Arc::clone(&nv)), out);
        self.enter_new_view(now, nv, checkpoint, out);
    }

    pub(crate) fn on_new_view(
        &mut self,
        now: Time,
        _from: ReplicaId,
        nv: Arc<SignedNewView>,
        out: &mut Vec<PbftAction>,
    ) {
        let view = nv.body.view;
        if view < self.view || (view == self.view && self.view_active) {
            self.counters.dropped_stale_view += 1;
            return;
        }
        match self.validate_new_view(&nv) {
            Some(checkpoint) => {
                self.persist(PbftRecord::NewView(Arc::clone(&nv)), out);
                self.enter_new_view(now, nv, checkpoint, out)
            }
            None => self.counters.dropped_invalid_view_change += 1,
        }
    }

    /// Checks a new view completely (it may come from any replica: it is
    /// self-certifying) and returns the checkpoint it starts from.
    pub(crate) fn validate_new_view(&mut self, nv: &SignedNewView) -> Option<StableCert> {
        let body = &nv.body;
        if nv.signer != body.view.primary(self.n)
            || !self
                .keys
                .verify(nv.signer, &body.signing_bytes(), &nv.signature)
        {
            return None;
        }
        let vcs = &body.view_changes;
        if vcs.len() < self.quorum
            || vcs.len() > self.n
            || !vcs.windows(2).all(|w| w[0].signer < w[1].signer)
            || vcs.iter().any(|vc| vc.body.new_view != body.view)
        {
            return None;
        }
        for vc in vcs {
            if !self.validate_view_change(vc) {
                return None;
            }
        }
        match decide(vcs, self.quorum, self.weak) {
            Decision::Decided {
                checkpoint,
                proposals,
            } if checkpoint.seq == body.checkpoint && proposals == body.proposals => {
                Some(checkpoint)
            }
            _ => None,
        }
    }

    /// Starts view `nv.body.view`: adopt its checkpoint, accept its re-proposals, and
    /// process messages buffered for it.
    fn enter_new_view(
        &mut self,
        now: Time,
        nv: Arc<SignedNewView>,
        checkpoint: StableCert,
        out: &mut Vec<PbftAction>,
    ) {
        let view = nv.body.view;
        tracing::debug!(replica = %self.me, %view, proposals = nv.body.proposals.len(), "new view");
        if view > self.view {
            self.requeue_as_awaited(now);
        }
        self.view = view;
        self.view_active = true;
        self.new_view_msg = Some(nv.clone());
        self.counters.new_views_entered += 1;
        self.slots.clear();
        self.max_accepted = Seq(0);
        self.view_changes = self.view_changes.split_off(&view.next());
        self.own_view_changes.clear();
        self.cancel_timer(PbftTimer::View, out);
        if checkpoint.seq > self.stable.seq {
            self.make_stable(now, checkpoint.clone(), out);
        }

        let mut last = checkpoint.seq.max(self.stable.seq);
        let primary = self.is_primary();
        for &(seq, digest) in &nv.body.proposals {
            last = last.max(seq);
            if !self.in_log_range(seq) {
                continue;
            }
            if self.committed.get(&seq).is_some_and(|c| c.digest != digest) {
                self.counters.safety_conflicts += 1;
                tracing::error!(replica = %self.me, %seq, "new view re-proposes a different batch than we committed");
            }
            if primary {
                let slot = self.slots.entry(seq).or_default();
                slot.digest = Some(digest);
                slot.accepted_at = Some(now);
                self.max_accepted = self.max_accepted.max(seq);
                self.note_pre_prepared(seq, digest, view);
                self.persist_pre_prepared(seq, digest, out);
            } else {
                self.accept_proposal(now, seq, digest, out);
            }
        }

        let buffered = self.future.remove(&view).unwrap_or_default();
        self.prune_future();
        if primary {
            self.next_seq = last.max(self.last_delivered).next();
            // The requests we waited for as a backup were admitted already (checked,
            // MAC-verified, counted against the wait list's bound): queue them, oldest
            // first, up to the queue's capacity — not through admission control, which
            // would refuse them as busy once the queue holds its admission bound,
            // leaving clients whose requests the backups await to time out again.
            let mut awaited: Vec<_> = std::mem::take(&mut self.awaited).into_values().collect();
            awaited.sort_by_key(|a| a.arrival);
            for a in awaited {
                if !is_delivered(&self.delivered_table, a.req.client, a.req.number) {
                    self.enqueue(now, a.req);
                }
            }
        } else {
            // A new primary: the requests' extension budgets and wait deadlines start
            // again.
            for awaited in self.awaited.values_mut() {
                awaited.extensions = 0;
                awaited.since = now;
            }
            self.forward_awaited(out);
        }
        for (from, msg) in buffered {
            self.on_message(now, from, msg, out);
        }
        self.try_propose(now, false, out);
        self.prune_batches();
    }

    /// A backup hands the requests it waits for to the new primary.
    fn forward_awaited(&mut self, out: &mut Vec<PbftAction>) {
        if self.awaited.is_empty() {
            return;
        }
        let primary = self.primary();
        let mut reqs: Vec<_> = self.awaited.values().cloned().collect();
        reqs.sort_by_key(|a| a.arrival);
        let reqs: Vec<Request> = reqs.into_iter().map(|a| a.req).collect();
        for chunk in reqs.chunks(self.cfg.max_batch) {
            self.send(primary, Message::Forward(chunk.to_vec()), out);
        }
    }

    /// Whether a sequence number is in the part of the log this replica keeps: above
    /// what it delivered or what is stable, and inside the window.
    pub(crate) fn in_log_range(&self, seq: Seq) -> bool {
        let low = self.stable.seq.min(self.last_delivered);
        seq > low && seq <= self.high_watermark()
    }
}
