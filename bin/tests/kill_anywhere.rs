//! Kill-anywhere with the write-ahead log: replica processes (the primary too) are
//! SIGKILLed under load and restarted from their logs; the cluster finishes the load,
//! every request completes, the replicas' state digests agree and no acknowledged
//! request is missing from any replica. Bounded: one 12-second `tandem local` run per
//! protocol (PBFT, HotStuff).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn run_local(base: &Path, args: &[&str]) -> (PathBuf, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("local")
        .args(args)
        .arg("--results")
        .arg(base)
        .output()
        .expect("tandem runs");
    assert!(
        out.status.success(),
        "tandem local failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .expect("a results folder");
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    (dir, serde_json::from_str(&summary).unwrap())
}

#[test]
fn backup_and_primary_killed_under_load_restart_from_their_logs() {
    killed_under_load_restart_from_their_logs("pbft", [2, 0]);
}

/// The same with HotStuff (whose logs compact at stable checkpoints too): two
/// replicas, each a leader in turn, SIGKILLed under load and restarted from their logs.
#[test]
fn hotstuff_replicas_killed_under_load_restart_from_their_logs() {
    killed_under_load_restart_from_their_logs("hotstuff", [2, 1]);
}

/// One 12-second `tandem local` run of `protocol` with `--durability wal`: replica
/// `killed[0]` SIGKILLed at 3 s and restarted at 5 s, `killed[1]` at 6 s and 8 s.
fn killed_under_load_restart_from_their_logs(protocol: &str, killed: [u32; 2]) {
    let base = tempfile::tempdir().unwrap();
    let [a, b] = killed;
    let (kill_a, restart_a) = (format!("r{a}@3"), format!("r{a}@5"));
    let (kill_b, restart_b) = (format!("r{b}@6"), format!("r{b}@8"));
    let (dir, s) = run_local(
        base.path(),
        &[
            "--protocol",
            protocol,
            "--durability",
            "wal",
            "--duration",
            "12",
            "--warmup",
            "1",
            "--kill",
            &kill_a,
            "--restart",
            &restart_a,
            "--kill",
            &kill_b,
            "--restart",
            &restart_b,
            "--checkpoint-interval",
            "16",
            "--view-timeout-ms",
            "500",
        ],
    );
    assert_eq!(s["safety"]["agreed"], Value::Bool(true), "{}", s["safety"]);
    assert_eq!(
        s["throughput"]["unfinished_txs"].as_u64(),
        Some(0),
        "{}",
        s["throughput"]
    );
    // Nothing acknowledged was lost: every request a client accepted is in the
    // exactly-once table of all four replicas (two of them restarted from disk).
    let a = &s["acknowledged"];
    assert!(a["acknowledged"].as_u64().unwrap_or(0) > 0, "{a}");
    assert_eq!(a["lost"].as_u64(), Some(0), "{a}");
    assert_eq!(a["checked"].as_array().map(Vec::len), Some(4), "{a}");
    assert_eq!(a["unanswered"].as_array().map(Vec::len), Some(0), "{a}");
    // Both restarted replicas recovered from their logs: the line every start logs,
    // logged again by the restart (the log file is appended to), reports records
    // replayed or a snapshot — the first start's line reports an empty log.
    for i in killed {
        let log = find(&dir, &format!("replica-{i}.log"))
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default();
        let starts: Vec<&str> = log.lines().filter(|l| l.contains(RECOVERED)).collect();
        assert!(starts.len() >= 2, "r{i} did not start twice:\n{log}");
        assert!(
            !replayed(starts[0]),
            "r{i}'s first start has an empty log: {}",
            starts[0]
        );
        let restart = starts[starts.len() - 1];
        assert!(
            replayed(restart),
            "r{i} restarted without replaying its log: {restart}\n{log}"
        );
    }
}

/// What a replica logs at every start with `durability = wal`.
const RECOVERED: &str = "recovered from the write-ahead log";

/// Whether a [`RECOVERED`] line reports records replayed (`records=N`, N > 0) or a
/// snapshot (`snapshot=SEQ`; absent when there was none).
fn replayed(line: &str) -> bool {
    let field = |name: &str| -> Option<u64> {
        let rest = line.split(&format!(" {name}=")).nth(1)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    field("records").is_some_and(|n| n > 0) || field("snapshot").is_some()
}

#[test]
fn the_recovered_line_counts_only_a_replay() {
    let line =
        |fields: &str| format!("2025-01-01T00:00:00Z  INFO tandem::node: {RECOVERED} {fields}");
    assert!(!replayed(&line("records=0")));
    assert!(replayed(&line("records=17")));
    assert!(replayed(&line("records=0 snapshot=32")));
    assert!(!replayed(&line("")), "no field: nothing replayed");
}

/// The first file named `name` under `dir`.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// Issue 12 item 4, "show both", through the acknowledged-loss check: every replica
/// SIGKILLed at once under load and restarted. With the write-ahead log nothing
/// acknowledged is lost; with durability `none` the transactions acknowledged before
/// the crash are missing from every replica, and the check reports them (the scenario
/// expects `acknowledged = "lost"`, so a checker that found nothing would fail it).
/// HotStuff's run with the log (`all-crash-wal-hotstuff`) must lose nothing either.
/// About a minute (the `none` run waits out the check's 15 s patience): run by hand
/// with `cargo test -p tandem --test kill_anywhere -- --ignored`.
#[test]
#[ignore = "two 10-second clusters plus the check's 15 s patience; run by hand"]
fn every_replica_killed_at_once_keeps_what_was_acknowledged_only_with_the_log() {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/scenarios");
    let mut lost = Vec::new();
    for name in ["all-crash-wal", "all-crash-none", "all-crash-wal-hotstuff"] {
        let base = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .arg("run")
            .arg(scenarios.join(format!("{name}.toml")))
            .arg("--results")
            .arg(base.path())
            .output()
            .expect("tandem runs");
        assert!(
            out.status.success(),
            "{name} failed its expectations:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = std::fs::read_dir(base.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .next()
            .expect("a results folder");
        let s: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        let a = &s["acknowledged"];
        eprintln!("{name}: {a}");
        assert!(a["acknowledged"].as_u64().unwrap_or(0) > 0, "{name}: {a}");
        assert_eq!(
            a["checked"].as_array().map(Vec::len),
            Some(4),
            "{name}: {a}"
        );
        lost.push(a["lost"].as_u64().unwrap());
    }
    assert_eq!(lost[0], 0, "with the log nothing is lost");
    assert!(
        lost[1] > 0,
        "without it the acknowledged transactions are gone"
    );
    assert_eq!(lost[2], 0, "HotStuff: with the log nothing is lost");
}
