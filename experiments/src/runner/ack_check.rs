//! The acknowledged-loss check at the end of a run (Jepsen-style, always on): once the
//! clients stopped, the launcher lifts every network fault, then reads the
//! exactly-once table of every replica that is up and correct (running, not paused,
//! never Byzantine) and looks there for every request a client acknowledged
//! ([`crate::acknowledged`]). Replicas that restarted may still be catching up, so it
//! polls — a replica is settled once it holds everything and has executed all it
//! delivered — until every one is settled or its patience runs out, then reports what
//! is still missing.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use tandem_network::FaultRules;
use tokio::time::Instant;

use crate::acknowledged::{self, Acknowledged, ExecutedWindow, ReplicaLoss};
use crate::report::AcknowledgedCheck;
use crate::runner::launcher::Launcher;

/// How long the check waits for replicas to catch up.
pub const PATIENCE: Duration = Duration::from_secs(15);
/// How long it waits for one page of a replica's table.
const PAGE_WAIT: Duration = Duration::from_secs(2);
/// Pause between two polls of the replicas not settled yet.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// What the last poll of one replica found.
struct Reading {
    table: BTreeMap<u32, ExecutedWindow>,
    loss: ReplicaLoss,
    executed_all: bool,
}

/// Checks `replicas` (ids of those up and correct) against `acked`, waiting up to
/// `patience`. `client_window` caps what is kept per client of a replica's table.
///
/// # Errors
/// Only if a control frame cannot be encoded; replicas that do not answer are
/// reported in [`AcknowledgedCheck::unanswered`].
pub async fn check(
    launcher: &mut Launcher,
    acked: &Acknowledged,
    replicas: &[u32],
    client_window: u64,
    patience: Duration,
) -> Result<AcknowledgedCheck> {
    // The final read happens on a healed network, so a replica that was cut off can
    // catch up (the runner's record of the faults is unchanged).
    launcher.install(&FaultRules::default())?;
    let start = Instant::now();
    let deadline = start + patience;
    let keep = |client: u32| acked.contains_key(&client);
    let max_per_client = usize::try_from(client_window).unwrap_or(usize::MAX);
    let mut readings: BTreeMap<u32, Reading> = BTreeMap::new();
    let mut pending: Vec<u32> = replicas.to_vec();
    loop {
        let mut still = Vec::new();
        for &r in &pending {
            let read = launcher.executed_table(r, &keep, max_per_client, PAGE_WAIT);
            let remaining = deadline.saturating_duration_since(Instant::now());
            let answer = tokio::time::timeout(remaining.max(PAGE_WAIT), read).await;
            let Ok(Some((status, table))) = answer.unwrap_or(Ok(None)) else {
                still.push(r);
                continue;
            };
            let loss = acknowledged::check_replica(r, acked, &table);
            let executed_all = status.last_executed >= status.last_delivered;
            let settled = loss.missing == 0 && executed_all;
            readings.insert(
                r,
                Reading {
                    table,
                    loss,
                    executed_all,
                },
            );
            if !settled {
                still.push(r);
            }
        }
        pending = still;
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    let tables: Vec<&BTreeMap<u32, ExecutedWindow>> = readings.values().map(|r| &r.table).collect();
    Ok(AcknowledgedCheck {
        acknowledged: acknowledged::total(acked),
        lost: acknowledged::lost_anywhere(acked, &tables),
        checked: replicas.to_vec(),
        unanswered: replicas
            .iter()
            .copied()
            .filter(|r| !readings.contains_key(r))
            .collect(),
        not_executed: readings
            .iter()
            .filter(|(_, r)| !r.executed_all)
            .map(|(id, _)| *id)
            .collect(),
        replicas: readings
            .into_values()
            .map(|r| r.loss)
            .filter(|l| l.missing > 0)
            .collect(),
        waited_s: start.elapsed().as_secs_f64(),
    })
}
