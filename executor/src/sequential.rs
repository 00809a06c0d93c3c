//! The sequential executor: the baseline and the reference every other executor
//! must match. Transactions run in order straight against the state, each one's
//! writes and deferred credits (`Vm::settle`) applied before the next reads.

use crate::cost::ExecutionLimits;
use crate::executor::{BatchOutcome, BatchStats, Executor};
use crate::ledger_vm::LedgerVm;
use crate::vm::{Direct, Vm, WriteSet};

/// Runs a batch one transaction after another on the calling thread.
pub struct SequentialExecutor<V: Vm = LedgerVm> {
    vm: V,
    writes: WriteSet<V::Key, V::Value>,
    scratch: V::Scratch,
    verdicts: Vec<Option<V::Verdict>>,
}

impl<V: Vm + std::fmt::Debug> std::fmt::Debug for SequentialExecutor<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequentialExecutor")
            .field("vm", &self.vm)
            .finish()
    }
}

impl Default for SequentialExecutor {
    fn default() -> Self {
        SequentialExecutor::for_vm(LedgerVm::default())
    }
}

impl SequentialExecutor {
    /// The native ledger's sequential executor under the default cost limits.
    pub fn new() -> SequentialExecutor {
        SequentialExecutor::default()
    }

    /// The same, with cost limits other than the defaults.
    pub fn with_limits(mut self, limits: ExecutionLimits) -> SequentialExecutor {
        self.vm.limits = limits;
        self
    }
}

impl<V: Vm> SequentialExecutor<V> {
    /// The sequential executor of `vm`.
    pub fn for_vm(vm: V) -> SequentialExecutor<V> {
        SequentialExecutor {
            vm,
            writes: WriteSet::default(),
            scratch: V::Scratch::default(),
            verdicts: Vec::new(),
        }
    }

    /// Applies `txs` in order given their admission verdicts, writing into
    /// `state` without finishing the batch (the caller does).
    pub(crate) fn run(
        &mut self,
        state: &mut V::State,
        txs: &[V::Tx],
        verdicts: &[Option<V::Verdict>],
        receipts: &mut Vec<V::Receipt>,
    ) {
        for (tx, verdict) in txs.iter().zip(verdicts) {
            let outcome = self.vm.execute(
                tx,
                verdict.as_ref(),
                &mut Direct::<V>(state),
                &mut self.scratch,
                &mut self.writes,
            );
            // The state holds no ESTIMATEs; a dependency cannot occur.
            let receipt = outcome.unwrap_or_else(|_| self.vm.internal_error());
            for (k, v) in self.writes.drain() {
                V::write_state(state, k, v);
            }
            self.vm.settle(state, std::slice::from_ref(&receipt));
            receipts.push(receipt);
        }
    }
}

impl<V: Vm> Executor<V> for SequentialExecutor<V> {
    fn name(&self) -> &str {
        "sequential"
    }

    fn execute(&mut self, state: &mut V::State, txs: &[V::Tx]) -> BatchOutcome<V::Receipt> {
        let mut verdicts = std::mem::take(&mut self.verdicts);
        let admission = self.vm.admit(state, txs, None, &mut verdicts);
        let mut receipts = Vec::with_capacity(txs.len());
        self.run(state, txs, &verdicts, &mut receipts);
        self.verdicts = verdicts;
        V::finish_batch(state, None, |_, _| {});
        BatchOutcome {
            receipts,
            stats: BatchStats {
                transactions: txs.len() as u64,
                signatures_verified: admission.signatures_verified,
                gas: admission.gas,
                executions: txs.len() as u64,
                ..BatchStats::default()
            },
        }
    }
}
