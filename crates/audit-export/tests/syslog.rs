//! The syslog exporter against a real rsyslogd: structured data survives
//! rsyslog's RFC 5424 parser, every event arrives exactly once, across a
//! restart of the exporter, and without loss across an outage of the
//! receiver; checkpoints follow the events they cover.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use keygate_audit_export::{ExporterConfig, ExporterKind, SyslogConfig};
use keygate_testkit::rsyslog::{Rsyslog, RsyslogConfig, read_lines};
use support::*;

fn syslog(addr: String) -> ExporterConfig {
    ExporterConfig::Syslog(SyslogConfig {
        name: "siem".into(),
        addr,
        app_name: "keygate".into(),
        hostname: Some("auth-1".into()),
        tls: None,
    })
}

#[tokio::test]
async fn events_arrive_once_with_structured_data_intact() {
    let dir = tempfile::tempdir().unwrap();
    let rs = Rsyslog::start().unwrap();
    let (log, clock) = open_log(dir.path()).await;
    emit(&log, 1, 40).await;
    let run = start(
        &log,
        &clock,
        &dir.path().join("state"),
        vec![syslog(rs.addr())],
    );
    let got = received(rs.output(), 40).await;
    assert_exactly_once(&log, &got, 40).await;

    // New events are picked up (the owner's notification wakes the idle
    // exporter; polling would find them too).
    emit(&log, 41, 5).await;
    run.notify.notify_waiters();
    let got = received(rs.output(), 45).await;
    assert_exactly_once(&log, &got, 45).await;

    let s = run
        .wait_status("siem", "cursor 45", |s| s.cursor == 45)
        .await;
    assert_eq!(
        (s.kind, s.head, s.lag_events),
        (ExporterKind::Syslog, 45, 0)
    );
    assert_eq!((s.last_error, s.last_success), (None, Some(T0)));
    run.stop().await;
    // A clean shutdown closed the connection and sent nothing more.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rs.lines().len(), 45, "{}", rs.log());
}

#[tokio::test]
async fn a_restarted_exporter_resumes_at_its_cursor_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let rs = Rsyslog::start().unwrap();
    let (log, clock) = open_log(dir.path()).await;
    emit(&log, 1, 12).await;
    let run = start(&log, &clock, &state, vec![syslog(rs.addr())]);
    received(rs.output(), 12).await;
    run.wait_status("siem", "cursor 12", |s| s.cursor == 12)
        .await;
    run.stop().await;
    let cursor: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("siem.cursor")).unwrap()).unwrap();
    assert_eq!(cursor["seq"], 12);

    // Written while no exporter runs.
    emit(&log, 13, 9).await;
    let run = start(&log, &clock, &state, vec![syslog(rs.addr())]);
    assert_eq!(
        run.get("siem").cursor,
        12,
        "the new runner starts at the cursor"
    );
    let got = received(rs.output(), 21).await;
    run.wait_status("siem", "cursor 21", |s| s.cursor == 21)
        .await;
    run.stop().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got_after = read_lines(rs.output());
    assert_eq!(got_after.len(), 21, "nothing arrived twice");
    assert_exactly_once(&log, &got, 21).await;
}

#[tokio::test]
async fn a_receiver_outage_is_retried_with_backoff_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // The output file outlives the first rsyslogd.
    let output = dir.path().join("received.log");
    let rs = Rsyslog::start_with(RsyslogConfig {
        output: Some(output.clone()),
        ..RsyslogConfig::default()
    })
    .unwrap();
    let port = rs.port();
    let (log, clock) = open_log(dir.path()).await;
    emit(&log, 1, 5).await;
    let run = start(
        &log,
        &clock,
        &dir.path().join("state"),
        vec![syslog(rs.addr())],
    );
    received(&output, 5).await;
    run.wait_status("siem", "cursor 5", |s| s.cursor == 5).await;

    rs.stop().unwrap();
    emit(&log, 6, 7).await;
    run.notify.notify_waiters();
    let s = run
        .wait_status("siem", "repeated failures", |s| {
            s.consecutive_failures >= 3 && s.lag_events == 7
        })
        .await;
    let err = s.last_error.unwrap();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_eq!(s.cursor, 5);

    let _rs = Rsyslog::start_with(RsyslogConfig {
        port: Some(port),
        output: Some(output.clone()),
        ..RsyslogConfig::default()
    })
    .unwrap();
    let s = run
        .wait_status("siem", "cursor 12", |s| s.cursor == 12)
        .await;
    assert_eq!(
        (s.lag_events, s.last_error, s.consecutive_failures),
        (0, None, 0)
    );
    let got = received(&output, 12).await;
    run.stop().await;
    // At-least-once: every event arrived; a duplicate could only be the
    // batch in flight when the receiver went away.
    let counts = seq_counts(&got);
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    let dups: BTreeSet<u64> = counts.iter().filter(|c| *c.1 > 1).map(|c| *c.0).collect();
    assert!(dups.iter().all(|s| (6..=12).contains(s)), "{dups:?}");
}

#[tokio::test]
async fn checkpoints_follow_the_events_they_cover() {
    let dir = tempfile::tempdir().unwrap();
    let rs = Rsyslog::start().unwrap();
    let (log, clock) = open_log(dir.path()).await;
    emit(&log, 1, 10).await;
    let cp4 = checkpoint(&log, 4).await;
    let cp9 = checkpoint(&log, 9).await;
    let run = start(
        &log,
        &clock,
        &dir.path().join("state"),
        vec![syslog(rs.addr())],
    );
    let got = received(rs.output(), 12).await;
    let order: Vec<String> = got
        .iter()
        .map(|r| {
            format!(
                "{}{}",
                if r.msgid == "checkpoint" { "c" } else { "e" },
                r.params["seq"]
            )
        })
        .collect();
    let want = [
        "e1", "e2", "e3", "e4", "c4", "e5", "e6", "e7", "e8", "e9", "c9", "e10",
    ];
    assert_eq!(order, want);
    for (r, cp) in [(&got[4], &cp4), (&got[10], &cp9)] {
        assert_eq!(r.params["kind"], "checkpoint");
        assert_eq!(r.params["hash"], cp.checkpoint.hash);
        assert_eq!(r.params["cluster"], "test");
        let json: serde_json::Value = serde_json::from_str(&r.msg).unwrap();
        assert_eq!(json["signature"], cp.signature);
        assert_eq!(json["seq"], cp.checkpoint.seq);
    }

    // A checkpoint made after its events went out is sent on its own.
    run.wait_status("siem", "cursor 10", |s| {
        s.cursor == 10 && s.checkpoint_cursor == 9
    })
    .await;
    let cp10 = checkpoint(&log, 10).await;
    run.notify.notify_waiters();
    let got = received(rs.output(), 13).await;
    assert_eq!(got[12].msgid, "checkpoint");
    assert_eq!(got[12].params["seq"], "10");
    assert_eq!(got[12].params["hash"], cp10.checkpoint.hash);
    run.wait_status("siem", "checkpoint 10", |s| s.checkpoint_cursor == 10)
        .await;
    run.stop().await;
}
