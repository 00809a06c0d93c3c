//! The `Executor` trait every executor implements, what a batch returns, and the
//! constructors by name: [`executor_by_name`] for the native ledger and
//! [`executor_for`] for any [`Vm`].

use serde::{Deserialize, Serialize};

use crate::access_list::AccessListExecutor;
use crate::auto::AutoExecutor;
use crate::block_stm::BlockStmExecutor;
use crate::cost::ExecutionLimits;
use crate::error::Error;
use crate::ledger_vm::LedgerVm;
use crate::sequential::SequentialExecutor;
use crate::tx::Receipt;
use crate::vm::Vm;

/// Names accepted by `executor_by_name`.
pub const EXECUTOR_NAMES: [&str; 4] = ["sequential", "block-stm", "access-list", "auto"];

/// Applies ordered batches of VM `V`'s transactions (the native ledger's by
/// default) to its state. Every implementation produces exactly the receipts and
/// state (hence digest) of applying the batch in order, one transaction after
/// another.
pub trait Executor<V: Vm = LedgerVm>: Send {
    /// The name it was built with (`sequential`, `block-stm`, `access-list`, `auto`).
    fn name(&self) -> &str;

    /// Applies `txs` in order to `state`; returns one receipt per transaction. The
    /// state's digest is not computed here: ask `digest` when it is needed (a
    /// replica does at checkpoints), and the changes of every batch since the last
    /// digest are hashed together then.
    fn execute(&mut self, state: &mut V::State, txs: &[V::Tx]) -> BatchOutcome<V::Receipt>;

    /// The state's digest (for the ledger [`State::digest`]), settling the
    /// pending changes on this executor's threads.
    ///
    /// [`State::digest`]: crate::State::digest
    fn digest(&mut self, state: &mut V::State) -> [u8; 32] {
        V::digest(state, None)
    }
}

/// The result of one batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome<R = Receipt> {
    /// `receipts[i]` is the receipt of `txs[i]`.
    pub receipts: Vec<R>,
    /// How the executor got there (not part of the replicated result).
    pub stats: BatchStats,
}

/// Per-batch counters. Only `transactions` is the same for every executor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchStats {
    /// Transactions in the batch.
    pub transactions: u64,
    /// Signatures verified before execution.
    pub signatures_verified: u64,
    /// Gas charged to the batch's budget (`cost.rs`).
    pub gas: u64,
    /// Transaction executions, counting Block-STM re-executions (equals
    /// `transactions` for the sequential and access-list executors).
    pub executions: u64,
    /// Block-STM validations run.
    pub validations: u64,
    /// Block-STM incarnations aborted by a failed validation.
    pub validation_aborts: u64,
    /// Block-STM executions suspended on a dependency (an ESTIMATE read).
    pub dependency_waits: u64,
    /// Access-list: dependency edges in the batch's schedule.
    pub dependency_edges: u64,
    /// Access-list: batches run sequentially instead, because a transaction
    /// declared nothing or stepped outside its declared set (`access_list.rs`).
    /// Block-STM: batches whose rest ran in order after a conflict-heavy probe
    /// (`block_stm/mod.rs`).
    pub fallbacks: u64,
    /// `auto`: the executor it ran this batch with, and why.
    pub picked: Option<String>,
    pub pick_reason: Option<String>,
}

impl BatchStats {
    /// Executions beyond the first of each transaction.
    pub fn reexecutions(&self) -> u64 {
        self.executions.saturating_sub(self.transactions)
    }
}

/// Tunables shared by the executors; the defaults are what benchmarks use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorOptions {
    /// `auto`: batches smaller than this always run sequentially.
    pub auto_min_batch: usize,
    /// `auto`: run in parallel only if the predicted parallel time is below this
    /// fraction of the predicted sequential time.
    pub auto_margin: f64,
    /// Block-STM: run the speculative machinery even with one worker thread. By
    /// default one worker runs a batch in order through the same VM execution
    /// (speculation cannot pay without a second thread; Aptos' block executor does
    /// the same at concurrency 1); set it to measure what speculation costs.
    pub block_stm_speculate_alone: bool,
    /// The cost limits (the cluster file's `[execution]` `max_tx_cost` and
    /// `max_batch_cost`, not this table: they change results, so every replica must
    /// agree on them, unlike the tunables above).
    #[serde(skip)]
    pub limits: ExecutionLimits,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            auto_min_batch: 256,
            auto_margin: 0.85,
            block_stm_speculate_alone: false,
            limits: ExecutionLimits::default(),
        }
    }
}

/// Builds the native ledger's executor called `name` with `threads` threads (its
/// worker threads are created here, once, and reused for every batch), under
/// `options.limits`.
pub fn executor_by_name(
    name: &str,
    threads: usize,
    options: &ExecutorOptions,
) -> Result<Box<dyn Executor>, Error> {
    executor_for(LedgerVm::new(options.limits), name, threads, options)
}

/// Builds the executor called `name` for `vm` with `threads` threads (created
/// here, once, and reused for every batch). `options.limits` is the ledger's and
/// is ignored here: `vm` carries its own limits.
pub fn executor_for<V: Vm>(
    vm: V,
    name: &str,
    threads: usize,
    options: &ExecutorOptions,
) -> Result<Box<dyn Executor<V>>, Error> {
    if threads == 0 || threads > crate::threads::MAX_THREADS {
        return Err(Error::ThreadCount(threads));
    }
    Ok(match name {
        "sequential" => Box::new(SequentialExecutor::for_vm(vm)),
        "block-stm" => Box::new(
            BlockStmExecutor::for_vm(vm, threads)?
                .speculate_alone(options.block_stm_speculate_alone),
        ),
        "access-list" => Box::new(AccessListExecutor::for_vm(vm, threads)?),
        "auto" => Box::new(AutoExecutor::for_vm(vm, threads, options.clone())?),
        other => return Err(Error::UnknownExecutor(other.to_string())),
    })
}
