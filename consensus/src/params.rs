//! Protocol parameters: the [`CommonParams`] every protocol shares (the `[protocol]`
//! section of a cluster file), the [`ProtocolParams`] trait a protocol's own section
//! implements (`[protocol.<name>]`), and the [`ParamsError`] validation returns.
//!
//! The split is what makes a comparison between protocols fair: whatever shapes the
//! load a protocol orders (cluster size, batching limits, the client window), how
//! often it checkpoints and gossips, and whether every message is signed is set once,
//! for every protocol alike. Only the mechanisms one protocol has and another lacks
//! (PBFT's watermark window, pipelining depth and view-change timer; a HotStuff
//! pacemaker's round timer) live in the protocol's own section.

use std::borrow::Cow;
use std::fmt::Debug;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::types::{max_faulty, quorum_size};

/// Parameters every protocol shares; every replica of a cluster uses the same values.
///
/// Why each is common: `replicas`, the batching limits and `client_window` decide the
/// load a protocol orders and what a client may send, so they must match for a
/// comparison to measure the protocols; `checkpoint_interval` and `transfer_timeout`
/// drive stable checkpoints and state transfer, which every protocol reuses to
/// garbage-collect and to let a lagging replica rejoin; `status_interval` is the
/// background catch-up gossip every protocol needs after message loss; `signed_all`
/// measures the cost of signatures, which must be switched on for all protocols alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommonParams {
    /// Number of replicas, n ≥ 4; tolerates f = ⌊(n-1)/3⌋ faults.
    pub replicas: usize,
    /// Maximum requests in one batch (one proposal).
    pub max_batch: usize,
    /// Maximum payload bytes in one batch.
    pub max_batch_bytes: usize,
    /// Maximum payload bytes of one request.
    pub max_request_bytes: usize,
    /// The proposer (PBFT's primary, a HotStuff leader) proposes a non-full batch this
    /// long after its first request arrived, unless it is idle (then at once).
    #[serde(rename = "batch_timeout_ms", with = "duration_ms")]
    pub batch_timeout: Duration,
    /// A checkpoint is taken every this many sequence numbers (K).
    pub checkpoint_interval: u64,
    /// Exactly-once window per client: request numbers more than this far below the
    /// client's highest executed number count as done, and this many recent results
    /// are kept to answer retransmissions. Clients keep their outstanding numbers
    /// within it (see `client::ClientCore`).
    pub client_window: u64,
    /// Sign every message, not only the ones forwarded as proof, and every reply.
    pub signed_all: bool,
    /// Replicas exchange status messages this often; peers answer what a lagging
    /// replica misses (retransmission, certificates, committed batches).
    #[serde(rename = "status_interval_ms", with = "duration_ms")]
    pub status_interval: Duration,
    /// How long a state-transfer request waits for an answer before asking another peer.
    #[serde(rename = "transfer_timeout_ms", with = "duration_ms")]
    pub transfer_timeout: Duration,
    /// The bound on one chunk of a checkpoint's state in a state transfer, in bytes
    /// (the application may exceed it by one indivisible unit, e.g. one ledger
    /// bucket). Every replica cuts its state at the same bound, so any signer serves
    /// the same chunk `i`. It must leave room in one frame (`max_frame_bytes`).
    pub state_chunk_bytes: usize,
    /// Back-pressure from execution to ordering: the proposer (PBFT's primary, a
    /// HotStuff leader) orders no new requests while more than this many batches it
    /// delivered wait for its own application to execute them, and it refuses new
    /// client requests as busy (`Reply::busy`) once its queue holds this many full
    /// batches. So under overload the backlog stays at the proposer, bounded, instead
    /// of growing in every replica's execution queue until timers fire.
    pub max_unexecuted: u64,
}

impl Default for CommonParams {
    fn default() -> CommonParams {
        CommonParams {
            replicas: 4,
            max_batch: 1024,
            max_batch_bytes: 8 << 20,
            max_request_bytes: 64 << 10,
            batch_timeout: Duration::from_millis(2),
            checkpoint_interval: 128,
            client_window: 65_536,
            signed_all: false,
            status_interval: Duration::from_millis(100),
            transfer_timeout: Duration::from_millis(2000),
            state_chunk_bytes: crate::state_chunks::DEFAULT_STATE_CHUNK_BYTES,
            max_unexecuted: 8,
        }
    }
}

/// The smallest `state_chunk_bytes` accepted (an application may raise a smaller
/// bound further to fit its proofs).
pub const MIN_STATE_CHUNK_BYTES: usize = 4096;

/// A parameter is out of range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("protocol parameter `{field}` {problem}")]
pub struct ParamsError {
    /// The field, as the cluster file spells it (`batch_timeout_ms`, `window`).
    pub field: Cow<'static, str>,
    /// What is wrong.
    pub problem: String,
}

impl ParamsError {
    /// The error for `field`.
    pub fn new(field: impl Into<Cow<'static, str>>, problem: impl Into<String>) -> ParamsError {
        ParamsError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl CommonParams {
    /// Number of faults tolerated.
    pub fn f(&self) -> usize {
        max_faulty(self.replicas)
    }

    /// Quorum size (2f+1 for n = 3f+1).
    pub fn quorum(&self) -> usize {
        quorum_size(self.replicas)
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let err = |field, problem: &str| Err(ParamsError::new(field, problem));
        if self.replicas < 4 {
            return err("replicas", "must be at least 4 (n = 3f+1 with f ≥ 1)");
        }
        if self.replicas > 1024 {
            return err("replicas", "must be at most 1024");
        }
        if self.max_batch == 0 {
            return err("max_batch", "must be at least 1");
        }
        if self.max_request_bytes == 0 || self.max_request_bytes > self.max_batch_bytes {
            return err("max_request_bytes", "must be between 1 and max_batch_bytes");
        }
        if self.checkpoint_interval == 0 {
            return err("checkpoint_interval", "must be at least 1");
        }
        if self.client_window == 0 {
            return err("client_window", "must be at least 1");
        }
        if self.status_interval.is_zero() {
            return err("status_interval_ms", "must be positive");
        }
        if self.transfer_timeout.is_zero() {
            return err("transfer_timeout_ms", "must be positive");
        }
        if self.state_chunk_bytes < MIN_STATE_CHUNK_BYTES {
            return err("state_chunk_bytes", "must be at least 4096");
        }
        if self.max_unexecuted == 0 || self.max_unexecuted > 1 << 20 {
            return err("max_unexecuted", "must be between 1 and 1048576");
        }
        Ok(())
    }

    /// How many requests the proposer queues before it refuses new client requests as
    /// busy: `max_unexecuted` full batches (what back-pressure lets it order before
    /// execution catches up), at most `capacity` (the queue's hard bound).
    pub fn admission_bound(&self, capacity: usize) -> usize {
        let batches = usize::try_from(self.max_unexecuted).unwrap_or(usize::MAX);
        self.max_batch.saturating_mul(batches).min(capacity).max(1)
    }

    /// How many of one client's requests the proposer queues before it refuses that
    /// client's new requests as busy (admission fairness) once the queue is
    /// contended ([`CommonParams::contended_bound`]): a quarter of
    /// [`CommonParams::admission_bound`], but at least one full batch (`max_batch`)
    /// and at most the admission bound. So a client flooding the proposer holds at
    /// most three quarters of the queue (the contended bound) and adds nothing more
    /// while it has a quarter queued; the other clients keep at least the last
    /// quarter, and as the flooder's requests are proposed (in queue order) the
    /// freed room goes to them. Below the contended bound nobody is refused for its
    /// share: refusing a client while the queue has room only makes it back off and
    /// leaves the proposer idle (in the simulator's `overload` mix, seeds 0–3,
    /// HotStuff's runs ended at 14.4–15.3 s with the share enforced on any queue,
    /// 8.3–12.9 s from half the admission bound, 6.8–9.8 s from three quarters and
    /// 6.8–9.1 s without the share). The client's own window is not known to
    /// the proposer (the `client_window` parameter is the exactly-once window, 65,536
    /// by default, far above this). At the defaults: 8,192 / 4 = 2,048 requests, two
    /// full batches.
    pub fn per_client_bound(&self, capacity: usize) -> usize {
        let admission = self.admission_bound(capacity);
        (admission / 4).max(self.max_batch).min(admission)
    }

    /// How many queued requests make the proposer enforce
    /// [`CommonParams::per_client_bound`]: three quarters of the admission bound
    /// (6,144 requests at the defaults).
    pub fn contended_bound(&self, capacity: usize) -> usize {
        self.admission_bound(capacity) / 4 * 3
    }
}

/// A protocol's own parameters: its section `[protocol.<name>]` of a cluster file
/// (fields in the file's units, e.g. `*_ms` for durations), and what the simulator
/// runs it with. Every replica of a cluster uses the same values.
pub trait ProtocolParams:
    Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Defaults that fit `common` (e.g. a window at least twice its checkpoint
    /// interval): what `tandem keygen` writes.
    fn defaults_for(common: &CommonParams) -> Self;

    /// Checks every field against itself and `common`; the error names the first bad
    /// field as the protocol's section spells it.
    fn validate(&self, common: &CommonParams) -> Result<(), ParamsError>;

    /// Sets how long a replica waits for its leader to make progress before it gives
    /// up on it (PBFT: the initial view-change timer; a pacemaker: the initial round
    /// time-out); the cap on its back-off scales with it. `--view-timeout-ms` sets it.
    fn set_view_timeout(&mut self, initial: Duration);

    /// Sets one field of the protocol's own section by its name there (`tandem sim`,
    /// `tandem local` and `tandem keygen` `--protocol-param KEY=VALUE`; a variant in
    /// `tandem compare --protocols hotstuff:KEY=VALUE`). `value` is read as a TOML
    /// value (`3`, `true`, `2.5`), or as a string when it is not one
    /// (`reputation`), so every field a cluster file can set can be set this way.
    ///
    /// Fields the section does not serialise (test-only switches such as a broken
    /// safety rule) are reset to their defaults: set those after every `set_param`.
    ///
    /// # Errors
    /// `key` is not a field of the section (the error lists the fields), or `value`
    /// does not fit the field's type (the error names the field). The result is not
    /// validated here: [`ProtocolParams::validate`] does that.
    fn set_param(&mut self, key: &str, value: &str) -> Result<(), ParamsError> {
        *self = set_field(self, key, value)?;
        Ok(())
    }

    /// The parameters the simulator runs the protocol with, beside the
    /// simulator's common parameters (`sim::SimConfig::common_params`): time-outs scaled to its network (0.2–7 ms per
    /// message), so a short run exercises leader failures.
    fn for_simulator(common: &CommonParams) -> Self;

    /// Test-only: break a safety rule (a quorum too small, a commit rule too short) so
    /// the simulator's checker can be shown to catch it.
    #[cfg(test)]
    fn break_safety(&mut self, common: &CommonParams);
}

/// `params` with the field `key` of its section set to `value` (see
/// [`ProtocolParams::set_param`]): through the section's TOML form, so the field's
/// serde name, unit and type are the cluster file's.
fn set_field<P: ProtocolParams>(params: &P, key: &str, value: &str) -> Result<P, ParamsError> {
    let field = || Cow::Owned(key.to_string());
    let mut table = toml::Table::try_from(params)
        .map_err(|e| ParamsError::new("protocol_param", format!("cannot encode: {e}")))?;
    if !table.contains_key(key) {
        let fields: Vec<&str> = table.keys().map(String::as_str).collect();
        return Err(ParamsError::new(
            "protocol_param",
            format!(
                "`{key}` is not a field of the protocol's section; its fields: {}",
                fields.join(", ")
            ),
        ));
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    let parsed = match parsed {
        Some(v) => v,
        None if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(ParamsError::new(
                field(),
                format!("= {value} is out of range"),
            ));
        }
        None => toml::Value::String(value.to_string()),
    };
    table.insert(key.to_string(), parsed);
    table.try_into().map_err(|e: toml::de::Error| {
        ParamsError::new(field(), format!("= {value}: {}", e.message().trim_end()))
    })
}

/// Durations as whole milliseconds in cluster files.
pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().min(u128::from(u64::MAX)) as u64)
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
        CommonParams::default().validate().unwrap();
    }

    #[test]
    fn validation_names_the_field() {
        let c = CommonParams {
            replicas: 3,
            ..CommonParams::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "replicas");
        let c = CommonParams {
            max_request_bytes: 1 << 30,
            ..CommonParams::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "max_request_bytes");
        let c = CommonParams {
            status_interval: Duration::ZERO,
            ..CommonParams::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "status_interval_ms");
        assert_eq!(
            e.to_string(),
            "protocol parameter `status_interval_ms` must be positive"
        );
        let c = CommonParams {
            max_unexecuted: 0,
            ..CommonParams::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "max_unexecuted");
    }

    #[test]
    fn per_client_bound_is_a_quarter_of_admission_at_least_one_batch() {
        let c = CommonParams::default();
        assert_eq!(c.admission_bound(usize::MAX), 8192);
        assert_eq!(c.per_client_bound(usize::MAX), 2048);
        assert_eq!(c.contended_bound(usize::MAX), 6144);
        let c = CommonParams {
            max_batch: 100,
            max_unexecuted: 2,
            ..CommonParams::default()
        };
        assert_eq!(c.per_client_bound(10_000), 100, "one full batch at least");
        assert_eq!(c.per_client_bound(50), 50, "within the admission bound");
    }

    #[test]
    fn admission_bound_is_max_unexecuted_full_batches_within_the_queue() {
        let c = CommonParams {
            max_batch: 100,
            max_unexecuted: 3,
            ..CommonParams::default()
        };
        assert_eq!(c.admission_bound(10_000), 300);
        assert_eq!(c.admission_bound(200), 200);
    }

    #[test]
    fn set_param_sets_any_field_of_a_section_by_its_file_name() {
        use crate::hotstuff::HotStuffParams;
        use crate::hotstuff::leaders::LeaderElection;
        use crate::pbft::PbftParams;
        let mut p = PbftParams::default();
        p.set_param("window", "512").unwrap();
        p.set_param("view_timeout_ms", "250").unwrap();
        assert_eq!(p.window, 512);
        assert_eq!(p.view_timeout, Duration::from_millis(250));
        let e = p.set_param("chain_length", "3").unwrap_err();
        assert_eq!(e.field, "protocol_param");
        assert!(e.problem.contains("window"), "{e}");
        let e = p.set_param("window", "many").unwrap_err();
        assert_eq!(e.field, "window", "{e}");
        let e = p.set_param("window", "-1").unwrap_err();
        assert_eq!(e.field, "window", "{e}");
        let e = p.set_param("window", "18446744073709551616").unwrap_err();
        assert!(e.problem.contains("out of range"), "{e}");
        assert_eq!(p.window, 512, "a refused value leaves the field alone");

        let mut h = HotStuffParams::default();
        h.set_param("chain_length", "3").unwrap();
        h.set_param("leader_election", "reputation").unwrap();
        h.set_param("round_timeout_ms", "400").unwrap();
        assert_eq!(h.chain_length, 3);
        assert_eq!(h.leader_election, LeaderElection::Reputation);
        assert_eq!(h.round_timeout, Duration::from_millis(400));
        let e = h.set_param("leader_election", "random").unwrap_err();
        assert_eq!(e.field, "leader_election");
        assert!(e.problem.contains("round-robin"), "{e}");
    }
}
