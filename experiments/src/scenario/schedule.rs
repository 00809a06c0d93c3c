//! The schedule of a scenario: every fault's start, and its end when it has one
//! (`until` or `duration`), in time order. At one instant ends come before starts
//! (a fault that ends at 20 s is over before one that starts at 20 s begins), then
//! file order. Ends caused by a later action (`restart` ending a `crash`, `resume`
//! ending a `pause`, `heal` ending a partition) are decided when that action runs.

use std::time::Duration;

use crate::scenario::Fault;

/// Whether a step starts or ends its fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StepKind {
    /// The fault's effect ends (its `until`).
    End,
    /// The fault happens (its `at`).
    Start,
}

/// One point of the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Since the run started.
    pub at: Duration,
    /// Index of the fault in [`crate::scenario::Scenario::faults`].
    pub fault: usize,
    /// Start or end.
    pub kind: StepKind,
}

/// The steps of `faults`, in the order they happen.
pub fn steps(faults: &[Fault]) -> Vec<Step> {
    let mut out = Vec::with_capacity(faults.len() * 2);
    for (i, f) in faults.iter().enumerate() {
        out.push(Step {
            at: f.at,
            fault: i,
            kind: StepKind::Start,
        });
        if let Some(until) = f.until {
            out.push(Step {
                at: until,
                fault: i,
                kind: StepKind::End,
            });
        }
    }
    out.sort_by_key(|s| (s.at, s.kind, s.fault));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Action, Target};

    fn fault(at: u64, until: Option<u64>) -> Fault {
        Fault {
            number: 0,
            at: Duration::from_secs(at),
            until: until.map(Duration::from_secs),
            target: Target::All,
            action: Action::Crash,
        }
    }

    #[test]
    fn ends_before_starts_at_one_instant() {
        let faults = [fault(10, Some(20)), fault(20, None), fault(5, Some(20))];
        let got: Vec<(u64, usize, StepKind)> = steps(&faults)
            .iter()
            .map(|s| (s.at.as_secs(), s.fault, s.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                (5, 2, StepKind::Start),
                (10, 0, StepKind::Start),
                (20, 0, StepKind::End),
                (20, 2, StepKind::End),
                (20, 1, StepKind::Start),
            ]
        );
    }
}
