//! The `transfer` workload: token-0 transfers of 1..=1000 units between accounts.
//! With many accounts and low skew, transactions rarely conflict.

use rand::Rng;

use super::{Generator, OpKind};
use crate::state::Account;
use crate::tx::Op;

/// Default mix of the `transfer` kind.
pub(super) const MIX: &[(OpKind, u32)] = &[(OpKind::Transfer, 1)];

pub(super) fn op(g: &mut Generator, sender: Account) -> Op {
    let to = g.other_receiver(sender);
    Op::Transfer {
        to,
        token: 0,
        amount: g.rng.random_range(1..=1000),
    }
}
