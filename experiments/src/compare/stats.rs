//! The figures of a comparison: per cell the median and min–max over its runs
//! ([`CellStats`]), the terminal table, `compare.csv` (one line per cell) and
//! `runs.csv` (one line per run, with its results folder).

use std::fmt::Write as _;

use super::{Cell, RunRow};
use crate::report::RunSummary;

/// Median and range of one figure over a cell's runs; NaN everywhere when no run
/// measured it (non-finite values are left out).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`, ignoring non-finite ones.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return Spread {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[v.len() - 1],
        }
    }
}

/// A cell's figures over its runs.
#[derive(Clone, Debug, PartialEq)]
pub struct CellStats {
    /// Runs measured.
    pub runs: usize,
    /// End-to-end transactions per second.
    pub tps: Spread,
    /// Median latency, milliseconds.
    pub p50_ms: Spread,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: Spread,
    /// View changes per run.
    pub view_changes: Spread,
    /// Whether the replicas agreed in every run.
    pub agreed: bool,
}

impl CellStats {
    /// The statistics of a cell's run summaries.
    pub fn of<'a>(summaries: impl Iterator<Item = &'a RunSummary>) -> CellStats {
        let s: Vec<&RunSummary> = summaries.collect();
        CellStats {
            runs: s.len(),
            tps: Spread::of(s.iter().map(|r| r.throughput.end_to_end_tps)),
            p50_ms: Spread::of(s.iter().map(|r| r.latency_ms.p50)),
            p99_ms: Spread::of(s.iter().map(|r| r.latency_ms.p99)),
            view_changes: Spread::of(s.iter().map(|r| r.consensus.view_changes as f64)),
            agreed: s.iter().all(|r| r.safety.agreed),
        }
    }
}

/// `12,345 (11,900–12,800)`: a median with its range, `n/a` when unmeasured.
fn spread_text(s: &Spread, digits: usize) -> String {
    if !s.median.is_finite() {
        return "n/a".to_string();
    }
    if s.min == s.max {
        return number(s.median, digits);
    }
    format!(
        "{} ({}–{})",
        number(s.median, digits),
        number(s.min, digits),
        number(s.max, digits)
    )
}

fn number(v: f64, digits: usize) -> String {
    format!("{v:.digits$}")
}

/// The terminal table: one line per cell, medians with min–max over its runs.
pub fn render_table(cells: &[Cell], stats: &[CellStats]) -> String {
    let header = [
        "cell",
        "runs",
        "tx/s median (min–max)",
        "p50 ms",
        "p99 ms",
        "view changes",
        "safety",
    ];
    let rows: Vec<[String; 7]> = cells
        .iter()
        .zip(stats)
        .map(|(c, s)| {
            [
                c.label.clone(),
                s.runs.to_string(),
                spread_text(&s.tps, 0),
                spread_text(&s.p50_ms, 2),
                spread_text(&s.p99_ms, 2),
                spread_text(&s.view_changes, 0),
                if s.agreed { "ok" } else { "FAIL" }.to_string(),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cols: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, (text, w)) in cols.iter().zip(&widths).enumerate() {
            let pad = w - text.chars().count();
            if i == 0 {
                out.push_str(text);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str("   ");
                out.push_str(&" ".repeat(pad));
                out.push_str(text);
            }
        }
        out.trim_end().to_string()
    };
    let mut table = line(header.to_vec());
    table.push('\n');
    for row in &rows {
        table.push_str(&line(row.iter().map(String::as_str).collect()));
        table.push('\n');
    }
    table
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Empty for NaN, so spreadsheets see a missing value.
fn value(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        String::new()
    }
}

/// The axes columns of a cell: every cell's plan, so the CSV is self-describing.
fn axis_columns(cell: &Cell) -> [String; 8] {
    let c = &cell.cluster;
    [
        c.protocol_variant(),
        c.vm.clone(),
        c.executor.clone(),
        c.workload.clone(),
        c.zipf.to_string(),
        c.replicas.to_string(),
        c.batch_size.to_string(),
        c.signed_all.to_string(),
    ]
}

const AXIS_HEADER: &str = "protocol,vm,executor,workload,zipf,replicas,batch_size,signed_all";

/// `compare.csv`: one line per cell — its label and settings, runs, then median, min
/// and max of tx/s, p50, p99 and view changes, and whether every run agreed.
pub fn render_csv(cells: &[Cell], stats: &[CellStats]) -> String {
    let mut csv = format!("cell,{AXIS_HEADER},runs");
    for figure in ["tps", "p50_ms", "p99_ms", "view_changes"] {
        for part in ["median", "min", "max"] {
            let _ = write!(csv, ",{figure}_{part}");
        }
    }
    csv.push_str(",agreed\n");
    for (cell, s) in cells.iter().zip(stats) {
        let mut line = vec![field(&cell.label)];
        line.extend(axis_columns(cell).iter().map(|v| field(v)));
        line.push(s.runs.to_string());
        for spread in [&s.tps, &s.p50_ms, &s.p99_ms, &s.view_changes] {
            line.extend([value(spread.median), value(spread.min), value(spread.max)]);
        }
        line.push(s.agreed.to_string());
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    csv
}

/// `runs.csv`: one line per run in the order they ran, with its results folder.
pub fn render_runs_csv(cells: &[Cell], runs: &[RunRow]) -> String {
    let mut csv = format!(
        "order,cell,{AXIS_HEADER},run,end_to_end_tps,p50_ms,p99_ms,view_changes,agreed,results\n"
    );
    for (i, run) in runs.iter().enumerate() {
        let cell = &cells[run.cell];
        let s = &run.summary;
        let mut line = vec![(i + 1).to_string(), field(&cell.label)];
        line.extend(axis_columns(cell).iter().map(|v| field(v)));
        line.extend([
            (run.round + 1).to_string(),
            value(s.throughput.end_to_end_tps),
            value(s.latency_ms.p50),
            value(s.latency_ms.p99),
            s.consensus.view_changes.to_string(),
            s.safety.agreed.to_string(),
            field(&run.dir.display().to_string()),
        ]);
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_run::sample_summary;

    #[test]
    fn spreads_take_the_median_and_range_of_finite_values() {
        let s = Spread::of([3.0, 1.0, f64::NAN, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let even = Spread::of([4.0, 1.0, 2.0, 3.0]);
        assert_eq!(even.median, 2.5);
        assert!(Spread::of([f64::INFINITY]).median.is_nan());
        assert!(Spread::of(std::iter::empty()).min.is_nan());
    }

    #[test]
    fn table_and_csv_show_median_and_range_per_cell() {
        let spec: super::super::CompareSpec =
            toml::from_str("[matrix]\nexecutors = [\"sequential\", \"block-stm\"]").unwrap();
        let cells = spec
            .cells(std::path::Path::new("t"), std::path::Path::new("o"))
            .unwrap();
        let mut slow = sample_summary();
        slow.throughput.end_to_end_tps = 10_000.0;
        let mut broken = sample_summary();
        broken.safety.agreed = false;
        broken.latency_ms.p50 = f64::NAN;
        let stats = vec![
            CellStats::of([sample_summary(), slow].iter()),
            CellStats::of([broken].iter()),
        ];
        let table = render_table(&cells, &stats);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("cell "), "{table}");
        assert!(lines[1].starts_with("sequential "), "{table}");
        assert!(lines[1].contains("11173 (10000–12345)"), "{table}");
        assert!(lines[1].ends_with("ok"), "{table}");
        assert!(
            lines[2].contains("n/a") && lines[2].ends_with("FAIL"),
            "{table}"
        );

        let csv = render_csv(&cells, &stats);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        let columns = lines[0].split(',').count();
        assert_eq!(columns, 1 + 8 + 1 + 12 + 1);
        assert!(
            lines.iter().all(|l| l.split(',').count() == columns),
            "{csv}"
        );
        assert!(
            lines[1].starts_with(
                "sequential,pbft,ledger,sequential,dex,0,4,1024,false,2,11172.7,10000,12345.4,"
            ),
            "{csv}"
        );
        assert!(lines[2].ends_with(",false"), "{csv}");
    }
}
