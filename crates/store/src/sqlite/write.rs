//! Write-side building blocks, run inside one SQLite transaction on the
//! single writer connection. A [`Batch`] collects the revision and events a
//! transaction produces; its [`commit`](Batch::commit) makes them durable
//! and only then tells the watchers.

use sqlx::{Row, Sqlite, SqliteConnection, Transaction};

use super::schema::{self, KIND_DELETE, KIND_PUT};
use crate::watch::Hub;
use crate::{KeyValue, LeaseId, Op, Revision, StoreError, WatchEvent};

/// Revision counter and events of one write transaction.
pub(super) struct Batch {
    /// Latest revision, including this batch's changes so far.
    revision: Revision,
    /// Events to record and publish, in order.
    events: Vec<WatchEvent>,
}

impl Batch {
    /// Start a batch at the store's current revision.
    pub(super) async fn start(conn: &mut SqliteConnection) -> Result<Self, StoreError> {
        Ok(Self {
            revision: schema::meta_get(conn, schema::REVISION).await?,
            events: Vec::new(),
        })
    }

    /// Latest revision, including this batch's changes so far.
    pub(super) fn revision(&self) -> Revision {
        self.revision
    }

    /// Commit (durably: `synchronous=FULL`), then publish the events. The
    /// caller still holds the writer lock, so publication is in order.
    pub(super) async fn commit(
        self,
        mut tx: Transaction<'_, Sqlite>,
        hub: &Hub,
    ) -> Result<Revision, StoreError> {
        if !self.events.is_empty() {
            schema::meta_set(&mut tx, schema::REVISION, self.revision).await?;
        }
        tx.commit().await?;
        hub.publish(&self.events);
        Ok(self.revision)
    }
}

/// The key's mod revision, `None` if absent.
pub(super) async fn mod_revision(
    conn: &mut SqliteConnection,
    key: &str,
) -> Result<Option<Revision>, StoreError> {
    let row = sqlx::query("SELECT mod_rev FROM kv WHERE key = ?1")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("mod_rev")?),
        None => None,
    })
}

/// Fails with [`StoreError::LeaseNotFound`] unless `lease` is `None` or alive.
pub(super) async fn require_lease(
    conn: &mut SqliteConnection,
    lease: Option<LeaseId>,
    now: i64,
) -> Result<(), StoreError> {
    let Some(id) = lease else { return Ok(()) };
    let alive = sqlx::query("SELECT 1 FROM leases WHERE id = ?1 AND deadline_ms > ?2")
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
    match alive {
        Some(_) => Ok(()),
        None => Err(StoreError::LeaseNotFound(id)),
    }
}

/// Apply validated ops at the batch's next revision; returns how many
/// changed something. The revision advances only if one did.
pub(super) async fn apply(
    conn: &mut SqliteConnection,
    batch: &mut Batch,
    ops: Vec<Op>,
) -> Result<usize, StoreError> {
    let rev = batch.revision + 1;
    let mut changed = 0;
    for op in ops {
        // Unique within the batch, hence within the revision.
        let seq = i64::try_from(batch.events.len()).unwrap_or(i64::MAX);
        match op {
            Op::Put { key, value, lease } => {
                let row = sqlx::query(
                    "INSERT INTO kv (key, value, create_rev, mod_rev, lease) VALUES (?1, ?2, ?3, ?3, ?4)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev, lease = excluded.lease
                     RETURNING create_rev",
                )
                .bind(key.as_str())
                .bind(value.as_slice())
                .bind(rev)
                .bind(lease)
                .fetch_one(&mut *conn)
                .await?;
                let create_revision: Revision = row.try_get("create_rev")?;
                record(
                    conn,
                    rev,
                    seq,
                    &key,
                    KIND_PUT,
                    Some((value.as_slice(), create_revision)),
                    lease,
                )
                .await?;
                batch.events.push(WatchEvent::Put(KeyValue {
                    key,
                    value,
                    create_revision,
                    mod_revision: rev,
                    lease,
                }));
                changed += 1;
            }
            Op::Delete { key } => {
                let deleted = sqlx::query("DELETE FROM kv WHERE key = ?1")
                    .bind(key.as_str())
                    .execute(&mut *conn)
                    .await?;
                if deleted.rows_affected() > 0 {
                    record(conn, rev, seq, &key, KIND_DELETE, None, None).await?;
                    batch.events.push(WatchEvent::Delete { key, revision: rev });
                    changed += 1;
                }
            }
        }
    }
    if changed > 0 {
        batch.revision = rev;
    }
    Ok(changed)
}

/// Append one event to `history` for watch replay.
async fn record(
    conn: &mut SqliteConnection,
    rev: Revision,
    seq: i64,
    key: &str,
    kind: i64,
    put: Option<(&[u8], Revision)>,
    lease: Option<LeaseId>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO history (rev, seq, key, kind, value, create_rev, lease) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(rev)
    .bind(seq)
    .bind(key)
    .bind(kind)
    .bind(put.map(|(value, _)| value))
    .bind(put.map(|(_, create_rev)| create_rev))
    .bind(lease)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Keys starting with `prefix` (bounds from [`crate::limits::prefix_end`]).
pub(super) async fn keys_in_prefix(
    conn: &mut SqliteConnection,
    prefix: &str,
) -> Result<Vec<String>, StoreError> {
    let rows =
        sqlx::query("SELECT key FROM kv WHERE key >= ?1 AND (?2 IS NULL OR key < ?2) ORDER BY key")
            .bind(prefix)
            .bind(crate::limits::prefix_end(prefix))
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| r.try_get("key").map_err(StoreError::from))
        .collect()
}

/// End lease `id`: delete its keys at one new revision, then the lease.
pub(super) async fn revoke(
    conn: &mut SqliteConnection,
    batch: &mut Batch,
    id: LeaseId,
) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT key FROM kv WHERE lease = ?1 ORDER BY key")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    let mut ops = Vec::with_capacity(rows.len());
    for row in &rows {
        ops.push(Op::Delete {
            key: row.try_get("key")?,
        });
    }
    apply(conn, batch, ops).await?;
    sqlx::query("DELETE FROM leases WHERE id = ?1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
