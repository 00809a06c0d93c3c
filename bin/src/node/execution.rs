//! The execution stage: a thread of its own that applies committed batches (and the
//! steps of a chunked state restore) to the application in delivery order while
//! consensus goes on, and reports each result back to the protocol driver. At a
//! checkpoint, and after installing a fetched state, it freezes a copy of the state
//! and hands it to a second thread that cuts it into verifiable chunks
//! (`state_chunk_bytes` each, a chunk list), so the next batches do not wait for it.

use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use bytes::Bytes;
use tandem_consensus::application::{Application, FrozenState};
use tandem_consensus::state_chunks::{RestoreOutcome, RestoreStep, chunk_list_of};
use tandem_consensus::{Delivery, Executed, Seq};
use tokio::sync::mpsc::UnboundedSender;

use crate::ledger_app::ExecutionTotals;

/// Work for the execution stage, in delivery order.
pub enum Job {
    /// Execute a delivered batch.
    Deliver(Delivery),
    /// A step of a chunked restore of a fetched state.
    Restore(RestoreStep),
}

/// What the execution stage reports back.
pub enum Done {
    /// A batch was executed.
    Executed(Executed, ExecutionTotals),
    /// A checkpoint's state was cut into chunks.
    Snapshot {
        /// The checkpoint.
        seq: Seq,
        /// The state as a chunk list.
        snapshot: Bytes,
    },
    /// The outcome of a restore step.
    Restored(RestoreOutcome),
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

impl ReplicatedApp for crate::evm_app::EvmApp {
    fn totals(&self) -> ExecutionTotals {
        crate::evm_app::EvmApp::totals(self).clone()
    }
}

impl ReplicatedApp for tandem_consensus::application::HashChainApp {
    fn totals(&self) -> ExecutionTotals {
        ExecutionTotals::default()
    }
}

/// The next job, waiting for one if none is queued; before waiting, the application
/// uses the idle time to prepare its next digest (so a checkpoint's Merkle fold is
/// spread over the gaps between batches instead of stalling the checkpoint). `None`
/// once the stage is dropped.
fn next_job(rx: &mpsc::Receiver<Job>, app: &mut dyn ReplicatedApp) -> Option<Job> {
    match rx.try_recv() {
        Ok(job) => Some(job),
        Err(mpsc::TryRecvError::Empty) => {
            app.prepare_digest();
            rx.recv().ok()
        }
        Err(mpsc::TryRecvError::Disconnected) => None,
    }
}

/// The running execution stage.
pub struct ExecutionStage {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    snapshotter: Option<JoinHandle<()>>,
}

impl ExecutionStage {
    /// Starts the thread; results go to `done`; checkpoint states are cut into chunks
    /// of `state_chunk_bytes`.
    pub fn start(
        mut app: Box<dyn ReplicatedApp + Send>,
        done: UnboundedSender<Done>,
        state_chunk_bytes: usize,
    ) -> Result<ExecutionStage> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (frozen_tx, frozen_rx) = mpsc::channel::<(Seq, Box<dyn FrozenState>)>();
        let snapshot_done = done.clone();
        let snapshotter = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                for (seq, frozen) in frozen_rx {
                    let snapshot = chunk_list_of(frozen.as_ref(), state_chunk_bytes);
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
                while let Some(job) = next_job(&rx, app.as_mut()) {
                    let (report, frozen) = match job {
                        Job::Deliver(d) => {
                            let results = app.execute(d.seq, &d.batch);
                            // The digest costs work (the ledger's Merkle tree): only
                            // checkpoints sign it.
                            let app_digest = d.checkpoint.then(|| app.digest());
                            let executed = Executed {
                                seq: d.seq,
                                app_digest,
                                results,
                            };
                            let frozen = d.checkpoint.then(|| (d.seq, app.freeze()));
                            (Done::Executed(executed, app.totals()), frozen)
                        }
                        Job::Restore(step) => {
                            let Some(outcome) = step.apply(app.as_mut()) else {
                                continue;
                            };
                            let frozen = match outcome {
                                RestoreOutcome::Installed { seq, ok: true } => {
                                    Some((seq, app.freeze()))
                                }
                                _ => None,
                            };
                            (Done::Restored(outcome), frozen)
                        }
                    };
                    // The report goes first: the protocol records the checkpoint it
                    // belongs to before the snapshot thread reports its state.
                    if done.send(report).is_err() {
                        break;
                    }
                    if let Some(frozen) = frozen {
                        // Dropped only if the snapshot thread is gone, i.e. at shutdown.
                        let _ = frozen_tx.send(frozen);
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
