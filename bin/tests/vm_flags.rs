//! The VM's flags on `tandem local`, `keygen` and `client` (issue 15 item 6): the gas
//! bounds `--max-tx-gas` / `--max-batch-gas` reach the cluster file, and a flag that
//! does not fit the VM — the EVM's gas bounds on the ledger, the ledger's `--payload`,
//! `--work`, `--signed-txs` or executor `none` on the EVM — is refused naming it,
//! before anything starts.

use std::process::Command;

fn tandem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
}

/// Runs tandem with `args`; it must fail quickly with `want` in its error.
fn refused(args: &[&str], want: &str) {
    let out = tandem().args(args).output().expect("tandem runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(want),
        "{args:?} should be refused with `{want}`:\n{stderr}"
    );
}

#[test]
fn local_refuses_flags_that_do_not_fit_the_vm() {
    let results = tempfile::tempdir().unwrap();
    let results = results.path().to_str().unwrap();
    for (args, want) in [
        (
            &["--vm", "evm", "--payload", "65537"][..],
            "--payload 65537: an EVM request is at most 65536 bytes",
        ),
        (&["--vm", "evm", "--work", "10"], "--work is the ledger's"),
        (
            &["--vm", "evm", "--signed-txs"],
            "--signed-txs signs ledger",
        ),
        (
            &["--vm", "evm", "--executor", "none"],
            "--executor none runs no VM",
        ),
        (
            &["--max-tx-gas", "300000"],
            "--max-tx-gas bounds EVM gas: it needs --vm evm",
        ),
        (
            &["--max-batch-gas", "9000000"],
            "--max-batch-gas bounds EVM gas: it needs --vm evm",
        ),
        (
            &["--vm", "evm", "--max-tx-gas", "1000"],
            "--max-tx-gas 1000 is below the 200000 gas uniswap transactions declare",
        ),
        (
            &[
                "--vm",
                "evm",
                "--max-tx-gas",
                "300000",
                "--max-batch-gas",
                "200000",
            ],
            "--max-batch-gas 200000 is below --max-tx-gas 300000",
        ),
        (
            &["--vm", "evm", "--workload", "dex"],
            "unknown EVM workload `dex`",
        ),
    ] {
        let mut all = vec!["local", "--duration", "2", "--results", results];
        all.extend_from_slice(args);
        refused(&all, want);
    }
    // Nothing ran: no results folder was made.
    assert_eq!(std::fs::read_dir(results).unwrap().count(), 0);
}

#[test]
fn keygen_writes_the_gas_bounds_and_client_refuses_what_the_evm_cannot_send() {
    let dir = tempfile::tempdir().unwrap();
    let out = tandem()
        .args([
            "keygen",
            "--vm",
            "evm",
            "--max-tx-gas",
            "300000",
            "--max-batch-gas",
            "9000000",
            "--accounts",
            "100",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.path().join("cluster.toml")).unwrap()).unwrap();
    let execution = &file["execution"];
    assert_eq!(execution["vm"].as_str(), Some("evm"));
    assert_eq!(execution["max_tx_gas"].as_integer(), Some(300_000));
    assert_eq!(execution["max_batch_gas"].as_integer(), Some(9_000_000));
    assert_eq!(
        file["evm_workload"]["kind"].as_str(),
        Some("uniswap"),
        "--vm evm without --workload: uniswap"
    );

    let cluster = dir.path().join("cluster.toml");
    let key = dir.path().join("c0.key");
    let client = |extra: &[&str], want: &str| {
        let mut args = vec![
            "client",
            "--cluster",
            cluster.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--duration",
            "1",
        ];
        args.extend_from_slice(extra);
        refused(&args, want);
    };
    client(
        &["--payload", "100000"],
        "--payload 100000: the cluster runs the EVM, whose requests are at most 65536 bytes",
    );
    client(
        &["--workload", "erc20"],
        "--workload erc20: the cluster runs the EVM with the `uniswap` genesis",
    );
    let mixed = dir.path().join("mixed");
    let out = tandem()
        .args(["keygen", "--vm", "evm", "--workload", "evm-mixed", "--out"])
        .arg(&mixed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(mixed.join("cluster.toml")).unwrap();
    assert!(text.contains("kind = \"evm-mixed\""), "{text}");
    refused(
        &[
            "keygen",
            "--max-tx-gas",
            "300000",
            "--out",
            dir.path().join("ledger").to_str().unwrap(),
        ],
        "--max-tx-gas bounds EVM gas: it needs --vm evm",
    );
}
