//! The stdout exporter (into a captured writer), and the runner's cursor
//! handling that does not depend on a network peer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use keygate_audit_export::{ExportError, ExportRunner, ExporterConfig, StdoutConfig};
use support::*;
use tokio::io::AsyncWrite;

/// A writer the test can read, which fails its first `fail` writes.
#[derive(Clone, Default)]
struct Capture {
    /// Everything written.
    buf: Arc<Mutex<Vec<u8>>>,
    /// Writes still to fail.
    fail: Arc<AtomicUsize>,
}

impl Capture {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.buf.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "pipe closed",
            )));
        }
        self.buf.lock().unwrap().extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn stdout() -> Vec<ExporterConfig> {
    vec![ExporterConfig::Stdout(StdoutConfig { name: "out".into() })]
}

fn runner(
    log: &keygate_audit::AuditLog,
    clock: &keygate_clock::TestClock,
    state: &std::path::Path,
    out: Capture,
) -> ExportRunner {
    ExportRunner::new(log.clone(), state.to_owned(), stdout(), clock.shared())
        .unwrap()
        .with_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .with_poll_interval(Duration::from_millis(20))
        .with_stdout(out)
}

#[tokio::test]
async fn lines_are_the_exact_bytes_and_a_failed_write_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (log, clock) = open_log(dir.path()).await;
    emit(&log, 1, 6).await;
    let cp = checkpoint(&log, 6).await;
    // A checkpoint past the head waits for its events.
    let ahead = {
        let mut c = cp.clone();
        c.checkpoint.seq = 8;
        log.store_checkpoint(&c).await.unwrap();
        c
    };
    let out = Capture::default();
    out.fail.store(2, Ordering::SeqCst);
    let run = run(runner(&log, &clock, &dir.path().join("state"), out.clone()));
    let s = run.wait_status("out", "cursor 6", |s| s.cursor == 6).await;
    assert_eq!(
        out.fail.load(Ordering::SeqCst),
        0,
        "both failing writes were tried"
    );
    assert_eq!(s.checkpoint_cursor, 6);

    let records = log.records(1, 100).await.unwrap();
    let mut want: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.bytes.clone()).unwrap())
        .collect();
    let lines = out.lines();
    assert_eq!(lines[..6], want[..]);
    let cp_line: serde_json::Value = serde_json::from_str(&lines[6]).unwrap();
    assert_eq!(cp_line["kind"], "checkpoint");
    assert_eq!(cp_line["seq"], 6);
    assert_eq!(cp_line["signature"], cp.signature);
    assert_eq!(lines.len(), 7, "the checkpoint at 8 is not due yet");

    emit(&log, 7, 2).await;
    run.notify.notify_waiters();
    run.wait_status("out", "checkpoint 8", |s| s.checkpoint_cursor == 8)
        .await;
    run.stop().await;
    let records = log.records(1, 100).await.unwrap();
    want.extend(
        records[6..]
            .iter()
            .map(|r| String::from_utf8(r.bytes.clone()).unwrap()),
    );
    let lines = out.lines();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[7..9], want[6..8]);
    let cp_line: serde_json::Value = serde_json::from_str(&lines[9]).unwrap();
    assert_eq!(cp_line["seq"], ahead.checkpoint.seq);
}

#[tokio::test]
async fn a_cursor_past_the_head_is_reported_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("out.cursor"),
        r#"{"version":1,"seq":100,"checkpoint_seq":0}"#,
    )
    .unwrap();
    let (log, clock) = open_log(dir.path()).await;
    emit(&log, 1, 3).await;
    let out = Capture::default();
    let run = run(runner(&log, &clock, &state, out.clone()));
    let s = run
        .wait_status("out", "an error", |s| s.last_error.is_some())
        .await;
    let err = s.last_error.unwrap();
    assert!(
        err.contains("replaced") && err.contains("out.cursor"),
        "{err}"
    );
    assert_eq!((s.cursor, s.head), (100, 3));
    run.stop().await;
    assert!(out.lines().is_empty());
}

#[tokio::test]
async fn a_corrupt_cursor_fails_setup() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("out.cursor"), "seq=3").unwrap();
    let (log, clock) = open_log(dir.path()).await;
    let err = ExportRunner::new(log, state, stdout(), clock.shared()).unwrap_err();
    assert!(matches!(err, ExportError::Cursor { .. }), "{err}");
    assert!(err.to_string().contains("remove it"), "{err}");
}

#[tokio::test]
async fn duplicate_names_fail_setup() {
    let dir = tempfile::tempdir().unwrap();
    let (log, clock) = open_log(dir.path()).await;
    let mut cfgs = stdout();
    cfgs.extend(stdout());
    let err = ExportRunner::new(log, dir.path().join("s"), cfgs, clock.shared()).unwrap_err();
    assert!(err.to_string().contains("unique"), "{err}");
}
