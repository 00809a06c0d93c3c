//! A client key run twice against one hand-started cluster (README "A cluster by
//! hand"): `tandem client` numbers its requests from 1 every run, while the replicas
//! remember the numbers the first run used. The second run must still get its work
//! done — on the ledger and on the EVM, and after the replicas restarted between the
//! runs. Before stale numbers were answered, its requests were taken as done: it
//! completed nothing (or, with a short first run, only what it numbered past the
//! first run's numbers). Each run now starts with a marks query and numbers past what
//! f+1 replicas hold done (`skipped` on its outcomes line).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

mod hand_cluster;
use hand_cluster::{Replicas, free_addresses};

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn tandem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("tandem runs");
    assert!(
        out.status.success(),
        "tandem failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `tandem keygen` with `flags` into `dir`, then its four replicas.
fn start_cluster(dir: &Path, flags: &[&str]) -> Replicas {
    keygen(dir, flags);
    start_replicas(dir)
}

/// `tandem keygen` with `flags` into `dir` (four replicas on free loopback addresses).
fn keygen(dir: &Path, flags: &[&str]) {
    let addresses = free_addresses(4).join(",");
    run_ok(
        tandem()
            .arg("keygen")
            .args(flags)
            .args(["--checkpoint-interval", "16", "--addresses", &addresses])
            .arg("--out")
            .arg(dir),
    );
}

/// The four replicas of the cluster file in `dir`.
fn start_replicas(dir: &Path) -> Replicas {
    let cluster = dir.join("cluster.toml");
    let mut replicas = Replicas(Vec::new());
    for i in 0..4 {
        let child = tandem()
            .arg("replica")
            .arg("--cluster")
            .arg(&cluster)
            .args(["--id", &i.to_string()])
            .arg("--key")
            .arg(dir.join(format!("r{i}.key")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        replicas.0.push(child);
    }
    replicas
}

/// Runs `tandem client` under `key` for 3 s (32 outstanding) with `flags`: the
/// completed, applied, unfinished, renumbered and skipped counts it printed, and its
/// output.
/// A client keeps 32 outstanding and numbers nothing 32 or more above its oldest
/// outstanding request, so completing more than 64 means the requests it numbered
/// again completed (a stuck one would hold everything behind it); what is still
/// unfinished after the 2 s drain is not asserted, since a loaded machine may need
/// longer.
fn client_run(dir: &Path, key: &str, flags: &[&str]) -> (u64, u64, u64, u64, u64, String) {
    let out = run_ok(
        tandem()
            .arg("client")
            .arg("--cluster")
            .arg(dir.join("cluster.toml"))
            .arg("--key")
            .arg(dir.join(key))
            .args(["--duration", "3", "--warmup", "0", "--window", "32"])
            .args(flags),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let count = |name: &str| -> u64 {
        let at = words
            .iter()
            .position(|w| *w == name)
            .unwrap_or_else(|| panic!("no {name} in:\n{stdout}"));
        words[at + 1].parse().unwrap()
    };
    (
        count("completed"),
        count("applied"),
        count("unfinished"),
        count("renumbered"),
        count("skipped"),
        stdout,
    )
}

/// The ledger: the second run under the same key completes and applies as the
/// first did (the ledger's load client takes its nonces from the clock, so the
/// same sender accounts serve both runs).
#[test]
fn a_ledger_client_key_run_twice_gets_its_work_done_both_times() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let _replicas = start_cluster(dir.path(), &["--clients", "1", "--accounts", "1000"]);
    let (first, first_applied, _, renumbered, _, out) = client_run(dir.path(), "c0.key", &[]);
    assert!(first > 100 && first_applied > 0, "{out}");
    assert_eq!(renumbered, 0, "{out}");
    let (second, applied, _, _, skipped, out) = client_run(dir.path(), "c0.key", &[]);
    assert!(second > 100, "the second run completed too little:\n{out}");
    assert!(
        skipped > 0,
        "its marks query passed the spent numbers:\n{out}"
    );
    assert!(applied > 0, "{out}");
}

/// The EVM: the second run under the same key, on a sender class the first run did
/// not use (EVM nonces are exact from genesis: README), completes and applies.
#[test]
fn an_evm_client_key_run_twice_gets_its_work_done_both_times() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let _replicas = start_cluster(
        dir.path(),
        &[
            "--clients",
            "1",
            "--vm",
            "evm",
            "--workload",
            "erc20",
            "--accounts",
            "400",
            "--pools",
            "1",
        ],
    );
    let class = |i: &'static str| ["--client-count", "2", "--client-index", i];
    let (first, first_applied, _, _, _, out) = client_run(dir.path(), "c0.key", &class("0"));
    assert!(first > 100 && first_applied > 0, "{out}");
    let (second, applied, _, _, skipped, out) = client_run(dir.path(), "c0.key", &class("1"));
    assert!(second > 100, "the second run completed too little:\n{out}");
    assert!(
        skipped > 0,
        "its marks query passed the spent numbers:\n{out}"
    );
    assert!(applied > 0, "{out}");
}

/// The replicas are killed and restarted from their logs between the two runs (with a
/// small compaction threshold, so the first run's numbers lie below the snapshot the
/// logs were compacted to and no replay re-executes them): the replicas keep the
/// exactly-once table but hold no result under the first run's numbers, and with the
/// default window (65,536) nothing a window above them is done, so no stale-number
/// notice witnesses anything. The second run asks for its marks first and numbers past
/// them. Before the marks query it stalled at its first 32 requests (completed 0).
#[test]
fn a_client_key_run_again_after_the_replicas_restarted_gets_its_work_done() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--clients",
        "1",
        "--accounts",
        "1000",
        "--durability",
        "wal",
    ];
    keygen(dir.path(), &flags);
    let cluster = dir.path().join("cluster.toml");
    let text = std::fs::read_to_string(&cluster).unwrap();
    let compact = text
        .lines()
        .find(|l| l.trim_start().starts_with("compact_bytes"))
        .unwrap_or_else(|| panic!("no compact_bytes in:\n{text}"))
        .to_string();
    std::fs::write(&cluster, text.replace(&compact, "compact_bytes = 65536")).unwrap();
    let replicas = start_replicas(dir.path());
    let (first, first_applied, _, _, _, out) = client_run(dir.path(), "c0.key", &[]);
    assert!(first > 100 && first_applied > 0, "{out}");
    drop(replicas);
    let _replicas = start_replicas(dir.path());
    let (second, applied, _, _, skipped, out) = client_run(dir.path(), "c0.key", &[]);
    assert!(second > 100, "the second run completed too little:\n{out}");
    assert!(
        skipped > 0,
        "it numbered past the first run's numbers:\n{out}"
    );
    assert!(applied > 0, "{out}");
}
