//! The on-disk layout: connection settings, table, indexes, versioning and
//! reading the chain's tail.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection};

use crate::AuditError;

/// Layout version stored in `PRAGMA user_version`.
pub(crate) const SCHEMA_VERSION: i64 = 3;

/// Statements creating version 1, run in one transaction. `data` holds the
/// exact hashed bytes; the other columns are derived copies for indexing.
const CREATE_V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS events (
        seq       INTEGER PRIMARY KEY,
        id        TEXT    NOT NULL,
        time      TEXT    NOT NULL,
        unix_ms   INTEGER NOT NULL,
        event     TEXT    NOT NULL,
        code      TEXT    NOT NULL,
        user      TEXT,
        data      BLOB    NOT NULL,
        prev_hash BLOB    NOT NULL,
        hash      BLOB    NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS events_time ON events (unix_ms)",
    "CREATE INDEX IF NOT EXISTS events_event ON events (event, seq)",
    "CREATE INDEX IF NOT EXISTS events_user ON events (user, seq)",
    "PRAGMA user_version = 1",
];

/// Version 2 adds signed checkpoints (`data` = the signed checkpoint JSON).
const CREATE_V2: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS checkpoints (
        seq     INTEGER PRIMARY KEY,
        unix_ms INTEGER NOT NULL,
        data    TEXT    NOT NULL
    )",
    "PRAGMA user_version = 2",
];

/// Options for the single writer connection: WAL so readers never block
/// the writer, `synchronous = FULL` so a commit is on disk before we ack.
pub(crate) fn writer_options(path: &Path, busy_timeout: Duration) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(busy_timeout)
}

/// Options for read connections: opened read-only and `query_only`, so no
/// query — a bug, or SQL an auditor typed — can write to the log or
/// create files.
pub(crate) fn reader_options(path: &Path, busy_timeout: Duration) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(busy_timeout)
        .read_only(true)
        .pragma("query_only", "ON")
}

/// Create the schema if the file is new; refuse files from newer versions.
pub(crate) async fn migrate(conn: &mut SqliteConnection, path: &Path) -> Result<(), AuditError> {
    let open_err = |source| AuditError::Open {
        path: path.to_owned(),
        source,
    };
    let found: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await
        .map_err(open_err)?;
    if found > SCHEMA_VERSION {
        return Err(AuditError::UnsupportedSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(open_err)?;
    let mut steps: Vec<String> = Vec::new();
    if found < 1 {
        steps.extend(CREATE_V1.iter().map(|s| (*s).to_owned()));
    }
    if found < 2 {
        steps.extend(CREATE_V2.iter().map(|s| (*s).to_owned()));
    }
    // Version 3: one SQL view per event type (`kgctl audit query`).
    steps.extend(crate::sql::view_statements());
    steps.push("PRAGMA user_version = 3".to_owned());
    for stmt in steps {
        // Our own constant statements (view names come from EventType).
        sqlx::query(sqlx::AssertSqlSafe(stmt))
            .execute(&mut *tx)
            .await
            .map_err(open_err)?;
    }
    tx.commit().await.map_err(open_err)
}

/// The last record's position and hash; `(0, zeros)` for an empty log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Sequence number of the last stored record (0 if none).
    pub(crate) seq: u64,
    /// Its hash (the genesis value if none).
    pub(crate) hash: [u8; 32],
}

impl Tail {
    /// The tail of an empty log.
    pub(crate) const EMPTY: Self = Self {
        seq: 0,
        hash: keygate_audit_model::GENESIS_PREV_HASH,
    };
}

/// Read the tail so a reopened log continues the chain.
pub(crate) async fn read_tail(conn: &mut SqliteConnection) -> Result<Tail, AuditError> {
    let row = sqlx::query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(AuditError::Query)?;
    let Some(row) = row else {
        return Ok(Tail::EMPTY);
    };
    let seq: i64 = row.try_get("seq").map_err(AuditError::Query)?;
    let seq = u64::try_from(seq).map_err(|_| AuditError::Corrupt {
        seq: 0,
        detail: format!("negative seq {seq}"),
    })?;
    let hash: Vec<u8> = row.try_get("hash").map_err(AuditError::Query)?;
    let hash = <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| AuditError::Corrupt {
        seq,
        detail: format!("hash is {} bytes, expected 32", hash.len()),
    })?;
    Ok(Tail { seq, hash })
}
