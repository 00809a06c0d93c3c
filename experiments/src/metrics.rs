//! The metrics line a replica writes once per interval (and once at shutdown): its
//! view, progress, counters, CPU time and recent stable checkpoints, one JSON object per
//! line. The node writes these files; the runner reads them to build the timeline and
//! to check that replicas agree on the state digest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tandem_consensus::CommonCounters;

/// One metrics sample of a replica.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MetricsLine {
    /// Wall-clock time of the sample, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// The replica.
    pub replica: u32,
    /// Current view.
    pub view: u64,
    /// Whether the view is running (not in a view change).
    pub view_active: bool,
    /// Latest stable checkpoint.
    pub stable: u64,
    /// Last sequence number delivered.
    pub last_delivered: u64,
    /// Last sequence number executed.
    pub last_executed: u64,
    /// Requests delivered by consensus (after exactly-once filtering), in total.
    pub requests_committed: u64,
    /// The counters every protocol keeps, under the same names whatever the protocol.
    #[serde(default)]
    pub common: CommonCounters,
    /// Process CPU time (user + system), milliseconds, in total.
    pub cpu_ms: u64,
    /// Executor totals.
    pub execution: ExecutionLine,
    /// The protocol's own counters.
    pub protocol: BTreeMap<String, u64>,
    /// Transport and decoding counters.
    pub network: BTreeMap<String, u64>,
    /// The write-ahead log's counters with `durability = "wal"` (empty without a
    /// log): `wal_records` written, `wal_synced` records made durable, `wal_compactions`
    /// done, `wal_held` messages waiting for their records right now.
    #[serde(default)]
    pub storage: BTreeMap<String, u64>,
    /// Recent stable checkpoints, oldest first: (sequence number, digest hex).
    pub checkpoints: Vec<(u64, String)>,
    /// Set on the line written at shutdown.
    pub last: bool,
}

/// Executor totals in a metrics line.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExecutionLine {
    /// Executor name.
    pub executor: String,
    /// Transactions executed.
    pub transactions: u64,
    /// Transactions aborted by their own checks.
    pub failed: u64,
    /// Payloads that did not decode.
    pub malformed: u64,
    /// Block-STM validation aborts.
    pub aborts: u64,
    /// Re-executions.
    pub reexecutions: u64,
    /// Microseconds spent executing.
    pub busy_micros: u64,
    /// What `auto` picked last.
    pub last_pick: Option<String>,
}

/// Reads every complete line of a metrics file (a line cut short by a crash is
/// skipped).
pub fn read_metrics(path: &Path) -> Result<Vec<MetricsLine>> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut lines = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if let Ok(parsed) = serde_json::from_str::<MetricsLine>(&line) {
            lines.push(parsed);
        }
    }
    Ok(lines)
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let line = MetricsLine {
            replica: 2,
            view: 3,
            checkpoints: vec![(128, "ab".into())],
            ..MetricsLine::default()
        };
        let json = serde_json::to_string(&line).unwrap();
        std::fs::write(&path, format!("{json}\n{json}\n{{\"unix_ms\": 1, \"repl")).unwrap();
        let back = read_metrics(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].view, 3);
        assert_eq!(back[0].checkpoints, vec![(128, "ab".to_string())]);
        assert!(read_metrics(&dir.path().join("missing.jsonl")).is_err());
    }
}
