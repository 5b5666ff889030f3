//! In-memory failure tracking, for keys that must not touch the store:
//! source addresses (a flood from one address is slowed) and unknown user
//! names (they lock out exactly like real ones, so lockouts reveal nothing
//! about which names exist). Real users' records are persisted (see
//! `login.rs`) so that their lockouts survive restarts.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use keygate_authn::{FailureRecord, LockoutPolicy};
use time::OffsetDateTime;

/// Most keys tracked; past this the table starts over (an attacker with
/// many addresses or names cannot exhaust memory).
const MAX_KEYS: usize = 65_536;

/// Failure records per key.
#[derive(Debug)]
pub struct FailureLimiter<K> {
    /// Key → recent failures.
    records: Mutex<HashMap<K, FailureRecord>>,
}

impl<K> Default for FailureLimiter<K> {
    fn default() -> Self {
        Self {
            records: Mutex::new(HashMap::new()),
        }
    }
}

/// Policy for source addresses: more lenient than per user (a NAT may hide
/// many users), same window and duration.
pub fn source_policy(user_policy: &LockoutPolicy) -> LockoutPolicy {
    LockoutPolicy {
        max_failures: user_policy.max_failures.saturating_mul(4),
        ..*user_policy
    }
}

impl<K: Hash + Eq + Clone> FailureLimiter<K> {
    pub fn locked_until(
        &self,
        key: &K,
        policy: &LockoutPolicy,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let map = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key).and_then(|r| r.locked_until(policy, now))
    }

    pub fn record_failure(&self, key: &K, now: OffsetDateTime) {
        let mut map = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.clear();
        }
        map.entry(key.clone()).or_default().record_failure(now);
    }
}
