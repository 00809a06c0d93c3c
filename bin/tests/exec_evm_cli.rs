//! `tandem exec --vm evm` end to end: every executor prints the same receipts
//! (status, gas, logs) and digest for a generated EVM file, and a malformed entry
//! is refused naming the file, entry and field.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn tandem(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .output()
        .expect("run tandem")
}

/// `tandem exec --vm evm ARGS…`, which must succeed (the arguments and stderr
/// shown if not).
fn exec_evm(args: &[&str]) -> std::process::Output {
    let out = tandem(&[&["exec", "--vm", "evm"], args].concat());
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn evm_executors_agree_on_a_generated_file() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = write(
        dir.path(),
        "genesis.json",
        r#"{"workload": {"kind": "uniswap", "accounts": 30, "instances": 2, "zipf": 0.8, "seed": 3}}"#,
    );
    let emitted = exec_evm(&["--genesis", &genesis, "--emit-txs", "120"]);
    let txs = write(
        dir.path(),
        "txs.json",
        &String::from_utf8(emitted.stdout).unwrap(),
    );
    let mut seen: Option<(Value, Value)> = None;
    for executor in ["sequential", "block-stm", "access-list", "auto"] {
        let out = exec_evm(&[
            "--genesis",
            &genesis,
            "--txs",
            &txs,
            "--executor",
            executor,
            "--threads",
            "2",
            "--batch-size",
            "50",
        ]);
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["executor"], executor);
        let receipts = json["receipts"].as_array().unwrap();
        assert_eq!(receipts.len(), 120);
        assert_eq!(json["batches"].as_array().unwrap().len(), 3);
        let ok = receipts.iter().filter(|r| r["status"] == "success").count();
        assert!(ok >= 110, "{executor}: only {ok} of 120 succeeded");
        // A swap moves two tokens and syncs the pair: logs with topics and data.
        assert!(receipts[0]["gas_used"].as_u64().unwrap() > 21_000);
        assert!(!receipts[0]["logs"].as_array().unwrap().is_empty());
        let got = (json["receipts"].clone(), json["digest"].clone());
        match &seen {
            None => seen = Some(got),
            Some(first) => assert_eq!(first, &got, "{executor} differs from sequential"),
        }
    }
}

/// `evm-mixed` (every EVM workload in one stream) from a genesis file: Block-STM
/// gives sequential's receipts and digest, and every part's calls succeed.
#[test]
fn evm_mixed_runs_through_exec() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = write(
        dir.path(),
        "genesis.json",
        r#"{"workload": {"kind": "evm-mixed", "accounts": 24, "instances": 1, "zipf": 0.5, "seed": 4}}"#,
    );
    let emitted = exec_evm(&["--genesis", &genesis, "--emit-txs", "100"]);
    let txs = write(
        dir.path(),
        "txs.json",
        &String::from_utf8(emitted.stdout).unwrap(),
    );
    let run = |executor: &str| -> Value {
        let out = exec_evm(&[
            "--genesis",
            &genesis,
            "--txs",
            &txs,
            "--executor",
            executor,
            "--threads",
            "2",
        ]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let sequential = run("sequential");
    let block_stm = run("block-stm");
    assert_eq!(sequential["receipts"], block_stm["receipts"]);
    assert_eq!(sequential["digest"], block_stm["digest"]);
    let receipts = sequential["receipts"].as_array().unwrap();
    let ok = receipts.iter().filter(|r| r["status"] == "success").count();
    assert!(ok >= 95, "only {ok} of 100 succeeded");
}

#[test]
fn evm_malformed_entry_names_the_file_entry_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = write(
        dir.path(),
        "g.json",
        r#"{"workload": {"kind": "erc20", "accounts": 4}}"#,
    );
    let txs = write(
        dir.path(),
        "bad.json",
        r#"[{"from": 1, "to": "token:0", "nonce": 0, "gas_limit": 100000, "call": "transfer(address,uint256)", "args": [2, "5"]},
            {"from": 1, "to": "token:0", "nonce": 1, "gas_limit": 100000, "call": "transfer(address,uint256)", "args": [2, "five"]}]"#,
    );
    let out = tandem(&["exec", "--vm", "evm", "--genesis", &genesis, "--txs", &txs]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.json: entry 1, line 2: field `args[1]`"),
        "{err}"
    );
    let lines = write(
        dir.path(),
        "bad.jsonl",
        "{\"from\": 1, \"to\": \"token:0\", \"nonce\": 0, \"gas_limit\": 100000}\n{\"from\": 1, \"to\": \"token:7\", \"nonce\": 1, \"gas_limit\": 100000}\n",
    );
    let out = tandem(&[
        "exec",
        "--vm",
        "evm",
        "--genesis",
        &genesis,
        "--txs",
        &lines,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl: entry 1, line 2: field `to`: the genesis has no token:7"),
        "{err}"
    );
}

/// A secp256k1 genesis: emitted transactions are `{"raw": …}`, every executor gives
/// the same receipts; a tampered signature never runs as its signer (a flipped bit
/// of s recovers another key or none: the same receipt on every executor), and an
/// unsigned entry is refused.
#[test]
fn evm_signed_files_run_and_bad_signatures_are_refused_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = write(
        dir.path(),
        "genesis.json",
        r#"{"workload": {"kind": "erc20", "accounts": 20, "seed": 4}, "auth": "secp256k1"}"#,
    );
    let emitted = exec_evm(&["--genesis", &genesis, "--emit-txs", "30"]);
    let mut entries: Vec<Value> = serde_json::from_slice(&emitted.stdout).unwrap();
    assert!(entries.iter().all(|e| e["raw"].is_string()));
    // Both forms: legacy (an RLP list, 0xf8…) and EIP-1559 (0x02 ‖ …).
    let forms: Vec<&str> = entries
        .iter()
        .map(|e| &e["raw"].as_str().unwrap()[..4])
        .collect();
    assert!(
        forms.contains(&"0xf8") && forms.contains(&"0x02"),
        "{forms:?}"
    );
    // Entry 4: flip a bit of s (the last byte of the signed bytes).
    let raw = entries[4]["raw"].as_str().unwrap().to_string();
    let last = u8::from_str_radix(&raw[raw.len() - 2..], 16).unwrap() ^ 1;
    entries[4]["raw"] = Value::from(format!("{}{last:02x}", &raw[..raw.len() - 2]));
    let txs = write(
        dir.path(),
        "txs.json",
        &serde_json::to_string(&entries).unwrap(),
    );
    let mut seen: Option<Value> = None;
    for executor in ["sequential", "block-stm", "access-list"] {
        let out = exec_evm(&[
            "--genesis",
            &genesis,
            "--txs",
            &txs,
            "--executor",
            executor,
            "--threads",
            "2",
        ]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let receipts = v["receipts"].as_array().unwrap();
        // Another s: it either recovers another key (whose nonce and funds do not
        // fit) or none, or is high; never the sender's success.
        assert_ne!(receipts[4]["status"], "success", "{executor}");
        assert!(
            receipts[0]["status"] == "success",
            "{executor}: {:?}",
            receipts[0]
        );
        if let Some(first) = &seen {
            assert_eq!(first, &(v["receipts"].clone()), "{executor}");
        }
        seen = Some(v["receipts"].clone());
    }
    // Under a base fee of 2.5 gwei the legacy entries (the workloads' gas price,
    // 2 gwei) are refused; the type-2 ones (max fee 3 gwei) are not refused for
    // their fees.
    let out = exec_evm(&[
        "--genesis",
        &genesis,
        "--txs",
        &txs,
        "--base-fee",
        "2500000000",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let receipts = v["receipts"].as_array().unwrap();
    for (i, (entry, receipt)) in entries.iter().zip(receipts).enumerate() {
        if i == 4 {
            continue; // its signature may fail first
        }
        let below = receipt["status"] == "max fee below the block's base fee";
        assert_eq!(
            below,
            entry["raw"].as_str().unwrap().starts_with("0xf8"),
            "{receipt}"
        );
    }
    // An unsigned entry under secp256k1 is refused.
    let unsigned = write(
        dir.path(),
        "unsigned.json",
        r#"[{"from": 1, "to": 2, "nonce": 0, "gas_limit": 21000}]"#,
    );
    let out = tandem(&[
        "exec",
        "--vm",
        "evm",
        "--genesis",
        &genesis,
        "--txs",
        &unsigned,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unsigned"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
