//! `tandem exec` end to end: every executor prints the same receipts and digest
//! for a generated file, and malformed files fail with the file, entry and field.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn tandem(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .output()
        .expect("run tandem")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn executors_agree_on_a_generated_file() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = write(
        dir.path(),
        "genesis.json",
        r#"{"workload": {"kind": "mixed", "accounts": 40, "pools": 2, "markets": 1, "zipf": 1.1, "seed": 9}}"#,
    );
    let emitted = tandem(&["exec", "--genesis", &genesis, "--emit-txs", "400"]);
    assert!(
        emitted.status.success(),
        "{}",
        String::from_utf8_lossy(&emitted.stderr)
    );
    let txs = write(
        dir.path(),
        "txs.json",
        &String::from_utf8(emitted.stdout).unwrap(),
    );
    let mut seen: Option<(Value, Value)> = None;
    for executor in ["sequential", "block-stm", "access-list", "auto"] {
        let out = tandem(&[
            "exec",
            "--genesis",
            &genesis,
            "--txs",
            &txs,
            "--executor",
            executor,
            "--threads",
            "2",
            "--batch-size",
            "150",
        ]);
        assert!(
            out.status.success(),
            "{executor}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["executor"], executor);
        assert_eq!(json["receipts"].as_array().unwrap().len(), 400);
        assert_eq!(json["batches"].as_array().unwrap().len(), 3);
        let got = (json["receipts"].clone(), json["digest"].clone());
        match &seen {
            None => seen = Some(got),
            Some(first) => assert_eq!(first, &got, "{executor} differs from sequential"),
        }
    }
}

#[test]
fn malformed_files_name_the_file_entry_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = write(
        dir.path(),
        "g.json",
        r#"{"balances": [{"account": 1, "token": 0, "amount": 100}]}"#,
    );
    let txs = write(
        dir.path(),
        "bad.json",
        r#"[{"sender": 1, "nonce": 1, "op": "transfer", "to": 2, "token": 0, "amount": 5},
            {"sender": 1, "nonce": 2, "op": "transfer", "to": 2, "token": 0, "amount": -5}]"#,
    );
    let out = tandem(&["exec", "--genesis", &genesis, "--txs", &txs]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.json: entry 1 (transfer), line 2: field `amount`: expected an unsigned integer (a JSON number or a decimal string), got -5"),
        "{err}"
    );
    let bad_genesis = write(dir.path(), "g2.json", r#"{"balances": [{"acount": 1}]}"#);
    let out = tandem(&["exec", "--genesis", &bad_genesis, "--txs", &txs]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("g2.json: balances[0], line 1: unknown field `acount`"),
        "{err}"
    );
    let duplicate = write(
        dir.path(),
        "dup.json",
        "[{\"sender\": 1, \"nonce\": 1, \"op\": \"transfer\", \"to\": 2, \"token\": 0,\n  \"amount\": 1, \"amount\": 500}]",
    );
    let out = tandem(&["exec", "--genesis", &genesis, "--txs", &duplicate]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dup.json: entry 0, line 2: duplicate key `amount`"),
        "{err}"
    );
    let out = tandem(&[
        "exec",
        "--genesis",
        &genesis,
        "--txs",
        &txs,
        "--executor",
        "fast",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown executor `fast`"), "{err}");
}

#[test]
fn receipts_and_state_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = write(
        dir.path(),
        "g.json",
        r#"{"balances": [{"account": 1, "token": 0, "amount": 5000}, {"account": 1, "token": 1, "amount": 5000}],
            "pools": [{"pool": 0, "token0": 0, "token1": 1}]}"#,
    );
    let txs = write(
        dir.path(),
        "t.json",
        r#"[{"sender": 1, "nonce": 1, "op": "add_liquidity", "pool": 0, "token_a": 0, "token_b": 1, "amount_a": 4000, "amount_b": 1000},
            {"sender": 1, "nonce": 2, "op": "swap", "pool": 0, "token_in": 1, "token_out": 0, "amount_in": 100, "min_out": 400},
            {"sender": 1, "nonce": 2, "op": "transfer", "to": 2, "token": 0, "amount": 1}]"#,
    );
    let out = tandem(&["exec", "--genesis", &genesis, "--txs", &txs, "--dump-state"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &json["receipts"];
    // sqrt(4000 * 1000) = 2000 shares, 1000 locked.
    assert_eq!(r[0]["amount"], "1000");
    // 100*997*4000 / (1000*1000 + 99700) = 362.6.. -> 362 < 400: slippage.
    assert_eq!(r[1]["status"], "aborted");
    assert_eq!(r[1]["reason"], "slippage");
    // The swap ran and failed: it used nonce 2, so the transfer with nonce 2 is stale.
    assert_eq!(r[2]["status"], "aborted");
    assert_eq!(r[2]["reason"], "bad_nonce");
    assert_eq!(json["digest"].as_str().unwrap().len(), 64);
    // The dumped state is a genesis: executing nothing from it gives the same digest.
    let dumped = write(dir.path(), "dumped.json", &json["state"].to_string());
    let empty = write(dir.path(), "empty.json", "[]");
    let out = tandem(&["exec", "--genesis", &dumped, "--txs", &empty]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["genesis_digest"], json["digest"]);
    assert!(json["state"]["pools"].as_array().unwrap().len() == 1);
}

/// `work = 4294967295` ran about 9.5 minutes on every replica; it now aborts at
/// once with `cost_limit`, and the batch budget is a flag too.
#[test]
fn over_limit_work_aborts_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = write(
        dir.path(),
        "g.json",
        r#"{"balances": [{"account": 1, "token": 0, "amount": 100}]}"#,
    );
    let txs = write(
        dir.path(),
        "t.json",
        r#"[{"sender": 1, "nonce": 1, "op": "transfer", "to": 2, "token": 0, "amount": 1, "work": 4294967295},
            {"sender": 1, "nonce": 1, "op": "transfer", "to": 2, "token": 0, "amount": 1, "work": 50},
            {"sender": 1, "nonce": 2, "op": "transfer", "to": 2, "token": 0, "amount": 1, "work": 50}]"#,
    );
    let out = tandem(&[
        "exec",
        "--genesis",
        &genesis,
        "--txs",
        &txs,
        "--max-batch-cost",
        "100",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &json["receipts"];
    assert_eq!(r[0]["reason"], "cost_limit");
    assert_eq!(r[1]["status"], "ok");
    assert_eq!(r[2]["reason"], "batch_budget");
    assert_eq!(json["batches"][0]["stats"]["gas"], 70);
}
