//! tandem-consensus: BFT protocols as pure, deterministic state machines, a client
//! state machine, and the seeded simulator that checks them.
//!
//! - [`protocol`]: the sans-IO [`Protocol`] trait (events in, actions out).
//! - [`pbft`]: PBFT — normal case, checkpoints, view change, state transfer,
//!   exactly-once clients, signatures, and Byzantine modes for experiments.
//! - [`application`]: what a driver runs deliveries through (and a hash-chain app).
//! - [`client`]: the client side (f+1 matching replies, retransmission, primary
//!   tracking) as a state machine.
//! - [`sim`]: the deterministic cluster simulator with safety and liveness checks.
//!
//! Nothing here reads a clock, spawns a thread, draws OS randomness or iterates a hash
//! map inside a state transition: the same inputs give the same outputs, so a
//! simulator seed replays exactly.

pub mod application;
pub mod client;
pub mod config;
pub mod crypto;
pub mod pbft;
pub mod protocol;
pub mod request;
pub mod sim;
pub mod types;

pub use config::{Config, ConfigError};
pub use protocol::{Action, Delivery, Event, Executed, Protocol, ReplicaStatus};
pub use request::{Batch, Reply, Request};
pub use types::{ClientId, Digest, ReplicaId, Seq, Time, View};
