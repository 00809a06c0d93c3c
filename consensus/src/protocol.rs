//! The sans-IO interface every protocol implements: events in, actions out.
//!
//! A driver (the simulator, or the node in `bin/`) owns sockets, clocks, timers and the
//! application. It feeds a protocol [`Event`]s together with the current [`Time`] and
//! carries out the [`Action`]s the protocol answers with. Protocols never block, never
//! read a clock and never spawn work, so the same inputs always give the same outputs.

use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::request::{Batch, Reply, Request};
use crate::types::{ClientId, Digest, ReplicaId, Seq, Time, View};

/// Something that happened to a replica.
#[derive(Clone, Debug)]
pub enum Event<M, T> {
    /// A client's request arrived on that client's authenticated channel.
    ClientRequest(Request),
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
    /// The application's serialised state at a checkpoint sequence number (one whose
    /// delivery had `checkpoint` set), produced after its [`Executed`] report and
    /// possibly much later: peers fetch it during state transfer.
    Snapshot {
        /// The checkpoint.
        seq: Seq,
        /// The serialised state after executing `seq`.
        snapshot: Bytes,
    },
    /// The application finished installing a snapshot asked for by
    /// [`Action::InstallSnapshot`].
    SnapshotInstalled {
        /// The checkpoint the snapshot belongs to.
        seq: Seq,
        /// Whether the snapshot decoded and its digest matched the expected one.
        ok: bool,
    },
}

/// The application's report after executing the batch delivered at `seq`.
#[derive(Clone, Debug)]
pub struct Executed {
    /// The sequence number executed; the application executes in delivery order.
    pub seq: Seq,
    /// Digest of the application state after executing `seq`.
    pub app_digest: Digest,
    /// One result per request of the delivered batch, in order.
    pub results: Vec<Bytes>,
}

/// What a protocol asks its driver to do.
#[derive(Clone, Debug)]
pub enum Action<M, T> {
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
    /// except across an [`Action::InstallSnapshot`].
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
    /// Replace the application state with a snapshot fetched from peers, after checking
    /// that its digest is `app_digest`; answer with [`Event::SnapshotInstalled`].
    /// Deliveries after it continue from `seq + 1`.
    InstallSnapshot {
        /// The checkpoint's sequence number.
        seq: Seq,
        /// The application digest the checkpoint certificate vouches for.
        app_digest: Digest,
        /// The serialised state.
        snapshot: Bytes,
    },
}

/// A committed batch handed to the application.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The view it committed in.
    pub view: View,
    /// Its sequence number.
    pub seq: Seq,
    /// The requests to execute: the committed batch minus requests already executed
    /// (exactly-once filtering happens before delivery, identically on every replica).
    pub batch: Arc<Batch>,
    /// Whether this is a checkpoint: the application then also reports its state with
    /// [`Event::Snapshot`].
    pub checkpoint: bool,
}

/// A point-in-time summary of a replica, for drivers, progress bars and reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplicaStatus {
    /// Current view.
    pub view: View,
    /// Whether the replica is running a view (false while a view change is under way).
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

/// A state-machine-replication protocol as a pure state machine.
pub trait Protocol {
    /// Replica-to-replica messages.
    type Message: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Timer names.
    type Timer: Copy + Clone + Debug + Ord + Send + 'static;

    /// This replica's id.
    fn id(&self) -> ReplicaId;

    /// Called once before any event: set initial timers.
    fn start(&mut self, now: Time, out: &mut Vec<Action<Self::Message, Self::Timer>>);

    /// Handles one event, appending the resulting actions to `out`.
    fn handle(
        &mut self,
        now: Time,
        event: Event<Self::Message, Self::Timer>,
        out: &mut Vec<Action<Self::Message, Self::Timer>>,
    );

    /// Where the replica stands.
    fn status(&self) -> ReplicaStatus;

    /// Counters of what the replica did and dropped, as `(name, value)` pairs in a
    /// fixed order.
    fn counters(&self) -> Vec<(&'static str, u64)>;
}
