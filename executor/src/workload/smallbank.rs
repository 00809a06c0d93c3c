//! The `smallbank` workload (Alomari et al., ICDE 2008): the six standard
//! transaction types with the standard mix (Balance 15%, DepositChecking 15%,
//! TransactSavings 15%, Amalgamate 15%, WriteCheck 25%, SendPayment 15%) over each
//! account's checking (`CHECKING` token) and savings (`SAVINGS` token).

use rand::Rng;

use super::{Generator, OpKind};
use crate::state::Account;
use crate::tx::{Op, SmallBankOp};

/// Default mix of the `smallbank` kind.
pub(super) const MIX: &[(OpKind, u32)] = &[
    (OpKind::Balance, 15),
    (OpKind::DepositChecking, 15),
    (OpKind::TransactSavings, 15),
    (OpKind::Amalgamate, 15),
    (OpKind::WriteCheck, 25),
    (OpKind::SendPayment, 15),
];

pub(super) fn op(g: &mut Generator, kind: OpKind, sender: Account) -> Op {
    let amount: u128 = g.rng.random_range(1..=10_000);
    Op::SmallBank(match kind {
        OpKind::Balance => SmallBankOp::Balance,
        OpKind::DepositChecking => SmallBankOp::DepositChecking { amount },
        OpKind::TransactSavings => {
            let magnitude = amount as i128;
            SmallBankOp::TransactSavings {
                amount: if g.rng.random_bool(0.5) {
                    magnitude
                } else {
                    -magnitude
                },
            }
        }
        OpKind::Amalgamate => SmallBankOp::Amalgamate {
            to: g.other_receiver(sender),
        },
        OpKind::WriteCheck => SmallBankOp::WriteCheck { amount },
        _ => SmallBankOp::SendPayment {
            to: g.other_receiver(sender),
            amount,
        },
    })
}
