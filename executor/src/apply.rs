//! One ledger transaction's semantics against a read view: the single definition
//! every executor runs for the native ledger (it is `LedgerVm::execute`, see
//! `vm.rs`), so they cannot diverge. Executors differ only in the view they pass
//! (the state, Block-STM's multi-version memory, or the access-list schedule's
//! per-transaction outputs) and in what they do with the returned write set.
//!
//! Order of checks (it decides which reason an invalid transaction reports):
//! pre-execution verdict (signature, cost limit, batch budget: `precheck`) → nonce →
//! the operation's own checks → contract work → nonce bump. Reads happen during the
//! operation, the `work` rounds after it, and the writes become visible only when the
//! executor commits the write set: a contract call's conflict window spans its whole
//! execution. A transaction that passed the nonce check has run: if its operation
//! then fails, its work still runs and its nonce is still written (nothing else), so
//! it cannot be replayed for free (`cost.rs`).

use std::hint::black_box;

use ring::digest::{SHA256, digest};

use crate::amm::Pool;
use crate::ledger_vm::LedgerVm;
use crate::lending::{Market, Position};
use crate::state::{Account, FAUCET, Key, MarketId, PoolId, Token, Value};
use crate::tx::{
    AbortReason, CHECKING, MAX_ACCESS, Op, Receipt, SAVINGS, SmallBankOp, Transaction,
};
use crate::vm::{Blocked, ReadError, ReadView};

/// The ledger's write set: at most `MAX_ACCESS` keys (an operation writes only
/// keys it declares).
pub(crate) type WriteSet = crate::vm::WriteSet<Key, Value>;

enum Halt {
    /// Failed before running: write nothing.
    Abort(AbortReason),
    /// Ran and failed: write the nonce only.
    Failed(AbortReason),
    Wait(u32),
}

impl From<AbortReason> for Halt {
    fn from(r: AbortReason) -> Halt {
        Halt::Abort(r)
    }
}

type Step<T> = Result<T, Halt>;

/// Reads through the transaction's own writes first, then the view.
struct Ctx<'a, V: ReadView<LedgerVm>> {
    view: &'a mut V,
    writes: &'a mut WriteSet,
}

impl<V: ReadView<LedgerVm>> Ctx<'_, V> {
    fn read(&mut self, key: Key) -> Step<Option<Value>> {
        if let Some(v) = self.writes.get(&key) {
            return Ok(Some(*v));
        }
        match self.view.read(&key) {
            Ok(v) => Ok(v),
            Err(ReadError::Dependency(t)) => Err(Halt::Wait(t)),
            // The ledger defers no credits, so `Credited` never comes.
            Err(ReadError::Undeclared | ReadError::Credited) => {
                Err(Halt::Abort(AbortReason::Internal))
            }
        }
    }

    fn put(&mut self, key: Key, value: Value) -> Step<()> {
        self.writes
            .put_within(key, value, MAX_ACCESS)
            .map_err(|_| Halt::Abort(AbortReason::Internal))
    }

    fn amount(&mut self, key: Key) -> Step<u128> {
        match self.read(key)? {
            None => Ok(0),
            Some(Value::Amount(a)) => Ok(a),
            Some(_) => Err(AbortReason::Internal.into()),
        }
    }

    fn nonce(&mut self, account: Account) -> Step<u64> {
        match self.read(Key::Nonce(account))? {
            None => Ok(0),
            Some(Value::Nonce(n)) => Ok(n),
            Some(_) => Err(AbortReason::Internal.into()),
        }
    }

    fn pool(&mut self, id: PoolId) -> Step<Pool> {
        match self.read(Key::Pool(id))? {
            None => Err(AbortReason::UnknownPool.into()),
            Some(Value::Pool(p)) => Ok(p),
            Some(_) => Err(AbortReason::Internal.into()),
        }
    }

    fn market(&mut self, id: MarketId) -> Step<Market> {
        match self.read(Key::Market(id))? {
            None => Err(AbortReason::UnknownMarket.into()),
            Some(Value::Market(m)) => Ok(m),
            Some(_) => Err(AbortReason::Internal.into()),
        }
    }

    fn position(&mut self, market: MarketId, account: Account) -> Step<Position> {
        match self.read(Key::Position(market, account))? {
            None => Ok(Position::default()),
            Some(Value::Position(p)) => Ok(p),
            Some(_) => Err(AbortReason::Internal.into()),
        }
    }

    fn debit(&mut self, account: Account, token: Token, amount: u128) -> Step<()> {
        let key = Key::Balance(account, token);
        let balance = self.amount(key)?;
        let left = balance
            .checked_sub(amount)
            .ok_or(AbortReason::InsufficientBalance)?;
        self.put(key, Value::Amount(left))
    }

    fn credit(&mut self, account: Account, token: Token, amount: u128) -> Step<()> {
        let key = Key::Balance(account, token);
        let balance = self.amount(key)?;
        let sum = balance.checked_add(amount).ok_or(AbortReason::Overflow)?;
        self.put(key, Value::Amount(sum))
    }
}

/// Executes `tx` against `view`. On success or abort returns the receipt, with
/// `writes` holding the transaction's writes (empty on abort); `Err(Blocked)` when
/// a read hit a Block-STM ESTIMATE. `precheck` is the signature verdict.
pub(crate) fn apply<V: ReadView<LedgerVm>>(
    tx: &Transaction,
    precheck: Option<AbortReason>,
    view: &mut V,
    writes: &mut WriteSet,
) -> Result<Receipt, Blocked> {
    writes.clear();
    if let Some(reason) = precheck {
        return Ok(Receipt::Aborted(reason));
    }
    let mut ctx = Ctx { view, writes };
    let outcome = execute(tx, &mut ctx);
    match outcome {
        Ok(receipt) => Ok(receipt),
        Err(Halt::Abort(reason)) => {
            writes.clear();
            Ok(Receipt::Aborted(reason))
        }
        Err(Halt::Failed(reason)) => {
            writes.clear();
            // The nonce key is always declared, and the cleared set has room.
            writes.put(Key::Nonce(tx.sender), Value::Nonce(tx.nonce));
            Ok(Receipt::Aborted(reason))
        }
        Err(Halt::Wait(t)) => {
            writes.clear();
            Err(Blocked(t))
        }
    }
}

fn execute<V: ReadView<LedgerVm>>(tx: &Transaction, ctx: &mut Ctx<'_, V>) -> Step<Receipt> {
    let last = ctx.nonce(tx.sender)?;
    if tx.nonce <= last {
        return Err(AbortReason::BadNonce.into());
    }
    let outcome = operation(tx, ctx);
    let receipt = match outcome {
        Err(Halt::Wait(t)) => return Err(Halt::Wait(t)),
        Err(Halt::Abort(reason) | Halt::Failed(reason)) => {
            contract_work(tx);
            return Err(Halt::Failed(reason));
        }
        Ok(receipt) => receipt,
    };
    contract_work(tx);
    ctx.put(Key::Nonce(tx.sender), Value::Nonce(tx.nonce))?;
    Ok(receipt)
}

/// `tx.work` rounds of SHA-256 chained from the transaction's sender and nonce:
/// the stand-in for a contract's computation. Its result is discarded.
pub(crate) fn contract_work(tx: &Transaction) {
    if tx.work == 0 {
        return;
    }
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&tx.sender.to_le_bytes());
    h[8..16].copy_from_slice(&tx.nonce.to_le_bytes());
    for _ in 0..tx.work {
        let d = digest(&SHA256, &h);
        h.copy_from_slice(d.as_ref());
    }
    black_box(h);
}

fn operation<V: ReadView<LedgerVm>>(tx: &Transaction, ctx: &mut Ctx<'_, V>) -> Step<Receipt> {
    let s = tx.sender;
    match tx.op {
        Op::Transfer { to, token, amount } => {
            if amount == 0 {
                return Err(AbortReason::ZeroAmount.into());
            }
            ctx.debit(s, token, amount)?;
            ctx.credit(to, token, amount)?;
            Ok(Receipt::Ok)
        }
        Op::Mint { to, token, amount } => {
            if s != FAUCET {
                return Err(AbortReason::NotFaucet.into());
            }
            if amount == 0 {
                return Err(AbortReason::ZeroAmount.into());
            }
            ctx.credit(to, token, amount)?;
            Ok(Receipt::Ok)
        }
        Op::Swap {
            pool,
            token_in,
            token_out,
            amount_in,
            min_out,
        } => {
            let p = ctx.pool(pool)?;
            let (after, out) = p.swap(token_in, token_out, amount_in)?;
            if out < min_out {
                return Err(AbortReason::Slippage.into());
            }
            ctx.debit(s, token_in, amount_in)?;
            ctx.credit(s, token_out, out)?;
            ctx.put(Key::Pool(pool), Value::Pool(after))?;
            Ok(Receipt::Amount(out))
        }
        Op::AddLiquidity {
            pool,
            token_a,
            token_b,
            amount_a,
            amount_b,
            min_liquidity,
        } => {
            let p = ctx.pool(pool)?;
            let d = p.add_liquidity(token_a, token_b, amount_a, amount_b)?;
            if d.minted < min_liquidity {
                return Err(AbortReason::Slippage.into());
            }
            ctx.debit(s, token_a, d.used_a)?;
            ctx.debit(s, token_b, d.used_b)?;
            let lp = ctx.amount(Key::Lp(pool, s))?;
            let lp = lp.checked_add(d.minted).ok_or(AbortReason::Overflow)?;
            ctx.put(Key::Lp(pool, s), Value::Amount(lp))?;
            ctx.put(Key::Pool(pool), Value::Pool(d.pool))?;
            Ok(Receipt::Amount(d.minted))
        }
        Op::RemoveLiquidity {
            pool,
            token_a,
            token_b,
            liquidity,
            min_a,
            min_b,
        } => {
            let p = ctx.pool(pool)?;
            let lp = ctx.amount(Key::Lp(pool, s))?;
            if lp < liquidity {
                return Err(AbortReason::InsufficientLpBalance.into());
            }
            let (after, out_a, out_b) = p.remove_liquidity(token_a, token_b, liquidity)?;
            if out_a < min_a || out_b < min_b {
                return Err(AbortReason::Slippage.into());
            }
            ctx.put(Key::Lp(pool, s), Value::Amount(lp - liquidity))?;
            ctx.credit(s, token_a, out_a)?;
            ctx.credit(s, token_b, out_b)?;
            ctx.put(Key::Pool(pool), Value::Pool(after))?;
            Ok(Receipt::Amounts(out_a, out_b))
        }
        Op::Deposit {
            market,
            token,
            amount,
        } => {
            let (m, p) = (ctx.market(market)?, ctx.position(market, s)?);
            let (m, p) = m.deposit(p, token, amount)?;
            ctx.debit(s, token, amount)?;
            lending_commit(ctx, market, s, m, p)
        }
        Op::Withdraw {
            market,
            token,
            amount,
        } => {
            let (m, p) = (ctx.market(market)?, ctx.position(market, s)?);
            let (m, p) = m.withdraw(p, token, amount)?;
            ctx.credit(s, token, amount)?;
            lending_commit(ctx, market, s, m, p)
        }
        Op::Borrow {
            market,
            token,
            amount,
        } => {
            let (m, p) = (ctx.market(market)?, ctx.position(market, s)?);
            let (m, p) = m.borrow(p, token, amount)?;
            ctx.credit(s, token, amount)?;
            lending_commit(ctx, market, s, m, p)
        }
        Op::Repay {
            market,
            token,
            amount,
        } => {
            let (m, p) = (ctx.market(market)?, ctx.position(market, s)?);
            let (m, p) = m.repay(p, token, amount)?;
            ctx.debit(s, token, amount)?;
            lending_commit(ctx, market, s, m, p)
        }
        Op::SmallBank(op) => smallbank(s, op, ctx),
    }
}

fn lending_commit<V: ReadView<LedgerVm>>(
    ctx: &mut Ctx<'_, V>,
    market: MarketId,
    account: Account,
    m: Market,
    p: Position,
) -> Step<Receipt> {
    ctx.put(Key::Market(market), Value::Market(m))?;
    ctx.put(Key::Position(market, account), Value::Position(p))?;
    Ok(Receipt::Ok)
}

fn smallbank<V: ReadView<LedgerVm>>(
    s: Account,
    op: SmallBankOp,
    ctx: &mut Ctx<'_, V>,
) -> Step<Receipt> {
    let checking = Key::Balance(s, CHECKING);
    let savings = Key::Balance(s, SAVINGS);
    match op {
        SmallBankOp::Balance => {
            let total = ctx
                .amount(checking)?
                .checked_add(ctx.amount(savings)?)
                .ok_or(AbortReason::Overflow)?;
            Ok(Receipt::Amount(total))
        }
        SmallBankOp::DepositChecking { amount } => {
            if amount == 0 {
                return Err(AbortReason::ZeroAmount.into());
            }
            ctx.credit(s, CHECKING, amount)?;
            Ok(Receipt::Ok)
        }
        SmallBankOp::TransactSavings { amount } => {
            if amount == 0 {
                return Err(AbortReason::ZeroAmount.into());
            }
            if amount > 0 {
                ctx.credit(s, SAVINGS, amount.unsigned_abs())?;
            } else {
                ctx.debit(s, SAVINGS, amount.unsigned_abs())?;
            }
            Ok(Receipt::Ok)
        }
        SmallBankOp::Amalgamate { to } => {
            let total = ctx
                .amount(checking)?
                .checked_add(ctx.amount(savings)?)
                .ok_or(AbortReason::Overflow)?;
            ctx.put(checking, Value::Amount(0))?;
            ctx.put(savings, Value::Amount(0))?;
            ctx.credit(to, CHECKING, total)?;
            Ok(Receipt::Amount(total))
        }
        SmallBankOp::WriteCheck { amount } => {
            if amount == 0 {
                return Err(AbortReason::ZeroAmount.into());
            }
            // SmallBank reads both accounts to decide on an overdraft penalty; with
            // unsigned balances an overdraft aborts instead, but the reads stay.
            let c = ctx.amount(checking)?;
            c.checked_add(ctx.amount(savings)?)
                .ok_or(AbortReason::Overflow)?;
            let left = c
                .checked_sub(amount)
                .ok_or(AbortReason::InsufficientBalance)?;
            ctx.put(checking, Value::Amount(left))?;
            Ok(Receipt::Ok)
        }
        SmallBankOp::SendPayment { to, amount } => {
            if amount == 0 {
                return Err(AbortReason::ZeroAmount.into());
            }
            ctx.debit(s, CHECKING, amount)?;
            ctx.credit(to, CHECKING, amount)?;
            Ok(Receipt::Ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;
    use crate::workload::{WorkloadKind, WorkloadSpec};

    /// Reads the state and records every key read.
    struct Recording<'a> {
        state: &'a State,
        reads: Vec<Key>,
    }

    impl ReadView<LedgerVm> for Recording<'_> {
        fn read(&mut self, key: &Key) -> Result<Option<Value>, ReadError> {
            self.reads.push(*key);
            Ok(self.state.get(key))
        }
    }

    /// Execution touches only declared keys and writes only declared writes:
    /// what the access-list executor relies on.
    #[test]
    fn execution_stays_inside_the_declared_sets() {
        let all_ops: std::collections::BTreeMap<String, u32> = [
            "transfer",
            "swap",
            "add_liquidity",
            "remove_liquidity",
            "deposit",
            "withdraw",
            "borrow",
            "repay",
            "balance",
            "deposit_checking",
            "transact_savings",
            "amalgamate",
            "write_check",
            "send_payment",
        ]
        .into_iter()
        .map(|n| (n.to_string(), 1))
        .collect();
        let spec = WorkloadSpec {
            kind: WorkloadKind::Mixed,
            accounts: 30,
            pools: 3,
            markets: 2,
            zipf: 1.0,
            mix: all_ops,
            ..WorkloadSpec::default()
        };
        let mut state = spec.genesis().unwrap();
        let mut txs = spec.generator(0, 1).unwrap().batch(3000);
        txs.push(Transaction::new(
            FAUCET,
            1,
            Op::Mint {
                to: 3,
                token: 1,
                amount: 5,
            },
        ));
        txs.push(Transaction::new(
            4,
            u64::MAX,
            Op::Transfer {
                to: 4,
                token: 0,
                amount: 5,
            },
        ));
        let mut writes = WriteSet::default();
        let mut successes = 0;
        for tx in &txs {
            let declared = tx.access_set();
            let mut view = Recording {
                state: &state,
                reads: Vec::new(),
            };
            let receipt = apply(tx, None, &mut view, &mut writes).unwrap();
            for key in &view.reads {
                assert!(declared.position(key).is_some(), "{tx:?} read {key:?}");
            }
            for (key, _) in writes.entries() {
                assert!(declared.writes().any(|k| k == *key), "{tx:?} wrote {key:?}");
            }
            if receipt.is_success() {
                successes += 1;
            } else {
                // An abort writes at most the sender's nonce (charged when it ran).
                let nonce_only = [(Key::Nonce(tx.sender), Value::Nonce(tx.nonce))];
                assert!(
                    writes.entries().is_empty() || writes.entries() == nonce_only,
                    "an abort may write only its nonce: {:?}",
                    writes.entries()
                );
            }
            for (k, v) in writes.entries() {
                state.write(*k, *v);
            }
        }
        state.finish_batch(None);
        assert!(successes > txs.len() / 2);
    }

    #[test]
    fn nonce_rule_allows_gaps_and_rejects_replays() {
        let mut state = State::new();
        state.set(Key::Balance(1, 0), Value::Amount(100)).unwrap();
        let mut writes = WriteSet::default();
        let mut run = |state: &mut State, nonce: u64| {
            let tx = Transaction::new(
                1,
                nonce,
                Op::Transfer {
                    to: 2,
                    token: 0,
                    amount: 1,
                },
            );
            let r = apply(
                &tx,
                None,
                &mut Recording {
                    state,
                    reads: Vec::new(),
                },
                &mut writes,
            )
            .unwrap();
            for (k, v) in writes.entries() {
                state.write(*k, *v);
            }
            state.finish_batch(None);
            r
        };
        assert_eq!(run(&mut state, 0), Receipt::Aborted(AbortReason::BadNonce));
        assert_eq!(run(&mut state, 5), Receipt::Ok);
        assert_eq!(run(&mut state, 5), Receipt::Aborted(AbortReason::BadNonce));
        assert_eq!(run(&mut state, 3), Receipt::Aborted(AbortReason::BadNonce));
        assert_eq!(run(&mut state, 6), Receipt::Ok);
        assert_eq!(state.nonce(1), 6);
        assert_eq!(state.balance(2, 0), 2);
    }

    #[test]
    fn a_failed_transaction_writes_its_nonce_only_and_a_precheck_abort_nothing() {
        let mut state = State::new();
        state.set(Key::Balance(1, 0), Value::Amount(10)).unwrap();
        let before = state.digest();
        let tx = Transaction::new(
            1,
            1,
            Op::Transfer {
                to: 2,
                token: 0,
                amount: 11,
            },
        );
        let mut writes = WriteSet::default();
        let r = apply(
            &tx,
            None,
            &mut Recording {
                state: &state,
                reads: Vec::new(),
            },
            &mut writes,
        );
        assert_eq!(r, Ok(Receipt::Aborted(AbortReason::InsufficientBalance)));
        assert_eq!(writes.entries(), &[(Key::Nonce(1), Value::Nonce(1))]);
        for verdict in [
            AbortReason::BadSignature,
            AbortReason::CostLimit,
            AbortReason::BatchBudget,
        ] {
            let mut view = Recording {
                state: &state,
                reads: Vec::new(),
            };
            let r = apply(&tx, Some(verdict), &mut view, &mut writes);
            assert_eq!(r, Ok(Receipt::Aborted(verdict)));
            assert!(writes.entries().is_empty() && view.reads.is_empty());
        }
        assert_eq!(state.digest(), before);
    }
}
