//! The HotStuff replica: its state, event dispatch, and the [`Protocol`]
//! implementation ([`HotStuffReplica`]: the honest core [`HotStuff`], optionally
//! wrapped by a Byzantine mode).
//!
//! Behaviour is split by concern, each an `impl HotStuff` block over the state
//! declared here: `normal.rs` (requests, proposals, votes, QCs, commit, delivery,
//! execution, replies), `pacemaker.rs` (round time-outs, timeouts, TCs), `sync.rs`
//! (status, certificates for peers behind, block fetch, checkpoints, state transfer).
//!
//! Invariants (asserted where established): `last_executed ≤ last_delivered ≤ tip
//! height`; deliveries are gap-free and numbered by block height; the round, the last
//! voted round, the lock and the highest QC's round only grow; at most one block is
//! committed per height (`conflicting_commits` counts violations, which the simulator
//! treats as fatal).
//!
//! Memory bounds against faulty peers: votes and timeouts only for rounds in
//! [round − 1, round + `MAX_ROUNDS_AHEAD`], one per sender; one proposal per round;
//! uncommitted blocks capped (`MAX_PENDING_BLOCKS`); at most `MAX_WANTED` blocks
//! being fetched; the request queue capped at 64 batches; the leader-reputation
//! history (`leaders.rs`) holds the committed blocks of the last `REPUTATION_LAG +
//! REPUTATION_WINDOW` rounds below the committed tip.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::checkpoint::{
    CheckpointReplica, CheckpointVotes, OwnCheckpoint, PendingInstall, StableCert,
};
use crate::client::ClientRouting;
use crate::client_quota::QueuedPerClient;
use crate::crypto::Keyring;
use crate::exactly_once::{DeliveredTable, MarksDesk, ReplyCache};
use crate::hotstuff::block::{Block, Round};
use crate::hotstuff::block_tree::BlockTree;
use crate::hotstuff::byzantine::{Byzantine, ByzantineMode};
use crate::hotstuff::config::{HotStuffConfig, HotStuffParams};
use crate::hotstuff::counters::Counters;
use crate::hotstuff::durable::HotStuffRecord;
use crate::hotstuff::leaders::{History, LeaderElection, leader};
use crate::hotstuff::message::{Envelope, HotStuffTimer, Message};
use crate::hotstuff::pacemaker::Pacemaker;
use crate::hotstuff::qc::{Qc, TimeoutMsg, Vote};
use crate::hotstuff::routing::LeaderRouting;
use crate::hotstuff::safety::SafetyRules;
use crate::params::{CommonParams, ParamsError};
use crate::protocol::{
    Action, ByzantineBehaviour, CastVote, CommonCounters, DurableCheckpoint, Event, Protocol,
    RecoveryError, ReplicaStatus,
};
use crate::request::{Batch, Request};
use crate::resend_budget::ResendBudget;
use crate::state_transfer::{StateTransfer, Transfer};
use crate::timers::Timers;
use crate::types::{ClientId, Digest, ReplicaId, Seq, Time, View};

/// An action of the HotStuff protocol.
pub type HotStuffAction = Action<Envelope, HotStuffTimer, HotStuffRecord>;
/// An event of the HotStuff protocol.
pub type HotStuffEvent = Event<Envelope, HotStuffTimer>;

/// Cap on blocks being fetched at once.
pub(crate) const MAX_WANTED: usize = 64;
/// Cap on blocks in one fetch answer.
pub(crate) const MAX_BLOCKS_PER_ANSWER: usize = 16;
/// Queue capacity, in batches.
pub(crate) const QUEUE_BATCHES: usize = 64;

/// A delivered batch awaiting the application's report.
#[derive(Debug)]
pub(crate) struct PendingExecution {
    /// The filtered batch the application executes.
    pub batch: Arc<Batch>,
    /// The committed block delivered.
    pub block: Digest,
    /// At checkpoint heights: the delivered table as of this delivery.
    pub delivered_at_checkpoint: Option<DeliveredTable>,
}

/// A snapshot handed to the application, with the block it continues from.
#[derive(Debug)]
pub(crate) struct Installing {
    pub install: PendingInstall,
    pub block: Arc<Block>,
    pub digest: Digest,
    /// The reputation history at the block, bound by the certificate.
    pub history: Arc<History>,
}

/// An honest HotStuff replica as a deterministic state machine.
#[derive(Debug)]
pub struct HotStuff {
    pub(crate) cfg: HotStuffConfig,
    pub(crate) keys: Keyring,
    pub(crate) me: ReplicaId,
    pub(crate) n: usize,
    pub(crate) f: usize,
    pub(crate) quorum: usize,

    // Consensus.
    pub(crate) safety: SafetyRules,
    pub(crate) pacemaker: Pacemaker,
    pub(crate) tree: BlockTree,
    pub(crate) high_qc: Qc,
    /// Blocks whose QC this replica verified or formed, with that very QC: only an
    /// identical copy is accepted without checking its signatures.
    pub(crate) certified: BTreeMap<Digest, Qc>,
    /// The first proposal seen per round.
    pub(crate) proposed_in: BTreeMap<Round, Digest>,
    /// Votes collected as next leader, by round and signer.
    pub(crate) votes: BTreeMap<Round, BTreeMap<ReplicaId, Vote>>,
    /// The last round this replica proposed in.
    pub(crate) last_proposed: Round,
    /// The lock as last logged (`HotStuffRecord::Locked`).
    pub(crate) persisted_lock: Round,
    /// The block voted for last.
    pub(crate) last_voted_block: Option<Digest>,
    /// The vote sent last, broadcast again with our timeout of its round.
    pub(crate) last_vote: Option<Vote>,
    /// A proposal of the current round waiting for its parent: its digest and TC.
    pub(crate) deferred: Option<(Digest, Option<Arc<crate::hotstuff::qc::Tc>>)>,
    /// A proposal of the current round whose vote was withheld because execution
    /// lagged (`votes_withheld_execution_lag`): its digest, TC and sender. The vote
    /// is retried through the normal path (`try_vote`, safety rules included) once
    /// execution catches up within the round; dropped when the round moves on.
    pub(crate) lag_withheld: Option<(Digest, Option<Arc<crate::hotstuff::qc::Tc>>, ReplicaId)>,
    /// This replica's timeout of the current round, once it timed out.
    pub(crate) my_timeout: Option<TimeoutMsg>,
    /// Set when the round changed during the current event.
    pub(crate) round_changed: bool,
    /// When this replica entered the current round (a throttled leader's keep-alive
    /// block is due a quarter of the base round time-out after it).
    pub(crate) round_started: Time,
    /// Blocks being fetched, with the attempts made.
    pub(crate) wanted: BTreeMap<Digest, u32>,
    /// The highest round of a QC this replica's log holds (`durable.rs`).
    pub(crate) logged_qc_round: Round,
    /// The safety floor (last voted round, lock) salvaged from a refused log, logged
    /// again at `start` (`durable.rs`, [`HotStuff::salvage`]).
    pub(crate) salvaged_floor: Option<(Round, Round)>,
    /// A QC that committed blocks during the current event and is above every QC the
    /// log holds: logged (`Certified`) at the end of the event, before any reply.
    pub(crate) commit_qc: Option<Qc>,
    /// While replaying a log: the blocks its QCs certify, for `resume_recovered`.
    pub(crate) recovered_heads: Vec<(Round, Digest)>,

    // Delivery and execution.
    pub(crate) last_delivered: Seq,
    pub(crate) last_executed: Seq,
    pub(crate) pending_execution: BTreeMap<Seq, PendingExecution>,
    pub(crate) installing: Option<Installing>,

    // Checkpoints.
    pub(crate) stable: StableCert,
    pub(crate) checkpoint_votes: CheckpointVotes,
    pub(crate) own_checkpoints: BTreeMap<Seq, OwnCheckpoint>,
    pub(crate) checkpoint_blocks: BTreeMap<Seq, Arc<Block>>,
    pub(crate) transfer: Option<Transfer>,
    pub(crate) diverged: bool,
    /// Per peer, what state-transfer answers may still send it (one entry per
    /// replica at most: senders are authenticated replicas).
    pub(crate) state_budgets: BTreeMap<ReplicaId, ResendBudget>,

    // Clients.
    pub(crate) delivered_table: DeliveredTable,
    pub(crate) reply_cache: ReplyCache,
    /// Answers to clients' marks queries, rate-bounded per client.
    pub(crate) marks_desk: MarksDesk,
    pub(crate) queue: VecDeque<Request>,
    /// Queued requests not delivered yet (the queue is cleaned lazily).
    pub(crate) pending: BTreeSet<(ClientId, u64)>,
    /// `pending` per client (for `per_client_bound`).
    pub(crate) pending_by_client: QueuedPerClient,
    /// `pending.len()` after the queue's last compaction (see `compact_queue_if_full`).
    pub(crate) pending_at_compaction: usize,
    pub(crate) allowed_clients: Option<BTreeSet<ClientId>>,

    pub(crate) timers: Timers<HotStuffTimer>,
    pub(crate) counters: Counters,
}

impl HotStuff {
    /// A replica with `keys` (its own signing key and all replicas' public keys).
    ///
    /// # Errors
    /// Invalid parameters, or parameters that do not fit the keyring.
    pub fn new(cfg: HotStuffConfig, keys: Keyring) -> Result<HotStuff, ParamsError> {
        cfg.validate()?;
        let n = cfg.common.replicas;
        let checkpoint_interval = cfg.common.checkpoint_interval;
        if keys.replica_keys().len() != n {
            return Err(ParamsError::new(
                "replicas",
                format!(
                    "is {n} but the cluster has {} replica keys",
                    keys.replica_keys().len()
                ),
            ));
        }
        let me = keys.me();
        if me.index() >= n {
            return Err(ParamsError::new(
                "id",
                format!("{me} is not below replicas = {n}"),
            ));
        }
        Ok(HotStuff {
            f: cfg.f(),
            quorum: cfg.quorum(),
            safety: SafetyRules::new(cfg.commit_chain()),
            pacemaker: Pacemaker::new(cfg.own.round_timeout, cfg.own.max_round_timeout),
            cfg,
            keys,
            me,
            n,
            tree: BlockTree::for_replicas(n).with_checkpoint_interval(checkpoint_interval),
            high_qc: Qc::genesis(),
            certified: BTreeMap::new(),
            proposed_in: BTreeMap::new(),
            votes: BTreeMap::new(),
            last_proposed: View(0),
            persisted_lock: View(0),
            last_voted_block: None,
            last_vote: None,
            deferred: None,
            lag_withheld: None,
            my_timeout: None,
            round_changed: true,
            round_started: Time::ZERO,
            wanted: BTreeMap::new(),
            logged_qc_round: View(0),
            salvaged_floor: None,
            commit_qc: None,
            recovered_heads: Vec::new(),
            last_delivered: Seq(0),
            last_executed: Seq(0),
            pending_execution: BTreeMap::new(),
            installing: None,
            stable: StableCert::default(),
            checkpoint_votes: CheckpointVotes::default(),
            own_checkpoints: BTreeMap::new(),
            checkpoint_blocks: BTreeMap::new(),
            transfer: None,
            diverged: false,
            state_budgets: BTreeMap::new(),
            delivered_table: DeliveredTable::new(),
            reply_cache: ReplyCache::new(),
            marks_desk: MarksDesk::default(),
            queue: VecDeque::new(),
            pending: BTreeSet::new(),
            pending_by_client: QueuedPerClient::default(),
            pending_at_compaction: usize::MAX,
            allowed_clients: None,
            timers: Timers::default(),
            counters: Counters::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HotStuffConfig {
        &self.cfg
    }

    /// The current round.
    pub fn round(&self) -> Round {
        self.pacemaker.round()
    }

    /// The highest QC.
    pub fn high_qc(&self) -> &Qc {
        &self.high_qc
    }

    /// The last committed block's height.
    pub fn committed_height(&self) -> Seq {
        self.tree.tip().1
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The leader of `round` under the configured election (`leaders.rs`): every
    /// caller — proposing, accepting a proposal, routing votes to the next leader,
    /// handing requests to the current and next leaders — asks here.
    pub(crate) fn leader(&self, round: Round) -> ReplicaId {
        match self.cfg.own.leader_election {
            LeaderElection::RoundRobin => leader(round, self.n),
            LeaderElection::Reputation => self.tree.history().elect(round).leader(round, self.n),
        }
    }

    /// Restricts requests to these clients.
    pub fn set_allowed_clients(&mut self, clients: impl IntoIterator<Item = ClientId>) {
        self.allowed_clients = Some(clients.into_iter().collect());
    }

    /// Whether requests from `client` are accepted.
    pub(crate) fn client_allowed(&self, client: ClientId) -> bool {
        self.allowed_clients
            .as_ref()
            .is_none_or(|allowed| allowed.contains(&client))
    }

    /// Where the replica stands.
    pub fn replica_status(&self) -> ReplicaStatus {
        ReplicaStatus {
            view: self.round(),
            view_active: true,
            stable: self.stable.seq,
            stable_digest: self.stable.digest,
            last_delivered: self.last_delivered,
            last_executed: self.last_executed,
        }
    }

    /// Arms the status timer, resumes what a log replayed before (`durable.rs`: the
    /// commits its QCs certify, delivery above the restored checkpoint, a transfer if
    /// the stable checkpoint is ahead) and, as leader of its round, proposes once
    /// there is work.
    pub fn start(&mut self, now: Time, out: &mut Vec<HotStuffAction>) {
        self.log_salvaged_floor(out);
        self.set_timer(
            HotStuffTimer::Status,
            now + self.cfg.common.status_interval,
            out,
        );
        self.resume_recovered(now, out);
        if self.stable.seq > self.last_delivered {
            self.arm_transfer(now, out);
        }
        self.update_round_timer(now, out);
    }

    /// Handles one event.
    pub fn handle(&mut self, now: Time, event: HotStuffEvent, out: &mut Vec<HotStuffAction>) {
        match event {
            Event::ClientRequest(req) => self.on_client_request(now, req, out),
            Event::MarksQuery(client) => self.on_marks_query(now, client, out),
            Event::Message { from, msg } => self.on_envelope(now, from, msg, out),
            Event::Timer(timer) => self.on_timer(now, timer, out),
            Event::Executed(executed) => self.on_executed(now, executed, out),
            Event::Snapshot { seq, snapshot } => self.on_snapshot(seq, snapshot),
            Event::Restored(outcome) => self.on_restored(now, outcome, out),
        }
        self.update_round_timer(now, out);
        self.log_commit_qc(out);
        debug_assert!(self.last_executed <= self.last_delivered);
        debug_assert!(self.installing.is_some() || self.last_delivered <= self.tree.tip().1);
        debug_assert!(self.high_qc.round < self.round());
    }

    fn on_envelope(
        &mut self,
        now: Time,
        from: ReplicaId,
        env: Envelope,
        out: &mut Vec<HotStuffAction>,
    ) {
        if from.index() >= self.n || from == self.me {
            self.counters.dropped_wrong_sender += 1;
            return;
        }
        if self.cfg.common.signed_all {
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
        out: &mut Vec<HotStuffAction>,
    ) {
        match msg {
            Message::Forward(reqs) => self.on_forward(now, reqs, out),
            Message::Proposal(p) => self.on_proposal(now, from, p, out),
            Message::Vote(v) => self.on_vote(now, from, v, out),
            Message::Timeout(t) => self.on_timeout(now, from, *t, out),
            Message::Certificates { qc, tc } => self.on_certificates(now, from, qc, tc, out),
            Message::Status(st) => self.on_status(from, st, out),
            Message::FetchBlock(d) => self.on_fetch_block(from, d, out),
            Message::Blocks(blocks) => self.on_blocks(now, from, blocks, out),
            Message::Checkpoint(cp) => self.on_checkpoint(now, from, cp, out),
            Message::CheckpointCert(cert) => self.on_checkpoint_cert(now, cert, out),
            Message::FetchState(seq) => self.on_fetch_state(now, from, seq, out),
            Message::StateSnapshot(s) => self.on_state_snapshot(now, from, *s, out),
            Message::FetchChunk(f) => self.serve_chunk(now, from, f, out),
            Message::StateChunk(c) => self.on_state_chunk(from, c, out),
        }
    }

    fn on_timer(&mut self, now: Time, timer: HotStuffTimer, out: &mut Vec<HotStuffAction>) {
        if !self.timers.fire(timer, now) {
            return; // cancelled or re-armed later: a stale firing
        }
        match timer {
            HotStuffTimer::Round => self.on_round_timer(now, out),
            HotStuffTimer::Status => self.on_status_timer(now, out),
            HotStuffTimer::Transfer => self.on_transfer_timer(now, out),
            HotStuffTimer::SlowRelease => {}
            HotStuffTimer::KeepAlive => self.try_propose(now, out),
        }
    }

    // ---- plumbing ----

    /// Wraps a message, signing it in signed-all mode.
    pub(crate) fn envelope(&self, msg: Message) -> Envelope {
        let signature = self
            .cfg
            .common
            .signed_all
            .then(|| self.keys.sign(&msg.auth_bytes()));
        Envelope { msg, signature }
    }

    pub(crate) fn send(&self, to: ReplicaId, msg: Message, out: &mut Vec<HotStuffAction>) {
        if to != self.me {
            out.push(Action::Send {
                to,
                msg: self.envelope(msg),
            });
        }
    }

    pub(crate) fn broadcast(&self, msg: Message, out: &mut Vec<HotStuffAction>) {
        out.push(Action::Broadcast {
            msg: self.envelope(msg),
        });
    }

    pub(crate) fn set_timer(
        &mut self,
        timer: HotStuffTimer,
        at: Time,
        out: &mut Vec<HotStuffAction>,
    ) {
        self.timers.set(timer, at, out);
    }

    pub(crate) fn cancel_timer(&mut self, timer: HotStuffTimer, out: &mut Vec<HotStuffAction>) {
        self.timers.cancel(timer, out);
    }

    pub(crate) fn timer_armed(&self, timer: HotStuffTimer) -> bool {
        self.timers.is_armed(timer)
    }
}

impl ByzantineBehaviour for ByzantineMode {
    const ALL: &'static [ByzantineMode] = &ByzantineMode::ALL;

    fn name(self) -> &'static str {
        ByzantineMode::name(self)
    }
}

/// A HotStuff replica: honest, or misbehaving in one [`ByzantineMode`].
#[derive(Debug)]
pub struct HotStuffReplica {
    core: HotStuff,
    byzantine: Option<Byzantine>,
}

impl HotStuffReplica {
    /// An honest replica.
    ///
    /// # Errors
    /// Invalid parameters.
    pub fn new(cfg: HotStuffConfig, keys: Keyring) -> Result<HotStuffReplica, ParamsError> {
        Ok(HotStuffReplica {
            core: HotStuff::new(cfg, keys)?,
            byzantine: None,
        })
    }

    /// The misbehaviour, if any.
    pub fn byzantine_mode(&self) -> Option<ByzantineMode> {
        self.byzantine.as_ref().map(Byzantine::mode)
    }

    /// The honest core.
    pub fn core(&self) -> &HotStuff {
        &self.core
    }

    /// The honest core, for tests that set up a state directly.
    #[cfg(test)]
    pub(crate) fn core_mut(&mut self) -> &mut HotStuff {
        &mut self.core
    }
}

impl Protocol for HotStuffReplica {
    const NAME: &'static str = "hotstuff";
    type Message = Envelope;
    type Timer = HotStuffTimer;
    type Params = HotStuffParams;
    type Byzantine = ByzantineMode;
    type Record = HotStuffRecord;

    fn build(
        common: &CommonParams,
        own: &HotStuffParams,
        keys: Keyring,
        byzantine: Option<ByzantineMode>,
    ) -> Result<HotStuffReplica, ParamsError> {
        let mut replica = HotStuffReplica::new(HotStuffConfig::new(common, own), keys)?;
        replica.byzantine = byzantine.map(Byzantine::new);
        Ok(replica)
    }

    fn client_routing(replicas: usize) -> Box<dyn ClientRouting> {
        Box::new(LeaderRouting::new(replicas))
    }

    fn set_allowed_clients(&mut self, clients: &[ClientId]) {
        self.core.set_allowed_clients(clients.iter().copied());
    }

    fn id(&self) -> ReplicaId {
        self.core.me
    }

    fn recover(&mut self, index: u64, record: HotStuffRecord) -> Result<(), RecoveryError> {
        self.core.replay(index, record)
    }

    /// Keeps the safety floor of a refused log (`durable.rs`).
    fn salvage(&mut self, record: HotStuffRecord) {
        self.core.salvage(record);
    }

    /// The stable checkpoint with the durable state at it (`durable.rs`).
    fn durable_checkpoint(&self) -> Option<DurableCheckpoint<HotStuffRecord>> {
        self.core.durable_checkpoint()
    }

    fn start(&mut self, now: Time, out: &mut Vec<HotStuffAction>) {
        match &mut self.byzantine {
            None => self.core.start(now, out),
            Some(b) => b.start(&mut self.core, now, out),
        }
    }

    fn handle(&mut self, now: Time, event: HotStuffEvent, out: &mut Vec<HotStuffAction>) {
        match &mut self.byzantine {
            None => self.core.handle(now, event, out),
            Some(b) => b.handle(&mut self.core, now, event, out),
        }
    }

    /// A vote casts `("vote", its round, seq 0, the block)`: one vote per round,
    /// whatever the block's height. A timeout of round r leaves every round up to r
    /// (no vote in them afterwards): [`CastVote::LEAVE`] to r + 1. A leader's proposal
    /// casts `("propose", its round, seq 0, the block)`: one proposal per round, never
    /// in a round left (a restarted leader that proposed a second block in its resumed
    /// round equivocates, as PBFT's pre-prepares are checked).
    fn vote_of(env: &Envelope) -> Option<CastVote> {
        match &env.msg {
            Message::Proposal(p) => Some(CastVote {
                phase: "propose",
                view: p.block.round,
                seq: Seq(0),
                digest: p.block.digest(),
            }),
            Message::Vote(v) => Some(CastVote {
                phase: "vote",
                view: v.body.round,
                seq: Seq(0),
                digest: v.body.block,
            }),
            Message::Timeout(t) => Some(CastVote {
                phase: CastVote::LEAVE,
                view: t.timeout.body.round.next(),
                seq: Seq(0),
                digest: Digest::default(),
            }),
            _ => None,
        }
    }

    fn status(&self) -> ReplicaStatus {
        self.core.replica_status()
    }

    fn delivered_requests(&self) -> &DeliveredTable {
        &self.core.delivered_table
    }

    fn common_counters(&self) -> CommonCounters {
        let c = &self.core.counters;
        CommonCounters {
            batches_delivered: c.batches_delivered,
            requests_delivered: c.requests_delivered,
            view_changes: c.round_timeouts,
            state_transfers: c.state_transfers,
            conflicting_commits: c.conflicting_commits,
            refused_busy: c.refused_busy,
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.core.counters.pairs()
    }
}
