//! Protocol parameters, shared by every replica of a cluster (they sit in the cluster
//! file), with validation that names the offending field.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::{max_faulty, quorum_size};

/// PBFT parameters. Every replica of a cluster must use the same values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Number of replicas, n ≥ 4; tolerates f = ⌊(n-1)/3⌋ faults.
    pub replicas: usize,
    /// A checkpoint is taken every this many sequence numbers (K).
    pub checkpoint_interval: u64,
    /// Width of the watermark window: sequence numbers in (stable, stable + window] may
    /// be ordered (L). At least 2K so ordering continues while a checkpoint stabilises.
    pub window: u64,
    /// At most this many sequence numbers proposed but not yet delivered (pipelining
    /// depth), within the window.
    pub max_in_flight: u64,
    /// Maximum requests in one batch.
    pub max_batch: usize,
    /// Maximum payload bytes in one batch.
    pub max_batch_bytes: usize,
    /// Maximum payload bytes of one request.
    pub max_request_bytes: usize,
    /// The primary proposes a non-full batch this long after its first request arrived,
    /// unless the pipeline is idle (then it proposes at once).
    #[serde(rename = "batch_timeout_ms", with = "duration_ms")]
    pub batch_timeout: Duration,
    /// Initial view-change timer. Doubles with every consecutive failed view.
    #[serde(rename = "view_timeout_ms", with = "duration_ms")]
    pub view_timeout: Duration,
    /// Cap on the doubled view-change timer.
    #[serde(rename = "max_view_timeout_ms", with = "duration_ms")]
    pub max_view_timeout: Duration,
    /// Replicas exchange status messages this often; peers answer what a lagging
    /// replica misses (retransmission, new views, checkpoints, committed batches).
    #[serde(rename = "status_interval_ms", with = "duration_ms")]
    pub status_interval: Duration,
    /// How long a state-transfer request waits for an answer before asking another peer.
    #[serde(rename = "transfer_timeout_ms", with = "duration_ms")]
    pub transfer_timeout: Duration,
    /// Exactly-once window per client: request numbers more than this far below the
    /// client's highest executed number count as done, and this many recent results
    /// are kept to answer retransmissions. Clients keep their outstanding numbers
    /// within it (see `client::ClientCore`).
    pub client_window: u64,
    /// Sign every message, not only the ones forwarded as proof.
    pub signed_all: bool,
    /// Test-only: override the quorum size to show the simulator catches a broken
    /// protocol.
    #[cfg(test)]
    #[serde(skip)]
    pub quorum_override: Option<usize>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            replicas: 4,
            checkpoint_interval: 128,
            window: 256,
            max_in_flight: 64,
            max_batch: 1024,
            max_batch_bytes: 8 << 20,
            max_request_bytes: 64 << 10,
            batch_timeout: Duration::from_millis(2),
            view_timeout: Duration::from_millis(1000),
            max_view_timeout: Duration::from_millis(16_000),
            status_interval: Duration::from_millis(100),
            transfer_timeout: Duration::from_millis(2000),
            client_window: 65_536,
            signed_all: false,
            #[cfg(test)]
            quorum_override: None,
        }
    }
}

/// A parameter is out of range.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("protocol parameter `{field}` {problem}")]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl Config {
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

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, problem: &str| {
            Err(ConfigError {
                field,
                problem: problem.to_string(),
            })
        };
        if self.replicas < 4 {
            return err("replicas", "must be at least 4 (n = 3f+1 with f ≥ 1)");
        }
        if self.replicas > 1024 {
            return err("replicas", "must be at most 1024");
        }
        if self.checkpoint_interval == 0 {
            return err("checkpoint_interval", "must be at least 1");
        }
        if self.window < 2 * self.checkpoint_interval {
            return err("window", "must be at least 2 × checkpoint_interval");
        }
        if self.max_in_flight == 0 {
            return err("max_in_flight", "must be at least 1");
        }
        if self.max_batch == 0 {
            return err("max_batch", "must be at least 1");
        }
        if self.max_request_bytes == 0 || self.max_request_bytes > self.max_batch_bytes {
            return err("max_request_bytes", "must be between 1 and max_batch_bytes");
        }
        if self.view_timeout.is_zero() {
            return err("view_timeout_ms", "must be positive");
        }
        if self.max_view_timeout < self.view_timeout {
            return err("max_view_timeout_ms", "must be at least view_timeout_ms");
        }
        if self.status_interval.is_zero() {
            return err("status_interval_ms", "must be positive");
        }
        if self.transfer_timeout.is_zero() {
            return err("transfer_timeout_ms", "must be positive");
        }
        if self.client_window == 0 {
            return err("client_window", "must be at least 1");
        }
        Ok(())
    }
}

/// Durations as whole milliseconds in config files.
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn validation_names_the_field() {
        let c = Config {
            window: 10,
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "window");
        let c = Config {
            replicas: 3,
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "replicas");
    }
}
