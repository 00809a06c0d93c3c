//! A saturation sweep: one run per total offered rate (open loop), then a table of
//! offered rate → achieved tx/s, latency, view changes and the safety verdict, on the
//! terminal and as `saturation.csv` in a results folder of its own.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::report::{self, RunSummary};
use crate::runner::{RunPlan, run};
use crate::scenario::LoadShape;

/// The name of the table a sweep writes.
pub const SATURATION_CSV: &str = "saturation.csv";

/// One offered rate of a sweep.
pub struct SaturationRow {
    /// Total offered transactions per second.
    pub offered_tps: f64,
    /// The run's summary.
    pub summary: RunSummary,
    /// The run's results folder.
    pub dir: PathBuf,
}

/// What a sweep produced.
pub struct Saturation {
    /// One row per offered rate, in the order given.
    pub rows: Vec<SaturationRow>,
    /// Where `saturation.csv` was written.
    pub csv: PathBuf,
}

impl Saturation {
    /// Whether every run held: the replicas agreed and nothing acknowledged was lost
    /// ([`RunSummary::held`]).
    pub fn all_held(&self) -> bool {
        self.rows.iter().all(|r| r.summary.held())
    }

    /// The table for the terminal: a header and one line per rate.
    pub fn render_table(&self) -> String {
        let mut table = String::from(
            "offered tx/s   achieved tx/s   p50 ms   p90 ms   p99 ms   view changes   safety   results\n",
        );
        for row in &self.rows {
            let (s, l) = (&row.summary, &row.summary.latency_ms);
            let _ = writeln!(
                table,
                "{:>12.0}   {:>13.0}   {:>6.1}   {:>6.1}   {:>6.1}   {:>12}   {:>6}   {}",
                row.offered_tps,
                s.throughput.end_to_end_tps,
                l.p50,
                l.p90,
                l.p99,
                s.consensus.view_changes,
                verdict(s),
                row.dir.display()
            );
        }
        table
    }
}

/// The safety column: `ok`, `FAIL` (the replicas disagreed) or `LOST n` (acknowledged
/// requests missing from a replica's final state).
fn verdict(s: &RunSummary) -> String {
    match &s.acknowledged {
        _ if !s.safety.agreed => "FAIL".to_string(),
        Some(a) if !a.kept() => format!("LOST {}", a.lost),
        _ => "ok".to_string(),
    }
}

/// The rows as CSV, one line per rate under a header.
fn render_csv(rows: &[SaturationRow]) -> String {
    let mut csv = String::from(
        "offered_tps,end_to_end_tps,consensus_tps,p50_ms,p90_ms,p99_ms,view_changes,agreed,results\n",
    );
    for row in rows {
        let (s, l) = (&row.summary, &row.summary.latency_ms);
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{}",
            row.offered_tps,
            s.throughput.end_to_end_tps,
            s.throughput.consensus_tps,
            l.p50,
            l.p90,
            l.p99,
            s.consensus.view_changes,
            s.safety.agreed,
            row.dir.display()
        );
    }
    csv
}

/// Runs `plan` once per total offered rate in `rates` (open loop, split over its
/// clients; each run named `<name>-<rate>`), then writes `saturation.csv` into a
/// results folder named `<name>-saturation`. Progress goes to stderr.
pub fn sweep(plan: &RunPlan, rates: &[f64]) -> Result<Saturation> {
    if rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        bail!("--rates must all be positive");
    }
    let mut rows = Vec::new();
    for &rate in rates {
        let mut p = plan.clone();
        p.scenario.load.shape = LoadShape::Open {
            rate,
            changes: Vec::new(),
        };
        p.scenario.name = format!("{}-{}", plan.scenario.name, rate as u64);
        p.scenario.source.text = crate::scenario::render::to_toml(&p.scenario);
        p.parameters["rate"] = json!(rate);
        p.parameters["window"] = serde_json::Value::Null;
        eprintln!("offered {rate:.0} tx/s ...");
        let outcome = run(&p)?;
        rows.push(SaturationRow {
            offered_tps: rate,
            summary: outcome.summary,
            dir: outcome.dir,
        });
    }
    let dir = report::results_dir(&plan.results, &format!("{}-saturation", plan.scenario.name));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let csv = dir.join(SATURATION_CSV);
    std::fs::write(&csv, render_csv(&rows))
        .with_context(|| format!("cannot write {}", csv.display()))?;
    Ok(Saturation { rows, csv })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_run::sample_summary;

    fn rows() -> Vec<SaturationRow> {
        let mut failed = sample_summary();
        failed.safety.agreed = false;
        vec![
            SaturationRow {
                offered_tps: 25_000.0,
                summary: sample_summary(),
                dir: PathBuf::from("results/local-25000-x"),
            },
            SaturationRow {
                offered_tps: 50_000.0,
                summary: failed,
                dir: PathBuf::from("results/local-50000-x"),
            },
        ]
    }

    /// A sweep whose replicas agreed but lost an acknowledged request fails, and the
    /// table says so.
    #[test]
    fn a_rate_that_lost_acknowledged_requests_fails_the_sweep() {
        let mut lossy = sample_summary();
        lossy.acknowledged = Some(crate::report::AcknowledgedCheck {
            acknowledged: 100,
            lost: 3,
            checked: vec![0, 1, 2, 3],
            ..Default::default()
        });
        assert!(lossy.safety.agreed && !lossy.held());
        let s = Saturation {
            rows: vec![SaturationRow {
                offered_tps: 25_000.0,
                summary: lossy,
                dir: PathBuf::from("results/local-25000-x"),
            }],
            csv: PathBuf::from("saturation.csv"),
        };
        assert!(!s.all_held());
        assert!(s.render_table().contains("LOST 3"), "{}", s.render_table());
    }

    #[test]
    fn table_and_csv_have_a_line_per_rate() {
        let s = Saturation {
            rows: rows(),
            csv: PathBuf::from("saturation.csv"),
        };
        assert!(!s.all_held());
        let table = s.render_table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("offered tx/s   achieved tx/s"));
        assert!(lines[1].trim_start().starts_with("25000"), "{table}");
        assert!(lines[1].contains(" ok ") && lines[1].ends_with("results/local-25000-x"));
        assert!(lines[2].contains("FAIL"), "{table}");
        let csv = render_csv(&s.rows);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].split(',').count(), 9);
        assert!(lines[1].starts_with("25000,12345.4,12401,4.212,7.8,15.31,1,true,"));
        assert!(lines[2].contains(",false,"));
    }

    #[test]
    fn rates_must_be_positive() {
        let plan = crate::runner::LocalOptions {
            cluster: crate::cluster_params::ClusterParams::default(),
            cpu_budget: Default::default(),
            replica_program: PathBuf::from("tandem"),
            clients: 1,
            rate: None,
            window: None,
            duration_secs: 2.0,
            warmup_secs: 0.0,
            payload: 0,
            retransmit_ms: 1000,
            kill: Vec::new(),
            restart: Vec::new(),
            byzantine: Vec::new(),
            name: "t".into(),
            results: PathBuf::from("unused"),
        }
        .plan()
        .unwrap();
        for bad in [0.0, -5.0, f64::NAN] {
            let err = sweep(&plan, &[1000.0, bad]).err().expect("refused");
            assert!(err.to_string().contains("--rates"), "{err}");
        }
    }
}
