//! PBFT's normal case: client requests, batching at the primary, pre-prepare / prepare /
//! commit with quorum checks, in-order delivery with exactly-once filtering, execution
//! reports, checkpoints of the client tables, and replies.

use std::sync::Arc;

use bytes::Bytes;

use crate::exactly_once::{
    ClientTables, DeliveredAnswer, answer_delivered, filter_fresh, is_delivered,
    is_implausibly_far, record_batch_results,
};
use crate::pbft::Pbft;
use crate::pbft::durable::PbftRecord;
use crate::pbft::message::{Message, PbftTimer, PrePrepare, Vote, encoded_len};
use crate::pbft::replica::{CommittedEntry, MAX_CLAIMS_PER_SEQ, MAX_VIEWS_AHEAD};
use crate::pbft::replica::{PbftAction, PendingExecution, ProgressMark};
use crate::protocol::{Action, Delivery, Executed};
use crate::request::{Batch, Reply, ReplyResult, Request};
use crate::types::{ClientId, Digest, ReplicaId, Seq, Time, View};

/// Queue and wait-list capacity, in batches.
const QUEUE_BATCHES: usize = 64;

impl Pbft {
    pub(crate) fn queue_capacity(&self) -> usize {
        self.cfg.max_batch.saturating_mul(QUEUE_BATCHES)
    }

    /// How many queued requests make the primary refuse new client requests as busy
    /// ([`crate::params::CommonParams::admission_bound`]). Requests a backup forwards
    /// are still queued up to the queue's capacity: that backup waits for them, and its
    /// request timer would otherwise blame the primary.
    pub(crate) fn admission_bound(&self) -> usize {
        self.cfg.common().admission_bound(self.queue_capacity())
    }

    /// How many of one client's requests the primary queues before refusing that
    /// client's new requests as busy
    /// ([`crate::params::CommonParams::per_client_bound`]).
    pub(crate) fn per_client_bound(&self) -> usize {
        self.cfg.common().per_client_bound(self.queue_capacity())
    }

    /// How many queued requests make the per-client bound apply
    /// ([`crate::params::CommonParams::contended_bound`]).
    pub(crate) fn contended_bound(&self) -> usize {
        self.cfg.common().contended_bound(self.queue_capacity())
    }

    /// A request from a client's authenticated channel.
    pub(crate) fn on_client_request(&mut self, now: Time, req: Request, out: &mut Vec<PbftAction>) {
        if req.payload.len() > self.cfg.max_request_bytes {
            self.counters.dropped_oversize_request += 1;
            return;
        }
        if !self.client_allowed(req.client) {
            self.counters.dropped_unknown_client += 1;
            return;
        }
        if !self.admissible(&req) {
            return;
        }
        if self.answer_if_done(&req, out) {
            return;
        }
        if self.view_active && self.is_primary() {
            let known = self.pending.contains(&req.key());
            let full = self.queue.len() >= self.admission_bound();
            let share_used = self.queue.len() >= self.contended_bound()
                && self.queued_by_client.get(req.client) >= self.per_client_bound();
            if !known && (full || share_used) {
                // Admission control: the queue holds what back-pressure lets this
                // primary order before execution catches up; more would only wait
                // (and time out) here. Tell the client at once, so it backs off. One
                // client gets at most its share of the queue, so a flooding client
                // cannot starve the others.
                self.counters.refused_busy += 1;
                if !full {
                    self.counters.refused_busy_client_share += 1;
                }
                self.refuse_busy(&req, out);
                return;
            }
            self.enqueue(now, req);
            self.try_propose(now, false, out);
        } else {
            if !self.awaited.contains_key(&req.key()) && self.awaited_share_used(req.client) {
                // A backup's share of its wait list, as at the primary's queue: a
                // client flooding the backups cannot fill their wait lists and have
                // every other client's requests dropped unawaited (a primary censoring
                // those would never be timed out). The request is neither awaited nor
                // forwarded; the refusal counts at the client only when this backup is
                // on the request's route (sent to all), so a correct client backs off
                // only once f+1 replicas refused it.
                self.counters.refused_busy += 1;
                self.counters.refused_busy_awaited_share += 1;
                self.refuse_busy(&req, out);
                return;
            }
            if !self.await_request(now, req.clone()) {
                self.counters.dropped_queue_full += 1;
                return;
            }
            if self.view_active {
                let primary = self.primary();
                self.send(primary, Message::Forward(vec![req]), out);
            }
        }
    }

    /// Requests a backup forwarded to us as primary.
    pub(crate) fn on_forward(
        &mut self,
        now: Time,
        from: ReplicaId,
        reqs: Vec<Request>,
        out: &mut Vec<PbftAction>,
    ) {
        if reqs.len() > self.cfg.max_batch {
            self.counters.dropped_oversize_batch += 1;
            return;
        }
        for req in reqs {
            if req.payload.len() > self.cfg.max_request_bytes {
                self.counters.dropped_oversize_request += 1;
                continue;
            }
            if !self.client_allowed(req.client) {
                self.counters.dropped_unknown_client += 1;
                continue;
            }
            if !self.admissible(&req) {
                continue;
            }
            if self.answer_if_done(&req, out) {
                continue;
            }
            if self.view_active && self.is_primary() {
                let key = req.key();
                if self.pending.contains(&key) {
                    continue; // queued already (then it is ordered: not refused)
                }
                // Forwarded requests count against their client's share
                // (`queued_by_client`, through `enqueue`), which then refuses the
                // client's direct requests; and each backup may have at most
                // `per_client_bound` of one client's requests queued here. This never
                // drops a request a correct backup awaits, so it cannot make correct
                // backups time out a correct primary: a correct backup forwards only
                // requests it awaits, awaits at most `per_client_bound` of one
                // client's (`awaited_share_used`, `requeue_as_awaited`) and keeps
                // each until it is delivered; the requests attributed to it here were
                // forwarded in this view (the counts start empty with the view) and
                // not yet proposed, so not delivered, so still awaited there — fewer
                // than `per_client_bound` besides the one it forwards now. Only a
                // Byzantine backup forwarding more (with a flooding client) is cut
                // off; a request it forwarded and was dropped is queued when a
                // correct backup that awaits it forwards it too.
                let forwarded = self.forwarded_counts.get(&(from, req.client)).copied();
                if forwarded.unwrap_or(0) >= self.per_client_bound() {
                    self.counters.dropped_forward_over_share += 1;
                    continue;
                }
                let client = req.client;
                self.enqueue(now, req);
                if self.pending.contains(&key) {
                    self.forwarded_by.insert(key, from);
                    let n = self.forwarded_counts.entry((from, client)).or_insert(0);
                    *n = n.saturating_add(1);
                }
            }
        }
        self.try_propose(now, false, out);
    }

    /// Whether a client request (direct or forwarded) may be admitted: its number is
    /// within the client window of its client's low mark, and its authenticator
    /// carries a valid MAC for this replica (issue 10 item 1: a replica that forwards
    /// a request cannot forge one in a client's name). Counts the refusals.
    fn admissible(&mut self, req: &Request) -> bool {
        if !req.authenticator_well_formed(self.n) {
            self.counters.unauthenticated_requests += 1;
            return false;
        }
        if is_implausibly_far(
            &self.delivered_table,
            req.client,
            req.number,
            self.cfg.client_window,
        ) {
            self.counters.requests_too_far += 1;
            return false;
        }
        if !self.keys.verify_client(req) {
            self.counters.unauthenticated_requests += 1;
            return false;
        }
        true
    }

    /// A client's marks query (`Event::MarksQuery`): answered with its row of the
    /// exactly-once table ([`MarksDesk`](crate::exactly_once::MarksDesk), which bounds
    /// the answers per client), signed in signed-all mode; dropped and counted for a
    /// client outside the cluster or one answered too recently.
    pub(crate) fn on_marks_query(
        &mut self,
        now: Time,
        client: ClientId,
        out: &mut Vec<PbftAction>,
    ) {
        if !self.client_allowed(client) {
            self.counters.marks_refused += 1;
            return;
        }
        let Ok(marks) = self.marks_desk.answer(now, client, &self.delivered_table) else {
            self.counters.marks_refused += 1;
            return;
        };
        self.counters.marks_answered += 1;
        let signer = self.cfg.signed_all.then_some(&self.keys);
        let reply = Reply::marks_answer(self.view, self.me, client, marks, signer);
        out.push(Action::Reply { client, reply });
    }

    /// Answers a request that was already delivered: from the reply cache if the
    /// cached result is this request's, else with a [`StaleNumber`](crate::request::StaleNumber) notice (its number
    /// is spent: another request executed under it, or this replica holds no result
    /// for it). Returns whether the request was already delivered.
    fn answer_if_done(&mut self, req: &Request, out: &mut Vec<PbftAction>) -> bool {
        let reply = match answer_delivered(&self.delivered_table, &self.reply_cache, req) {
            DeliveredAnswer::Fresh => return false,
            DeliveredAnswer::Result(result) => {
                self.counters.replies_from_cache += 1;
                self.reply(req.client, vec![result])
            }
            DeliveredAnswer::Stale(stale) => {
                // No result of this request here: another request ran under its
                // number (a new run of the client numbering from 1 again), or this
                // one's result fell out of the cache or was skipped by state
                // transfer (then its peers answer with it).
                if stale.executed_other {
                    self.counters.stale_numbers += 1;
                } else {
                    self.counters.uncached_retransmissions += 1;
                }
                let signer = self.cfg.signed_all.then_some(&self.keys);
                Reply::stale_notice(self.view, self.me, req.client, stale, signer)
            }
        };
        out.push(Action::Reply {
            client: req.client,
            reply,
        });
        true
    }

    /// Answers `req` at once with a busy refusal (`Reply::busy`), signed in
    /// signed-all mode.
    pub(crate) fn refuse_busy(&self, req: &Request, out: &mut Vec<PbftAction>) {
        let reply = Reply::refusal(
            self.view,
            self.me,
            req.client,
            vec![req.number],
            self.cfg.signed_all.then_some(&self.keys),
        );
        out.push(Action::Reply {
            client: req.client,
            reply,
        });
    }

    /// Queues `req` at the primary unless it is queued already or the queue is at
    /// its capacity ([`Pbft::queue_capacity`]; counted as `dropped_queue_full`).
    pub(crate) fn enqueue(&mut self, now: Time, req: Request) {
        let key = req.key();
        if self.pending.contains(&key) {
            return;
        }
        if self.queue.len() >= self.queue_capacity() {
            self.counters.dropped_queue_full += 1;
            return;
        }
        self.pending.insert(key);
        self.queued_by_client.add(req.client);
        self.queue.push_back(req);
        self.queue_since.get_or_insert(now);
    }

    pub(crate) fn on_batch_timer(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        self.try_propose(now, true, out);
    }

    /// Proposes batches while the window, the pipeline depth and the batching policy
    /// allow: a full batch at once, a partial one when the pipeline is idle or the
    /// batch timeout passed (`force`).
    pub(crate) fn try_propose(&mut self, now: Time, mut force: bool, out: &mut Vec<PbftAction>) {
        if !self.view_active || !self.is_primary() {
            return;
        }
        // After a restart or a state transfer, sequence numbers up to what was
        // delivered (or is stable) are decided: never propose there again.
        self.next_seq = self
            .next_seq
            .max(self.last_delivered.next())
            .max(self.stable.seq.next());
        loop {
            if self.queue.is_empty() {
                self.queue_since = None;
                self.cancel_timer(PbftTimer::Batch, out);
                return;
            }
            if !self.in_window(self.next_seq) {
                return;
            }
            let in_flight = self
                .next_seq
                .0
                .saturating_sub(self.last_delivered.0)
                .saturating_sub(1);
            if in_flight >= self.cfg.max_in_flight {
                return;
            }
            // Back-pressure from execution: order no further than `max_unexecuted`
            // beyond what this replica executed. `on_executed` proposes again.
            let unexecuted = self.next_seq.0.saturating_sub(self.last_executed.0);
            if unexecuted > self.cfg.max_unexecuted {
                self.counters.proposals_throttled += 1;
                return;
            }
            let full = self.queue.len() >= self.cfg.max_batch;
            let idle = in_flight == 0;
            let since = self.queue_since.unwrap_or(now);
            let due = force || now >= since + self.cfg.batch_timeout;
            if !(full || idle || due) {
                if !self.timer_armed(PbftTimer::Batch) {
                    self.set_timer(PbftTimer::Batch, since + self.cfg.batch_timeout, out);
                }
                return;
            }
            force = false;
            self.propose_batch(now, out);
        }
    }

    fn propose_batch(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        let mut requests = Vec::with_capacity(self.queue.len().min(self.cfg.max_batch));
        let mut bytes = 0usize;
        while requests.len() < self.cfg.max_batch {
            let Some(front) = self.queue.front() else {
                break;
            };
            if !requests.is_empty() && bytes + front.payload.len() > self.cfg.max_batch_bytes {
                break;
            }
            let req = self.queue.pop_front().expect("front exists");
            self.queued_by_client.remove(req.client);
            self.release_forwarded(req.key());
            let done = is_delivered(&self.delivered_table, req.client, req.number);
            if done {
                self.pending.remove(&req.key());
                continue;
            }
            bytes += req.payload.len();
            requests.push(req);
        }
        self.queue_since = (!self.queue.is_empty()).then_some(now);
        if requests.is_empty() {
            return;
        }
        self.pre_prepare(now, Arc::new(Batch::new(requests)), out);
    }

    /// `key` left the primary's queue: it no longer counts against the backup that
    /// forwarded it (`forwarded_counts`).
    pub(crate) fn release_forwarded(&mut self, key: (ClientId, u64)) {
        let Some(from) = self.forwarded_by.remove(&key) else {
            return;
        };
        if let Some(n) = self.forwarded_counts.get_mut(&(from, key.0)) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.forwarded_counts.remove(&(from, key.0));
            }
        }
    }

    /// Proposes an empty batch at the next sequence number if the window and the
    /// pipeline depth allow (execution back-pressure aside); returns whether it did.
    /// No correct primary does this: it is the `censor-empty` Byzantine mode's way to
    /// look live while ordering nothing (`byzantine.rs`).
    pub(crate) fn propose_empty(&mut self, now: Time, out: &mut Vec<PbftAction>) -> bool {
        if !self.view_active || !self.is_primary() || !self.in_window(self.next_seq) {
            return false;
        }
        let in_flight = self
            .next_seq
            .0
            .saturating_sub(self.last_delivered.0)
            .saturating_sub(1);
        if in_flight >= self.cfg.max_in_flight {
            return false;
        }
        self.pre_prepare(now, Batch::null(), out);
        true
    }

    /// The primary's pre-prepare of `batch` at the next sequence number.
    fn pre_prepare(&mut self, now: Time, batch: Arc<Batch>, out: &mut Vec<PbftAction>) {
        let digest = batch.digest();
        let seq = self.next_seq;
        self.next_seq = seq.next();
        let slot = self.slots.entry(seq).or_default();
        debug_assert!(
            slot.digest.is_none(),
            "primary proposes each seq once per view"
        );
        slot.digest = Some(digest);
        slot.accepted_at = Some(now);
        self.max_accepted = self.max_accepted.max(seq);
        self.batches.insert(digest, batch.clone());
        self.note_pre_prepared(seq, digest, self.view);
        self.counters.batches_proposed += 1;
        self.persist_pre_prepared(seq, digest, out);
        self.broadcast(
            Message::PrePrepare(PrePrepare {
                view: self.view,
                seq,
                digest,
                batch,
            }),
            out,
        );
        self.check_slot(now, seq, out);
    }

    /// Buffers a normal-case message for a view not yet started, after the checks it
    /// would face in that view that do not depend on the view's state (issue 10 item
    /// 3): a pre-prepare comes from that view's primary, is inside the watermark window
    /// and the batch limits and matches its digest; a prepare does not come from the
    /// primary; every vote is inside the window. Each peer's share of the buffer is
    /// bounded in messages and bytes ([`Pbft::future_bounds`]). Returns false (and
    /// counts) when the message is refused.
    fn buffer_if_future(&mut self, view: View, from: ReplicaId, msg: Message) -> bool {
        if view < self.view || (view == self.view && self.view_active) {
            self.counters.dropped_stale_view += 1;
            return false;
        }
        if view.0 > self.view.0.saturating_add(MAX_VIEWS_AHEAD) {
            self.counters.dropped_future += 1;
            return false;
        }
        let primary = view.primary(self.n);
        let admissible = match &msg {
            Message::PrePrepare(pp) => {
                from == primary
                    && self.in_window(pp.seq)
                    && self.batch_within_limits(&pp.batch)
                    && pp.batch.digest() == pp.digest
            }
            Message::Prepare(vote) => from != primary && self.in_window(vote.seq),
            Message::Commit(vote) => self.in_window(vote.seq),
            _ => false,
        };
        if !admissible {
            self.counters.dropped_future += 1;
            return false;
        }
        let slot_of = |m: &Message| match m {
            Message::PrePrepare(pp) => Some((0u8, pp.seq)),
            Message::Prepare(vote) => Some((1, vote.seq)),
            Message::Commit(vote) => Some((2, vote.seq)),
            _ => None,
        };
        let slot = slot_of(&msg);
        let duplicate = self.future.get(&view).is_some_and(|msgs| {
            msgs.iter()
                .any(|(sender, m)| *sender == from && slot_of(m) == slot)
        });
        if duplicate {
            // One message per sender, kind and sequence number: a second one is a
            // duplicate or an equivocation, dropped in the view as well.
            self.counters.dropped_duplicate += 1;
            return false;
        }
        let bytes = encoded_len(&msg);
        let (max_messages, max_bytes) = self.future_bounds();
        let load = self.future_load.entry(from).or_default();
        if load.messages >= max_messages || load.bytes.saturating_add(bytes) > max_bytes {
            self.counters.dropped_future += 1;
            return false;
        }
        load.messages += 1;
        load.bytes = load.bytes.saturating_add(bytes);
        self.future.entry(view).or_default().push((from, msg));
        true
    }

    /// Whether a message of `view` can be processed now; buffers or drops it otherwise.
    fn current_view_or_buffer(&mut self, view: View, from: ReplicaId, msg: &Message) -> bool {
        if view == self.view && self.view_active {
            return true;
        }
        self.buffer_if_future(view, from, msg.clone());
        false
    }

    pub(crate) fn on_pre_prepare(
        &mut self,
        now: Time,
        from: ReplicaId,
        pp: PrePrepare,
        out: &mut Vec<PbftAction>,
    ) {
        if !self.current_view_or_buffer(pp.view, from, &Message::PrePrepare(pp.clone())) {
            return;
        }
        if from != self.primary() {
            self.counters.dropped_wrong_sender += 1;
            return;
        }
        if !self.in_log_range(pp.seq) {
            self.counters.dropped_out_of_window += 1;
            return;
        }
        if !self.batch_within_limits(&pp.batch) {
            self.counters.dropped_oversize_batch += 1;
            return;
        }
        let existing = self.slots.get(&pp.seq).and_then(|s| s.digest);
        if existing.is_some_and(|d| d != pp.digest) {
            self.counters.dropped_equivocation += 1;
            return;
        }
        if existing.is_some() && self.batches.contains_key(&pp.digest) {
            self.counters.dropped_duplicate += 1;
            return;
        }
        if pp.batch.digest() != pp.digest {
            self.counters.dropped_bad_digest += 1;
            return;
        }
        // Castro and Liskov's treatment of partially valid authenticators: a backup
        // that cannot authenticate every request of the batch accepts the pre-prepare
        // but withholds its prepare. It still prepares once 2f others did — then at
        // least one correct replica authenticated every request, so the clients sent
        // them. A client that makes its own request fail at some replicas can stall a
        // view this way (the view change cures it: `withheld_prepares` counts it).
        let authentic = pp.batch.requests.iter().all(|r| self.keys.verify_client(r));
        self.wanted_batches.remove(&pp.digest);
        self.batches.insert(pp.digest, pp.batch);
        if !authentic {
            self.counters.withheld_prepares += 1;
            self.slots.entry(pp.seq).or_default().withheld = true;
        }
        self.accept_proposal(now, pp.seq, pp.digest, out);
    }

    /// Whether a batch respects the size limits, names only allowed clients and carries
    /// well-formed authenticators (none, or one MAC per replica).
    pub(crate) fn batch_within_limits(&self, batch: &Batch) -> bool {
        batch.len() <= self.cfg.max_batch
            && batch.payload_bytes() <= self.cfg.max_batch_bytes
            && batch.requests.iter().all(|r| {
                r.payload.len() <= self.cfg.max_request_bytes
                    && r.authenticator_well_formed(self.n)
                    && self.client_allowed(r.client)
            })
    }

    /// A backup accepts `digest` at `seq` in the current view (from a pre-prepare or a
    /// new view) and, once it holds the batch, sends its prepare.
    pub(crate) fn accept_proposal(
        &mut self,
        now: Time,
        seq: Seq,
        digest: Digest,
        out: &mut Vec<PbftAction>,
    ) {
        let slot = self.slots.entry(seq).or_default();
        slot.digest = Some(digest);
        slot.accepted_at = Some(now);
        self.max_accepted = self.max_accepted.max(seq);
        if self.batches.contains_key(&digest) {
            self.send_prepare(now, seq, digest, out);
        } else if self.wanted_batches.insert(digest) {
            self.broadcast(Message::FetchBatch(digest), out);
        }
    }

    /// Sends this backup's prepare for a slot whose batch it holds.
    pub(crate) fn send_prepare(
        &mut self,
        now: Time,
        seq: Seq,
        digest: Digest,
        out: &mut Vec<PbftAction>,
    ) {
        if self.slots.get(&seq).is_some_and(|s| s.withheld) {
            // Not authenticated here: no prepare and no pre-prepared claim, but the
            // others' prepares may prepare it.
            self.check_slot(now, seq, out);
            return;
        }
        self.note_pre_prepared(seq, digest, self.view);
        if self.is_primary() {
            self.check_slot(now, seq, out);
            return;
        }
        let me = self.me;
        let slot = self.slots.entry(seq).or_default();
        if slot.prepares.contains_key(&me) {
            return;
        }
        slot.prepares.insert(me, digest);
        self.persist_pre_prepared(seq, digest, out);
        let vote = Vote {
            view: self.view,
            seq,
            digest,
        };
        self.broadcast(Message::Prepare(vote), out);
        self.check_slot(now, seq, out);
    }

    /// Records a pre-prepared claim (the Q set), keeping the latest view per digest.
    pub(crate) fn note_pre_prepared(&mut self, seq: Seq, digest: Digest, view: View) {
        let claims = self.pre_prepared_claims.entry(seq).or_default();
        let v = claims.entry(digest).or_insert(view);
        *v = (*v).max(view);
        if claims.len() > MAX_CLAIMS_PER_SEQ
            && let Some(oldest) = claims.iter().min_by_key(|(_, v)| **v).map(|(d, _)| *d)
        {
            claims.remove(&oldest);
        }
    }

    pub(crate) fn on_prepare(
        &mut self,
        now: Time,
        from: ReplicaId,
        vote: Vote,
        out: &mut Vec<PbftAction>,
    ) {
        if !self.current_view_or_buffer(vote.view, from, &Message::Prepare(vote)) {
            return;
        }
        if from == self.primary() {
            self.counters.dropped_wrong_sender += 1;
            return;
        }
        if !self.in_log_range(vote.seq) {
            self.counters.dropped_out_of_window += 1;
            return;
        }
        let slot = self.slots.entry(vote.seq).or_default();
        if let Some(prev) = slot.prepares.get(&from) {
            if *prev != vote.digest {
                self.counters.dropped_equivocation += 1;
            } else {
                self.counters.dropped_duplicate += 1;
            }
            return;
        }
        slot.prepares.insert(from, vote.digest);
        self.check_slot(now, vote.seq, out);
    }

    pub(crate) fn on_commit(
        &mut self,
        now: Time,
        from: ReplicaId,
        vote: Vote,
        out: &mut Vec<PbftAction>,
    ) {
        if !self.current_view_or_buffer(vote.view, from, &Message::Commit(vote)) {
            return;
        }
        if !self.in_log_range(vote.seq) {
            self.counters.dropped_out_of_window += 1;
            return;
        }
        let slot = self.slots.entry(vote.seq).or_default();
        if let Some(prev) = slot.commits.get(&from) {
            if *prev != vote.digest {
                self.counters.dropped_equivocation += 1;
            } else {
                self.counters.dropped_duplicate += 1;
            }
            return;
        }
        slot.commits.insert(from, vote.digest);
        self.check_slot(now, vote.seq, out);
    }

    /// Advances a slot through prepared and committed once its quorums are in.
    pub(crate) fn check_slot(&mut self, now: Time, seq: Seq, out: &mut Vec<PbftAction>) {
        let me = self.me;
        let view = self.view;
        let quorum = self.quorum;
        let Some(slot) = self.slots.get_mut(&seq) else {
            return;
        };
        let Some(digest) = slot.digest else {
            return;
        };
        if !self.batches.contains_key(&digest) {
            return;
        }
        if !slot.prepared {
            let matching = slot.prepares.values().filter(|d| **d == digest).count();
            if matching + 1 < quorum {
                return;
            }
            slot.prepared = true;
            slot.commits.entry(me).or_insert(digest);
            self.prepared_claims.insert(seq, (view, digest));
            self.persist(PbftRecord::Prepared { view, seq, digest }, out);
            self.broadcast(Message::Commit(Vote { view, seq, digest }), out);
        }
        let Some(slot) = self.slots.get_mut(&seq) else {
            return;
        };
        if slot.committed {
            return;
        }
        let matching = slot.commits.values().filter(|d| **d == digest).count();
        if matching >= quorum {
            slot.committed = true;
            self.commit_locally(now, seq, digest, out);
        }
    }

    /// Records that `digest` committed at `seq` and delivers what is now in order.
    pub(crate) fn commit_locally(
        &mut self,
        now: Time,
        seq: Seq,
        digest: Digest,
        out: &mut Vec<PbftAction>,
    ) {
        if let Some(existing) = self.committed.get(&seq) {
            if existing.digest != digest {
                self.counters.safety_conflicts += 1;
                tracing::error!(replica = %self.me, %seq, ours = %existing.digest, other = %digest,
                    "two digests committed at one sequence number");
            }
            return;
        }
        if seq <= self.last_delivered {
            return;
        }
        let Some(batch) = self.batches.get(&digest).cloned() else {
            return;
        };
        self.counters.batches_committed += 1;
        self.persist_committed(seq, digest, &batch, out);
        self.committed.insert(
            seq,
            CommittedEntry {
                digest,
                batch,
                delivered_at: None,
            },
        );
        self.try_deliver(now, out);
    }

    /// Delivers committed batches in sequence order, filtering requests already
    /// delivered.
    pub(crate) fn try_deliver(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        if self.installing.is_some() {
            return;
        }
        let mut delivered_any = false;
        loop {
            let seq = self.last_delivered.next();
            let Some(entry) = self.committed.get_mut(&seq) else {
                break;
            };
            entry.delivered_at = Some(now);
            let committed_batch = entry.batch.clone();
            let batch = self.filter_fresh(&committed_batch);
            if batch.len() >= self.cfg.max_batch
                || batch
                    .payload_bytes()
                    .saturating_add(self.cfg.max_request_bytes)
                    > self.cfg.max_batch_bytes
            {
                self.full_batches_delivered += 1;
            }
            let checkpoint = seq.is_checkpoint(self.cfg.checkpoint_interval);
            self.pending_execution.insert(
                seq,
                PendingExecution {
                    batch: batch.clone(),
                    delivered_at_checkpoint: checkpoint.then(|| self.delivered_table.clone()),
                },
            );
            self.counters.batches_delivered += 1;
            self.counters.requests_delivered += batch.len() as u64;
            out.push(Action::Deliver(Delivery {
                view: self.view,
                seq,
                batch,
                checkpoint,
            }));
            self.last_delivered = seq;
            delivered_any = true;
        }
        if delivered_any {
            if self.view_active {
                self.view_backoff = 0;
            }
            self.progressed = true;
            self.try_propose(now, false, out);
        }
    }

    /// The requests of `batch` not delivered before, marking them delivered
    /// ([`filter_fresh`]).
    fn filter_fresh(&mut self, batch: &Arc<Batch>) -> Arc<Batch> {
        let (awaited, pending) = (&mut self.awaited, &mut self.pending);
        let mut awaited_delivered = 0;
        let (fresh, left_out) = filter_fresh(
            &mut self.delivered_table,
            batch,
            self.cfg.client_window,
            |req| {
                if awaited.remove(&req.key()).is_some() {
                    awaited_delivered += 1;
                }
                pending.remove(&req.key());
            },
        );
        self.awaited_delivered += awaited_delivered;
        self.counters.duplicate_requests_filtered += left_out.duplicates;
        self.counters.requests_too_far += left_out.too_far;
        fresh
    }

    /// The application executed `seq`: record results, reply, checkpoint.
    pub(crate) fn on_executed(&mut self, now: Time, ex: Executed, out: &mut Vec<PbftAction>) {
        if ex.seq <= self.last_executed {
            return; // superseded by a state transfer
        }
        if ex.seq != self.last_executed.next() {
            self.counters.unexpected_executions += 1;
            tracing::warn!(replica = %self.me, seq = %ex.seq, last = %self.last_executed,
                "execution report out of order");
            return;
        }
        let Some(pending) = self.pending_execution.remove(&ex.seq) else {
            self.counters.unexpected_executions += 1;
            return;
        };
        if ex.results.len() != pending.batch.len() {
            self.counters.unexpected_executions += 1;
            tracing::warn!(replica = %self.me, seq = %ex.seq, "result count differs from batch size");
        }
        self.last_executed = ex.seq;
        self.record_and_reply(&pending.batch, ex.results, out);
        if let Some(delivered) = pending.delivered_at_checkpoint {
            match ex.app_digest {
                Some(app_digest) => {
                    let tables = ClientTables { delivered };
                    self.take_checkpoint(now, ex.seq, app_digest, tables, out);
                }
                None => {
                    // Counted and the checkpoint skipped, but execution did catch up:
                    // back-pressure must still release the next batch below.
                    self.counters.unexpected_executions += 1;
                    tracing::warn!(replica = %self.me, seq = %ex.seq, "checkpoint executed without a digest");
                }
            }
        }
        // Execution caught up by one: a batch held back by `max_unexecuted` may go.
        self.try_propose(now, false, out);
    }

    /// Caches results and sends one reply per client.
    fn record_and_reply(&mut self, batch: &Batch, results: Vec<Bytes>, out: &mut Vec<PbftAction>) {
        let window = self.cfg.client_window;
        for (client, results) in record_batch_results(&mut self.reply_cache, batch, results, window)
        {
            let reply = self.reply(client, results);
            out.push(Action::Reply { client, reply });
        }
    }

    /// A reply in the current view, signed in signed-all mode.
    pub(crate) fn reply(&self, client: ClientId, results: Vec<ReplyResult>) -> Reply {
        let signer = self.cfg.signed_all.then_some(&self.keys);
        Reply::new(self.view, self.me, client, results, signer)
    }

    /// PBFT's per-request view timer (Castro and Liskov, OSDI '99, section 4.4): while
    /// a backup waits for some request it knows of, the timer runs for one of them —
    /// the oldest — and stops only when that request executes (then it restarts for
    /// the next oldest, if any). Deliveries of other requests do not re-arm it, so a
    /// primary that orders everyone's requests but one client's is replaced. Without
    /// awaited requests the timer runs while accepted proposals wait to commit,
    /// restarted on each delivery. The primary runs it too: a correct primary whose
    /// proposals cannot commit (say its peers lost a view's messages and moved on)
    /// must move on as well, or the correct replicas could all stop waiting while
    /// clients still wait for f+1 replies.
    pub(crate) fn update_view_timer(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        let progressed = std::mem::take(&mut self.progressed);
        if !self.view_active {
            self.timed_request = None;
            return; // the view-change timer is armed by start_view_change
        }
        let armed = self.timer_armed(PbftTimer::View);
        if let Some(key) = self.timed_request {
            if is_delivered(&self.delivered_table, key.0, key.1) {
                // Executed (or slid below its client's window): no longer waited for.
                self.awaited.remove(&key);
            }
            if !self.awaited.contains_key(&key) || !armed {
                self.timed_request = None;
            }
        }
        if self.timed_request.is_some() {
            return; // runs on, whatever else was delivered
        }
        if let Some(key) = self.oldest_awaited() {
            // A fresh time-out for the oldest request, but never past its wait
            // deadline: the time-outs it already waited through (timers for older
            // requests, extended or not) count against it, so a primary that orders
            // older requests one by one cannot keep it waiting longer than
            // `1 + MAX_VIEW_TIMER_EXTENSIONS` time-outs.
            self.timed_request = Some(key);
            let at = self.timer_for_awaited(now, key);
            self.set_timer(PbftTimer::View, at, out);
            self.mark_timer_progress();
            return;
        }
        // Requests queued at the primary do not count: they wait only when the
        // watermark window is full, i.e. for execution to reach the next checkpoint,
        // which is no fault of the primary.
        let waiting = self.max_accepted > self.last_delivered;
        if waiting && (!armed || progressed) {
            let at = now + self.view_timeout();
            self.set_timer(PbftTimer::View, at, out);
            self.mark_timer_progress();
            self.timer_extensions = 0;
        } else if !waiting && armed {
            self.cancel_timer(PbftTimer::View, out);
        }
    }

    /// When the view timer running for the awaited request `key` should fire: one
    /// view time-out from `now`, but no later than the request's wait deadline
    /// ([`Pbft::wait_deadline`]) and no earlier than `now`.
    pub(crate) fn timer_for_awaited(&self, now: Time, key: (ClientId, u64)) -> Time {
        let at = now + self.view_timeout();
        match self.awaited.get(&key) {
            Some(a) => at.min(self.wait_deadline(a.since)).max(now),
            None => at,
        }
    }

    /// Notes where delivery stands as the view timer is armed or extended.
    pub(crate) fn mark_timer_progress(&mut self) {
        self.timer_mark = ProgressMark {
            requests: self.counters.requests_delivered,
            awaited: self.awaited_delivered,
            full_batches: self.full_batches_delivered,
            arrivals: self.awaited_arrivals,
        };
    }

    /// Whether the primary made progress since the view timer was armed or extended:
    /// it delivered fresh requests (empty batches, or batches of requests delivered
    /// before, do not count), and some of them were awaited here or it delivered full
    /// batches (busy, as under overload). A primary that only orders a trickle of
    /// other requests while we wait is not slow but censoring.
    pub(crate) fn primary_progressed(&self) -> bool {
        let mark = &self.timer_mark;
        self.counters.requests_delivered > mark.requests
            && (self.awaited_delivered > mark.awaited
                || self.full_batches_delivered > mark.full_batches)
    }

    /// The awaited request that arrived first, skipping (and dropping) those already
    /// delivered.
    fn oldest_awaited(&mut self) -> Option<(ClientId, u64)> {
        let table = &self.delivered_table;
        self.awaited
            .retain(|(client, number), _| !is_delivered(table, *client, *number));
        self.awaited
            .iter()
            .min_by_key(|(_, a)| a.arrival)
            .map(|(key, _)| *key)
    }
}
