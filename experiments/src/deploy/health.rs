//! `tandem health`: the container health check of a replica, from its metrics file
//! alone (a `FROM scratch` image has no shell or curl). A replica is healthy when the
//! last complete line of its metrics file was written less than a bound ago and is not
//! the line written at shutdown. Only the file's last 64 KiB are read, so the check
//! costs the same however long the replica has run.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::metrics::{MetricsLine, unix_ms};

/// The most of a metrics file's end that is read.
const TAIL_BYTES: u64 = 64 << 10;

/// The last complete metrics line of `path`, if any (a torn last line is skipped).
pub fn last_metrics_line(path: &Path) -> Result<Option<MetricsLine>> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&tail);
    Ok(text
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<MetricsLine>(line).ok()))
}

/// Ok with a one-line description when the replica behind `path` is healthy at
/// `now_ms` (Unix milliseconds): its last line is at most `max_age` old and not the
/// shutdown line. The error says why not.
pub fn check_health(path: &Path, max_age: Duration, now_ms: u64) -> Result<String> {
    let Some(line) = last_metrics_line(path)? else {
        bail!("{} holds no metrics line yet", path.display());
    };
    if line.last {
        bail!("replica {} has shut down", line.replica);
    }
    let age = now_ms.saturating_sub(line.unix_ms);
    if age > max_age.as_millis() as u64 {
        bail!(
            "replica {}: last metrics line is {age} ms old (bound {} ms)",
            line.replica,
            max_age.as_millis()
        );
    }
    Ok(format!(
        "replica {} healthy: view {}{}, delivered {}, stable {}, line {age} ms old",
        line.replica,
        line.view,
        if line.view_active { "" } else { " (changing)" },
        line.last_delivered,
        line.stable
    ))
}

/// [`check_health`] at the current time.
pub fn check_health_now(path: &Path, max_age: Duration) -> Result<String> {
    check_health(path, max_age, unix_ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(unix_ms: u64, last: bool) -> String {
        serde_json::to_string(&MetricsLine {
            unix_ms,
            replica: 2,
            view: 1,
            view_active: true,
            last_delivered: 40,
            last,
            ..MetricsLine::default()
        })
        .unwrap()
    }

    #[test]
    fn fresh_lines_are_healthy_and_stale_missing_or_final_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let bound = Duration::from_millis(5000);
        assert!(check_health(&path, bound, 0).is_err(), "no file");
        std::fs::write(&path, "").unwrap();
        assert!(check_health(&path, bound, 0).is_err(), "empty file");
        std::fs::write(
            &path,
            format!("{}\n{}\n{{\"torn", line(1000, false), line(9000, false)),
        )
        .unwrap();
        let ok = check_health(&path, bound, 10_000).unwrap();
        assert!(
            ok.contains("replica 2") && ok.contains("delivered 40"),
            "{ok}"
        );
        let err = check_health(&path, bound, 20_000).unwrap_err().to_string();
        assert!(err.contains("11000 ms old"), "{err}");
        std::fs::write(
            &path,
            format!("{}\n{}\n", line(9000, false), line(9500, true)),
        )
        .unwrap();
        let err = check_health(&path, bound, 10_000).unwrap_err().to_string();
        assert!(err.contains("shut down"), "{err}");
    }

    #[test]
    fn only_the_tail_of_a_long_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let mut text = String::new();
        while (text.len() as u64) < 3 * TAIL_BYTES {
            text.push_str(&line(1, false));
            text.push('\n');
        }
        text.push_str(&line(7777, false));
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        assert_eq!(last_metrics_line(&path).unwrap().unwrap().unix_ms, 7777);
    }
}
