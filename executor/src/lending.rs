//! Lending markets: one token per market (Compound-style), deposits that earn the
//! right to borrow up to a collateral factor of them, borrows, repayments.
//!
//! A position is healthy when `borrow * 10_000 <= deposit * collateral_factor_bps`;
//! a borrow or withdrawal that would leave it unhealthy aborts with
//! `UnderCollateralised`. The market's `total_borrows <= total_deposits` always holds
//! (the free liquidity is what can be borrowed or withdrawn). No interest accrues:
//! the testbed needs the contention pattern (every operation writes the market's
//! totals), not the economics.

use serde::{Deserialize, Serialize};

use crate::state::Token;
use crate::tx::AbortReason;
use crate::u256::U256;

/// Basis points in 1 (the collateral factor's unit).
pub const BPS: u16 = 10_000;

/// A market's parameters and totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Market {
    pub token: Token,
    /// Borrowing power per unit deposited, in basis points (at most 10 000).
    pub collateral_factor_bps: u16,
    pub total_deposits: u128,
    pub total_borrows: u128,
}

/// One account's position in one market.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub deposit: u128,
    pub borrow: u128,
}

/// `borrow * 10_000 <= deposit * collateral_factor_bps`, computed without overflow.
pub fn is_healthy(deposit: u128, borrow: u128, collateral_factor_bps: u16) -> bool {
    U256::mul(borrow, u128::from(BPS)) <= U256::mul(deposit, u128::from(collateral_factor_bps))
}

impl Market {
    /// An empty market lending `token`.
    pub fn new(token: Token, collateral_factor_bps: u16) -> Market {
        Market {
            token,
            collateral_factor_bps,
            total_deposits: 0,
            total_borrows: 0,
        }
    }

    /// Deposits and borrows not yet lent out.
    pub fn liquidity(&self) -> u128 {
        self.total_deposits.saturating_sub(self.total_borrows)
    }

    fn check(&self, token: Token, amount: u128) -> Result<(), AbortReason> {
        if token != self.token {
            return Err(AbortReason::TokenMismatch);
        }
        if amount == 0 {
            return Err(AbortReason::ZeroAmount);
        }
        Ok(())
    }

    /// Adds `amount` to the position's deposit (the caller debits the balance).
    pub fn deposit(
        &self,
        position: Position,
        token: Token,
        amount: u128,
    ) -> Result<(Market, Position), AbortReason> {
        self.check(token, amount)?;
        let market = Market {
            total_deposits: self
                .total_deposits
                .checked_add(amount)
                .ok_or(AbortReason::Overflow)?,
            ..*self
        };
        let position = Position {
            deposit: position
                .deposit
                .checked_add(amount)
                .ok_or(AbortReason::Overflow)?,
            ..position
        };
        Ok((market, position))
    }

    /// Takes `amount` back out of the deposit (the caller credits the balance).
    pub fn withdraw(
        &self,
        position: Position,
        token: Token,
        amount: u128,
    ) -> Result<(Market, Position), AbortReason> {
        self.check(token, amount)?;
        let deposit = position
            .deposit
            .checked_sub(amount)
            .ok_or(AbortReason::InsufficientDeposit)?;
        if !is_healthy(deposit, position.borrow, self.collateral_factor_bps) {
            return Err(AbortReason::UnderCollateralised);
        }
        if self.liquidity() < amount {
            return Err(AbortReason::InsufficientLiquidity);
        }
        let market = Market {
            total_deposits: self.total_deposits - amount,
            ..*self
        };
        Ok((
            market,
            Position {
                deposit,
                ..position
            },
        ))
    }

    /// Borrows `amount` against the position's deposit (the caller credits the balance).
    pub fn borrow(
        &self,
        position: Position,
        token: Token,
        amount: u128,
    ) -> Result<(Market, Position), AbortReason> {
        self.check(token, amount)?;
        let borrow = position
            .borrow
            .checked_add(amount)
            .ok_or(AbortReason::Overflow)?;
        if !is_healthy(position.deposit, borrow, self.collateral_factor_bps) {
            return Err(AbortReason::UnderCollateralised);
        }
        if self.liquidity() < amount {
            return Err(AbortReason::InsufficientLiquidity);
        }
        let market = Market {
            total_borrows: self.total_borrows + amount,
            ..*self
        };
        Ok((market, Position { borrow, ..position }))
    }

    /// Pays back `amount` of the debt (the caller debits the balance).
    pub fn repay(
        &self,
        position: Position,
        token: Token,
        amount: u128,
    ) -> Result<(Market, Position), AbortReason> {
        self.check(token, amount)?;
        let borrow = position
            .borrow
            .checked_sub(amount)
            .ok_or(AbortReason::RepayExceedsDebt)?;
        let market = Market {
            total_borrows: self.total_borrows.saturating_sub(amount),
            ..*self
        };
        Ok((market, Position { borrow, ..position }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collateral_factor_bounds_borrowing() {
        let m = Market::new(0, 7500);
        let (m, p) = m.deposit(Position::default(), 0, 1000).unwrap();
        assert_eq!(m.total_deposits, 1000);
        // 750 is exactly 75% of 1000.
        let (m, p) = m.borrow(p, 0, 750).unwrap();
        assert_eq!((m.total_borrows, p.borrow), (750, 750));
        assert_eq!(m.borrow(p, 0, 1), Err(AbortReason::UnderCollateralised));
        // Withdrawing 1 would leave 999 * 0.75 = 749.25 < 750.
        assert_eq!(m.withdraw(p, 0, 1), Err(AbortReason::UnderCollateralised));
        let (m, p) = m.repay(p, 0, 300).unwrap();
        assert_eq!(p.borrow, 450);
        // 600 * 0.75 = 450: allowed; liquidity is 1000 - 450 = 550 >= 400.
        let (m, p) = m.withdraw(p, 0, 400).unwrap();
        assert_eq!((m.total_deposits, p.deposit), (600, 600));
        assert_eq!(m.repay(p, 0, 451), Err(AbortReason::RepayExceedsDebt));
        assert_eq!(m.deposit(p, 1, 5), Err(AbortReason::TokenMismatch));
        assert_eq!(m.deposit(p, 0, 0), Err(AbortReason::ZeroAmount));
    }

    #[test]
    fn borrowing_needs_free_liquidity() {
        let m = Market {
            token: 2,
            collateral_factor_bps: 10_000,
            total_deposits: 100,
            total_borrows: 90,
        };
        let p = Position {
            deposit: 100,
            borrow: 0,
        };
        assert_eq!(m.borrow(p, 2, 11), Err(AbortReason::InsufficientLiquidity));
        assert!(m.borrow(p, 2, 10).is_ok());
    }

    #[test]
    fn health_check_never_overflows() {
        assert!(is_healthy(u128::MAX, u128::MAX, BPS));
        assert!(!is_healthy(u128::MAX, u128::MAX, BPS - 1));
        assert_eq!(
            Market::new(0, BPS).deposit(
                Position {
                    deposit: u128::MAX,
                    borrow: 0
                },
                0,
                1
            ),
            Err(AbortReason::Overflow)
        );
    }
}
