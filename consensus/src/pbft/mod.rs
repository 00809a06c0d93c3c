//! PBFT (Castro and Liskov) as a deterministic state machine.
//!
//! [`PbftReplica`] is the [`Protocol`] implementation: the honest core [`Pbft`], and
//! optionally a [`ByzantineMode`] that rewrites what the core sends, for experiments.
//! Its parameters are [`PbftParams`] (the cluster file's `[protocol.pbft]`) beside the
//! common ones; clients route requests with [`PrimaryRouting`].

mod byzantine;
mod checkpoint;
pub mod config;
mod counters;
pub mod decision;
pub mod durable;
pub mod message;
mod normal;
mod recovery;
mod replica;
mod routing;
mod view_change;

#[cfg(test)]
mod tests;

pub use byzantine::{ByzantineMode, CENSORED_CLIENT};
pub use config::{PbftConfig, PbftParams};
pub use counters::Counters;
pub use durable::{DurableState, PbftRecord};
pub use message::{Envelope, Message, PbftTimer};
pub use replica::{Pbft, PbftAction, PbftEvent};
pub use routing::PrimaryRouting;

use crate::client::ClientRouting;
use crate::crypto::Keyring;
use crate::exactly_once::DeliveredTable;
use crate::params::{CommonParams, ParamsError};
use crate::protocol::{
    ByzantineBehaviour, CastVote, CommonCounters, DurableCheckpoint, Protocol, RecoveryError,
    ReplicaStatus,
};
use crate::types::{ClientId, Digest, ReplicaId, Seq, Time};

/// A PBFT replica: honest, or misbehaving in one [`ByzantineMode`].
#[derive(Debug)]
pub struct PbftReplica {
    core: Pbft,
    byzantine: Option<byzantine::Byzantine>,
}

impl PbftReplica {
    /// An honest replica.
    pub fn new(cfg: PbftConfig, keys: Keyring) -> Result<PbftReplica, ParamsError> {
        Ok(PbftReplica {
            core: Pbft::new(cfg, keys)?,
            byzantine: None,
        })
    }

    /// A replica that misbehaves in `mode`.
    pub fn byzantine(
        cfg: PbftConfig,
        keys: Keyring,
        mode: ByzantineMode,
    ) -> Result<PbftReplica, ParamsError> {
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
}

impl ByzantineBehaviour for ByzantineMode {
    const ALL: &'static [ByzantineMode] = &ByzantineMode::ALL;

    fn name(self) -> &'static str {
        ByzantineMode::name(self)
    }
}

impl Protocol for PbftReplica {
    const NAME: &'static str = "pbft";
    type Message = Envelope;
    type Timer = PbftTimer;
    type Params = PbftParams;
    type Byzantine = ByzantineMode;
    type Record = PbftRecord;

    fn build(
        common: &CommonParams,
        own: &PbftParams,
        keys: Keyring,
        byzantine: Option<ByzantineMode>,
    ) -> Result<PbftReplica, ParamsError> {
        let cfg = PbftConfig::new(common, own);
        match byzantine {
            None => PbftReplica::new(cfg, keys),
            Some(mode) => PbftReplica::byzantine(cfg, keys, mode),
        }
    }

    fn client_routing(replicas: usize) -> Box<dyn ClientRouting> {
        Box::new(PrimaryRouting::new(replicas))
    }

    fn set_allowed_clients(&mut self, clients: &[ClientId]) {
        self.core.set_allowed_clients(clients.iter().copied());
    }

    fn id(&self) -> ReplicaId {
        self.core.me
    }

    fn recover(&mut self, index: u64, record: PbftRecord) -> Result<(), RecoveryError> {
        self.core.replay(index, record)
    }

    fn durable_checkpoint(&self) -> Option<DurableCheckpoint<PbftRecord>> {
        self.core.durable_checkpoint()
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

    fn vote_of(env: &Envelope) -> Option<CastVote> {
        let (phase, view, seq, digest) = match &env.msg {
            Message::PrePrepare(pp) => ("pre-prepare", pp.view, pp.seq, pp.digest),
            Message::Prepare(v) => ("prepare", v.view, v.seq, v.digest),
            Message::Commit(v) => ("commit", v.view, v.seq, v.digest),
            Message::ViewChange(vc) => {
                (CastVote::LEAVE, vc.body.new_view, Seq(0), Digest::default())
            }
            _ => return None,
        };
        Some(CastVote {
            phase,
            view,
            seq,
            digest,
        })
    }

    fn status(&self) -> ReplicaStatus {
        self.core.replica_status()
    }

    fn delivered_requests(&self) -> &DeliveredTable {
        &self.core.delivered_table
    }

    fn common_counters(&self) -> CommonCounters {
        let c = &self.core.counters;
        CommonCounters {
            batches_delivered: c.batches_delivered,
            requests_delivered: c.requests_delivered,
            view_changes: c.view_changes_started,
            state_transfers: c.state_transfers,
            conflicting_commits: c.safety_conflicts,
            refused_busy: c.refused_busy,
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.core.counters.pairs()
    }
}
