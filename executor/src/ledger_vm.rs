//! The native DeFi ledger as a [`Vm`]: keys and values of `state.rs`, transactions
//! and receipts of `tx.rs`, admission by signature (`signature.rs`) and cost
//! (`cost.rs`), execution by `apply.rs`, declared sets from
//! `Transaction::access_set`. Nothing here adds behaviour: it is the adapter that
//! lets every scheduler run the ledger exactly as it did before the seam.

use crate::apply::{WriteSet, apply};
use crate::cost::ExecutionLimits;
use crate::signature;
use crate::state::{Key, Shard, State, Value, key_hash};
use crate::threads::WorkerThreads;
use crate::tx::{AbortReason, Access, Op, Receipt, Transaction};
use crate::vm::{Admission, Blocked, ReadView, Vm};

/// The native ledger VM with its cost limits (the cluster file's `[execution]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerVm {
    /// The per-transaction and per-batch cost limits admission applies.
    pub limits: ExecutionLimits,
}

impl LedgerVm {
    /// The ledger under `limits`.
    pub fn new(limits: ExecutionLimits) -> LedgerVm {
        LedgerVm { limits }
    }
}

impl Vm for LedgerVm {
    type Key = Key;
    type Value = Value;
    type Tx = Transaction;
    type Receipt = Receipt;
    type Verdict = AbortReason;
    type State = State;
    type Shard = Shard;
    type Scratch = ();

    #[inline]
    fn key_hash(key: &Key) -> u64 {
        key_hash(key)
    }

    #[inline]
    fn read_state(state: &State, key: &Key) -> Option<Value> {
        state.get(key)
    }

    #[inline]
    fn write_state(state: &mut State, key: Key, value: Value) {
        state.write(key, value);
    }

    #[inline]
    fn write_shard(shard: &mut Shard, key: Key, value: Value) {
        shard.write(key, value);
    }

    fn finish_batch(
        state: &mut State,
        threads: Option<&WorkerThreads>,
        commit: impl Fn(usize, &mut Shard) + Sync,
    ) {
        state.finish_batch_with(threads, commit);
    }

    fn digest(state: &mut State, threads: Option<&WorkerThreads>) -> [u8; 32] {
        state.settle(threads);
        state.digest()
    }

    /// Signature checks (on `threads`), then the cost limits in batch order.
    fn admit(
        &self,
        state: &State,
        txs: &[Transaction],
        threads: Option<&WorkerThreads>,
        verdicts: &mut Vec<Option<AbortReason>>,
    ) -> Admission {
        let signatures_verified = signature::precheck(state, txs, threads, verdicts);
        let gas = self.limits.charge(txs, verdicts);
        Admission {
            signatures_verified,
            gas,
        }
    }

    #[inline]
    fn execute<R: ReadView<Self>>(
        &self,
        tx: &Transaction,
        verdict: Option<&AbortReason>,
        view: &mut R,
        _scratch: &mut (),
        writes: &mut WriteSet,
    ) -> Result<Receipt, Blocked> {
        apply(tx, verdict.copied(), view, writes)
    }

    #[inline]
    fn declare(tx: &Transaction, out: &mut Vec<(Key, Access)>) -> bool {
        out.extend(tx.access_set().iter());
        true
    }

    fn internal_error(&self) -> Receipt {
        Receipt::Aborted(AbortReason::Internal)
    }

    /// 1024 independent transfers between funded accounts.
    fn calibration(&self) -> Option<(State, Vec<Transaction>)> {
        const N: u64 = 1024;
        let mut state = State::new();
        let funded = (1..=N).map(|a| (Key::Balance(a, 0), Value::Amount(1_000_000)));
        state.set_many(funded).ok()?;
        let txs = (1..=N)
            .map(|a| {
                Transaction::new(
                    a,
                    1,
                    Op::Transfer {
                        to: N + a,
                        token: 0,
                        amount: 1,
                    },
                )
            })
            .collect();
        Some((state, txs))
    }
}
