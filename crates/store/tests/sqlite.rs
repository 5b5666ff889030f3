//! The conformance suite against the SQLite backend, plus what only a
//! durable store has: reopening a file keeps data, revision and history.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::Duration;

use keygate_clock::{OffsetDateTime, TestClock};
use keygate_store::conformance::{Fixture, delete_event, next_event, put_event};
use keygate_store::{Backend, SqliteBackend, StoreError, WatchEvent};

fn test_clock() -> TestClock {
    TestClock::at(OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap())
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = test_clock();
    let backend = SqliteBackend::open(&dir.path().join("state.db"), clock.shared())
        .await
        .unwrap();
    Fixture {
        backend: Arc::new(backend),
        clock,
        guard: Box::new(dir),
    }
}

keygate_store::conformance_suite!(sqlite());

#[tokio::test]
async fn reopen_keeps_data_revision_leases_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let clock = test_clock();
    let lease = {
        let b = SqliteBackend::open(&path, clock.shared()).await.unwrap();
        b.put("a", b"1".to_vec(), None).await.unwrap();
        b.put("b", b"2".to_vec(), None).await.unwrap();
        b.delete("a").await.unwrap();
        let lease = b.grant_lease(Duration::from_secs(30)).await.unwrap();
        b.put("leased", b"l".to_vec(), Some(lease)).await.unwrap();
        b.compact(1).await.unwrap();
        lease
    };
    let b = SqliteBackend::open(&path, clock.shared()).await.unwrap();
    assert_eq!(b.current_revision().await.unwrap(), 4);
    assert_eq!(b.get("a").await.unwrap(), None);
    assert_eq!(b.get("b").await.unwrap().unwrap().value, b"2");
    assert_eq!(b.get("leased").await.unwrap().unwrap().lease, Some(lease));
    // The revision continues where it stopped.
    assert_eq!(b.put("c", b"3".to_vec(), None).await.unwrap(), 5);
    // History survives (above the compaction), and so does the compaction.
    let mut w = b.watch("", 2).await.unwrap();
    assert_eq!(next_event(&mut w).await, put_event("b", b"2", 2, 2));
    assert_eq!(next_event(&mut w).await, delete_event("a", 3));
    assert!(matches!(
        b.watch("", 1).await.unwrap().next().await,
        Some(WatchEvent::Compacted {
            compact_revision: 1
        })
    ));
    // Leases keep their deadline across restarts: new ids never reuse old ones.
    b.keep_alive(lease).await.unwrap();
    let next = b.grant_lease(Duration::from_secs(30)).await.unwrap();
    assert!(next > lease);
    clock.advance(Duration::from_secs(31));
    assert_eq!(b.expire_leases().await.unwrap(), 2);
    assert_eq!(b.get("leased").await.unwrap(), None);
}

#[tokio::test]
async fn open_fails_clearly_on_a_bad_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("state.db");
    let err = SqliteBackend::open(&path, test_clock().shared())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(err.to_string().contains("missing-dir"), "{err}");
}

#[tokio::test]
async fn open_refuses_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    assert!(
        SqliteBackend::open(&path, test_clock().shared())
            .await
            .is_err()
    );
}
