//! GCRA (the generic cell rate algorithm) as two small pure functions over integer microseconds.
//!
//! Written here rather than taken from a crate: `governor` cannot give tokens back, and the
//! `gcra` crate's state is an `Instant` (no shared server time), its tolerance is fixed to
//! the period (no separate burst) and it cannot charge more after the fact. Token limits
//! need all three: reserve an estimate, then refund or charge the difference. The Redis
//! scripts (`state/acquire.lua`, `state/settle.lua`) do exactly the same arithmetic, so both
//! backends decide alike; every value stays below 2^53 so Lua's doubles are exact.
//!
//! A bucket's whole state is its TAT (theoretical arrival time). Spending `cost` moves it
//! by `cost × period / limit`; a spend is allowed while the TAT stays within `tolerance =
//! burst × period / limit` of now. A TAT in the past is a full bucket, the same as none.

use std::time::Duration;

/// Longest span one spend may move a TAT (about 35 years): keeps sums exact in Lua.
const MAX_SPAN_MICROS: u64 = 1 << 50;

/// What checking one bucket decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Allowed: store this TAT.
    Allow { new_tat: u64 },
    /// Not now: allowed again after this many microseconds.
    Wait { retry_after: u64 },
    /// Never: the cost alone exceeds the burst.
    Never,
}

/// How far `cost` moves a TAT at `limit` per `period`, in microseconds.
pub(crate) fn span(cost: u64, limit: u64, period: Duration) -> u64 {
    let period = period.as_micros();
    let span = u128::from(cost) * period / u128::from(limit.max(1));
    u64::try_from(span).unwrap_or(u64::MAX).min(MAX_SPAN_MICROS)
}

/// Checks a spend of `increment` against a bucket whose stored TAT is `tat` (0: none).
pub(crate) fn check(tat: u64, now: u64, increment: u64, tolerance: u64) -> Verdict {
    if increment > tolerance {
        return Verdict::Never;
    }
    let new_tat = tat.max(now) + increment;
    if new_tat <= now + tolerance {
        Verdict::Allow { new_tat }
    } else {
        Verdict::Wait { retry_after: new_tat - tolerance - now }
    }
}

/// The TAT after charging (`delta > 0`) or refunding (`delta < 0`) a settled bucket;
/// 0 means a full bucket (remove it).
pub(crate) fn adjust(tat: u64, now: u64, delta: i64) -> u64 {
    if delta >= 0 {
        tat.max(now) + delta.unsigned_abs()
    } else {
        let refunded = tat.saturating_sub(delta.unsigned_abs());
        if refunded <= now { 0 } else { refunded }
    }
}

/// How many units are left in a bucket whose TAT is `ahead` microseconds from now.
pub(crate) fn remaining(ahead: u64, tolerance: u64, limit: u64, period: Duration) -> u64 {
    let period = period.as_micros().max(1);
    let left = u128::from(tolerance.saturating_sub(ahead)) * u128::from(limit) / period;
    u64::try_from(left).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn ten_per_minute_with_burst_ten_allows_ten_then_waits_six_seconds() {
        let (increment, tolerance) = (span(1, 10, MINUTE), span(10, 10, MINUTE));
        let (mut tat, now) = (0, 1_000_000_000);
        for _ in 0..10 {
            match check(tat, now, increment, tolerance) {
                Verdict::Allow { new_tat } => tat = new_tat,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(check(tat, now, increment, tolerance), Verdict::Wait { retry_after: 6_000_000 });
        assert_eq!(remaining(tat - now, tolerance, 10, MINUTE), 0);
        // Six seconds later exactly one more fits.
        assert!(matches!(check(tat, now + 6_000_000, increment, tolerance), Verdict::Allow { .. }));
    }

    #[test]
    fn costs_above_the_burst_never_pass() {
        assert_eq!(check(0, 5, span(1001, 1000, MINUTE), span(1000, 1000, MINUTE)), Verdict::Never);
    }

    #[test]
    fn refunds_never_go_below_now_and_charges_start_from_now() {
        assert_eq!(adjust(100, 50, -30), 70);
        assert_eq!(adjust(100, 50, -60), 0);
        assert_eq!(adjust(10, 50, 5), 55);
        assert_eq!(adjust(100, 50, 5), 105);
    }

    #[test]
    fn remaining_counts_whole_units() {
        let tolerance = span(10, 10, MINUTE);
        assert_eq!(remaining(0, tolerance, 10, MINUTE), 10);
        assert_eq!(remaining(6_000_000, tolerance, 10, MINUTE), 9);
        assert_eq!(remaining(6_000_001, tolerance, 10, MINUTE), 8);
    }
}
