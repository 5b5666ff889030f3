//! Reconnect delays: exponential backoff with full jitter.
//!
//! Full jitter (a uniform delay between zero and the exponential cap)
//! spreads out a fleet of nodes that all lost the same proxy at the same
//! moment, so they do not all come back in one thundering herd.

use std::time::Duration;

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Cap of the first retry's delay.
    pub initial: Duration,
    /// Largest delay ever waited.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The upper bound of the delay before retry number `attempt` (0 for
    /// the first retry): `min(max, initial * 2^attempt)`.
    pub fn cap(&self, attempt: u32) -> Duration {
        // 2^31 already overflows any sensible initial delay; saturate.
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max)
    }

    /// The delay before retry number `attempt`, given `random` drawn
    /// uniformly from `[0, 1)`: `cap(attempt) * random`. Values outside
    /// `[0, 1]` are clamped; a non-finite value yields the cap. Pure, so it
    /// can be tested without a clock or a random source.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let cap = self.cap(attempt);
        let r = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            1.0
        };
        // try_from avoids the panic of `mul_f64` when the cap is so large
        // that the float round trip overflows.
        Duration::try_from_secs_f64(cap.as_secs_f64() * r)
            .unwrap_or(cap)
            .min(cap)
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]

    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn caps_grow_exponentially_then_stop_at_max() {
        let b = Backoff::default();
        let caps: Vec<Duration> = (0..8).map(|a| b.cap(a)).collect();
        assert_eq!(
            caps,
            vec![
                MS(250),
                MS(500),
                MS(1000),
                MS(2000),
                MS(4000),
                MS(8000),
                MS(10_000),
                MS(10_000)
            ]
        );
        // Huge attempt numbers saturate instead of overflowing.
        assert_eq!(b.cap(31), MS(10_000));
        assert_eq!(b.cap(u32::MAX), MS(10_000));
    }

    #[test]
    fn delay_is_cap_times_random() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, 0.0), Duration::ZERO);
        assert_eq!(b.delay(0, 0.5), MS(125));
        assert_eq!(b.delay(2, 0.25), MS(250));
        assert_eq!(b.delay(10, 0.5), MS(5000));
        // Upper end of [0, 1) stays strictly below the cap.
        assert!(b.delay(3, 0.999_999) < b.cap(3));
    }

    #[test]
    fn jitter_stays_within_bounds_for_many_draws() {
        let b = Backoff::default();
        for attempt in 0..40 {
            for i in 0..=100u32 {
                let r = f64::from(i) / 100.0;
                let d = b.delay(attempt, r);
                assert!(d <= b.cap(attempt), "attempt {attempt} r {r}: {d:?}");
                assert!(d <= b.max);
            }
        }
    }

    #[test]
    fn out_of_range_random_is_clamped() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, -3.0), Duration::ZERO);
        assert_eq!(b.delay(1, 7.0), MS(500));
        assert_eq!(b.delay(1, f64::NAN), MS(500));
        assert_eq!(b.delay(1, f64::INFINITY), MS(500));
        assert_eq!(b.delay(1, f64::NEG_INFINITY), MS(500));
    }

    #[test]
    fn extreme_configurations_do_not_panic() {
        let huge = Backoff {
            initial: Duration::MAX,
            max: Duration::MAX,
        };
        assert_eq!(huge.cap(5), Duration::MAX);
        assert!(huge.delay(5, 0.999) <= Duration::MAX);
        assert_eq!(huge.delay(5, 1.0), Duration::MAX);
        let zero = Backoff {
            initial: Duration::ZERO,
            max: Duration::from_secs(1),
        };
        assert_eq!(zero.delay(7, 0.9), Duration::ZERO);
        // max below initial: max wins.
        let inverted = Backoff {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(1),
        };
        assert_eq!(inverted.cap(0), Duration::from_secs(1));
    }
}
