//! The PBFT replica's state and its event dispatch.
//!
//! [`Pbft`] is the honest protocol. Its behaviour is spread over sibling files by
//! concern — `normal.rs` (requests, the three phases, delivery, replies),
//! `checkpoint.rs`, `view_change.rs` and `recovery.rs` (status, retransmission, state
//! transfer) — each an `impl Pbft` block over the state declared here.
//!
//! Invariants (checked with `debug_assert!` where they are established):
//! - `last_executed ≤ last_delivered`, and deliveries are gap-free in sequence order;
//! - `stable.seq` only grows; the log holds nothing at or below
//!   `min(stable.seq, last_delivered)`;
//! - at most one digest per sequence number is ever committed (`safety_conflicts`
//!   counts violations, which the simulator treats as fatal);
//! - `slots` only hold the current view, and only sequence numbers in the window.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::checkpoint::{CheckpointReplica, CheckpointVotes, OwnCheckpoint, PendingInstall};
use crate::client_quota::QueuedPerClient;
use crate::crypto::Keyring;
use crate::exactly_once::{DeliveredTable, MarksDesk, ReplyCache};
use crate::params::ParamsError;
use crate::pbft::config::PbftConfig;
use crate::pbft::counters::Counters;
use crate::pbft::durable::PbftRecord;
use crate::pbft::message::{
    Envelope, Message, PbftTimer, SignedNewView, SignedViewChange, StableCert,
};
use crate::protocol::{Action, Event, ReplicaStatus};
use crate::request::{Batch, Request};
use crate::resend_budget::ResendBudget;
use crate::state_transfer::{StateTransfer, Transfer};
use crate::timers::Timers;
use crate::types::{ClientId, Digest, ReplicaId, Seq, Time, View};

/// An action of the PBFT protocol.
pub type PbftAction = Action<Envelope, PbftTimer, PbftRecord>;
/// An event of the PBFT protocol.
pub type PbftEvent = Event<Envelope, PbftTimer>;

/// How many views ahead of the current one messages are buffered or view changes kept.
pub(crate) const MAX_VIEWS_AHEAD: u64 = 16;

/// How many of our own past view changes we keep to resend (each holds at most one
/// watermark window of claims, so the memory is bounded by four of them). A peer is
/// left behind in a view change only when it missed view changes of a view a quorum
/// reached; each further view we move to needs our timer to expire again, which doubles
/// (so reaching four views on takes 2 + 4 + 8 + 16 base time-outs), by when the peer's
/// status has long asked us for the older ones. A peer further behind is still caught
/// up by the f+1 rule once the others move on.
pub(crate) const OWN_VIEW_CHANGES_KEPT: usize = 4;
/// What one peer has buffered for views not yet started (see
/// [`Pbft::future_bounds`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FutureLoad {
    /// Messages buffered.
    pub messages: usize,
    /// Their encoded size, in bytes.
    pub bytes: usize,
}
/// Allowance per buffered message beyond its batch's payload bytes (framing, request
/// headers, a vote), in bytes.
pub(crate) const FUTURE_OVERHEAD: usize = 256;
/// How many times a backup extends its normal-case view timer while the primary
/// makes progress (slow, not dead: overloaded by execution): it delivered fresh
/// requests since the timer was armed, and either some of them were awaited or it
/// delivered full batches. Bounded per awaited request over the view (however many
/// timers it waited through), so a primary that orders everyone's requests but one is
/// still replaced, after at most `1 + MAX_VIEW_TIMER_EXTENSIONS` time-outs of that
/// request's wait.
pub(crate) const MAX_VIEW_TIMER_EXTENSIONS: u32 = 3;
/// Cap on retransmitted items in answer to one status message.
pub(crate) const RETRANSMIT_LIMIT: usize = 16;

/// A peer's progress as its status messages report it (see `recovery.rs`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PeerProgress {
    /// `last_delivered` in its latest status.
    pub delivered: Seq,
    /// When that number last grew.
    pub since: Time,
    /// The highest sequence number our latest resend to it covered.
    pub resent_to: Option<Seq>,
}

impl PeerProgress {
    /// Records a status reporting `delivered` at `now`; returns whether the peer
    /// should get retransmissions: it consumed everything we resent last time (it is
    /// catching up from our resends), or it delivered nothing for `patience`. A peer
    /// that progresses on its own is slow, not missing messages: they are queued, in
    /// order, on its link.
    pub fn wants_resend(&mut self, now: Time, delivered: Seq, patience: Duration) -> bool {
        let consumed = self.resent_to.is_some_and(|r| delivered >= r);
        if delivered != self.delivered {
            self.delivered = delivered;
            self.since = now;
        }
        consumed || now.since(self.since) >= patience
    }
}
/// Cap on pre-prepared claims kept per sequence number.
pub(crate) const MAX_CLAIMS_PER_SEQ: usize = 8;

/// One sequence number in the current view.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// Digest of the accepted pre-prepare (or new-view re-proposal).
    pub digest: Option<Digest>,
    /// When it was accepted.
    pub accepted_at: Option<Time>,
    /// Prepare votes by sender (backups only).
    pub prepares: BTreeMap<ReplicaId, Digest>,
    /// Commit votes by sender.
    pub commits: BTreeMap<ReplicaId, Digest>,
    /// Prepared: pre-prepare plus a quorum minus one matching prepares.
    pub prepared: bool,
    /// Committed locally: prepared plus a quorum of matching commits.
    pub committed: bool,
    /// The pre-prepared batch held a request without a valid MAC for this replica:
    /// no prepare of ours (see `normal.rs`, `on_pre_prepare`).
    pub withheld: bool,
}

/// A batch committed at some sequence number, kept until garbage collection.
#[derive(Debug, Clone)]
pub(crate) struct CommittedEntry {
    pub digest: Digest,
    pub batch: Arc<Batch>,
    pub delivered_at: Option<Time>,
}

/// A request a backup knows of and waits to see executed.
#[derive(Clone, Debug)]
pub(crate) struct Awaited {
    /// Arrival order (a counter), for picking the oldest.
    pub arrival: u64,
    /// When this replica started waiting for it in the current view: its arrival, or
    /// the start of the view if it arrived before. The normal-case view timer running
    /// for it never fires later than `since + (1 + MAX_VIEW_TIMER_EXTENSIONS)` view
    /// time-outs ([`Pbft::wait_deadline`]), however many timers for older requests it
    /// waited through.
    pub since: Time,
    /// The request.
    pub req: Request,
    /// Normal-case view-timer extensions this request waited through in the current
    /// view, whichever request the timer ran for: once it reaches
    /// [`MAX_VIEW_TIMER_EXTENSIONS`] a timer running for it is not extended again, so
    /// a primary cannot restart the budget by ordering the older requests one by one.
    pub extensions: u32,
}

/// Where delivery stood when the normal-case view timer was armed or extended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProgressMark {
    /// `Counters::requests_delivered` (fresh requests, after exactly-once filtering).
    pub requests: u64,
    /// [`Pbft::awaited_delivered`].
    pub awaited: u64,
    /// [`Pbft::full_batches_delivered`].
    pub full_batches: u64,
    /// [`Pbft::awaited_arrivals`]: requests awaited by then waited through the time-out.
    pub arrivals: u64,
}

/// A delivered batch awaiting the application's report.
#[derive(Debug)]
pub(crate) struct PendingExecution {
    /// The filtered batch the application executes.
    pub batch: Arc<Batch>,
    /// At checkpoint sequence numbers: the delivered table as of this delivery.
    pub delivered_at_checkpoint: Option<DeliveredTable>,
}

/// An honest PBFT replica as a deterministic state machine.
#[derive(Debug)]
pub struct Pbft {
    pub(crate) cfg: PbftConfig,
    pub(crate) keys: Keyring,
    pub(crate) me: ReplicaId,
    pub(crate) n: usize,
    pub(crate) quorum: usize,
    pub(crate) weak: usize,

    // View.
    pub(crate) view: View,
    pub(crate) view_active: bool,
    pub(crate) view_backoff: u32,
    pub(crate) new_view_msg: Option<Arc<SignedNewView>>,
    pub(crate) view_changes: BTreeMap<View, BTreeMap<ReplicaId, SignedViewChange>>,
    /// Our own view changes since we were last active in a view, newest
    /// [`OWN_VIEW_CHANGES_KEPT`] at most: resent to a peer still in the view change of
    /// an older one, whose new primary may have lost ours before we moved on.
    pub(crate) own_view_changes: BTreeMap<View, SignedViewChange>,
    pub(crate) future: BTreeMap<View, Vec<(ReplicaId, Message)>>,
    /// Per sender: what it has in `future` (bounded by [`Pbft::future_bounds`]).
    pub(crate) future_load: BTreeMap<ReplicaId, FutureLoad>,

    // Ordering.
    pub(crate) slots: BTreeMap<Seq, Slot>,
    pub(crate) next_seq: Seq,
    /// Highest sequence number accepted in the current view.
    pub(crate) max_accepted: Seq,
    /// Set when something was delivered during the current event.
    pub(crate) progressed: bool,
    pub(crate) prepared_claims: BTreeMap<Seq, (View, Digest)>,
    pub(crate) pre_prepared_claims: BTreeMap<Seq, BTreeMap<Digest, View>>,
    pub(crate) batches: BTreeMap<Digest, Arc<Batch>>,
    pub(crate) wanted_batches: BTreeSet<Digest>,
    pub(crate) committed: BTreeMap<Seq, CommittedEntry>,
    pub(crate) committed_claims: BTreeMap<Seq, BTreeMap<ReplicaId, Digest>>,
    pub(crate) last_delivered: Seq,
    pub(crate) pending_execution: BTreeMap<Seq, PendingExecution>,
    pub(crate) last_executed: Seq,
    pub(crate) installing: Option<PendingInstall>,

    // Checkpoints.
    pub(crate) stable: StableCert,
    pub(crate) checkpoint_votes: CheckpointVotes,
    pub(crate) own_checkpoints: BTreeMap<Seq, OwnCheckpoint>,
    pub(crate) diverged: bool,
    pub(crate) transfer: Option<Transfer>,
    /// What each peer's latest status reported, and how far our last resend to it
    /// went: retransmissions go only to peers that stopped progressing.
    pub(crate) peers: BTreeMap<ReplicaId, PeerProgress>,
    /// Per peer: what it may still get in answer to its status and fetch messages.
    pub(crate) resend_budgets: BTreeMap<ReplicaId, ResendBudget>,

    // Clients.
    pub(crate) delivered_table: DeliveredTable,
    pub(crate) reply_cache: ReplyCache,
    /// Answers to clients' marks queries, rate-bounded per client.
    pub(crate) marks_desk: MarksDesk,
    pub(crate) queue: VecDeque<Request>,
    pub(crate) queue_since: Option<Time>,
    pub(crate) pending: BTreeSet<(ClientId, u64)>,
    /// Requests in `queue`, per client (for `per_client_bound`).
    pub(crate) queued_by_client: QueuedPerClient,
    /// Requests in `queue` that a backup forwarded (and were not queued before),
    /// with the first backup that forwarded each: their count per (backup, client)
    /// is in `forwarded_counts`.
    pub(crate) forwarded_by: BTreeMap<(ClientId, u64), ReplicaId>,
    /// Of the requests in `queue`, how many each backup forwarded per client (no
    /// zero entries; bounded by the queue).
    pub(crate) forwarded_counts: BTreeMap<(ReplicaId, ClientId), usize>,
    /// Requests a backup knows of and waits to see executed.
    pub(crate) awaited: BTreeMap<(ClientId, u64), Awaited>,
    /// Arrival counter of `awaited`.
    pub(crate) awaited_arrivals: u64,
    /// The awaited request the view timer runs for (PBFT's per-request timer): set
    /// when the timer is armed for it, cleared only when it executes or the view
    /// changes, never re-armed by other deliveries.
    pub(crate) timed_request: Option<(ClientId, u64)>,
    /// Where delivery stood when the normal-case view timer was last armed or
    /// extended: what was delivered beyond it is the primary's progress since.
    pub(crate) timer_mark: ProgressMark,
    /// Extensions of the current normal-case view timer while it runs for no awaited
    /// request (at most [`MAX_VIEW_TIMER_EXTENSIONS`]); a timer that runs for an
    /// awaited request counts that request's [`Awaited::extensions`] instead.
    pub(crate) timer_extensions: u32,
    /// Awaited requests delivered so far (only grows).
    pub(crate) awaited_delivered: u64,
    /// Full batches delivered so far (only grows): batches that, after exactly-once
    /// filtering, held `max_batch` requests or had no room for another request of
    /// `max_request_bytes`.
    pub(crate) full_batches_delivered: u64,
    /// When set, requests from other client ids are refused, so a Byzantine primary
    /// cannot grow the client tables with made-up clients.
    pub(crate) allowed_clients: Option<BTreeSet<ClientId>>,

    // Timers: the deadline of every armed timer, so stale firings are ignored.
    pub(crate) timers: Timers<PbftTimer>,

    pub(crate) counters: Counters,
}

impl Pbft {
    /// A replica with `keys` (its own signing key and all replicas' public keys).
    pub fn new(cfg: PbftConfig, keys: Keyring) -> Result<Pbft, ParamsError> {
        cfg.validate()?;
        if keys.replica_keys().len() != cfg.replicas {
            return Err(ParamsError::new(
                "replicas",
                format!(
                    "is {} but the cluster has {} replica keys",
                    cfg.replicas,
                    keys.replica_keys().len()
                ),
            ));
        }
        let me = keys.me();
        if me.index() >= cfg.replicas {
            return Err(ParamsError::new(
                "id",
                format!("{me} is not below replicas = {}", cfg.replicas),
            ));
        }
        let n = cfg.replicas;
        let quorum = cfg.quorum();
        let weak = cfg.f() + 1;
        let mut batches = BTreeMap::new();
        batches.insert(crate::request::null_digest(), Batch::null());
        Ok(Pbft {
            cfg,
            keys,
            me,
            n,
            quorum,
            weak,
            view: View(0),
            view_active: true,
            view_backoff: 0,
            new_view_msg: None,
            view_changes: BTreeMap::new(),
            own_view_changes: BTreeMap::new(),
            future: BTreeMap::new(),
            future_load: BTreeMap::new(),
            slots: BTreeMap::new(),
            next_seq: Seq(1),
            max_accepted: Seq(0),
            progressed: false,
            prepared_claims: BTreeMap::new(),
            pre_prepared_claims: BTreeMap::new(),
            batches,
            wanted_batches: BTreeSet::new(),
            committed: BTreeMap::new(),
            committed_claims: BTreeMap::new(),
            last_delivered: Seq(0),
            pending_execution: BTreeMap::new(),
            last_executed: Seq(0),
            installing: None,
            stable: StableCert::default(),
            checkpoint_votes: CheckpointVotes::default(),
            own_checkpoints: BTreeMap::new(),
            diverged: false,
            transfer: None,
            peers: BTreeMap::new(),
            resend_budgets: BTreeMap::new(),
            delivered_table: DeliveredTable::new(),
            reply_cache: ReplyCache::new(),
            marks_desk: MarksDesk::default(),
            queue: VecDeque::new(),
            queue_since: None,
            pending: BTreeSet::new(),
            queued_by_client: QueuedPerClient::default(),
            forwarded_by: BTreeMap::new(),
            forwarded_counts: BTreeMap::new(),
            awaited: BTreeMap::new(),
            awaited_arrivals: 0,
            timed_request: None,
            timer_mark: ProgressMark::default(),
            timer_extensions: 0,
            awaited_delivered: 0,
            full_batches_delivered: 0,
            allowed_clients: None,
            timers: Timers::default(),
            counters: Counters::default(),
        })
    }

    /// Restricts requests to these clients (the cluster's members). Without it any
    /// client id is accepted.
    pub fn set_allowed_clients(&mut self, clients: impl IntoIterator<Item = ClientId>) {
        self.allowed_clients = Some(clients.into_iter().collect());
    }

    /// Whether requests from `client` are accepted.
    pub(crate) fn client_allowed(&self, client: ClientId) -> bool {
        self.allowed_clients
            .as_ref()
            .is_none_or(|allowed| allowed.contains(&client))
    }

    /// The configuration.
    pub fn config(&self) -> &PbftConfig {
        &self.cfg
    }

    /// The primary of the current view.
    pub fn primary(&self) -> ReplicaId {
        self.view.primary(self.n)
    }

    /// Whether this replica leads the current view.
    pub fn is_primary(&self) -> bool {
        self.primary() == self.me
    }

    /// Where the replica stands.
    pub fn replica_status(&self) -> ReplicaStatus {
        ReplicaStatus {
            view: self.view,
            view_active: self.view_active,
            stable: self.stable.seq,
            stable_digest: self.stable.digest,
            last_delivered: self.last_delivered,
            last_executed: self.last_executed,
        }
    }

    /// Arms the status timer.
    pub fn start(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        self.set_timer(PbftTimer::Status, now + self.cfg.status_interval, out);
        self.resume_recovered(now, out);
    }

    /// Handles one event.
    pub fn handle(&mut self, now: Time, event: PbftEvent, out: &mut Vec<PbftAction>) {
        match event {
            Event::ClientRequest(req) => self.on_client_request(now, req, out),
            Event::MarksQuery(client) => self.on_marks_query(now, client, out),
            Event::Message { from, msg } => self.on_envelope(now, from, msg, out),
            Event::Timer(timer) => self.on_timer(now, timer, out),
            Event::Executed(executed) => self.on_executed(now, executed, out),
            Event::Snapshot { seq, snapshot } => self.on_snapshot(seq, snapshot),
            Event::Restored(outcome) => self.on_restored(now, outcome, out),
        }
        self.update_view_timer(now, out);
        debug_assert!(self.last_executed <= self.last_delivered);
    }

    fn on_envelope(
        &mut self,
        now: Time,
        from: ReplicaId,
        env: Envelope,
        out: &mut Vec<PbftAction>,
    ) {
        if from.index() >= self.n || from == self.me {
            self.counters.dropped_wrong_sender += 1;
            return;
        }
        if self.cfg.signed_all {
            let valid = env
                .signature
                .is_some_and(|sig| self.keys.verify(from, &env.msg.auth_bytes(), &sig));
            if !valid {
                self.counters.dropped_bad_signature += 1;
                return;
            }
        }
        self.on_message(now, from, env.msg, out);
    }

    /// Dispatches an authenticated message.
    pub(crate) fn on_message(
        &mut self,
        now: Time,
        from: ReplicaId,
        msg: Message,
        out: &mut Vec<PbftAction>,
    ) {
        match msg {
            Message::Forward(reqs) => self.on_forward(now, from, reqs, out),
            Message::PrePrepare(pp) => self.on_pre_prepare(now, from, pp, out),
            Message::Prepare(vote) => self.on_prepare(now, from, vote, out),
            Message::Commit(vote) => self.on_commit(now, from, vote, out),
            Message::Checkpoint(cp) => self.on_checkpoint(now, from, cp, out),
            Message::CheckpointCert(cert) => self.on_checkpoint_cert(now, cert, out),
            Message::ViewChange(vc) => self.on_view_change(now, from, *vc, out),
            Message::NewView(nv) => self.on_new_view(now, from, nv, out),
            Message::Status(st) => self.on_status(now, from, st, out),
            Message::FetchBatch(d) => self.on_fetch_batch(now, from, d, out),
            Message::BatchData(b) => self.on_batch_data(now, b, out),
            Message::FetchState(seq) => self.on_fetch_state(now, from, seq, out),
            Message::StateSnapshot(s) => self.on_state_snapshot(now, from, *s, out),
            Message::FetchChunk(f) => self.serve_chunk(now, from, f, out),
            Message::StateChunk(c) => self.on_state_chunk(from, c, out),
            Message::Committed(c) => self.on_committed(now, from, c, out),
        }
    }

    fn on_timer(&mut self, now: Time, timer: PbftTimer, out: &mut Vec<PbftAction>) {
        if !self.timers.fire(timer, now) {
            return; // cancelled or re-armed later: a stale firing
        }
        match timer {
            PbftTimer::Batch => self.on_batch_timer(now, out),
            PbftTimer::View => self.on_view_timer(now, out),
            PbftTimer::Status => self.on_status_timer(now, out),
            PbftTimer::Transfer => self.on_transfer_timer(now, out),
            PbftTimer::SlowRelease => {}
        }
    }

    // ---- plumbing shared by the behaviour files ----

    /// Wraps a message, signing it in signed-all mode.
    pub(crate) fn envelope(&self, msg: Message) -> Envelope {
        let signature = self
            .cfg
            .signed_all
            .then(|| self.keys.sign(&msg.auth_bytes()));
        Envelope { msg, signature }
    }

    pub(crate) fn send(&self, to: ReplicaId, msg: Message, out: &mut Vec<PbftAction>) {
        if to != self.me {
            out.push(Action::Send {
                to,
                msg: self.envelope(msg),
            });
        }
    }

    /// Sends `msg` to `to` in answer to its status or fetch if `to`'s resend budget
    /// allows; returns false (and counts) when the budget is spent.
    pub(crate) fn resend(
        &mut self,
        now: Time,
        to: ReplicaId,
        msg: Message,
        out: &mut Vec<PbftAction>,
    ) -> bool {
        let bytes = crate::crypto::encoded_len(&msg);
        let per_interval = self.cfg.resend_budget_bytes;
        let budget = self
            .resend_budgets
            .entry(to)
            .or_insert_with(|| ResendBudget::full(per_interval, now));
        if !budget.charge(now, bytes, per_interval, self.cfg.status_interval) {
            self.counters.resend_budget_exhausted += 1;
            return false;
        }
        self.counters.resent_bytes = self
            .counters
            .resent_bytes
            .saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
        self.send(to, msg, out);
        true
    }

    pub(crate) fn broadcast(&self, msg: Message, out: &mut Vec<PbftAction>) {
        out.push(Action::Broadcast {
            msg: self.envelope(msg),
        });
    }

    pub(crate) fn set_timer(&mut self, timer: PbftTimer, at: Time, out: &mut Vec<PbftAction>) {
        self.timers.set(timer, at, out);
    }

    pub(crate) fn cancel_timer(&mut self, timer: PbftTimer, out: &mut Vec<PbftAction>) {
        self.timers.cancel(timer, out);
    }

    pub(crate) fn timer_armed(&self, timer: PbftTimer) -> bool {
        self.timers.is_armed(timer)
    }

    /// Whether `client` already has its share ([`Pbft::per_client_bound`]) of this
    /// backup's wait list: `per_client_bound` or more of its requests awaited. Walks
    /// at most that many entries of `awaited` (keyed by client first).
    pub(crate) fn awaited_share_used(&self, client: ClientId) -> bool {
        let bound = self.per_client_bound();
        self.awaited
            .range((client, 0)..=(client, u64::MAX))
            .nth(bound.saturating_sub(1))
            .is_some()
    }

    /// Adds a request to those a backup waits for (unless already there), waiting
    /// since `now`; returns false when the wait list is full.
    pub(crate) fn await_request(&mut self, now: Time, req: Request) -> bool {
        let key = req.key();
        if self.awaited.contains_key(&key) {
            return true;
        }
        if self.awaited.len() >= self.queue_capacity() {
            return false;
        }
        self.awaited_arrivals = self.awaited_arrivals.wrapping_add(1);
        self.awaited.insert(
            key,
            Awaited {
                arrival: self.awaited_arrivals,
                since: now,
                req,
                extensions: 0,
            },
        );
        true
    }

    /// The most one peer may hold in the future-view buffer: (messages, bytes). A
    /// legitimate peer sends at most one prepare and one commit per sequence number of
    /// the window and, as the next view's primary, at most `max_in_flight`
    /// pre-prepares before we enter its view; anything beyond is recovered by status
    /// retransmission once we are in the view. Bytes: `max_in_flight` full batches
    /// plus 256 bytes per vote.
    pub(crate) fn future_bounds(&self) -> (usize, usize) {
        let window = usize::try_from(self.cfg.window).unwrap_or(usize::MAX);
        let in_flight = usize::try_from(self.cfg.max_in_flight).unwrap_or(usize::MAX);
        let messages = window.saturating_mul(2).saturating_add(in_flight);
        let bytes = in_flight
            .saturating_mul(self.cfg.max_batch_bytes.saturating_add(FUTURE_OVERHEAD))
            .saturating_add(window.saturating_mul(2).saturating_mul(FUTURE_OVERHEAD));
        (messages, bytes)
    }

    /// The high watermark: the last sequence number the window admits.
    pub(crate) fn high_watermark(&self) -> Seq {
        Seq(self.stable.seq.0.saturating_add(self.cfg.window))
    }

    /// Whether `seq` is inside the watermark window.
    pub(crate) fn in_window(&self, seq: Seq) -> bool {
        seq > self.stable.seq && seq <= self.high_watermark()
    }

    /// Current view-change timeout, doubled per consecutive failed view.
    pub(crate) fn view_timeout(&self) -> std::time::Duration {
        let base = self.cfg.view_timeout;
        let factor = 1u32
            .checked_shl(self.view_backoff.min(20))
            .unwrap_or(u32::MAX);
        base.saturating_mul(factor).min(self.cfg.max_view_timeout)
    }

    /// The latest time the normal-case view timer may fire while it runs for an
    /// awaited request that this replica has waited for since `since` (in the current
    /// view): `1 + MAX_VIEW_TIMER_EXTENSIONS` view time-outs later, extensions or not.
    /// Saturates at the end of time.
    pub(crate) fn wait_deadline(&self, since: Time) -> Time {
        since
            + self
                .view_timeout()
                .saturating_mul(1 + MAX_VIEW_TIMER_EXTENSIONS)
    }
}

#[cfg(test)]
mod peer_progress_tests {
    use super::*;

    #[test]
    fn resends_go_to_stuck_peers_and_to_peers_that_consumed_the_last_resend() {
        let patience = Duration::from_millis(200);
        let at = |ms: u64| Time::ZERO + Duration::from_millis(ms);
        let mut p = PeerProgress {
            delivered: Seq(10),
            since: at(0),
            resent_to: None,
        };
        assert!(
            !p.wants_resend(at(100), Seq(10), patience),
            "stuck, but not for long"
        );
        assert!(
            !p.wants_resend(at(150), Seq(12), patience),
            "progressing on its own"
        );
        assert!(
            !p.wants_resend(at(300), Seq(12), patience),
            "the clock restarted at 150"
        );
        assert!(
            p.wants_resend(at(350), Seq(12), patience),
            "stuck for the patience"
        );
        p.resent_to = Some(Seq(20));
        assert!(
            !p.wants_resend(at(400), Seq(15), patience),
            "still consuming the resend"
        );
        assert!(
            p.wants_resend(at(450), Seq(20), patience),
            "consumed it, still behind"
        );
    }
}
