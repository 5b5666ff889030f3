//! The one source of time in Keygate.
//!
//! Owns: the [`Clock`] trait (wall time for certificates, TOTP, TTLs and
//! leases; monotonic time for timeouts and rate limits), the real
//! [`SystemClock`] and the settable [`TestClock`].
//! Does not own: timers or sleeping — async code uses tokio for that, but
//! asks this crate *what time it is*. No other crate may call
//! `SystemTime::now()` or `Instant::now()`.
#![forbid(unsafe_code)]

use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use time::OffsetDateTime;

/// A source of wall and monotonic time, injected everywhere time matters.
pub trait Clock: Send + Sync + Debug {
    /// Wall-clock time (UTC). Used for certificate validity, TOTP windows,
    /// resource expiry and leases.
    fn now(&self) -> OffsetDateTime;

    /// Monotonic time since an arbitrary fixed origin of this clock. Used for
    /// timeouts and rate-limit windows, never persisted.
    fn monotonic(&self) -> Duration;

    /// Wall time as whole seconds since the Unix epoch (convenience).
    fn unix_seconds(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

/// Shared handle to a clock; every service holds one.
pub type SharedClock = Arc<dyn Clock>;

// === impl SystemClock ===

/// The real clock.
#[derive(Debug, Clone)]
pub struct SystemClock {
    /// Origin for [`Clock::monotonic`].
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// A shared real clock.
    pub fn shared() -> SharedClock {
        Arc::new(Self::new())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        OffsetDateTime::UNIX_EPOCH.saturating_add(time::Duration::new(
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            i32::try_from(since.subsec_nanos()).unwrap_or(0),
        ))
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

// === impl TestClock ===

/// A clock that only moves when a test moves it. Wall and monotonic time
/// advance together.
#[derive(Debug, Clone)]
pub struct TestClock {
    /// Shared so that clones (handed to services) see every `advance`.
    inner: Arc<Mutex<TestClockState>>,
}

#[derive(Debug)]
struct TestClockState {
    /// Current wall time.
    wall: OffsetDateTime,
    /// Current monotonic reading.
    mono: Duration,
}

impl TestClock {
    /// A test clock starting at `start`.
    pub fn at(start: OffsetDateTime) -> Self {
        Self {
            inner: Arc::new(Mutex::new(TestClockState {
                wall: start,
                mono: Duration::ZERO,
            })),
        }
    }

    /// A test clock starting at the current real time (so certificates it
    /// dates are judged sensibly by real peers such as OpenSSH).
    pub fn starting_now() -> Self {
        Self::at(SystemClock::new().now())
    }

    /// Move time forward.
    pub fn advance(&self, by: Duration) {
        let mut s = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        s.wall = s
            .wall
            .saturating_add(time::Duration::try_from(by).unwrap_or(time::Duration::MAX));
        s.mono = s.mono.saturating_add(by);
    }

    /// Set the wall time (monotonic time is untouched; it never goes back).
    pub fn set(&self, wall: OffsetDateTime) {
        let mut s = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        s.wall = wall;
    }

    /// This clock as a shared handle.
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .wall
    }

    fn monotonic(&self) -> Duration {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .mono
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_clock_moves_only_when_told() {
        let c = TestClock::at(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(c.unix_seconds(), 0);
        c.advance(Duration::from_secs(90));
        assert_eq!(c.unix_seconds(), 90);
        assert_eq!(c.monotonic(), Duration::from_secs(90));
        let shared = c.shared();
        c.advance(Duration::from_secs(10));
        assert_eq!(shared.unix_seconds(), 100);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock::new().unix_seconds() > 1_577_836_800);
    }
}
