//! tandem-consensus: BFT protocols as pure, deterministic state machines, a client
//! state machine, and the seeded simulator that checks them.
//!
//! - [`protocol`]: the sans-IO [`Protocol`] trait (events in, actions out, how a
//!   protocol is built, its Byzantine modes, where clients send requests).
//! - [`params`]: the parameters every protocol shares and the trait for a protocol's
//!   own ones.
//! - [`registry`]: the protocols by name, and the dispatch that picks a monomorphised
//!   driver for one.
//! - [`pbft`]: PBFT — normal case, checkpoints, view change, state transfer,
//!   exactly-once clients, signatures, and Byzantine modes for experiments.
//! - [`hotstuff`]: 2-chain HotStuff (Jolteon / DiemBFT v4) with a 3-chain switch —
//!   block tree, QCs and TCs, pacemaker, block sync, checkpoints, Byzantine modes.
//! - [`exactly_once`], [`checkpoint`] and `state_transfer`: what every protocol shares
//!   to execute each request once, take stable checkpoints and transfer state to a
//!   lagging replica.
//! - [`application`]: what a driver runs deliveries through (and a hash-chain app);
//!   [`state_chunks`]: a checkpoint's state as verifiable chunks, and the restore
//!   steps a driver runs for a chunked state transfer.
//! - [`client_auth`]: MAC authenticators on client requests (who may forge what).
//! - [`client`]: the client side (f+1 matching replies, retransmission, routing
//!   requests where the protocol says) as a state machine.
//! - [`sim`]: the deterministic cluster simulator with safety and liveness checks.
//!
//! Nothing here reads a clock, spawns a thread, draws OS randomness or iterates a hash
//! map inside a state transition: the same inputs give the same outputs, so a
//! simulator seed replays exactly.

#[macro_use]
mod counters;

pub mod application;
mod byte_arrays;
pub mod checkpoint;
pub mod client;
pub mod client_auth;
mod client_quota;
pub mod crypto;
pub mod exactly_once;
pub mod hotstuff;
pub mod params;
pub mod pbft;
pub mod protocol;
pub mod registry;
pub mod request;
mod resend_budget;
pub mod sim;
pub mod state_chunks;
mod state_transfer;
mod timers;
pub mod types;

pub use params::{CommonParams, ParamsError, ProtocolParams};
pub use protocol::{
    Action, ByzantineBehaviour, CommonCounters, Delivery, DurableCheckpoint, Event, Executed,
    Protocol, RecoveryError, ReplicaStatus,
};
pub use registry::{ProtocolKind, ProtocolVisitor, RegistryError};
pub use request::{Batch, Reply, ReplyResult, Request};
pub use types::{ClientId, Digest, ReplicaId, Seq, Time, View};
