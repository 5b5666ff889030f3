//! The crate's one error type.

use std::path::PathBuf;
use std::sync::Arc;

use keygate_audit_model::{AuditModelError, ChainBreak};

/// What went wrong with the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    // --- the caller's event or use of the API ---
    /// The event cannot be stored (reserved field, too large, bad time).
    #[error("audit event rejected: {0}")]
    Event(#[from] AuditModelError),
    /// The log was closed (or its writer stopped); nothing more is accepted.
    #[error("audit log is closed; the event was NOT recorded (is the service shutting down?)")]
    Closed,

    // --- storage ---
    /// The database could not be opened or prepared.
    #[error(
        "cannot open audit database {path}: {source}; check the path, permissions and free space"
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: sqlx::Error,
    },
    /// The database was written by a newer Keygate.
    #[error(
        "audit database schema version {found} is newer than this Keygate supports ({supported}); upgrade Keygate"
    )]
    UnsupportedSchema {
        /// Version found in the file.
        found: i64,
        /// Newest version this build understands.
        supported: i64,
    },
    /// Writing a batch failed; every event in it was refused. Shared by all
    /// waiters of the batch, hence the `Arc`.
    #[error(
        "audit log write failed: {0}; the event was NOT recorded, check free space and permissions of the audit database"
    )]
    Write(#[source] Arc<sqlx::Error>),
    /// A query failed.
    #[error("audit query failed: {0}")]
    Query(#[source] sqlx::Error),
    /// A query ran past the configured time limit and was interrupted.
    #[error(
        "audit query took longer than the time limit and was stopped; narrow the filter (time range, event, user)"
    )]
    QueryTimeout,
    /// SQL from a user was refused by the database (syntax, unknown
    /// column, or an attempt to write: the query connections are read-only).
    #[error(
        "the query was refused: {0}; the views are listed in docs/audit.md (kgctl audit query)"
    )]
    BadQuery(String),
    /// A stored row is not what the writer writes.
    #[error("audit record {seq} is corrupt: {detail}; run `kgctl audit verify`")]
    Corrupt {
        /// The row's sequence number.
        seq: u64,
        /// What is wrong.
        detail: String,
    },

    // --- integrity ---
    /// Verification found the chain broken.
    #[error(transparent)]
    ChainBroken(ChainBreak),
}

impl AuditError {
    /// The chain break, if this error is one.
    pub fn chain_break(&self) -> Option<&ChainBreak> {
        match self {
            Self::ChainBroken(b) => Some(b),
            _ => None,
        }
    }
}
