//! Keygate's state store: an etcd-shaped key-value [`Backend`] with
//! revisions, multi-key compare-and-swap transactions, leases and resumable
//! watches, plus its two implementations.
//!
//! Owns:
//! - the [`Backend`] trait and its data model ([`KeyValue`], [`Compare`],
//!   [`Op`], [`WatchEvent`], [`Watch`]);
//! - [`SqliteBackend`] (the default, embedded, durable store: one writer
//!   connection, WAL, `synchronous=FULL`; a write is acknowledged only after
//!   its SQLite transaction committed) and [`MemoryBackend`] (same semantics,
//!   for unit tests of other crates);
//! - [`DataDirLock`], which keeps two daemons off one data directory;
//! - the conformance suite every backend must pass ([`conformance`]).
//!
//! Does not own: what the keys mean (resource kinds, encodings — that is the
//! services' business), caches built on watches, or the audit log (which has
//! its own store in `keygate-audit`).
//!
//! # Semantics shared by every backend
//! - The revision is cluster-wide and strictly increasing: the first write is
//!   revision 1 and every write that changes something takes exactly one new
//!   revision (a transaction's ops all share it). Writes that change nothing
//!   (deleting an absent key, a failed transaction) take none.
//! - A key attached to a lease whose deadline passed (by the injected clock's
//!   wall time) is absent to every read at once; the next write, or
//!   [`Backend::expire_leases`], deletes it for real and emits the `Delete`
//!   events, each expired lease at its own revision.
//! - [`Backend::watch`] replays history then follows live writes, without
//!   gaps or duplicates; when it cannot (history compacted, or the watcher
//!   fell behind) it says so with [`WatchEvent::Compacted`] and ends, and the
//!   consumer re-lists with [`Backend::range_at`] and watches again from the
//!   revision after the one it read at.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub mod conformance;
mod error;
mod limits;
mod lock;
mod memory;
mod sqlite;
mod watch;

pub use error::StoreError;
pub use limits::{MAX_KEY_BYTES, MAX_REPLAY_EVENTS, MAX_TXN_ITEMS, MAX_VALUE_BYTES, WATCH_BUFFER};
pub use lock::DataDirLock;
pub use memory::MemoryBackend;
pub use sqlite::SqliteBackend;
pub use watch::Watch;

/// A point in the store's history. Cluster-wide and strictly increasing;
/// 0 means "nothing written yet", the first write is 1.
pub type Revision = i64;

/// Identifies a lease granted by [`Backend::grant_lease`].
pub type LeaseId = i64;

/// A shared handle to a backend, as services hold it.
pub type SharedBackend = Arc<dyn Backend>;

/// One stored key with its value and revision metadata.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key (non-empty UTF-8, at most [`MAX_KEY_BYTES`] bytes).
    pub key: String,
    /// The value; opaque to the store (at most [`MAX_VALUE_BYTES`] bytes).
    pub value: Vec<u8>,
    /// Revision at which this key was created (since it was last absent).
    pub create_revision: Revision,
    /// Revision of the last write to this key; the basis of optimistic
    /// concurrency through [`Compare::ModRevision`].
    pub mod_revision: Revision,
    /// Lease that owns the key: when it expires or is revoked the key goes.
    pub lease: Option<LeaseId>,
}

// Values may hold secrets (hashed tokens, encrypted keys), so Debug shows
// only their size.
impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &self.key)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .field("lease", &self.lease)
            .finish()
    }
}

/// A condition a transaction checks before applying its ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's mod revision equals `equals`; `equals: 0` means the key
    /// must be absent.
    ModRevision {
        /// Key to check.
        key: String,
        /// Expected mod revision (0 = absent).
        equals: Revision,
    },
    /// The key is present.
    Exists {
        /// Key to check.
        key: String,
    },
    /// The key is absent.
    Absent {
        /// Key to check.
        key: String,
    },
}

impl Compare {
    /// The key this comparison looks at.
    pub fn key(&self) -> &str {
        match self {
            Self::ModRevision { key, .. } | Self::Exists { key } | Self::Absent { key } => key,
        }
    }

    /// Whether the comparison holds for a key whose current mod revision is
    /// `mod_revision` (`None` = absent).
    pub fn holds(&self, mod_revision: Option<Revision>) -> bool {
        match self {
            Self::ModRevision { equals, .. } => mod_revision.unwrap_or(0) == *equals,
            Self::Exists { .. } => mod_revision.is_some(),
            Self::Absent { .. } => mod_revision.is_none(),
        }
    }
}

/// A write inside a transaction.
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or replace a key. `lease: None` detaches it from any lease.
    Put {
        /// Key to write.
        key: String,
        /// New value.
        value: Vec<u8>,
        /// Lease to attach the key to.
        lease: Option<LeaseId>,
    },
    /// Delete a key (a no-op if it is absent).
    Delete {
        /// Key to delete.
        key: String,
    },
}

impl Op {
    /// The key this op writes.
    pub fn key(&self) -> &str {
        match self {
            Self::Put { key, .. } | Self::Delete { key } => key,
        }
    }
}

// Like KeyValue: never print values.
impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Put { key, value, lease } => f
                .debug_struct("Put")
                .field("key", key)
                .field("value", &format_args!("<{} bytes>", value.len()))
                .field("lease", lease)
                .finish(),
            Self::Delete { key } => f.debug_struct("Delete").field("key", key).finish(),
        }
    }
}

/// Outcome of [`Backend::txn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether every compare held (and so every op was applied).
    pub succeeded: bool,
    /// The revision the ops were applied at, or, when nothing changed
    /// (failed compares, or only deletes of absent keys), the store's
    /// current revision.
    pub revision: Revision,
}

/// One change delivered by a [`Watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A key was created or replaced; `mod_revision` is the write's revision.
    Put(KeyValue),
    /// A key was deleted (explicitly, or because its lease went).
    Delete {
        /// The deleted key.
        key: String,
        /// Revision of the deletion.
        revision: Revision,
    },
    /// History needed to resume is gone (compacted) or the watcher fell too
    /// far behind: the consumer must re-read with [`Backend::range_at`] and
    /// watch again from the revision after the one it read at. Always the
    /// last event of its watch.
    /// Everything at or below `compact_revision` was either delivered by
    /// this watch or can no longer be replayed.
    Compacted {
        /// The revision up to which this watch is complete (or history gone).
        compact_revision: Revision,
    },
}

impl WatchEvent {
    /// The revision this event happened at.
    pub fn revision(&self) -> Revision {
        match self {
            Self::Put(kv) => kv.mod_revision,
            Self::Delete { revision, .. } => *revision,
            Self::Compacted { compact_revision } => *compact_revision,
        }
    }

    /// The key this event is about (`None` for `Compacted`).
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Put(kv) => Some(&kv.key),
            Self::Delete { key, .. } => Some(key),
            Self::Compacted { .. } => None,
        }
    }
}

/// An etcd-shaped key-value store. See the crate docs for the semantics
/// every implementation keeps (and [`conformance`] for the proof).
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The key's current value, or `None` if absent (or its lease expired).
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Every key starting with `prefix` (`""` = all keys), sorted by key.
    async fn range(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError>;

    /// Like [`range`](Self::range), from one consistent snapshot, plus the
    /// revision that snapshot reflects: watch from that revision + 1 to
    /// follow on without missing or repeating a change.
    async fn range_at(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError>;

    /// Create or replace a key; returns the write's revision. A `lease` must
    /// exist and be unexpired ([`StoreError::LeaseNotFound`] otherwise).
    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError>;

    /// Delete a key; returns the deletion's revision, or `None` if it was absent.
    async fn delete(&self, key: &str) -> Result<Option<Revision>, StoreError>;

    /// Delete every key starting with `prefix` at one revision; returns how
    /// many were deleted.
    async fn delete_prefix(&self, prefix: &str) -> Result<usize, StoreError>;

    /// Atomic compare-and-swap: if all `compares` hold, apply all `ops` at
    /// ONE new revision; otherwise change nothing. A key may appear in at
    /// most one op.
    async fn txn(&self, compares: Vec<Compare>, ops: Vec<Op>) -> Result<TxnResult, StoreError>;

    /// Grant a lease that expires `ttl` from now unless kept alive.
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError>;

    /// Push the lease's deadline to now + its TTL.
    /// [`StoreError::LeaseNotFound`] if it expired or was revoked.
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// End a lease now, deleting its keys (with `Delete` events).
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// Delete the keys of every lease whose deadline passed (by the clock's
    /// wall time); returns how many leases expired. Run it periodically;
    /// reads already hide such keys.
    async fn expire_leases(&self) -> Result<usize, StoreError>;

    /// The revision of the latest write (0 before the first).
    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// Drop history at or below `revision` (current data is untouched);
    /// watches from those revisions then get [`WatchEvent::Compacted`].
    /// Compacting at or below an earlier compaction is a no-op; beyond the
    /// current revision is an error.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;

    /// Follow changes to keys starting with `prefix`: first the history
    /// events with revision >= `from_revision`, then live ones.
    /// `from_revision` 0 = live only. If `from_revision` is at or below the
    /// compacted revision the first (and only) event is
    /// [`WatchEvent::Compacted`].
    async fn watch(&self, prefix: &str, from_revision: Revision) -> Result<Watch, StoreError>;
}
