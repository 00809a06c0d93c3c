//! What `tandem run` prints after the summary table: the per-phase table (before,
//! during, after each fault: tx/s, p50, p99, views), each fault's recovery time, and
//! the expectations with their verdicts.

use std::fmt::Write;

use crate::report::RunSummary;

/// The phase table, the recoveries and the expectations of a scenario run.
pub fn render(summary: &RunSummary) -> String {
    let mut out = String::new();
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    if !summary.phases.is_empty() {
        let _ = writeln!(
            out,
            "{:<7} {:>13} {:>9} {:>9} {:>9} {:>6}  faults",
            "phase", "seconds", "tx/s", "p50 ms", "p99 ms", "views"
        );
        for p in &summary.phases {
            let kind = serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<7} {:>13} {:>9.0} {:>9} {:>9} {:>6}  {}",
                kind,
                format!("{:.0}–{:.0}", p.start_s, p.end_s),
                p.tps,
                ms(p.p50_ms),
                ms(p.p99_ms),
                p.views,
                p.label
            );
        }
    }
    if !summary.recoveries.is_empty() {
        let _ = writeln!(
            out,
            "\nrecovery (to 90% of the throughput before the fault, or of the final level when nothing was measured before it):"
        );
        for r in &summary.recoveries {
            let time = match r.recovery_s {
                Some(s) => format!("{s:.1} s from its {}", r.from),
                None => "never".to_string(),
            };
            let level = if r.before_tps > 0.0 {
                format!("before {:>8.0} tx/s", r.before_tps)
            } else {
                format!("no baseline; final {:>8.0} tx/s", r.reference_tps)
            };
            let _ = writeln!(
                out,
                "  #{:<2} {:<40} {level}  recovered {time}",
                r.fault, r.label
            );
        }
    }
    if let Some(l) = &summary.liveness {
        let _ = writeln!(
            out,
            "\nafter the last fault event ({:.1} s): {} requests completed, {} in the last 2 s",
            l.last_event_s, l.completed_after, l.completed_at_end
        );
    }
    if !summary.expectations.is_empty() {
        let _ = writeln!(out, "\nexpectations:");
        for e in &summary.expectations {
            let _ = writeln!(
                out,
                "  {} {}: expected {}, got {}",
                if e.passed { "ok  " } else { "FAIL" },
                e.name,
                e.expected,
                e.observed
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ExpectationOutcome, Phase, PhaseKind, Recovery};

    #[test]
    fn phases_recoveries_and_failed_expectations_are_shown() {
        let mut s = crate::report::sample_run::sample_summary();
        s.phases = vec![Phase {
            kind: PhaseKind::During,
            label: "crash r0".into(),
            start_s: 5.0,
            end_s: 9.0,
            tps: 1234.0,
            p50_ms: Some(3.0),
            p99_ms: None,
            views: 1,
        }];
        s.recoveries = vec![Recovery {
            fault: 1,
            label: "crash r0".into(),
            before_tps: 5000.0,
            reference_tps: 5000.0,
            from: "fault".into(),
            recovery_s: Some(2.5),
        }];
        s.expectations = vec![ExpectationOutcome {
            name: "min_tps".into(),
            expected: ">= 9 tx/s".into(),
            observed: "1 tx/s".into(),
            passed: false,
        }];
        let text = render(&s);
        assert!(text.contains("during") && text.contains("1234"), "{text}");
        assert!(text.contains("2.5 s from its fault"), "{text}");
        assert!(
            text.contains("FAIL min_tps: expected >= 9 tx/s, got 1 tx/s"),
            "{text}"
        );
    }
}
