//! A peer's resend budget: a token bucket in bytes, refilled per status interval, that
//! bounds what a replica sends one peer in answer to that peer's own status and fetch
//! messages (issue 10 item 4). It may go negative by one answer, so an answer larger
//! than the budget still goes out once, then the peer waits for the refill. PBFT
//! charges every retransmission and state answer (`resend_budget_bytes`); HotStuff
//! charges its state-transfer answers (headers and chunks).

use std::time::Duration;

use crate::types::Time;

/// A peer's resend budget.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResendBudget {
    /// Bytes that may still be sent; negative after an overdraft.
    pub tokens: i64,
    /// When `tokens` was last refilled.
    pub refilled_at: Time,
}

impl ResendBudget {
    /// A full budget of `per_interval` bytes at `now`.
    pub fn full(per_interval: u64, now: Time) -> ResendBudget {
        ResendBudget {
            tokens: i64::try_from(per_interval).unwrap_or(i64::MAX),
            refilled_at: now,
        }
    }

    /// Refills for the time since the last refill (`per_interval` bytes per
    /// `interval`, up to `per_interval`), then charges `bytes` if anything is left.
    /// Returns whether the answer may go out.
    pub fn charge(
        &mut self,
        now: Time,
        bytes: usize,
        per_interval: u64,
        interval: Duration,
    ) -> bool {
        let cap = i64::try_from(per_interval).unwrap_or(i64::MAX);
        let elapsed = now.since(self.refilled_at).as_nanos();
        let interval = interval.as_nanos().max(1);
        let refill = (elapsed.saturating_mul(u128::from(per_interval)) / interval)
            .min(i64::MAX as u128) as i64;
        self.tokens = self.tokens.saturating_add(refill).min(cap);
        self.refilled_at = now;
        if self.tokens <= 0 {
            return false;
        }
        self.tokens = self
            .tokens
            .saturating_sub(i64::try_from(bytes).unwrap_or(i64::MAX));
        true
    }
}
