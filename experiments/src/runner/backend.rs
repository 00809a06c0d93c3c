//! The replicas of a run, whatever runs them: [`Backend`] is the one interface the
//! runner and the nemesis use — processes on this machine ([`ProcessBackend`]) or
//! containers on a private Docker network ([`DockerBackend`]). Each operation is the
//! backend's own: a crash is SIGKILL or `docker kill`, a pause SIGSTOP or `docker
//! pause`. Isolation is the one operation only the Docker backend has (`docker network
//! disconnect`); on processes it stays in Tandem's fault layer
//! ([`Backend::isolates_replicas`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::runner::docker_backend::DockerBackend;
use crate::runner::process_backend::ProcessBackend;
use crate::scenario::BackendKind;

/// The running replicas.
pub enum Backend {
    /// One process per replica.
    Process(ProcessBackend),
    /// One container per replica.
    Docker(DockerBackend),
}

impl Backend {
    /// Which backend this is.
    pub fn kind(&self) -> BackendKind {
        match self {
            Backend::Process(_) => BackendKind::Process,
            Backend::Docker(_) => BackendKind::Docker,
        }
    }

    /// Kills replica `i` at once (SIGKILL, like a crash).
    pub async fn kill(&mut self, i: usize) -> Result<()> {
        match self {
            Backend::Process(b) => b.kill(i).await,
            Backend::Docker(b) => b.kill(i).await,
        }
    }

    /// Stops replica `i` gracefully (SIGTERM), killing it after `grace`.
    pub async fn stop(&mut self, i: usize, grace: Duration) -> Result<()> {
        match self {
            Backend::Process(b) => {
                b.stop(i, grace).await;
                Ok(())
            }
            Backend::Docker(b) => b.stop(i, grace).await,
        }
    }

    /// Starts replica `i` again in Byzantine `mode` (honest with `None`), killing it
    /// first if it runs. What it keeps is the cluster's durability: nothing with
    /// `none`, its log with `wal`.
    pub async fn restart_as(&mut self, i: usize, mode: Option<String>) -> Result<()> {
        match self {
            Backend::Process(b) => b.restart_as(i, mode).await,
            Backend::Docker(b) => b.restart_as(i, mode).await,
        }
    }

    /// Freezes replica `i`: its connections stay open, nothing is answered.
    pub async fn pause(&mut self, i: usize) -> Result<()> {
        match self {
            Backend::Process(b) => {
                b.pause(i);
                Ok(())
            }
            Backend::Docker(b) => b.pause(i).await,
        }
    }

    /// Lets a paused replica `i` run again.
    pub async fn resume(&mut self, i: usize) -> Result<()> {
        match self {
            Backend::Process(b) => {
                b.resume(i);
                Ok(())
            }
            Backend::Docker(b) => b.resume(i).await,
        }
    }

    /// Whether the backend cuts a replica off the network itself ([`Backend::isolate`]);
    /// when not, `isolate` is a rule of Tandem's fault layer.
    pub fn isolates_replicas(&self) -> bool {
        matches!(self, Backend::Docker(_))
    }

    /// Cuts replica `i` off every node, clients and launcher included (Docker: `docker
    /// network disconnect`). An error on a backend that cannot
    /// ([`Backend::isolates_replicas`]).
    pub async fn isolate(&mut self, i: usize) -> Result<()> {
        match self {
            Backend::Process(_) => {
                anyhow::bail!("the process backend isolates replicas in the fault layer")
            }
            Backend::Docker(b) => b.disconnect(i).await,
        }
    }

    /// Connects an isolated replica `i` again, at its address and host name.
    pub async fn reconnect(&mut self, i: usize) -> Result<()> {
        match self {
            Backend::Process(_) => {
                anyhow::bail!("the process backend isolates replicas in the fault layer")
            }
            Backend::Docker(b) => b.connect(i).await,
        }
    }

    /// Whether replica `i` is running.
    pub async fn is_running(&mut self, i: usize) -> bool {
        match self {
            Backend::Process(b) => b.is_running(i),
            Backend::Docker(b) => b.is_running(i).await,
        }
    }

    /// Asks every replica to stop and waits up to `grace`; kills the rest.
    pub async fn stop_all(&mut self, grace: Duration) {
        match self {
            Backend::Process(b) => b.stop_all(grace).await,
            Backend::Docker(b) => b.stop_all(grace).await,
        }
    }

    /// Every metrics file replica `i` wrote, in incarnation order.
    pub fn metrics_files(&self, i: usize) -> Vec<PathBuf> {
        match self {
            Backend::Process(b) => b.metrics_files(i),
            Backend::Docker(b) => b.metrics_files(i),
        }
    }
}
