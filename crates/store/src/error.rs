//! The one error type of this crate.

use std::path::PathBuf;
use std::time::Duration;

use crate::{LeaseId, Revision};

/// Why a store operation failed. Variants are grouped by who has to act:
/// the caller (bad input), the state of the store (a lease is gone), or the
/// machine (storage, data directory).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    // === the caller passed something invalid: fix the call ===
    /// The key is empty or too long.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key (cut to 64 characters).
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The value is over [`crate::MAX_VALUE_BYTES`].
    #[error(
        "value for key {key:?} is {len} bytes, over the {max}-byte limit; keep large data elsewhere and store a reference"
    )]
    ValueTooLarge {
        /// The key being written (cut to 64 characters).
        key: String,
        /// Size of the rejected value.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// A transaction has too many compares or ops.
    #[error(
        "transaction has {count} {what}, over the limit of {max}; split it into smaller transactions"
    )]
    TxnTooLarge {
        /// "compares" or "ops".
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// Two ops of one transaction write the same key.
    #[error("transaction writes key {key:?} more than once; give each key at most one op")]
    DuplicateKeyInTxn {
        /// The repeated key (cut to 64 characters).
        key: String,
    },

    /// A lease TTL out of range.
    #[error("invalid lease TTL {ttl:?}: {reason}")]
    InvalidTtl {
        /// The rejected TTL.
        ttl: Duration,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A revision argument that makes no sense (negative, or in the future).
    #[error("invalid revision {revision}: {reason}")]
    InvalidRevision {
        /// The rejected revision.
        revision: Revision,
        /// What is wrong with it.
        reason: String,
    },

    // === the store's state ===
    /// The lease does not exist: it expired, was revoked, or never was.
    #[error(
        "lease {0} not found: it expired or was revoked; grant a new lease and write its keys again"
    )]
    LeaseNotFound(LeaseId),

    // === the machine: data directory and storage ===
    /// Another process holds the data directory's lock file.
    #[error(
        "data dir {} is in use by another keygate process (pid {pid}); stop it or use --data-dir",
        .dir.display()
    )]
    DataDirInUse {
        /// The contested data directory.
        dir: PathBuf,
        /// PID written in the lock file by its holder ("unknown" if unreadable).
        pid: String,
    },

    /// A file-system operation failed.
    #[error("cannot {action} {}: {source}; check the path and its permissions", .path.display())]
    Io {
        /// What we were doing ("create", "open", "lock", ...).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// The database file could not be opened or set up.
    #[error("cannot open database {}: {source}; check that the data dir exists and is writable", .path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// The engine's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The database engine failed (disk full, I/O error, locked file...).
    #[error(
        "storage failed: {source}; check that the data dir is writable and the disk is not full"
    )]
    Storage {
        /// The engine's error, boxed so the engine stays out of our API.
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The database was written by a newer Keygate.
    #[error(
        "database {} has schema version {found}, newer than the {supported} this keygate understands; upgrade keygate",
        .path.display()
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Schema version found in the file.
        found: i64,
        /// Newest schema version this build knows.
        supported: i64,
    },

    /// A stored record cannot be decoded.
    #[error("corrupt record in the store: {0}; restore the data dir from a backup")]
    Corrupt(String),

    /// A background write task died (a bug, or the runtime shutting down).
    #[error("store write task failed: {0}; retry, and report a bug if it persists")]
    TaskFailed(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage {
            source: Box::new(e),
        }
    }
}

/// Cut a user-supplied key for error messages, so a 4 MiB key cannot make a
/// 4 MiB log line.
pub(crate) fn shorten(key: &str) -> String {
    key.chars().take(64).collect()
}
