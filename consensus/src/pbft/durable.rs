//! What a PBFT replica makes durable, and its replay after a restart from disk.
//!
//! A replica must never contradict a message it sent before a crash, or it would act
//! like a Byzantine one. So before each message that commits it to something, it logs
//! the fact the message depends on ([`PbftRecord`], through `Action::Persist`):
//!
//! | record | logged before |
//! |---|---|
//! | `PrePrepared` (with the batch) | its pre-prepare (primary) or prepare (backup) for `(view, seq)` |
//! | `Prepared` | its commit for `(view, seq)`; it is also a P-set entry of later view changes |
//! | `Committed` | the replies to the batch's clients (and its delivery is replayed) |
//! | `ViewChange` | its view change to `view`: it never votes in an older view again |
//! | `NewView` | the new view it sends (as new primary) or enters |
//! | `Stable` | nothing: the low watermark it moves to, kept so restarts skip the work |
//!
//! The pre-prepared and prepared records are the Q and P sets of Castro's view change
//! (PBFT, OSDI 1999; TOCS 2002 §4.4): a replica that forgot them could let a new view
//! drop a batch that committed. Checkpoint votes need no record: they are a
//! deterministic function of the executed sequence.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checkpoint::StableCert;
use crate::exactly_once::ClientTables;
use crate::pbft::message::SignedNewView;
use crate::request::Batch;
use crate::types::{Digest, Seq, View};

/// One entry of a PBFT replica's write-ahead log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PbftRecord {
    /// The replica's durable state at a compaction point: the first record of a
    /// compacted log, replacing every record before it.
    Base(Box<DurableState>),
    /// The replica accepted (backup) or proposed (primary) `digest` at `seq` in `view`.
    PrePrepared {
        /// View.
        view: View,
        /// Sequence number.
        seq: Seq,
        /// The batch's digest.
        digest: Digest,
        /// The batch, so that a restarted replica can re-propose it in a new view and
        /// execute it once committed.
        batch: Arc<Batch>,
    },
    /// The replica prepared `digest` at `seq` in `view` (pre-prepare plus 2f matching
    /// prepares).
    Prepared {
        /// View.
        view: View,
        /// Sequence number.
        seq: Seq,
        /// The batch's digest.
        digest: Digest,
    },
    /// `digest` committed at `seq`. The batch is in the record unless a `PrePrepared`
    /// record of this log already holds it.
    Committed {
        /// Sequence number.
        seq: Seq,
        /// The batch's digest.
        digest: Digest,
        /// The batch, when no earlier record of the log holds it.
        batch: Option<Arc<Batch>>,
    },
    /// The replica left its view for `view` (and sent its view change).
    ViewChange {
        /// The view it moved to.
        view: View,
    },
    /// The replica started the view of this (validated) new-view message.
    NewView(Arc<SignedNewView>),
    /// A stable checkpoint's certificate.
    Stable(StableCert),
}

/// A PBFT replica's durable state at a compaction point: everything its log held that
/// the stable checkpoint did not make unnecessary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DurableState {
    /// The current view.
    pub view: View,
    /// Whether the view was running (false during a view change).
    pub view_active: bool,
    /// The new-view message that started the current view, if any.
    pub new_view: Option<Arc<SignedNewView>>,
    /// The stable checkpoint, whose application state is the log's snapshot.
    pub stable: StableCert,
    /// The application digest at the stable checkpoint.
    pub app_digest: Digest,
    /// The exactly-once table at the stable checkpoint.
    pub tables: ClientTables,
    /// P set above the stable checkpoint: `(seq, view, digest)`.
    pub prepared: Vec<(Seq, View, Digest)>,
    /// Q set above the stable checkpoint: `(seq, digest, latest view)`.
    pub pre_prepared: Vec<(Seq, Digest, View)>,
    /// The current view's accepted proposals: `(seq, digest, prepared)`.
    pub slots: Vec<(Seq, Digest, bool)>,
    /// Committed batches above the stable checkpoint: `(seq, digest)`.
    pub committed: Vec<(Seq, Digest)>,
    /// Every batch the entries above name, once each.
    pub batches: Vec<Arc<Batch>>,
}
