//! `tandem local --vm evm`: four replica processes run revm behind consensus on
//! loopback, load clients send Uniswap swaps, and the replicas' checkpoint digests
//! agree; with `--evm-auth secp256k1` the clients sign every swap Ethereum-style
//! and the replicas recover the senders before executing; with `--payload 512`
//! every request is padded to 512 bytes and runs as unpadded.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Runs the cluster with `extra` flags; its summary.json, checked for agreement
/// and mostly successful swaps, and the cluster file the replicas read.
fn run_cluster(extra: &[&str]) -> (Value, String) {
    let base = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "local",
            "--vm",
            "evm",
            "--workload",
            "uniswap",
            "--accounts",
            "200",
            "--pools",
            "1",
            "--duration",
            "4",
            "--warmup",
            "1",
            "--checkpoint-interval",
            "8",
            "--rate",
            "300",
        ])
        .args(extra)
        .arg("--results")
        .arg(base.path())
        .output()
        .expect("tandem runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tandem local failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dirs: Vec<PathBuf> = std::fs::read_dir(base.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1);
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["safety"]["agreed"], Value::Bool(true), "{}", s["safety"]);
    assert!(s["safety"]["digest"].is_string(), "{}", s["safety"]);
    let completed = s["throughput"]["completed_txs"].as_u64().unwrap();
    assert!(completed >= 100, "completed {completed}\n{stdout}");
    assert_eq!(s["parameters"]["vm"], "evm");
    // Every request decoded: each replica's last metrics line counts transactions
    // and no malformed payload.
    for r in 0..4 {
        let metrics =
            std::fs::read_to_string(dirs[0].join(format!("replica-{r}.metrics.jsonl"))).unwrap();
        let last: Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
        let execution = &last["execution"];
        assert_eq!(execution["malformed"], 0, "r{r}: {execution}");
        assert!(
            execution["transactions"].as_u64().unwrap() >= 100,
            "r{r}: {execution}"
        );
    }
    // Swaps succeed: nonces are exact per sender, so few fail (summed over the
    // four replicas).
    let committed = s["throughput"]["committed_txs"].as_u64().unwrap();
    let failed = s["executor"]["failed_txs"].as_u64().unwrap();
    assert!(
        failed * 10 <= committed * 4,
        "failed {failed} of {committed} x 4 replicas"
    );
    let cluster = std::fs::read_to_string(dirs[0].join("cluster.toml")).unwrap();
    (s, cluster)
}

#[test]
fn an_evm_cluster_commits_swaps_and_its_replicas_agree() {
    let (s, _) = run_cluster(&[]);
    assert_eq!(s["parameters"]["evm_auth"], "channel");
}

#[test]
fn an_evm_cluster_with_signed_swaps_recovers_senders_and_agrees() {
    let (s, _) = run_cluster(&["--evm-auth", "secp256k1"]);
    assert_eq!(s["parameters"]["evm_auth"], "secp256k1");
}

/// Fees: under a base fee of 1 gwei and a beneficiary of the cluster file, the
/// signed workload's legacy (2 gwei) and type-2 (max fee 3 gwei) swaps pay and
/// succeed, and the replicas agree on the state, the beneficiary's credits in it.
#[test]
fn an_evm_cluster_charging_fees_agrees() {
    let (s, cluster) = run_cluster(&[
        "--evm-auth",
        "secp256k1",
        "--base-fee",
        "1000000000",
        "--beneficiary",
        "0xbebebebebebebebebebebebebebebebebebebebe",
    ]);
    assert_eq!(s["parameters"]["evm_base_fee"], 1_000_000_000u64);
    assert!(cluster.contains("evm_base_fee = 1000000000"), "{cluster}");
    assert!(
        cluster.contains("evm_beneficiary = \"0xbebebebebebebebebebebebebebebebebebebebe\""),
        "{cluster}"
    );
}

/// Padded requests (signed, so both transaction types) decode on every replica:
/// none is malformed, the swaps succeed as unpadded ones do.
#[test]
fn an_evm_cluster_with_padded_requests_runs_them_as_unpadded() {
    let (s, _) = run_cluster(&["--evm-auth", "secp256k1", "--payload", "512"]);
    assert_eq!(s["parameters"]["payload_bytes"], 512);
}
