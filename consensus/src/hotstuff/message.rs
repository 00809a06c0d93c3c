//! HotStuff's wire messages and timers.
//!
//! Proposals are not signed: they arrive on the leader's authenticated channel, and a
//! block fetched from any peer is checked against the digest a QC certified. Votes,
//! timeouts and checkpoint votes are signed, because they are forwarded inside
//! certificates. In signed-all mode every message is also signed ([`Envelope`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{FetchChunk, SignedCheckpoint, StableCert, StateChunk, StateSnapshot};
use crate::crypto::{Signature, signing_bytes};
use crate::hotstuff::block::{Block, Round};
use crate::hotstuff::leaders::History;
use crate::hotstuff::qc::{Qc, Tc, TimeoutMsg, Vote};
use crate::request::Request;
use crate::types::{Digest, Seq};

/// A leader's proposal for its round.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Proposal {
    /// The block (its QC justifies the round when it is of round − 1).
    pub block: Arc<Block>,
    /// The TC of round − 1 when the QC is older.
    pub tc: Option<Arc<Tc>>,
}

/// A replica's progress, broadcast every status interval so peers send what it lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Its current round.
    pub round: Round,
    /// The round of its highest QC.
    pub hqc_round: Round,
    /// Its committed tip's height.
    pub committed: Seq,
    /// Its stable checkpoint.
    pub stable: Seq,
}

/// A state header with the committed block at its checkpoint (whose digest the
/// checkpoint digest binds), so the receiver knows where its chain continues.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockSnapshot {
    /// The application state, exactly-once tables and stable certificate.
    pub state: StateSnapshot,
    /// The committed block at the checkpoint's height.
    pub block: Arc<Block>,
    /// The leader-reputation history right after that block committed (bound by the
    /// checkpoint digest; at most `REPUTATION_LAG + REPUTATION_WINDOW` entries of at
    /// most n voters each, checked by `History::fits` before anything else).
    pub history: History,
}

/// A HotStuff message between replicas.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Client requests handed to a leader by a replica that received them while idle.
    Forward(Vec<Request>),
    /// A leader's block.
    Proposal(Proposal),
    /// A vote, sent to the next round's leader.
    Vote(Vote),
    /// A timeout, broadcast.
    Timeout(Box<TimeoutMsg>),
    /// Certificates for a peer whose status shows it behind: the sender's highest QC
    /// and the TC that justified its round, if any.
    Certificates {
        /// Highest QC.
        qc: Qc,
        /// The latest TC.
        tc: Option<Arc<Tc>>,
    },
    /// Progress report.
    Status(Status),
    /// Asks for a block by digest (and some of its ancestors).
    FetchBlock(Digest),
    /// A fetched block and its ancestors, highest first.
    Blocks(Vec<Arc<Block>>),
    /// A signed checkpoint vote.
    Checkpoint(SignedCheckpoint),
    /// A stable checkpoint certificate, for a peer behind it.
    CheckpointCert(StableCert),
    /// Asks for the state at a stable checkpoint.
    FetchState(Seq),
    /// The state header at a stable checkpoint (the application state follows in
    /// chunks).
    StateSnapshot(Box<BlockSnapshot>),
    /// Asks for a chunk of the application state at a stable checkpoint.
    FetchChunk(FetchChunk),
    /// A chunk of the application state, in answer to [`Message::FetchChunk`].
    StateChunk(StateChunk),
}

impl Message {
    /// The bytes a signed-all signature covers.
    pub fn auth_bytes(&self) -> Vec<u8> {
        signing_bytes(b"tandem-hotstuff-message-v1", self)
    }

    /// The message's kind, for traces and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Forward(_) => "forward",
            Message::Proposal(_) => "proposal",
            Message::Vote(_) => "vote",
            Message::Timeout(_) => "timeout",
            Message::Certificates { .. } => "certificates",
            Message::Status(_) => "status",
            Message::FetchBlock(_) => "fetch-block",
            Message::Blocks(_) => "blocks",
            Message::Checkpoint(_) => "checkpoint",
            Message::CheckpointCert(_) => "checkpoint-cert",
            Message::FetchState(_) => "fetch-state",
            Message::StateSnapshot(_) => "state-snapshot",
            Message::FetchChunk(_) => "fetch-chunk",
            Message::StateChunk(_) => "state-chunk",
        }
    }
}

/// A message and, in signed-all mode, the sender's signature over it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The message.
    pub msg: Message,
    /// Signature over [`Message::auth_bytes`] (signed-all mode).
    pub signature: Option<Signature>,
}

/// HotStuff's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HotStuffTimer {
    /// The pacemaker's round time-out (re-armed to resend the timeout message).
    Round,
    /// Status broadcast and retries of block fetches.
    Status,
    /// State transfer: grace period, then retries.
    Transfer,
    /// Byzantine slow leader: release held proposals.
    SlowRelease,
    /// A leader held back by `max_unexecuted`, with nothing that needs ordering, may
    /// now propose its empty keep-alive block (`normal.rs`, `try_propose`).
    KeepAlive,
}
