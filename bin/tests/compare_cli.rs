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
    // Without a budget, each of the 4 replicas gets its share of the machine.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = (cpus / 4).max(1);
    assert_eq!(
        lines[0],
        format!(
            "2 cells × 1 runs; VM ledger; CPU budget per replica: none (replicas share \
             every CPU); executor threads per replica: {share}"
        ),
        "{stdout}"
    );
    assert!(lines[1].starts_with("cell"), "{stdout}");
    assert!(
        lines[2].starts_with("sequential") && lines[2].ends_with("ok"),
        "{stdout}"
    );
    assert!(
        lines[3].starts_with("block-stm") && lines[3].ends_with("ok"),
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
    assert!(
        stdout.starts_with("2 cells × 2 runs; VM ledger; CPU budget per replica: none"),
        "{stdout}"
    );
    let order: Vec<&str> = stdout
        .lines()
        .skip(1)
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

/// Issue 13 item 3: a comparison runs under a stated CPU budget — its header names
/// it, the threads follow it — and a budget that cannot be met is refused naming the
/// flag, before anything runs.
#[test]
fn a_comparison_states_its_cpu_budget_and_refuses_one_it_cannot_meet() {
    let out = tandem()
        .args([
            "compare",
            "--executors",
            "sequential,block-stm",
            "--cpu-sets",
            "0;0;0;0",
            "--dry-run",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().next().unwrap(),
        "2 cells × 1 runs; VM ledger; CPU budget per replica: sets 0;0;0;0 \
         (sched_setaffinity); executor threads per replica: 1"
    );
    for (args, want) in [
        (
            &["--cpus-per-replica", "0.5"][..],
            "--cpus-per-replica: 0.5 CPU per replica cannot be enforced on the process backend",
        ),
        (
            &["--cpu-sets", "0;1"],
            "--cpu-sets: 2 CPU sets for 4 replicas",
        ),
        (
            &["--cpus-per-replica", "4096"],
            "--cpus-per-replica: 4096 is not a CPU share",
        ),
        (
            &["--cpu-sets", "0;0;0;1023"],
            "--cpu-sets: replica r3's set `1023` names CPU 1023",
        ),
    ] {
        let out = tandem()
            .args(["compare", "--dry-run"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{args:?}: {err}"
        );
    }
}

/// Issue 15 item 6: `--vm evm` compares protocol × executor pairings on the EVM. A
/// dry run lists EVM cells (labels start with `evm`, the header names the VM), a
/// ledger workload or an unknown VM is refused before anything runs, and one short
/// real run writes the VM into `compare.csv` and the run's `summary.json`.
#[test]
fn an_evm_comparison_lists_runs_and_records_its_vm() {
    let out = tandem()
        .args([
            "compare",
            "--vm",
            "evm",
            "--protocols",
            "pbft,hotstuff",
            "--executors",
            "sequential,block-stm",
            "--workloads",
            "uniswap",
            "--dry-run",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("4 cells × 1 runs; VM evm; "),
        "{stdout}"
    );
    assert_eq!(
        lines[1..],
        [
            "  1. evm pbft sequential (run 1)",
            "  2. evm pbft block-stm (run 1)",
            "  3. evm hotstuff sequential (run 1)",
            "  4. evm hotstuff block-stm (run 1)",
        ],
        "{stdout}"
    );
    for (args, want) in [
        (
            &["--vm", "evm", "--workloads", "dex"][..],
            "unknown EVM workload `dex`",
        ),
        (
            &["--vm", "wasm"],
            "--vm: expected ledger or evm, got `wasm`",
        ),
    ] {
        let out = tandem()
            .args(["compare", "--dry-run"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{args:?}: {err}"
        );
    }

    let base = tempfile::tempdir().unwrap();
    let out = tandem()
        .args([
            "compare",
            "--vm",
            "evm",
            "--workloads",
            "erc20",
            "--accounts",
            "200",
            "--pools",
            "1",
            "--rate",
            "300",
            "--duration",
            "3",
            "--warmup",
            "1",
            "--name",
            "evm-cmp",
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
    let dir = std::fs::read_dir(base.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let csv = std::fs::read_to_string(dir.join("compare.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    let column = |name: &str| rows[0].iter().position(|h| *h == name).unwrap();
    assert_eq!(rows[1][0], "evm", "{csv}");
    assert_eq!(rows[1][column("vm")], "evm", "{csv}");
    assert_eq!(rows[1][column("workload")], "erc20", "{csv}");
    assert!(
        rows[1][column("tps_median")].parse::<f64>().unwrap() > 0.0,
        "{csv}"
    );
    let run = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["parameters"]["vm"], "evm");
    assert_eq!(summary["safety"]["agreed"], true, "{}", summary["safety"]);
}
