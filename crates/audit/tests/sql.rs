//! `AuditLog::query_sql`: views per event type, read-only connections that
//! refuse every kind of write (by the database, not by keyword), a row cap
//! and the time limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::time::Duration;

use keygate_audit::{AuditError, AuditOptions};
use keygate_audit_model::EventType;
use serde_json::json;
use support::{open, open_with};

#[tokio::test]
async fn views_answer_sql_and_writes_are_refused_by_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let (log, _clock) = open(&path).await;
    for (user, login) in [("alice", "root"), ("alice", "ubuntu"), ("bob", "root")] {
        let ev = log
            .event(EventType::SessionStart)
            .user(user)
            .login(login)
            .node("web-1");
        log.emit(ev).await.unwrap();
    }
    log.emit(log.event(EventType::UserLogin).user("carol"))
        .await
        .unwrap();
    let r = log
        .query_sql(
            "SELECT user, count(*) AS n FROM session_start GROUP BY user ORDER BY user",
            100,
        )
        .await
        .unwrap();
    assert_eq!(r.columns, vec!["user", "n"]);
    assert_eq!(
        r.rows,
        vec![vec![json!("alice"), json!(2)], vec![json!("bob"), json!(1)]]
    );
    let r = log
        .query_sql(
            "SELECT login FROM session_start WHERE login = 'root' AND node = 'web-1'",
            100,
        )
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 2);
    let r = log
        .query_sql("SELECT count(*) FROM all_events", 100)
        .await
        .unwrap();
    assert_eq!(r.rows, vec![vec![json!(4)]]);
    let r = log
        .query_sql("SELECT json_extract(data, '$.user') FROM user_login", 100)
        .await
        .unwrap();
    assert_eq!(r.rows, vec![vec![json!("carol")]]);
    // The row cap.
    let r = log
        .query_sql("SELECT seq FROM all_events", 2)
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 2);
    assert!(r.truncated);

    // Every kind of write is refused, and nothing changed.
    let attached = dir.path().join("other.db");
    for sql in [
        "DELETE FROM events",
        "UPDATE events SET user = 'x'",
        "INSERT INTO checkpoints (seq, unix_ms, data) VALUES (1, 1, 'x')",
        "CREATE TABLE t (x)",
        "DROP VIEW session_start",
        "PRAGMA query_only = OFF; DELETE FROM events",
        &format!("ATTACH DATABASE '{}' AS o", attached.display()),
    ] {
        let e = log.query_sql(sql, 10).await;
        assert!(matches!(e, Err(AuditError::BadQuery(_))), "{sql}: {e:?}");
    }
    assert!(!attached.exists(), "ATTACH created no file");
    assert_eq!(log.verify().await.unwrap(), 4);
    let e = log.query_sql("SELEC nonsense", 10).await;
    assert!(matches!(e, Err(AuditError::BadQuery(_))), "{e:?}");
    log.close().await.unwrap();
}

#[tokio::test]
async fn runaway_queries_hit_the_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    // A zero time limit: the first progress check stops the statement
    // (the test clock does not move, so the limit is never renewed).
    let opts = AuditOptions {
        query_timeout: Duration::ZERO,
        ..AuditOptions::default()
    };
    let (log, _clock) = open_with(&path, opts).await;
    let e = log
        .query_sql(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            10,
        )
        .await;
    assert!(matches!(e, Err(AuditError::QueryTimeout)), "{e:?}");
    log.close().await.unwrap();
}
