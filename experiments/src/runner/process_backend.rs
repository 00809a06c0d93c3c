//! Replica processes of a local cluster: spawned from the `tandem` executable, logging to
//! files, killed or restarted on demand, and never outliving the launcher — they die
//! with it through `PR_SET_PDEATHSIG` even if it is killed, and on drop otherwise.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::{Child, Command};

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
pub struct Launcher {
    command: ReplicaCommand,
    children: Vec<Option<Child>>,
    incarnations: Vec<u32>,
}

impl Launcher {
    /// Starts every replica.
    pub fn start(command: ReplicaCommand) -> Result<Launcher> {
        let n = command.keys.len();
        let mut launcher = Launcher {
            command,
            children: (0..n).map(|_| None).collect(),
            incarnations: vec![0; n],
        };
        for i in 0..n {
            launcher.spawn(i)?;
        }
        Ok(launcher)
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
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe; it makes the kernel
        // kill the child when this process dies, however it dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
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

    /// Whether replica `i` is running.
    pub fn is_running(&mut self, i: usize) -> bool {
        match self.children.get_mut(i).and_then(Option::as_mut) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Asks every replica to stop (SIGTERM) and waits up to `grace`; kills the rest.
    pub async fn stop_all(&mut self, grace: Duration) {
        for child in self.children.iter().flatten() {
            if let Some(pid) = child.id() {
                // SAFETY: sending a signal to our own child process.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGTERM);
                }
            }
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
