//! Editing the database file behind the log's back must be caught by
//! `verify`, which must name the first broken record.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::path::{Path, PathBuf};

use keygate_audit::AuditError;
use keygate_audit_model::{ChainBreak, ChainBreakKind, seal};
use support::{exec, open, raw};

/// A closed log of ten events; returns its directory guard and path.
async fn ten_events() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let (log, _clock) = open(&path).await;
    for i in 0..10 {
        log.emit(exec(&log, "alice", i)).await.unwrap();
    }
    assert_eq!(log.verify().await.unwrap(), 10);
    log.close().await.unwrap();
    (dir, path)
}

async fn verify(path: &Path) -> Result<u64, AuditError> {
    let (log, _clock) = open(path).await;
    let result = log.verify().await;
    log.close().await.unwrap();
    result
}

async fn broken_at(path: &Path) -> ChainBreak {
    let err = verify(path).await.unwrap_err();
    *err.chain_break()
        .unwrap_or_else(|| panic!("not a chain break: {err:?}"))
}

async fn data_of(path: &Path, seq: i64) -> Vec<u8> {
    let mut conn = raw(path).await;
    sqlx::query_scalar("SELECT data FROM events WHERE seq = ?")
        .bind(seq)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

async fn exec_sql(path: &Path, sql: &'static str, binds: &[&[u8]], seq: i64) {
    let mut conn = raw(path).await;
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(b.to_vec());
    }
    q.bind(seq).execute(&mut conn).await.unwrap();
}

#[tokio::test]
async fn edited_data_is_a_bad_hash_at_that_seq() {
    let (_dir, path) = ten_events().await;
    let data = String::from_utf8(data_of(&path, 4).await).unwrap();
    let edited = data.replace("alice", "mallory");
    assert_ne!(data, edited);
    exec_sql(
        &path,
        "UPDATE events SET data = ? WHERE seq = ?",
        &[edited.as_bytes()],
        4,
    )
    .await;
    assert_eq!(
        broken_at(&path).await,
        ChainBreak {
            seq: 4,
            kind: ChainBreakKind::BadHash
        }
    );
}

#[tokio::test]
async fn deleted_row_is_a_gap() {
    let (_dir, path) = ten_events().await;
    exec_sql(&path, "DELETE FROM events WHERE seq = ?", &[], 6).await;
    assert_eq!(
        broken_at(&path).await,
        ChainBreak {
            seq: 7,
            kind: ChainBreakKind::Gap { expected: 6 }
        }
    );
}

#[tokio::test]
async fn swapped_data_breaks_at_the_first_row() {
    let (_dir, path) = ten_events().await;
    let (a, b) = (data_of(&path, 3).await, data_of(&path, 8).await);
    exec_sql(&path, "UPDATE events SET data = ? WHERE seq = ?", &[&b], 3).await;
    exec_sql(&path, "UPDATE events SET data = ? WHERE seq = ?", &[&a], 8).await;
    assert_eq!(
        broken_at(&path).await,
        ChainBreak {
            seq: 3,
            kind: ChainBreakKind::BadHash
        }
    );
}

#[tokio::test]
async fn rehashed_forgery_breaks_the_next_link() {
    let (_dir, path) = ten_events().await;
    // The attacker rewrites row 5 and recomputes its hash correctly.
    let prev: Vec<u8> = {
        let mut conn = raw(&path).await;
        sqlx::query_scalar("SELECT prev_hash FROM events WHERE seq = 5")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    let original = keygate_audit_model::parse_stored(&data_of(&path, 5).await).unwrap();
    let forged_event = original.event.user("mallory");
    let forged = seal(prev.try_into().unwrap(), 5, &forged_event).unwrap();
    exec_sql(
        &path,
        "UPDATE events SET data = ?, hash = ? WHERE seq = ?",
        &[&forged.bytes, &forged.hash],
        5,
    )
    .await;
    assert_eq!(
        broken_at(&path).await,
        ChainBreak {
            seq: 6,
            kind: ChainBreakKind::BadPrevLink
        }
    );
}

#[tokio::test]
async fn truncated_hash_column_is_reported() {
    let (_dir, path) = ten_events().await;
    exec_sql(
        &path,
        "UPDATE events SET hash = ? WHERE seq = ?",
        &[b"short"],
        2,
    )
    .await;
    assert_eq!(
        broken_at(&path).await,
        ChainBreak {
            seq: 2,
            kind: ChainBreakKind::BadHash
        }
    );
}

#[tokio::test]
async fn untouched_log_still_verifies_after_reopen() {
    let (_dir, path) = ten_events().await;
    assert_eq!(verify(&path).await.unwrap(), 10);
}
