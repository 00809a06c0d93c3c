//! HotStuff's normal case: client requests and the queue every replica keeps,
//! proposals by the round's leader, votes to the next leader, QCs, the commit rule,
//! in-order delivery by height with exactly-once filtering, execution reports and
//! replies.
//!
//! Batching follows the same limits as PBFT (`max_batch`, `max_batch_bytes`,
//! `max_request_bytes`): a leader proposes once per round, as soon as it has requests
//! or uncommitted requests need more certified blocks on top of them, taking up to
//! one full batch from its queue. The round's pace (one QC per round trip) batches
//! requests as PBFT's pipeline does, so `batch_timeout` is not needed here.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use crate::crypto::{Signed, SignedBody};
use crate::exactly_once::{
    ClientTables, DeliveredAnswer, answer_delivered, filter_fresh, is_delivered,
    is_implausibly_far, record_batch_results,
};
use crate::hotstuff::block::{Block, Round};
use crate::hotstuff::block_tree::{CommitError, Insert};
use crate::hotstuff::durable::HotStuffRecord;
use crate::hotstuff::message::{HotStuffTimer, Message, Proposal};
use crate::hotstuff::pacemaker::MAX_ROUNDS_AHEAD;
use crate::hotstuff::qc::{Qc, Tc, Vote, VoteBody};
use crate::hotstuff::replica::{HotStuff, HotStuffAction, PendingExecution, QUEUE_BATCHES};
use crate::hotstuff::safety::commit_target;
use crate::protocol::{Action, Delivery, Executed};
use crate::request::{Batch, Reply, ReplyResult, Request};
use crate::types::{ClientId, Digest, ReplicaId, Seq, Time};

impl HotStuff {
    pub(crate) fn queue_capacity(&self) -> usize {
        self.cfg.common.max_batch.saturating_mul(QUEUE_BATCHES)
    }

    /// How many live queued requests make this replica refuse new client requests as
    /// busy ([`crate::params::CommonParams::admission_bound`]); forwarded requests are
    /// queued up to the queue's capacity.
    pub(crate) fn admission_bound(&self) -> usize {
        self.cfg.common.admission_bound(self.queue_capacity())
    }

    /// How many live queued requests of one client make this replica refuse that
    /// client's new requests as busy
    /// ([`crate::params::CommonParams::per_client_bound`]).
    pub(crate) fn per_client_bound(&self) -> usize {
        self.cfg.common.per_client_bound(self.queue_capacity())
    }

    /// How many live queued requests make the per-client bound apply
    /// ([`crate::params::CommonParams::contended_bound`]).
    pub(crate) fn contended_bound(&self) -> usize {
        self.cfg.common.contended_bound(self.queue_capacity())
    }

    /// Whether this replica's own execution is `max_unexecuted` or more blocks behind
    /// its deliveries: then, as leader, it proposes no requests (back-pressure).
    pub(crate) fn execution_bound(&self) -> bool {
        self.last_delivered.0.saturating_sub(self.last_executed.0) >= self.cfg.common.max_unexecuted
    }

    /// Whether voting for a block with requests whose parent is `parent` could leave
    /// this replica `2 × max_unexecuted` or more blocks with requests behind in
    /// execution: its execution lag (delivered, not executed) plus the uncommitted
    /// blocks with requests from `parent` down to the committed tip — they commit
    /// together with the block, however many there are (a long chain of certified
    /// blocks in non-consecutive rounds commits at once). Then it votes for no block
    /// carrying requests (`try_vote`). The walk stops at the committed tip, at a
    /// missing block, or as soon as the bound is reached, so it takes at most
    /// `2 × max_unexecuted` blocks with requests plus the empty blocks between them
    /// (each step goes one height down).
    pub(crate) fn execution_lags_for_voting(&self, parent: Digest) -> bool {
        let bound = self.cfg.common.max_unexecuted.saturating_mul(2);
        let mut lag = self.last_delivered.0.saturating_sub(self.last_executed.0);
        if lag >= bound {
            return true;
        }
        let tip_height = self.tree.tip().1;
        let mut cur = parent;
        while let Some(b) = self.tree.get(&cur)
            && b.height > tip_height
        {
            if !b.batch.is_empty() {
                lag = lag.saturating_add(1);
                if lag >= bound {
                    return true;
                }
            }
            match self.tree.get(&b.parent()) {
                Some(p) if p.height < b.height => cur = b.parent(),
                _ => break,
            }
        }
        false
    }

    /// A request from a client's authenticated channel: queued here (every replica
    /// leads in turn and proposes from its queue). While no uncommitted block carries
    /// requests (the chain may be idle, its leaders with nothing to propose) it is also
    /// handed to the current and next rounds' leaders, so an idle cluster starts at
    /// once; under load it waits here until this replica or another the client chose
    /// leads, which keeps the copies of a request on the wire at f+1.
    pub(crate) fn on_client_request(
        &mut self,
        now: Time,
        req: Request,
        out: &mut Vec<HotStuffAction>,
    ) {
        if req.payload.len() > self.cfg.common.max_request_bytes {
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
        let full = self.pending.len() >= self.admission_bound();
        let share_used = self.pending.len() >= self.contended_bound()
            && self.pending_by_client.get(req.client) >= self.per_client_bound();
        if (full || share_used) && !self.pending.contains(&req.key()) {
            // Admission control: this replica already holds what back-pressure lets
            // a leader order before execution catches up; tell the client at once,
            // so it backs off instead of timing out. One client gets at most its
            // share of the queue, so a flooding client cannot starve the others.
            self.counters.refused_busy += 1;
            if !full {
                self.counters.refused_busy_client_share += 1;
            }
            let signer = self.cfg.common.signed_all.then_some(&self.keys);
            let reply = Reply::refusal(self.round(), self.me, req.client, vec![req.number], signer);
            out.push(Action::Reply {
                client: req.client,
                reply,
            });
            return;
        }
        if !self.enqueue(req.clone()) {
            return;
        }
        if !self.uncommitted_payload() {
            let round = self.round();
            let current = self.leader(round);
            let next = self.leader(round.next());
            self.send(current, Message::Forward(vec![req.clone()]), out);
            if next != current {
                self.send(next, Message::Forward(vec![req]), out);
            }
        }
        self.try_propose(now, out);
    }

    /// Requests another replica handed to us.
    pub(crate) fn on_forward(
        &mut self,
        now: Time,
        reqs: Vec<Request>,
        out: &mut Vec<HotStuffAction>,
    ) {
        if reqs.len() > self.cfg.common.max_batch {
            self.counters.dropped_oversize_batch += 1;
            return;
        }
        for req in reqs {
            if req.payload.len() > self.cfg.common.max_request_bytes {
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
            if is_delivered(&self.delivered_table, req.client, req.number) {
                continue;
            }
            // Admission control and the client's share apply to forwarded requests
            // as to direct ones: a client flooding another replica cannot fill this
            // queue through its forwards. A forward is only a hint (the forwarder
            // queued the request and proposes it when it leads; no timer here waits
            // for it), so not queuing it costs no liveness.
            let full = self.pending.len() >= self.admission_bound();
            let share_used = self.pending.len() >= self.contended_bound()
                && self.pending_by_client.get(req.client) >= self.per_client_bound();
            if (full || share_used) && !self.pending.contains(&req.key()) {
                self.counters.dropped_forward_over_share += 1;
                continue;
            }
            self.enqueue(req);
        }
        self.try_propose(now, out);
    }

    /// Whether a client request (direct or forwarded) may be queued: its authenticator
    /// is well formed and carries a valid MAC for this replica, and its number is
    /// within the client window of its client's low mark (issue 10 item 1, as PBFT
    /// admits them). Counts the refusals.
    fn admissible(&mut self, req: &Request) -> bool {
        let n = self.cfg.common.replicas;
        if !req.authenticator_well_formed(n) || !self.keys.verify_client(req) {
            self.counters.unauthenticated_requests += 1;
            return false;
        }
        let window = self.cfg.common.client_window;
        if is_implausibly_far(&self.delivered_table, req.client, req.number, window) {
            self.counters.requests_too_far += 1;
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
        out: &mut Vec<HotStuffAction>,
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
        let signer = self.cfg.common.signed_all.then_some(&self.keys);
        let reply = Reply::marks_answer(self.round(), self.me, client, marks, signer);
        out.push(Action::Reply { client, reply });
    }

    /// Answers an already delivered request: from the reply cache if the cached
    /// result is this request's, else with a [`StaleNumber`](crate::request::StaleNumber) notice (as PBFT does);
    /// returns whether it was delivered.
    fn answer_if_done(&mut self, req: &Request, out: &mut Vec<HotStuffAction>) -> bool {
        let reply = match answer_delivered(&self.delivered_table, &self.reply_cache, req) {
            DeliveredAnswer::Fresh => return false,
            DeliveredAnswer::Result(result) => {
                self.counters.replies_from_cache += 1;
                self.reply(req.client, vec![result])
            }
            DeliveredAnswer::Stale(stale) => {
                if stale.executed_other {
                    self.counters.stale_numbers += 1;
                } else {
                    self.counters.uncached_retransmissions += 1;
                }
                let signer = self.cfg.common.signed_all.then_some(&self.keys);
                Reply::stale_notice(self.round(), self.me, req.client, stale, signer)
            }
        };
        out.push(Action::Reply {
            client: req.client,
            reply,
        });
        true
    }

    /// Queues a request unless it is queued already; false if it was not queued.
    fn enqueue(&mut self, req: Request) -> bool {
        let key = req.key();
        if self.pending.contains(&key) {
            return false;
        }
        self.compact_queue_if_full();
        if self.queue.len() >= self.queue_capacity() {
            self.counters.dropped_queue_full += 1;
            return false;
        }
        self.pending.insert(key);
        self.pending_by_client.add(req.client);
        self.queue.push_back(req);
        true
    }

    /// Drops delivered requests from a full queue (it is cleaned lazily), but only when
    /// at least a sixteenth of it is stale and something was delivered since the last
    /// compaction: a queue full of live requests is not walked again for every request
    /// refused (that made every refusal cost a pass over 64 batches of requests, and
    /// an overloaded replica spent 98% of its time there), so a refusal costs O(1)
    /// amortised.
    fn compact_queue_if_full(&mut self) {
        let len = self.queue.len();
        let stale = len.saturating_sub(self.pending.len());
        if len < self.queue_capacity()
            || stale < (self.queue_capacity() / 16).max(1)
            || self.pending.len() == self.pending_at_compaction
        {
            return;
        }
        let pending = &self.pending;
        self.queue.retain(|r| pending.contains(&r.key()));
        self.pending_at_compaction = self.pending.len();
        self.counters.queue_compactions += 1;
    }

    /// Whether any of the `len` blocks from `from` down carries requests (whether
    /// committed or not): while it does, leaders keep proposing so that its QCs reach
    /// every replica.
    fn window_has_payload(&self, from: Digest, len: usize) -> bool {
        let mut cur = from;
        for _ in 0..len {
            let Some(b) = self.tree.get(&cur) else {
                return true;
            };
            if !b.batch.is_empty() {
                return true;
            }
            if b.height == Seq(0) {
                return false;
            }
            cur = b.parent();
        }
        false
    }

    /// Whether an uncommitted block this replica knows of carries requests: one on the
    /// highest QC's chain above the committed tip (walked down to the tip; at most the
    /// uncommitted blocks held), or the block it voted for last.
    pub(crate) fn uncommitted_payload(&self) -> bool {
        let tip_height = self.tree.tip().1;
        let above_tip_with_payload = |d: &Digest| {
            self.tree
                .get(d)
                .is_some_and(|b| b.height > tip_height && !b.batch.is_empty())
        };
        let mut cur = self.high_qc.block;
        loop {
            match self.tree.get(&cur) {
                Some(b) if b.height > tip_height => {
                    if !b.batch.is_empty() {
                        return true;
                    }
                    cur = b.parent();
                }
                Some(_) => break,
                None => return self.high_qc.round > self.tree.tip().2,
            }
        }
        self.last_voted_block
            .as_ref()
            .is_some_and(above_tip_with_payload)
    }

    /// As the current round's leader, proposes a block extending the highest QC, once
    /// per round, when there are requests or uncommitted requests need more QCs.
    ///
    /// Once per round across restarts too: a leader proposes only in a round it has
    /// neither voted nor timed out in, and its proposal leaves after the `Voted` record
    /// of its own vote for it (withheld if it could not vote for it), so a restarted
    /// leader, which resumes in its last voted round with `last_proposed` at least that
    /// round (`durable.rs`), never proposes a second, different block there.
    pub(crate) fn try_propose(&mut self, now: Time, out: &mut Vec<HotStuffAction>) {
        let round = self.round();
        if self.leader(round) != self.me
            || self.last_proposed >= round
            || self.safety.last_voted_round() >= round
        {
            return;
        }
        let tc = if self.high_qc.round.next() == round {
            None
        } else {
            match self.pacemaker.last_tc() {
                Some(tc) if tc.round.next() == round => Some(tc.clone()),
                _ => return,
            }
        };
        let parent_digest = self.high_qc.block;
        let Some(parent) = self.tree.get(&parent_digest).cloned() else {
            self.fetch(parent_digest, None, out);
            return;
        };
        let chain_len = self.safety.chain_length();
        // Back-pressure from execution: while this replica's own execution lags its
        // deliveries by `max_unexecuted` blocks, it proposes no requests — an empty
        // block (its requests stay queued for a later round).
        let throttled = self.execution_bound();
        let batch = if throttled {
            self.counters.proposals_throttled += 1;
            Batch::default()
        } else {
            self.next_batch(parent_digest)
        };
        if batch.is_empty()
            && !self.window_has_payload(parent_digest, chain_len)
            && !self.uncommitted_payload()
        {
            if !throttled {
                return; // idle: nothing to order
            }
            // Throttled with nothing that needs ordering: the others may still hold
            // requests, so their round timers run. Proposing nothing (as before) let
            // a leader whose execution lagged far behind — slower than the rest, so
            // throttled for long — time every round it led out (HotStuff fell from
            // 18,552 to 6,987 tx/s at 80,000 tx/s offered, with round time-outs).
            // Instead it proposes an empty keep-alive block, which keeps the chain and
            // the rounds going, a quarter of the base round time-out after it entered
            // the round (unless execution frees it first: `on_executed` proposes
            // again). The wait bounds empty rounds: at most one per round, and a round
            // with a keep-alive block lasts at least base/4 — at most 4 empty blocks
            // per base time-out (4/s at the default 1 s), however many leaders are
            // throttled, so a cluster whose execution lags does not spin empty rounds
            // (each is one more block to deliver and execute). base/4 is well inside
            // every replica's round time-out (at least the base), so no round times
            // out for it.
            let due = self.round_started + self.cfg.own.round_timeout / 4;
            if now < due {
                if self.timers.deadline(HotStuffTimer::KeepAlive) != Some(due) {
                    self.set_timer(HotStuffTimer::KeepAlive, due, out);
                }
                return;
            }
            self.counters.keep_alive_blocks += 1;
        }
        self.last_proposed = round;
        let block = Arc::new(Block {
            round,
            height: parent.height.next(),
            author: self.me,
            qc: self.high_qc.clone(),
            batch: Arc::new(batch),
        });
        let proposal = Proposal { block, tc };
        let mut own = Vec::new();
        self.on_proposal(now, self.me, proposal.clone(), &mut own);
        // The proposal leaves right after the record of our vote for it: a restart
        // from any later point knows we proposed in this round.
        let Some(voted) = own.iter().position(
            |a| matches!(a, Action::Persist(HotStuffRecord::Voted(b)) if b.round == round),
        ) else {
            self.counters.proposals_withheld += 1;
            out.append(&mut own);
            return;
        };
        self.counters.blocks_proposed += 1;
        let mut broadcast = Vec::with_capacity(1);
        self.broadcast(Message::Proposal(proposal), &mut broadcast);
        own.splice(voted + 1..voted + 1, broadcast);
        out.append(&mut own);
    }

    /// Up to one batch of queued requests that are neither delivered nor in an
    /// uncommitted block from `parent` down.
    fn next_batch(&mut self, parent: Digest) -> Batch {
        while let Some(front) = self.queue.front() {
            if self.pending.contains(&front.key()) {
                break;
            }
            self.queue.pop_front();
        }
        if self.queue.is_empty() {
            return Batch::default();
        }
        let tip_height = self.tree.tip().1;
        let mut in_chain: BTreeSet<(ClientId, u64)> = BTreeSet::new();
        let mut cur = parent;
        while let Some(b) = self.tree.get(&cur) {
            if b.height <= tip_height {
                break;
            }
            in_chain.extend(b.batch.requests.iter().map(Request::key));
            cur = b.parent();
        }
        let max_batch = self.cfg.common.max_batch;
        let max_bytes = self.cfg.common.max_batch_bytes;
        let mut requests = Vec::new();
        let mut bytes = 0usize;
        for req in &self.queue {
            if requests.len() >= max_batch {
                break;
            }
            let key = req.key();
            if !self.pending.contains(&key) || in_chain.contains(&key) {
                continue;
            }
            if is_delivered(&self.delivered_table, req.client, req.number) {
                continue;
            }
            if !requests.is_empty() && bytes + req.payload.len() > max_bytes {
                break;
            }
            bytes += req.payload.len();
            requests.push(req.clone());
        }
        Batch::new(requests)
    }

    /// Whether a batch respects the size limits, names only allowed clients and carries
    /// well-formed authenticators (none, or one MAC per replica).
    pub(crate) fn batch_within_limits(&self, batch: &Batch) -> bool {
        let c = &self.cfg.common;
        batch.len() <= c.max_batch
            && batch.payload_bytes() <= c.max_batch_bytes
            && batch.requests.iter().all(|r| {
                r.payload.len() <= c.max_request_bytes
                    && r.authenticator_well_formed(c.replicas)
                    && self.client_allowed(r.client)
            })
    }

    /// Checks a block's shape (what needs no other state).
    pub(crate) fn block_well_formed(&self, block: &Block) -> bool {
        block.round > crate::types::View(0)
            && block.height > Seq(0)
            && block.qc.round < block.round
            && block.author.index() < self.n
    }

    /// A leader's proposal (our own included).
    pub(crate) fn on_proposal(
        &mut self,
        now: Time,
        from: ReplicaId,
        p: Proposal,
        out: &mut Vec<HotStuffAction>,
    ) {
        let block = p.block;
        if block.author != from || self.leader(block.round) != from {
            self.counters.dropped_wrong_sender += 1;
            return;
        }
        if !self.block_well_formed(&block)
            || p.tc.as_ref().is_some_and(|tc| tc.round >= block.round)
        {
            self.counters.dropped_malformed += 1;
            return;
        }
        if block.round < self.round() {
            self.counters.dropped_stale_round += 1;
            return;
        }
        if block.round.0 > self.round().0.saturating_add(MAX_ROUNDS_AHEAD) {
            self.counters.dropped_future += 1;
            return;
        }
        if !self.batch_within_limits(&block.batch) {
            self.counters.dropped_oversize_batch += 1;
            return;
        }
        if !self.verify_qc(&block.qc) || !p.tc.as_ref().is_none_or(|tc| self.verify_tc(tc)) {
            self.counters.dropped_bad_signature += 1;
            return;
        }
        self.process_qc(now, block.qc.clone(), Some(from), out);
        if let Some(tc) = &p.tc {
            self.process_tc(now, tc.clone(), out);
        }
        if block.round != self.round() {
            // Not justified by its QC or TC (or we moved past it meanwhile).
            self.counters.dropped_future += u64::from(block.round > self.round());
            self.counters.dropped_stale_round += u64::from(block.round < self.round());
            return;
        }
        let digest = block.digest();
        match self.proposed_in.get(&block.round) {
            Some(d) if *d != digest => {
                self.counters.dropped_equivocation += 1;
                return;
            }
            Some(_) => {
                self.counters.dropped_duplicate += 1;
                return;
            }
            None => {
                self.proposed_in.insert(block.round, digest);
            }
        }
        match self.tree.insert(digest, block) {
            Insert::Inserted | Insert::Known => {}
            Insert::Stale => {
                self.counters.dropped_stale_round += 1;
                return;
            }
            Insert::Full => {
                self.counters.dropped_tree_full += 1;
                return;
            }
        }
        self.try_vote(now, digest, p.tc, from, out);
    }

    /// Votes for held block `digest` of the current round if its parent is held, it
    /// follows its parent, and the safety rules allow it.
    pub(crate) fn try_vote(
        &mut self,
        now: Time,
        digest: Digest,
        tc: Option<Arc<Tc>>,
        from: ReplicaId,
        out: &mut Vec<HotStuffAction>,
    ) {
        let Some(block) = self.tree.get(&digest).cloned() else {
            return;
        };
        if block.round != self.round() {
            return;
        }
        let Some(parent) = self.tree.get(&block.parent()) else {
            self.counters.proposals_deferred += 1;
            self.deferred = Some((digest, tc));
            self.fetch(block.parent(), Some(from), out);
            return;
        };
        if parent.height.next() != block.height || parent.round >= block.round {
            self.counters.dropped_bad_block += 1;
            return;
        }
        // A leader may propose only requests their clients sent: a replica votes only
        // for a block whose every request carries a valid MAC for it. Without its vote
        // the block can still be certified by 2f+1 others (then at least f+1 correct
        // replicas authenticated it) and this replica executes it when it commits.
        // Our own proposal (from == me: `try_propose` calls `on_proposal` directly; a
        // peer's channel never carries our id) holds only requests our queue admitted,
        // each checked by `admissible`, so it is not checked twice.
        let keys = &mut self.keys;
        if from != self.me && !block.batch.requests.iter().all(|r| keys.verify_client(r)) {
            self.counters.withheld_votes += 1;
            return;
        }
        // Back-pressure on the voters' side: a leader enforces `max_unexecuted` on its
        // own execution only, and a Byzantine one need not at all. A replica whose
        // execution lags its deliveries by 2 × max_unexecuted blocks votes for no
        // further block carrying requests (empty blocks still get its vote: they keep
        // the chain and its commits going); the uncommitted blocks with requests below
        // the block count as lag too, since they commit with it. A block with requests
        // then needs 2f+1 votes of replicas below that lag — f+1 correct ones among
        // them — so what correct replicas hold delivered but unexecuted stays bounded
        // (ARCHITECTURE.md, "Overload").
        if !block.batch.is_empty() && self.execution_lags_for_voting(block.parent()) {
            self.counters.votes_withheld_execution_lag += 1;
            // Retried from `on_executed` once execution catches up in this round.
            self.lag_withheld = Some((digest, tc, from));
            return;
        }
        if !self
            .safety
            .safe_to_vote(block.round, block.qc.round, tc.as_deref())
        {
            self.counters.votes_refused += 1;
            return;
        }
        self.safety.record_vote(block.round);
        self.last_voted_block = Some(digest);
        // The lock rises with QCs seen by any path (proposals, timeouts, fetched
        // blocks); it is logged before the first vote cast under it.
        let lock = self.safety.preferred_round();
        if self.safety.chain_length() >= 3 && lock > self.persisted_lock {
            self.persisted_lock = lock;
            out.push(Action::Persist(HotStuffRecord::Locked(lock)));
        }
        out.push(Action::Persist(HotStuffRecord::Voted(block.clone())));
        self.logged_qc_round = self.logged_qc_round.max(block.qc.round);
        let body = VoteBody {
            block: digest,
            round: block.round,
        };
        let vote = Signed {
            signature: self.keys.sign(&body.signing_bytes()),
            body,
            signer: self.me,
        };
        self.counters.votes_sent += 1;
        self.last_vote = Some(vote.clone());
        let next = self.leader(block.round.next());
        if next == self.me {
            self.add_vote(now, vote, out);
        } else {
            self.send(next, Message::Vote(vote), out);
        }
    }

    /// A vote for a block of round r: to us as leader of r + 1, or broadcast with the
    /// sender's timeout of r (our current round), so that everyone can form the QC
    /// when the next leader is faulty (as DiemBFT v4 / Aptos do).
    pub(crate) fn on_vote(
        &mut self,
        now: Time,
        from: ReplicaId,
        vote: Vote,
        out: &mut Vec<HotStuffAction>,
    ) {
        let round = vote.body.round;
        if vote.signer != from || (self.leader(round.next()) != self.me && round != self.round()) {
            self.counters.dropped_wrong_sender += 1;
            return;
        }
        if round.next() < self.round() || round <= self.high_qc.round {
            self.counters.dropped_stale_round += 1;
            return;
        }
        if round.0 > self.round().0.saturating_add(MAX_ROUNDS_AHEAD) {
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
        self.add_vote(now, vote, out);
    }

    /// Counts our own vote (broadcast with our timeout).
    pub(crate) fn add_own_vote(&mut self, now: Time, vote: Vote, out: &mut Vec<HotStuffAction>) {
        self.add_vote(now, vote, out);
    }

    /// Counts a verified vote; forms the QC once a quorum voted for one block.
    fn add_vote(&mut self, now: Time, vote: Vote, out: &mut Vec<HotStuffAction>) {
        let round = vote.body.round;
        let of_round = self.votes.entry(round).or_default();
        if let Some(prev) = of_round.get(&vote.signer) {
            if prev.body != vote.body {
                self.counters.dropped_equivocation += 1;
            } else {
                self.counters.dropped_duplicate += 1;
            }
            return;
        }
        let digest = vote.body.block;
        of_round.insert(vote.signer, vote);
        let matching: Vec<Vote> = of_round
            .values()
            .filter(|v| v.body.block == digest)
            .cloned()
            .collect();
        if matching.len() >= self.quorum && round > self.high_qc.round {
            let qc = Qc {
                block: digest,
                round,
                votes: matching,
            };
            self.counters.qcs_formed += 1;
            self.certified.insert(digest, qc.clone());
            self.process_qc(now, qc, None, out);
        }
    }

    /// Whether `qc` is valid. Only a QC identical to one this replica verified or
    /// formed (votes and signatures included), or to its highest QC, skips the
    /// signature checks: a copy of a certified `(block, round)` whose votes were
    /// stripped or forged is verified, and refused, like any other.
    pub(crate) fn verify_qc(&mut self, qc: &Qc) -> bool {
        if self.certified.get(&qc.block) == Some(qc) || *qc == self.high_qc {
            return true;
        }
        let ok = qc.verify(&mut self.keys, self.quorum);
        if ok {
            self.certified.insert(qc.block, qc.clone());
        }
        ok
    }

    /// Whether `tc` is valid (ours, or checked now).
    pub(crate) fn verify_tc(&mut self, tc: &Tc) -> bool {
        if self.pacemaker.last_tc().is_some_and(|t| **t == *tc) {
            return true;
        }
        tc.verify(&mut self.keys, self.quorum)
    }

    /// A verified QC: raises the highest QC and the lock, applies the commit rule,
    /// fetches the block if it is missing (from `from` if known), and enters the next
    /// round.
    pub(crate) fn process_qc(
        &mut self,
        now: Time,
        qc: Qc,
        from: Option<ReplicaId>,
        out: &mut Vec<HotStuffAction>,
    ) {
        let (block, round) = (qc.block, qc.round);
        if round > self.high_qc.round {
            self.high_qc = qc;
        }
        if let Some(b) = self.tree.get(&block) {
            let parent_round = b.qc.round;
            self.safety.observe_qc(parent_round);
            self.check_commit(now, block, from, out);
        } else if round > self.tree.tip().2 {
            self.fetch(block, from, out);
        }
        self.advance_round(now, round.next(), true, out);
    }

    /// Applies the commit rule to the chain a QC certifies (its head `certified`).
    pub(crate) fn check_commit(
        &mut self,
        now: Time,
        certified: Digest,
        from: Option<ReplicaId>,
        out: &mut Vec<HotStuffAction>,
    ) {
        let len = self.safety.chain_length();
        let chain = self.tree.chain(certified, len);
        if chain.len() < len {
            // An ancestor is missing: fetch it if it could still commit.
            if let Some((last, _)) = chain.last()
                && let Some(b) = self.tree.get(last)
                && b.height > self.tree.tip().1
            {
                let parent = b.parent();
                self.fetch(parent, from, out);
            }
            return;
        }
        let Some(target) = commit_target(&chain, len) else {
            return;
        };
        match self.tree.commit(target) {
            Ok(blocks) => {
                if blocks.is_empty() {
                    return;
                }
                self.note_commit_qc(certified);
                self.counters.blocks_committed += blocks.len() as u64;
                let tip_round = self.tree.tip().2;
                self.certified.retain(|_, qc| qc.round >= tip_round);
                self.try_deliver(now, out);
            }
            Err(CommitError::Missing(d)) => self.fetch(d, from, out),
            Err(CommitError::Conflict { height }) => {
                self.counters.conflicting_commits += 1;
                tracing::error!(replica = %self.me, %height, block = %target,
                    "a committed chain conflicts with the committed one");
            }
        }
    }

    /// Enters `round` if higher: resets per-round state and proposes as its leader.
    pub(crate) fn advance_round(
        &mut self,
        now: Time,
        round: Round,
        by_qc: bool,
        out: &mut Vec<HotStuffAction>,
    ) {
        if !self.pacemaker.advance(round, by_qc) {
            return;
        }
        self.round_changed = true;
        self.round_started = now;
        self.my_timeout = None;
        let keep_from = crate::types::View(round.0.saturating_sub(1));
        self.votes = self.votes.split_off(&keep_from);
        self.proposed_in = self.proposed_in.split_off(&keep_from);
        if self
            .deferred
            .as_ref()
            .is_some_and(|(d, _)| self.tree.get(d).is_none_or(|b| b.round < round))
        {
            self.deferred = None;
        }
        self.lag_withheld = None;
        self.try_propose(now, out);
        // A chain without uncommitted requests may be idle because its leaders have
        // none: hand them ours.
        let leader = self.leader(round);
        if leader != self.me && !self.pending.is_empty() && !self.uncommitted_payload() {
            let reqs: Vec<Request> = self
                .queue
                .iter()
                .filter(|r| self.pending.contains(&r.key()))
                .take(self.cfg.common.max_batch)
                .cloned()
                .collect();
            if !reqs.is_empty() {
                self.send(leader, Message::Forward(reqs), out);
            }
        }
    }

    /// Delivers committed blocks in height order, filtering requests already
    /// delivered.
    pub(crate) fn try_deliver(&mut self, _now: Time, out: &mut Vec<HotStuffAction>) {
        if self.installing.is_some() {
            return;
        }
        let tip_height = self.tree.tip().1;
        while self.last_delivered < tip_height {
            let seq = self.last_delivered.next();
            let Some(digest) = self.tree.committed_at(seq) else {
                break;
            };
            let Some(block) = self.tree.get(&digest).cloned() else {
                break;
            };
            let batch = self.filter_fresh(&block.batch);
            let checkpoint = seq.is_checkpoint(self.cfg.common.checkpoint_interval);
            self.pending_execution.insert(
                seq,
                PendingExecution {
                    batch: batch.clone(),
                    block: digest,
                    delivered_at_checkpoint: checkpoint.then(|| self.delivered_table.clone()),
                },
            );
            self.counters.batches_delivered += 1;
            self.counters.requests_delivered += batch.len() as u64;
            out.push(Action::Deliver(Delivery {
                view: block.round,
                seq,
                batch,
                checkpoint,
            }));
            self.last_delivered = seq;
        }
    }

    /// The requests of `batch` not delivered before, marking them delivered.
    fn filter_fresh(&mut self, batch: &Arc<Batch>) -> Arc<Batch> {
        let (pending, by_client) = (&mut self.pending, &mut self.pending_by_client);
        let (fresh, left_out) = filter_fresh(
            &mut self.delivered_table,
            batch,
            self.cfg.common.client_window,
            |req| {
                if pending.remove(&req.key()) {
                    by_client.remove(req.client);
                }
            },
        );
        self.counters.duplicate_requests_filtered += left_out.duplicates + left_out.too_far;
        fresh
    }

    /// The application executed `seq`: record results, reply, checkpoint.
    pub(crate) fn on_executed(&mut self, now: Time, ex: Executed, out: &mut Vec<HotStuffAction>) {
        if ex.seq <= self.last_executed {
            return;
        }
        if ex.seq != self.last_executed.next() {
            self.counters.unexpected_executions += 1;
            return;
        }
        let Some(pending) = self.pending_execution.remove(&ex.seq) else {
            self.counters.unexpected_executions += 1;
            return;
        };
        if ex.results.len() != pending.batch.len() {
            self.counters.unexpected_executions += 1;
        }
        self.last_executed = ex.seq;
        self.record_and_reply(&pending.batch, ex.results, out);
        if let Some(delivered) = pending.delivered_at_checkpoint {
            match ex.app_digest {
                Some(app_digest) => {
                    let tables = ClientTables { delivered };
                    self.take_checkpoint(now, ex.seq, app_digest, tables, pending.block, out);
                }
                // Counted and the checkpoint skipped, but execution did catch up: a
                // leader held back by `max_unexecuted` must still propose below.
                None => self.counters.unexpected_executions += 1,
            }
        }
        // A vote withheld for execution lag in this round may go now: retried through
        // `try_vote`, so the round, parent and safety checks run again.
        let retry = self.lag_withheld.as_ref().is_some_and(|(digest, _, _)| {
            self.tree
                .get(digest)
                .is_some_and(|b| !self.execution_lags_for_voting(b.parent()))
        });
        if retry && let Some((digest, tc, from)) = self.lag_withheld.take() {
            self.try_vote(now, digest, tc, from, out);
        }
        // A proposal held back by `max_unexecuted` may go now.
        self.try_propose(now, out);
    }

    fn record_and_reply(
        &mut self,
        batch: &Batch,
        results: Vec<Bytes>,
        out: &mut Vec<HotStuffAction>,
    ) {
        let window = self.cfg.common.client_window;
        for (client, results) in record_batch_results(&mut self.reply_cache, batch, results, window)
        {
            let reply = self.reply(client, results);
            out.push(Action::Reply { client, reply });
        }
    }

    /// A reply reporting the current round, signed in signed-all mode.
    pub(crate) fn reply(&self, client: ClientId, results: Vec<ReplyResult>) -> Reply {
        let signer = self.cfg.common.signed_all.then_some(&self.keys);
        Reply::new(self.round(), self.me, client, results, signer)
    }
}
