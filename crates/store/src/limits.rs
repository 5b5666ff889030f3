//! Input limits and the small helpers every backend shares (validation,
//! prefix bounds, time in milliseconds), so both backends reject exactly the
//! same inputs.

use std::collections::HashSet;
use std::time::Duration;

use keygate_clock::SharedClock;

use crate::error::shorten;
use crate::{Compare, Op, Revision, StoreError};

/// Longest key accepted, in bytes (etcd-like; keys are paths, not data).
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 4 * 1024 * 1024;
/// Most compares, and most ops, in one transaction.
pub const MAX_TXN_ITEMS: usize = 1024;
/// Live events a watcher may have queued before it is cut off with
/// [`crate::WatchEvent::Compacted`].
pub const WATCH_BUFFER: usize = 1024;
/// Most history events one watch replays; a watch further behind than this
/// gets [`crate::WatchEvent::Compacted`] and must re-list, which is cheaper
/// than holding that much history in memory.
pub const MAX_REPLAY_EVENTS: usize = 10_000;
/// Longest lease TTL accepted (leases are for liveness, not storage).
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

pub(crate) fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidKey {
            key: String::new(),
            reason: "keys must not be empty",
        });
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::InvalidKey {
            key: shorten(key),
            reason: "keys must be at most 1024 bytes",
        });
    }
    Ok(())
}

/// A prefix may be empty (everything) but not longer than a key.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    if prefix.len() > MAX_KEY_BYTES {
        return Err(StoreError::InvalidKey {
            key: shorten(prefix),
            reason: "prefixes must be at most 1024 bytes",
        });
    }
    Ok(())
}

pub(crate) fn validate_value(key: &str, value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::ValueTooLarge {
            key: shorten(key),
            len: value.len(),
            max: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// Checks sizes, every key and value, and that no key is written twice (the
/// order of two writes to one key at one revision would be ambiguous to
/// watchers).
pub(crate) fn validate_txn(compares: &[Compare], ops: &[Op]) -> Result<(), StoreError> {
    if compares.len() > MAX_TXN_ITEMS {
        return Err(StoreError::TxnTooLarge {
            what: "compares",
            count: compares.len(),
            max: MAX_TXN_ITEMS,
        });
    }
    if ops.len() > MAX_TXN_ITEMS {
        return Err(StoreError::TxnTooLarge {
            what: "ops",
            count: ops.len(),
            max: MAX_TXN_ITEMS,
        });
    }
    for c in compares {
        validate_key(c.key())?;
    }
    let mut seen = HashSet::with_capacity(ops.len());
    for op in ops {
        validate_key(op.key())?;
        if let Op::Put { key, value, .. } = op {
            validate_value(key, value)?;
        }
        if !seen.insert(op.key()) {
            return Err(StoreError::DuplicateKeyInTxn {
                key: shorten(op.key()),
            });
        }
    }
    Ok(())
}

pub(crate) fn validate_watch_revision(from_revision: Revision) -> Result<(), StoreError> {
    if from_revision < 0 {
        return Err(StoreError::InvalidRevision {
            revision: from_revision,
            reason: "watch revisions start at 0 (live only) or 1".to_owned(),
        });
    }
    Ok(())
}

/// TTL in milliseconds, rejecting zero and absurd values.
pub(crate) fn ttl_ms(ttl: Duration) -> Result<i64, StoreError> {
    if ttl < Duration::from_millis(1) {
        return Err(StoreError::InvalidTtl {
            ttl,
            reason: "a lease must live at least 1 ms",
        });
    }
    if ttl > MAX_TTL {
        return Err(StoreError::InvalidTtl {
            ttl,
            reason: "a lease may live at most one year",
        });
    }
    i64::try_from(ttl.as_millis()).map_err(|_| StoreError::InvalidTtl {
        ttl,
        reason: "a lease may live at most one year",
    })
}

/// The clock's wall time in Unix milliseconds (saturating: a clock beyond
/// year 292 million is not our problem).
pub(crate) fn now_ms(clock: &SharedClock) -> i64 {
    let ms = clock.now().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// The smallest string greater than every string starting with `prefix`, or
/// `None` when no such bound exists (empty prefix, or only `char::MAX`s).
///
/// Strings compare by code point in both backends (Rust `str` order and
/// SQLite's BINARY collation on UTF-8 agree), so "starts with `prefix`" is
/// exactly `prefix <= key < prefix_end(prefix)`: incrementing the last
/// incrementable char gives the bound, and the range scan can use an index.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = next_char(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn next_char(c: char) -> Option<char> {
    let mut n = u32::from(c).checked_add(1)?;
    // Skip the surrogate range, which holds no chars.
    if (0xD800..=0xDFFF).contains(&n) {
        n = 0xE000;
    }
    char::from_u32(n)
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
    fn prefix_end_bounds_exactly_the_prefixed_keys() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        let p = "users/";
        let end = prefix_end(p).unwrap();
        for k in [
            "users/",
            "users/a",
            "users/\u{10FFFF}\u{10FFFF}",
            "users/zzz",
        ] {
            assert!(k >= p && k < end.as_str(), "{k}");
        }
        for k in ["users", "users0", "usert", "v"] {
            assert!(!(k >= p && k < end.as_str()), "{k}");
        }
    }

    #[test]
    fn validation_rejects_bad_input() {
        assert!(matches!(
            validate_key(""),
            Err(StoreError::InvalidKey { .. })
        ));
        assert!(validate_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(matches!(
            validate_key(&"k".repeat(MAX_KEY_BYTES + 1)),
            Err(StoreError::InvalidKey { .. })
        ));
        assert!(validate_prefix("").is_ok());
        assert!(matches!(
            validate_value("k", &vec![0; MAX_VALUE_BYTES + 1]),
            Err(StoreError::ValueTooLarge { len, .. }) if len == MAX_VALUE_BYTES + 1
        ));
        let dup = vec![
            Op::Delete { key: "a".into() },
            Op::Put {
                key: "a".into(),
                value: vec![],
                lease: None,
            },
        ];
        assert!(matches!(
            validate_txn(&[], &dup),
            Err(StoreError::DuplicateKeyInTxn { .. })
        ));
        assert!(matches!(
            ttl_ms(Duration::ZERO),
            Err(StoreError::InvalidTtl { .. })
        ));
        assert!(matches!(
            ttl_ms(Duration::from_secs(400 * 24 * 3600)),
            Err(StoreError::InvalidTtl { .. })
        ));
        assert_eq!(ttl_ms(Duration::from_secs(2)).unwrap(), 2000);
        assert!(validate_watch_revision(-1).is_err());
    }
}
