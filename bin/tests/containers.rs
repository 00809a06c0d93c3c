//! Tests across containers: the image of the test's own debug `tandem` binary, the
//! Compose files `tandem deploy compose` writes, a cluster of replica containers on
//! a private Docker network (replicas named by host, a kill and restart, a disconnect),
//! and a scenario file with `backend = "docker"` run by `tandem run`. Every test
//! skips with a message when Docker is missing or its daemon unreachable (the Compose
//! test: when no Compose tool runs) — unless `TANDEM_REQUIRE_DOCKER=1`, which `.ci/run`
//! sets when its probe found both: then a missing capability fails the test, so CI
//! notices when detection itself breaks. Images and containers are removed on every
//! path by drop guards.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tandem_experiments::runner::docker_backend::{RUN_LABEL, image_tag};

use tandem_experiments::aggregate::{ReplicaTrace, verdict};
use tandem_experiments::metrics::read_metrics;

use tandem_experiments::deploy::docker::{ComposeTool, docker_unavailable};

fn tandem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
}

/// Runs `docker ARGS`; the output whatever the status.
fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("docker runs")
}

/// Set to `1` when the Docker engine and a Compose tool must be there.
const REQUIRE: &str = "TANDEM_REQUIRE_DOCKER";

/// Whether [`REQUIRE`] is `1`.
fn docker_required() -> bool {
    std::env::var(REQUIRE).is_ok_and(|v| v == "1")
}

/// Prints that `test` skips because of `why`; panics instead when `required`.
fn skip_or_fail(test: &str, why: &str, required: bool) {
    assert!(!required, "{test}: {REQUIRE}=1 but {why}");
    eprintln!("SKIPPED {test}: {why}");
}

/// True (after printing why) when Docker cannot be used here; fails the test instead
/// when Docker is required.
fn skip_without_docker(test: &str) -> bool {
    match docker_unavailable() {
        Some(why) => {
            skip_or_fail(test, &why, docker_required());
            true
        }
        None => false,
    }
}

#[test]
#[should_panic(expected = "TANDEM_REQUIRE_DOCKER=1 but the docker daemon is unreachable")]
fn a_required_docker_that_is_missing_fails_instead_of_skipping() {
    skip_or_fail("t", "the docker daemon is unreachable", true);
}

#[test]
fn a_missing_docker_that_is_not_required_skips() {
    skip_or_fail("t", "the docker daemon is unreachable", false);
}

/// One image build or container cluster at a time: the machine is small, and the
/// tests build images from the same binary, which then share one image id (a test
/// removing its tag while another builds the same content once made the engine fail
/// with "failed to get digest").
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A name unique to this test process and call, for images, networks and containers.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An image built from the test's own debug binary by `tandem image`, removed on drop.
struct TestImage {
    tag: String,
}

impl TestImage {
    fn build() -> TestImage {
        let tag = format!("{}:test", unique("tandem-ci"));
        let out = tandem()
            .args([
                "image",
                "--tag",
                &tag,
                "--binary",
                env!("CARGO_BIN_EXE_tandem"),
            ])
            .output()
            .expect("tandem image runs");
        let image = TestImage { tag };
        assert!(
            out.status.success(),
            "tandem image failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        image
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        // Not --force: that would delete the image id under every other tag too.
        docker(&["image", "rm", &self.tag]);
    }
}

#[test]
fn the_image_runs_tandem_from_scratch() {
    if skip_without_docker("the_image_runs_tandem_from_scratch") {
        return;
    }
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let image = TestImage::build();
    let out = docker(&["run", "--rm", &image.tag, "--version"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("tandem "),
        "tandem --version in the image: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // FROM scratch: the binary, its libraries and the loader, nothing else (no shell).
    let shell = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &image.tag,
        "-c",
        "true",
    ]);
    assert!(!shell.status.success(), "the image has a shell");
    let size: u64 = String::from_utf8_lossy(
        &docker(&["image", "inspect", "--format", "{{.Size}}", &image.tag]).stdout,
    )
    .trim()
    .parse()
    .expect("image size");
    let binary = std::fs::metadata(Path::new(env!("CARGO_BIN_EXE_tandem")))
        .unwrap()
        .len();
    assert!(
        size < binary + (16 << 20),
        "image {size} bytes for a {binary}-byte binary"
    );
}

#[test]
fn deploy_compose_for_4_and_7_replicas_passes_compose_config() {
    let tool = match ComposeTool::find() {
        Ok(tool) => tool,
        Err(why) => {
            skip_or_fail(
                "deploy_compose_for_4_and_7_replicas_passes_compose_config",
                &why.to_string(),
                docker_required(),
            );
            return;
        }
    };
    for n in [4usize, 7] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("deploy");
        let made = tandem()
            .args([
                "deploy",
                "compose",
                "--replicas",
                &n.to_string(),
                "--clients",
                "2",
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let compose = out.join("compose.yaml");
        // One call per file: the python docker-compose takes seconds to start.
        let o = tool
            .command()
            .arg("--file")
            .arg(&compose)
            .arg("config")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{} config rejected the file for {n} replicas:\n{}",
            tool.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let full = String::from_utf8_lossy(&o.stdout).into_owned();
        let services_section = full
            .split("\nservices:\n")
            .nth(1)
            .expect("a services section");
        let mut services: Vec<String> = services_section
            .lines()
            .take_while(|l| l.starts_with(' ') || l.is_empty())
            .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
            .filter(|name| !name.starts_with(' '))
            .map(str::to_string)
            .collect();
        services.sort();
        let mut expected: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
        expected.extend(["c0".to_string(), "c1".to_string()]);
        expected.sort();
        assert_eq!(services, expected, "{full}");
        for i in 0..n {
            assert!(
                full.contains(&format!("ipv4_address: 10.77.0.{}", 10 + i)),
                "{full}"
            );
            assert!(full.contains(&format!("r{i}-key:")), "{full}");
        }
        // The cluster file the services read names the replicas by host.
        let cluster = std::fs::read_to_string(out.join("cluster.toml")).unwrap();
        assert!(
            cluster.contains(&format!("address = \"r{}:7100\"", n - 1)),
            "{cluster}"
        );
    }
}

/// Containers and a network of one test, removed on drop whatever happened.
struct ContainerCluster {
    network: String,
    containers: Vec<String>,
}

impl Drop for ContainerCluster {
    fn drop(&mut self) {
        for name in &self.containers {
            docker(&["rm", "--force", "--volumes", name]);
        }
        docker(&["network", "rm", &self.network]);
    }
}

/// Runs `docker ARGS` and fails the test with its output if it fails.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The replicas' metrics files under `results`, as traces for the safety verdict.
fn traces(results: &Path, n: usize) -> Vec<ReplicaTrace> {
    (0..n)
        .map(|i| ReplicaTrace {
            lines: read_metrics(&results.join(format!("replica-{i}.metrics.jsonl")))
                .unwrap_or_default(),
            alive_at_end: true,
            byzantine: false,
        })
        .collect()
}

#[test]
fn a_container_cluster_commits_through_a_kill_a_restart_and_a_disconnect() {
    if skip_without_docker("a_container_cluster_commits_through_a_kill_a_restart_and_a_disconnect")
    {
        return;
    }
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let image = TestImage::build();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cluster");
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    // Replicas by host name: each container answers to its alias on the network.
    let addresses: Vec<String> = (0..4).map(|i| format!("r{i}:7100")).collect();
    let made = tandem()
        .args(["keygen", "--replicas", "4", "--clients", "1"])
        .args(["--checkpoint-interval", "16", "--view-timeout-ms", "500"])
        .args(["--addresses", &addresses.join(",")])
        .arg("--out")
        .arg(&folder)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let tag = unique("t");
    let octet = 100 + std::process::id() % 100;
    let subnet = format!("10.79.{octet}.0/24");
    let ip = |host: u32| format!("10.79.{octet}.{host}");
    let mut cluster = ContainerCluster {
        network: format!("{tag}-net"),
        containers: Vec::new(),
    };
    docker_ok(&["network", "create", "--subnet", &subnet, &cluster.network]);
    let cluster_mount = format!("{}:/cluster:ro", folder.display());
    let results_mount = format!("{}:/results", results.display());
    for i in 0..4u32 {
        let name = format!("{tag}-r{i}");
        cluster.containers.push(name.clone());
        docker_ok(&[
            "run",
            "--detach",
            "--name",
            &name,
            "--network",
            &cluster.network,
            "--ip",
            &ip(10 + i),
            "--network-alias",
            &format!("r{i}"),
            "--volume",
            &cluster_mount,
            "--volume",
            &results_mount,
            &image.tag,
            "replica",
            "--cluster",
            "/cluster/cluster.toml",
            "--id",
            &i.to_string(),
            "--key",
            &format!("/cluster/r{i}.key"),
            "--metrics",
            &format!("/results/replica-{i}.metrics.jsonl"),
            "--metrics-interval-ms",
            "200",
        ]);
    }
    let client = format!("{tag}-c0");
    cluster.containers.push(client.clone());
    docker_ok(&[
        "run",
        "--detach",
        "--name",
        &client,
        "--network",
        &cluster.network,
        "--ip",
        &ip(210),
        "--volume",
        &cluster_mount,
        "--volume",
        &results_mount,
        &image.tag,
        "client",
        "--cluster",
        "/cluster/cluster.toml",
        "--key",
        "/cluster/c0.key",
        "--duration",
        "18",
        "--warmup",
        "1",
        "--window",
        "64",
        "--out",
        "/results/client-0.txt",
    ]);
    let committed_by_r0 = || {
        read_metrics(&results.join("replica-0.metrics.jsonl"))
            .ok()
            .and_then(|l| l.last().map(|l| l.requests_committed))
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_secs(5));
    // A replica killed (SIGKILL) and started again: it comes back with no state.
    docker_ok(&["kill", &format!("{tag}-r2")]);
    std::thread::sleep(Duration::from_secs(2));
    docker_ok(&["start", &format!("{tag}-r2")]);
    std::thread::sleep(Duration::from_secs(3));
    // A replica cut off the network and connected again at its address and name.
    let r3 = format!("{tag}-r3");
    docker_ok(&["network", "disconnect", &cluster.network, &r3]);
    let before_reconnect = committed_by_r0();
    std::thread::sleep(Duration::from_secs(3));
    docker_ok(&[
        "network",
        "connect",
        "--ip",
        &ip(13),
        "--alias",
        "r3",
        &cluster.network,
        &r3,
    ]);
    let exit = docker_ok(&["wait", &client]);
    let summary = std::fs::read_to_string(results.join("client-0.txt")).unwrap_or_default();
    assert_eq!(
        exit.trim(),
        "0",
        "client exited {exit}: {summary}\n{}",
        String::from_utf8_lossy(&docker(&["logs", &client]).stderr)
    );
    let completed: u64 = summary
        .split_whitespace()
        .skip_while(|w| *w != "completed")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(completed >= 1000, "client summary: {summary}");
    assert!(
        committed_by_r0() > before_reconnect,
        "nothing committed after the disconnect: {before_reconnect}"
    );
    // Every replica, the restarted and the reconnected one included, reaches a stable
    // checkpoint the others reached, with the same digest (bounded wait: they catch up
    // by state transfer).
    let mut agreed = verdict(&traces(&results, 4));
    for _ in 0..50 {
        if agreed.agreed {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        agreed = verdict(&traces(&results, 4));
    }
    assert!(agreed.agreed, "{}", agreed.detail);
    assert!(
        agreed.detail.contains("r0, r1, r2, r3"),
        "{}",
        agreed.detail
    );
}

/// Removes on drop the runner's image of the test binary if the test made it (an
/// image that was there before belongs to someone else).
struct RunnerImage {
    tag: String,
    made_here: bool,
}

impl Drop for RunnerImage {
    fn drop(&mut self) {
        if self.made_here {
            // Not --force: that would delete the image id under every other tag too.
            docker(&["image", "rm", &self.tag]);
        }
    }
}

/// Seconds since the Unix epoch.
fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The time (seconds since the run's start) of the first `docker.log` line that
/// contains every one of `words`.
fn logged_at(log: &str, words: &[&str]) -> Option<f64> {
    log.lines()
        .find(|l| words.iter().all(|w| l.contains(w)))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
}

/// `experiments/scenarios/docker-crash-isolate.toml` (4 replica containers, 2,000 tx/s
/// for 16 s; `docker kill` r1 at 4 s, `docker start` at 7 s; `docker network
/// disconnect` r2 at 9 s, `connect` at 12 s) runs through `tandem run` and meets its
/// expectations — digests agree on all four replicas, the restarted and the reconnected
/// one included; throughput recovers; liveness kept. The engine's own event log shows
/// the faults hit the containers (SIGKILL and start of r1; r2 disconnected and
/// connected again without dying), and nothing of the run is left afterwards.
#[test]
fn a_docker_scenario_runs_through_the_runner_and_its_faults_hit_the_containers() {
    let test = "a_docker_scenario_runs_through_the_runner_and_its_faults_hit_the_containers";
    if skip_without_docker(test) {
        return;
    }
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let tag = image_tag(Path::new(env!("CARGO_BIN_EXE_tandem"))).unwrap();
    let _image = RunnerImage {
        made_here: !docker(&["image", "inspect", &tag]).status.success(),
        tag,
    };
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../experiments/scenarios/docker-crash-isolate.toml");
    let results = tempfile::tempdir().unwrap();
    let since = unix_secs();
    let out = tandem()
        .arg("run")
        .arg(&scenario)
        .arg("--results")
        .arg(results.path())
        .output()
        .unwrap();
    let until = unix_secs() + 1;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tandem run failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let dir = std::fs::read_dir(results.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["parameters"]["backend"], "docker");
    let expectations = summary["expectations"].as_array().unwrap();
    assert!(
        expectations.len() >= 5 && expectations.iter().all(|e| e["passed"] == true),
        "{expectations:?}"
    );
    assert_eq!(summary["safety"]["agreed"], true);
    let detail = summary["safety"]["detail"].as_str().unwrap();
    assert!(detail.contains("r0, r1, r2, r3"), "{detail}");
    assert_eq!(summary["recoveries"].as_array().unwrap().len(), 2);
    // r1 ran twice: the metrics of its second start are kept beside the first's.
    let restarted = read_metrics(&dir.join("replica-1.restart-1.metrics.jsonl")).unwrap();
    assert!(
        restarted.iter().any(|l| l.last_delivered > 0),
        "the restarted r1 delivered nothing"
    );

    // What the runner did, and when (seconds since the run's start).
    let log = std::fs::read_to_string(dir.join("docker.log")).unwrap();
    let prefix = log
        .split_whitespace()
        .find_map(|w| w.strip_suffix("-r0"))
        .expect("docker.log names the containers")
        .to_string();
    let (r1, r2, net) = (
        format!("{prefix}-r1"),
        format!("{prefix}-r2"),
        format!("{prefix}-net"),
    );
    let kill = logged_at(&log, &["docker kill --signal KILL", &r1]).expect(&log);
    let start = logged_at(&log, &["docker start", &r1]).expect(&log);
    let cut = logged_at(&log, &["network disconnect", &net, &r2]).expect(&log);
    let join = logged_at(&log, &["network connect", "--alias r2", &r2]).expect(&log);
    for (what, at, planned) in [
        ("kill", kill, 4.0),
        ("start", start, 7.0),
        ("disconnect", cut, 9.0),
        ("connect", join, 12.0),
    ] {
        assert!(
            (planned..planned + 1.0).contains(&at),
            "{what} at {at} s, planned {planned} s:\n{log}"
        );
    }

    // What the engine saw: its own event log of the run's containers and network.
    let window = [
        "--since".to_string(),
        since.to_string(),
        "--until".into(),
        until.to_string(),
    ];
    let events = |filter: &[&str], format: &str| -> Vec<String> {
        let mut args = vec!["events"];
        args.extend(window.iter().map(String::as_str));
        args.extend(filter);
        args.extend(["--format", format]);
        docker_ok(&args).lines().map(str::to_string).collect()
    };
    let label = format!("label={RUN_LABEL}={prefix}");
    let containers = events(
        &["--filter", &label],
        "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.signal}} {{.Actor.ID}}",
    );
    let position = |line: &str| containers.iter().position(|e| e.starts_with(line));
    let killed = position(&format!("kill {r1} 9 "))
        .unwrap_or_else(|| panic!("no SIGKILL of {r1}: {containers:#?}"));
    let restarted = containers
        .iter()
        .skip(killed)
        .any(|e| e.starts_with(&format!("start {r1} ")));
    assert!(
        restarted,
        "r1 not started after its SIGKILL:\n{containers:#?}"
    );
    let r2_id = containers
        .iter()
        .find(|e| e.starts_with(&format!("create {r2} ")))
        .and_then(|e| e.split_whitespace().last())
        .expect("r2 was created")
        .to_string();
    let deaths = |name: &str| {
        containers
            .iter()
            .filter(|e| e.starts_with(&format!("die {name} ")))
            .count()
    };
    // r1 died twice (the SIGKILL, the final stop); r2 once: the disconnect did not
    // stop it.
    assert_eq!((deaths(&r1), deaths(&r2)), (2, 1), "{containers:#?}");
    let network = events(
        &[
            "--filter",
            "type=network",
            "--filter",
            &format!("network={net}"),
        ],
        "{{.Action}} {{.Actor.Attributes.container}}",
    );
    let r2_cut = network
        .iter()
        .position(|e| *e == format!("disconnect {r2_id}"))
        .unwrap_or_else(|| panic!("r2 never disconnected: {network:#?}"));
    assert!(
        network
            .iter()
            .skip(r2_cut)
            .any(|e| *e == format!("connect {r2_id}")),
        "r2 never connected again:\n{network:#?}"
    );

    // Nothing of the run is left.
    assert_eq!(
        docker_ok(&["ps", "--all", "--quiet", "--filter", &label]).trim(),
        "",
        "containers left behind"
    );
    assert_eq!(
        docker_ok(&[
            "network",
            "ls",
            "--quiet",
            "--filter",
            &format!("name={net}")
        ])
        .trim(),
        "",
        "network left behind"
    );
}
