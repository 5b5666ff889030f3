//! The conformance suite: one set of behavioural tests every [`Backend`](crate::Backend)
//! must pass, written once and run against each implementation.
//!
//! Each case is a `pub async fn(&Fixture)` that expects a fresh, empty
//! backend driven by the fixture's [`TestClock`]. A test file instantiates
//! the whole suite with [`conformance_suite!`](crate::conformance_suite):
//!
//! ```text
//! async fn fresh() -> keygate_store::conformance::Fixture { /* new backend */ }
//! keygate_store::conformance_suite!(fresh());
//! ```
//!
//! This is test code compiled into the library (so that a backend living in
//! another crate can run it too); it asserts by panicking, like any test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod kv;
mod lease;
mod watch;

use std::any::Any;
use std::time::Duration;

use keygate_clock::TestClock;

pub use self::kv::*;
pub use self::lease::*;
pub use self::watch::*;
use crate::{KeyValue, SharedBackend, Watch, WatchEvent};

/// A fresh backend under test.
pub struct Fixture {
    /// The empty backend.
    pub backend: SharedBackend,
    /// The clock the backend reads; cases advance it to expire leases.
    pub clock: TestClock,
    /// Whatever must live as long as the backend (e.g. a temp dir).
    pub guard: Box<dyn Any + Send>,
}

/// Instantiate every conformance case as a `#[tokio::test]`, each on a
/// fresh fixture from the async expression `$fixture`.
#[macro_export]
macro_rules! conformance_suite {
    ($fixture:expr) => {
        $crate::conformance_suite!(@cases $fixture;
            put_get_delete_revisions,
            range_is_sorted_and_respects_prefix_bounds,
            range_at_reports_its_revision,
            delete_prefix_uses_one_revision,
            txn_applies_all_ops_at_one_revision,
            txn_conflict_changes_nothing,
            txn_compare_kinds,
            concurrent_txns_exactly_one_wins,
            bad_input_is_rejected,
            expired_lease_hides_keys_then_expire_deletes_them,
            keep_alive_extends_and_fails_after_expiry,
            revoke_lease_deletes_its_keys,
            put_with_missing_lease_fails,
            expired_key_is_absent_to_writes,
            watch_delivers_live_events,
            watch_resume_replays_missed_events_exactly,
            watch_from_compacted_revision_yields_compacted,
            slow_watcher_is_cut_off_with_compacted,
            list_then_watch_has_no_gap_or_duplicate,
        );
    };
    (@cases $fixture:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture: $crate::conformance::Fixture = $fixture.await;
                $crate::conformance::$case(&fixture).await;
            }
        )*
    };
}

/// The next event, failing the test if none comes within 10 s (tokio time,
/// only a guard against hangs: no case waits on it to pass).
pub async fn next_event(w: &mut Watch) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("a watch event within 10 s")
        .expect("the watch to still be open")
}

/// The `Put` event a write of `key` = `value` at `rev` produces.
pub fn put_event(key: &str, value: &[u8], create_revision: i64, rev: i64) -> WatchEvent {
    WatchEvent::Put(KeyValue {
        key: key.to_owned(),
        value: value.to_vec(),
        create_revision,
        mod_revision: rev,
        lease: None,
    })
}

/// The `Delete` event of `key` at `rev`.
pub fn delete_event(key: &str, revision: i64) -> WatchEvent {
    WatchEvent::Delete {
        key: key.to_owned(),
        revision,
    }
}

fn keys(kvs: &[KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key.as_str()).collect()
}
