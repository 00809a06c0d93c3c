//! The sans-IO interface every protocol implements: events in, actions out.
//!
//! A driver (the simulator, or the node in `bin/`) owns sockets, clocks, timers and the
//! application. It feeds a protocol [`Event`]s together with the current [`Time`] and
//! carries out the [`Action`]s the protocol answers with. Protocols never block, never
//! read a clock and never spawn work, so the same inputs always give the same outputs.
//!
//! Durability is part of the interface: a protocol names what must survive a crash
//! with [`Action::Persist`] (records of its own type, [`Protocol::Record`]), offers
//! compaction points with [`Protocol::durable_checkpoint`], and after a restart from
//! disk gets its records back, in order, through [`Protocol::recover`] before
//! [`Protocol::start`]. A driver without a log ignores `Persist`; its replica then
//! restarts amnesiac.
//!
//! Besides events and actions, a protocol names itself, builds itself from the
//! [`CommonParams`] and its own [`Protocol::Params`], lists its Byzantine modes
//! ([`ByzantineBehaviour`]), tells clients where to send requests
//! ([`Protocol::client_routing`]) and reports [`CommonCounters`] under the same meaning
//! as every other protocol, so drivers, the simulator's checker and reports need not
//! know which protocol runs. `registry.rs` lists the protocols by name.

use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::client::ClientRouting;
use crate::crypto::Keyring;
use crate::exactly_once::DeliveredTable;
use crate::params::{CommonParams, ParamsError, ProtocolParams};
use crate::request::{Batch, Reply, Request};
use crate::state_chunks::{RestoreOutcome, RestoreStep};
use crate::types::{ClientId, Digest, ReplicaId, Seq, Time, View};

/// Something that happened to a replica.
#[derive(Clone, Debug)]
pub enum Event<M, T> {
    /// A client's request arrived on that client's authenticated channel.
    ClientRequest(Request),
    /// A client asked, on its authenticated channel, for its marks in the replicated
    /// exactly-once table (before numbering a run's first request: `client.rs`). A
    /// protocol answers with a [`Reply`] carrying
    /// [`ClientMarks`](crate::request::ClientMarks), through its
    /// [`MarksDesk`](crate::exactly_once::MarksDesk) (one answer per client per
    /// [`MARKS_QUERY_INTERVAL`](crate::exactly_once::MARKS_QUERY_INTERVAL)), and
    /// drops (and counts) a query from a client outside the cluster.
    MarksQuery(ClientId),
    /// A message from another replica, whose identity the transport authenticated.
    Message {
        /// The authenticated sender.
        from: ReplicaId,
        /// The decoded message.
        msg: M,
    },
    /// A timer the protocol set has fired.
    Timer(T),
    /// The application executed a delivered batch.
    Executed(Executed),
    /// The application's state at a checkpoint sequence number (one whose delivery
    /// had `checkpoint` set) as a chunk list ([`crate::state_chunks`]), produced after
    /// its [`Executed`] report and possibly much later, or after a state transfer
    /// installed that checkpoint: peers fetch its chunks during state transfer.
    Snapshot {
        /// The checkpoint.
        seq: Seq,
        /// The state after executing `seq`, as a chunk list.
        snapshot: Bytes,
    },
    /// The application's answer to a [`RestoreStep`] of [`Action::Restore`].
    Restored(RestoreOutcome),
}

/// The application's report after executing the batch delivered at `seq`.
#[derive(Clone, Debug)]
pub struct Executed {
    /// The sequence number executed; the application executes in delivery order.
    pub seq: Seq,
    /// Digest of the application state after executing `seq` ([`Application::digest`]):
    /// required when `seq` was delivered as a checkpoint ([`Delivery::checkpoint`]),
    /// where the protocol signs it; elsewhere a driver may leave it out (a node does,
    /// since the digest costs work) or report it (the simulator does, for its
    /// checker). A checkpoint reported without one is counted as an unexpected
    /// execution and not taken.
    ///
    /// [`Application::digest`]: crate::application::Application::digest
    pub app_digest: Option<Digest>,
    /// One result per request of the delivered batch, in order.
    pub results: Vec<Bytes>,
}

/// What a protocol asks its driver to do: `M` its messages, `T` its timers, `R` its
/// log records.
#[derive(Clone, Debug)]
pub enum Action<M, T, R> {
    /// Send `msg` to one replica.
    Send {
        /// Destination.
        to: ReplicaId,
        /// Message.
        msg: M,
    },
    /// Send `msg` to every other replica (encode it once).
    Broadcast {
        /// Message.
        msg: M,
    },
    /// Execute a committed batch. Deliveries come in sequence order without gaps,
    /// except across an installed restore ([`Action::Restore`]).
    Deliver(Delivery),
    /// Send a reply to a client.
    Reply {
        /// Destination.
        client: ClientId,
        /// Reply.
        reply: Reply,
    },
    /// Fire `timer` at `at`, replacing any earlier setting of the same timer.
    SetTimer {
        /// Which timer.
        timer: T,
        /// When.
        at: Time,
    },
    /// Forget `timer`.
    CancelTimer {
        /// Which timer.
        timer: T,
    },
    /// Carry out a step of a chunked restore of the application state from a stable
    /// checkpoint fetched from peers ([`RestoreStep::apply`]), in order with
    /// deliveries, and report its outcome as [`Event::Restored`]. Once a restore
    /// finishes with the state installed, deliveries continue from its `seq + 1`, and
    /// the driver reports the installed state's chunk list as [`Event::Snapshot`] so
    /// the replica can serve it in turn.
    Restore(RestoreStep),
    /// Make `record` durable before anything this replica sends after it leaves: a
    /// `Send`, `Broadcast` or `Reply` that follows it in this event's actions, or comes
    /// from a later event, goes out only once the record (and every record before it)
    /// is on stable storage. Records are appended in the order they are emitted; a
    /// driver may batch many into one write and one fsync (group commit), holding back
    /// only the messages that follow them. Everything else (deliveries, timers,
    /// installs) need not wait. A driver without a log drops the record.
    Persist(R),
}

/// A compaction point of a replica's log, offered by [`Protocol::durable_checkpoint`]:
/// the application's state at a stable checkpoint and the protocol's durable state,
/// which together replace every record logged before. Recovery restores the
/// application from the chunk list `snapshot` (checking `app_digest`, see
/// [`crate::state_chunks::restore_from_chunk_list`]) and replays `base` first, then
/// every record logged after it.
#[derive(Clone, Debug)]
pub struct DurableCheckpoint<R> {
    /// The stable checkpoint the application state is at.
    pub seq: Seq,
    /// The application's digest at `seq` (the one the stable certificate vouches for).
    pub app_digest: Digest,
    /// The application's state at `seq` as a chunk list ([`crate::state_chunks`]).
    pub snapshot: Bytes,
    /// The protocol's durable state now (view, votes, certificates, committed batches
    /// above `seq`...): the first record of the compacted log.
    pub base: R,
}

/// A record [`Protocol::recover`] could not apply: the log does not describe a state
/// this protocol could have written (its driver then refuses the log).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("log record {index}: {problem}")]
pub struct RecoveryError {
    /// The record's position among those replayed, from 0.
    pub index: u64,
    /// What is wrong with it.
    pub problem: String,
}

/// A committed batch handed to the application: what was committed at which position
/// (`seq`) with which digest (`batch.digest()`). The simulator's checker compares
/// deliveries of correct replicas position by position, whatever the protocol.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The view (PBFT) or round (HotStuff) it committed in.
    pub view: View,
    /// Its sequence number: a protocol numbers what it delivers 1, 2, 3, … whatever
    /// its own numbering (a chained protocol: the block's height, not its round).
    pub seq: Seq,
    /// The requests to execute: the committed batch minus requests already executed
    /// (exactly-once filtering happens before delivery, identically on every replica).
    pub batch: Arc<Batch>,
    /// Whether this is a checkpoint: the application then also reports its state with
    /// [`Event::Snapshot`].
    pub checkpoint: bool,
}

/// What a message commits its sender to, for the simulator's check that a replica
/// never contradicts itself, across restarts from disk included: a vote for `digest` at
/// `seq` in `phase` of `view`, or (phase [`CastVote::LEAVE`]) having left every view
/// below `view`, after which it votes in none of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CastVote {
    /// The protocol's name for the phase ("prepare", "commit"...), or
    /// [`CastVote::LEAVE`].
    pub phase: &'static str,
    /// The view (round) the vote is cast in, or the view moved to.
    pub view: View,
    /// The position voted on (zero for [`CastVote::LEAVE`]).
    pub seq: Seq,
    /// What was voted for (default for [`CastVote::LEAVE`]).
    pub digest: Digest,
}

impl CastVote {
    /// The phase of a message that leaves every view below its `view` (a view change).
    pub const LEAVE: &'static str = "leave";
}

/// A point-in-time summary of a replica, for drivers, progress bars and reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplicaStatus {
    /// Current view (a rotating-leader protocol: its current round).
    pub view: View,
    /// Whether the replica is running a view (false while a view change is under way;
    /// a protocol without view changes: always true).
    pub view_active: bool,
    /// Latest stable checkpoint.
    pub stable: Seq,
    /// Digest of the latest stable checkpoint (application state and client tables).
    pub stable_digest: Digest,
    /// Last sequence number delivered to the application.
    pub last_delivered: Seq,
    /// Last sequence number the application reported executed.
    pub last_executed: Seq,
}

/// Counters every protocol keeps with the same meaning, so the simulator's checker,
/// the node's metrics and reports compare protocols without knowing their own counter
/// names ([`Protocol::counters`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommonCounters {
    /// Batches delivered to the application.
    pub batches_delivered: u64,
    /// Requests delivered to the application, after exactly-once filtering.
    pub requests_delivered: u64,
    /// Times this replica gave up on its view for lack of progress and moved on: PBFT's
    /// view changes it started; a rotating-leader protocol's round time-outs.
    pub view_changes: u64,
    /// State transfers completed (a snapshot fetched and installed).
    pub state_transfers: u64,
    /// Positions at which this replica saw two different digests commit: evidence
    /// that two quorums shared no correct replica. Must stay 0; the simulator reports
    /// any as a safety violation.
    pub conflicting_commits: u64,
    /// Client requests refused as busy (admission control at the proposer: its queue
    /// was full), each answered with a busy refusal.
    pub refused_busy: u64,
}

/// A protocol's Byzantine modes, for experiments: behaviours of a faulty replica that
/// correct replicas must stay safe against. Each has a kebab-case name used on command
/// lines, in scenario files and in the simulator's fault mixes.
pub trait ByzantineBehaviour: Copy + Debug + Eq + Ord + Send + Sync + 'static {
    /// Every mode that makes sense for the protocol, in a fixed order (the order the
    /// simulator's fault mixes list and draw them in).
    const ALL: &'static [Self];

    /// The mode's name.
    fn name(self) -> &'static str;

    /// Parses a name from [`ByzantineBehaviour::name`].
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|m| m.name() == name)
    }
}

/// A state-machine-replication protocol as a pure state machine.
///
/// A second protocol implements this trait (with [`ProtocolParams`] for its own
/// parameters and [`ByzantineBehaviour`] for its modes) and registers in
/// `registry.rs`; drivers and the simulator are generic over it.
pub trait Protocol: Sized + 'static {
    /// The protocol's name: on command lines (`--protocol`), in a cluster file's
    /// `[protocol] name`, and as its own section `[protocol.<NAME>]`.
    const NAME: &'static str;
    /// Replica-to-replica messages.
    type Message: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Timer names.
    type Timer: Copy + Clone + Debug + Ord + Send + 'static;
    /// The protocol's own parameters.
    type Params: ProtocolParams;
    /// The protocol's Byzantine modes.
    type Byzantine: ByzantineBehaviour;
    /// What the protocol logs ([`Action::Persist`]) and replays ([`Protocol::recover`]).
    type Record: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Builds replica `keys.me()` of a cluster, honest or misbehaving in `byzantine`.
    ///
    /// # Errors
    /// A [`ParamsError`] naming the field when the parameters are invalid or do not
    /// fit the keyring (its replica count, this replica's id).
    fn build(
        common: &CommonParams,
        own: &Self::Params,
        keys: Keyring,
        byzantine: Option<Self::Byzantine>,
    ) -> Result<Self, ParamsError>;

    /// The policy clients of an `replicas`-replica cluster use to choose where a new
    /// request goes.
    fn client_routing(replicas: usize) -> Box<dyn ClientRouting>;

    /// Accepts requests only from these clients (the cluster's members); without it
    /// any client id is accepted.
    fn set_allowed_clients(&mut self, clients: &[ClientId]);

    /// This replica's id.
    fn id(&self) -> ReplicaId;

    /// Replays record number `index` (from 0) of this replica's log after a restart
    /// from disk, in log order, before [`Protocol::start`] and without sending
    /// anything. The application was restored to the snapshot of the log's
    /// [`DurableCheckpoint`] (whose `base` is record 0), or is at genesis if the log
    /// was never compacted. A record that no replica could have logged is an error.
    ///
    /// # Errors
    /// [`RecoveryError`] naming the record; the driver then refuses the whole log.
    fn recover(&mut self, index: u64, record: Self::Record) -> Result<(), RecoveryError>;

    /// After [`Protocol::recover`] refused this replica's log (the driver moves it
    /// aside and the replica restarts empty, recovering its state from its peers), the
    /// driver hands a fresh replica, before `start`, each record of the refused log it
    /// can still decode, in log order. The protocol keeps only what bounds its future
    /// votes — the highest round voted or timed out in, its lock — and logs it again
    /// at `start`, so a refused log never makes a replica vote twice. Default: nothing
    /// is kept (PBFT: a replica whose log is refused restarts empty and may vote again
    /// in views it voted in; its log holds no record a correct replica could not
    /// replay, so only a damaged disk gets it there).
    fn salvage(&mut self, record: Self::Record) {
        let _ = record;
    }

    /// The latest point the log can be compacted at: a stable checkpoint whose
    /// application state this replica holds, with the protocol's durable state now.
    /// `None` until there is one. A driver asks when it wants to compact (by its own
    /// policy, e.g. after a segment's worth of records) and writes it before dropping
    /// older records.
    fn durable_checkpoint(&self) -> Option<DurableCheckpoint<Self::Record>>;

    /// Called once before any event (after [`Protocol::recover`] on a restart from
    /// disk): set initial timers, and resume what the recovered state calls for.
    fn start(&mut self, now: Time, out: &mut Vec<Action<Self::Message, Self::Timer, Self::Record>>);

    /// Handles one event, appending the resulting actions to `out`.
    fn handle(
        &mut self,
        now: Time,
        event: Event<Self::Message, Self::Timer>,
        out: &mut Vec<Action<Self::Message, Self::Timer, Self::Record>>,
    );

    /// The vote `msg` casts, if any ([`CastVote`]); the simulator checks that no
    /// correct replica casts two different votes on one `(phase, view, seq)`, or votes
    /// in a view it left. The default names none.
    fn vote_of(msg: &Self::Message) -> Option<CastVote> {
        let _ = msg;
        None
    }

    /// Where the replica stands.
    fn status(&self) -> ReplicaStatus;

    /// The replicated exactly-once table: per client, the request numbers delivered
    /// (every number ≤ its low mark, and the numbers above it). Part of the checkpoint
    /// digest, restored by log replay and state transfer; the launcher reads it at the
    /// end of a run to check that no acknowledged request was lost.
    fn delivered_requests(&self) -> &DeliveredTable;

    /// The counters every protocol keeps.
    fn common_counters(&self) -> CommonCounters;

    /// The protocol's own counters of what the replica did and dropped, as
    /// `(name, value)` pairs in a fixed order.
    fn counters(&self) -> Vec<(&'static str, u64)>;
}
