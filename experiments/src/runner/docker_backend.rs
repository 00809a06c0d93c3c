//! The Docker backend of the runner: each replica is a container of the tandem image
//! (`FROM scratch`, built from the running binary when missing: [`ensure_image`]) on a
//! private bridge network created for the run ([`DockerNetwork`]), at a fixed address
//! (`.10 + i`) and with the host name `r<i>` the containers' cluster file uses. Each
//! container sees the cluster file and its own key read-only, the run's results folder
//! at `/results` (its metrics), and with `durability = "wal"` its data folder at
//! `/data` (`--data-dir /data`). It runs as this process's user, so what it writes
//! belongs to the user.
//!
//! Faults are the engine's operations: a crash is `docker kill` (SIGKILL), a stop
//! `docker stop`, a restart `docker start` (the same container: its data folder, its
//! address; a new container only when its Byzantine mode changes), a pause `docker
//! pause`/`unpause` (the cgroup freezer), an isolation `docker network disconnect` and
//! its end `docker network connect` at the same address and alias. Every operation
//! carried out is logged with its time (`docker.log` in the results folder).
//!
//! A replica writes its metrics to `replica-<i>.running.metrics.jsonl`; before it
//! starts again (the replica truncates the file) and at the end, the file is renamed
//! to its incarnation's name — the process backend's names: `replica-<i>.metrics.jsonl`,
//! then `replica-<i>.restart-<k>.metrics.jsonl`. Container output goes to
//! `replica-<i>.log` when the run ends.
//!
//! Everything is removed at the end — containers and network, on success, error or
//! Ctrl-C (drop guards). A runner killed by SIGKILL leaves them; they carry the label
//! `tandem.run` (`docker rm -f $(docker ps -aq --filter label=tandem.run)`).

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::time::Instant;

use crate::cpu_budget::ReplicaBudget;
use crate::deploy::compose::{DATA_IN_CONTAINER, FIRST_REPLICA_HOST, Subnet24};
use crate::deploy::image::build_image;

/// The UDP port every replica container listens on.
pub const REPLICA_PORT: u16 = 7100;
/// The label every container and network of a run carries (value: the run's prefix).
pub const RUN_LABEL: &str = "tandem.run";
/// Where a container finds the cluster file.
const CLUSTER_IN_CONTAINER: &str = "/cluster/cluster.toml";
/// Where a container's results folder is mounted.
const RESULTS_IN_CONTAINER: &str = "/results";

/// The image tag the runner uses for `binary`: `tandem-run:<first 12 hex digits of the
/// binary's SHA-256>`, so a rebuilt binary gets its own image.
pub fn image_tag(binary: &Path) -> Result<String> {
    let bytes =
        fs::read(binary).with_context(|| format!("cannot read the binary {}", binary.display()))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    Ok(format!(
        "tandem-run:{}",
        &hex::encode(digest.as_ref())[..12]
    ))
}

/// The image of `binary`: reused when the engine has it, built (`tandem image`'s way)
/// when missing. Returns its tag.
pub fn ensure_image(binary: &Path) -> Result<String> {
    let tag = image_tag(binary)?;
    let present = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &tag])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot run docker")?
        .success();
    if !present {
        eprintln!("building the image {tag} from {}", binary.display());
        build_image(binary, &tag, None)?;
    }
    Ok(tag)
}

/// Runs `docker ARGS` to its end (blocking); its standard output, or an error with
/// its standard error.
fn docker_sync(args: &[String]) -> Result<String> {
    let out = std::process::Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run docker")?;
    if !out.status.success() {
        bail!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `docker ARGS` without blocking the runtime; as [`docker_sync`].
async fn docker(args: &[String]) -> Result<String> {
    let out = tokio::process::Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .context("cannot run docker")?;
    if !out.status.success() {
        bail!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A bridge network created for one run, removed on drop.
pub struct DockerNetwork {
    /// Its name, also the prefix of the run's container names.
    pub name: String,
    /// Its /24.
    pub subnet: Subnet24,
}

impl DockerNetwork {
    /// Creates a network named `<prefix>-net` on a free /24 of `10.78.0.0/16` (tried
    /// in turn from one drawn from the process id, so concurrent runs differ).
    pub fn create(prefix: &str) -> Result<DockerNetwork> {
        let name = format!("{prefix}-net");
        let first = std::process::id() as usize;
        let mut last_error = None;
        for attempt in 0..32 {
            let subnet = Subnet24 {
                prefix: [10, 78, ((first + attempt * 37) % 256) as u8],
            };
            let args = [
                "network".to_string(),
                "create".into(),
                "--driver".into(),
                "bridge".into(),
                "--subnet".into(),
                subnet.to_string(),
                "--label".into(),
                format!("{RUN_LABEL}={prefix}"),
                name.clone(),
            ];
            match docker_sync(&args) {
                Ok(_) => return Ok(DockerNetwork { name, subnet }),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error
            .expect("tried at least once")
            .context("cannot create a Docker network for the run"))
    }

    /// The address of replica `i` on the network.
    pub fn replica_ip(&self, i: usize) -> Ipv4Addr {
        self.subnet.host(FIRST_REPLICA_HOST + i as u8)
    }

    /// Where replica `i` listens, as the host (launcher, load clients) reaches it.
    pub fn replica_address(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.replica_ip(i).into(), REPLICA_PORT)
    }
}

impl Drop for DockerNetwork {
    fn drop(&mut self) {
        let _ = docker_sync(&strings(&["network", "rm", &self.name]));
    }
}

/// How to start the replica containers.
#[derive(Clone, Debug)]
pub struct DockerSpec {
    /// The image (see [`ensure_image`]).
    pub image: String,
    /// The containers' cluster file (replicas named `r<i>` at [`REPLICA_PORT`]).
    pub cluster: PathBuf,
    /// Key file of each replica, by id.
    pub keys: Vec<PathBuf>,
    /// The results folder: metrics, logs, `docker.log`.
    pub out: PathBuf,
    /// A folder holding each replica's data folder (`<data>/r<i>`, mounted at `/data`)
    /// when durability is `wal`.
    pub data: Option<PathBuf>,
    /// Byzantine mode per replica, if any.
    pub byzantine: Vec<Option<String>>,
    /// How often replicas write metrics, milliseconds.
    pub metrics_interval_ms: u64,
    /// Each replica's CPU budget, by id (`--cpus`, `--cpuset-cpus`; none beyond the
    /// list).
    pub cpu: Vec<ReplicaBudget>,
}

impl DockerSpec {
    /// The spec with every host path absolute: `docker run --volume` takes a relative
    /// path for the name of a named volume (`results/run-…` is refused as one), so a
    /// results folder given relative to the working directory must be made absolute.
    fn with_absolute_paths(mut self) -> Result<DockerSpec> {
        let absolute = |p: &PathBuf| {
            std::path::absolute(p).with_context(|| format!("cannot make {} absolute", p.display()))
        };
        self.cluster = absolute(&self.cluster)?;
        self.keys = self.keys.iter().map(absolute).collect::<Result<_>>()?;
        self.out = absolute(&self.out)?;
        self.data = self.data.as_ref().map(absolute).transpose()?;
        Ok(self)
    }
}

/// The running replica containers of a run.
pub struct DockerBackend {
    spec: DockerSpec,
    /// Prefix of the container names (the network's name without `-net`).
    prefix: String,
    /// Per replica: whether its container exists.
    created: Vec<bool>,
    /// Per replica: the mode its container runs in.
    modes: Vec<Option<String>>,
    incarnations: Vec<u32>,
    paused: Vec<bool>,
    disconnected: Vec<bool>,
    /// The engine operations carried out: (when the command was issued, command).
    ops: Vec<(Instant, String)>,
    origin: Instant,
    removed: bool,
    // Declared last: dropped after the containers are removed.
    network: DockerNetwork,
}

impl DockerBackend {
    /// Starts one container per replica on `network`.
    pub async fn start(spec: DockerSpec, network: DockerNetwork) -> Result<DockerBackend> {
        let spec = spec.with_absolute_paths()?;
        let n = spec.keys.len();
        let prefix = network
            .name
            .strip_suffix("-net")
            .unwrap_or(&network.name)
            .to_string();
        let mut backend = DockerBackend {
            modes: spec.byzantine.clone(),
            spec,
            prefix,
            created: vec![false; n],
            incarnations: vec![0; n],
            paused: vec![false; n],
            disconnected: vec![false; n],
            ops: Vec::new(),
            origin: Instant::now(),
            removed: false,
            network,
        };
        if let Some(data) = &backend.spec.data {
            for i in 0..n {
                let dir = data.join(format!("r{i}"));
                fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
        }
        for i in 0..n {
            backend.create(i).await?;
        }
        Ok(backend)
    }

    /// The container name of replica `i`.
    pub fn container(&self, i: usize) -> String {
        format!("{}-r{i}", self.prefix)
    }

    /// The run's network.
    pub fn network(&self) -> &DockerNetwork {
        &self.network
    }

    /// Times in `docker.log` count from `origin` (the run's start; operations before
    /// it, the containers' creation, get negative times).
    pub fn set_origin(&mut self, origin: Instant) {
        self.origin = origin;
    }

    /// Runs an engine operation and logs it.
    async fn op(&mut self, args: Vec<String>) -> Result<String> {
        let issued = Instant::now();
        let out = docker(&args).await?;
        let line = match args.first().map(String::as_str) {
            // `docker run` is long: its name and what follows the image say enough.
            Some("run") => format!("docker run {}", self.run_summary(&args)),
            _ => format!("docker {}", args.join(" ")),
        };
        self.ops.push((issued, line));
        Ok(out)
    }

    fn run_summary(&self, args: &[String]) -> String {
        let name = args
            .iter()
            .position(|a| a == "--name")
            .and_then(|p| args.get(p + 1))
            .cloned()
            .unwrap_or_default();
        let after_image = args
            .iter()
            .position(|a| *a == self.spec.image)
            .map(|p| args[p..].join(" "))
            .unwrap_or_default();
        format!("--name {name} … {after_image}")
    }

    /// Creates and starts replica `i`'s container in its current mode.
    async fn create(&mut self, i: usize) -> Result<()> {
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let user = unsafe { format!("{}:{}", libc::getuid(), libc::getgid()) };
        let args = run_args(
            &self.spec,
            &RunContext {
                prefix: &self.prefix,
                network: &self.network.name,
                ip: self.network.replica_ip(i),
                user: &user,
            },
            i,
            self.modes[i].as_deref(),
        );
        self.created[i] = true;
        self.op(args)
            .await
            .with_context(|| format!("cannot start replica {i}'s container"))?;
        Ok(())
    }

    /// Whether replica `i`'s container runs (paused counts as running).
    pub async fn is_running(&mut self, i: usize) -> bool {
        if !self.created[i] {
            return false;
        }
        let args = strings(&[
            "inspect",
            "--format",
            "{{.State.Running}}",
            &self.container(i),
        ]);
        docker(&args).await.is_ok_and(|s| s.trim() == "true")
    }

    /// Kills replica `i` at once (`docker kill`: SIGKILL). A container that is not
    /// running is left as it is.
    pub async fn kill(&mut self, i: usize) -> Result<()> {
        if !self.is_running(i).await {
            return Ok(());
        }
        let name = self.container(i);
        self.op(strings(&["kill", "--signal", "KILL", &name]))
            .await
            .with_context(|| format!("cannot kill replica {i}"))?;
        self.paused[i] = false;
        Ok(())
    }

    /// Stops replica `i` gracefully (`docker stop`: SIGTERM, SIGKILL after `grace`).
    pub async fn stop(&mut self, i: usize, grace: Duration) -> Result<()> {
        if !self.is_running(i).await {
            return Ok(());
        }
        let name = self.container(i);
        let secs = grace.as_secs_f64().ceil().max(1.0) as u64;
        self.op(strings(&["stop", "--time", &secs.to_string(), &name]))
            .await
            .with_context(|| format!("cannot stop replica {i}"))?;
        self.paused[i] = false;
        Ok(())
    }

    /// Starts replica `i` again in `mode` (killing it first if it runs): `docker
    /// start` of the same container — its address, its data folder — or, when the mode
    /// changes, a new container in the new mode (same name, address and data).
    pub async fn restart_as(&mut self, i: usize, mode: Option<String>) -> Result<()> {
        self.kill(i).await?;
        self.keep_metrics(i)?;
        self.incarnations[i] += 1;
        if mode == self.modes[i] {
            let name = self.container(i);
            self.op(strings(&["start", &name]))
                .await
                .with_context(|| format!("cannot start replica {i} again"))?;
        } else {
            self.save_log(i).await;
            let name = self.container(i);
            self.op(strings(&["rm", "--force", &name])).await?;
            self.created[i] = false;
            self.modes[i] = mode;
            self.create(i).await?;
            if self.disconnected[i] {
                let net = self.network.name.clone();
                self.op(strings(&["network", "disconnect", &net, &name]))
                    .await?;
            }
        }
        Ok(())
    }

    /// Freezes replica `i` (`docker pause`).
    pub async fn pause(&mut self, i: usize) -> Result<()> {
        if self.paused[i] || !self.is_running(i).await {
            return Ok(());
        }
        let name = self.container(i);
        self.op(strings(&["pause", &name]))
            .await
            .with_context(|| format!("cannot pause replica {i}"))?;
        self.paused[i] = true;
        Ok(())
    }

    /// Lets a paused replica `i` run again (`docker unpause`).
    pub async fn resume(&mut self, i: usize) -> Result<()> {
        if !self.paused[i] {
            return Ok(());
        }
        let name = self.container(i);
        self.op(strings(&["unpause", &name]))
            .await
            .with_context(|| format!("cannot resume replica {i}"))?;
        self.paused[i] = false;
        Ok(())
    }

    /// Cuts replica `i` off the run's network (`docker network disconnect`): no peer,
    /// client or launcher reaches it, nor it them.
    pub async fn disconnect(&mut self, i: usize) -> Result<()> {
        if self.disconnected[i] {
            return Ok(());
        }
        let (net, name) = (self.network.name.clone(), self.container(i));
        self.op(strings(&["network", "disconnect", &net, &name]))
            .await
            .with_context(|| format!("cannot disconnect replica {i}"))?;
        self.disconnected[i] = true;
        Ok(())
    }

    /// Connects replica `i` again at its address, answering to `r<i>`.
    pub async fn connect(&mut self, i: usize) -> Result<()> {
        if !self.disconnected[i] {
            return Ok(());
        }
        let (net, name) = (self.network.name.clone(), self.container(i));
        let ip = self.network.replica_ip(i).to_string();
        let alias = format!("r{i}");
        self.op(strings(&[
            "network", "connect", "--ip", &ip, "--alias", &alias, &net, &name,
        ]))
        .await
        .with_context(|| format!("cannot connect replica {i} again"))?;
        self.disconnected[i] = false;
        Ok(())
    }

    /// Stops every container (`docker stop`, SIGTERM then SIGKILL after `grace`),
    /// keeps their output and metrics under their final names and writes `docker.log`.
    pub async fn stop_all(&mut self, grace: Duration) {
        let n = self.created.len();
        let paused: Vec<String> = (0..n)
            .filter(|i| self.paused[*i])
            .map(|i| self.container(i))
            .collect();
        if !paused.is_empty() {
            let mut args = strings(&["unpause"]);
            args.extend(paused);
            let _ = self.op(args).await;
            self.paused = vec![false; n];
        }
        let secs = grace.as_secs_f64().ceil().max(1.0) as u64;
        let mut args = strings(&["stop", "--time", &secs.to_string()]);
        args.extend(
            (0..n)
                .filter(|i| self.created[*i])
                .map(|i| self.container(i)),
        );
        if let Err(e) = self.op(args).await {
            tracing::warn!("stopping the replica containers: {e:#}");
        }
        for i in 0..n {
            self.save_log(i).await;
            if let Err(e) = self.keep_metrics(i) {
                tracing::warn!("{e:#}");
            }
        }
        let log: String = self
            .ops
            .iter()
            .map(|(at, line)| {
                let t = if *at >= self.origin {
                    (*at - self.origin).as_secs_f64()
                } else {
                    -(self.origin - *at).as_secs_f64()
                };
                format!("{t:>8.3} s  {line}\n")
            })
            .collect();
        if let Err(e) = fs::write(self.spec.out.join("docker.log"), log) {
            tracing::warn!("cannot write docker.log: {e}");
        }
    }

    /// Every metrics file replica `i` wrote, in incarnation order.
    pub fn metrics_files(&self, i: usize) -> Vec<PathBuf> {
        (0..=self.incarnations[i])
            .map(|k| self.spec.out.join(incarnation_metrics(i, k)))
            .collect()
    }

    /// Renames the metrics file the container writes to its current incarnation's
    /// name (the container is not running: the next start truncates the file).
    fn keep_metrics(&self, i: usize) -> Result<()> {
        let running = self.spec.out.join(running_metrics(i));
        if !running.exists() {
            return Ok(());
        }
        let kept = self
            .spec
            .out
            .join(incarnation_metrics(i, self.incarnations[i]));
        fs::rename(&running, &kept)
            .with_context(|| format!("cannot rename {} to {}", running.display(), kept.display()))
    }

    /// Appends replica `i`'s container output to `replica-<i>.log`.
    async fn save_log(&self, i: usize) {
        if !self.created[i] {
            return;
        }
        let out = tokio::process::Command::new("docker")
            .args(["logs", &self.container(i)])
            .stdin(Stdio::null())
            .output()
            .await;
        if let Ok(out) = out {
            let path = self.spec.out.join(format!("replica-{i}.log"));
            let mut text = out.stdout;
            text.extend(out.stderr);
            let previous = fs::read(&path).unwrap_or_default();
            let _ = fs::write(&path, [previous, text].concat());
        }
    }

    /// Removes every container (and then, on drop, the network). Idempotent.
    fn remove(&mut self) {
        if self.removed {
            return;
        }
        self.removed = true;
        let names: Vec<String> = (0..self.created.len())
            .filter(|i| self.created[*i])
            .map(|i| self.container(i))
            .collect();
        if !names.is_empty() {
            let mut args = strings(&["rm", "--force", "--volumes"]);
            args.extend(names);
            if let Err(e) = docker_sync(&args) {
                tracing::warn!("{e:#}");
            }
        }
    }
}

impl Drop for DockerBackend {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Where and as whom a run's containers start.
struct RunContext<'a> {
    /// Prefix of the container names.
    prefix: &'a str,
    /// The run's network.
    network: &'a str,
    /// The replica's address on it.
    ip: Ipv4Addr,
    /// `uid:gid` the container runs as.
    user: &'a str,
}

/// The `docker run` arguments of replica `i`'s container in `mode`: name, label,
/// network, address and host name, user, mounts, CPU budget (`--cpus`,
/// `--cpuset-cpus`), then the image and the replica's command line.
fn run_args(spec: &DockerSpec, at: &RunContext<'_>, i: usize, mode: Option<&str>) -> Vec<String> {
    let host = format!("r{i}");
    let key_in = format!("/keys/r{i}.key");
    let mut args = vec![
        "run".to_string(),
        "--detach".into(),
        "--name".into(),
        format!("{}-r{i}", at.prefix),
        "--label".into(),
        format!("{RUN_LABEL}={}", at.prefix),
        "--network".into(),
        at.network.to_string(),
        "--ip".into(),
        at.ip.to_string(),
        "--network-alias".into(),
        host.clone(),
        "--hostname".into(),
        host,
        "--user".into(),
        at.user.to_string(),
        "--env".into(),
        format!(
            "RUST_LOG={}",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into())
        ),
        "--volume".into(),
        format!("{}:{CLUSTER_IN_CONTAINER}:ro", spec.cluster.display()),
        "--volume".into(),
        format!("{}:{key_in}:ro", spec.keys[i].display()),
        "--volume".into(),
        format!("{}:{RESULTS_IN_CONTAINER}", spec.out.display()),
    ];
    if let Some(data) = &spec.data {
        args.push("--volume".into());
        args.push(format!(
            "{}:{DATA_IN_CONTAINER}",
            data.join(format!("r{i}")).display()
        ));
    }
    if let Some(budget) = spec.cpu.get(i) {
        args.extend(budget.docker_args());
    }
    args.extend([
        spec.image.clone(),
        "replica".into(),
        "--cluster".into(),
        CLUSTER_IN_CONTAINER.into(),
        "--id".into(),
        i.to_string(),
        "--key".into(),
        key_in,
        "--metrics".into(),
        format!("{RESULTS_IN_CONTAINER}/{}", running_metrics(i)),
        "--metrics-interval-ms".into(),
        spec.metrics_interval_ms.to_string(),
    ]);
    if spec.data.is_some() {
        args.extend(["--data-dir".into(), DATA_IN_CONTAINER.into()]);
    }
    if let Some(mode) = mode {
        args.extend(["--byzantine".into(), mode.to_string()]);
    }
    args
}

/// The metrics file a running container writes.
fn running_metrics(i: usize) -> String {
    format!("replica-{i}.running.metrics.jsonl")
}

/// The metrics file of replica `i`'s incarnation `k` (the process backend's names).
fn incarnation_metrics(i: usize, k: u32) -> String {
    if k == 0 {
        format!("replica-{i}.metrics.jsonl")
    } else {
        format!("replica-{i}.restart-{k}.metrics.jsonl")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tandem run` writes to `results/…` relative to the working directory; docker
    /// would take that for a named volume and refuse the run, so the mounted host paths
    /// are made absolute first.
    #[test]
    fn mounted_host_paths_are_absolute() {
        let spec = DockerSpec {
            image: "tandem-run:x".into(),
            cluster: PathBuf::from("cluster.toml"),
            keys: vec![PathBuf::from("keys/r0.key")],
            out: PathBuf::from("results/docker-crash-isolate-1"),
            data: Some(PathBuf::from("data")),
            byzantine: vec![None],
            metrics_interval_ms: 250,
            cpu: Vec::new(),
        }
        .with_absolute_paths()
        .unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(spec.out, cwd.join("results/docker-crash-isolate-1"));
        assert_eq!(spec.cluster, cwd.join("cluster.toml"));
        assert_eq!(spec.keys[0], cwd.join("keys/r0.key"));
        assert_eq!(spec.data, Some(cwd.join("data")));
    }

    #[test]
    fn metrics_files_use_the_process_backends_names() {
        assert_eq!(running_metrics(2), "replica-2.running.metrics.jsonl");
        assert_eq!(incarnation_metrics(2, 0), "replica-2.metrics.jsonl");
        assert_eq!(
            incarnation_metrics(2, 3),
            "replica-2.restart-3.metrics.jsonl"
        );
    }

    #[test]
    fn the_image_tag_follows_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, b"one binary").unwrap();
        fs::write(&b, b"another binary").unwrap();
        let tag = image_tag(&a).unwrap();
        assert!(
            tag.starts_with("tandem-run:") && tag.len() == 11 + 12,
            "{tag}"
        );
        assert_eq!(tag, image_tag(&a).unwrap());
        assert_ne!(tag, image_tag(&b).unwrap());
    }

    /// Issue 13 item 3: a replica's CPU budget reaches `docker run` as `--cpus` and
    /// `--cpuset-cpus`, before the image (after it they would be the replica's own
    /// arguments); a replica without one gets neither.
    #[test]
    fn the_cpu_budget_becomes_docker_run_flags_before_the_image() {
        use crate::cpu_budget::{CpuBudget, CpuSet, FLAGS};
        use crate::scenario::BackendKind;
        let budget = CpuBudget {
            cpus_per_replica: Some(0.5),
            cpu_sets: Some(CpuBudget::parse_sets("0;1;0;1").unwrap()),
        }
        .resolve(
            4,
            BackendKind::Docker,
            &CpuSet::parse("0-1").unwrap(),
            FLAGS,
        )
        .unwrap();
        let spec = DockerSpec {
            image: "tandem-run:x".into(),
            cluster: PathBuf::from("/c/cluster.toml"),
            keys: (0..4)
                .map(|i| PathBuf::from(format!("/k/r{i}.key")))
                .collect(),
            out: PathBuf::from("/out"),
            data: None,
            byzantine: vec![None; 4],
            metrics_interval_ms: 250,
            cpu: budget,
        };
        let at = RunContext {
            prefix: "tandem-1",
            network: "tandem-1-net",
            ip: Ipv4Addr::new(10, 78, 1, 13),
            user: "0:0",
        };
        let args = run_args(&spec, &at, 3, Some("silent"));
        let image = args.iter().position(|a| a == "tandem-run:x").unwrap();
        let flag = |name: &str| {
            let p = args
                .iter()
                .position(|a| a == name)
                .unwrap_or_else(|| panic!("{name} in {args:?}"));
            assert!(p < image, "{name} after the image: {args:?}");
            args[p + 1].clone()
        };
        assert_eq!(flag("--cpus"), "0.5");
        assert_eq!(flag("--cpuset-cpus"), "1");
        assert_eq!(flag("--name"), "tandem-1-r3");
        assert_eq!(args.last().unwrap(), "silent");

        let plain = DockerSpec {
            cpu: Vec::new(),
            ..spec
        };
        let args = run_args(&plain, &at, 0, None);
        assert!(
            !args.iter().any(|a| a.starts_with("--cpu")),
            "no budget, no flag: {args:?}"
        );
    }
}
