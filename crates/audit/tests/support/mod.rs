//! Shared helpers for the integration tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::path::Path;

use keygate_audit::{AuditLog, AuditOptions};
use keygate_audit_model::{AuditEvent, EventType};
use keygate_clock::{OffsetDateTime, TestClock};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use time::macros::datetime;

/// Where test clocks start.
pub const T0: OffsetDateTime = datetime!(2025-05-01 09:00 UTC);

/// Open a log at `path` on a test clock.
pub async fn open(path: &Path) -> (AuditLog, TestClock) {
    open_with(path, AuditOptions::default()).await
}

/// Open with explicit options.
pub async fn open_with(path: &Path, opts: AuditOptions) -> (AuditLog, TestClock) {
    let clock = TestClock::at(T0);
    let log = AuditLog::open(path, clock.shared(), opts).await.unwrap();
    (log, clock)
}

/// An exec event numbered `n` for user `user`.
pub fn exec(log: &AuditLog, user: &str, n: u64) -> AuditEvent {
    log.event(EventType::Exec)
        .user(user)
        .with_field("command", format!("run {n}"))
        .unwrap()
}

/// A raw connection to the file, as an attacker with file access has.
pub async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap()
}
