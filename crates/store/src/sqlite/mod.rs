//! Embedded SQLite [`Backend`], the default store.
//!
//! - **One writer**: a single connection behind an async mutex serializes
//!   every write; each write is one `BEGIN IMMEDIATE` transaction committed
//!   (`journal_mode=WAL`, `synchronous=FULL`) before the call returns, so an
//!   acknowledged write survives a crash. Writes run in a spawned task, so a
//!   caller that gives up half-way can't leave a commit unpublished.
//! - **Readers**: a small pool of `query_only` connections; WAL lets them
//!   read a consistent snapshot while the writer works.
//! - **Watch**: `history` keeps every event until compaction for replay;
//!   live events go through the in-process [`Hub`] after commit, published
//!   under the writer lock so they arrive in revision order. A watch
//!   subscribes *before* reading history and skips live events the replay
//!   already covered, so the hand-over has neither gap nor duplicate.

mod schema;
mod write;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use keygate_clock::SharedClock;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection, SqlitePool};
use tokio::sync::{Mutex, MutexGuard};

use self::schema::{COMPACTED, REVISION, event_from_row, kv_from_row, meta_get, meta_set};
use self::write::Batch;
use crate::limits::{
    MAX_REPLAY_EVENTS, now_ms, prefix_end, ttl_ms, validate_key, validate_prefix, validate_txn,
    validate_value, validate_watch_revision,
};
use crate::watch::Hub;
use crate::{
    Backend, Compare, KeyValue, LeaseId, Op, Revision, StoreError, TxnResult, Watch, WatchEvent,
};

/// Read connections; reads are short, and the machine may have 2 cores.
const READERS: u32 = 4;
/// Wait this long for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Take the write lock at the start, so a conflict fails before any work.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// The store in one SQLite file; see the module docs.
pub struct SqliteBackend {
    /// Shared with spawned write tasks.
    inner: Arc<Inner>,
}

struct Inner {
    /// The single writer connection; holding the lock = owning the revision counter.
    writer: Mutex<SqliteConnection>,
    /// `query_only` connections for reads and watch replay.
    readers: SqlitePool,
    /// Live watchers.
    hub: Hub,
    /// Source of wall time for lease deadlines.
    clock: SharedClock,
}

impl SqliteBackend {
    /// Open (creating if missing) the database file at `path`. The caller
    /// should hold the data dir's [`crate::DataDirLock`]: two processes
    /// writing one file would each think they own the revision counter.
    pub async fn open(path: &Path, clock: SharedClock) -> Result<Self, StoreError> {
        let open_err = |e: sqlx::Error| StoreError::Open {
            path: path.to_owned(),
            source: Box::new(e),
        };
        let base = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Full);
        let mut writer = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await
            .map_err(open_err)?;
        schema::migrate(&mut writer, path).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(base.pragma("query_only", "ON"))
            .await
            .map_err(open_err)?;
        tracing::debug!(path = %path.display(), "opened SQLite store");
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers,
                hub: Hub::default(),
                clock,
            }),
        })
    }

    /// Run a write on its own task: once started it runs to commit and
    /// publication even if the caller's future is dropped.
    async fn write<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        tokio::spawn(f(Arc::clone(&self.inner)))
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?
    }
}

// === impl Inner: writes (each holds the writer lock throughout) ===

impl Inner {
    /// Lock the writer and expire due leases first (in their own committed
    /// transaction), so every write sees what reads see. Returns the guard,
    /// the time used, and how many leases expired.
    async fn lock_writer(
        &self,
    ) -> Result<(MutexGuard<'_, SqliteConnection>, i64, usize), StoreError> {
        let mut conn = self.writer.lock().await;
        let now = now_ms(&self.clock);
        let due = sqlx::query("SELECT id FROM leases WHERE deadline_ms <= ?1 ORDER BY id")
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
        if !due.is_empty() {
            let mut tx = conn.begin_with(BEGIN_WRITE).await?;
            let mut batch = Batch::start(&mut tx).await?;
            for row in &due {
                write::revoke(&mut tx, &mut batch, row.try_get("id")?).await?;
            }
            batch.commit(tx, &self.hub).await?;
            tracing::debug!(count = due.len(), "expired leases");
        }
        Ok((conn, now, due.len()))
    }

    /// Returns the result and how many ops changed something.
    async fn txn(
        &self,
        compares: Vec<Compare>,
        ops: Vec<Op>,
    ) -> Result<(TxnResult, usize), StoreError> {
        let (mut conn, now, _) = self.lock_writer().await?;
        let mut tx = conn.begin_with(BEGIN_WRITE).await?;
        let mut batch = Batch::start(&mut tx).await?;
        for compare in &compares {
            if !compare.holds(write::mod_revision(&mut tx, compare.key()).await?) {
                let revision = batch.revision();
                tx.rollback().await?;
                return Ok((
                    TxnResult {
                        succeeded: false,
                        revision,
                    },
                    0,
                ));
            }
        }
        for op in &ops {
            if let Op::Put { lease, .. } = op {
                write::require_lease(&mut tx, *lease, now).await?;
            }
        }
        let changed = write::apply(&mut tx, &mut batch, ops).await?;
        let revision = batch.commit(tx, &self.hub).await?;
        Ok((
            TxnResult {
                succeeded: true,
                revision,
            },
            changed,
        ))
    }

    async fn delete_prefix(&self, prefix: String) -> Result<usize, StoreError> {
        let (mut conn, _, _) = self.lock_writer().await?;
        let mut tx = conn.begin_with(BEGIN_WRITE).await?;
        let mut batch = Batch::start(&mut tx).await?;
        let keys = write::keys_in_prefix(&mut tx, &prefix).await?;
        let changed = write::apply(
            &mut tx,
            &mut batch,
            keys.into_iter().map(|key| Op::Delete { key }).collect(),
        )
        .await?;
        batch.commit(tx, &self.hub).await?;
        Ok(changed)
    }

    async fn grant_lease(&self, ttl_ms: i64) -> Result<LeaseId, StoreError> {
        let (mut conn, now, _) = self.lock_writer().await?;
        let row =
            sqlx::query("INSERT INTO leases (deadline_ms, ttl_ms) VALUES (?1, ?2) RETURNING id")
                .bind(now.saturating_add(ttl_ms))
                .bind(ttl_ms)
                .fetch_one(&mut *conn)
                .await?;
        Ok(row.try_get("id")?)
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        let (mut conn, now, _) = self.lock_writer().await?;
        let updated = sqlx::query(
            "UPDATE leases SET deadline_ms = ?1 + ttl_ms WHERE id = ?2 AND deadline_ms > ?1",
        )
        .bind(now)
        .bind(lease)
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::LeaseNotFound(lease));
        }
        Ok(())
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        let (mut conn, _, _) = self.lock_writer().await?;
        let mut tx = conn.begin_with(BEGIN_WRITE).await?;
        let exists = sqlx::query("SELECT 1 FROM leases WHERE id = ?1")
            .bind(lease)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::LeaseNotFound(lease));
        }
        let mut batch = Batch::start(&mut tx).await?;
        write::revoke(&mut tx, &mut batch, lease).await?;
        batch.commit(tx, &self.hub).await?;
        Ok(())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let mut conn = self.writer.lock().await;
        let mut tx = conn.begin_with(BEGIN_WRITE).await?;
        let current = meta_get(&mut tx, REVISION).await?;
        if revision > current {
            return Err(StoreError::InvalidRevision {
                revision,
                reason: format!("cannot compact beyond the current revision {current}"),
            });
        }
        if revision > meta_get(&mut tx, COMPACTED).await? {
            sqlx::query("DELETE FROM history WHERE rev <= ?1")
                .bind(revision)
                .execute(&mut *tx)
                .await?;
            meta_set(&mut tx, COMPACTED, revision).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

// === impl Inner: reads ===

/// Visible keys: no lease, or a lease whose deadline (?1) has not passed.
const SELECT_GET: &str = "SELECT k.key, k.value, k.create_rev, k.mod_rev, k.lease FROM kv k
     LEFT JOIN leases l ON l.id = k.lease
     WHERE k.key = ?2 AND (k.lease IS NULL OR l.deadline_ms > ?1)";
const SELECT_RANGE: &str = "SELECT k.key, k.value, k.create_rev, k.mod_rev, k.lease FROM kv k
     LEFT JOIN leases l ON l.id = k.lease
     WHERE k.key >= ?2 AND (?3 IS NULL OR k.key < ?3) AND (k.lease IS NULL OR l.deadline_ms > ?1)
     ORDER BY k.key";
const SELECT_HISTORY: &str = "SELECT rev, key, kind, value, create_rev, lease FROM history
     WHERE rev >= ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3)
     ORDER BY rev, seq LIMIT ?4";

impl Inner {
    async fn range_at(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let now = now_ms(&self.clock);
        // One read transaction = one WAL snapshot for both queries.
        let mut tx = self.readers.begin().await?;
        let revision = meta_get(&mut tx, REVISION).await?;
        let rows = sqlx::query(SELECT_RANGE)
            .bind(now)
            .bind(prefix)
            .bind(prefix_end(prefix))
            .fetch_all(&mut *tx)
            .await?;
        tx.rollback().await?;
        let kvs = rows
            .iter()
            .map(kv_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((kvs, revision))
    }

    async fn watch(&self, prefix: &str, from_revision: Revision) -> Result<Watch, StoreError> {
        // Subscribe first: every commit not in the snapshot read below is
        // published after this, so it reaches the watcher live.
        let sub = self.hub.subscribe(prefix);
        if from_revision == 0 {
            return Ok(Watch::new(Vec::new(), sub, 0));
        }
        let mut tx = self.readers.begin().await?;
        let compacted = meta_get(&mut tx, COMPACTED).await?;
        if from_revision <= compacted {
            return Ok(Watch::compacted(compacted));
        }
        let current = meta_get(&mut tx, REVISION).await?;
        let limit = i64::try_from(MAX_REPLAY_EVENTS + 1).unwrap_or(i64::MAX);
        let rows = sqlx::query(SELECT_HISTORY)
            .bind(from_revision)
            .bind(prefix)
            .bind(prefix_end(prefix))
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.rollback().await?;
        if rows.len() > MAX_REPLAY_EVENTS {
            return Ok(Watch::compacted(compacted.max(from_revision - 1)));
        }
        let replay = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<WatchEvent>, _>>()?;
        // Live events up to the snapshot's revision were replayed (or are
        // before the requested start): skip them.
        Ok(Watch::new(replay, sub, current.max(from_revision - 1)))
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        validate_key(key)?;
        let now = now_ms(&self.inner.clock);
        let row = sqlx::query(SELECT_GET)
            .bind(now)
            .bind(key)
            .fetch_optional(&self.inner.readers)
            .await?;
        row.as_ref().map(kv_from_row).transpose()
    }

    async fn range(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self.range_at(prefix).await?.0)
    }

    async fn range_at(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        validate_prefix(prefix)?;
        self.inner.range_at(prefix).await
    }

    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        validate_key(key)?;
        validate_value(key, &value)?;
        let ops = vec![Op::Put {
            key: key.to_owned(),
            value,
            lease,
        }];
        let (result, _) = self
            .write(|inner| async move { inner.txn(Vec::new(), ops).await })
            .await?;
        Ok(result.revision)
    }

    async fn delete(&self, key: &str) -> Result<Option<Revision>, StoreError> {
        validate_key(key)?;
        let ops = vec![Op::Delete {
            key: key.to_owned(),
        }];
        let (result, changed) = self
            .write(|inner| async move { inner.txn(Vec::new(), ops).await })
            .await?;
        Ok((changed > 0).then_some(result.revision))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<usize, StoreError> {
        validate_prefix(prefix)?;
        let prefix = prefix.to_owned();
        self.write(|inner| async move { inner.delete_prefix(prefix).await })
            .await
    }

    async fn txn(&self, compares: Vec<Compare>, ops: Vec<Op>) -> Result<TxnResult, StoreError> {
        validate_txn(&compares, &ops)?;
        let (result, _) = self
            .write(|inner| async move { inner.txn(compares, ops).await })
            .await?;
        Ok(result)
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let ttl_ms = ttl_ms(ttl)?;
        self.write(move |inner| async move { inner.grant_lease(ttl_ms).await })
            .await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.write(move |inner| async move { inner.keep_alive(lease).await })
            .await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.write(move |inner| async move { inner.revoke_lease(lease).await })
            .await
    }

    async fn expire_leases(&self) -> Result<usize, StoreError> {
        self.write(|inner| async move { Ok(inner.lock_writer().await?.2) })
            .await
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let mut conn = self.inner.readers.acquire().await?;
        meta_get(&mut conn, REVISION).await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.write(move |inner| async move { inner.compact(revision).await })
            .await
    }

    async fn watch(&self, prefix: &str, from_revision: Revision) -> Result<Watch, StoreError> {
        validate_prefix(prefix)?;
        validate_watch_revision(from_revision)?;
        self.inner.watch(prefix, from_revision).await
    }
}

#[cfg(test)]
mod tests;
