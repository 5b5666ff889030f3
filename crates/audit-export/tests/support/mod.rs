//! Shared helpers: audit logs on a test clock, events with characters that
//! need escaping, a running exporter, and a parser for what rsyslog wrote.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use keygate_audit::{AuditLog, AuditOptions};
use keygate_audit_export::{ExportRunner, ExporterConfig, ExporterStatus, SD_ID, StatusHandle};
use keygate_audit_model::{Actor, ActorKind, Checkpoint, EventType, SignedCheckpoint, Via, hex};
use keygate_clock::{OffsetDateTime, TestClock};
use keygate_testkit::rsyslog::read_lines;
use serde_json::{Map, Value};
use time::macros::datetime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Where test clocks start.
pub const T0: OffsetDateTime = datetime!(2025-05-01 09:00 UTC);
/// How long to wait for something that should happen well within it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A log in `dir` on a test clock.
pub async fn open_log(dir: &Path) -> (AuditLog, TestClock) {
    let clock = TestClock::at(T0);
    let log = AuditLog::open(
        &dir.join("audit.db"),
        clock.shared(),
        AuditOptions::default(),
    )
    .await
    .unwrap();
    (log, clock)
}

/// Writes events numbered `from..from+n`; their fields hold `"`, `\`, `]`
/// and `|` (everything RFC 5424 escaping and our line format care about).
pub async fn emit(log: &AuditLog, from: u64, n: u64) {
    for i in from..from + n {
        let mut ev = log
            .event(if i % 4 == 0 {
                EventType::UserLoginFailed
            } else {
                EventType::Exec
            })
            .user(format!("user\"{i}]"))
            .login("root")
            .node("node-1")
            .session_id(format!("sess-{i}"))
            .remote_addr("10.0.0.1:5022")
            .actor(Actor {
                name: format!("ci\\bot-{i}"),
                kind: ActorKind::Bot,
                via: Some(Via::Api),
            })
            .with_field("command", format!("echo \"[{i}]\" | tee /tmp/x"))
            .unwrap();
        if i % 3 == 0 {
            ev = ev.error("denied: \"x\" ] \\ y | z");
        }
        log.emit(ev).await.unwrap();
    }
}

/// Stores a checkpoint for the record at `seq` (dummy signature).
pub async fn checkpoint(log: &AuditLog, seq: u64) -> SignedCheckpoint {
    let rec = log.records(seq, 1).await.unwrap().remove(0);
    let cp = SignedCheckpoint {
        checkpoint: Checkpoint {
            cluster: "test".into(),
            seq,
            hash: hex(&rec.hash),
            time: T0,
        },
        signature: format!("dummy-signature-{seq}"),
    };
    log.store_checkpoint(&cp).await.unwrap();
    cp
}

/// A running runner.
pub struct Running {
    /// Stops it.
    pub token: CancellationToken,
    /// Its task.
    pub task: JoinHandle<()>,
    /// Its status.
    pub status: StatusHandle,
    /// Wakes it.
    pub notify: std::sync::Arc<tokio::sync::Notify>,
}

impl Running {
    /// Clean shutdown: cancel and wait.
    pub async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the runner stops within the patience")
            .unwrap();
    }

    /// The status of exporter `name`.
    pub fn get(&self, name: &str) -> ExporterStatus {
        self.status.get(name).unwrap()
    }

    /// Waits until exporter `name`'s status satisfies `f`.
    pub async fn wait_status(
        &self,
        name: &str,
        what: &str,
        f: impl Fn(&ExporterStatus) -> bool,
    ) -> ExporterStatus {
        let ok = wait_until(|| f(&self.get(name))).await;
        let s = self.get(name);
        assert!(ok, "exporter status never showed {what}: {s:?}");
        s
    }
}

/// A runner with short backoff and polling, started.
pub fn start(
    log: &AuditLog,
    clock: &TestClock,
    state: &Path,
    configs: Vec<ExporterConfig>,
) -> Running {
    let runner = ExportRunner::new(log.clone(), state.to_owned(), configs, clock.shared())
        .unwrap()
        .with_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .with_poll_interval(Duration::from_millis(50));
    run(runner)
}

/// Starts a prepared runner.
pub fn run(runner: ExportRunner) -> Running {
    let token = CancellationToken::new();
    let status = runner.status_handle();
    let notify = runner.notifier();
    let task = tokio::spawn(runner.run(token.clone()));
    Running {
        token,
        task,
        status,
        notify,
    }
}

/// Polls `f` (every 20 ms) until it holds or [`PATIENCE`] runs out.
pub async fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..PATIENCE.as_millis() / 20 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// One message as rsyslog wrote it: `MSGID|STRUCTURED-DATA|MSG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// RFC 5424 MSGID.
    pub msgid: String,
    /// The SD-ID of the one element.
    pub sd_id: String,
    /// Its params, unescaped.
    pub params: BTreeMap<String, String>,
    /// MSG.
    pub msg: String,
}

/// Parses one rsyslog output line, unescaping the SD params.
pub fn parse_line(line: &str) -> Received {
    let (msgid, rest) = line.split_once('|').unwrap();
    let mut chars = rest.char_indices().peekable();
    assert_eq!(chars.next().map(|c| c.1), Some('['), "{line}");
    let mut sd_id = String::new();
    while let Some((_, c)) = chars.next_if(|(_, c)| *c != ' ' && *c != ']') {
        sd_id.push(c);
    }
    let mut params = BTreeMap::new();
    loop {
        match chars.next() {
            Some((_, ']')) => break,
            Some((_, ' ')) => {}
            other => panic!("unexpected {other:?} in {line}"),
        }
        let mut name = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=') {
            name.push(c);
        }
        assert_eq!(chars.next().map(|c| c.1), Some('='), "{line}");
        assert_eq!(chars.next().map(|c| c.1), Some('"'), "{line}");
        let mut value = String::new();
        loop {
            match chars.next().map(|c| c.1) {
                Some('\\') => value.push(chars.next().unwrap().1),
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("unterminated value in {line}"),
            }
        }
        assert!(
            params.insert(name, value).is_none(),
            "duplicate param: {line}"
        );
    }
    let (at, sep) = chars.next().unwrap();
    assert_eq!(sep, '|', "{line}");
    Received {
        msgid: msgid.to_owned(),
        sd_id,
        params,
        msg: rest[at + 1..].to_owned(),
    }
}

/// The SD params an event's JSON should produce, worked out from the JSON
/// independently of the exporter.
pub fn expected_params(event_json: &str) -> BTreeMap<String, String> {
    let obj: Map<String, Value> = serde_json::from_str(event_json).unwrap();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut want = BTreeMap::new();
    for key in [
        "seq",
        "id",
        "event",
        "code",
        "user",
        "login",
        "node",
        "session_id",
        "remote_addr",
        "cluster",
        "success",
        "error",
    ] {
        if let Some(v) = obj.get(key) {
            want.insert(key.to_owned(), text(v));
        }
    }
    let actor = obj["actor"].as_object().unwrap();
    want.insert("actor".into(), text(&actor["name"]));
    want.insert("actor_kind".into(), text(&actor["kind"]));
    want.insert("actor_via".into(), text(&actor["via"]));
    want
}

/// How often each event seq occurs among received messages.
pub fn seq_counts(received: &[Received]) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for r in received.iter().filter(|r| r.msgid != "checkpoint") {
        *counts.entry(r.params["seq"].parse().unwrap()).or_insert(0) += 1;
    }
    counts
}

/// Waits until `path` holds `n` messages and parses them all.
pub async fn received(path: &Path, n: usize) -> Vec<Received> {
    let ok = wait_until(|| read_lines(path).len() >= n).await;
    let lines = read_lines(path);
    assert!(
        ok,
        "{} of {n} messages arrived:\n{}",
        lines.len(),
        lines.join("\n")
    );
    lines.iter().map(|l| parse_line(l)).collect()
}

/// Every message is one event of `log`, intact, and each seq in
/// `1..=n` arrived exactly once.
pub async fn assert_exactly_once(log: &AuditLog, got: &[Received], n: u64) {
    let records = log.records(1, 10_000).await.unwrap();
    assert_eq!(records.len() as u64, n);
    for r in got {
        assert_eq!(r.sd_id, SD_ID);
        let seq: u64 = r.params["seq"].parse().unwrap();
        let stored = String::from_utf8(records[(seq - 1) as usize].bytes.clone()).unwrap();
        assert_eq!(r.msg, stored, "MSG is the exact stored JSON");
        assert_eq!(r.params, expected_params(&stored), "SD of seq {seq}");
        let event: serde_json::Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(r.msgid, event["event"].as_str().unwrap());
    }
    let counts = seq_counts(got);
    let want: Vec<(u64, usize)> = (1..=n).map(|s| (s, 1)).collect();
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), want);
}
