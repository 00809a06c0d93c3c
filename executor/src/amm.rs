//! Uniswap V2 constant-product pools: the pair's reserves and LP supply, and the
//! exact integer math of `UniswapV2Library.getAmountOut`/`quote`, the router's
//! optimal deposit, and `UniswapV2Pair.mint`/`burn` (protocol fee off).
//!
//! Products are computed in 256 bits (as Solidity's `uint256` does), so results
//! equal Uniswap's for every input where Uniswap itself does not overflow; a
//! result that does not fit back in `u128` aborts with `Overflow`.

use serde::{Deserialize, Serialize};

use crate::state::Token;
use crate::tx::AbortReason;
use crate::u256::{U256, mul_div};

/// LP shares locked forever by the first deposit (`MINIMUM_LIQUIDITY` in V2).
pub const MINIMUM_LIQUIDITY: u128 = 1000;

/// A constant-product pool over two distinct tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub token0: Token,
    pub token1: Token,
    pub reserve0: u128,
    pub reserve1: u128,
    /// Total LP shares, including the `MINIMUM_LIQUIDITY` locked at the first deposit.
    pub lp_supply: u128,
}

/// What an accepted liquidity deposit did, in the caller's token order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deposit {
    pub pool: Pool,
    pub used_a: u128,
    pub used_b: u128,
    /// LP shares credited to the depositor.
    pub minted: u128,
}

/// `amount_out = amount_in*997*reserve_out / (reserve_in*1000 + amount_in*997)`,
/// rounded down (`UniswapV2Library.getAmountOut`).
pub fn get_amount_out(
    amount_in: u128,
    reserve_in: u128,
    reserve_out: u128,
) -> Result<u128, AbortReason> {
    if amount_in == 0 {
        return Err(AbortReason::ZeroAmount);
    }
    if reserve_in == 0 || reserve_out == 0 {
        return Err(AbortReason::InsufficientLiquidity);
    }
    let in_with_fee = U256::mul(amount_in, 997);
    let numerator = U256::mul(amount_in, reserve_out)
        .checked_mul_u128(997)
        .ok_or(AbortReason::Overflow)?;
    let denominator = U256::mul(reserve_in, 1000)
        .checked_add(in_with_fee)
        .ok_or(AbortReason::Overflow)?;
    numerator
        .checked_div(denominator)
        .and_then(U256::to_u128)
        .ok_or(AbortReason::Overflow)
}

/// `amount_b = amount_a * reserve_b / reserve_a`, rounded down (`UniswapV2Library.quote`).
pub fn quote(amount_a: u128, reserve_a: u128, reserve_b: u128) -> Result<u128, AbortReason> {
    if amount_a == 0 {
        return Err(AbortReason::ZeroAmount);
    }
    if reserve_a == 0 || reserve_b == 0 {
        return Err(AbortReason::InsufficientLiquidity);
    }
    mul_div(amount_a, reserve_b, reserve_a).ok_or(AbortReason::Overflow)
}

impl Pool {
    /// An empty pool (no reserves, no shares) over `token0` and `token1`.
    pub fn new(token0: Token, token1: Token) -> Pool {
        Pool {
            token0,
            token1,
            reserve0: 0,
            reserve1: 0,
            lp_supply: 0,
        }
    }

    /// `Some(false)` if `(a, b)` is `(token0, token1)`, `Some(true)` if reversed.
    fn reversed(&self, a: Token, b: Token) -> Option<bool> {
        if (a, b) == (self.token0, self.token1) {
            Some(false)
        } else if (a, b) == (self.token1, self.token0) {
            Some(true)
        } else {
            None
        }
    }

    /// Sells `amount_in` of `token_in` for `token_out`; returns the new pool and the
    /// amount out. The caller checks the minimum-out bound and moves balances.
    pub fn swap(
        &self,
        token_in: Token,
        token_out: Token,
        amount_in: u128,
    ) -> Result<(Pool, u128), AbortReason> {
        let reversed = self
            .reversed(token_in, token_out)
            .ok_or(AbortReason::TokenMismatch)?;
        let (r_in, r_out) = if reversed {
            (self.reserve1, self.reserve0)
        } else {
            (self.reserve0, self.reserve1)
        };
        let out = get_amount_out(amount_in, r_in, r_out)?;
        if out == 0 {
            return Err(AbortReason::InsufficientOutput);
        }
        let new_in = r_in.checked_add(amount_in).ok_or(AbortReason::Overflow)?;
        // out < r_out always holds for r_in > 0, so this cannot underflow.
        let new_out = r_out
            .checked_sub(out)
            .ok_or(AbortReason::InsufficientLiquidity)?;
        let mut pool = *self;
        if reversed {
            pool.reserve1 = new_in;
            pool.reserve0 = new_out;
        } else {
            pool.reserve0 = new_in;
            pool.reserve1 = new_out;
        }
        Ok((pool, out))
    }

    /// Deposits up to `desired_a`/`desired_b` at the current price (the router's
    /// `_addLiquidity`: the whole of one side and the matching amount of the other),
    /// then mints shares as `UniswapV2Pair.mint` does. On the first deposit the
    /// shares are `sqrt(a*b) - MINIMUM_LIQUIDITY`, and `MINIMUM_LIQUIDITY` is locked.
    pub fn add_liquidity(
        &self,
        token_a: Token,
        token_b: Token,
        desired_a: u128,
        desired_b: u128,
    ) -> Result<Deposit, AbortReason> {
        let reversed = self
            .reversed(token_a, token_b)
            .ok_or(AbortReason::TokenMismatch)?;
        let (d0, d1) = if reversed {
            (desired_b, desired_a)
        } else {
            (desired_a, desired_b)
        };
        if d0 == 0 || d1 == 0 {
            return Err(AbortReason::ZeroAmount);
        }
        let (r0, r1) = (self.reserve0, self.reserve1);
        let (a0, a1) = if r0 == 0 && r1 == 0 {
            (d0, d1)
        } else {
            let b1 = quote(d0, r0, r1)?;
            if b1 <= d1 {
                (d0, b1)
            } else {
                // quote(d1) <= d0 holds here, as the router asserts.
                (quote(d1, r1, r0)?, d1)
            }
        };
        let (minted, supply) = if self.lp_supply == 0 {
            let root = U256::mul(a0, a1).isqrt();
            if root <= MINIMUM_LIQUIDITY {
                return Err(AbortReason::InsufficientLiquidityMinted);
            }
            (root - MINIMUM_LIQUIDITY, root)
        } else {
            if r0 == 0 || r1 == 0 {
                return Err(AbortReason::InsufficientLiquidity);
            }
            let by0 = mul_div(a0, self.lp_supply, r0).ok_or(AbortReason::Overflow)?;
            let by1 = mul_div(a1, self.lp_supply, r1).ok_or(AbortReason::Overflow)?;
            let minted = by0.min(by1);
            let supply = self
                .lp_supply
                .checked_add(minted)
                .ok_or(AbortReason::Overflow)?;
            (minted, supply)
        };
        if minted == 0 {
            return Err(AbortReason::InsufficientLiquidityMinted);
        }
        let pool = Pool {
            reserve0: r0.checked_add(a0).ok_or(AbortReason::Overflow)?,
            reserve1: r1.checked_add(a1).ok_or(AbortReason::Overflow)?,
            lp_supply: supply,
            ..*self
        };
        let (used_a, used_b) = if reversed { (a1, a0) } else { (a0, a1) };
        Ok(Deposit {
            pool,
            used_a,
            used_b,
            minted,
        })
    }

    /// Burns `liquidity` shares for `liquidity * reserve / supply` of each token
    /// (`UniswapV2Pair.burn`); returns the new pool and the amounts in the caller's
    /// token order. The caller checks the share balance and the minimum amounts.
    pub fn remove_liquidity(
        &self,
        token_a: Token,
        token_b: Token,
        liquidity: u128,
    ) -> Result<(Pool, u128, u128), AbortReason> {
        let reversed = self
            .reversed(token_a, token_b)
            .ok_or(AbortReason::TokenMismatch)?;
        if liquidity == 0 {
            return Err(AbortReason::ZeroAmount);
        }
        if liquidity > self.lp_supply {
            return Err(AbortReason::InsufficientLpBalance);
        }
        let a0 = mul_div(liquidity, self.reserve0, self.lp_supply).ok_or(AbortReason::Overflow)?;
        let a1 = mul_div(liquidity, self.reserve1, self.lp_supply).ok_or(AbortReason::Overflow)?;
        if a0 == 0 || a1 == 0 {
            return Err(AbortReason::InsufficientLiquidityBurned);
        }
        let pool = Pool {
            reserve0: self.reserve0 - a0,
            reserve1: self.reserve1 - a1,
            lp_supply: self.lp_supply - liquidity,
            ..*self
        };
        Ok(if reversed {
            (pool, a1, a0)
        } else {
            (pool, a0, a1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E18: u128 = 1_000_000_000_000_000_000;

    /// Uniswap V2's own `getInputPrice` vectors (UniswapV2Pair.spec.ts):
    /// (amount in, reserve in, reserve out, expected out), in units of 1e18.
    #[test]
    fn uniswap_v2_swap_vectors() {
        let cases: [(u128, u128, u128, u128); 7] = [
            (1, 5, 10, 1_662_497_915_624_478_906),
            (1, 10, 5, 453_305_446_940_074_565),
            (2, 5, 10, 2_851_015_155_847_869_602),
            (2, 10, 5, 831_248_957_812_239_453),
            (1, 10, 10, 906_610_893_880_149_131),
            (1, 100, 100, 987_158_034_397_061_298),
            (1, 1000, 1000, 996_006_981_039_903_216),
        ];
        for (a, r_in, r_out, expected) in cases {
            assert_eq!(
                get_amount_out(a * E18, r_in * E18, r_out * E18),
                Ok(expected),
                "{a} in, reserves {r_in}/{r_out}"
            );
        }
    }

    /// Small hand-computed cases, including exact rounding down.
    #[test]
    fn swap_rounding_by_hand() {
        // 1000*997*1e6 / (1e6*1000 + 997000) = 997e9 / 1_000_997_000 = 996.006.. -> 996
        assert_eq!(get_amount_out(1000, 1_000_000, 1_000_000), Ok(996));
        // 1*997*1000 / (1000*1000 + 997) = 997000 / 1000997 = 0.996 -> 0
        assert_eq!(get_amount_out(1, 1000, 1000), Ok(0));
        // 3*997*1000 / (1000*1000 + 2991) = 2_991_000 / 1_002_991 = 2.98 -> 2
        assert_eq!(get_amount_out(3, 1000, 1000), Ok(2));
        // 100*997*200 / (100*1000 + 99_700) = 19_940_000 / 199_700 = 99.849.. -> 99
        assert_eq!(get_amount_out(100, 100, 200), Ok(99));
        assert_eq!(get_amount_out(0, 1, 1), Err(AbortReason::ZeroAmount));
        assert_eq!(
            get_amount_out(1, 0, 1),
            Err(AbortReason::InsufficientLiquidity)
        );
    }

    #[test]
    fn swap_updates_reserves_in_both_directions() {
        let pool = Pool {
            token0: 3,
            token1: 7,
            reserve0: 1_000_000,
            reserve1: 1_000_000,
            lp_supply: 1_000_000,
        };
        let (after, out) = pool.swap(3, 7, 1000).unwrap();
        assert_eq!(out, 996);
        assert_eq!((after.reserve0, after.reserve1), (1_001_000, 999_004));
        let (back, out) = after.swap(7, 3, 996).unwrap();
        // 996*997*1_001_000 / (999_004*1000 + 996*997) = 994_005_012_000 / 999_997_012
        // = 994.008 -> 994
        assert_eq!(out, 994);
        assert_eq!((back.reserve0, back.reserve1), (1_000_006, 1_000_000));
        assert_eq!(pool.swap(3, 9, 1), Err(AbortReason::TokenMismatch));
        assert_eq!(pool.swap(3, 7, 1), Err(AbortReason::InsufficientOutput));
    }

    #[test]
    fn swap_overflow_is_an_abort() {
        assert_eq!(
            get_amount_out(u128::MAX, u128::MAX, u128::MAX),
            Err(AbortReason::Overflow)
        );
        let pool = Pool {
            token0: 0,
            token1: 1,
            reserve0: u128::MAX - 5,
            reserve1: u128::MAX,
            lp_supply: 1,
        };
        assert_eq!(pool.swap(0, 1, 10), Err(AbortReason::Overflow));
    }

    /// Uniswap V2's `mint` test: 1e18 and 4e18 give sqrt(4e36) = 2e18 shares,
    /// 1000 of them locked.
    #[test]
    fn first_deposit_uniswap_vector() {
        let pool = Pool::new(0, 1);
        let d = pool.add_liquidity(0, 1, E18, 4 * E18).unwrap();
        assert_eq!(d.minted, 2 * E18 - MINIMUM_LIQUIDITY);
        assert_eq!(d.pool.lp_supply, 2 * E18);
        assert_eq!((d.used_a, d.used_b), (E18, 4 * E18));
        assert_eq!((d.pool.reserve0, d.pool.reserve1), (E18, 4 * E18));
    }

    #[test]
    fn first_deposit_by_hand() {
        let pool = Pool::new(0, 1);
        // sqrt(4000 * 1000) = 2000 -> 1000 minted, 1000 locked
        let d = pool.add_liquidity(0, 1, 4000, 1000).unwrap();
        assert_eq!((d.minted, d.pool.lp_supply), (1000, 2000));
        // sqrt(1001 * 1001) = 1001 -> 1 minted
        assert_eq!(pool.add_liquidity(0, 1, 1001, 1001).unwrap().minted, 1);
        // sqrt(1000 * 1000) = 1000 -> nothing left after the lock
        assert_eq!(
            pool.add_liquidity(0, 1, 1000, 1000),
            Err(AbortReason::InsufficientLiquidityMinted)
        );
        // floor(sqrt(1500 * 1000)) = floor(1224.74) = 1224 -> 224 minted
        assert_eq!(pool.add_liquidity(1, 0, 1000, 1500).unwrap().minted, 224);
    }

    #[test]
    fn later_deposit_takes_optimal_amounts_and_min_share() {
        let pool = Pool {
            token0: 0,
            token1: 1,
            reserve0: 2000,
            reserve1: 1000,
            lp_supply: 1414,
        };
        // desired (500, 500): quote(500) of token1 = 500*1000/2000 = 250 <= 500 -> (500, 250)
        // shares = min(500*1414/2000, 250*1414/1000) = min(353.5, 353.5) -> 353
        let d = pool.add_liquidity(0, 1, 500, 500).unwrap();
        assert_eq!((d.used_a, d.used_b, d.minted), (500, 250, 353));
        assert_eq!((d.pool.reserve0, d.pool.reserve1), (2500, 1250));
        assert_eq!(d.pool.lp_supply, 1767);
        // desired (500, 100): quote(500) = 250 > 100 -> a = quote(100 of token1) = 200 -> (200, 100)
        // shares = min(200*1414/2000, 100*1414/1000) = min(141.4, 141.4) -> 141
        let d = pool.add_liquidity(0, 1, 500, 100).unwrap();
        assert_eq!((d.used_a, d.used_b, d.minted), (200, 100, 141));
        // Caller order reversed: token1 first.
        let d = pool.add_liquidity(1, 0, 100, 500).unwrap();
        assert_eq!((d.used_a, d.used_b, d.minted), (100, 200, 141));
        // 1 wei of token0 -> quote = 0 of token1 -> nothing minted
        assert_eq!(
            pool.add_liquidity(0, 1, 1, 1),
            Err(AbortReason::InsufficientLiquidityMinted)
        );
    }

    #[test]
    fn burn_returns_pro_rata_rounded_down() {
        let pool = Pool {
            token0: 0,
            token1: 1,
            reserve0: 3000,
            reserve1: 1001,
            lp_supply: 1500,
        };
        // 700*3000/1500 = 1400, 700*1001/1500 = 467.13 -> 467
        let (after, a, b) = pool.remove_liquidity(0, 1, 700).unwrap();
        assert_eq!((a, b), (1400, 467));
        assert_eq!(
            (after.reserve0, after.reserve1, after.lp_supply),
            (1600, 534, 800)
        );
        let (_, a, b) = pool.remove_liquidity(1, 0, 700).unwrap();
        assert_eq!((a, b), (467, 1400));
        assert_eq!(
            pool.remove_liquidity(0, 1, 1),
            Err(AbortReason::InsufficientLiquidityBurned)
        );
        assert_eq!(
            pool.remove_liquidity(0, 1, 1501),
            Err(AbortReason::InsufficientLpBalance)
        );
    }
}
