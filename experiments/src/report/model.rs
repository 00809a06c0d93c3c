//! What a run reports: the summary (`summary.json`) and one timeline row per interval
//! (`timeline.csv`). The cluster runner fills these; the rest of `report` writes them.
//!
//! JSON has no NaN or infinity: serde_json writes a non-finite `f64` as `null`, and the
//! plain `f64` fields here read `null` back as NaN, so a summary of a degenerate run
//! (zero duration, nothing completed) still round-trips.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize};

pub use crate::cpu_budget::ReplicaCpu;

/// Everything a run measured, as written to `summary.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// The run's name, e.g. `"local"`; also the results folder's prefix.
    pub name: String,
    /// When the run started, RFC 3339 in UTC, e.g. `"2026-11-25T10:42:50Z"`
    /// (see [`super::now_rfc3339`]).
    pub started_at: String,
    /// `git rev-parse --short HEAD` of the source tree, with `-dirty` when it has
    /// uncommitted changes (see [`super::git_revision`]).
    pub git_revision: Option<String>,
    /// The run's settings as the runner chose to record them. The plot titles and the
    /// table's parameters line read the keys `replicas`, `executor` and `workload`
    /// when present.
    pub parameters: serde_json::Value,
    /// Measured duration in seconds, after warm-up.
    #[serde(deserialize_with = "number_or_nan")]
    pub duration_secs: f64,
    /// Transactions per second, end-to-end and at consensus.
    pub throughput: Throughput,
    /// Client-side latency percentiles in milliseconds.
    pub latency_ms: LatencyStats,
    /// What the consensus protocol did.
    pub consensus: ConsensusStats,
    /// What the executor did.
    pub executor: ExecutorStats,
    /// One entry per replica, in id order.
    pub replicas: Vec<ReplicaSummary>,
    /// Whether the correct replicas' state digests agree.
    pub safety: SafetyVerdict,
    /// `tandem --version` of the binary that ran.
    #[serde(default)]
    pub tandem_version: String,
    /// The machine the run used.
    #[serde(default)]
    pub machine: Option<Machine>,
    /// The scenario that was run (for `tandem local`, the one its flags stand for):
    /// everything needed to run it again.
    #[serde(default)]
    pub scenario: Option<ScenarioRecord>,
    /// Every fault as it happened: when it started and ended, on which replicas.
    #[serde(default)]
    pub faults: Vec<FaultSpan>,
    /// The run cut at every fault's start and end: before, during, after.
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// Per fault, how long throughput took to come back.
    #[serde(default)]
    pub recoveries: Vec<Recovery>,
    /// Whether requests still completed after the last fault event.
    #[serde(default)]
    pub liveness: Option<LivenessObserved>,
    /// The scenario's expectations and whether each held.
    #[serde(default)]
    pub expectations: Vec<ExpectationOutcome>,
    /// The acknowledged-loss check: is every request a client accepted in the final
    /// state of every replica up and correct at the end? `None` if not run.
    #[serde(default)]
    pub acknowledged: Option<AcknowledgedCheck>,
}

impl RunSummary {
    /// Whether the run held what every run must: the replicas agreed, and nothing a
    /// client had acknowledged was lost (if the check ran). `tandem local`, its
    /// `--rates` sweep and `tandem compare` fail on a run where this is false.
    pub fn held(&self) -> bool {
        self.safety.agreed && self.acknowledged.as_ref().is_none_or(|a| a.kept())
    }
}

/// The end-of-run check that nothing acknowledged was lost: every request whose
/// result a client accepted (f+1 matching replies) must be in the exactly-once table
/// of every replica that is up and correct at the end, with its application caught up
/// to what it delivered (see `crate::acknowledged`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct AcknowledgedCheck {
    /// Requests acknowledged to clients over the whole run (warm-up included).
    pub acknowledged: u64,
    /// Acknowledged requests missing from at least one checked replica (each counted
    /// once). Must be 0.
    pub lost: u64,
    /// The replicas checked: running, not paused and never Byzantine at the end.
    pub checked: Vec<u32>,
    /// Checked replicas whose table could not be read (no answer in time).
    pub unanswered: Vec<u32>,
    /// Checked replicas whose application had not executed everything they delivered
    /// when the wait ended.
    pub not_executed: Vec<u32>,
    /// Each checked replica that lacks acknowledged requests: how many, the first few.
    pub replicas: Vec<crate::acknowledged::ReplicaLoss>,
    /// Seconds the check waited for replicas to catch up (at most its patience).
    #[serde(deserialize_with = "number_or_nan")]
    pub waited_s: f64,
}

impl AcknowledgedCheck {
    /// Whether every checked replica answered, had executed what it delivered and
    /// holds every acknowledged request.
    pub fn kept(&self) -> bool {
        self.lost == 0 && self.unanswered.is_empty() && self.not_executed.is_empty()
    }

    /// One line: acknowledged, lost, and who lacks what (first few).
    pub fn detail(&self) -> String {
        let list = |v: &[u32]| {
            v.iter()
                .map(|r| format!("r{r}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut out = format!(
            "{} acknowledged, {} lost, {} replicas checked ({})",
            self.acknowledged,
            self.lost,
            self.checked.len(),
            list(&self.checked)
        );
        for loss in &self.replicas {
            let first: Vec<String> = loss
                .first
                .iter()
                .map(|(c, n)| format!("c{c}#{n}"))
                .collect();
            out.push_str(&format!(
                "; r{} lacks {} (first: {})",
                loss.replica,
                loss.missing,
                first.join(" ")
            ));
        }
        if !self.unanswered.is_empty() {
            out.push_str(&format!("; no answer from {}", list(&self.unanswered)));
        }
        if !self.not_executed.is_empty() {
            out.push_str(&format!(
                "; still executing at the end: {}",
                list(&self.not_executed)
            ));
        }
        out
    }
}

/// The machine a run used.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// 1, 5 and 15 minute load averages when the run started (`/proc/loadavg`).
    pub load_average: [f64; 3],
}

/// The scenario a run executed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ScenarioRecord {
    /// The file, if it came from one.
    pub path: Option<String>,
    /// Its full text.
    pub text: String,
    /// SHA-256 of the text, hex.
    pub sha256: String,
    /// The seed.
    pub seed: u64,
}

/// One fault as it happened in the run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct FaultSpan {
    /// The fault's number in the scenario file (1-based).
    pub fault: usize,
    /// What happened, e.g. `crash r0`, `partition {r0} | {r1,r2,r3}`.
    pub label: String,
    /// When it started, seconds since the run started.
    #[serde(deserialize_with = "number_or_nan")]
    pub start_s: f64,
    /// When its effect ended (its end, or the restart, resume or heal that undid it);
    /// `None` if it lasted to the end of the run. Equal to `start_s` for an instant
    /// action (restart, resume, heal).
    pub end_s: Option<f64>,
    /// The replicas it hit.
    pub replicas: Vec<u32>,
}

/// Which part of the run a phase is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseKind {
    /// Before the first fault.
    Before,
    /// At least one fault is active.
    During,
    /// No fault active, after one ended (the last such phase is "after every fault").
    After,
}

/// A stretch of the measured run between two fault events.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Phase {
    /// Before, during or after.
    pub kind: PhaseKind,
    /// The faults active (during) or just ended (after).
    pub label: String,
    /// Seconds since the run started.
    #[serde(deserialize_with = "number_or_nan")]
    pub start_s: f64,
    /// Seconds since the run started.
    #[serde(deserialize_with = "number_or_nan")]
    pub end_s: f64,
    /// End-to-end transactions per second.
    #[serde(deserialize_with = "number_or_nan")]
    pub tps: f64,
    /// Median latency of requests completed in the phase, milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile, milliseconds.
    pub p99_ms: Option<f64>,
    /// View changes during the phase (highest view at its end minus at its start).
    pub views: u64,
}

/// How long throughput took to come back after a fault.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Recovery {
    /// The fault's number in the scenario file.
    pub fault: usize,
    /// Its label.
    pub label: String,
    /// The throughput before it (tx/s over up to 5 s before it started); 0 when
    /// nothing was measured before it (a fault during the warm-up or at the start).
    #[serde(deserialize_with = "number_or_nan")]
    pub before_tps: f64,
    /// The level recovery is measured against, tx/s: `before_tps`, or when that is 0
    /// the throughput of the last (up to 5) seconds of the load — the level the
    /// cluster settled at — so a fault with no baseline is not reported as recovered
    /// at once.
    #[serde(default, deserialize_with = "number_or_nan")]
    pub reference_tps: f64,
    /// `fault` when the cluster recovered while the fault lasted (measured from its
    /// start), `heal` when only after it ended (measured from its end).
    pub from: String,
    /// Seconds until throughput was back to 90% of `reference_tps`; `None` if it never
    /// was before the load ended.
    pub recovery_s: Option<f64>,
}

/// What the run showed about liveness after its last fault event.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LivenessObserved {
    /// The last fault start or end, seconds since the run started (0 without faults).
    #[serde(deserialize_with = "number_or_nan")]
    pub last_event_s: f64,
    /// Requests completed from one second after it to the end of the load.
    pub completed_after: u64,
    /// Requests completed in the last two seconds of the load.
    pub completed_at_end: u64,
}

/// One expectation and whether it held.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ExpectationOutcome {
    /// The `[expect]` field, e.g. `min_tps_after`.
    pub name: String,
    /// What was expected, e.g. `>= 5000 tx/s`.
    pub expected: String,
    /// What the run showed.
    pub observed: String,
    /// Whether it held.
    pub passed: bool,
}

/// Throughput over the measured duration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Throughput {
    /// Transactions whose f+1-th matching reply reached a client, per second.
    #[serde(deserialize_with = "number_or_nan")]
    pub end_to_end_tps: f64,
    /// Transactions committed by consensus, per second.
    #[serde(deserialize_with = "number_or_nan")]
    pub consensus_tps: f64,
    /// Transactions completed end-to-end (replies reached clients).
    pub completed_txs: u64,
    /// Transactions committed by consensus.
    pub committed_txs: u64,
    /// The load the clients tried to offer, when the load was rate-limited.
    pub offered_tps: Option<f64>,
    /// Transactions the clients submitted.
    #[serde(default)]
    pub submitted_txs: u64,
    /// Submitted transactions without a result when the clients stopped waiting.
    #[serde(default)]
    pub unfinished_txs: u64,
    /// Offered transactions not sent because too many were outstanding (open loop
    /// past saturation).
    #[serde(default)]
    pub shed_txs: u64,
    /// Busy refusals the clients received (a replica's queue was full; the request was
    /// sent again after a back-off): admission control, not failures.
    #[serde(default)]
    pub busy_refusals: u64,
}

/// Latency from a client's send to the f+1-th matching reply, in milliseconds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LatencyStats {
    /// Number of requests measured.
    pub count: u64,
    /// Mean latency.
    #[serde(deserialize_with = "number_or_nan")]
    pub mean: f64,
    /// Median.
    #[serde(deserialize_with = "number_or_nan")]
    pub p50: f64,
    /// 90th percentile.
    #[serde(deserialize_with = "number_or_nan")]
    pub p90: f64,
    /// 99th percentile.
    #[serde(deserialize_with = "number_or_nan")]
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(deserialize_with = "number_or_nan")]
    pub p999: f64,
    /// Largest latency seen.
    #[serde(deserialize_with = "number_or_nan")]
    pub max: f64,
}

impl LatencyStats {
    /// Reads the statistics off a latency histogram recorded in microseconds (the one
    /// passed to [`super::write_results`]), so `summary.json` and `latency.hgrm` agree.
    /// An empty histogram gives zero count and NaN figures (nothing was measured).
    pub fn from_histogram_micros(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self {
                count: 0,
                mean: f64::NAN,
                p50: f64::NAN,
                p90: f64::NAN,
                p99: f64::NAN,
                p999: f64::NAN,
                max: f64::NAN,
            };
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: histogram.len(),
            mean: histogram.mean() / 1000.0,
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }
}

/// Consensus activity over the measured duration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ConsensusStats {
    /// Batches committed.
    pub batches: u64,
    /// Mean transactions per committed batch.
    #[serde(deserialize_with = "number_or_nan")]
    pub mean_batch_size: f64,
    /// The most view changes any replica started (PBFT) or round time-outs it
    /// counted (HotStuff): `CommonCounters::view_changes`.
    pub view_changes: u64,
    /// State transfers performed by lagging replicas.
    pub state_transfers: u64,
    /// Client request retransmissions.
    pub retransmissions: u64,
}

/// Executor activity over the measured duration, summed over replicas.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ExecutorStats {
    /// Executor name, e.g. `"block-stm"`.
    pub name: String,
    /// Worker threads per replica.
    pub threads: usize,
    /// Speculative executions aborted (parallel executors).
    pub aborts: u64,
    /// Transactions executed again after an abort.
    pub reexecutions: u64,
    /// Transactions ordered but failed their checks (receipt, no state change).
    pub failed_txs: u64,
}

/// One replica's state at the end of the run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ReplicaSummary {
    /// Replica id (`r<id>`).
    pub id: u32,
    /// CPU used by the replica process, in percent of one core (may exceed 100).
    #[serde(deserialize_with = "number_or_nan")]
    pub cpu_percent: f64,
    /// The view the replica ended in.
    pub final_view: u64,
    /// Highest sequence number delivered in order.
    pub last_delivered: u64,
    /// Sequence number of the replica's stable checkpoint.
    pub stable_checkpoint: u64,
    /// State digest at that checkpoint, hex.
    pub checkpoint_digest: Option<String>,
    /// Any further counters the replica exports (messages dropped, signatures checked…).
    pub counters: BTreeMap<String, u64>,
    /// Its CPU budget (CPU set, cap, the CPUs it could count on, what enforced them)
    /// and its executor threads; `None` in summaries written before budgets existed.
    #[serde(default)]
    pub cpu: Option<ReplicaCpu>,
}

/// The safety check at the end of a run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SafetyVerdict {
    /// True when every compared replica reports the same digest at `checkpoint`.
    pub agreed: bool,
    /// The checkpoint compared.
    pub checkpoint: u64,
    /// The agreed digest (hex), if any.
    pub digest: Option<String>,
    /// A human explanation: which replicas were compared, who differs.
    pub detail: String,
}

/// One interval of the run (normally 1 s): a line of `timeline.csv`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TimelineRow {
    /// End of the interval, seconds since the run started; the interval starts at the
    /// previous row's `t_secs` (0 for the first row).
    #[serde(deserialize_with = "number_or_nan")]
    pub t_secs: f64,
    /// End-to-end transactions per second (replies reached clients) in this interval.
    #[serde(deserialize_with = "number_or_nan")]
    pub completed_tps: f64,
    /// Transactions per second committed by consensus in this interval (max over
    /// replicas).
    #[serde(deserialize_with = "number_or_nan")]
    pub committed_tps: f64,
    /// Median latency of requests completed in this interval; `None` if none completed.
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency of requests completed in this interval.
    pub p99_ms: Option<f64>,
    /// View of each replica (index = replica id) at the end of the interval.
    pub views: Vec<u64>,
    /// Fault events in this interval, e.g. `"kill r0"`, `"partition {r0} | {r1,r2,r3}"`.
    /// In `timeline.csv` they are joined with `;`, so an event's own `;` is written as
    /// `,` and line breaks as spaces.
    pub events: Vec<String>,
}

/// Reads a JSON number, or `null` (how serde_json writes NaN and infinities) as NaN.
fn number_or_nan<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_stats_read_the_histogram_in_milliseconds() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for micros in 1..=1000u64 {
            histogram.record(micros * 100).unwrap();
        }
        let stats = LatencyStats::from_histogram_micros(&histogram);
        assert_eq!(stats.count, 1000);
        assert!((stats.p50 - 50.0).abs() < 0.1, "{stats:?}");
        assert!((stats.p99 - 99.0).abs() < 0.1, "{stats:?}");
        assert!((stats.max - 100.0).abs() < 0.1, "{stats:?}");
        assert!((stats.mean - 50.05).abs() < 0.1, "{stats:?}");

        let empty = LatencyStats::from_histogram_micros(&Histogram::<u64>::new(3).unwrap());
        assert_eq!(empty.count, 0);
        assert!(empty.p50.is_nan());
    }

    #[test]
    fn non_finite_numbers_survive_json_as_nan() {
        let row = TimelineRow {
            t_secs: 1.0,
            completed_tps: f64::NAN,
            committed_tps: f64::INFINITY,
            ..TimelineRow::default()
        };
        let json = serde_json::to_string(&row).unwrap();
        let back: TimelineRow = serde_json::from_str(&json).unwrap();
        assert!(back.completed_tps.is_nan() && back.committed_tps.is_nan());
    }
}
