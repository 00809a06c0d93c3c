//! What a scenario run showed around its faults, from the clients' per-second buckets
//! and the timeline: the run cut into phases at every fault start and end (before,
//! during, after — tx/s, p50, p99, views), each fault's recovery time, and liveness
//! after the last fault event. Times are whole seconds since the run started (the
//! buckets' resolution); the warm-up is left out.
//!
//! Recovery time of a fault: the throughput before it is the mean over up to 5 s
//! before it started (after the warm-up); from the second in which it started, the
//! first second whose throughput is back to 90% of that level ends the
//! recovery — measured from the fault's start if that happens while the fault lasts
//! (`from = "fault"`), otherwise from its end (`from = "heal"`). An instant action
//! (restart, resume, heal) is measured from the moment it ran. A fault with no
//! throughput before it (during the warm-up, or at the very start) is measured
//! against the level of the load's last 5 s instead, so it is never reported as
//! recovered at once.

use crate::load::stats::{Bucket, new_histogram};
use crate::report::{FaultSpan, LivenessObserved, Phase, PhaseKind, Recovery, TimelineRow};

/// Seconds of throughput before a fault that set its level.
const BEFORE_WINDOW_S: usize = 5;
/// Throughput back to this share of the level before counts as recovered.
const RECOVERED_SHARE: f64 = 0.9;

/// The measured stretch of the run: `[warmup, end)` seconds, and the buckets.
pub struct Measured<'a> {
    /// Per-second client buckets since the start.
    pub buckets: &'a [Bucket],
    /// Timeline rows (views per replica).
    pub timeline: &'a [TimelineRow],
    /// First measured second.
    pub warmup: usize,
    /// End of the load, seconds.
    pub end: usize,
}

impl Measured<'_> {
    fn completed(&self, from: usize, to: usize) -> u64 {
        (from..to.min(self.buckets.len()))
            .map(|k| self.buckets[k].completed)
            .sum()
    }

    fn tps(&self, from: usize, to: usize) -> f64 {
        if to <= from {
            return 0.0;
        }
        self.completed(from, to) as f64 / (to - from) as f64
    }

    fn highest_view(&self, second: usize) -> u64 {
        // Row k (t_secs = k) ends at second k.
        self.timeline
            .iter()
            .take_while(|r| r.t_secs <= second as f64)
            .last()
            .and_then(|r| r.views.iter().copied().max())
            .unwrap_or(0)
    }

    /// The phases between fault events.
    pub fn phases(&self, spans: &[FaultSpan]) -> Vec<Phase> {
        let mut cuts: Vec<usize> = vec![self.warmup, self.end];
        for s in spans {
            cuts.push(s.start_s.round() as usize);
            if let Some(e) = s.end_s {
                cuts.push(e.round() as usize);
            }
        }
        cuts.retain(|c| *c >= self.warmup && *c <= self.end);
        cuts.sort_unstable();
        cuts.dedup();
        let first_start = spans
            .iter()
            .map(|s| s.start_s)
            .fold(f64::INFINITY, f64::min);
        let mut out = Vec::new();
        for w in cuts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let mid = (a + b) as f64 / 2.0;
            let active: Vec<&FaultSpan> = spans
                .iter()
                .filter(|s| s.end_s != Some(s.start_s))
                .filter(|s| s.start_s <= mid && s.end_s.is_none_or(|e| e > mid))
                .collect();
            let (kind, label) = if mid < first_start {
                (PhaseKind::Before, "before the first fault".to_string())
            } else if !active.is_empty() {
                let names: Vec<&str> = active.iter().map(|s| s.label.as_str()).collect();
                (PhaseKind::During, names.join(" + "))
            } else {
                let last = spans
                    .iter()
                    .filter(|s| s.end_s.unwrap_or(s.start_s) <= mid)
                    .max_by(|x, y| {
                        x.end_s
                            .unwrap_or(x.start_s)
                            .total_cmp(&y.end_s.unwrap_or(y.start_s))
                    })
                    .map_or(String::new(), |s| s.label.clone());
                (PhaseKind::After, format!("after {last}"))
            };
            let mut latency = new_histogram();
            for k in a..b.min(self.buckets.len()) {
                let _ = latency.add(&self.buckets[k].latency);
            }
            let pct = |q: f64| {
                (!latency.is_empty()).then(|| latency.value_at_quantile(q) as f64 / 1000.0)
            };
            out.push(Phase {
                kind,
                label,
                start_s: a as f64,
                end_s: b as f64,
                tps: self.tps(a, b),
                p50_ms: pct(0.5),
                p99_ms: pct(0.99),
                views: self.highest_view(b).saturating_sub(self.highest_view(a)),
            });
        }
        out
    }

    /// The recovery time of every fault that lasts (instant actions are left out
    /// unless they are the only events, e.g. a restart).
    pub fn recoveries(&self, spans: &[FaultSpan]) -> Vec<Recovery> {
        spans
            .iter()
            .filter(|s| s.end_s != Some(s.start_s))
            .map(|s| self.recovery(s))
            .collect()
    }

    fn recovery(&self, span: &FaultSpan) -> Recovery {
        let last_before = span.start_s.floor() as usize;
        let from = last_before
            .saturating_sub(BEFORE_WINDOW_S)
            .max(self.warmup.min(last_before));
        let before = if last_before > from {
            self.tps(from, last_before)
        } else {
            0.0
        };
        // No baseline (the fault came during the warm-up or at the start): measure
        // against the level the run settled at, never "recovered at once".
        let reference = if before > 0.0 {
            before
        } else {
            let end = self.end.min(self.buckets.len());
            self.tps(end.saturating_sub(BEFORE_WINDOW_S).max(last_before), end)
        };
        let threshold = reference * RECOVERED_SHARE;
        let end = span.end_s.map(|e| e.ceil() as usize);
        let back = (last_before..self.end.min(self.buckets.len()))
            .find(|k| reference > 0.0 && self.buckets[*k].completed as f64 >= threshold);
        let (origin, recovery_s) = match (back, end) {
            (Some(k), Some(e)) if k >= e => {
                // Only after the fault ended: measured from its end.
                let e_s = span.end_s.unwrap_or(0.0);
                ("heal", Some((k + 1) as f64 - e_s))
            }
            (Some(k), _) => ("fault", Some((k + 1) as f64 - span.start_s)),
            (None, _) => (if end.is_some() { "heal" } else { "fault" }, None),
        };
        Recovery {
            fault: span.fault,
            label: span.label.clone(),
            before_tps: before,
            reference_tps: reference,
            from: origin.to_string(),
            recovery_s: recovery_s.map(|r| r.max(0.0)),
        }
    }

    /// Requests completed after the last fault event (from one second after it) and in
    /// the last two seconds of the load.
    pub fn liveness(&self, spans: &[FaultSpan]) -> LivenessObserved {
        let last = spans
            .iter()
            .map(|s| s.end_s.unwrap_or(s.start_s).max(s.start_s))
            .fold(0.0, f64::max);
        let from = (last + 1.0).ceil() as usize;
        LivenessObserved {
            last_event_s: last,
            completed_after: self.completed(from, self.end),
            completed_at_end: self.completed(self.end.saturating_sub(2), self.end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(tps: &[u64]) -> Vec<Bucket> {
        tps.iter()
            .map(|n| {
                let mut latency = new_histogram();
                if *n > 0 {
                    latency.record_n(5_000, *n).unwrap();
                }
                Bucket {
                    completed: *n,
                    latency,
                }
            })
            .collect()
    }

    fn span(start: f64, end: Option<f64>) -> FaultSpan {
        FaultSpan {
            fault: 1,
            label: "crash r0".into(),
            start_s: start,
            end_s: end,
            replicas: vec![0],
        }
    }

    #[test]
    fn phases_recovery_and_liveness_around_a_crash() {
        // 1000 tx/s, a crash at 4 s stalls for two seconds, back at 7 s.
        let b = buckets(&[0, 1000, 1000, 1000, 0, 0, 300, 950, 1000, 1000]);
        let m = Measured {
            buckets: &b,
            timeline: &[],
            warmup: 1,
            end: 10,
        };
        let spans = [span(4.0, None)];
        let phases = m.phases(&spans);
        assert_eq!(phases.len(), 2);
        assert_eq!(phases[0].kind, PhaseKind::Before);
        assert_eq!(phases[0].tps, 1000.0);
        assert_eq!(phases[1].kind, PhaseKind::During);
        assert_eq!((phases[1].start_s, phases[1].end_s), (4.0, 10.0));
        let r = &m.recoveries(&spans)[0];
        assert_eq!(r.before_tps, 1000.0);
        assert_eq!((r.from.as_str(), r.recovery_s), ("fault", Some(4.0)));
        let l = m.liveness(&spans);
        assert_eq!(l.completed_at_end, 2000);
        assert!(l.completed_after > 0);
    }

    #[test]
    fn a_fault_recovered_only_after_its_end_counts_from_the_heal() {
        let b = buckets(&[0, 1000, 1000, 0, 0, 0, 0, 1000, 1000, 1000]);
        let m = Measured {
            buckets: &b,
            timeline: &[],
            warmup: 1,
            end: 10,
        };
        let spans = [span(3.0, Some(6.0))];
        let phases = m.phases(&spans);
        let kinds: Vec<PhaseKind> = phases.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            vec![PhaseKind::Before, PhaseKind::During, PhaseKind::After]
        );
        assert_eq!(phases[2].label, "after crash r0");
        let r = &m.recoveries(&spans)[0];
        assert_eq!((r.from.as_str(), r.recovery_s), ("heal", Some(2.0)));
        let never = Measured {
            buckets: &buckets(&[0, 1000, 1000, 0, 0, 0, 0, 0, 0, 0]),
            timeline: &[],
            warmup: 1,
            end: 10,
        };
        assert_eq!(never.recoveries(&spans)[0].recovery_s, None);
        assert_eq!(never.liveness(&spans).completed_after, 0);
    }

    #[test]
    fn a_fault_with_no_throughput_before_it_is_measured_against_the_final_level() {
        // The primary crashes at 1 s, before anything completed; the cluster only
        // reaches its level (1000 tx/s) at 6 s. Recovery must not read "at once".
        let b = buckets(&[0, 0, 0, 0, 200, 500, 1000, 1000, 1000, 1000]);
        let m = Measured {
            buckets: &b,
            timeline: &[],
            warmup: 1,
            end: 10,
        };
        let r = &m.recoveries(&[span(1.0, None)])[0];
        assert_eq!(r.before_tps, 0.0);
        assert_eq!(r.reference_tps, 900.0);
        assert_eq!((r.from.as_str(), r.recovery_s), ("fault", Some(6.0)));
        // Nothing ever completes: never recovered, not recovered at once.
        let dead = Measured {
            buckets: &buckets(&[0; 10]),
            timeline: &[],
            warmup: 1,
            end: 10,
        };
        assert_eq!(dead.recoveries(&[span(1.0, None)])[0].recovery_s, None);
    }
}
