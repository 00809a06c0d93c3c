//! The process backend of the runner: each replica of a local cluster is a process of
//! the `tandem` executable (`tandem replica ...`), logging to files, killed (SIGKILL),
//! paused and resumed (SIGSTOP/SIGCONT), stopped gracefully (SIGTERM) or restarted —
//! honest or in a Byzantine mode — on demand, and never outliving the runner: replicas
//! die with it through `PR_SET_PDEATHSIG` even if it is killed, and on drop otherwise.
//! A replica given a CPU set is pinned to it (`sched_setaffinity` between fork and
//! exec, so the replica and every thread it starts run only there; a restarted replica
//! is pinned again): the process backend's CPU budget ([`crate::cpu_budget`]).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::{Child, Command};

use crate::cpu_budget::{CpuSet, pin_current_process};

/// How to start replica `i`.
#[derive(Clone, Debug)]
pub struct ReplicaCommand {
    /// The `tandem` executable; replicas run as `PROGRAM replica --cluster ... --id i`.
    pub program: PathBuf,
    /// The cluster file.
    pub cluster: PathBuf,
    /// Key file of each replica, by id.
    pub keys: Vec<PathBuf>,
    /// Folder for logs and metrics.
    pub out: PathBuf,
    /// Byzantine mode per replica, if any.
    pub byzantine: Vec<Option<String>>,
    /// How often replicas write metrics, milliseconds.
    pub metrics_interval_ms: u64,
    /// The CPU set each replica is pinned to, by id (`None`: not pinned; a list
    /// shorter than the replicas pins none beyond it).
    pub cpu_sets: Vec<Option<CpuSet>>,
}

impl ReplicaCommand {
    /// The metrics file of replica `i`.
    pub fn metrics_path(&self, i: usize) -> PathBuf {
        self.out.join(format!("replica-{i}.metrics.jsonl"))
    }

    /// The log file of replica `i`.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.out.join(format!("replica-{i}.log"))
    }
}

/// The running replicas.
pub struct ProcessBackend {
    command: ReplicaCommand,
    children: Vec<Option<Child>>,
    incarnations: Vec<u32>,
}

impl ProcessBackend {
    /// Starts every replica.
    pub fn start(command: ReplicaCommand) -> Result<ProcessBackend> {
        let n = command.keys.len();
        let mut backend = ProcessBackend {
            command,
            children: (0..n).map(|_| None).collect(),
            incarnations: vec![0; n],
        };
        for i in 0..n {
            backend.spawn(i)?;
        }
        Ok(backend)
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let log = open_log(&self.command.log_path(i), self.incarnations[i] > 0)?;
        // A restarted replica appends to a fresh metrics file of its own incarnation.
        let metrics = if self.incarnations[i] == 0 {
            self.command.metrics_path(i)
        } else {
            self.command.out.join(format!(
                "replica-{i}.restart-{}.metrics.jsonl",
                self.incarnations[i]
            ))
        };
        let mut cmd = Command::new(&self.command.program);
        cmd.arg("replica")
            .arg("--cluster")
            .arg(&self.command.cluster)
            .arg("--id")
            .arg(i.to_string())
            .arg("--key")
            .arg(&self.command.keys[i])
            .arg("--metrics")
            .arg(&metrics)
            .arg("--metrics-interval-ms")
            .arg(self.command.metrics_interval_ms.to_string());
        if let Some(mode) = &self.command.byzantine[i] {
            cmd.arg("--byzantine").arg(mode);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        // Converted before the fork: the hook only makes system calls.
        let affinity = self
            .command
            .cpu_sets
            .get(i)
            .and_then(Option::as_ref)
            .map(CpuSet::to_libc);
        // SAFETY: prctl(PR_SET_PDEATHSIG) and sched_setaffinity are async-signal-safe
        // and the closure allocates nothing. The first makes the kernel kill the child
        // when this process dies, however it dies; the second pins the child (and so
        // the replica and all its threads) to its CPU set — a refusal fails the spawn.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if let Some(set) = &affinity {
                    pin_current_process(set)?;
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start replica {i}"))?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// Kills replica `i` at once (SIGKILL, like a crash).
    pub async fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.children.get_mut(i).and_then(Option::take) {
            child
                .kill()
                .await
                .with_context(|| format!("cannot kill replica {i}"))?;
        }
        Ok(())
    }

    /// Starts replica `i` again with an empty state (it catches up by state transfer).
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        self.kill(i).await?;
        self.incarnations[i] += 1;
        self.spawn(i)
    }

    /// Starts replica `i` again (as [`ProcessBackend::restart`]) in Byzantine `mode`,
    /// or honest with `None`.
    pub async fn restart_as(&mut self, i: usize, mode: Option<String>) -> Result<()> {
        if let Some(slot) = self.command.byzantine.get_mut(i) {
            *slot = mode;
        }
        self.restart(i).await
    }

    /// Sends `signal` to replica `i`'s process, if it runs.
    fn signal(&mut self, i: usize, signal: libc::c_int) {
        if let Some(pid) = self
            .children
            .get(i)
            .and_then(Option::as_ref)
            .and_then(Child::id)
        {
            // SAFETY: sending a signal to our own child process.
            unsafe {
                libc::kill(pid as libc::pid_t, signal);
            }
        }
    }

    /// Freezes replica `i` (SIGSTOP): its connections stay open, nothing is answered.
    pub fn pause(&mut self, i: usize) {
        self.signal(i, libc::SIGSTOP);
    }

    /// Lets a paused replica `i` run again (SIGCONT).
    pub fn resume(&mut self, i: usize) {
        self.signal(i, libc::SIGCONT);
    }

    /// Stops replica `i` gracefully (SIGTERM: it closes its connections and exits),
    /// killing it if it has not exited after `grace`.
    pub async fn stop(&mut self, i: usize, grace: Duration) {
        self.signal(i, libc::SIGCONT);
        self.signal(i, libc::SIGTERM);
        if let Some(mut child) = self.children.get_mut(i).and_then(Option::take)
            && tokio::time::timeout(grace, child.wait()).await.is_err()
        {
            let _ = child.kill().await;
        }
    }

    /// Whether replica `i` is running.
    pub fn is_running(&mut self, i: usize) -> bool {
        match self.children.get_mut(i).and_then(Option::as_mut) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Asks every replica to stop (SIGTERM) and waits up to `grace`; kills the rest.
    pub async fn stop_all(&mut self, grace: Duration) {
        for i in 0..self.children.len() {
            // A paused replica handles SIGTERM only once it runs again.
            self.signal(i, libc::SIGCONT);
            self.signal(i, libc::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + grace;
        for slot in &mut self.children {
            if let Some(child) = slot.as_mut() {
                let waited = tokio::time::timeout_at(deadline, child.wait()).await;
                if waited.is_err() {
                    let _ = child.kill().await;
                }
            }
            slot.take();
        }
    }

    /// Every metrics file replica `i` wrote, in incarnation order.
    pub fn metrics_files(&self, i: usize) -> Vec<PathBuf> {
        let mut files = vec![self.command.metrics_path(i)];
        for k in 1..=self.incarnations[i] {
            files.push(
                self.command
                    .out
                    .join(format!("replica-{i}.restart-{k}.metrics.jsonl")),
            );
        }
        files
    }
}

fn open_log(path: &Path, append: bool) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .with_context(|| format!("cannot open log file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in for `tandem`: records its arguments, then waits to be stopped.
    fn fake_program(dir: &Path) -> PathBuf {
        let path = dir.join("fake-tandem");
        let script = format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexec sleep 30\n",
            dir.join("calls").display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Whether replica `i`'s process reaches a kernel state (`/proc/PID/stat`'s letter:
    /// `T` when stopped) within 5 s.
    async fn state_becomes(
        backend: &ProcessBackend,
        i: usize,
        want: impl Fn(char) -> bool,
    ) -> bool {
        let Some(pid) = backend.children[i].as_ref().and_then(Child::id) else {
            return false;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            if state.is_some_and(&want) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// The calls recorded so far, once there are `n` of them.
    async fn calls(dir: &Path, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.len() >= n || tokio::time::Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn runs_the_given_program_and_kills_restarts_and_stops_it() {
        let dir = tempfile::tempdir().unwrap();
        let command = ReplicaCommand {
            program: fake_program(dir.path()),
            cluster: dir.path().join("cluster.toml"),
            keys: vec![dir.path().join("r0.key"), dir.path().join("r1.key")],
            out: dir.path().to_path_buf(),
            byzantine: vec![None, Some("silent".into())],
            metrics_interval_ms: 250,
            cpu_sets: Vec::new(),
        };
        let mut backend = ProcessBackend::start(command).unwrap();
        assert!(backend.is_running(0) && backend.is_running(1));
        assert_eq!(calls(dir.path(), 2).await.len(), 2);
        backend.kill(0).await.unwrap();
        assert!(!backend.is_running(0));
        backend.restart(0).await.unwrap();
        assert!(backend.is_running(0));
        backend.pause(1);
        assert!(
            state_becomes(&backend, 1, |s| s == 'T').await,
            "SIGSTOP stops the replica"
        );
        assert!(backend.is_running(1), "a paused replica has not exited");
        backend.resume(1);
        assert!(
            state_becomes(&backend, 1, |s| s != 'T').await,
            "SIGCONT lets it run again"
        );
        assert!(backend.is_running(1));
        assert_eq!(backend.metrics_files(0).len(), 2);
        let calls = calls(dir.path(), 3).await;
        backend.stop_all(Duration::from_secs(5)).await;
        assert!(!backend.is_running(0) && !backend.is_running(1));

        assert_eq!(calls.len(), 3, "{calls:?}");
        let r1 = calls.iter().find(|c| c.contains("--id 1")).unwrap();
        assert!(r1.starts_with("replica --cluster "), "{r1}");
        assert!(
            r1.ends_with("--metrics-interval-ms 250 --byzantine silent"),
            "{r1}"
        );
        assert!(
            calls
                .iter()
                .any(|c| c.contains("replica-0.restart-1.metrics.jsonl"))
        );
    }

    /// The CPU list a process may run on (`/proc/PID/status` `Cpus_allowed_list`).
    fn cpus_allowed(pid: u32) -> CpuSet {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .expect("a Cpus_allowed_list line");
        CpuSet::parse(list).unwrap()
    }

    /// Issue 13 item 3: a replica with a CPU set runs pinned to it — read back from
    /// the kernel for the spawned process, through the very spawn path replicas take,
    /// also after a restart —; one without runs wherever this process may.
    #[tokio::test(flavor = "current_thread")]
    async fn a_replica_runs_pinned_to_its_cpu_set() {
        let dir = tempfile::tempdir().unwrap();
        let mine = CpuSet::this_process().unwrap();
        // The last usable CPU: on a machine with more than one, a set the child would
        // not have by inheritance.
        let last = CpuSet::from_cpus([*mine.cpus().last().unwrap()]).unwrap();
        let command = ReplicaCommand {
            program: fake_program(dir.path()),
            cluster: dir.path().join("cluster.toml"),
            keys: vec![dir.path().join("r0.key"), dir.path().join("r1.key")],
            out: dir.path().to_path_buf(),
            byzantine: vec![None, None],
            metrics_interval_ms: 250,
            cpu_sets: vec![Some(last.clone()), None],
        };
        let mut backend = ProcessBackend::start(command).unwrap();
        let pid =
            |b: &ProcessBackend, i: usize| b.children[i].as_ref().and_then(Child::id).unwrap();
        assert_eq!(cpus_allowed(pid(&backend, 0)), last);
        assert_eq!(cpus_allowed(pid(&backend, 1)), mine);
        backend.restart(0).await.unwrap();
        assert_eq!(
            cpus_allowed(pid(&backend, 0)),
            last,
            "pinned again after a restart"
        );
        backend.stop_all(Duration::from_secs(5)).await;
    }

    /// A set the kernel refuses (a CPU this machine lacks) fails the spawn instead of
    /// leaving the replica unpinned.
    #[tokio::test(flavor = "current_thread")]
    async fn a_set_the_kernel_refuses_fails_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let command = ReplicaCommand {
            program: fake_program(dir.path()),
            cluster: dir.path().join("cluster.toml"),
            keys: vec![dir.path().join("r0.key")],
            out: dir.path().to_path_buf(),
            byzantine: vec![None],
            metrics_interval_ms: 250,
            cpu_sets: vec![Some(CpuSet::from_cpus([1023]).unwrap())],
        };
        let err = ProcessBackend::start(command).err().expect("refused");
        assert!(
            format!("{err:#}").contains("cannot start replica 0"),
            "{err:#}"
        );
    }
}
