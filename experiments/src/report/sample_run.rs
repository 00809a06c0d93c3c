//! A synthetic run for the tests: a 4-replica block-stm/dex summary, a 20 s timeline
//! with a crash and a partition, and a latency histogram in microseconds.

use hdrhistogram::Histogram;

use super::model::{
    ConsensusStats, ExecutorStats, LatencyStats, ReplicaCpu, ReplicaSummary, RunSummary,
    SafetyVerdict, Throughput, TimelineRow,
};

/// The summary of a healthy run with one view change.
pub(crate) fn sample_summary() -> RunSummary {
    RunSummary {
        name: "local".into(),
        started_at: "2026-11-25T10:42:50Z".into(),
        git_revision: Some("3f2a9c1".into()),
        parameters: serde_json::json!({
            "replicas": 4, "executor": "block-stm", "threads": 1,
            "cpu_budget": "sets 0;1;0;1", "workload": "dex", "rate": 20000,
            "clients": 4, "batch_size": 400, "duration_secs": 20, "warmup_secs": 2
        }),
        duration_secs: 20.0,
        throughput: Throughput {
            end_to_end_tps: 12345.4,
            consensus_tps: 12401.0,
            completed_txs: 246_908,
            committed_txs: 248_020,
            offered_tps: Some(20000.0),
            submitted_txs: 246_908,
            unfinished_txs: 0,
            shed_txs: 0,
            busy_refusals: 0,
        },
        latency_ms: LatencyStats {
            count: 246_908,
            mean: 5.021,
            p50: 4.212,
            p90: 7.8,
            p99: 15.31,
            p999: 40.12,
            max: 212.4,
        },
        consensus: ConsensusStats {
            batches: 1240,
            mean_batch_size: 200.016,
            view_changes: 1,
            state_transfers: 0,
            retransmissions: 12,
        },
        executor: ExecutorStats {
            name: "block-stm".into(),
            threads: 2,
            aborts: 1234,
            reexecutions: 2345,
            failed_txs: 56,
        },
        replicas: (0..4)
            .map(|id| ReplicaSummary {
                id,
                cpu_percent: 87.5 - f64::from(id),
                final_view: 1,
                last_delivered: 1240,
                stable_checkpoint: 1200,
                checkpoint_digest: Some("3f2a9c1e77d04b1a9e2f".into()),
                counters: Default::default(),
                cpu: Some(ReplicaCpu {
                    cpu_set: Some((id % 2).to_string()),
                    cpus_limit: None,
                    cpus: Some(0.5),
                    executor_threads: 1,
                    enforced_by: "sched_setaffinity".into(),
                }),
            })
            .collect(),
        safety: SafetyVerdict {
            agreed: true,
            checkpoint: 1200,
            digest: Some("3f2a9c1e77d04b1a9e2f".into()),
            detail: "4 of 4 replicas compared".into(),
        },
        tandem_version: "0.1.0".into(),
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

/// One row per second; r0 killed in the 8th, a partition in the 12th.
pub(crate) fn sample_timeline() -> Vec<TimelineRow> {
    (1..=20)
        .map(|t| TimelineRow {
            t_secs: f64::from(t),
            completed_tps: if t == 9 { 0.0 } else { 12000.0 + f64::from(t) },
            committed_tps: 12100.0,
            p50_ms: (t != 9).then_some(4.2),
            p99_ms: (t != 9).then_some(if t == 10 { 900.0 } else { 15.0 }),
            views: vec![u64::from(t >= 10); 4],
            events: match t {
                8 => vec!["kill r0".into()],
                12 => vec!["partition {r0} | {r1,r2,r3}".into()],
                _ => vec![],
            },
        })
        .collect()
}

/// 5000 latencies between 2 and 11 ms, and one of 900 ms.
pub(crate) fn sample_histogram() -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for i in 0..5000u64 {
        histogram.record(2000 + i * 7 % 9000).unwrap();
    }
    histogram.record(900_000).unwrap();
    histogram
}
