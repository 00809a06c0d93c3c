//! PBFT's parameters: [`PbftParams`], its own section `[protocol.pbft]` of a cluster
//! file (the watermark window, pipelining depth and view-change timer, which other
//! protocols lack), and [`PbftConfig`], everything a PBFT replica runs with: the
//! common parameters and its own, flattened so the state machine reads them alike.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::params::{CommonParams, ParamsError, ProtocolParams, duration_ms};
use crate::types::{max_faulty, quorum_size};

/// PBFT's own parameters (the cluster file's `[protocol.pbft]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PbftParams {
    /// Width of the watermark window: sequence numbers in (stable, stable + window] may
    /// be ordered (L). At least 2K so ordering continues while a checkpoint stabilises.
    pub window: u64,
    /// At most this many sequence numbers proposed but not yet delivered (pipelining
    /// depth), within the window.
    pub max_in_flight: u64,
    /// Initial view-change timer. Doubles with every consecutive failed view.
    #[serde(rename = "view_timeout_ms", with = "duration_ms")]
    pub view_timeout: Duration,
    /// Cap on the doubled view-change timer.
    #[serde(rename = "max_view_timeout_ms", with = "duration_ms")]
    pub max_view_timeout: Duration,
    /// Resend budget: the bytes this replica sends one peer per status interval in
    /// answer to that peer's status and fetch messages (retransmitted batches and
    /// votes, certificates, new views, fetched batches and state), refilled
    /// continuously up to one interval's worth; one answer may overdraw it (a state
    /// snapshot larger than the budget still goes out, then the peer waits). Issue
    /// 10 item 4: without it, forged status messages turned 6 bytes into 16 batches.
    pub resend_budget_bytes: u64,
    /// Test-only: override the quorum size to show the simulator catches a broken
    /// protocol.
    #[cfg(test)]
    #[serde(skip)]
    pub quorum_override: Option<usize>,
}

impl Default for PbftParams {
    fn default() -> PbftParams {
        PbftParams {
            window: 256,
            max_in_flight: 64,
            view_timeout: Duration::from_millis(1000),
            max_view_timeout: Duration::from_millis(16_000),
            resend_budget_bytes: 32 << 20,
            #[cfg(test)]
            quorum_override: None,
        }
    }
}

impl ProtocolParams for PbftParams {
    fn defaults_for(common: &CommonParams) -> PbftParams {
        let default = PbftParams::default();
        PbftParams {
            window: default
                .window
                .max(common.checkpoint_interval.saturating_mul(2)),
            ..default
        }
    }

    fn validate(&self, common: &CommonParams) -> Result<(), ParamsError> {
        let err = |field, problem: &str| Err(ParamsError::new(field, problem));
        if self.window < common.checkpoint_interval.saturating_mul(2) {
            return err("window", "must be at least 2 × checkpoint_interval");
        }
        if self.max_in_flight == 0 {
            return err("max_in_flight", "must be at least 1");
        }
        if self.view_timeout.is_zero() {
            return err("view_timeout_ms", "must be positive");
        }
        if self.max_view_timeout < self.view_timeout {
            return err("max_view_timeout_ms", "must be at least view_timeout_ms");
        }
        if self.resend_budget_bytes == 0 {
            return err("resend_budget_bytes", "must be positive");
        }
        Ok(())
    }

    /// The view-change timer starts at `initial` and doubles up to 16 × `initial`.
    fn set_view_timeout(&mut self, initial: Duration) {
        self.view_timeout = initial;
        self.max_view_timeout = initial.checked_mul(16).unwrap_or(Duration::MAX);
    }

    /// A window of four checkpoints, eight sequence numbers in flight, a 300 ms view
    /// timer doubling up to 2.4 s, and a 16 KiB resend budget per peer and status
    /// interval (a simulated batch is a few hundred bytes).
    fn for_simulator(common: &CommonParams) -> PbftParams {
        PbftParams {
            window: common.checkpoint_interval.saturating_mul(4),
            max_in_flight: 8,
            view_timeout: Duration::from_millis(300),
            max_view_timeout: Duration::from_millis(2400),
            resend_budget_bytes: 16 << 10,
            #[cfg(test)]
            quorum_override: None,
        }
    }

    /// Quorums of 2f instead of 2f+1: two quorums need not share a correct replica.
    #[cfg(test)]
    fn break_safety(&mut self, common: &CommonParams) {
        self.quorum_override = Some(2 * common.f());
    }
}

/// Everything a PBFT replica runs with: [`CommonParams`] and [`PbftParams`] in one
/// flat struct (field meanings and units as there). Every replica of a cluster must
/// use the same values.
#[derive(Clone, Debug, PartialEq)]
pub struct PbftConfig {
    /// [`CommonParams::replicas`].
    pub replicas: usize,
    /// [`CommonParams::checkpoint_interval`].
    pub checkpoint_interval: u64,
    /// [`PbftParams::window`].
    pub window: u64,
    /// [`PbftParams::max_in_flight`].
    pub max_in_flight: u64,
    /// [`CommonParams::max_batch`].
    pub max_batch: usize,
    /// [`CommonParams::max_batch_bytes`].
    pub max_batch_bytes: usize,
    /// [`CommonParams::max_request_bytes`].
    pub max_request_bytes: usize,
    /// [`CommonParams::batch_timeout`].
    pub batch_timeout: Duration,
    /// [`PbftParams::view_timeout`].
    pub view_timeout: Duration,
    /// [`PbftParams::max_view_timeout`].
    pub max_view_timeout: Duration,
    /// [`PbftParams::resend_budget_bytes`].
    pub resend_budget_bytes: u64,
    /// [`CommonParams::status_interval`].
    pub status_interval: Duration,
    /// [`CommonParams::transfer_timeout`].
    pub transfer_timeout: Duration,
    /// [`CommonParams::client_window`].
    pub client_window: u64,
    /// [`CommonParams::signed_all`].
    pub signed_all: bool,
    /// [`CommonParams::state_chunk_bytes`].
    pub state_chunk_bytes: usize,
    /// [`CommonParams::max_unexecuted`].
    pub max_unexecuted: u64,
    /// Test-only: [`PbftParams::quorum_override`].
    #[cfg(test)]
    pub quorum_override: Option<usize>,
}

impl Default for PbftConfig {
    fn default() -> PbftConfig {
        PbftConfig::new(&CommonParams::default(), &PbftParams::default())
    }
}

impl PbftConfig {
    /// The flat configuration of `common` and `own`.
    pub fn new(common: &CommonParams, own: &PbftParams) -> PbftConfig {
        PbftConfig {
            replicas: common.replicas,
            checkpoint_interval: common.checkpoint_interval,
            window: own.window,
            max_in_flight: own.max_in_flight,
            max_batch: common.max_batch,
            max_batch_bytes: common.max_batch_bytes,
            max_request_bytes: common.max_request_bytes,
            batch_timeout: common.batch_timeout,
            view_timeout: own.view_timeout,
            max_view_timeout: own.max_view_timeout,
            resend_budget_bytes: own.resend_budget_bytes,
            status_interval: common.status_interval,
            transfer_timeout: common.transfer_timeout,
            client_window: common.client_window,
            signed_all: common.signed_all,
            state_chunk_bytes: common.state_chunk_bytes,
            max_unexecuted: common.max_unexecuted,
            #[cfg(test)]
            quorum_override: own.quorum_override,
        }
    }

    /// The common part.
    pub fn common(&self) -> CommonParams {
        CommonParams {
            replicas: self.replicas,
            max_batch: self.max_batch,
            max_batch_bytes: self.max_batch_bytes,
            max_request_bytes: self.max_request_bytes,
            batch_timeout: self.batch_timeout,
            checkpoint_interval: self.checkpoint_interval,
            client_window: self.client_window,
            signed_all: self.signed_all,
            status_interval: self.status_interval,
            transfer_timeout: self.transfer_timeout,
            state_chunk_bytes: self.state_chunk_bytes,
            max_unexecuted: self.max_unexecuted,
        }
    }

    /// PBFT's own part.
    pub fn own(&self) -> PbftParams {
        PbftParams {
            window: self.window,
            max_in_flight: self.max_in_flight,
            view_timeout: self.view_timeout,
            max_view_timeout: self.max_view_timeout,
            resend_budget_bytes: self.resend_budget_bytes,
            #[cfg(test)]
            quorum_override: self.quorum_override,
        }
    }

    /// Number of faults tolerated.
    pub fn f(&self) -> usize {
        max_faulty(self.replicas)
    }

    /// Quorum size (2f+1 for n = 3f+1).
    pub fn quorum(&self) -> usize {
        #[cfg(test)]
        if let Some(q) = self.quorum_override {
            return q;
        }
        quorum_size(self.replicas)
    }

    /// Checks every field, the common ones first; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let common = self.common();
        common.validate()?;
        self.own().validate(&common)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_fit_the_checkpoint_interval() {
        PbftConfig::default().validate().unwrap();
        let common = CommonParams {
            checkpoint_interval: 1000,
            ..CommonParams::default()
        };
        PbftParams::defaults_for(&common).validate(&common).unwrap();
        assert_eq!(PbftParams::defaults_for(&common).window, 2000);
        PbftParams::for_simulator(&common)
            .validate(&common)
            .unwrap();
    }

    #[test]
    fn validation_names_the_field() {
        let c = PbftConfig {
            window: 10,
            ..PbftConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "window");
        let c = PbftConfig {
            replicas: 3,
            ..PbftConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "replicas");
        let c = PbftConfig {
            max_view_timeout: Duration::from_millis(1),
            ..PbftConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "max_view_timeout_ms");
    }

    #[test]
    fn the_split_roundtrips() {
        let c = PbftConfig {
            window: 512,
            max_batch: 7,
            ..PbftConfig::default()
        };
        assert_eq!(PbftConfig::new(&c.common(), &c.own()), c);
    }
}
