//! Retry delays: exponential with jitter, so exporters that failed
//! together (the receiver went down) do not retry in lockstep.

use std::time::Duration;

/// Bounds of the retry delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure (before jitter).
    pub min: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// Bounds `min..=max` (swapped if given the wrong way round).
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min: min.min(max),
            max: max.max(min),
        }
    }

    /// The delay after `failures` consecutive failures (1 = the first).
    pub fn delay(&self, failures: u32) -> Duration {
        self.delay_with(failures, rand::random::<f64>())
    }

    /// The delay with a given jitter in `0.0..=1.0`: the exponential step
    /// `min·2^failures` capped at `max`, less up to half of it at random
    /// ("equal jitter"), never below `min`. The delay still grows, stays
    /// within `min..=max`, and retries of exporters that failed together
    /// spread out.
    pub fn delay_with(&self, failures: u32, jitter: f64) -> Duration {
        let exp = failures.min(31);
        let step = self.min.saturating_mul(1u32 << exp).min(self.max);
        let half = step / 2;
        (half + half.mul_f64(jitter.clamp(0.0, 1.0))).clamp(self.min, self.max)
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

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let b = Backoff::default();
        let ms = |n, j| b.delay_with(n, j).as_millis();
        assert_eq!([ms(1, 0.0), ms(1, 1.0)], [100, 200]);
        assert_eq!([ms(2, 0.0), ms(2, 1.0)], [200, 400]);
        assert_eq!([ms(4, 0.0), ms(4, 0.5), ms(4, 1.0)], [800, 1200, 1600]);
        assert_eq!(ms(30, 1.0), 30_000);
        assert_eq!(ms(u32::MAX, 1.0), 30_000);
        assert_eq!(ms(u32::MAX, 0.0), 15_000);
        assert_eq!(ms(0, 0.0), 100);
        for n in 0..40 {
            let d = b.delay(n);
            assert!(d >= b.min && d <= b.max, "{n}: {d:?}");
        }
    }

    #[test]
    fn bounds_are_ordered() {
        let b = Backoff::new(Duration::from_secs(5), Duration::from_millis(10));
        assert_eq!(b.min, Duration::from_millis(10));
        assert_eq!(b.max, Duration::from_secs(5));
    }
}
