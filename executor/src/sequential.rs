//! The sequential executor: the baseline and the reference every other executor
//! must match. Transactions run in order straight against the state.

use crate::apply::{ReadError, StateView, WriteSet, apply};
use crate::cost::ExecutionLimits;
use crate::executor::{BatchOutcome, BatchStats, Executor};
use crate::signature;
use crate::state::{Key, State, Value};
use crate::tx::{AbortReason, Receipt, Transaction};

/// Runs a batch one transaction after another on the calling thread.
#[derive(Debug, Default)]
pub struct SequentialExecutor {
    writes: WriteSet,
    prechecks: Vec<Option<AbortReason>>,
    limits: ExecutionLimits,
}

struct Direct<'a>(&'a State);

impl StateView for Direct<'_> {
    fn read(&mut self, key: &Key) -> Result<Option<Value>, ReadError> {
        Ok(self.0.get(key))
    }
}

impl SequentialExecutor {
    pub fn new() -> SequentialExecutor {
        SequentialExecutor::default()
    }

    /// The same, with cost limits other than the defaults.
    pub fn with_limits(mut self, limits: ExecutionLimits) -> SequentialExecutor {
        self.limits = limits;
        self
    }

    /// Applies `txs` in order given their signature verdicts, writing into
    /// `state` without finishing the batch (the caller folds the digest).
    pub(crate) fn run(
        &mut self,
        state: &mut State,
        txs: &[Transaction],
        prechecks: &[Option<AbortReason>],
        receipts: &mut Vec<Receipt>,
    ) {
        for (tx, pre) in txs.iter().zip(prechecks) {
            let receipt = match apply(tx, *pre, &mut Direct(state), &mut self.writes) {
                Ok(r) => r,
                // The state holds no ESTIMATEs; a dependency cannot occur.
                Err(_) => Receipt::Aborted(AbortReason::Internal),
            };
            for (k, v) in self.writes.entries() {
                state.write(*k, *v);
            }
            receipts.push(receipt);
        }
    }
}

impl Executor for SequentialExecutor {
    fn name(&self) -> &str {
        "sequential"
    }

    fn execute(&mut self, state: &mut State, txs: &[Transaction]) -> BatchOutcome {
        let mut prechecks = std::mem::take(&mut self.prechecks);
        let verified = signature::precheck(state, txs, None, &mut prechecks);
        let gas = self.limits.charge(txs, &mut prechecks);
        let mut receipts = Vec::with_capacity(txs.len());
        self.run(state, txs, &prechecks, &mut receipts);
        self.prechecks = prechecks;
        state.finish_batch(None);
        BatchOutcome {
            receipts,
            stats: BatchStats {
                transactions: txs.len() as u64,
                signatures_verified: verified,
                gas,
                executions: txs.len() as u64,
                ..BatchStats::default()
            },
        }
    }
}
