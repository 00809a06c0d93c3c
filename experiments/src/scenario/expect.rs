//! `[expect]`: what a run must show, and the check of a run's summary against it.
//! Every expectation set becomes one [`ExpectationOutcome`] (expected, observed,
//! passed); `tandem run` exits non-zero naming each one that failed.
//!
//! - `min_tps`: end-to-end tx/s over the measured run (after warm-up).
//! - `min_tps_before`, `min_tps_during`, `min_tps_after`: the same per phase — the
//!   phase before the first fault, every phase with a fault active (the worst one
//!   counts), and the phase after the last fault ended.
//! - `max_p99_ms`: the 99th percentile of end-to-end latency over the measured run.
//! - `safety` (default true): the correct replicas agree on every committed batch and
//!   every stable checkpoint they have in common.
//! - `liveness` (default `kept`): `kept` — requests complete after the last fault
//!   event (from one second after it) and in the last two seconds of the load;
//!   `lost` — none completes from one second after it (a cluster that must stall,
//!   e.g. f+1 crashed; safety still holds); `any` — not checked.
//! - `max_recovery_s`: every fault's recovery time (see [`crate::report::Recovery`])
//!   at most this; a fault the cluster never recovered from fails it.
//! - `acknowledged` (default `kept`): `kept` — every request a client acknowledged is
//!   in the final state of every replica up and correct at the end (`lost` = 0, see
//!   [`crate::report::AcknowledgedCheck`]); `lost` — some acknowledged request is
//!   missing (a scenario that shows loss, e.g. every replica crashed at once with
//!   durability `none`); `any` — not checked.

use crate::report::{ExpectationOutcome, PhaseKind, RunSummary};

/// What must hold after a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectations {
    /// Minimum end-to-end tx/s over the measured run.
    pub min_tps: Option<f64>,
    /// Minimum tx/s before the first fault.
    pub min_tps_before: Option<f64>,
    /// Minimum tx/s in every phase with a fault active.
    pub min_tps_during: Option<f64>,
    /// Minimum tx/s after the last fault ended.
    pub min_tps_after: Option<f64>,
    /// Maximum p99 latency, milliseconds.
    pub max_p99_ms: Option<f64>,
    /// Maximum recovery time of every fault, seconds.
    pub max_recovery_s: Option<f64>,
    /// Correct replicas must agree.
    pub safety: bool,
    /// Whether requests must keep completing after the last fault.
    pub liveness: Liveness,
    /// Whether acknowledged requests must survive in every correct replica.
    pub acknowledged: AckExpect,
}

/// What the run must show about acknowledged requests at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckExpect {
    /// None lost: every correct replica up at the end holds every one.
    Kept,
    /// Some lost (a scenario that demonstrates loss).
    Lost,
    /// Not checked.
    Any,
}

impl AckExpect {
    /// `kept`, `lost` or `any`.
    pub fn name(self) -> &'static str {
        match self {
            AckExpect::Kept => "kept",
            AckExpect::Lost => "lost",
            AckExpect::Any => "any",
        }
    }

    /// Parses [`AckExpect::name`].
    pub fn from_name(name: &str) -> Option<AckExpect> {
        [AckExpect::Kept, AckExpect::Lost, AckExpect::Any]
            .into_iter()
            .find(|a| a.name() == name)
    }
}

impl Default for Expectations {
    /// Safety, and liveness kept; nothing about throughput or latency.
    fn default() -> Self {
        Expectations {
            min_tps: None,
            min_tps_before: None,
            min_tps_during: None,
            min_tps_after: None,
            max_p99_ms: None,
            max_recovery_s: None,
            safety: true,
            liveness: Liveness::Kept,
            acknowledged: AckExpect::Kept,
        }
    }
}

/// What the run must show about progress after its last fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Requests complete again.
    Kept,
    /// Nothing completes: the cluster stalls (and stays safe).
    Lost,
    /// Not checked.
    Any,
}

impl Liveness {
    /// `kept`, `lost` or `any`.
    pub fn name(self) -> &'static str {
        match self {
            Liveness::Kept => "kept",
            Liveness::Lost => "lost",
            Liveness::Any => "any",
        }
    }

    /// Parses [`Liveness::name`].
    pub fn from_name(name: &str) -> Option<Liveness> {
        [Liveness::Kept, Liveness::Lost, Liveness::Any]
            .into_iter()
            .find(|l| l.name() == name)
    }
}

impl Expectations {
    /// Checks `summary` (with its phases, recoveries and liveness filled in): one
    /// outcome per expectation set, in a fixed order.
    pub fn check(&self, summary: &RunSummary) -> Vec<ExpectationOutcome> {
        let mut out = Vec::new();
        let tps = |v: f64| format!("{v:.0} tx/s");
        if let Some(min) = self.min_tps {
            let got = summary.throughput.end_to_end_tps;
            out.push(outcome(
                "min_tps",
                format!(">= {}", tps(min)),
                tps(got),
                got >= min,
            ));
        }
        let phases = |kind: PhaseKind| summary.phases.iter().filter(move |p| p.kind == kind);
        if let Some(min) = self.min_tps_before {
            out.push(match phases(PhaseKind::Before).next() {
                Some(p) => outcome(
                    "min_tps_before",
                    format!(">= {}", tps(min)),
                    tps(p.tps),
                    p.tps >= min,
                ),
                None => outcome(
                    "min_tps_before",
                    format!(">= {}", tps(min)),
                    "no measured phase before the first fault".into(),
                    false,
                ),
            });
        }
        if let Some(min) = self.min_tps_during {
            let worst = phases(PhaseKind::During).min_by(|a, b| a.tps.total_cmp(&b.tps));
            out.push(match worst {
                Some(p) => outcome(
                    "min_tps_during",
                    format!(">= {} in every phase with a fault", tps(min)),
                    format!(
                        "{} ({}, {:.0}–{:.0} s)",
                        tps(p.tps),
                        p.label,
                        p.start_s,
                        p.end_s
                    ),
                    p.tps >= min,
                ),
                None => outcome(
                    "min_tps_during",
                    format!(">= {}", tps(min)),
                    "no measured phase with a fault".into(),
                    false,
                ),
            });
        }
        if let Some(min) = self.min_tps_after {
            let after = summary.phases.last().filter(|p| p.kind == PhaseKind::After);
            out.push(match after {
                Some(p) => outcome(
                    "min_tps_after",
                    format!(">= {}", tps(min)),
                    tps(p.tps),
                    p.tps >= min,
                ),
                None => outcome(
                    "min_tps_after",
                    format!(">= {}", tps(min)),
                    "no measured phase after the last fault ended".into(),
                    false,
                ),
            });
        }
        if let Some(max) = self.max_p99_ms {
            let got = summary.latency_ms.p99;
            out.push(outcome(
                "max_p99_ms",
                format!("<= {max:.0} ms"),
                format!("{got:.1} ms"),
                got <= max,
            ));
        }
        if let Some(max) = self.max_recovery_s {
            out.push(self.recovery_outcome(summary, max));
        }
        if self.safety {
            let s = &summary.safety;
            out.push(outcome(
                "safety",
                "correct replicas agree on every committed batch and checkpoint".into(),
                s.detail.clone(),
                s.agreed,
            ));
        }
        if self.liveness != Liveness::Any {
            out.push(self.liveness_outcome(summary));
        }
        if self.acknowledged != AckExpect::Any {
            out.push(self.acknowledged_outcome(summary));
        }
        out
    }

    fn acknowledged_outcome(&self, summary: &RunSummary) -> ExpectationOutcome {
        let Some(a) = &summary.acknowledged else {
            return outcome(
                "acknowledged",
                self.acknowledged.name().into(),
                "not checked".into(),
                false,
            );
        };
        match self.acknowledged {
            AckExpect::Kept => outcome(
                "acknowledged",
                "kept: every acknowledged request in every correct replica (lost = 0)".into(),
                a.detail(),
                a.kept(),
            ),
            AckExpect::Lost => outcome(
                "acknowledged",
                "lost: some acknowledged request missing (lost > 0)".into(),
                a.detail(),
                a.lost > 0,
            ),
            AckExpect::Any => outcome("acknowledged", "any".into(), a.detail(), true),
        }
    }

    fn recovery_outcome(&self, summary: &RunSummary, max: f64) -> ExpectationOutcome {
        let expected = format!("every fault recovered within {max} s");
        let never: Vec<&str> = summary
            .recoveries
            .iter()
            .filter(|r| r.recovery_s.is_none())
            .map(|r| r.label.as_str())
            .collect();
        if !never.is_empty() {
            return outcome(
                "max_recovery_s",
                expected,
                format!("never recovered after {}", never.join(", ")),
                false,
            );
        }
        let worst = summary
            .recoveries
            .iter()
            .filter_map(|r| r.recovery_s.map(|s| (s, r)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match worst {
            Some((secs, r)) => outcome(
                "max_recovery_s",
                expected,
                format!("{secs:.1} s (after {}, from its {})", r.label, r.from),
                secs <= max,
            ),
            None => outcome("max_recovery_s", expected, "no faults".into(), true),
        }
    }

    fn liveness_outcome(&self, summary: &RunSummary) -> ExpectationOutcome {
        let Some(l) = &summary.liveness else {
            return outcome(
                "liveness",
                self.liveness.name().into(),
                "not measured".into(),
                false,
            );
        };
        let observed = format!(
            "{} requests completed from {:.1} s on, {} in the last 2 s",
            l.completed_after,
            l.last_event_s + 1.0,
            l.completed_at_end
        );
        match self.liveness {
            Liveness::Kept => outcome(
                "liveness",
                "kept: requests complete after the last fault".into(),
                observed,
                l.completed_after > 0 && l.completed_at_end > 0,
            ),
            Liveness::Lost => outcome(
                "liveness",
                "lost: no request completes after the last fault".into(),
                observed,
                l.completed_after == 0,
            ),
            Liveness::Any => outcome("liveness", "any".into(), observed, true),
        }
    }
}

fn outcome(name: &str, expected: String, observed: String, passed: bool) -> ExpectationOutcome {
    ExpectationOutcome {
        name: name.to_string(),
        expected,
        observed,
        passed,
    }
}

/// The failed outcomes as lines, e.g. `min_tps: expected >= 5000 tx/s, got 812 tx/s`.
pub fn failures(outcomes: &[ExpectationOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| format!("{}: expected {}, got {}", o.name, o.expected, o.observed))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{LivenessObserved, Phase, Recovery};

    fn summary() -> RunSummary {
        let mut s = crate::report::sample_run::sample_summary();
        s.throughput.end_to_end_tps = 10_000.0;
        s.latency_ms.p99 = 40.0;
        s.safety.agreed = true;
        let phase = |kind, tps| Phase {
            kind,
            label: "x".into(),
            start_s: 0.0,
            end_s: 1.0,
            tps,
            p50_ms: None,
            p99_ms: None,
            views: 0,
        };
        s.phases = vec![
            phase(PhaseKind::Before, 12_000.0),
            phase(PhaseKind::During, 3_000.0),
            phase(PhaseKind::After, 11_000.0),
        ];
        s.recoveries = vec![Recovery {
            fault: 1,
            label: "crash r0".into(),
            before_tps: 12_000.0,
            reference_tps: 12_000.0,
            from: "fault".into(),
            recovery_s: Some(1.5),
        }];
        s.liveness = Some(LivenessObserved {
            last_event_s: 10.0,
            completed_after: 5000,
            completed_at_end: 2000,
        });
        s.acknowledged = Some(crate::report::AcknowledgedCheck {
            acknowledged: 1000,
            checked: vec![0, 1, 2, 3],
            ..crate::report::AcknowledgedCheck::default()
        });
        s
    }

    #[test]
    fn every_expectation_is_checked_and_named() {
        let e = Expectations {
            min_tps: Some(9_000.0),
            min_tps_before: Some(11_000.0),
            min_tps_during: Some(4_000.0),
            min_tps_after: Some(10_000.0),
            max_p99_ms: Some(30.0),
            max_recovery_s: Some(2.0),
            safety: true,
            liveness: Liveness::Kept,
            acknowledged: AckExpect::Any,
        };
        let got = e.check(&summary());
        let failed = failures(&got);
        assert_eq!(got.len(), 8);
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(
            failed[0].starts_with("min_tps_during: expected >= 4000 tx/s"),
            "{failed:?}"
        );
        assert!(
            failed[1].starts_with("max_p99_ms: expected <= 30 ms, got 40.0 ms"),
            "{failed:?}"
        );
    }

    #[test]
    fn liveness_lost_passes_only_when_nothing_completes() {
        let mut s = summary();
        let lost = Expectations {
            liveness: Liveness::Lost,
            ..Expectations::default()
        };
        assert_eq!(failures(&lost.check(&s)).len(), 1);
        s.liveness = Some(LivenessObserved {
            last_event_s: 10.0,
            completed_after: 0,
            completed_at_end: 0,
        });
        assert!(failures(&lost.check(&s)).is_empty());
        let kept = Expectations::default();
        let failed = failures(&kept.check(&s));
        assert!(
            failed[0].starts_with("liveness: expected kept"),
            "{failed:?}"
        );
    }

    #[test]
    fn acknowledged_kept_fails_on_any_loss_and_lost_passes_only_then() {
        use crate::acknowledged::ReplicaLoss;
        use crate::report::AcknowledgedCheck;
        let mut s = summary();
        let kept = Expectations::default();
        let lost = Expectations {
            acknowledged: AckExpect::Lost,
            ..Expectations::default()
        };
        assert!(failures(&kept.check(&s)).is_empty());
        assert_eq!(failures(&lost.check(&s)).len(), 1);
        s.acknowledged = None;
        let failed = failures(&kept.check(&s));
        assert!(
            failed
                .iter()
                .any(|f| f.contains("acknowledged") && f.contains("not checked")),
            "{failed:?}"
        );
        s.acknowledged = Some(AcknowledgedCheck {
            acknowledged: 1000,
            lost: 0,
            checked: vec![0, 1, 2, 3],
            ..AcknowledgedCheck::default()
        });
        assert_eq!(failures(&lost.check(&s)).len(), 1);
        let check = s.acknowledged.as_mut().unwrap();
        check.lost = 3;
        check.replicas = vec![ReplicaLoss {
            replica: 2,
            missing: 3,
            first: vec![(0, 7), (0, 8), (1, 9)],
        }];
        let failed = failures(&kept.check(&s));
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(
            failed[0].contains("3 lost")
                && failed[0].contains("r2 lacks 3 (first: c0#7 c0#8 c1#9)"),
            "{failed:?}"
        );
        assert!(failures(&lost.check(&s)).is_empty());
        // A replica that could not be read fails `kept` even with nothing lost.
        let check = s.acknowledged.as_mut().unwrap();
        check.lost = 0;
        check.replicas.clear();
        check.unanswered = vec![3];
        let failed = failures(&kept.check(&s));
        assert!(failed[0].contains("no answer from r3"), "{failed:?}");
    }

    #[test]
    fn a_fault_never_recovered_from_fails_the_recovery_bound() {
        let mut s = summary();
        s.recoveries[0].recovery_s = None;
        let e = Expectations {
            max_recovery_s: Some(100.0),
            ..Expectations::default()
        };
        let failed = failures(&e.check(&s));
        assert_eq!(failed.len(), 1);
        assert!(
            failed[0].contains("never recovered after crash r0"),
            "{failed:?}"
        );
    }

    #[test]
    fn missing_phases_fail_with_a_reason() {
        let mut s = summary();
        s.phases.clear();
        let e = Expectations {
            min_tps_after: Some(1.0),
            ..Expectations::default()
        };
        let failed = failures(&e.check(&s));
        assert!(failed[0].contains("no measured phase after"), "{failed:?}");
    }
}
