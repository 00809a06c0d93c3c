//! The Block-STM executor (Gelashvili et al., "Block-STM: Scaling Blockchain
//! Execution by Turning Ordering Curse to a Performance Blessing", PPoPP 2023):
//! optimistic execution of the whole batch on every thread, reads served from a
//! multi-version memory (`mvmemory.rs`), each incarnation validated by re-reading
//! its read set, aborted incarnations re-executed with their old writes left as
//! ESTIMATE markers so that readers wait instead of reading stale values, all
//! driven by the collaborative scheduler (`scheduler.rs`). No declared read/write
//! sets are used.
//!
//! Per batch: signature pre-check (parallel), one `broadcast` running the worker
//! loop on every thread of the executor's pool, then — again on every thread, one
//! state shard at a time — the highest version of every written key is committed
//! to the state and the digest updated. Per-thread scratch (read set, write set, dependents) is reused, so
//! executing a transaction allocates nothing in the steady state.

mod mvmemory;
mod scheduler;

use std::sync::{Arc, Mutex, PoisonError};

use mvmemory::{MvMemory, MvRead, Origin, ReadDescriptor};
use scheduler::{Scheduler, Task, TxnIndex, Version};

use crate::apply::{ReadError, StateView, WriteSet, apply};
use crate::cost::ExecutionLimits;
use crate::error::Error;
use crate::executor::{BatchOutcome, BatchStats, Executor};
use crate::pool::{WorkerPool, backoff};
use crate::signature;
use crate::state::{Key, SHARDS, Shard, State, Value};
use crate::tx::{AbortReason, Receipt, Transaction};

/// Block-STM over a reusable pool of threads.
pub struct BlockStmExecutor {
    pool: Arc<WorkerPool>,
    limits: ExecutionLimits,
    scheduler: Scheduler,
    mv: MvMemory,
    prechecks: Vec<Option<AbortReason>>,
    /// Size of the last batch run.
    last_n: usize,
    /// Whether the last batch was committed (which resets the per-transaction
    /// slots in parallel); if not, the next batch resets them serially.
    clean: bool,
}

impl std::fmt::Debug for BlockStmExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStmExecutor")
            .field("threads", &self.pool.threads())
            .finish()
    }
}

/// Counters one thread accumulates during a batch.
#[derive(Default, Clone, Copy)]
struct WorkerStats {
    executions: u64,
    validations: u64,
    validation_aborts: u64,
    dependency_waits: u64,
}

/// What the workers share during one batch.
struct Batch<'a> {
    txs: &'a [Transaction],
    prechecks: &'a [Option<AbortReason>],
    base: &'a State,
    scheduler: &'a Scheduler,
    mv: &'a MvMemory,
    totals: Mutex<WorkerStats>,
}

/// A transaction's view: lower transactions' versions, else the pre-batch state;
/// every read is recorded for validation.
struct MvView<'a> {
    mv: &'a MvMemory,
    base: &'a State,
    txn: TxnIndex,
    reads: &'a mut Vec<ReadDescriptor>,
}

impl StateView for MvView<'_> {
    fn read(&mut self, key: &Key) -> Result<Option<Value>, ReadError> {
        match self.mv.read(key, self.txn) {
            MvRead::Written(version, value) => {
                self.reads.push(ReadDescriptor {
                    key: *key,
                    origin: Origin::Written(version),
                });
                Ok(Some(value))
            }
            MvRead::Estimate(blocking) => Err(ReadError::Dependency(blocking)),
            MvRead::Storage => {
                self.reads.push(ReadDescriptor {
                    key: *key,
                    origin: Origin::Storage,
                });
                Ok(self.base.get(key))
            }
        }
    }
}

impl BlockStmExecutor {
    /// A Block-STM executor with its own pool of `threads` threads.
    pub fn new(threads: usize) -> Result<BlockStmExecutor, Error> {
        Ok(BlockStmExecutor::with_pool(Arc::new(WorkerPool::new(
            threads,
        )?)))
    }

    /// The same, with cost limits other than the defaults.
    pub fn with_limits(mut self, limits: ExecutionLimits) -> BlockStmExecutor {
        self.limits = limits;
        self
    }

    /// A Block-STM executor running on an existing pool.
    pub fn with_pool(pool: Arc<WorkerPool>) -> BlockStmExecutor {
        BlockStmExecutor {
            pool,
            limits: ExecutionLimits::default(),
            scheduler: Scheduler::default(),
            mv: MvMemory::default(),
            prechecks: Vec::new(),
            last_n: 0,
            clean: true,
        }
    }

    pub fn threads(&self) -> usize {
        self.pool.threads()
    }
}

impl Executor for BlockStmExecutor {
    fn name(&self) -> &str {
        "block-stm"
    }

    /// Settles the state on this executor's pool.
    fn digest(&mut self, state: &mut State) -> [u8; 32] {
        state.settle(Some(&self.pool));
        state.digest()
    }

    fn execute(&mut self, state: &mut State, txs: &[Transaction]) -> BatchOutcome {
        let mut prechecks = std::mem::take(&mut self.prechecks);
        let verified = signature::precheck(state, txs, Some(&self.pool), &mut prechecks);
        let gas = self.limits.charge(txs, &mut prechecks);
        let mut receipts = Vec::with_capacity(txs.len());
        let mut stats = BatchStats {
            signatures_verified: verified,
            gas,
            ..BatchStats::default()
        };
        self.run(state, txs, &prechecks, &mut receipts, &mut stats);
        self.prechecks = prechecks;
        self.commit(state);
        BatchOutcome { receipts, stats }
    }
}

impl BlockStmExecutor {
    /// Runs Block-STM over `txs` given their signature verdicts and appends
    /// their receipts. The results stay in the multi-version memory until the
    /// batch is finished with `commit` (in parallel, per state shard).
    pub(crate) fn run(
        &mut self,
        state: &State,
        txs: &[Transaction],
        prechecks: &[Option<AbortReason>],
        receipts: &mut Vec<Receipt>,
        stats: &mut BatchStats,
    ) {
        let n = txs.len();
        stats.transactions += n as u64;
        let clean = std::mem::replace(&mut self.clean, false);
        if n >= u32::MAX as usize {
            // Transaction indices are u32; such a batch cannot be built in memory
            // anyway. Refuse it as a whole rather than misbehave.
            self.scheduler.reset(0, clean);
            self.mv.reset(0, clean);
            self.last_n = 0;
            receipts.extend(std::iter::repeat_n(
                Receipt::Aborted(AbortReason::Internal),
                n,
            ));
            return;
        }
        self.scheduler.reset(n, clean);
        self.mv.reset(n, clean);
        self.last_n = n;
        if n == 0 {
            return;
        }
        let batch = Batch {
            txs,
            prechecks,
            base: state,
            scheduler: &self.scheduler,
            mv: &self.mv,
            totals: Mutex::new(WorkerStats::default()),
        };
        self.pool.broadcast(&|_| worker(&batch));
        let totals = *batch.totals.lock().unwrap_or_else(PoisonError::into_inner);
        receipts.extend((0..n).map(|i| self.mv.receipt(i)));
        stats.executions += totals.executions;
        stats.validations += totals.validations;
        stats.validation_aborts += totals.validation_aborts;
        stats.dependency_waits += totals.dependency_waits;
    }

    /// Writes the batch's final versions for state shard `shard` (called once
    /// for each of the `SHARDS` shards, in parallel), and resets the matching
    /// slice of the per-transaction slots for the next batch.
    fn commit_shard(&self, shard: usize, out: &mut Shard) {
        self.mv.commit_shard(shard, out);
        let n = self.last_n;
        let range = shard * n / SHARDS..(shard + 1) * n / SHARDS;
        self.scheduler.clean_range(range.clone());
        self.mv.clean_range(range);
    }

    /// Writes the last `run`'s results into `state` and finishes the batch there
    /// (every shard committed and its digest folded, in parallel on the pool).
    pub(crate) fn commit(&mut self, state: &mut State) {
        let this = &*self;
        state.finish_batch_with(Some(&self.pool), |i, shard| this.commit_shard(i, shard));
        self.clean = true;
    }
}

/// The per-thread loop of Algorithm 1: run the task in hand, else ask for one,
/// until the scheduler says the batch is done.
fn worker(b: &Batch<'_>) {
    let mut stats = WorkerStats::default();
    let mut reads: Vec<ReadDescriptor> = Vec::with_capacity(16);
    let mut writes = WriteSet::default();
    let mut dependents: Vec<TxnIndex> = Vec::new();
    let mut task: Option<Task> = None;
    let mut idle: u32 = 0;
    loop {
        task = match task {
            Some(Task::Execute(version)) => try_execute(
                b,
                version,
                &mut reads,
                &mut writes,
                &mut dependents,
                &mut stats,
            ),
            Some(Task::Validate(version)) => validate(b, version, &mut stats),
            None => {
                if b.scheduler.done() {
                    break;
                }
                let next = b.scheduler.next_task();
                if next.is_none() {
                    backoff(&mut idle);
                } else {
                    idle = 0;
                }
                next
            }
        };
    }
    let mut t = b.totals.lock().unwrap_or_else(PoisonError::into_inner);
    t.executions += stats.executions;
    t.validations += stats.validations;
    t.validation_aborts += stats.validation_aborts;
    t.dependency_waits += stats.dependency_waits;
}

fn try_execute(
    b: &Batch<'_>,
    version: Version,
    reads: &mut Vec<ReadDescriptor>,
    writes: &mut WriteSet,
    dependents: &mut Vec<TxnIndex>,
    stats: &mut WorkerStats,
) -> Option<Task> {
    let i = version.txn as usize;
    let tx = &b.txs[i];
    loop {
        reads.clear();
        stats.executions += 1;
        let mut view = MvView {
            mv: b.mv,
            base: b.base,
            txn: version.txn,
            reads,
        };
        match apply(tx, b.prechecks[i], &mut view, writes) {
            Ok(receipt) => {
                let wrote_new = b.mv.record(version, reads, writes, receipt);
                return b.scheduler.finish_execution(version, wrote_new, dependents);
            }
            Err(blocked) => {
                if b.scheduler.add_dependency(version.txn, blocked.0) {
                    stats.dependency_waits += 1;
                    return None;
                }
                // The blocking transaction finished in the meantime: go again.
            }
        }
    }
}

fn validate(b: &Batch<'_>, version: Version, stats: &mut WorkerStats) -> Option<Task> {
    stats.validations += 1;
    let valid = b.mv.validate_read_set(version.txn);
    let aborted = !valid && b.scheduler.try_validation_abort(version);
    if aborted {
        stats.validation_aborts += 1;
        b.mv.convert_writes_to_estimates(version.txn);
    }
    b.scheduler.finish_validation(version.txn, aborted)
}
