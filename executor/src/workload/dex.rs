//! The `dex` workload: swaps over `pools` Uniswap V2 pools, with some liquidity
//! added and removed. Every operation on a pool writes its reserves, so with few
//! pools almost every transaction conflicts with the one before it.

use rand::Rng;

use super::{Generator, OpKind};
use crate::state::Account;
use crate::tx::Op;

/// Default mix of the `dex` kind.
pub(super) const MIX: &[(OpKind, u32)] = &[
    (OpKind::Swap, 90),
    (OpKind::AddLiquidity, 5),
    (OpKind::RemoveLiquidity, 5),
];

pub(super) fn op(g: &mut Generator, kind: OpKind, sender: Account) -> Op {
    let pool = g.rng.random_range(0..g.pools.max(1));
    let (t0, t1) = g.pool_tokens(pool);
    let (a, b) = if g.rng.random_bool(0.5) {
        (t0, t1)
    } else {
        (t1, t0)
    };
    match kind {
        OpKind::AddLiquidity => {
            let amount_a: u128 = g.rng.random_range(10_000..=1_000_000);
            // Within 5% of the 1:1 genesis price; the pool takes the matching amount.
            let amount_b = amount_a * g.rng.random_range(95..=105) / 100;
            // Shares are about amount * supply / reserve, which starts at 1:1.
            *g.lp.entry((sender, pool)).or_default() += amount_a.min(amount_b) * 9 / 10;
            Op::AddLiquidity {
                pool,
                token_a: a,
                token_b: b,
                amount_a,
                amount_b,
                min_liquidity: 1,
            }
        }
        OpKind::RemoveLiquidity => {
            let held = g.lp.get(&(sender, pool)).copied().unwrap_or(0);
            let liquidity = if held > 0 {
                let take = g.rng.random_range(1..=held);
                g.lp.insert((sender, pool), held - take);
                take
            } else {
                // Nothing added yet: this one aborts (InsufficientLpBalance).
                1_000
            };
            Op::RemoveLiquidity {
                pool,
                token_a: a,
                token_b: b,
                liquidity,
                min_a: 0,
                min_b: 0,
            }
        }
        _ => {
            let amount_in: u128 = g.rng.random_range(1_000..=1_000_000);
            // Mostly no bound; sometimes within 1% of the 1:1 price, which aborts
            // with Slippage once the price has drifted (fee 0.3% included).
            let min_out = if g.rng.random_range(0..10) < 3 {
                amount_in * 99 / 100
            } else {
                1
            };
            Op::Swap {
                pool,
                token_in: a,
                token_out: b,
                amount_in,
                min_out,
            }
        }
    }
}
