//! The plain-text summary `tandem local` prints at the end of a run: one labelled line
//! per figure, aligned, readable at a glance, no colour (it is often piped or logged).

use std::fmt::Write as _;

use super::model::{ReplicaSummary, RunSummary, SafetyVerdict};

/// Width of the label column.
const LABEL_WIDTH: usize = 15;
/// Parameters wrap onto further lines beyond this many characters.
const WRAP_WIDTH: usize = 92;
/// Hex digits of a digest shown before the ellipsis.
const DIGEST_DIGITS: usize = 12;
/// Parameters shown first, in this order; the rest follow in key order.
const KEY_PARAMETERS: [&str; 7] = [
    "replicas",
    "protocol",
    "executor",
    "threads",
    "cpu_budget",
    "workload",
    "rate",
];

/// The run's summary as an aligned text block, ending with a newline.
pub fn render_table(summary: &RunSummary) -> String {
    let mut lines: Vec<(&str, String)> = Vec::new();

    for (i, chunk) in wrap_words(
        &parameter_words(&summary.parameters),
        WRAP_WIDTH - LABEL_WIDTH,
    )
    .into_iter()
    .enumerate()
    {
        lines.push((if i == 0 { "parameters" } else { "" }, chunk));
    }
    lines.push((
        "duration",
        format!("{} s measured", fixed(summary.duration_secs, 1)),
    ));

    let t = &summary.throughput;
    let mut offered = t
        .offered_tps
        .map(|o| format!("   (offered {} tx/s)", rate(o)))
        .unwrap_or_default();
    if t.unfinished_txs > 0 {
        offered.push_str(&format!("   {} unfinished", grouped(t.unfinished_txs)));
    }
    if t.shed_txs > 0 {
        offered.push_str(&format!("   {} shed", grouped(t.shed_txs)));
    }
    if t.busy_refusals > 0 {
        offered.push_str(&format!("   {} busy", grouped(t.busy_refusals)));
    }
    lines.push((
        "end-to-end",
        format!(
            "{} tx/s   {} txs{offered}",
            rate(t.end_to_end_tps),
            grouped(t.completed_txs)
        ),
    ));
    lines.push((
        "consensus",
        format!(
            "{} tx/s   {} txs",
            rate(t.consensus_tps),
            grouped(t.committed_txs)
        ),
    ));

    let l = &summary.latency_ms;
    lines.push((
        "latency (ms)",
        format!(
            "p50 {}   p90 {}   p99 {}   p99.9 {}   max {}",
            millis(l.p50),
            millis(l.p90),
            millis(l.p99),
            millis(l.p999),
            millis(l.max)
        ),
    ));
    lines.push((
        "",
        format!("mean {} over {} requests", millis(l.mean), grouped(l.count)),
    ));

    let c = &summary.consensus;
    lines.push((
        "batches",
        format!(
            "{}   mean size {}",
            grouped(c.batches),
            fixed(c.mean_batch_size, 1)
        ),
    ));
    lines.push((
        "view changes",
        format!(
            "{}   state transfers {}   retransmissions {}",
            grouped(c.view_changes),
            grouped(c.state_transfers),
            grouped(c.retransmissions)
        ),
    ));

    let e = &summary.executor;
    let name = if e.name.is_empty() {
        "?"
    } else {
        e.name.as_str()
    };
    lines.push((
        "executor",
        format!(
            "{name} ({} threads)   aborts {}   re-executions {}   failed txs {}",
            e.threads,
            grouped(e.aborts),
            grouped(e.reexecutions),
            grouped(e.failed_txs)
        ),
    ));

    for (i, line) in replica_lines(&summary.replicas).into_iter().enumerate() {
        lines.push((if i == 0 { "replicas" } else { "" }, line));
    }

    let (verdict, detail) = safety_lines(&summary.safety);
    lines.push(("safety", verdict));
    if let Some(detail) = detail {
        lines.push(("", detail));
    }

    if let Some(a) = &summary.acknowledged {
        let verdict = if a.kept() { "ok" } else { "NOT KEPT" };
        lines.push((
            "acknowledged",
            format!(
                "{}   lost {}   {verdict} ({} of {} replicas checked)",
                grouped(a.acknowledged),
                grouped(a.lost),
                a.checked.len() - a.unanswered.len(),
                summary.replicas.len().max(a.checked.len())
            ),
        ));
        if !a.kept() {
            // One line per part: the counts, then each replica's shortfall.
            for part in a.detail().split("; ") {
                lines.push(("", part.to_string()));
            }
        }
    }

    let mut heading = format!("SUMMARY  {}", summary.name);
    if !summary.started_at.is_empty() {
        let _ = write!(heading, "  {}", summary.started_at);
    }
    if let Some(revision) = &summary.git_revision {
        let _ = write!(heading, "  rev {revision}");
    }

    let body: Vec<String> = lines
        .iter()
        .map(|(label, value)| {
            format!(" {label:<LABEL_WIDTH$} {value}")
                .trim_end()
                .to_string()
        })
        .collect();
    let width = body
        .iter()
        .map(|l| l.chars().count())
        .chain([heading.chars().count() + 1])
        .max()
        .unwrap_or(0);
    let rule = "-".repeat(width);

    let mut out = String::new();
    let _ = writeln!(out, "{rule}\n {heading}\n{rule}");
    for line in body {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{rule}");
    out
}

/// `key=value` for each parameter (strings unquoted, nested values as compact JSON),
/// the keys a reader looks for first (`KEY_PARAMETERS`) leading.
fn parameter_words(parameters: &serde_json::Value) -> Vec<String> {
    let word = |key: &str, value: &serde_json::Value| match value {
        serde_json::Value::String(s) => format!("{key}={s}"),
        other => format!("{key}={other}"),
    };
    match parameters {
        serde_json::Value::Object(map) if !map.is_empty() => {
            let leading = KEY_PARAMETERS
                .iter()
                .filter_map(|key| map.get(*key).map(|value| word(key, value)));
            let rest = map
                .iter()
                .filter(|(key, _)| !KEY_PARAMETERS.contains(&key.as_str()))
                .map(|(key, value)| word(key, value));
            leading.chain(rest).collect()
        }
        serde_json::Value::Object(_) | serde_json::Value::Null => vec!["(none)".to_string()],
        other => vec![other.to_string()],
    }
}

/// Words joined by two spaces, broken into lines of at most `width` characters (a
/// longer word gets a line of its own).
fn wrap_words(words: &[String], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in words {
        if !line.is_empty() && line.chars().count() + 2 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push_str("  ");
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// A header and one aligned line per replica.
fn replica_lines(replicas: &[ReplicaSummary]) -> Vec<String> {
    if replicas.is_empty() {
        return vec!["(none reported)".to_string()];
    }
    let mut lines = vec![format!(
        "{:<4} {:>7} {:>6} {:>10} {:>11}  {}",
        "id", "cpu %", "view", "delivered", "checkpoint", "digest"
    )];
    for r in replicas {
        lines.push(format!(
            "{:<4} {:>7} {:>6} {:>10} {:>11}  {}",
            format!("r{}", r.id),
            fixed(r.cpu_percent, 1),
            r.final_view,
            r.last_delivered,
            r.stable_checkpoint,
            r.checkpoint_digest
                .as_deref()
                .map_or("-".to_string(), short_digest)
        ));
    }
    lines
}

/// The verdict line and, if the runner gave one, its explanation.
fn safety_lines(safety: &SafetyVerdict) -> (String, Option<String>) {
    let verdict = match (safety.agreed, &safety.digest) {
        (true, Some(digest)) => format!(
            "OK: state digests agree at checkpoint {}: {}",
            safety.checkpoint,
            short_digest(digest)
        ),
        (true, None) => format!(
            "OK: no disagreement (no digest compared at checkpoint {})",
            safety.checkpoint
        ),
        (false, _) => format!(
            "VIOLATION: state digests differ at checkpoint {}",
            safety.checkpoint
        ),
    };
    let detail = safety.detail.trim();
    (
        verdict,
        (!detail.is_empty()).then(|| detail.replace('\n', " ")),
    )
}

/// The first hex digits of a digest, with an ellipsis if cut.
fn short_digest(digest: &str) -> String {
    let mut chars = digest.chars();
    let head: String = chars.by_ref().take(DIGEST_DIGITS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate: grouped whole numbers from 100 up, one decimal below; `n/a` if not finite.
pub(crate) fn rate(value: f64) -> String {
    if !value.is_finite() {
        "n/a".to_string()
    } else if value.abs() < 100.0 {
        format!("{value:.1}")
    } else {
        let sign = if value < 0.0 { "-" } else { "" };
        format!("{sign}{}", grouped(value.abs().round() as u64))
    }
}

/// Milliseconds with about three significant digits; `n/a` if not finite.
fn millis(value: f64) -> String {
    match value.abs() {
        v if !v.is_finite() => "n/a".to_string(),
        v if v < 10.0 => format!("{value:.2}"),
        v if v < 100.0 => format!("{value:.1}"),
        _ => rate(value),
    }
}

/// `value` with `places` decimals, or `n/a` if not finite.
fn fixed(value: f64, places: usize) -> String {
    if value.is_finite() {
        format!("{value:.places$}")
    } else {
        "n/a".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::LatencyStats;
    use crate::report::sample_run::sample_summary;

    #[test]
    fn shows_the_key_figures() {
        let table = render_table(&sample_summary());
        for expected in [
            "SUMMARY  local  2026-11-25T10:42:50Z  rev 3f2a9c1",
            "executor=block-stm  threads=1  cpu_budget=sets 0;1;0;1\n",
            "workload=dex",
            "12,345 tx/s   246,908 txs   (offered 20,000 tx/s)",
            "12,401 tx/s   248,020 txs",
            "p50 4.21   p90 7.80   p99 15.3   p99.9 40.1   max 212",
            "1,240   mean size 200.0",
            "view changes    1   state transfers 0",
            "aborts 1,234   re-executions 2,345",
            "r0      87.5      1       1240        1200  3f2a9c1e77d0…",
            "OK: state digests agree at checkpoint 1200: 3f2a9c1e77d0…",
        ] {
            assert!(table.contains(expected), "missing {expected:?} in\n{table}");
        }
        assert!(!table.contains('\x1b'), "no escape codes");
        // Values start in one column.
        let column = LABEL_WIDTH + 2;
        for line in table
            .lines()
            .filter(|l| l.starts_with(" end-to-end") || l.starts_with(" consensus"))
        {
            assert!(line[column..].starts_with("12,"), "{line}");
        }
    }

    #[test]
    fn degenerate_runs_render_without_panicking() {
        let mut summary = sample_summary();
        summary.duration_secs = 0.0;
        summary.throughput.end_to_end_tps = f64::NAN;
        summary.throughput.consensus_tps = f64::INFINITY;
        summary.latency_ms =
            LatencyStats::from_histogram_micros(&hdrhistogram::Histogram::new(3).unwrap());
        summary.replicas.clear();
        summary.parameters = serde_json::Value::Null;
        summary.safety = SafetyVerdict {
            agreed: false,
            checkpoint: 384,
            digest: None,
            detail: "r2 reports 9a0b… at 384".into(),
        };
        let table = render_table(&summary);
        assert!(table.contains("n/a tx/s"), "{table}");
        assert!(
            table.contains("VIOLATION: state digests differ at checkpoint 384"),
            "{table}"
        );
        assert!(table.contains("r2 reports 9a0b… at 384"), "{table}");
    }

    #[test]
    fn number_formats() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(rate(12.34), "12.3");
        assert_eq!(rate(-1500.0), "-1,500");
        assert_eq!(millis(0.123), "0.12");
        assert_eq!(millis(2500.0), "2,500");
        assert_eq!(short_digest("abcd"), "abcd");
    }
}
