//! The audit log: a hash-chained, append-only event store with group
//! commit, on SQLite.
//!
//! Owns: the SQLite audit database (schema, WAL, `synchronous = FULL`), the
//! single writer task ([`AuditLog::emit`] answers only once the event is
//! durable), the read-only query path ([`AuditLog::recent`],
//! [`AuditLog::search`]) and chain verification over the stored rows
//! ([`AuditLog::verify`]).
//! Does not own: the event schema, codes and chain rule
//! (`keygate-audit-model`), checkpoint signing, exporters, recordings and
//! PostgreSQL storage (later).
//!
//! `fail_closed` is the caller's decision: `emit` returns an error when the
//! event is not on disk, and an audited operation must not proceed then.
#![forbid(unsafe_code)]

mod checkpoints;
mod error;
mod query;
mod schema;
mod sql;
mod writer;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keygate_audit_model::{AuditEvent, EventType, StoredEvent, event_id};
use keygate_clock::SharedClock;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use checkpoints::MAX_RECORDS_PER_CALL;
pub use error::AuditError;
pub use query::{MAX_QUERY_LIMIT, SearchFilter};
pub use sql::{MAX_SQL_ROWS, SqlResult};

use query::Reader;
use writer::{Command, Counters, Writer};

/// Tuning knobs; the defaults suit a single auth server.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Events that may wait for the writer; `emit` waits when it is full
    /// (back-pressure instead of unbounded memory).
    pub queue_capacity: usize,
    /// Most events written in one transaction.
    pub max_batch: usize,
    /// How long SQLite waits for a lock held by another connection.
    pub busy_timeout: Duration,
    /// How long a `recent`/`search` query may run before it is stopped.
    pub query_timeout: Duration,
    /// Read connections in the query pool.
    pub read_connections: u32,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            max_batch: 512,
            busy_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(10),
            read_connections: 2,
        }
    }
}

/// Group-commit counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub batches: u64,
    /// Events committed.
    pub events: u64,
    /// Transactions that failed (their events were refused).
    pub failed_batches: u64,
}

/// A cheap, cloneable handle to an open audit log.
#[derive(Clone)]
pub struct AuditLog {
    /// Shared by every clone.
    inner: Arc<Inner>,
}

/// What the handles share.
struct Inner {
    /// Queue to the writer task.
    tx: mpsc::Sender<Command>,
    /// The read side.
    reader: Reader,
    /// Stamps events made with [`AuditLog::event`].
    clock: SharedClock,
    /// The writer task, taken by the first `close`.
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Group-commit counters, updated by the writer.
    counters: Arc<Counters>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Open (or create) the log at `path` and start its writer. Must be
    /// called within a tokio runtime. Continues the chain from the last
    /// stored record; it does not verify the whole chain (see
    /// [`verify`](Self::verify)).
    pub async fn open(
        path: &Path,
        clock: SharedClock,
        opts: AuditOptions,
    ) -> Result<AuditLog, AuditError> {
        let open_err = |source| AuditError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn: SqliteConnection = schema::writer_options(path, opts.busy_timeout)
            .connect()
            .await
            .map_err(open_err)?;
        schema::migrate(&mut conn, path).await?;
        let tail = schema::read_tail(&mut conn).await?;

        let pool = SqlitePoolOptions::new()
            .max_connections(opts.read_connections.max(1))
            .connect_with(schema::reader_options(path, opts.busy_timeout))
            .await
            .map_err(open_err)?;

        let (tx, rx) = mpsc::channel(opts.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            conn,
            rx,
            tail,
            max_batch: opts.max_batch.max(1),
            counters: Arc::clone(&counters),
            checkpoints: Vec::new(),
        };
        let handle = tokio::spawn(writer.run());
        tracing::debug!(path = %path.display(), last_seq = tail.seq, "audit log open");
        Ok(AuditLog {
            inner: Arc::new(Inner {
                tx,
                reader: Reader {
                    pool,
                    clock: clock.clone(),
                    timeout: opts.query_timeout,
                },
                clock,
                writer: Mutex::new(Some(handle)),
                counters,
            }),
        })
    }

    /// A new event of type `ty` stamped with this log's clock and a fresh
    /// UUIDv7 id.
    pub fn event(&self, ty: EventType) -> AuditEvent {
        let now = self.inner.clock.now();
        let [a, b, c, d, e, f, g, h, i, j, ..] = uuid::Uuid::new_v4().into_bytes();
        AuditEvent::new(ty, now, event_id(now, &[a, b, c, d, e, f, g, h, i, j]))
    }

    /// Append `event`; returns its sequence number once it is committed to
    /// disk. On error the event is not in the log.
    pub async fn emit(&self, event: AuditEvent) -> Result<u64, AuditError> {
        event.validate()?;
        let (ack, answer) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Emit {
                event: Box::new(event),
                ack,
            })
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }

    /// Write everything already queued, stop the writer and close the
    /// database. Later `emit`s fail with [`AuditError::Closed`]. Calling it
    /// again is harmless.
    pub async fn close(&self) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        if self.inner.tx.send(Command::Close { ack }).await.is_ok() {
            // An error only means the writer already stopped.
            let _ = done.await;
        }
        let handle = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle
            && let Err(e) = handle.await
        {
            tracing::error!(error = %e, "audit writer task failed");
        }
        self.inner.reader.pool.close().await;
        Ok(())
    }

    /// The newest `limit` events, newest first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<StoredEvent>, AuditError> {
        self.inner.reader.recent(limit).await
    }

    /// Events matching `filter`, newest first.
    pub async fn search(&self, filter: &SearchFilter) -> Result<Vec<StoredEvent>, AuditError> {
        self.inner.reader.search(filter).await
    }

    /// Recompute the chain over every stored record. Returns the number of
    /// records, or [`AuditError::ChainBroken`] naming the first bad one.
    /// Deleting the newest records is only caught against signed
    /// checkpoints, which this does not consult.
    pub async fn verify(&self) -> Result<u64, AuditError> {
        self.inner.reader.verify().await
    }

    pub(crate) fn reader(&self) -> &Reader {
        &self.inner.reader
    }

    pub(crate) fn sender(&self) -> &mpsc::Sender<Command> {
        &self.inner.tx
    }

    /// Group-commit counters so far.
    pub fn stats(&self) -> WriterStats {
        let c = &self.inner.counters;
        WriterStats {
            batches: c.batches.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            failed_batches: c.failed_batches.load(Ordering::Relaxed),
        }
    }
}
