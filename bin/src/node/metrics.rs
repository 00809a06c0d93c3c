//! The replica's metrics stream: one JSON line per interval (and a final one at
//! shutdown) with its view, progress, counters, CPU time and recent stable checkpoints.
//! `tandem local` reads these files to build the timeline and check that replicas
//! agree on the state digest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

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
    /// Process CPU time (user + system), milliseconds, in total.
    pub cpu_ms: u64,
    /// Executor totals.
    pub execution: ExecutionLine,
    /// Protocol counters.
    pub protocol: BTreeMap<String, u64>,
    /// Transport and decoding counters.
    pub network: BTreeMap<String, u64>,
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

/// Appends metrics lines to a file.
pub struct MetricsWriter {
    out: BufWriter<File>,
}

impl MetricsWriter {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<MetricsWriter> {
        let f = File::create(path)
            .with_context(|| format!("cannot create metrics file {}", path.display()))?;
        Ok(MetricsWriter {
            out: BufWriter::new(f),
        })
    }

    /// Writes one line and flushes it.
    pub fn write(&mut self, line: &MetricsLine) -> Result<()> {
        serde_json::to_writer(&mut self.out, line).context("cannot encode a metrics line")?;
        self.out.write_all(b"\n")?;
        self.out.flush().context("cannot write the metrics file")
    }
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

/// This process's CPU time (user + system) in milliseconds, from `/proc/self/stat`.
pub fn process_cpu_ms() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // Fields after the command name (which may contain spaces) start after ") ".
    let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_sec = if per_sec > 0 { per_sec as u64 } else { 100 };
    ticks * 1000 / per_sec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_roundtrip_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let mut w = MetricsWriter::create(&path).unwrap();
        let line = MetricsLine {
            replica: 2,
            view: 3,
            checkpoints: vec![(128, "ab".into())],
            ..MetricsLine::default()
        };
        w.write(&line).unwrap();
        w.write(&line).unwrap();
        drop(w);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"unix_ms\": 1, \"repl").unwrap();
        let back = read_metrics(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].checkpoints, vec![(128, "ab".to_string())]);
    }

    #[test]
    fn cpu_time_is_measured() {
        let start = process_cpu_ms();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process_cpu_ms() >= start);
    }
}
