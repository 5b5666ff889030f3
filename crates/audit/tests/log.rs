#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use keygate_audit::{AuditError, AuditOptions, SearchFilter};
use keygate_audit_model::{AuditEvent, EventType};
use serde_json::json;
use support::{T0, exec, open, open_with, raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_emitters_get_contiguous_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _clock) = open(&dir.path().join("audit.db")).await;
    let mut tasks = Vec::new();
    for t in 0..50u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..10 {
                seqs.push(log.emit(exec(&log, &format!("user{t}"), i)).await.unwrap());
            }
            seqs
        }));
    }
    let mut all = BTreeSet::new();
    for task in tasks {
        for seq in task.await.unwrap() {
            assert!(all.insert(seq), "seq {seq} handed out twice");
        }
    }
    assert_eq!(all.len(), 500);
    assert_eq!(
        all.iter().copied().collect::<Vec<_>>(),
        (1..=500).collect::<Vec<_>>()
    );
    assert_eq!(log.verify().await.unwrap(), 500);
    let stats = log.stats();
    assert_eq!(stats.events, 500);
    assert!(stats.batches <= 500);
    log.close().await.unwrap();
}

#[tokio::test]
async fn queued_events_share_one_commit() {
    // On the current-thread runtime all 50 emitters queue before the writer
    // runs, so group commit must put them in far fewer transactions.
    let dir = tempfile::tempdir().unwrap();
    let (log, _clock) = open(&dir.path().join("audit.db")).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.emit(exec(&log, "alice", i)).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = log.stats();
    assert_eq!(stats.events, 50);
    assert!(stats.batches < 10, "{stats:?}");
    assert_eq!(log.verify().await.unwrap(), 50);
    log.close().await.unwrap();
}

#[tokio::test]
async fn reopen_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let (log, _clock) = open(&path).await;
    for i in 0..5 {
        assert_eq!(log.emit(exec(&log, "alice", i)).await.unwrap(), i + 1);
    }
    log.close().await.unwrap();

    let (log, _clock) = open(&path).await;
    assert_eq!(log.emit(exec(&log, "bob", 5)).await.unwrap(), 6);
    assert_eq!(log.verify().await.unwrap(), 6);
    let newest = log.recent(1).await.unwrap();
    assert_eq!(newest[0].seq, 6);
    assert_eq!(newest[0].event.user.as_deref(), Some("bob"));
    log.close().await.unwrap();
}

#[tokio::test]
async fn recent_and_search_filter_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (log, clock) = open(&dir.path().join("audit.db")).await;
    for i in 0..6u64 {
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        log.emit(exec(&log, user, i)).await.unwrap();
        let login = log.event(EventType::UserLogin).user(user);
        log.emit(login).await.unwrap();
        clock.advance(Duration::from_secs(60));
    }
    // 12 events, two per minute from T0.
    let recent = log.recent(3).await.unwrap();
    assert_eq!(
        recent.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [12, 11, 10]
    );
    assert!(log.recent(0).await.unwrap().is_empty());

    let logins = log
        .search(&SearchFilter {
            event: Some("user.login".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(logins.len(), 6);
    assert!(logins.iter().all(|e| e.event.code == "KG1000I"));
    assert!(logins.windows(2).all(|w| w[0].seq > w[1].seq));

    let bob_execs = log
        .search(&SearchFilter {
            event: Some("exec".into()),
            user: Some("bob".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(bob_execs.len(), 3);
    assert_eq!(bob_execs[0].event.fields["command"], json!("run 5"));

    // since is inclusive, until exclusive: minutes 2 and 3 → 4 events.
    let window = log
        .search(&SearchFilter {
            since: Some(T0 + time::Duration::minutes(2)),
            until: Some(T0 + time::Duration::minutes(4)),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [8, 7, 6, 5]
    );

    let none = log
        .search(&SearchFilter {
            user: Some("carol".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    log.close().await.unwrap();
}

#[tokio::test]
async fn failed_write_fails_every_waiter_and_keeps_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let (log, _clock) = open(&path).await;
    log.emit(exec(&log, "alice", 0)).await.unwrap();

    // Make every insert fail, as a full disk would.
    let mut attacker = raw(&path).await;
    sqlx::query(
        "CREATE TRIGGER fail_inserts BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'injected'); END",
    )
    .execute(&mut attacker)
    .await
    .unwrap();

    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.emit(exec(&log, "bob", i)).await })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert!(matches!(err, AuditError::Write(_)), "{err:?}");
        assert!(err.to_string().contains("NOT recorded"), "{err}");
    }
    assert!(log.stats().failed_batches >= 1);

    sqlx::query("DROP TRIGGER fail_inserts")
        .execute(&mut attacker)
        .await
        .unwrap();
    // The failed events took no sequence numbers.
    assert_eq!(log.emit(exec(&log, "carol", 1)).await.unwrap(), 2);
    assert_eq!(log.verify().await.unwrap(), 2);
    log.close().await.unwrap();
}

#[tokio::test]
async fn bad_events_are_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _clock) = open(&dir.path().join("audit.db")).await;
    let mut bad = exec(&log, "alice", 0);
    bad.fields.insert("seq".into(), json!(1));
    assert!(matches!(log.emit(bad).await, Err(AuditError::Event(_))));
    // Too large for the model: fails at sealing, inside the writer.
    let huge = exec(&log, "alice", 1)
        .with_field("blob", "x".repeat(2 << 20))
        .unwrap();
    assert!(matches!(log.emit(huge).await, Err(AuditError::Event(_))));
    assert_eq!(log.emit(exec(&log, "alice", 2)).await.unwrap(), 1);
    log.close().await.unwrap();
}

#[tokio::test]
async fn close_drains_then_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let (log, _clock) = open(&path).await;
    let pending: Vec<_> = (0..20)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.emit(exec(&log, "alice", i)).await })
        })
        .collect();
    tokio::task::yield_now().await;
    log.close().await.unwrap();
    let mut written = 0;
    for p in pending {
        match p.await.unwrap() {
            Ok(_) => written += 1,
            Err(AuditError::Closed) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(matches!(
        log.emit(exec(&log, "alice", 99)).await,
        Err(AuditError::Closed)
    ));
    assert!(matches!(log.recent(1).await, Err(AuditError::Closed)));
    log.close().await.unwrap(); // idempotent

    let (log, _clock) = open(&path).await;
    assert_eq!(log.verify().await.unwrap(), written);
    log.close().await.unwrap();
}

#[tokio::test]
async fn slow_queries_are_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let opts = AuditOptions {
        query_timeout: Duration::ZERO,
        ..AuditOptions::default()
    };
    let (log, _clock) = open_with(&dir.path().join("audit.db"), opts).await;
    for i in 0..300 {
        log.emit(exec(&log, "alice", i)).await.unwrap();
    }
    let err = log.recent(300).await.unwrap_err();
    assert!(matches!(err, AuditError::QueryTimeout), "{err:?}");
    // Verification has no time limit, and the handler does not linger.
    assert_eq!(log.verify().await.unwrap(), 300);
    log.close().await.unwrap();
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let (log, _clock) = open(&path).await;
    log.close().await.unwrap();
    let mut conn = raw(&path).await;
    sqlx::query("PRAGMA user_version = 99")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let clock = keygate_clock::TestClock::at(T0);
    let err = keygate_audit::AuditLog::open(&path, clock.shared(), AuditOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::UnsupportedSchema {
                found: 99,
                supported: 3
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn unopenable_paths_are_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let clock = keygate_clock::TestClock::at(T0);
    for path in [
        dir.path().to_path_buf(),
        dir.path().join("missing-dir/audit.db"),
    ] {
        let err = keygate_audit::AuditLog::open(&path, clock.shared(), AuditOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AuditError::Open { path: p, .. } if *p == path),
            "{err:?}"
        );
    }
    // A file that is not SQLite at all.
    let junk = dir.path().join("junk.db");
    std::fs::write(
        &junk,
        b"this is not a database, just some text that is long enough",
    )
    .unwrap();
    let err = keygate_audit::AuditLog::open(&junk, clock.shared(), AuditOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, AuditError::Open { .. }), "{err:?}");
}

#[tokio::test]
async fn events_are_stamped_by_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (log, clock) = open(&dir.path().join("audit.db")).await;
    clock.advance(Duration::from_secs(3600));
    let ev: AuditEvent = log.event(EventType::SessionStart);
    assert_eq!(ev.time, T0 + time::Duration::hours(1));
    assert_eq!(uuid::Uuid::parse_str(&ev.id).unwrap().get_version_num(), 7);
    assert_ne!(log.event(EventType::SessionStart).id, ev.id);
    let seq = log.emit(ev.clone()).await.unwrap();
    let back = log.recent(1).await.unwrap().remove(0);
    assert_eq!((back.seq, back.event), (seq, ev));
    log.close().await.unwrap();
}

#[tokio::test]
async fn version_1_logs_gain_the_checkpoint_table_and_keep_their_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let (log, _clock) = open(&path).await;
    let seq = log.emit(log.event(EventType::UserLogin)).await.unwrap();
    log.close().await.unwrap();
    // What a version-1 file looks like: no checkpoint table.
    let mut conn = raw(&path).await;
    sqlx::query("DROP TABLE checkpoints")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("PRAGMA user_version = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let clock = keygate_clock::TestClock::at(T0);
    let log = keygate_audit::AuditLog::open(&path, clock.shared(), AuditOptions::default())
        .await
        .unwrap();
    let (head, hash) = log.head().await.unwrap();
    assert_eq!(head, seq);
    let cp = keygate_audit_model::SignedCheckpoint {
        checkpoint: keygate_audit_model::Checkpoint {
            cluster: "c".into(),
            seq: head,
            hash: keygate_audit_model::hex(&hash),
            time: T0,
        },
        signature: "sig".into(),
    };
    log.store_checkpoint(&cp).await.unwrap();
    assert_eq!(log.checkpoints().await.unwrap(), vec![cp.clone()]);
    let (n, findings) = log.verify_against(&[cp.checkpoint]).await.unwrap();
    assert_eq!((n, findings.matched, findings.unsigned_tail), (1, 1, 0));
    let records = log.records(1, 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].hash, hash);
    log.close().await.unwrap();
}
