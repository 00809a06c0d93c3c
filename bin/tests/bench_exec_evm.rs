//! `tandem bench-exec --vm evm` end to end at a tiny size: the table has its columns
//! (gas/s included), the sequential revm baseline and one row per executor × thread
//! count for each workload, independent instances (`NAME@N`) and `evm-mixed` included,
//! and every executor ended at sequential revm's digest (the command fails otherwise);
//! with `--auth channel,secp256k1`, the same rows again for signed transactions.

use std::process::Command;

#[test]
fn bench_exec_evm_prints_speedups_with_gas() {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "bench-exec",
            "--vm",
            "evm",
            "--workloads",
            "erc20,uniswap@4,evm-mixed@2",
            "--threads",
            "1,2",
            "--batch",
            "40",
            "--batches",
            "2",
            "--rounds",
            "1",
            "--accounts",
            "20",
            "--auth",
            "channel,secp256k1",
        ])
        .output()
        .expect("run tandem");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = stdout
        .lines()
        .find(|l| l.starts_with("workload"))
        .unwrap_or_else(|| panic!("no table header:\n{stdout}"));
    let columns: Vec<&str> = header.split_whitespace().collect();
    for column in [
        "executor",
        "threads",
        "tx/s",
        "Mgas/s",
        "µs/tx",
        "speedup",
        "aborts/tx",
    ] {
        assert!(columns.contains(&column), "{column} missing: {header}");
    }
    for workload in [
        "erc20",
        "uniswap@4",
        "evm-mixed@2",
        "erc20/secp256k1",
        "uniswap@4/secp256k1",
        "evm-mixed@2/secp256k1",
    ] {
        let rows: Vec<Vec<&str>> = stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|cells| cells.first() == Some(&workload))
            .collect();
        let labels: Vec<(&str, &str)> = rows.iter().map(|r| (r[1], r[2])).collect();
        assert_eq!(
            labels,
            [
                ("revm", "1"),
                ("sequential", "1"),
                ("block-stm", "1"),
                ("block-stm", "2"),
                ("access-list", "1"),
                ("access-list", "2"),
                ("auto", "1"),
                ("auto", "2"),
            ],
            "{stdout}"
        );
        // The baseline's speedup is 1 by definition; every row has gas/s.
        assert_eq!(rows[0][6], "1.00x", "{stdout}");
        for row in &rows {
            let mgas: f64 = row[4].parse().unwrap();
            assert!(mgas > 0.0, "{stdout}");
            assert!(row[6].ends_with('x'), "{stdout}");
        }
    }
}

/// A genesis that would seed millions of (account, home instance) pairs is
/// refused at once, naming the way out (each account is seeded in two of the 64
/// pairs: 2 million).
#[test]
fn bench_exec_evm_refuses_a_huge_genesis() {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "bench-exec",
            "--vm",
            "evm",
            "--workloads",
            "uniswap@64",
            "--accounts",
            "1000000",
        ])
        .output()
        .expect("run tandem");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fewer --accounts"), "{stderr}");
}
