//! 256-bit unsigned intermediates, so that Uniswap V2's `uint256` arithmetic on
//! `u128` amounts is exact: products of two amounts never wrap, and a result that
//! does not fit back into `u128` is reported (the caller aborts with `Overflow`).
//!
//! Only what the AMM and lending checks need: widening multiply, add, compare,
//! division and integer square root. Values that fit in 128 bits take a native
//! fast path; the long-division path is bounded by the quotient's bit width.

use std::cmp::Ordering;

/// An unsigned 256-bit integer `hi * 2^128 + lo`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct U256 {
    hi: u128,
    lo: u128,
}

impl Ord for U256 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.hi.cmp(&other.hi).then(self.lo.cmp(&other.lo))
    }
}

impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

const LOW64: u128 = u64::MAX as u128;

impl U256 {
    pub(crate) const ZERO: U256 = U256 { hi: 0, lo: 0 };

    pub(crate) const fn from_u128(lo: u128) -> U256 {
        U256 { hi: 0, lo }
    }

    /// The exact product `a * b`.
    pub(crate) fn mul(a: u128, b: u128) -> U256 {
        if a <= LOW64 && b <= LOW64 {
            return U256::from_u128(a * b);
        }
        let (a1, a0) = (a >> 64, a & LOW64);
        let (b1, b0) = (b >> 64, b & LOW64);
        let p00 = a0 * b0;
        let p01 = a0 * b1;
        let p10 = a1 * b0;
        let p11 = a1 * b1;
        // Each term is below 2^64, so the sum is below 3 * 2^64.
        let mid = (p00 >> 64) + (p01 & LOW64) + (p10 & LOW64);
        let lo = (p00 & LOW64) | (mid << 64);
        let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
        U256 { hi, lo }
    }

    /// `self * b`, or `None` if the product needs more than 256 bits.
    pub(crate) fn checked_mul_u128(self, b: u128) -> Option<U256> {
        let low = U256::mul(self.lo, b);
        let high = U256::mul(self.hi, b);
        if high.hi != 0 {
            return None;
        }
        let hi = low.hi.checked_add(high.lo)?;
        Some(U256 { hi, lo: low.lo })
    }

    pub(crate) fn checked_add(self, other: U256) -> Option<U256> {
        let (lo, carry) = self.lo.overflowing_add(other.lo);
        let hi = self
            .hi
            .checked_add(other.hi)?
            .checked_add(u128::from(carry))?;
        Some(U256 { hi, lo })
    }

    fn wrapping_add(self, other: U256) -> U256 {
        let (lo, carry) = self.lo.overflowing_add(other.lo);
        U256 {
            hi: self
                .hi
                .wrapping_add(other.hi)
                .wrapping_add(u128::from(carry)),
            lo,
        }
    }

    /// `self - other`; the caller guarantees `self >= other`.
    fn sub(self, other: U256) -> U256 {
        let (lo, borrow) = self.lo.overflowing_sub(other.lo);
        U256 {
            hi: self
                .hi
                .wrapping_sub(other.hi)
                .wrapping_sub(u128::from(borrow)),
            lo,
        }
    }

    fn bits(self) -> u32 {
        if self.hi != 0 {
            256 - self.hi.leading_zeros()
        } else {
            128 - self.lo.leading_zeros()
        }
    }

    fn shl(self, n: u32) -> U256 {
        match n {
            0 => self,
            1..=127 => U256 {
                hi: (self.hi << n) | (self.lo >> (128 - n)),
                lo: self.lo << n,
            },
            128..=255 => U256 {
                hi: self.lo << (n - 128),
                lo: 0,
            },
            _ => U256::ZERO,
        }
    }

    fn shr(self, n: u32) -> U256 {
        match n {
            0 => self,
            1..=127 => U256 {
                hi: self.hi >> n,
                lo: (self.lo >> n) | (self.hi << (128 - n)),
            },
            128..=255 => U256 {
                hi: 0,
                lo: self.hi >> (n - 128),
            },
            _ => U256::ZERO,
        }
    }

    fn set_bit(&mut self, bit: u32) {
        if bit >= 128 {
            self.hi |= 1 << (bit - 128);
        } else {
            self.lo |= 1 << bit;
        }
    }

    /// The value as `u128`, or `None` if it does not fit.
    pub(crate) fn to_u128(self) -> Option<u128> {
        (self.hi == 0).then_some(self.lo)
    }

    /// `floor(self / den)`, or `None` when `den` is zero.
    pub(crate) fn checked_div(self, den: U256) -> Option<U256> {
        if den == U256::ZERO {
            return None;
        }
        if self.hi == 0 && den.hi == 0 {
            return Some(U256::from_u128(self.lo / den.lo));
        }
        if self < den {
            return Some(U256::ZERO);
        }
        // Shift-subtract long division over the quotient's bits only.
        let shift = self.bits() - den.bits();
        let mut rem = self;
        let mut d = den.shl(shift);
        let mut quotient = U256::ZERO;
        for bit in (0..=shift).rev() {
            if rem >= d {
                rem = rem.sub(d);
                quotient.set_bit(bit);
            }
            d = d.shr(1);
        }
        Some(quotient)
    }

    /// `floor(sqrt(self))`, which always fits in 128 bits. Same result as
    /// Uniswap V2's Babylonian `Math.sqrt` (which is exact floor for every input).
    pub(crate) fn isqrt(self) -> u128 {
        if self.hi == 0 && self.lo < 4 {
            return u128::from(self.lo != 0);
        }
        // Digit-by-digit binary square root: no division needed.
        let mut num = self;
        let mut res = U256::ZERO;
        let top = (self.bits() - 1) & !1; // highest even bit position <= msb
        let mut bit = U256::ZERO;
        bit.set_bit(top);
        while bit != U256::ZERO {
            // res + bit < 2^(top+2) <= 2^256 never wraps.
            let candidate = res.wrapping_add(bit);
            if num >= candidate {
                num = num.sub(candidate);
                res = res.shr(1).wrapping_add(bit);
            } else {
                res = res.shr(1);
            }
            bit = bit.shr(2);
        }
        res.lo
    }
}

/// `floor(a * b / c)` with an exact 256-bit product; `None` if `c == 0` or the
/// quotient does not fit in `u128`.
pub(crate) fn mul_div(a: u128, b: u128, c: u128) -> Option<u128> {
    U256::mul(a, b).checked_div(U256::from_u128(c))?.to_u128()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_matches_native_when_it_fits() {
        for (a, b) in [(0u128, 5u128), (7, 9), (u64::MAX as u128, u64::MAX as u128)] {
            assert_eq!(U256::mul(a, b), U256::from_u128(a * b));
        }
    }

    #[test]
    fn mul_of_max_values() {
        // (2^128 - 1)^2 = 2^256 - 2^129 + 1
        let p = U256::mul(u128::MAX, u128::MAX);
        assert_eq!(p.hi, u128::MAX - 1);
        assert_eq!(p.lo, 1);
    }

    #[test]
    fn division_round_trips() {
        let p = U256::mul(u128::MAX, 1_000_003);
        assert_eq!(
            p.checked_div(U256::from_u128(1_000_003))
                .and_then(U256::to_u128),
            Some(u128::MAX)
        );
        assert_eq!(mul_div(u128::MAX, u128::MAX, u128::MAX), Some(u128::MAX));
        assert_eq!(mul_div(u128::MAX, 3, 2), None);
        assert_eq!(mul_div(10, 10, 0), None);
        assert_eq!(mul_div(7, 3, 2), Some(10));
    }

    #[test]
    fn isqrt_is_floor() {
        for n in 0u128..2000 {
            let r = U256::from_u128(n).isqrt();
            assert!(r * r <= n && (r + 1) * (r + 1) > n, "n={n} r={r}");
        }
        assert_eq!(U256::mul(u128::MAX, u128::MAX).isqrt(), u128::MAX);
        let big = U256::mul(1 << 100, 1 << 100);
        assert_eq!(big.isqrt(), 1 << 100);
        let below = U256::mul((1 << 100) + 1, (1 << 100) + 1).checked_mul_u128(1);
        assert_eq!(below.map(U256::isqrt), Some((1 << 100) + 1));
    }

    #[test]
    fn checked_mul_detects_overflow() {
        let p = U256::mul(u128::MAX, u128::MAX);
        assert_eq!(p.checked_mul_u128(2), None);
        assert_eq!(p.checked_mul_u128(1), Some(p));
    }
}
