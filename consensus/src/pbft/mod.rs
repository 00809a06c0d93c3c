//! PBFT (Castro and Liskov) as a deterministic state machine.
//!
//! [`PbftReplica`] is the [`Protocol`] implementation: the honest core [`Pbft`], and
//! optionally a [`ByzantineMode`] that rewrites what the core sends, for experiments.

mod byzantine;
mod checkpoint;
pub mod clients;
mod counters;
pub mod decision;
pub mod message;
mod normal;
mod recovery;
mod replica;
mod view_change;

#[cfg(test)]
mod tests;

pub use byzantine::ByzantineMode;
pub use counters::Counters;
pub use message::{Envelope, Message, PbftTimer};
pub use replica::{Pbft, PbftAction, PbftEvent};

use crate::config::{Config, ConfigError};
use crate::crypto::Keyring;
use crate::protocol::{Protocol, ReplicaStatus};
use crate::types::{ReplicaId, Time};

/// A PBFT replica: honest, or misbehaving in one [`ByzantineMode`].
#[derive(Debug)]
pub struct PbftReplica {
    core: Pbft,
    byzantine: Option<byzantine::Byzantine>,
}

impl PbftReplica {
    /// An honest replica.
    pub fn new(cfg: Config, keys: Keyring) -> Result<PbftReplica, ConfigError> {
        Ok(PbftReplica {
            core: Pbft::new(cfg, keys)?,
            byzantine: None,
        })
    }

    /// A replica that misbehaves in `mode`.
    pub fn byzantine(
        cfg: Config,
        keys: Keyring,
        mode: ByzantineMode,
    ) -> Result<PbftReplica, ConfigError> {
        Ok(PbftReplica {
            core: Pbft::new(cfg, keys)?,
            byzantine: Some(byzantine::Byzantine::new(mode)),
        })
    }

    /// The misbehaviour, if any.
    pub fn byzantine_mode(&self) -> Option<ByzantineMode> {
        self.byzantine.as_ref().map(byzantine::Byzantine::mode)
    }

    /// The honest core.
    pub fn core(&self) -> &Pbft {
        &self.core
    }

    /// Accepts requests only from these clients (see [`Pbft::set_allowed_clients`]).
    pub fn set_allowed_clients(
        &mut self,
        clients: impl IntoIterator<Item = crate::types::ClientId>,
    ) {
        self.core.set_allowed_clients(clients);
    }
}

impl Protocol for PbftReplica {
    type Message = Envelope;
    type Timer = PbftTimer;

    fn id(&self) -> ReplicaId {
        self.core.me
    }

    fn start(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        self.core.start(now, out);
    }

    fn handle(&mut self, now: Time, event: PbftEvent, out: &mut Vec<PbftAction>) {
        match &mut self.byzantine {
            None => self.core.handle(now, event, out),
            Some(b) => b.handle(&mut self.core, now, event, out),
        }
    }

    fn status(&self) -> ReplicaStatus {
        self.core.replica_status()
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.core.counters.pairs()
    }
}
