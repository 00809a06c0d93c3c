//! The `lending` workload: deposits, withdrawals, borrows and repayments over
//! `markets` markets. Every operation writes its market's totals. The generator
//! tracks what it believes each sender deposited and borrowed so that most
//! borrows stay within the collateral factor and most repayments within the debt;
//! a sender with nothing to borrow against, repay or withdraw deposits instead.

use rand::Rng;

use super::{COLLATERAL_FACTOR_BPS, Generator, OpKind};
use crate::lending::Position;
use crate::state::Account;
use crate::tx::Op;

/// Default mix of the `lending` kind.
pub(super) const MIX: &[(OpKind, u32)] = &[
    (OpKind::Deposit, 35),
    (OpKind::Withdraw, 10),
    (OpKind::Borrow, 35),
    (OpKind::Repay, 20),
];

pub(super) fn op(g: &mut Generator, kind: OpKind, sender: Account) -> Op {
    let market = g.rng.random_range(0..g.markets.max(1));
    let token = g.market_token(market);
    let p: Position = g
        .positions
        .get(&(sender, market))
        .copied()
        .unwrap_or_default();
    let cf = u128::from(COLLATERAL_FACTOR_BPS);
    let power = (p.deposit * cf / 10_000).saturating_sub(p.borrow);
    let locked = (p.borrow * 10_000).div_ceil(cf);
    let free = p.deposit.saturating_sub(locked);
    // A user with nothing to borrow against, repay or withdraw deposits first.
    let kind = match kind {
        OpKind::Borrow if power < 2 => OpKind::Deposit,
        OpKind::Repay if p.borrow == 0 => OpKind::Deposit,
        OpKind::Withdraw if free == 0 => OpKind::Deposit,
        k => k,
    };
    let (amount, next) = match kind {
        OpKind::Deposit => {
            let amount = g.rng.random_range(1_000..=1_000_000u128);
            (
                amount,
                Position {
                    deposit: p.deposit + amount,
                    ..p
                },
            )
        }
        OpKind::Borrow => {
            // Borrow up to half of the remaining borrowing power.
            let amount = g.rng.random_range(1..=(power / 2).max(1));
            (
                amount,
                Position {
                    borrow: p.borrow + amount,
                    ..p
                },
            )
        }
        OpKind::Repay => {
            let amount = g.rng.random_range(1..=p.borrow.max(1));
            (
                amount,
                Position {
                    borrow: p.borrow.saturating_sub(amount),
                    ..p
                },
            )
        }
        _ => {
            // Withdraw at most what keeps the position healthy.
            let amount = g.rng.random_range(1..=free.max(1));
            (
                amount,
                Position {
                    deposit: p.deposit.saturating_sub(amount),
                    ..p
                },
            )
        }
    };
    g.positions.insert((sender, market), next);
    match kind {
        OpKind::Deposit => Op::Deposit {
            market,
            token,
            amount,
        },
        OpKind::Borrow => Op::Borrow {
            market,
            token,
            amount,
        },
        OpKind::Repay => Op::Repay {
            market,
            token,
            amount,
        },
        _ => Op::Withdraw {
            market,
            token,
            amount,
        },
    }
}
