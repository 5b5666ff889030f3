//! The single writer task and its group commit.
//!
//! Every `emit` sends its event with a oneshot over a bounded channel. The
//! writer takes whatever is queued (up to `max_batch`), gives each event the
//! next sequence number and chain hash, inserts them all in ONE transaction
//! and acknowledges them only after the commit, so an ack means "on disk".
//! One fsync then covers many events, which is what makes a hash chain
//! (inherently serial) affordable under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keygate_audit_model::{AuditEvent, ChainRecord, seal};
use sqlx::{Connection, SqliteConnection};
use time::format_description::well_known::Rfc3339;
use tokio::sync::{mpsc, oneshot};

use crate::AuditError;
use crate::schema::{Tail, read_tail};

/// A message to the writer.
pub(crate) enum Command {
    /// Store an event and report its sequence number once durable.
    Emit {
        /// The event (boxed: it is large and the channel holds many).
        event: Box<AuditEvent>,
        /// Where the outcome goes.
        ack: oneshot::Sender<Result<u64, AuditError>>,
    },
    /// Store a signed checkpoint (JSON) for record `seq`.
    Checkpoint {
        /// Record it covers.
        seq: u64,
        /// When it was made, ms since the epoch.
        unix_ms: i64,
        /// The signed checkpoint as JSON.
        data: String,
        /// Where the outcome goes.
        ack: oneshot::Sender<Result<(), AuditError>>,
    },
    /// Write everything queued so far, then stop.
    Close {
        /// Signalled after the last write and the connection's close.
        ack: oneshot::Sender<()>,
    },
}

/// Counters for observing group commit.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Transactions committed.
    pub(crate) batches: AtomicU64,
    /// Events committed.
    pub(crate) events: AtomicU64,
    /// Batches that failed.
    pub(crate) failed_batches: AtomicU64,
}

/// An event waiting in the current batch.
type Pending = (Box<AuditEvent>, oneshot::Sender<Result<u64, AuditError>>);

/// The writer task's state.
pub(crate) struct Writer {
    /// The only connection that writes the log.
    pub(crate) conn: SqliteConnection,
    /// Incoming commands.
    pub(crate) rx: mpsc::Receiver<Command>,
    /// The last committed record; advanced only after a commit succeeds.
    pub(crate) tail: Tail,
    /// Most events per transaction (bounds transaction size and latency).
    pub(crate) max_batch: usize,
    /// Shared with [`crate::AuditLog::stats`].
    pub(crate) counters: Arc<Counters>,
    /// Checkpoints received while collecting a batch, written after it.
    pub(crate) checkpoints: Vec<PendingCheckpoint>,
}

/// A checkpoint waiting to be written.
pub(crate) struct PendingCheckpoint {
    /// Record it covers.
    seq: u64,
    /// When it was made, ms since the epoch.
    unix_ms: i64,
    /// JSON.
    data: String,
    /// Outcome.
    ack: oneshot::Sender<Result<(), AuditError>>,
}

impl Writer {
    /// Run until closed or until every handle is dropped.
    pub(crate) async fn run(mut self) {
        let mut closers: Vec<oneshot::Sender<()>> = Vec::new();
        while let Some(first) = self.rx.recv().await {
            let batch = self.collect(first, &mut closers);
            self.write_batch(batch).await;
            self.write_checkpoints().await;
            if !closers.is_empty() {
                break;
            }
        }
        // Refuse new work, but write what was already queued: those callers
        // are waiting for an answer.
        self.rx.close();
        while let Ok(first) = self.rx.try_recv() {
            let batch = self.collect(first, &mut closers);
            self.write_batch(batch).await;
            self.write_checkpoints().await;
        }
        if let Err(e) = self.conn.close().await {
            tracing::warn!(error = %e, "closing the audit database failed");
        }
        for ack in closers {
            let _ = ack.send(());
        }
    }

    /// Take `first` plus whatever else is queued, up to `max_batch` events.
    fn collect(&mut self, first: Command, closers: &mut Vec<oneshot::Sender<()>>) -> Vec<Pending> {
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Emit { event, ack } => batch.push((event, ack)),
                Command::Checkpoint {
                    seq,
                    unix_ms,
                    data,
                    ack,
                } => self.checkpoints.push(PendingCheckpoint {
                    seq,
                    unix_ms,
                    data,
                    ack,
                }),
                Command::Close { ack } => closers.push(ack),
            }
            if batch.len() < self.max_batch {
                next = self.rx.try_recv().ok();
            }
        }
        batch
    }

    /// Writes the checkpoints collected with the last batch (each on its
    /// own: one bad checkpoint must not cost the others).
    async fn write_checkpoints(&mut self) {
        for c in std::mem::take(&mut self.checkpoints) {
            let seq = i64::try_from(c.seq).unwrap_or(i64::MAX);
            let r = sqlx::query(
                "INSERT OR REPLACE INTO checkpoints (seq, unix_ms, data) VALUES (?, ?, ?)",
            )
            .bind(seq)
            .bind(c.unix_ms)
            .bind(&c.data)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| AuditError::Write(Arc::new(e)));
            let _ = c.ack.send(r);
        }
    }

    /// Chain, insert and commit one batch, then answer every waiter.
    async fn write_batch(&mut self, batch: Vec<Pending>) {
        let mut prev = self.tail;
        let mut rows: Vec<(Box<AuditEvent>, ChainRecord)> = Vec::with_capacity(batch.len());
        let mut acks = Vec::with_capacity(batch.len());
        for (event, ack) in batch {
            // An event that cannot be encoded fails alone and takes no seq.
            match seal(prev.hash, prev.seq.saturating_add(1), &event) {
                Ok(record) => {
                    prev = Tail {
                        seq: record.seq,
                        hash: record.hash,
                    };
                    rows.push((event, record));
                    acks.push(ack);
                }
                Err(e) => {
                    let _ = ack.send(Err(AuditError::Event(e)));
                }
            }
        }
        if rows.is_empty() {
            return;
        }
        match insert(&mut self.conn, &rows).await {
            Ok(()) => {
                self.tail = prev;
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .events
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
                for ((_, record), ack) in rows.iter().zip(acks) {
                    let _ = ack.send(Ok(record.seq));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = rows.len(), "audit batch write failed");
                self.counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                let shared = Arc::new(e);
                for ack in acks {
                    let _ = ack.send(Err(AuditError::Write(Arc::clone(&shared))));
                }
                // The in-memory tail was not advanced. Re-read it anyway in
                // case the file changed under us (e.g. a second writer),
                // so the next batch links to what is really stored.
                match read_tail(&mut self.conn).await {
                    Ok(tail) => self.tail = tail,
                    Err(e) => tracing::warn!(error = %e, "re-reading the audit tail failed"),
                }
            }
        }
    }
}

/// Insert the rows in one `BEGIN IMMEDIATE` transaction and commit.
async fn insert(
    conn: &mut SqliteConnection,
    rows: &[(Box<AuditEvent>, ChainRecord)],
) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    for (event, record) in rows {
        let seq = i64::try_from(record.seq).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let unix_ms =
            i64::try_from(event.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO events (seq, id, time, unix_ms, event, code, user, data, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(seq)
        .bind(&event.id)
        .bind(event.time.format(&Rfc3339).unwrap_or_default())
        .bind(unix_ms)
        .bind(&event.event)
        .bind(&event.code)
        .bind(event.user.as_deref())
        .bind(record.bytes.as_slice())
        .bind(record.prev_hash.as_slice())
        .bind(record.hash.as_slice())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
