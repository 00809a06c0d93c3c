//! The crate's error type: everything that can be refused (names, thread counts,
//! state entries, snapshots, workload specs, encodings) is an `Error`, never a panic.

use crate::state::Key;

/// Errors returned by `tandem-executor`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("unknown executor `{0}`; expected one of: sequential, block-stm, access-list, auto")]
    UnknownExecutor(String),
    #[error("thread count {0} is out of range 1..={max}", max = crate::threads::MAX_THREADS)]
    ThreadCount(usize),
    #[error("could not start a worker thread: {0}")]
    SpawnFailed(String),
    #[error("invalid state entry {key:?}: {reason}")]
    InvalidEntry { key: Key, reason: &'static str },
    #[error("state chunk {index} rejected: {reason}")]
    Chunk { index: u32, reason: String },
    #[error("snapshot rejected at byte {offset}: {reason}")]
    Snapshot { offset: usize, reason: &'static str },
    #[error("invalid workload spec: {0}")]
    Workload(String),
    #[error("could not decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("could not encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    /// A file (transactions, genesis) was refused; `message` names the entry, its
    /// line and the field.
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("key derivation failed for account {0}")]
    KeyDerivation(u64),
}
