//! The `mixed` workload: transfers, swaps, lending and SmallBank operations in one
//! stream, so the same balances are touched by different kinds of transactions.

use super::OpKind;

/// Default mix of the `mixed` kind.
pub(super) const MIX: &[(OpKind, u32)] = &[
    (OpKind::Transfer, 35),
    (OpKind::Swap, 25),
    (OpKind::AddLiquidity, 2),
    (OpKind::RemoveLiquidity, 2),
    (OpKind::Deposit, 6),
    (OpKind::Withdraw, 2),
    (OpKind::Borrow, 6),
    (OpKind::Repay, 4),
    (OpKind::Balance, 3),
    (OpKind::DepositChecking, 3),
    (OpKind::TransactSavings, 3),
    (OpKind::Amalgamate, 1),
    (OpKind::WriteCheck, 5),
    (OpKind::SendPayment, 3),
];
