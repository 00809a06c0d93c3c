//! HotStuff in its 2-chain form (Jolteon, Gelashvili et al., FC 2022; the core of
//! DiemBFT v4 / AptosBFT), with a chain-length switch for classic 3-chain chained
//! HotStuff (Yin et al., PODC 2019), as a deterministic state machine.
//!
//! [`HotStuffReplica`] is the [`Protocol`](crate::protocol::Protocol) implementation
//! (`replica.rs`); its parameters are [`HotStuffParams`] (`[protocol.hotstuff]`). One
//! file per job: `block.rs` (blocks and digests), `qc.rs` (votes, QCs, timeouts,
//! TCs), `safety.rs` (voting, locking and commit rules), `pacemaker.rs` (rounds,
//! time-outs with back-off, TCs), `leaders.rs` (round-robin, or leader
//! reputation), `block_tree.rs` (held blocks, commit, pruning), `normal.rs`
//! (requests, proposals, votes, delivery, replies), `sync.rs` (status, block fetch,
//! checkpoints, state transfer), `routing.rs` (where clients send requests),
//! `durable.rs` (log records and replay), `byzantine.rs`, `counters.rs`, `tests.rs`.

pub mod block;
pub mod block_tree;
mod byzantine;
pub mod config;
mod counters;
pub mod durable;
pub mod leaders;
pub mod message;
mod normal;
pub mod pacemaker;
pub mod qc;
mod replica;
mod routing;
pub mod safety;
pub mod sync;

#[cfg(test)]
mod tests;

pub use byzantine::ByzantineMode;
pub use config::{HotStuffConfig, HotStuffParams};
pub use counters::Counters;
pub use durable::HotStuffRecord;
pub use message::{Envelope, HotStuffTimer, Message};
pub use replica::{HotStuff, HotStuffAction, HotStuffEvent, HotStuffReplica};
pub use routing::LeaderRouting;
