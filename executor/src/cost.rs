//! Execution cost ("gas"), the per-transaction limit and the per-batch budget.
//!
//! A transaction's cost is a function of its payload alone:
//! `cost = op_cost(op) + work + (SIGNATURE_COST if signed)`, in gas units where one
//! unit is one round of `work` (one SHA-256 over 32 bytes, about 90 ns on the
//! reference machine); the per-operation costs below are calibrated in the same
//! units (a native transfer costs about 1.3 µs, i.e. ~15 rounds; ring's Ed25519
//! verification about 36 µs, i.e. ~400).
//!
//! Rules (identical on every executor and replica, because they depend only on the
//! ordered batch and the limits, never on scheduling):
//! - **Admission:** a node refuses a request whose cost is above `max_tx_cost`
//!   before ordering it ([`ExecutionLimits::admits`]), and counts it.
//! - **Execution:** before a batch runs, its transactions are walked in order; one
//!   whose signature check failed is skipped (it runs nothing and costs nothing); one
//!   above `max_tx_cost` aborts with `cost_limit`; one whose cost does not fit in
//!   what is left of `max_batch_cost` aborts with `batch_budget` (the budget is not
//!   reduced, so a later, cheaper transaction may still fit); every other
//!   transaction is charged its cost and runs.
//! - **Nonces:** these pre-execution aborts write nothing (not even the nonce: the
//!   sender did not get to run, and a `batch_budget` abort is not its fault, so it
//!   may resend). A transaction that ran and then failed its own checks (balance,
//!   slippage, collateral, …) is charged its nonce: the nonce is written and nothing
//!   else, so the same transaction cannot be replayed for free. A bad nonce writes
//!   nothing (there is nothing newer to record).

use serde::{Deserialize, Serialize};

use crate::tx::{AbortReason, Op, SmallBankOp, Transaction};

/// Gas charged for verifying a transaction's signature.
pub const SIGNATURE_COST: u64 = 400;

/// Gas of an operation before its `work`.
pub fn op_cost(op: &Op) -> u64 {
    match op {
        Op::Transfer { .. } | Op::Mint { .. } => 20,
        Op::Swap { .. } => 40,
        Op::AddLiquidity { .. } | Op::RemoveLiquidity { .. } => 60,
        Op::Deposit { .. } | Op::Withdraw { .. } | Op::Borrow { .. } | Op::Repay { .. } => 40,
        Op::SmallBank(SmallBankOp::Balance) => 10,
        Op::SmallBank(_) => 20,
    }
}

impl Transaction {
    /// The transaction's gas (see the module docs); never overflows.
    pub fn cost(&self) -> u64 {
        let signature = if self.signature.is_some() {
            SIGNATURE_COST
        } else {
            0
        };
        op_cost(&self.op)
            .saturating_add(u64::from(self.work))
            .saturating_add(signature)
    }
}

/// The cost limits, from the cluster file's `[execution]` (`max_tx_cost`,
/// `max_batch_cost`); every replica must use the same ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionLimits {
    /// Most gas one transaction may cost. Default 1,000,000 (about 90 ms of work).
    pub max_tx_cost: u64,
    /// Most gas one batch may spend. Default 20,000,000 (about 1.8 s of sequential
    /// work: far above a full batch of benchmark transactions, 1024 × ~220).
    pub max_batch_cost: u64,
}

impl Default for ExecutionLimits {
    fn default() -> Self {
        ExecutionLimits {
            max_tx_cost: 1_000_000,
            max_batch_cost: 20_000_000,
        }
    }
}

/// Why a request was refused at admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("transaction cost {cost} is above the limit {limit}")]
pub struct OverLimit {
    pub cost: u64,
    pub limit: u64,
}

impl ExecutionLimits {
    /// No limits (benchmarks of the executors alone).
    pub const UNLIMITED: ExecutionLimits = ExecutionLimits {
        max_tx_cost: u64::MAX,
        max_batch_cost: u64::MAX,
    };

    /// Admission: whether a node should order `tx` at all.
    pub fn admits(&self, tx: &Transaction) -> Result<(), OverLimit> {
        let cost = tx.cost();
        if cost > self.max_tx_cost {
            return Err(OverLimit {
                cost,
                limit: self.max_tx_cost,
            });
        }
        Ok(())
    }

    /// Walks the batch in order and sets `verdicts[i]` to `cost_limit` or
    /// `batch_budget` where the rules above say so (entries already `Some` — failed
    /// signature checks — are skipped). Returns the gas charged to the batch.
    pub(crate) fn charge(&self, txs: &[Transaction], verdicts: &mut [Option<AbortReason>]) -> u64 {
        let mut left = self.max_batch_cost;
        for (tx, verdict) in txs.iter().zip(verdicts.iter_mut()) {
            if verdict.is_some() {
                continue;
            }
            let cost = tx.cost();
            if cost > self.max_tx_cost {
                *verdict = Some(AbortReason::CostLimit);
            } else if cost > left {
                *verdict = Some(AbortReason::BatchBudget);
            } else {
                left -= cost;
            }
        }
        self.max_batch_cost - left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::Signature;

    fn transfer(work: u32) -> Transaction {
        Transaction::new(
            1,
            1,
            Op::Transfer {
                to: 2,
                token: 0,
                amount: 1,
            },
        )
        .with_work(work)
    }

    #[test]
    fn cost_counts_op_work_and_signature_without_overflow() {
        assert_eq!(transfer(0).cost(), 20);
        assert_eq!(transfer(100).cost(), 120);
        let mut signed = transfer(u32::MAX);
        signed.signature = Some(Signature([0; 64]));
        assert_eq!(signed.cost(), 20 + u64::from(u32::MAX) + SIGNATURE_COST);
        let limits = ExecutionLimits::default();
        assert!(limits.admits(&transfer(1000)).is_ok());
        assert_eq!(
            limits.admits(&transfer(u32::MAX)),
            Err(OverLimit {
                cost: 20 + u64::from(u32::MAX),
                limit: 1_000_000
            })
        );
        assert!(ExecutionLimits::UNLIMITED.admits(&signed).is_ok());
    }

    #[test]
    fn the_budget_is_first_fit_in_order_and_skips_failed_signatures() {
        let limits = ExecutionLimits {
            max_tx_cost: 500,
            max_batch_cost: 300,
        };
        // costs: 120, 620 (over the limit), 200 (does not fit: 180 left), 20, 120
        // (failed its signature check: skipped), 150 (fits: 160 left).
        let txs = [
            transfer(100),
            transfer(600),
            transfer(180),
            transfer(0),
            transfer(100),
            transfer(130),
        ];
        let mut verdicts = vec![
            None,
            None,
            None,
            None,
            Some(AbortReason::BadSignature),
            None,
        ];
        assert_eq!(limits.charge(&txs, &mut verdicts), 120 + 20 + 150);
        assert_eq!(
            verdicts,
            vec![
                None,
                Some(AbortReason::CostLimit),
                Some(AbortReason::BatchBudget),
                None,
                Some(AbortReason::BadSignature),
                None
            ]
        );
    }
}

#[cfg(test)]
mod nonce_rules {
    use super::*;
    use crate::executor::Executor;
    use crate::sequential::SequentialExecutor;
    use crate::state::{Key, State, Value};
    use crate::tx::Receipt;

    fn transfer(nonce: u64, amount: u128, work: u32) -> Transaction {
        Transaction::new(
            1,
            nonce,
            Op::Transfer {
                to: 2,
                token: 0,
                amount,
            },
        )
        .with_work(work)
    }

    /// Which aborts consume the nonce: a transaction that ran and failed its own
    /// check does; one refused before running (cost limit, batch budget, bad
    /// signature) or with a stale nonce does not.
    #[test]
    fn only_a_transaction_that_ran_is_charged_its_nonce() {
        let state = State::from_entries([(Key::Balance(1, 0), Value::Amount(10))]).unwrap();
        let limits = ExecutionLimits {
            max_tx_cost: 100,
            max_batch_cost: 150,
        };
        let mut exec = SequentialExecutor::new().with_limits(limits);
        let mut s = state.clone();
        let out = exec.execute(
            &mut s,
            &[
                transfer(1, 1000, 0), // runs, insufficient balance: nonce 1 charged
                transfer(1, 5, 0),    // nonce 1 again: bad nonce (charged to the budget)
                transfer(2, 5, 500),  // cost 520 > 100: refused, nonce 2 unused
                transfer(2, 5, 60),   // cost 80: runs (20 + 20 + 80 charged, 30 left)
                transfer(3, 5, 60),   // cost 80 > 30 left: batch budget, nonce 3 unused
                transfer(3, 1, 0),    // cost 20 fits: runs with nonce 3
            ],
        );
        use crate::tx::AbortReason::*;
        assert_eq!(
            out.receipts,
            vec![
                Receipt::Aborted(InsufficientBalance),
                Receipt::Aborted(BadNonce),
                Receipt::Aborted(CostLimit),
                Receipt::Ok,
                Receipt::Aborted(BatchBudget),
                Receipt::Ok,
            ]
        );
        assert_eq!(out.stats.gas, 20 + 20 + 80 + 20);
        assert_eq!(s.nonce(1), 3);
        assert_eq!(s.balance(1, 0), 4);
        // A failed transaction changes nothing but the nonce.
        let mut t = state.clone();
        exec.execute(&mut t, &[transfer(7, 1000, 0)]);
        assert_eq!(t.nonce(1), 7);
        assert_eq!(t.balance(1, 0), 10);
        assert_eq!(t.len(), 2);
    }
}
