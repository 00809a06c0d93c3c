//! Scenario files end to end: `tandem run` on real clusters of processes on 127.0.0.1.
//! Three short checked-in scenarios (no faults, a primary crash, a partition that
//! heals) must meet their expectations; an impossible expectation must fail the run
//! with exit status 1 and name itself; every checked-in scenario must pass `--check`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// One cluster at a time: the machine is small and the runs measure throughput.
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn tandem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../experiments/scenarios")
        .canonicalize()
        .expect("experiments/scenarios exists")
}

fn run_scenario(path: &Path) -> (Output, tempfile::TempDir) {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let results = tempfile::tempdir().unwrap();
    let out = tandem()
        .arg("run")
        .arg(path)
        .arg("--results")
        .arg(results.path())
        .output()
        .expect("tandem runs");
    (out, results)
}

fn assert_passes(name: &str) {
    let (out, results) = run_scenario(&scenarios_dir().join(format!("{name}.toml")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scenario {name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("expectations:"), "{stdout}");
    let dir = std::fs::read_dir(results.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["scenario"]["seed"], 1);
    assert_eq!(
        summary["scenario"]["sha256"].as_str().map(str::len),
        Some(64)
    );
    assert!(summary["machine"]["cores"].as_u64().unwrap() >= 1);
    // The acknowledged-loss check ran and found nothing missing.
    let a = &summary["acknowledged"];
    assert!(a["acknowledged"].as_u64().unwrap_or(0) > 0, "{a}");
    assert_eq!(a["lost"].as_u64(), Some(0), "{a}");
    assert!(
        summary["expectations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "acknowledged"),
        "acknowledged = \"kept\" is checked by default"
    );
    assert!(
        summary["expectations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["passed"] == true)
    );
}

#[test]
fn baseline_meets_its_expectations() {
    assert_passes("baseline");
}

#[test]
fn primary_crash_meets_its_expectations() {
    assert_passes("primary-crash");
}

#[test]
fn a_partition_that_heals_meets_its_expectations() {
    assert_passes("partition-minority");
}

#[test]
fn an_impossible_expectation_fails_the_run_and_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("impossible.toml");
    std::fs::write(
        &path,
        "[cluster]\nexecutor = \"none\"\n[load]\nclients = 1\nrate = 500\nduration = 4\nwarmup = 1\n[expect]\nmin_tps = 1000000000\n",
    )
    .unwrap();
    let (out, _results) = run_scenario(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("1 expectation(s) failed")
            && stderr.contains("min_tps: expected >= 1000000000 tx/s, got"),
        "{stderr}"
    );
}

#[test]
fn every_checked_in_scenario_passes_check() {
    let files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert!(files.len() >= 3, "{files:?}");
    let out = tandem()
        .args(["run", "--check"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.contains(": ok")).count(),
        files.len()
    );

    let bad = tempfile::tempdir().unwrap();
    let path = bad.path().join("bad.toml");
    std::fs::write(
        &path,
        "[load]\nduration = 5\n[[fault]]\nat = 1\naction = \"explode\"\n",
    )
    .unwrap();
    let out = tandem()
        .args(["run", "--check"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.toml") && stderr.contains("explode"),
        "{stderr}"
    );
}

/// `[cluster] backend` picks the backend and `--backend` overrides it for every file;
/// an unknown backend, in the file or on the command line, is an error naming the ones
/// there are (the file's error also names the line and field).
#[test]
fn the_backend_comes_from_the_file_or_the_command_line() {
    let file = scenarios_dir().join("docker-crash-isolate.toml");
    let check = |extra: &[&str]| {
        let out = tandem()
            .args(["run", "--check"])
            .args(extra)
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, _) = check(&[]);
    assert!(ok && stdout.contains("4 replicas on docker"), "{stdout}");
    let (ok, stdout, _) = check(&["--backend", "process"]);
    assert!(ok && stdout.contains("4 replicas on process"), "{stdout}");
    let (ok, _, stderr) = check(&["--backend", "vm"]);
    assert!(
        !ok && stderr.contains("unknown backend `vm`; available: process, docker"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad-backend.toml");
    std::fs::write(
        &bad,
        "[cluster]\nreplicas = 4\nbackend = \"vm\"\n[load]\nduration = 5\n",
    )
    .unwrap();
    let out = tandem()
        .args(["run", "--check"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad-backend.toml")
            && stderr.contains("line 3")
            && stderr.contains("field `backend`")
            && stderr.contains("available: process, docker"),
        "{stderr}"
    );
}
