//! Tests of what only the SQLite backend has: pragmas, schema versioning,
//! corrupt-row handling.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
use keygate_clock::TestClock;

use super::*;

async fn pragma(conn: &mut SqliteConnection, name: &'static str) -> String {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    match row.try_get::<String, _>(0) {
        Ok(text) => text,
        Err(_) => row.try_get::<i64, _>(0).unwrap().to_string(),
    }
}

#[tokio::test]
async fn connections_are_configured_for_durability() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::starting_now();
    let b = SqliteBackend::open(&dir.path().join("s.db"), clock.shared())
        .await
        .unwrap();
    let mut w = b.inner.writer.lock().await;
    assert_eq!(pragma(&mut w, "journal_mode").await, "wal");
    assert_eq!(pragma(&mut w, "synchronous").await, "2"); // FULL
    assert_eq!(pragma(&mut w, "foreign_keys").await, "1");
    assert_eq!(pragma(&mut w, "busy_timeout").await, "5000");
    drop(w);
    let mut r = b.inner.readers.acquire().await.unwrap();
    assert_eq!(pragma(&mut r, "query_only").await, "1");
    assert_eq!(pragma(&mut r, "synchronous").await, "2");
    let write = sqlx::query("UPDATE meta SET value = 99 WHERE name = 'revision'")
        .execute(&mut *r)
        .await;
    assert!(write.is_err(), "readers must not write");
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let clock = TestClock::starting_now();
    {
        let b = SqliteBackend::open(&path, clock.shared()).await.unwrap();
        let mut w = b.inner.writer.lock().await;
        meta_set(&mut w, "schema_version", schema::SCHEMA_VERSION + 1)
            .await
            .unwrap();
    }
    let err = SqliteBackend::open(&path, clock.shared())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade keygate"), "{err}");
}

#[tokio::test]
async fn corrupt_history_row_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::starting_now();
    let b = SqliteBackend::open(&dir.path().join("s.db"), clock.shared())
        .await
        .unwrap();
    b.put("k", b"v".to_vec(), None).await.unwrap();
    {
        let mut w = b.inner.writer.lock().await;
        sqlx::query("UPDATE history SET kind = 7")
            .execute(&mut *w)
            .await
            .unwrap();
    }
    assert!(matches!(b.watch("", 1).await, Err(StoreError::Corrupt(_))));
    {
        let mut w = b.inner.writer.lock().await;
        sqlx::query("UPDATE history SET kind = 0, value = NULL")
            .execute(&mut *w)
            .await
            .unwrap();
    }
    assert!(matches!(b.watch("", 1).await, Err(StoreError::Corrupt(_))));
}
