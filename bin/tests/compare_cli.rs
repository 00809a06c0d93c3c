//! End-to-end test of `tandem compare`: a real 2-cell matrix, one short run per cell,
//! through the same runner as `tandem local`; the table, CSVs, charts and every run's
//! results folder.

use std::path::PathBuf;
use std::process::Command;

fn tandem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
}

#[test]
fn a_two_cell_comparison_runs_each_cell_and_writes_its_folder() {
    let base = tempfile::tempdir().unwrap();
    let out = tandem()
        .args([
            "compare",
            "--executors",
            "sequential,block-stm",
            "--workloads",
            "transfer",
            "--duration",
            "3",
            "--warmup",
            "1",
            "--accounts",
            "1000",
            "--name",
            "cmp",
        ])
        .arg("--results")
        .arg(base.path())
        .output()
        .expect("tandem runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("cell"), "{stdout}");
    assert!(
        lines[1].starts_with("sequential") && lines[1].ends_with("ok"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("block-stm") && lines[2].ends_with("ok"),
        "{stdout}"
    );

    let dirs: Vec<PathBuf> = std::fs::read_dir(base.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one comparison folder: {dirs:?}");
    let dir = &dirs[0];
    for file in [
        "compare.csv",
        "runs.csv",
        "compare-throughput.svg",
        "compare-p99.svg",
    ] {
        assert!(dir.join(file).exists(), "{file} missing");
    }
    let csv = std::fs::read_to_string(dir.join("compare.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    let tps = rows[0].iter().position(|h| *h == "tps_median").unwrap();
    for row in &rows[1..] {
        let v: f64 = row[tps].parse().unwrap();
        assert!(v > 0.0, "{csv}");
    }
    // Each run's own results folder sits inside the comparison's.
    let runs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r.join("summary.json").exists()));
}

#[test]
fn a_dry_run_lists_the_interleaved_order_and_bad_axes_are_refused() {
    let out = tandem()
        .args([
            "compare",
            "--executors",
            "sequential,block-stm",
            "--repeat",
            "2",
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let order: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_once(". ").unwrap().1)
        .collect();
    assert_eq!(
        order,
        [
            "sequential (run 1)",
            "block-stm (run 1)",
            "sequential (run 2)",
            "block-stm (run 2)"
        ]
    );
    let bad = tandem()
        .args(["compare", "--workloads", "dex,nope", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("workload"));
}
