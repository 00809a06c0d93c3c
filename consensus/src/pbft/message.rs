//! PBFT's wire messages and timers.
//!
//! Prepare and commit carry the batch digest only; the batch travels once, in the
//! pre-prepare. Checkpoints, view changes and new views are always signed, because they
//! are forwarded as proof inside certificates. In signed-all mode every message also
//! carries an envelope signature by its sender. Checkpoint votes, stable certificates
//! and state snapshots are the protocol-neutral ones of `crate::checkpoint`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::checkpoint::{
    CheckpointBody, FetchChunk, SignedCheckpoint, StableCert, StateChunk, StateSnapshot,
    checkpoint_digest,
};
pub use crate::crypto::encoded_len;
use crate::crypto::{Signature, signing_bytes};
pub use crate::crypto::{Signed, SignedBody};
use crate::request::{Batch, Request};
use crate::types::{Digest, Seq, View};

/// PBFT's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PbftTimer {
    /// The primary proposes a partial batch.
    Batch,
    /// A backup waited too long for requests to commit, or for a new view: change view.
    View,
    /// Send a status message to peers.
    Status,
    /// A lagging replica starts (or retries) state transfer.
    Transfer,
    /// Used by the slow-primary Byzantine mode to release held proposals.
    SlowRelease,
}

/// A message between replicas, with an optional sender signature (signed-all mode).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The message.
    pub msg: Message,
    /// The sender's signature over [`Message::auth_bytes`], in signed-all mode.
    pub signature: Option<Signature>,
}

impl Envelope {
    /// An unsigned envelope.
    pub fn plain(msg: Message) -> Envelope {
        Envelope {
            msg,
            signature: None,
        }
    }
}

/// Replica-to-replica messages.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Client requests a backup forwards to the primary.
    Forward(Vec<Request>),
    /// The primary assigns a batch to a sequence number.
    PrePrepare(PrePrepare),
    /// A backup accepted a pre-prepare.
    Prepare(Vote),
    /// A replica is prepared and commits.
    Commit(Vote),
    /// A replica's state digest after executing a checkpoint sequence number.
    Checkpoint(SignedCheckpoint),
    /// A stable checkpoint's certificate, sent to a replica whose status shows it is
    /// behind.
    CheckpointCert(StableCert),
    /// A replica moves to a new view.
    ViewChange(Box<SignedViewChange>),
    /// The new primary starts its view.
    NewView(Arc<SignedNewView>),
    /// Periodic summary, so peers retransmit what this replica misses.
    Status(Status),
    /// Asks for a batch by digest (after a new view re-proposes one this replica lacks).
    FetchBatch(Digest),
    /// A batch sent in answer to [`Message::FetchBatch`].
    BatchData(Arc<Batch>),
    /// Asks for the state at a stable checkpoint at or after this sequence number.
    FetchState(Seq),
    /// A checkpoint's state header, with the certificate that vouches for it; the
    /// application state follows in chunks.
    StateSnapshot(Box<StateSnapshot>),
    /// Asks for a chunk of the application state at a stable checkpoint.
    FetchChunk(FetchChunk),
    /// A chunk of the application state, in answer to [`Message::FetchChunk`].
    StateChunk(StateChunk),
    /// A batch the sender committed, for a peer that missed it. A receiver accepts it
    /// once f+1 replicas vouch for the same digest.
    Committed(CommittedBatch),
}

impl Message {
    /// The bytes an envelope signature covers. Messages that carry a batch or a
    /// snapshot are bound to it through its digest, which the receiver checks anyway,
    /// so a signature never hashes a large payload twice.
    pub fn auth_bytes(&self) -> Vec<u8> {
        match self {
            Message::PrePrepare(pp) => {
                signing_bytes(b"tandem-env-preprepare", &(pp.view, pp.seq, pp.digest))
            }
            Message::BatchData(b) => signing_bytes(b"tandem-env-batch", &b.digest()),
            Message::Committed(c) => signing_bytes(b"tandem-env-committed", &(c.seq, c.digest)),
            Message::StateSnapshot(s) => signing_bytes(
                b"tandem-env-snapshot",
                &(s.cert.seq, s.cert.digest, s.app_digest, s.tables.digest()),
            ),
            Message::StateChunk(c) => signing_bytes(
                b"tandem-env-chunk",
                &(c.seq, c.index, Digest::of(&[&c.chunk])),
            ),
            other => signing_bytes(b"tandem-env", other),
        }
    }
}

/// A pre-prepare: `batch` (whose digest is `digest`) at `seq` in `view`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrePrepare {
    /// View.
    pub view: View,
    /// Sequence number.
    pub seq: Seq,
    /// Digest of `batch`.
    pub digest: Digest,
    /// The batch.
    pub batch: Arc<Batch>,
}

/// A prepare or commit vote for `digest` at `seq` in `view`. The voter is the
/// authenticated sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// View.
    pub view: View,
    /// Sequence number.
    pub seq: Seq,
    /// Batch digest.
    pub digest: Digest,
}

/// A prepared certificate claimed in a view change: the replica prepared `digest` at
/// `seq` in `view` (the P set of Castro's thesis).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PreparedClaim {
    /// Sequence number.
    pub seq: Seq,
    /// View in which it prepared (the latest such view).
    pub view: View,
    /// Digest.
    pub digest: Digest,
}

/// A pre-prepared claim: the replica pre-prepared `digest` at `seq`, latest in `view`
/// (the Q set of Castro's thesis).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrePreparedClaim {
    /// Sequence number.
    pub seq: Seq,
    /// Digest.
    pub digest: Digest,
    /// Latest view in which the replica pre-prepared `digest` at `seq`.
    pub view: View,
}

/// A view-change message: the sender moves to `new_view` and reports its stable
/// checkpoint and what it prepared and pre-prepared above it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewChangeBody {
    /// The view the sender moves to.
    pub new_view: View,
    /// The sender's latest stable checkpoint, with proof.
    pub stable: StableCert,
    /// P set: prepared certificates above the stable checkpoint.
    pub prepared: Vec<PreparedClaim>,
    /// Q set: pre-prepared claims above the stable checkpoint.
    pub pre_prepared: Vec<PrePreparedClaim>,
}

impl SignedBody for ViewChangeBody {
    const DOMAIN: &'static [u8] = b"tandem-view-change-v1";
}

/// A signed view change.
pub type SignedViewChange = Signed<ViewChangeBody>;

/// A new-view message: the view changes the new primary decided from, and the
/// decision (which every replica recomputes and checks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewViewBody {
    /// The view that starts.
    pub view: View,
    /// At least a quorum of view changes for `view`, from distinct replicas.
    pub view_changes: Vec<SignedViewChange>,
    /// The checkpoint the view starts from.
    pub checkpoint: Seq,
    /// `(seq, digest)` re-proposed for every sequence number above the checkpoint up to
    /// the highest prepared one; the null digest fills gaps.
    pub proposals: Vec<(Seq, Digest)>,
}

impl SignedBody for NewViewBody {
    const DOMAIN: &'static [u8] = b"tandem-new-view-v1";
}

/// A signed new view.
pub type SignedNewView = Signed<NewViewBody>;

/// A replica's periodic summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Current view.
    pub view: View,
    /// Whether the view is running (false during a view change).
    pub view_active: bool,
    /// Latest stable checkpoint.
    pub stable: Seq,
    /// Last sequence number delivered.
    pub last_delivered: Seq,
}

/// A committed batch, retransmitted to a lagging peer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommittedBatch {
    /// Sequence number.
    pub seq: Seq,
    /// Digest of `batch`.
    pub digest: Digest,
    /// The batch as committed (before exactly-once filtering).
    pub batch: Arc<Batch>,
}
