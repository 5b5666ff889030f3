//! Per-source failure tracking, in memory: a flood from one address is
//! slowed without touching the store. Per-user records are persisted (see
//! `login.rs`) so that lockouts survive restarts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use keygate_authn::{FailureRecord, LockoutPolicy};
use time::OffsetDateTime;

/// Most addresses tracked; beyond this the oldest-looking entries go (an
/// attacker with many addresses cannot exhaust memory).
const MAX_SOURCES: usize = 65_536;

/// Failure records per source address.
#[derive(Debug, Default)]
pub struct SourceLimiter {
    /// Address → recent failures.
    records: Mutex<HashMap<IpAddr, FailureRecord>>,
}

impl SourceLimiter {
    /// Policy for sources: more lenient than per-user (a NAT may hide many
    /// users), same window and duration.
    pub fn policy(user_policy: &LockoutPolicy) -> LockoutPolicy {
        LockoutPolicy {
            max_failures: user_policy.max_failures.saturating_mul(4),
            ..*user_policy
        }
    }

    pub fn locked_until(
        &self,
        ip: IpAddr,
        policy: &LockoutPolicy,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let map = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&ip).and_then(|r| r.locked_until(policy, now))
    }

    pub fn record_failure(&self, ip: IpAddr, now: OffsetDateTime) {
        let mut map = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_SOURCES && !map.contains_key(&ip) {
            map.clear();
        }
        map.entry(ip).or_default().record_failure(now);
    }
}
