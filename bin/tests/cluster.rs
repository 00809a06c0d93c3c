//! End-to-end tests of real clusters: replica processes over QUIC on 127.0.0.1, load
//! clients, a crashed primary, hostile clients, and bad configuration. Each cluster
//! test holds a lock so two clusters never compete for this machine's two cores.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

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

/// The single results folder under `base`.
fn results_folder(base: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one results folder: {dirs:?}");
    dirs[0].clone()
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// Runs `tandem local ARGS --results BASE` to success; returns its results folder
/// and summary.
fn run_local(base: &Path, args: &[&str]) -> (PathBuf, Value) {
    run_ok(tandem().arg("local").args(args).arg("--results").arg(base));
    let dir = results_folder(base);
    let s = summary(&dir);
    (dir, s)
}

#[test]
fn four_replicas_commit_ten_thousand_transactions_and_agree() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let base = tempfile::tempdir().unwrap();
    let (dir, s) = run_local(
        base.path(),
        &[
            "--duration",
            "8",
            "--warmup",
            "1",
            "--checkpoint-interval",
            "16",
        ],
    );
    let completed = s["throughput"]["completed_txs"].as_u64().unwrap();
    assert!(completed >= 10_000, "completed {completed}");
    assert_eq!(s["safety"]["agreed"], Value::Bool(true), "{}", s["safety"]);
    let replicas = s["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 4);
    for r in replicas {
        assert!(
            r["checkpoint_digest"].is_string(),
            "no stable checkpoint: {r}"
        );
        if r["stable_checkpoint"] == s["safety"]["checkpoint"] {
            assert_eq!(r["checkpoint_digest"], s["safety"]["digest"], "{r}");
        }
    }
    for name in [
        "summary.json",
        "timeline.csv",
        "latency.hgrm",
        "throughput.svg",
        "latency.svg",
        "replica-0.log",
        "replica-3.metrics.jsonl",
    ] {
        assert!(dir.join(name).exists(), "{name} missing");
    }
}

/// Issue 13 item 3: a run under CPU sets records each replica's set, its fair share
/// and its executor threads (defaulting to the budget) in `summary.json`, and prints
/// the budget in the parameters line; budgets that cannot be met are refused before
/// anything starts, naming the flag.
#[test]
fn a_budgeted_run_reports_each_replicas_cpu_set_and_threads() {
    let failure = |args: &[&str]| {
        let out = tandem().arg("local").args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    for (args, want) in [
        (
            &["--cpus-per-replica", "0.5"][..],
            "--cpus-per-replica: 0.5 CPU per replica cannot be enforced on the process backend",
        ),
        (
            &["--cpus-per-replica", "64"],
            "4 replicas × 64 CPU = 256 CPUs, but this machine has",
        ),
        (
            &["--cpu-sets", "0;1;0"],
            "--cpu-sets: 3 CPU sets for 4 replicas",
        ),
        (
            &["--cpu-sets", "0;;0;0"],
            "--cpu-sets: set 2 (replica r1): an empty CPU set",
        ),
        (
            &["--cpu-sets", "0;0;0;999"],
            "names CPU 999, but this machine's usable CPUs are",
        ),
    ] {
        let err = failure(args);
        assert!(err.contains(want), "{args:?}: {err}");
    }

    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let two = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    let (sets, expected) = if two {
        ("0;1;0;1", ["0", "1", "0", "1"])
    } else {
        ("0;0;0;0", ["0"; 4])
    };
    let base = tempfile::tempdir().unwrap();
    let out = run_ok(
        tandem()
            .args([
                "local",
                "--duration",
                "3",
                "--warmup",
                "1",
                "--executor",
                "sequential",
                // A stable checkpoint even when a loaded machine delivers few
                // batches in 3 s: without one the digests cannot be compared and
                // the run fails.
                "--checkpoint-interval",
                "16",
            ])
            .args(["--cpu-sets", sets])
            .arg("--results")
            .arg(base.path()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("cpu_budget=sets {sets}")),
        "{stdout}"
    );
    assert!(stdout.contains("threads=1"), "{stdout}");
    let s = summary(&results_folder(base.path()));
    assert_eq!(s["parameters"]["cpu_budget"], format!("sets {sets}"));
    assert_eq!(s["parameters"]["threads"], 1, "threads follow the budget");
    assert_eq!(s["executor"]["threads"], 1);
    assert!(s["throughput"]["completed_txs"].as_u64().unwrap() > 0);
    let replicas = s["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 4);
    let share = if two { 0.5 } else { 0.25 };
    for (r, set) in replicas.iter().zip(expected) {
        let cpu = &r["cpu"];
        assert_eq!(cpu["cpu_set"], set, "{r}");
        assert_eq!(cpu["cpus"], share, "{r}");
        assert_eq!(cpu["cpus_limit"], Value::Null, "{r}");
        assert_eq!(cpu["executor_threads"], 1, "{r}");
        assert_eq!(cpu["enforced_by"], "sched_setaffinity", "{r}");
    }
}

#[test]
fn killing_the_primary_recovers_through_a_view_change_and_finishes_the_load() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let base = tempfile::tempdir().unwrap();
    let (dir, s) = run_local(
        base.path(),
        &[
            "--duration",
            "12",
            "--warmup",
            "1",
            "--kill",
            "r0@4",
            "--checkpoint-interval",
            "16",
            "--view-timeout-ms",
            "500",
        ],
    );
    assert!(
        s["consensus"]["view_changes"].as_u64().unwrap() >= 1,
        "{}",
        s["consensus"]
    );
    assert_eq!(s["safety"]["agreed"], Value::Bool(true), "{}", s["safety"]);
    assert!(
        s["safety"]["detail"]
            .as_str()
            .unwrap()
            .contains("r1, r2, r3")
    );
    let replicas = s["replicas"].as_array().unwrap();
    for r in &replicas[1..] {
        assert!(r["final_view"].as_u64().unwrap() >= 1);
    }
    // Requests kept completing after the kill, in the new view.
    let timeline = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
    let after_kill: f64 = timeline
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            let t: f64 = cols[0].parse().ok()?;
            (t > 7.0).then(|| cols[1].parse::<f64>().unwrap_or(0.0))
        })
        .sum();
    assert!(
        after_kill > 1000.0,
        "completions after the kill: {after_kill}\n{timeline}"
    );
    assert!(timeline.contains("crash r0"));
    // Every request the clients submitted completed.
    assert_eq!(
        s["throughput"]["unfinished_txs"].as_u64(),
        Some(0),
        "{}",
        s["throughput"]
    );
}

fn metrics_of(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// An open-loop client whose requests go unanswered (no replica is running) stops
/// sending once 2 s of its rate is outstanding, and reports what it shed.
#[test]
fn an_open_loop_client_sheds_what_an_unresponsive_cluster_cannot_take() {
    let dir = tempfile::tempdir().unwrap();
    let addresses = free_addresses(4).join(",");
    run_ok(
        tandem()
            .args(["keygen", "--clients", "1", "--addresses", &addresses])
            .arg("--out")
            .arg(dir.path()),
    );
    let out = run_ok(
        tandem()
            .args([
                "client",
                "--rate",
                "1000",
                "--duration",
                "4",
                "--warmup",
                "0",
            ])
            .arg("--cluster")
            .arg(dir.path().join("cluster.toml"))
            .arg("--key")
            .arg(dir.path().join("c0.key")),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let count = |name: &str| -> u64 {
        let at = words.iter().position(|w| *w == name).expect(name);
        words[at + 1].parse().unwrap()
    };
    let (submitted, shed) = (count("submitted"), count("shed"));
    assert!(shed >= 1000, "shed {shed}\n{stdout}");
    assert!(submitted <= 2100, "submitted {submitted}\n{stdout}");
    assert_eq!(count("unfinished"), submitted, "{stdout}");
}

/// A cluster started by hand (keygen, four `tandem replica`, `tandem client`) keeps
/// serving while a client with a valid key sends garbage, replica-protocol frames,
/// requests under another client's id and a control frame (only the launcher's key may
/// send one): each is dropped and counted.
#[test]
fn hand_started_cluster_serves_clients_despite_a_hostile_one() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let addresses = free_addresses(4).join(",");
    run_ok(
        tandem()
            .args([
                "keygen",
                "--clients",
                "2",
                "--checkpoint-interval",
                "16",
                "--addresses",
                &addresses,
            ])
            .arg("--out")
            .arg(dir.path()),
    );
    let cluster = dir.path().join("cluster.toml");
    let mut replicas = Replicas(Vec::new());
    for i in 0..4 {
        let child = tandem()
            .arg("replica")
            .arg("--cluster")
            .arg(&cluster)
            .args(["--id", &i.to_string()])
            .arg("--key")
            .arg(dir.path().join(format!("r{i}.key")))
            .arg("--metrics")
            .arg(dir.path().join(format!("r{i}.jsonl")))
            .args(["--metrics-interval-ms", "200"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        replicas.0.push(child);
    }

    hostile_client(&cluster, &dir.path().join("c1.key"));

    let out = run_ok(
        tandem()
            .arg("client")
            .arg("--cluster")
            .arg(&cluster)
            .arg("--key")
            .arg(dir.path().join("c0.key"))
            .args(["--duration", "4", "--warmup", "1", "--window", "64"]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let completed: u64 = stdout
        .split_whitespace()
        .skip_while(|w| *w != "completed")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no completed count in:\n{stdout}"));
    assert!(completed > 500, "{stdout}");

    std::thread::sleep(Duration::from_millis(500));
    let primary = metrics_of(&dir.path().join("r0.jsonl"));
    assert!(
        primary["network"]["decode_errors"].as_u64().unwrap() >= 2,
        "{}",
        primary["network"]
    );
    assert!(
        primary["network"]["forged_client_ids"].as_u64().unwrap() >= 1,
        "{}",
        primary["network"]
    );
    assert_eq!(
        primary["protocol"]["unauthenticated_requests"].as_u64(),
        Some(1),
        "{}",
        primary["protocol"]
    );
    for i in 0..4 {
        let m = metrics_of(&dir.path().join(format!("r{i}.jsonl")));
        assert_eq!(
            m["network"]["control_refused"].as_u64(),
            Some(1),
            "r{i}: a control frame from a load client's key is refused and counted"
        );
        assert_eq!(m["network"]["control_applied"].as_u64(), Some(0));
        assert_eq!(m["protocol"]["safety_conflicts"].as_u64(), Some(0));
        assert_eq!(m["common"]["conflicting_commits"].as_u64(), Some(0));
        assert!(m["common"]["requests_delivered"].as_u64().unwrap() > 0);
    }
}

/// Connects with a genuine client key and misbehaves.
fn hostile_client(cluster: &Path, key: &Path) {
    let text = std::fs::read_to_string(key).unwrap();
    let pkcs8_hex = text
        .lines()
        .find_map(|l| l.strip_prefix("pkcs8 = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let cluster_text = std::fs::read_to_string(cluster).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let identity =
            tandem_network::Identity::from_pkcs8(&hex::decode(pkcs8_hex).unwrap()).unwrap();
        let membership = membership_from(&cluster_text);
        let (transport, _inbound) = tandem_network::QuicTransport::bind(
            &identity,
            membership,
            "127.0.0.1:0".parse().unwrap(),
            tandem_network::QuicConfig::default(),
        )
        .unwrap();
        let replicas: Vec<_> = (0..4).map(tandem_network::NodeId::Replica).collect();
        assert!(
            tandem_network::wait_until_connected(&transport, &replicas, Duration::from_secs(10))
                .await
        );
        use tandem_network::Transport;
        let r0 = tandem_network::NodeId::Replica(0);
        // Garbage.
        transport.send(r0, Bytes::from_static(b"\xde\xad\xbe\xef garbage"));
        // A replica-protocol message: a client key cannot act as a replica.
        let status = tandem_consensus::pbft::Envelope::plain(
            tandem_consensus::pbft::Message::FetchState(tandem_consensus::Seq(0)),
        );
        transport.send(r0, tandem_network::encode(&status).unwrap());
        // A request under client 0's id, sent by client 1.
        let forged = vec![tandem_consensus::Request::new(
            tandem_consensus::ClientId(0),
            1,
            Bytes::from_static(b"x"),
        )];
        #[derive(serde::Serialize)]
        enum ClientFrame {
            Requests(Vec<tandem_consensus::Request>),
        }
        transport.send(
            r0,
            tandem_network::encode(&ClientFrame::Requests(forged)).unwrap(),
        );
        // A request under its own id without an authenticator (issue 10 item 1): the
        // channel check passes, the replica's MAC check refuses it.
        let unauthenticated = vec![tandem_consensus::Request::new(
            tandem_consensus::ClientId(1),
            1,
            Bytes::from_static(b"x"),
        )];
        transport.send(
            r0,
            tandem_network::encode(&ClientFrame::Requests(unauthenticated)).unwrap(),
        );
        // A control frame isolating every replica: only the launcher's key may send
        // one, so it is refused (and counted) and the cluster keeps serving.
        use tandem_experiments::frames::{ControlCommand, ControlRequest};
        let isolate_all =
            tandem_experiments::frames::ClientFrame::Control(Box::new(ControlRequest {
                nonce: 1,
                command: ControlCommand::SetFaults(tandem_network::FaultRules {
                    isolated: replicas.clone(),
                    ..tandem_network::FaultRules::default()
                }),
            }));
        for r in &replicas {
            transport.send(*r, tandem_network::encode(&isolate_all).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        transport.shutdown().await;
    });
}

fn membership_from(cluster_toml: &str) -> std::sync::Arc<tandem_network::Membership> {
    let v: toml::Value = toml::from_str(cluster_toml).unwrap();
    let mut members = Vec::new();
    for r in v["replica"].as_array().unwrap() {
        members.push(tandem_network::Member {
            id: tandem_network::NodeId::Replica(r["id"].as_integer().unwrap() as u32),
            addr: Some(r["address"].as_str().unwrap().parse().unwrap()),
            public_key: hex::decode(r["public_key"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        });
    }
    for c in v["client"].as_array().unwrap() {
        members.push(tandem_network::Member {
            id: tandem_network::NodeId::Client(c["id"].as_integer().unwrap() as u32),
            addr: None,
            public_key: hex::decode(c["public_key"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        });
    }
    std::sync::Arc::new(tandem_network::Membership::new(members).unwrap())
}

#[test]
fn bad_cluster_and_key_files_are_reported_with_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster.toml");
    std::fs::write(&cluster, "[protocol]\nreplicas = 4\nwindow = 3\n").unwrap();
    let out = tandem()
        .arg("replica")
        .arg("--cluster")
        .arg(&cluster)
        .args(["--id", "0", "--key", "nope.key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cluster.toml") && err.contains("window"),
        "{err}"
    );

    run_ok(
        tandem()
            .args(["keygen", "--clients", "1"])
            .arg("--out")
            .arg(dir.path()),
    );
    std::fs::write(
        dir.path().join("r0.key"),
        "id = \"r0\"\npkcs8 = \"not hex\"\n",
    )
    .unwrap();
    let out = tandem()
        .arg("replica")
        .arg("--cluster")
        .arg(&cluster)
        .args(["--id", "0"])
        .arg("--key")
        .arg(dir.path().join("r0.key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("r0.key") && err.contains("pkcs8"), "{err}");
}

/// Every command that takes a protocol or a Byzantine mode by name checks it: an
/// unknown name is an error listing the known ones, before anything starts.
#[test]
fn protocol_and_byzantine_mode_names_are_checked_at_the_edges() {
    let dir = tempfile::tempdir().unwrap();
    let failure = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{cmd:?} succeeded");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    for args in [
        &["keygen", "--protocol", "raft", "--out", "unused"][..],
        &["local", "--protocol", "raft"],
        &["sim", "--protocol", "raft", "--seeds", "1"],
    ] {
        let err = failure(tandem().args(args));
        assert!(
            err.contains("unknown protocol `raft`; known protocols: pbft"),
            "{err}"
        );
    }
    let err = failure(tandem().args(["local", "--byzantine", "r1=timeout-storm"]));
    assert!(
        err.contains("pbft has no Byzantine mode `timeout-storm`") && err.contains("equivocate"),
        "{err}"
    );
    let err = failure(tandem().args(["sim", "--faults", "timeout-storm", "--seeds", "1"]));
    assert!(err.contains("view-change-storm"), "{err}");

    run_ok(
        tandem()
            .args(["keygen", "--protocol", "pbft", "--view-timeout-ms", "700"])
            .arg("--out")
            .arg(dir.path()),
    );
    let cluster = dir.path().join("cluster.toml");
    let text = std::fs::read_to_string(&cluster).unwrap();
    assert!(
        text.contains("[protocol]\nname = \"pbft\"")
            && text.contains("[protocol.pbft]")
            && text.contains("view_timeout_ms = 700"),
        "{text}"
    );
    let err = failure(
        tandem()
            .arg("replica")
            .arg("--cluster")
            .arg(&cluster)
            .args(["--id", "0", "--byzantine", "timeout-storm", "--key"])
            .arg(dir.path().join("r0.key")),
    );
    assert!(
        err.contains("pbft has no Byzantine mode `timeout-storm`"),
        "{err}"
    );
}

/// Replica processes whose command line mentions `marker`.
fn processes_mentioning(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) && cmdline.contains(" replica ") {
            found.push(cmdline);
        }
    }
    found
}

/// Starts `tandem local` into `base` and waits until its replicas run.
fn start_local(base: &Path) -> Child {
    let child = tandem()
        .args(["local", "--duration", "60"])
        .arg("--results")
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = child;
    let marker = base.to_string_lossy().to_string();
    for _ in 0..100 {
        if processes_mentioning(&marker).len() == 4 {
            return child;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("replicas did not start");
}

fn wait_until_gone(marker: &str) {
    for _ in 0..50 {
        if processes_mentioning(marker).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "replica processes outlived tandem local: {:?}",
        processes_mentioning(marker)
    );
}

#[test]
fn replica_processes_never_outlive_tandem_local() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Killed outright: the kernel takes the replicas down with it.
    let base = tempfile::tempdir().unwrap();
    let mut local = start_local(base.path());
    local.kill().unwrap();
    local.wait().unwrap();
    wait_until_gone(&base.path().to_string_lossy());

    // Interrupted: it stops the replicas itself and says so.
    let base = tempfile::tempdir().unwrap();
    let local = start_local(base.path());
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(local.id() as libc::pid_t, libc::SIGINT);
    }
    let out = local.wait_with_output().unwrap();
    assert!(!out.status.success());
    wait_until_gone(&base.path().to_string_lossy());
}
