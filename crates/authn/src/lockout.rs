//! Failed-login lockout as plain data: the caller persists one
//! [`FailureRecord`] per user *and* one per source IP and asks each whether
//! it is locked.
//!
//! Keep records keyed by the *presented* username even when no such user
//! exists; otherwise "locked" would only ever be answered for real users and
//! would reveal which names exist.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// How many recent failures a record keeps. Policies asking for more
/// failures than this before locking are treated as asking for this many.
pub const MAX_TRACKED_FAILURES: usize = 32;

/// When repeated failures lock an account or address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within `window` that trigger a lock; 0 disables lockout.
    pub max_failures: u32,
    /// The sliding window in which failures are counted.
    pub window: Duration,
    /// How long a lock lasts, counted from the failure that triggered it.
    pub duration: Duration,
}

impl Default for LockoutPolicy {
    /// 5 failures within 15 minutes lock for 30 minutes.
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::minutes(15),
            duration: Duration::minutes(30),
        }
    }
}

/// Recent failed attempts for one key (a username or a source address).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// Times of the most recent failures, oldest first, at most
    /// [`MAX_TRACKED_FAILURES`].
    #[serde(default)]
    failures: Vec<Stamp>,
}

/// A timestamp serialised as RFC 3339 (readable in the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
struct Stamp(#[serde(with = "time::serde::rfc3339")] OffsetDateTime);

impl FailureRecord {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Note a failed attempt at `now`. Attempts refused *because* the key
    /// was already locked should not be recorded, or an attacker could keep
    /// a victim locked out indefinitely with one try per lock period.
    pub fn record_failure(&mut self, now: OffsetDateTime) {
        self.failures.push(Stamp(now));
        let excess = self.failures.len().saturating_sub(MAX_TRACKED_FAILURES);
        self.failures.drain(..excess);
    }

    /// A successful login forgets earlier failures.
    pub fn record_success(&mut self) {
        self.failures.clear();
    }

    /// Number of failures remembered.
    pub fn failure_count(&self) -> usize {
        self.failures.len()
    }

    /// Until when this key is locked at `now`, if it is. A lock starts when
    /// the `max_failures`-th failure inside one `window` happens and lasts
    /// `duration` from that failure.
    pub fn locked_until(
        &self,
        policy: &LockoutPolicy,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let needed = usize::try_from(policy.max_failures)
            .ok()?
            .min(MAX_TRACKED_FAILURES);
        if needed == 0 {
            return None;
        }
        // Stored order is insertion order; sort in case the wall clock
        // stepped backwards between failures.
        let mut times: Vec<OffsetDateTime> = self.failures.iter().map(|s| s.0).collect();
        times.sort_unstable();
        // For each run of `needed` consecutive failures that fits in the
        // window, a lock runs from its last failure; the latest such lock
        // is the one that matters.
        times
            .windows(needed)
            .filter_map(|run| match (run.first(), run.last()) {
                (Some(first), Some(last)) if *last - *first <= policy.window => {
                    Some(*last + policy.duration)
                }
                _ => None,
            })
            .max()
            .filter(|until| *until > now)
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
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2025-01-01 00:00 UTC);

    #[test]
    fn five_failures_in_window_lock_for_thirty_minutes() {
        let p = LockoutPolicy::default();
        let mut r = FailureRecord::new();
        for i in 0..4 {
            r.record_failure(T0 + Duration::minutes(i));
            assert_eq!(r.locked_until(&p, T0 + Duration::minutes(i)), None);
        }
        let fifth = T0 + Duration::minutes(10);
        r.record_failure(fifth);
        assert_eq!(
            r.locked_until(&p, fifth),
            Some(fifth + Duration::minutes(30))
        );
        assert!(r.locked_until(&p, fifth + Duration::minutes(29)).is_some());
        assert_eq!(r.locked_until(&p, fifth + Duration::minutes(30)), None);
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let p = LockoutPolicy::default();
        let mut r = FailureRecord::new();
        for i in 0..10 {
            let t = T0 + Duration::minutes(4 * i);
            r.record_failure(t);
            assert_eq!(r.locked_until(&p, t), None, "failure {i}");
        }
    }

    #[test]
    fn success_resets() {
        let p = LockoutPolicy::default();
        let mut r = FailureRecord::new();
        for _ in 0..4 {
            r.record_failure(T0);
        }
        r.record_success();
        r.record_failure(T0);
        assert_eq!(r.failure_count(), 1);
        assert_eq!(r.locked_until(&p, T0), None);
    }

    #[test]
    fn zero_disables_and_huge_is_capped() {
        let mut r = FailureRecord::new();
        for _ in 0..100 {
            r.record_failure(T0);
        }
        assert_eq!(r.failure_count(), MAX_TRACKED_FAILURES);
        let off = LockoutPolicy {
            max_failures: 0,
            ..LockoutPolicy::default()
        };
        assert_eq!(r.locked_until(&off, T0), None);
        let huge = LockoutPolicy {
            max_failures: u32::MAX,
            ..LockoutPolicy::default()
        };
        assert!(r.locked_until(&huge, T0).is_some());
    }

    #[test]
    fn clock_stepping_back_still_counts() {
        let p = LockoutPolicy::default();
        let mut r = FailureRecord::new();
        for i in [5, 4, 3, 2, 1] {
            r.record_failure(T0 + Duration::minutes(i));
        }
        assert_eq!(
            r.locked_until(&p, T0 + Duration::minutes(5)),
            Some(T0 + Duration::minutes(35))
        );
    }

    #[test]
    fn serde_round_trip_and_bad_input() {
        let mut r = FailureRecord::new();
        r.record_failure(T0);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"failures":["2025-01-01T00:00:00Z"]}"#);
        assert_eq!(serde_json::from_str::<FailureRecord>(&json).unwrap(), r);
        assert_eq!(
            serde_json::from_str::<FailureRecord>("{}").unwrap(),
            FailureRecord::new()
        );
        assert!(serde_json::from_str::<FailureRecord>(r#"{"failures":["yesterday"]}"#).is_err());
        assert!(serde_json::from_str::<FailureRecord>(r#"{"failures":5}"#).is_err());
    }
}
