//! HotStuff's parameters: [`HotStuffParams`], its own section `[protocol.hotstuff]` of a
//! cluster file (the pacemaker's round time-out and its back-off cap, the commit rule's
//! chain length, the leader election), and [`HotStuffConfig`], the common and own parameters flattened for
//! the state machine.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::hotstuff::leaders::LeaderElection;
use crate::params::{CommonParams, ParamsError, ProtocolParams, duration_ms};
use crate::types::{max_faulty, quorum_size};

/// HotStuff's own parameters (the cluster file's `[protocol.hotstuff]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HotStuffParams {
    /// The pacemaker's initial round time-out: a replica waiting for progress gives up
    /// on a round this long after entering it. Doubles with every consecutive round
    /// that ended by a timeout certificate, back to this after a round ended by a QC.
    #[serde(rename = "round_timeout_ms", with = "duration_ms")]
    pub round_timeout: Duration,
    /// Cap on the doubled round time-out.
    #[serde(rename = "max_round_timeout_ms", with = "duration_ms")]
    pub max_round_timeout: Duration,
    /// Length of the chain of certified blocks in consecutive rounds that commits its
    /// first block: 2 is Jolteon / DiemBFT v4 (2-chain commit, timeout-certificate
    /// voting rule), 3 is classic chained HotStuff (3-chain commit, the LibraBFT
    /// locking rule `qc.round ≥ preferred round`).
    pub chain_length: u8,
    /// How each round's leader is chosen: `"round-robin"` (the default; round r is led
    /// by replica r mod n) or `"reputation"` (Aptos' leader reputation: a draw seeded
    /// by the round, weighted by who proposed and voted in a window of the committed
    /// chain, so silent or failing leaders are skipped; `leaders.rs`).
    pub leader_election: LeaderElection,
    /// Test-only: commit on a 1-chain (a block as soon as it has a QC), which is
    /// unsafe; the simulator's checker must catch it.
    #[cfg(test)]
    #[serde(skip)]
    pub one_chain_commit: bool,
}

impl Default for HotStuffParams {
    fn default() -> HotStuffParams {
        HotStuffParams {
            round_timeout: Duration::from_millis(1000),
            max_round_timeout: Duration::from_millis(16_000),
            chain_length: 2,
            leader_election: LeaderElection::RoundRobin,
            #[cfg(test)]
            one_chain_commit: false,
        }
    }
}

impl ProtocolParams for HotStuffParams {
    fn defaults_for(_common: &CommonParams) -> HotStuffParams {
        HotStuffParams::default()
    }

    fn validate(&self, _common: &CommonParams) -> Result<(), ParamsError> {
        let err = |field, problem: &str| Err(ParamsError::new(field, problem));
        if self.round_timeout.is_zero() {
            return err("round_timeout_ms", "must be positive");
        }
        if self.max_round_timeout < self.round_timeout {
            return err("max_round_timeout_ms", "must be at least round_timeout_ms");
        }
        if !(2..=3).contains(&self.chain_length) {
            return err(
                "chain_length",
                "must be 2 (Jolteon) or 3 (chained HotStuff)",
            );
        }
        Ok(())
    }

    /// The round time-out starts at `initial` and doubles up to 16 × `initial`.
    fn set_view_timeout(&mut self, initial: Duration) {
        self.round_timeout = initial;
        self.max_round_timeout = initial.checked_mul(16).unwrap_or(Duration::MAX);
    }

    /// A 150 ms round time-out (at least ten of the simulator's message delays, 0.2–7
    /// ms, so only faults and heavy jitter end a round by a TC) doubling up to 2.4 s,
    /// and the 2-chain rule. Shorter than PBFT's 300 ms view timer because rotation
    /// meets a faulty leader every n rounds, where PBFT changes view once and stays.
    fn for_simulator(_common: &CommonParams) -> HotStuffParams {
        HotStuffParams {
            round_timeout: Duration::from_millis(150),
            max_round_timeout: Duration::from_millis(2400),
            chain_length: 2,
            leader_election: LeaderElection::RoundRobin,
            #[cfg(test)]
            one_chain_commit: false,
        }
    }

    /// Commit on a 1-chain: a block commits as soon as its QC forms, before a quorum
    /// knows of the QC, so a timeout certificate can lead the next leader elsewhere.
    #[cfg(test)]
    fn break_safety(&mut self, _common: &CommonParams) {
        self.one_chain_commit = true;
    }
}

/// Everything a HotStuff replica runs with: [`CommonParams`] and [`HotStuffParams`].
#[derive(Clone, Debug, PartialEq)]
pub struct HotStuffConfig {
    /// The common parameters.
    pub common: CommonParams,
    /// HotStuff's own.
    pub own: HotStuffParams,
}

impl HotStuffConfig {
    /// The configuration of `common` and `own`.
    pub fn new(common: &CommonParams, own: &HotStuffParams) -> HotStuffConfig {
        HotStuffConfig {
            common: common.clone(),
            own: own.clone(),
        }
    }

    /// Number of faults tolerated.
    pub fn f(&self) -> usize {
        max_faulty(self.common.replicas)
    }

    /// Quorum size (2f+1 for n = 3f+1).
    pub fn quorum(&self) -> usize {
        quorum_size(self.common.replicas)
    }

    /// The commit rule's chain length (1 when the test-only broken rule is on).
    pub fn commit_chain(&self) -> usize {
        #[cfg(test)]
        if self.own.one_chain_commit {
            return 1;
        }
        usize::from(self.own.chain_length)
    }

    /// Checks every field, the common ones first; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ParamsError> {
        self.common.validate()?;
        self.own.validate(&self.common)
    }
}

impl Default for HotStuffConfig {
    fn default() -> HotStuffConfig {
        HotStuffConfig::new(&CommonParams::default(), &HotStuffParams::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_validation_names_the_field() {
        HotStuffConfig::default().validate().unwrap();
        let common = CommonParams::default();
        HotStuffParams::for_simulator(&common)
            .validate(&common)
            .unwrap();
        let bad = HotStuffParams {
            chain_length: 4,
            ..HotStuffParams::default()
        };
        assert_eq!(bad.validate(&common).unwrap_err().field, "chain_length");
        let bad = HotStuffParams {
            max_round_timeout: Duration::from_millis(1),
            ..HotStuffParams::default()
        };
        assert_eq!(
            bad.validate(&common).unwrap_err().field,
            "max_round_timeout_ms"
        );
        let mut p = HotStuffParams::default();
        p.set_view_timeout(Duration::from_millis(50));
        assert_eq!(p.max_round_timeout, Duration::from_millis(800));
        assert_eq!(p.leader_election, LeaderElection::RoundRobin);
        p.set_param("leader_election", "reputation").unwrap();
        assert_eq!(p.leader_election, LeaderElection::Reputation);
        assert_eq!(
            p.set_param("leader_election", "random").unwrap_err().field,
            "leader_election"
        );
        assert!(p.set_param("window", "4").is_err());
    }
}
