//! Reads: recent events, filtered search and full chain verification, on
//! the read-only pool (never the writer's connection, so a slow query
//! cannot delay acknowledgements).

use std::time::Duration;

use futures::TryStreamExt;
use keygate_audit_model::{
    ChainBreak, ChainBreakKind, ChainRecord, ChainVerifier, StoredEvent, parse_stored,
};
use keygate_clock::SharedClock;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use time::OffsetDateTime;

use crate::AuditError;

/// Most rows one query returns, whatever the caller asks for.
pub const MAX_QUERY_LIMIT: usize = 10_000;

/// SQLite VM instructions between two checks of the time limit.
const PROGRESS_OPS: i32 = 1_000;

/// Which events to return (all conditions must hold), newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    /// Only this event name (e.g. `user.login`).
    pub event: Option<String>,
    /// Only events about this user.
    pub user: Option<String>,
    /// Only events at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events before this time.
    pub until: Option<OffsetDateTime>,
    /// At most this many (capped at [`MAX_QUERY_LIMIT`]).
    pub limit: usize,
}

/// The read side of the log.
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    /// `query_only` connections.
    pub(crate) pool: SqlitePool,
    /// Measures the query time limit.
    pub(crate) clock: SharedClock,
    /// How long a search may run.
    pub(crate) timeout: Duration,
}

impl Reader {
    /// The newest `limit` events.
    pub(crate) async fn recent(&self, limit: usize) -> Result<Vec<StoredEvent>, AuditError> {
        self.search(&SearchFilter {
            limit,
            ..SearchFilter::default()
        })
        .await
    }

    /// Events matching `filter`, newest first.
    pub(crate) async fn search(
        &self,
        filter: &SearchFilter,
    ) -> Result<Vec<StoredEvent>, AuditError> {
        let limit = i64::try_from(filter.limit.min(MAX_QUERY_LIMIT)).unwrap_or(0);
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Only constant SQL fragments are pushed; every value is bound.
        let mut q = QueryBuilder::<Sqlite>::new("SELECT seq, data FROM events WHERE 1 = 1");
        if let Some(event) = &filter.event {
            q.push(" AND event = ").push_bind(event.clone());
        }
        if let Some(user) = &filter.user {
            q.push(" AND user = ").push_bind(user.clone());
        }
        if let Some(since) = filter.since {
            q.push(" AND unix_ms >= ").push_bind(unix_ms(since));
        }
        if let Some(until) = filter.until {
            q.push(" AND unix_ms < ").push_bind(unix_ms(until));
        }
        q.push(" ORDER BY seq DESC LIMIT ").push_bind(limit);

        let mut conn = self.acquire().await?;
        let deadline = self.clock.monotonic().saturating_add(self.timeout);
        let clock = self.clock.clone();
        set_progress_handler(&mut conn, move || clock.monotonic() < deadline).await?;
        let rows = q.build().fetch_all(&mut *conn).await;
        clear_progress_handler(&mut conn).await;
        rows.map_err(query_error)?.iter().map(decode_row).collect()
    }

    /// Recompute the whole chain from the stored rows, streaming them.
    /// Has no time limit: it must read everything.
    pub(crate) async fn verify(&self) -> Result<u64, AuditError> {
        let mut conn = self.acquire().await?;
        clear_progress_handler(&mut conn).await;
        let mut rows = sqlx::query("SELECT seq, data, prev_hash, hash FROM events ORDER BY seq")
            .fetch(&mut *conn);
        let mut verifier = ChainVerifier::genesis();
        while let Some(row) = rows.try_next().await.map_err(AuditError::Query)? {
            let record = chain_record_of(&row, &verifier)?;
            verifier.push(&record).map_err(AuditError::ChainBroken)?;
        }
        Ok(verifier.count())
    }

    /// A pooled read connection; a closed pool means a closed log.
    pub(crate) async fn acquire(&self) -> Result<PoolConnection<Sqlite>, AuditError> {
        self.pool.acquire().await.map_err(|e| match e {
            sqlx::Error::PoolClosed => AuditError::Closed,
            other => AuditError::Query(other),
        })
    }
}

/// Milliseconds since the epoch, the unit of the `unix_ms` column.
pub(crate) fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// An interrupted statement means the progress handler stopped it.
pub(crate) fn query_error(e: sqlx::Error) -> AuditError {
    let interrupted = e
        .as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "9" /* SQLITE_INTERRUPT */);
    if interrupted {
        AuditError::QueryTimeout
    } else {
        AuditError::Query(e)
    }
}

/// Install a progress handler that aborts the running statement once
/// `keep_going` says so.
pub(crate) async fn set_progress_handler(
    conn: &mut PoolConnection<Sqlite>,
    keep_going: impl FnMut() -> bool + Send + 'static,
) -> Result<(), AuditError> {
    let mut handle = conn.lock_handle().await.map_err(AuditError::Query)?;
    handle.set_progress_handler(PROGRESS_OPS, keep_going);
    Ok(())
}

/// Remove any progress handler so the pooled connection goes back clean.
pub(crate) async fn clear_progress_handler(conn: &mut PoolConnection<Sqlite>) {
    if let Ok(mut handle) = conn.lock_handle().await {
        handle.remove_progress_handler();
    }
}

/// Decode a `(seq, data)` row into the event it stores.
fn decode_row(row: &SqliteRow) -> Result<StoredEvent, AuditError> {
    let seq: i64 = row.try_get("seq").map_err(AuditError::Query)?;
    let seq = u64::try_from(seq).unwrap_or(0);
    let data: Vec<u8> = row.try_get("data").map_err(AuditError::Query)?;
    let stored = parse_stored(&data).map_err(|e| AuditError::Corrupt {
        seq,
        detail: e.to_string(),
    })?;
    if stored.seq != seq {
        return Err(AuditError::Corrupt {
            seq,
            detail: format!("the event inside claims seq {}", stored.seq),
        });
    }
    Ok(stored)
}

/// Turn a row into a chain record. Shapes no writer produces (negative
/// seq, hashes of the wrong length) are reported as the chain break they
/// amount to.
pub(crate) fn chain_record_of(
    row: &SqliteRow,
    verifier: &ChainVerifier,
) -> Result<ChainRecord, AuditError> {
    let seq: i64 = row.try_get("seq").map_err(AuditError::Query)?;
    let broken = |seq, kind| AuditError::ChainBroken(ChainBreak { seq, kind });
    let seq = u64::try_from(seq).map_err(|_| {
        broken(
            0,
            ChainBreakKind::Gap {
                expected: verifier.next_seq(),
            },
        )
    })?;
    let bytes: Vec<u8> = row.try_get("data").map_err(AuditError::Query)?;
    let prev_hash: Vec<u8> = row.try_get("prev_hash").map_err(AuditError::Query)?;
    let hash: Vec<u8> = row.try_get("hash").map_err(AuditError::Query)?;
    let prev_hash = <[u8; 32]>::try_from(prev_hash.as_slice())
        .map_err(|_| broken(seq, ChainBreakKind::BadPrevLink))?;
    let hash =
        <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| broken(seq, ChainBreakKind::BadHash))?;
    Ok(ChainRecord {
        seq,
        prev_hash,
        hash,
        bytes,
    })
}
