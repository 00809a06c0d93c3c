//! Faults `tandem local` injects on the command line: replicas killed or restarted at
//! a point of the run (`--kill r0@5`, `--restart r0@12`), and Byzantine replicas
//! (`--byzantine r1=equivocate`, a mode of the cluster's protocol). They become the
//! `[[fault]]`s of the one-line scenario the flags stand for ([`scenario_faults`]).

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use tandem_consensus::ProtocolKind;

/// What happens to a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// SIGKILL the replica's process.
    Kill(usize),
    /// Start it again with an empty state.
    Restart(usize),
}

impl FaultAction {
    /// How the timeline names it.
    pub fn label(&self) -> String {
        match self {
            FaultAction::Kill(r) => format!("kill r{r}"),
            FaultAction::Restart(r) => format!("restart r{r}"),
        }
    }
}

/// A fault at a time since the run started.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimedFault {
    /// When.
    pub at: Duration,
    /// What.
    pub action: FaultAction,
}

/// The scenario faults the flags stand for: `--kill` a `crash`, `--restart` a
/// `restart`, `--byzantine` a `byzantine` fault at 0 s (the replica starts in the
/// mode); numbered in that order.
pub fn scenario_faults(
    kills: &[String],
    restarts: &[String],
    byzantine: &[Option<String>],
    replicas: usize,
) -> Result<Vec<crate::scenario::Fault>> {
    use crate::scenario::{Action, Fault, Target};
    let mut out = Vec::new();
    for f in schedule(kills, restarts, replicas)? {
        let (r, action) = match f.action {
            FaultAction::Kill(r) => (r, Action::Crash),
            FaultAction::Restart(r) => (r, Action::Restart),
        };
        out.push(Fault {
            number: out.len() + 1,
            at: f.at,
            until: None,
            target: Target::Replicas(vec![r as u32]),
            action,
        });
    }
    for (r, mode) in byzantine.iter().enumerate() {
        if let Some(mode) = mode {
            out.push(Fault {
                number: out.len() + 1,
                at: Duration::ZERO,
                until: None,
                target: Target::Replicas(vec![r as u32]),
                action: Action::Byzantine { mode: mode.clone() },
            });
        }
    }
    Ok(out)
}

/// Parses `r<id>@<seconds>`.
fn parse_target_at(spec: &str, replicas: usize) -> Result<(usize, Duration)> {
    let (who, when) = spec
        .split_once('@')
        .ok_or_else(|| anyhow!("`{spec}` is not of the form r<id>@<seconds>, e.g. r0@5"))?;
    let id = parse_replica(who, replicas)?;
    let secs: f64 = when
        .trim_end_matches('s')
        .parse()
        .map_err(|_| anyhow!("`{when}` in `{spec}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs >= 0.0) {
        bail!("`{when}` in `{spec}` must be a non-negative number of seconds");
    }
    Ok((id, Duration::from_secs_f64(secs)))
}

/// Parses `r<id>` (or a bare id).
fn parse_replica(who: &str, replicas: usize) -> Result<usize> {
    let id: usize = who
        .trim_start_matches('r')
        .parse()
        .map_err(|_| anyhow!("`{who}` is not a replica like r0"))?;
    if id >= replicas {
        bail!("replica r{id} does not exist (the cluster has {replicas})");
    }
    Ok(id)
}

/// The timed faults from `--kill` and `--restart`, in time order.
pub fn schedule(kills: &[String], restarts: &[String], replicas: usize) -> Result<Vec<TimedFault>> {
    let mut out = Vec::new();
    for k in kills {
        let (id, at) = parse_target_at(k, replicas).map_err(|e| anyhow!("--kill: {e}"))?;
        out.push(TimedFault {
            at,
            action: FaultAction::Kill(id),
        });
    }
    for r in restarts {
        let (id, at) = parse_target_at(r, replicas).map_err(|e| anyhow!("--restart: {e}"))?;
        out.push(TimedFault {
            at,
            action: FaultAction::Restart(id),
        });
    }
    out.sort_by_key(|f| f.at);
    Ok(out)
}

/// The Byzantine mode of each replica from `--byzantine r<id>=<mode>`, each checked
/// against `protocol`'s modes.
pub fn byzantine_modes(
    specs: &[String],
    protocol: ProtocolKind,
    replicas: usize,
) -> Result<Vec<Option<String>>> {
    let mut modes = vec![None; replicas];
    for spec in specs {
        let (who, mode) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--byzantine: `{spec}` is not of the form r<id>=<mode>"))?;
        let id = parse_replica(who, replicas).map_err(|e| anyhow!("--byzantine: {e}"))?;
        let mode = protocol
            .byzantine_mode(mode)
            .map_err(|e| anyhow!("--byzantine: {e}"))?;
        modes[id] = Some(mode.to_string());
    }
    let faulty = modes.iter().filter(|m| m.is_some()).count();
    if faulty > (replicas - 1) / 3 {
        tracing::warn!(
            faulty,
            replicas,
            "more Byzantine replicas than the protocol tolerates"
        );
    }
    Ok(modes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_faults() {
        let s = schedule(&["r0@5".into()], &["0@7.5s".into()], 4).unwrap();
        assert_eq!(s[0].action, FaultAction::Kill(0));
        assert_eq!(s[1].at, Duration::from_millis(7500));
        assert!(schedule(&["r9@1".into()], &[], 4).is_err());
        assert!(schedule(&["r0".into()], &[], 4).is_err());
        assert!(schedule(&["r0@-1".into()], &[], 4).is_err());
    }

    #[test]
    fn parses_byzantine_modes() {
        let pbft = ProtocolKind::Pbft;
        let m = byzantine_modes(&["r1=equivocate".into()], pbft, 4).unwrap();
        assert_eq!(m[1].as_deref(), Some("equivocate"));
        let err = byzantine_modes(&["r1=evil".into()], pbft, 4)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pbft has no Byzantine mode `evil`") && err.contains("silent"),
            "{err}"
        );
    }
}
