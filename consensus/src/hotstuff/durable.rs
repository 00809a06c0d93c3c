//! What a HotStuff replica makes durable, and its replay after a restart from disk.
//!
//! A replica must never contradict a vote or timeout it sent before a crash, so before
//! each it logs ([`HotStuffRecord`], through `Action::Persist`):
//!
//! | record | logged before |
//! |---|---|
//! | `Voted` (the block, with its QC) | its vote for the block: the last voted round, the block and the QC it extends |
//! | `TimedOut` (round, highest QC) | its timeout for the round: no vote in it afterwards |
//! | `Locked` (preferred round) | its next vote after the lock rose (chained HotStuff only: Jolteon's voting rule does not read the lock) |
//! | `Stable` | nothing: the stable checkpoint, kept so a restart skips older blocks |
//!
//! Replay restores the last voted round, the lock (preferred round), the highest QC
//! and the voted blocks, so a restarted replica neither votes twice in a round nor
//! votes against its lock. Committed state comes back through state transfer.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checkpoint::StableCert;
use crate::hotstuff::block::{Block, Round};
use crate::hotstuff::qc::Qc;

/// One entry of a HotStuff replica's write-ahead log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum HotStuffRecord {
    /// The durable state at a compaction point.
    Base(Box<DurableState>),
    /// The replica voted for this block (in its round).
    Voted(Arc<Block>),
    /// The replica timed out in `round` holding `high_qc`.
    TimedOut {
        /// The round.
        round: Round,
        /// Its highest QC then.
        high_qc: Qc,
    },
    /// A stable checkpoint's certificate.
    Stable(StableCert),
    /// The lock (preferred round) rose to this round (logged before the next vote).
    Locked(Round),
}

/// A HotStuff replica's durable state at a compaction point.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DurableState {
    /// The highest round voted or timed out in.
    pub last_voted_round: Round,
    /// The lock.
    pub preferred_round: Round,
    /// The highest QC.
    pub high_qc: Qc,
    /// The stable checkpoint.
    pub stable: StableCert,
}
