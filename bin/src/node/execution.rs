//! The execution stage: a thread of its own that applies committed batches (and
//! fetched snapshots) to the application in delivery order while consensus goes on,
//! and reports each result back to the protocol driver. At a checkpoint it freezes a
//! copy of the state and hands it to a second thread that serialises it, so the next
//! batches do not wait for the snapshot.

use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use bytes::Bytes;
use tandem_consensus::application::{Application, FrozenState};
use tandem_consensus::{Delivery, Digest, Executed, Seq};
use tokio::sync::mpsc::UnboundedSender;

use crate::ledger_app::ExecutionTotals;

/// Work for the execution stage, in delivery order.
pub enum Job {
    /// Execute a delivered batch.
    Deliver(Delivery),
    /// Replace the state with a fetched snapshot.
    Install {
        /// Its checkpoint.
        seq: Seq,
        /// The digest the certificate vouches for.
        app_digest: Digest,
        /// The serialised state.
        snapshot: Bytes,
    },
}

/// What the execution stage reports back.
pub enum Done {
    /// A batch was executed.
    Executed(Executed, ExecutionTotals),
    /// A checkpoint's state was serialised.
    Snapshot {
        /// The checkpoint.
        seq: Seq,
        /// The serialised state.
        snapshot: Bytes,
    },
    /// A snapshot was installed (or rejected).
    Installed {
        /// Its checkpoint.
        seq: Seq,
        /// Whether it was installed.
        ok: bool,
    },
}

/// An application plus a way to read its totals.
pub trait ReplicatedApp: Application {
    /// What the executor did so far.
    fn totals(&self) -> ExecutionTotals;
}

impl ReplicatedApp for crate::ledger_app::LedgerApp {
    fn totals(&self) -> ExecutionTotals {
        crate::ledger_app::LedgerApp::totals(self).clone()
    }
}

impl ReplicatedApp for tandem_consensus::application::HashChainApp {
    fn totals(&self) -> ExecutionTotals {
        ExecutionTotals::default()
    }
}

/// The running execution stage.
pub struct ExecutionStage {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    snapshotter: Option<JoinHandle<()>>,
}

impl ExecutionStage {
    /// Starts the thread; results go to `done`.
    pub fn start(
        mut app: Box<dyn ReplicatedApp + Send>,
        done: UnboundedSender<Done>,
    ) -> Result<ExecutionStage> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (frozen_tx, frozen_rx) = mpsc::channel::<(Seq, Box<dyn FrozenState>)>();
        let snapshot_done = done.clone();
        let snapshotter = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                for (seq, frozen) in frozen_rx {
                    let snapshot = frozen.encode();
                    if snapshot_done
                        .send(Done::Snapshot { seq, snapshot })
                        .is_err()
                    {
                        break;
                    }
                }
            })
            .context("cannot start the snapshot thread")?;
        let thread = std::thread::Builder::new()
            .name("execution".into())
            .spawn(move || {
                for job in rx {
                    let report = match job {
                        Job::Deliver(d) => {
                            let (results, app_digest) = app.execute(d.seq, &d.batch);
                            let executed = Executed {
                                seq: d.seq,
                                app_digest,
                                results,
                            };
                            if d.checkpoint {
                                // Dropped only if the snapshot thread is gone, i.e. at shutdown.
                                let _ = frozen_tx.send((d.seq, app.freeze()));
                            }
                            Done::Executed(executed, app.totals())
                        }
                        Job::Install {
                            seq,
                            app_digest,
                            snapshot,
                        } => Done::Installed {
                            seq,
                            ok: app.restore(&snapshot, &app_digest),
                        },
                    };
                    if done.send(report).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the execution thread")?;
        Ok(ExecutionStage {
            jobs: Some(jobs),
            thread: Some(thread),
            snapshotter: Some(snapshotter),
        })
    }

    /// Queues a job.
    pub fn submit(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // The thread only stops when the stage is dropped.
            let _ = jobs.send(job);
        }
    }
}

impl Drop for ExecutionStage {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(thread) = self.snapshotter.take() {
            let _ = thread.join();
        }
    }
}
