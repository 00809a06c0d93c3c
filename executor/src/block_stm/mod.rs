//! The Block-STM executor (Gelashvili et al., "Block-STM: Scaling Blockchain
//! Execution by Turning Ordering Curse to a Performance Blessing", PPoPP 2023):
//! optimistic execution of the whole batch on every thread, reads served from a
//! multi-version memory (`mvmemory.rs` over the lock-free key table of `keys.rs`),
//! each incarnation validated by re-reading its read set, aborted incarnations
//! re-executed with their old writes left as ESTIMATE markers so that readers wait
//! instead of reading stale values, all driven by the collaborative scheduler
//! (`scheduler.rs`). No declared read/write sets are used.
//!
//! Generic over the VM (`vm.rs`): the scheduler and the multi-version memory see
//! keys, values and receipts only, and a transaction runs through `Vm::execute`
//! against a view of the multi-version memory over the pre-batch state.
//!
//! Per batch: admission (signature checks in parallel, then gas in batch order),
//! one `broadcast` running the worker loop on every worker thread, then — again on
//! every thread, one state shard at a time — the highest version of every written
//! key is committed to the state and the digest updated. Per-thread scratch (read
//! set, write set, dependents, the VM's own) is reused, so executing a transaction
//! allocates nothing in the steady state beyond what the VM allocates (and a key
//! written by two or more transactions of the batch, whose chain spills).
//!
//! **One worker runs the batch in order.** With a single worker thread (and for a
//! batch of one transaction) nothing can run beside a transaction, so speculation
//! can only cost: the batch runs through the sequential executor's loop instead —
//! the same `Vm::execute`, each transaction's writes applied to the state before
//! the next one reads — which gives the sequential receipts and state by
//! construction. Aptos' block executor does the same at concurrency 1.
//! `ExecutorOptions::block_stm_speculate_alone` (`speculate_alone`) keeps the
//! speculative path on one thread, to measure what it costs.
//!
//! **Repeating an execution before publishing it.** When an execution finishes,
//! its read set is checked at once (cheap: slot pointers, no lookups); if a lower
//! transaction recorded a write it read around meanwhile, it runs again right
//! away, up to `EARLY_RETRIES` times, still as the same incarnation (nothing of it
//! was published, so nobody can tell). Otherwise its stale writes would be
//! recorded, read by higher transactions, fail validation, become ESTIMATEs and be
//! re-executed with every higher transaction revalidated.

mod keys;
mod mvmemory;
mod scheduler;
mod spin;

use std::sync::{Arc, Mutex, PoisonError};

use mvmemory::{MvMemory, MvRead, ReadDescriptor};
use scheduler::{Scheduler, Task, TxnIndex, Version};

use crate::cost::ExecutionLimits;
use crate::error::Error;
use crate::executor::{BatchOutcome, BatchStats, Executor};
use crate::ledger_vm::LedgerVm;
use crate::sequential::SequentialExecutor;
use crate::state::SHARDS;
use crate::threads::{WorkerThreads, backoff};
use crate::vm::{ReadError, ReadView, Vm, WriteSet};

/// Block-STM over a reusable set of worker threads.
pub struct BlockStmExecutor<V: Vm = LedgerVm> {
    vm: V,
    threads: Arc<WorkerThreads>,
    scheduler: Scheduler,
    mv: MvMemory<V>,
    verdicts: Vec<Option<V::Verdict>>,
    /// Runs a batch in order when speculation cannot pay (one worker thread).
    in_order: SequentialExecutor<V>,
    /// Run the speculative machinery even on one worker thread.
    speculate_alone: bool,
    /// Whether the last batch ran in order (its writes are already in the state).
    last_in_order: bool,
    /// Size of the last batch run.
    last_n: usize,
    /// Whether the last batch was committed (which resets the per-transaction
    /// slots in parallel); if not, the next batch resets them serially.
    clean: bool,
}

impl<V: Vm> std::fmt::Debug for BlockStmExecutor<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStmExecutor")
            .field("threads", &self.threads.count())
            .finish()
    }
}

/// How many times in a row an execution that read a value overwritten while it
/// ran is repeated at once, before its results are recorded anyway (and left to
/// validation).
const EARLY_RETRIES: u32 = 2;

/// Counters one thread accumulates during a batch.
#[derive(Default, Clone, Copy)]
struct WorkerStats {
    /// Executions, counting those repeated before recording.
    executions: u64,
    validations: u64,
    validation_aborts: u64,
    dependency_waits: u64,
}

/// What the workers share during one batch.
struct Batch<'a, V: Vm> {
    vm: &'a V,
    txs: &'a [V::Tx],
    verdicts: &'a [Option<V::Verdict>],
    base: &'a V::State,
    scheduler: &'a Scheduler,
    mv: &'a MvMemory<V>,
    totals: Mutex<WorkerStats>,
}

/// A transaction's view: lower transactions' versions, else the pre-batch state;
/// every read is recorded for validation.
struct MvView<'a, V: Vm> {
    mv: &'a MvMemory<V>,
    base: &'a V::State,
    txn: TxnIndex,
    reads: &'a mut Vec<ReadDescriptor<V>>,
}

impl<V: Vm> ReadView<V> for MvView<'_, V> {
    #[inline]
    fn read(&mut self, key: &V::Key) -> Result<Option<V::Value>, ReadError> {
        let (read, descriptor) = self.mv.read(key, self.txn);
        self.reads.extend(descriptor);
        match read {
            MvRead::Written(value) => Ok(Some(value)),
            MvRead::Estimate(blocking) => Err(ReadError::Dependency(blocking)),
            MvRead::Storage => Ok(V::read_state(self.base, key)),
        }
    }
}

impl BlockStmExecutor {
    /// A native ledger Block-STM executor with its own `threads` worker threads,
    /// under the default cost limits.
    pub fn new(threads: usize) -> Result<BlockStmExecutor, Error> {
        BlockStmExecutor::for_vm(LedgerVm::default(), threads)
    }

    /// The same, with cost limits other than the defaults.
    pub fn with_limits(mut self, limits: ExecutionLimits) -> BlockStmExecutor {
        self.vm.limits = limits;
        self.in_order = self.in_order.with_limits(limits);
        self
    }
}

impl<V: Vm> BlockStmExecutor<V> {
    /// A Block-STM executor of `vm` with its own `threads` worker threads.
    pub fn for_vm(vm: V, threads: usize) -> Result<BlockStmExecutor<V>, Error> {
        Ok(BlockStmExecutor::with_threads(
            vm,
            Arc::new(WorkerThreads::new(threads)?),
        ))
    }

    /// A Block-STM executor of `vm` running on existing worker threads.
    pub fn with_threads(vm: V, threads: Arc<WorkerThreads>) -> BlockStmExecutor<V> {
        BlockStmExecutor {
            in_order: SequentialExecutor::for_vm(vm.clone()),
            vm,
            threads,
            scheduler: Scheduler::default(),
            mv: MvMemory::default(),
            verdicts: Vec::new(),
            speculate_alone: false,
            last_in_order: false,
            last_n: 0,
            clean: true,
        }
    }

    /// With `true`, runs the speculative machinery even on one worker thread
    /// (where it can only cost: for measuring it); by default one worker runs a
    /// batch in order.
    pub fn speculate_alone(mut self, speculate: bool) -> BlockStmExecutor<V> {
        self.speculate_alone = speculate;
        self
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads.count()
    }

    /// Whether a batch of `n` transactions runs in order rather than
    /// speculatively: with one worker thread (unless `speculate_alone`) there is
    /// nobody to share the batch with, and a single transaction has nothing to
    /// run beside it.
    fn runs_in_order(&self, n: usize) -> bool {
        n == 1 || (self.threads.count() == 1 && !self.speculate_alone)
    }
}

impl<V: Vm> Executor<V> for BlockStmExecutor<V> {
    fn name(&self) -> &str {
        "block-stm"
    }

    /// Settles the state on this executor's threads.
    fn digest(&mut self, state: &mut V::State) -> [u8; 32] {
        V::digest(state, Some(&self.threads))
    }

    fn execute(&mut self, state: &mut V::State, txs: &[V::Tx]) -> BatchOutcome<V::Receipt> {
        let mut verdicts = std::mem::take(&mut self.verdicts);
        let admission = self
            .vm
            .admit(state, txs, Some(&self.threads), &mut verdicts);
        let mut receipts = Vec::with_capacity(txs.len());
        let mut stats = BatchStats {
            signatures_verified: admission.signatures_verified,
            gas: admission.gas,
            ..BatchStats::default()
        };
        self.run(state, txs, &verdicts, &mut receipts, &mut stats);
        self.verdicts = verdicts;
        self.commit(state);
        BatchOutcome { receipts, stats }
    }
}

impl<V: Vm> BlockStmExecutor<V> {
    /// Runs Block-STM over `txs` given their admission verdicts and appends
    /// their receipts. The results stay in the multi-version memory until the
    /// batch is finished with `commit` (in parallel, per state shard).
    pub(crate) fn run(
        &mut self,
        state: &mut V::State,
        txs: &[V::Tx],
        verdicts: &[Option<V::Verdict>],
        receipts: &mut Vec<V::Receipt>,
        stats: &mut BatchStats,
    ) {
        let n = txs.len();
        stats.transactions += n as u64;
        self.last_in_order = self.runs_in_order(n);
        if self.last_in_order {
            // The sequential executor's loop: the same `Vm::execute`, each
            // transaction's writes applied to the state before the next reads.
            self.in_order.run(state, txs, verdicts, receipts);
            stats.executions += n as u64;
            return;
        }
        let clean = std::mem::replace(&mut self.clean, false);
        if n >= u32::MAX as usize {
            // Transaction indices are u32; such a batch cannot be built in memory
            // anyway. Refuse it as a whole rather than misbehave.
            self.scheduler.reset(0, self.threads.count(), clean);
            self.mv.reset(0, clean);
            self.last_n = 0;
            receipts.extend(std::iter::repeat_n(self.vm.internal_error(), n));
            return;
        }
        self.scheduler.reset(n, self.threads.count(), clean);
        self.mv.reset(n, clean);
        self.last_n = n;
        if n == 0 {
            return;
        }
        let batch = Batch {
            vm: &self.vm,
            txs,
            verdicts,
            base: state,
            scheduler: &self.scheduler,
            mv: &self.mv,
            totals: Mutex::new(WorkerStats::default()),
        };
        self.threads.broadcast(&|id| worker(&batch, id));
        let totals = *batch.totals.lock().unwrap_or_else(PoisonError::into_inner);
        self.mv.learn(n);
        for i in 0..n {
            let receipt = self.mv.take_receipt(i);
            receipts.push(receipt.unwrap_or_else(|| self.vm.internal_error()));
        }
        stats.executions += totals.executions;
        stats.validations += totals.validations;
        stats.validation_aborts += totals.validation_aborts;
        stats.dependency_waits += totals.dependency_waits;
    }

    /// Writes the batch's final versions for state shard `shard` (called once
    /// for each of the `SHARDS` shards, in parallel), and resets the matching
    /// slice of the per-transaction slots for the next batch.
    fn commit_shard(
        mv: &MvMemory<V>,
        scheduler: &Scheduler,
        n: usize,
        shard: usize,
        out: &mut V::Shard,
    ) {
        let range = shard * n / SHARDS..(shard + 1) * n / SHARDS;
        // SAFETY: called after the batch's broadcast has returned (no worker
        // runs), once per shard, and the shards' calls own disjoint key tables
        // and disjoint ranges of transactions.
        unsafe {
            mv.commit_shard(shard, out);
            scheduler.clean_range(range.clone());
            mv.clean_range(range);
        }
    }

    /// Writes the last `run`'s results into `state` and finishes the batch there
    /// (every shard committed and its digest folded, in parallel on the worker
    /// threads).
    pub(crate) fn commit(&mut self, state: &mut V::State) {
        if self.last_in_order {
            // Everything is in the state already; the multi-version memory and
            // the scheduler were not touched.
            V::finish_batch(state, Some(&self.threads), |_, _| {});
            return;
        }
        let (mv, scheduler, n) = (&self.mv, &self.scheduler, self.last_n);
        V::finish_batch(state, Some(&self.threads), |i, shard| {
            Self::commit_shard(mv, scheduler, n, i, shard)
        });
        self.clean = true;
    }
}

/// What one worker thread keeps during a batch (reused across transactions).
struct Worker<V: Vm> {
    /// Its index among the workers (its activity flag in the scheduler).
    id: usize,
    reads: Vec<ReadDescriptor<V>>,
    writes: WriteSet<V::Key, V::Value>,
    scratch: V::Scratch,
    dependents: Vec<TxnIndex>,
    stats: WorkerStats,
}

/// The per-thread loop of Algorithm 1: run the task in hand, else ask for one,
/// until the scheduler says the batch is done.
fn worker<V: Vm>(b: &Batch<'_, V>, id: usize) {
    let mut w = Worker::<V> {
        id,
        reads: Vec::with_capacity(16),
        writes: WriteSet::default(),
        scratch: V::Scratch::default(),
        dependents: Vec::new(),
        stats: WorkerStats::default(),
    };
    let mut task: Option<Task> = None;
    let mut idle: u32 = 0;
    loop {
        task = match task {
            Some(Task::Execute(version)) => try_execute(b, &mut w, version),
            Some(Task::Validate(version)) => validate(b, &mut w, version),
            None => {
                if b.scheduler.done() {
                    break;
                }
                let next = b.scheduler.next_task(id);
                if next.is_none() {
                    backoff(&mut idle);
                } else {
                    idle = 0;
                }
                next
            }
        };
    }
    let stats = w.stats;
    let mut t = b.totals.lock().unwrap_or_else(PoisonError::into_inner);
    t.executions += stats.executions;
    t.validations += stats.validations;
    t.validation_aborts += stats.validation_aborts;
    t.dependency_waits += stats.dependency_waits;
}

fn try_execute<V: Vm>(b: &Batch<'_, V>, w: &mut Worker<V>, version: Version) -> Option<Task> {
    let i = version.txn as usize;
    let tx = &b.txs[i];
    let mut retries = 0;
    loop {
        w.reads.clear();
        w.writes.clear();
        w.stats.executions += 1;
        let mut view = MvView {
            mv: b.mv,
            base: b.base,
            txn: version.txn,
            reads: &mut w.reads,
        };
        match b.vm.execute(
            tx,
            b.verdicts[i].as_ref(),
            &mut view,
            &mut w.scratch,
            &mut w.writes,
        ) {
            Ok(receipt) => {
                // A lower transaction may have recorded a write this execution
                // read around while it ran. Nothing of it is published yet, so
                // it can simply run again (same incarnation): its stale writes
                // would otherwise be recorded, read by higher transactions,
                // found invalid, turned into ESTIMATEs and re-executed, with
                // every higher transaction revalidated.
                if retries < EARLY_RETRIES && !MvMemory::reads_valid(version.txn, &w.reads) {
                    retries += 1;
                    continue;
                }
                let wrote_new = b.mv.record(version, &mut w.reads, &w.writes, receipt);
                return b
                    .scheduler
                    .finish_execution(version, wrote_new, &mut w.dependents);
            }
            Err(blocked) => {
                if b.scheduler.add_dependency(w.id, version.txn, blocked.0) {
                    w.stats.dependency_waits += 1;
                    return None;
                }
                // The blocking transaction finished in the meantime: go again.
            }
        }
    }
}

fn validate<V: Vm>(b: &Batch<'_, V>, w: &mut Worker<V>, version: Version) -> Option<Task> {
    w.stats.validations += 1;
    let valid = b.mv.validate_read_set(version.txn);
    let aborted = !valid && b.scheduler.try_validation_abort(version);
    if aborted {
        w.stats.validation_aborts += 1;
        b.mv.convert_writes_to_estimates(version.txn);
    }
    b.scheduler.finish_validation(version.txn, aborted)
}
