//! The replica's metrics stream: a [`MetricsWriter`] that appends one
//! [`MetricsLine`] (the format in `tandem-experiments`) per interval, and the process's
//! CPU time that goes into each line.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use tandem_experiments::metrics::MetricsLine;

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
    use tandem_experiments::metrics::read_metrics;

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
