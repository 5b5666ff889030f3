//! Crash test: a child process emits events and prints each acknowledged
//! seq; the parent kills it with SIGKILL mid-stream. Every acknowledged
//! event must survive and the chain must still verify.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use keygate_audit::AuditOptions;
use support::{exec, open, open_with};

/// Set (to the database path) only in the child process.
const CHILD_ENV: &str = "KEYGATE_AUDIT_CRASH_CHILD_DB";
/// Acks the parent waits for before killing the child.
const KILL_AFTER: usize = 300;
/// Upper bound on what the child writes if nobody kills it.
const CHILD_MAX_EVENTS: u64 = 200_000;

/// The child's body. When run normally (no env var) it is the entry point
/// the parent re-invokes, and has nothing to do.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let opts = AuditOptions {
            max_batch: 16,
            ..AuditOptions::default()
        };
        let (log, _clock) = open_with(&PathBuf::from(path), opts).await;
        let workers: Vec<_> = (0..4u64)
            .map(|w| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut i = w;
                    while i < CHILD_MAX_EVENTS {
                        let seq = log.emit(exec(&log, "crash", i)).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        // A closed pipe means the parent is gone: stop.
                        if writeln!(out, "ACK {seq}")
                            .and_then(|()| out.flush())
                            .is_err()
                        {
                            return;
                        }
                        i += 4;
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
    });
}

#[tokio::test]
async fn sigkill_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = BTreeSet::new();
    while acked.len() < KILL_AFTER {
        let line = lines
            .next()
            .expect("child stopped before enough acks")
            .unwrap();
        if let Some(seq) = line.strip_prefix("ACK ") {
            acked.insert(seq.parse::<u64>().unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructors, no flush.
    // Acks printed before the kill landed count too.
    for line in lines {
        if let Some(seq) = line.unwrap().strip_prefix("ACK ") {
            acked.insert(seq.parse::<u64>().unwrap());
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "child was supposed to be killed");

    let (log, _clock) = open(&path).await;
    let count = log.verify().await.unwrap();
    let max_acked = *acked.last().unwrap();
    assert!(
        count >= max_acked,
        "verified {count} records but seq {max_acked} was acked"
    );
    let stored: BTreeSet<u64> = log
        .recent(keygate_audit::MAX_QUERY_LIMIT)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.seq)
        .collect();
    let missing: Vec<_> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // The reopened log continues the chain.
    assert_eq!(log.emit(exec(&log, "after", 0)).await.unwrap(), count + 1);
    assert_eq!(log.verify().await.unwrap(), count + 1);
    log.close().await.unwrap();
}
