//! A cluster across network namespaces: each replica in a namespace of its own with
//! its own veth address (10.77.x.y), the load client in another, all joined by a bridge
//! in a switch namespace. Loopback stays down in every namespace, so a replica or the
//! client that relied on 127.0.0.1 would fail. Needs root and `ip` (iproute2); skips
//! with a message otherwise — unless `TANDEM_REQUIRE_NETNS=1`, which `.ci/run` sets
//! when its probe could add and delete a namespace: then a missing capability fails
//! the test. Namespaces and processes are removed on every path.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tandem_experiments::aggregate::{ReplicaTrace, verdict};
use tandem_experiments::metrics::read_metrics;

fn ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("ip runs")
}

fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces and processes of one test; dropping kills the processes and deletes
/// the namespaces (which deletes their veths and the bridge).
struct Hosts {
    namespaces: Vec<String>,
    processes: Vec<Child>,
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for p in &mut self.processes {
            let _ = p.kill();
            let _ = p.wait();
        }
        for ns in &self.namespaces {
            ip(&["netns", "delete", ns]);
        }
    }
}

/// Set to `1` when network namespaces must be usable.
const REQUIRE: &str = "TANDEM_REQUIRE_NETNS";

/// Prints that the test skips because of `why`; panics instead when `required`.
fn skip_or_fail(why: &str, required: bool) {
    let test = "replicas_and_a_client_in_separate_network_namespaces_commit_and_agree";
    assert!(!required, "{test}: {REQUIRE}=1 but {why}");
    eprintln!("SKIPPED {test}: {why}");
}

#[test]
#[should_panic(expected = "TANDEM_REQUIRE_NETNS=1 but cannot create")]
fn required_namespaces_that_are_missing_fail_instead_of_skipping() {
    skip_or_fail("cannot create a network namespace", true);
}

#[test]
fn replicas_and_a_client_in_separate_network_namespaces_commit_and_agree() {
    let required = std::env::var(REQUIRE).is_ok_and(|v| v == "1");
    let tag = format!("tn{}", std::process::id() % 100_000);
    let switch = format!("{tag}sw");
    let created = Command::new("ip")
        .args(["netns", "add", &switch])
        .stdin(Stdio::null())
        .output();
    match created {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            skip_or_fail(
                &format!(
                    "cannot create a network namespace (root needed): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                required,
            );
            return;
        }
        Err(e) => {
            skip_or_fail(
                &format!("the ip command (iproute2) cannot run: {e}"),
                required,
            );
            return;
        }
    }
    let mut hosts = Hosts {
        namespaces: vec![switch.clone()],
        processes: Vec::new(),
    };
    ip_ok(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
    ip_ok(&["-n", &switch, "link", "set", "br0", "up"]);
    let octet = 100 + std::process::id() % 100;
    let address = |host: u32| format!("10.77.{octet}.{host}");
    // Host k: namespace `<tag>h<k>`, veth `<tag>v<k>` inside it, its peer on the bridge.
    let members = ["r0", "r1", "r2", "r3", "c0"];
    for (k, _) in members.iter().enumerate() {
        let ns = format!("{tag}h{k}");
        let (inside, outside) = (format!("{tag}v{k}"), format!("{tag}p{k}"));
        ip_ok(&["netns", "add", &ns]);
        hosts.namespaces.push(ns.clone());
        ip_ok(&[
            "link", "add", &inside, "type", "veth", "peer", "name", &outside,
        ]);
        ip_ok(&["link", "set", &inside, "netns", &ns]);
        ip_ok(&["link", "set", &outside, "netns", &switch]);
        ip_ok(&[
            "-n", &switch, "link", "set", &outside, "master", "br0", "up",
        ]);
        let cidr = format!("{}/24", address(10 + k as u32));
        ip_ok(&["-n", &ns, "addr", "add", &cidr, "dev", &inside]);
        ip_ok(&["-n", &ns, "link", "set", &inside, "up"]);
    }

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cluster");
    let addresses: Vec<String> = (0..4)
        .map(|i| format!("{}:7100", address(10 + i)))
        .collect();
    let made = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["keygen", "--replicas", "4", "--clients", "1"])
        .args(["--checkpoint-interval", "16"])
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
    let in_host = |k: usize| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &format!("{tag}h{k}")])
            .arg(env!("CARGO_BIN_EXE_tandem"));
        cmd
    };
    let cluster = folder.join("cluster.toml");
    let metrics = |i: usize| dir.path().join(format!("replica-{i}.metrics.jsonl"));
    for i in 0..4 {
        let log = std::fs::File::create(dir.path().join(format!("replica-{i}.log"))).unwrap();
        let child = in_host(i)
            .arg("replica")
            .arg("--cluster")
            .arg(&cluster)
            .args(["--id", &i.to_string()])
            .arg("--key")
            .arg(folder.join(format!("r{i}.key")))
            .arg("--metrics")
            .arg(metrics(i))
            .args(["--metrics-interval-ms", "200"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        hosts.processes.push(child);
    }
    let client = in_host(4)
        .arg("client")
        .arg("--cluster")
        .arg(&cluster)
        .arg("--key")
        .arg(folder.join("c0.key"))
        .args(["--duration", "6", "--warmup", "1", "--window", "64"])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&client.stdout).into_owned();
    let log = |i: usize| {
        std::fs::read_to_string(dir.path().join(format!("replica-{i}.log"))).unwrap_or_default()
    };
    assert!(
        client.status.success(),
        "client: {summary}\n{}\nr0 log:\n{}",
        String::from_utf8_lossy(&client.stderr),
        log(0)
    );
    let completed: u64 = summary
        .split_whitespace()
        .skip_while(|w| *w != "completed")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(completed >= 1000, "client summary: {summary}");
    // Each replica listened on its own address, not on loopback.
    for i in 0..4 {
        let expected = format!("{}:7100", address(10 + i as u32));
        assert!(log(i).contains(&expected), "r{i} log:\n{}", log(i));
    }
    let traces = |p: &dyn Fn(usize) -> std::path::PathBuf| -> Vec<ReplicaTrace> {
        (0..4)
            .map(|i| ReplicaTrace {
                lines: read_metrics(Path::new(&p(i))).unwrap_or_default(),
                alive_at_end: true,
                byzantine: false,
            })
            .collect()
    };
    let mut agreed = verdict(&traces(&metrics));
    for _ in 0..25 {
        if agreed.agreed {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        agreed = verdict(&traces(&metrics));
    }
    assert!(agreed.agreed, "{}", agreed.detail);
    assert!(
        agreed.detail.contains("r0, r1, r2, r3"),
        "{}",
        agreed.detail
    );
}
