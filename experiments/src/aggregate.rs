//! Turns what a local run recorded — the load clients' stats and each replica's
//! metrics lines — into the run summary and the per-second timeline, including the
//! safety verdict: do all replicas report the same digest at a common stable
//! checkpoint?

use std::collections::BTreeMap;
use std::time::Duration;

use crate::load::stats::LoadStats;
use crate::metrics::MetricsLine;
use crate::report::{
    ConsensusStats, ExecutorStats, LatencyStats, ReplicaSummary, RunSummary, SafetyVerdict,
    Throughput, TimelineRow,
};

/// One replica's metrics over the run (all incarnations, in time order).
#[derive(Clone, Debug, Default)]
pub struct ReplicaTrace {
    /// Its metrics lines.
    pub lines: Vec<MetricsLine>,
    /// Whether it was running when the run ended.
    pub alive_at_end: bool,
    /// Whether it was Byzantine at some point (left out of the safety verdict: only
    /// correct replicas must agree).
    pub byzantine: bool,
}

impl ReplicaTrace {
    /// The latest line at or before `unix_ms`.
    fn at(&self, unix_ms: u64) -> Option<&MetricsLine> {
        self.lines.iter().rev().find(|l| l.unix_ms <= unix_ms)
    }

    fn last(&self) -> Option<&MetricsLine> {
        self.lines.last()
    }

    /// Requests committed in `(from, to]`, across restarts (a new incarnation counts
    /// from zero again).
    fn committed_between(&self, from_ms: u64, to_ms: u64) -> u64 {
        let mut total = 0;
        let mut prev: Option<u64> = None;
        for l in self.lines.iter().filter(|l| l.unix_ms <= to_ms) {
            if let Some(p) = prev
                && l.unix_ms > from_ms
            {
                total += l.requests_committed.saturating_sub(p);
            }
            prev = Some(l.requests_committed);
        }
        total
    }
}

/// Everything a local run recorded.
pub struct RunRecord {
    /// Run name.
    pub name: String,
    /// Parameters, as passed on the command line.
    pub parameters: serde_json::Value,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// Start time, Unix milliseconds.
    pub start_unix_ms: u64,
    /// How long clients submitted.
    pub duration: Duration,
    /// Left out of the summary statistics at the start.
    pub warmup: Duration,
    /// Offered rate, if open loop.
    pub offered_tps: Option<f64>,
    /// Merged client stats.
    pub load: LoadStats,
    /// Per replica.
    pub replicas: Vec<ReplicaTrace>,
    /// Fault events: (time since start, label).
    pub events: Vec<(Duration, String)>,
    /// Executor name and threads.
    pub executor: (String, usize),
}

/// Builds the per-second timeline.
pub fn timeline(run: &RunRecord) -> Vec<TimelineRow> {
    let last_ms = run
        .replicas
        .iter()
        .filter_map(|r| r.last().map(|l| l.unix_ms))
        .max()
        .unwrap_or(run.start_unix_ms)
        .max(run.start_unix_ms + run.duration.as_millis() as u64);
    let seconds = (last_ms - run.start_unix_ms)
        .div_ceil(1000)
        .max(run.load.buckets.len() as u64);
    (1..=seconds)
        .map(|k| {
            let from = run.start_unix_ms + (k - 1) * 1000;
            let to = run.start_unix_ms + k * 1000;
            let bucket = run.load.buckets.get(k as usize - 1);
            let pct = |q: f64| {
                bucket
                    .filter(|b| b.completed > 0)
                    .map(|b| b.latency.value_at_quantile(q) as f64 / 1000.0)
            };
            let committed = run
                .replicas
                .iter()
                .map(|r| r.committed_between(from, to))
                .max()
                .unwrap_or(0);
            let events = run
                .events
                .iter()
                .filter(|(at, _)| {
                    at.as_millis() as u64 >= (k - 1) * 1000 && (at.as_millis() as u64) < k * 1000
                })
                .map(|(_, label)| label.clone())
                .collect();
            TimelineRow {
                t_secs: k as f64,
                completed_tps: bucket.map_or(0.0, |b| b.completed as f64),
                committed_tps: committed as f64,
                p50_ms: pct(0.5),
                p99_ms: pct(0.99),
                views: run
                    .replicas
                    .iter()
                    .map(|r| r.at(to).map_or(0, |l| l.view))
                    .collect(),
                events,
            }
        })
        .collect()
}

/// Builds the run summary.
pub fn summary(run: &RunRecord) -> RunSummary {
    let warm_s = run.warmup.as_secs() as usize;
    let end_s = (run.duration.as_secs() as usize).max(warm_s + 1);
    let measured = (end_s - warm_s) as f64;
    let warm_ms = run.start_unix_ms + warm_s as u64 * 1000;
    let end_ms = run.start_unix_ms + end_s as u64 * 1000;
    let finals: Vec<Option<&MetricsLine>> = run.replicas.iter().map(ReplicaTrace::last).collect();
    let counter = |l: &MetricsLine, k: &str| l.protocol.get(k).copied().unwrap_or(0);
    let sum_of = |k: &str| finals.iter().flatten().map(|l| counter(l, k)).sum::<u64>();

    let committed_txs = finals
        .iter()
        .flatten()
        .map(|l| l.requests_committed)
        .max()
        .unwrap_or(0);
    let consensus_window = run
        .replicas
        .iter()
        .map(|r| r.committed_between(warm_ms, end_ms))
        .max()
        .unwrap_or(0);
    let batches = finals
        .iter()
        .flatten()
        .map(|l| l.common.batches_delivered)
        .max()
        .unwrap_or(0);
    let live = finals.iter().flatten().count().max(1) as u64;
    let exec_sum =
        |f: fn(&MetricsLine) -> u64| finals.iter().flatten().map(|l| f(l)).sum::<u64>() / live;

    RunSummary {
        name: run.name.clone(),
        started_at: run.started_at.clone(),
        git_revision: crate::report::git_revision(),
        parameters: run.parameters.clone(),
        duration_secs: measured,
        throughput: Throughput {
            end_to_end_tps: run.load.completed_between(warm_s, end_s) as f64 / measured,
            consensus_tps: consensus_window as f64 / measured,
            completed_txs: run.load.completed,
            committed_txs,
            offered_tps: run.offered_tps,
            submitted_txs: run.load.submitted,
            unfinished_txs: run.load.unfinished,
            shed_txs: run.load.shed,
            busy_refusals: run.load.busy_refusals,
        },
        latency_ms: LatencyStats::from_histogram_micros(&run.load.latency),
        consensus: ConsensusStats {
            batches,
            mean_batch_size: if batches == 0 {
                0.0
            } else {
                committed_txs as f64 / batches as f64
            },
            // The most any replica counted (PBFT: view changes it started; HotStuff:
            // round time-outs). The highest view would count every HotStuff round.
            view_changes: finals
                .iter()
                .flatten()
                .map(|l| l.common.view_changes)
                .max()
                .unwrap_or(0),
            state_transfers: finals
                .iter()
                .flatten()
                .map(|l| l.common.state_transfers)
                .sum(),
            retransmissions: sum_of("retransmissions"),
        },
        executor: ExecutorStats {
            name: run.executor.0.clone(),
            threads: run.executor.1,
            aborts: exec_sum(|l| l.execution.aborts),
            reexecutions: exec_sum(|l| l.execution.reexecutions),
            failed_txs: finals
                .iter()
                .flatten()
                .map(|l| l.execution.failed)
                .max()
                .unwrap_or(0),
        },
        replicas: run
            .replicas
            .iter()
            .enumerate()
            .map(|(i, r)| replica_summary(i, r, warm_ms, end_ms))
            .collect(),
        safety: verdict(&run.replicas),
        tandem_version: env!("CARGO_PKG_VERSION").to_string(),
        machine: None,
        scenario: None,
        faults: Vec::new(),
        phases: Vec::new(),
        recoveries: Vec::new(),
        liveness: None,
        expectations: Vec::new(),
        acknowledged: None,
    }
}

fn replica_summary(id: usize, r: &ReplicaTrace, warm_ms: u64, end_ms: u64) -> ReplicaSummary {
    let last = r.last();
    let cpu = match (r.at(warm_ms), r.at(end_ms)) {
        (Some(a), Some(b)) if b.unix_ms > a.unix_ms && b.cpu_ms >= a.cpu_ms => {
            (b.cpu_ms - a.cpu_ms) as f64 * 100.0 / (b.unix_ms - a.unix_ms) as f64
        }
        _ => 0.0,
    };
    let mut counters: BTreeMap<String, u64> = BTreeMap::new();
    if let Some(l) = last {
        counters.extend(l.protocol.iter().map(|(k, v)| (k.clone(), *v)));
        counters.extend(l.network.iter().map(|(k, v)| (format!("net_{k}"), *v)));
        counters.extend(l.storage.iter().map(|(k, v)| (k.clone(), *v)));
    }
    ReplicaSummary {
        id: id as u32,
        cpu_percent: cpu,
        final_view: last.map_or(0, |l| l.view),
        last_delivered: last.map_or(0, |l| l.last_delivered),
        stable_checkpoint: last.map_or(0, |l| l.stable),
        checkpoint_digest: last.and_then(|l| l.checkpoints.last().map(|(_, d)| d.clone())),
        counters,
        cpu: None,
    }
}

/// Compares the correct (never Byzantine) replicas' digests at every stable checkpoint
/// two of them report, and reports the highest checkpoint every correct replica still
/// running at the end reached (replicas killed earlier are compared too).
pub fn verdict(replicas: &[ReplicaTrace]) -> SafetyVerdict {
    let histories: Vec<BTreeMap<u64, String>> = replicas
        .iter()
        .map(|r| {
            r.lines
                .iter()
                .flat_map(|l| l.checkpoints.iter().cloned())
                .collect()
        })
        .collect();
    let alive: Vec<usize> = (0..replicas.len())
        .filter(|i| replicas[*i].alive_at_end && !replicas[*i].byzantine)
        .collect();
    let seqs: std::collections::BTreeSet<u64> =
        histories.iter().flat_map(|h| h.keys().copied()).collect();
    // Every checkpoint two correct replicas both report must have one digest.
    for seq in &seqs {
        let mut digests = histories
            .iter()
            .enumerate()
            .filter(|(i, _)| !replicas[*i].byzantine)
            .filter_map(|(i, h)| h.get(seq).map(|d| (i, d)));
        if let Some((first, digest)) = digests.next()
            && let Some((other, different)) = digests.find(|(_, d)| *d != digest)
        {
            return SafetyVerdict {
                agreed: false,
                checkpoint: *seq,
                digest: Some(digest.clone()),
                detail: format!(
                    "digests differ at checkpoint {seq}: r{first} has {}, r{other} has {}",
                    &digest[..16.min(digest.len())],
                    &different[..16.min(different.len())]
                ),
            };
        }
    }
    let common = seqs
        .into_iter()
        .rev()
        .find(|seq| alive.iter().all(|i| histories[*i].contains_key(seq)));
    let Some(seq) = common.filter(|_| alive.len() >= 2) else {
        return SafetyVerdict {
            agreed: false,
            checkpoint: 0,
            digest: None,
            detail: "no stable checkpoint common to the running replicas (run too short?)".into(),
        };
    };
    let reports: Vec<(usize, &String)> = histories
        .iter()
        .enumerate()
        .filter(|(i, _)| !replicas[*i].byzantine)
        .filter_map(|(i, h)| h.get(&seq).map(|d| (i, d)))
        .collect();
    let first = reports[0].1;
    let disagree: Vec<String> = reports
        .iter()
        .filter(|(_, d)| *d != first)
        .map(|(i, d)| format!("r{i} has {}", &d[..16.min(d.len())]))
        .collect();
    let compared: Vec<String> = reports.iter().map(|(i, _)| format!("r{i}")).collect();
    if disagree.is_empty() {
        SafetyVerdict {
            agreed: true,
            checkpoint: seq,
            digest: Some(first.clone()),
            detail: format!("{} agree at checkpoint {seq}", compared.join(", ")),
        }
    } else {
        SafetyVerdict {
            agreed: false,
            checkpoint: seq,
            digest: Some(first.clone()),
            detail: format!(
                "digests differ at checkpoint {seq}: r{} has {}, {}",
                reports[0].0,
                &first[..16.min(first.len())],
                disagree.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ms: u64, committed: u64, checkpoints: &[(u64, &str)]) -> MetricsLine {
        MetricsLine {
            unix_ms: ms,
            requests_committed: committed,
            checkpoints: checkpoints
                .iter()
                .map(|(s, d)| (*s, d.to_string()))
                .collect(),
            ..MetricsLine::default()
        }
    }

    #[test]
    fn verdict_compares_the_highest_common_checkpoint() {
        let a = ReplicaTrace {
            lines: vec![line(1, 0, &[(128, "aa"), (256, "bb")])],
            alive_at_end: true,
            byzantine: false,
        };
        let b = ReplicaTrace {
            lines: vec![line(1, 0, &[(128, "aa")])],
            alive_at_end: true,
            byzantine: false,
        };
        let v = verdict(&[a.clone(), b.clone()]);
        assert!(v.agreed);
        assert_eq!(v.checkpoint, 128);
        let c = ReplicaTrace {
            lines: vec![line(1, 0, &[(128, "cc")])],
            alive_at_end: true,
            byzantine: false,
        };
        let v = verdict(&[a.clone(), b.clone(), c]);
        assert!(!v.agreed);
        assert!(v.detail.contains("differ"));
        let older = ReplicaTrace {
            lines: vec![line(1, 0, &[(64, "x1"), (128, "aa")])],
            alive_at_end: false,
            byzantine: false,
        };
        let mut liar = older.clone();
        liar.lines = vec![line(1, 0, &[(64, "x2"), (128, "zz")])];
        let v = verdict(&[a.clone(), b.clone(), older.clone(), liar.clone()]);
        assert!(
            !v.agreed,
            "a crashed replica's older checkpoint is compared too"
        );
        assert_eq!(v.checkpoint, 64);
        liar.byzantine = true;
        assert!(verdict(&[a.clone(), b.clone(), older, liar]).agreed);
        let none = verdict(&[ReplicaTrace::default(), ReplicaTrace::default()]);
        assert!(!none.agreed);
    }

    #[test]
    fn committed_counts_across_restarts() {
        let r = ReplicaTrace {
            lines: vec![
                line(1000, 10, &[]),
                line(2000, 30, &[]),
                line(2500, 0, &[]),
                line(3000, 5, &[]),
            ],
            alive_at_end: true,
            byzantine: false,
        };
        assert_eq!(r.committed_between(1000, 3000), 25);
        assert_eq!(r.committed_between(0, 2000), 20);
    }
}
