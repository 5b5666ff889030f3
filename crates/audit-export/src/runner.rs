//! The export runner: one task per exporter, each reading the log after
//! its persisted cursor, delivering, and only then moving the cursor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keygate_audit::AuditLog;
use keygate_clock::SharedClock;
use tokio::io::AsyncWrite;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::ExportError;
use crate::backoff::Backoff;
use crate::batch::Batch;
use crate::config::{ExporterConfig, ExporterKind, MAX_BATCH, validate_all};
use crate::cursor::{self, Cursor};
use crate::rfc5424::Header;
use crate::sink::Sink;
use crate::status::{ExporterStatus, StatusHandle};
use crate::stdout::{SharedWriter, process_stdout};
use crate::syslog::{SyslogSink, TlsSetup};
use crate::webhook::WebhookSink;

/// How often an idle exporter looks for new events unless notified.
const DEFAULT_POLL: Duration = Duration::from_millis(500);
/// How long a delivery under way may finish after shutdown was asked
/// for, so a clean shutdown does not leave a delivered-but-unrecorded
/// batch (which would be sent again: a duplicate).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Runs the configured exporters until shut down.
pub struct ExportRunner {
    /// The source.
    log: AuditLog,
    /// The exporters, ready to run.
    exporters: Vec<Prepared>,
    /// Stamps `last_success`.
    clock: SharedClock,
    /// Retry delays.
    backoff: Backoff,
    /// Idle poll interval.
    poll: Duration,
    /// Wakes idle exporters early (new events were written).
    notify: Arc<Notify>,
    /// Progress of every exporter.
    status: StatusHandle,
    /// Where stdout exporters write.
    stdout: SharedWriter,
}

impl std::fmt::Debug for ExportRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportRunner")
            .field("status", &self.status.status())
            .field("backoff", &self.backoff)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

/// One exporter before it runs.
struct Prepared {
    /// Its name.
    name: String,
    /// Its connection, client or writer (stdout's is attached at run).
    target: Target,
    /// `<state_dir>/<name>.cursor`.
    cursor_path: PathBuf,
    /// Where it starts.
    cursor: Cursor,
    /// Most events per delivery.
    batch: usize,
}

/// The sink of a prepared exporter.
enum Target {
    /// Ready.
    Sink(Sink),
    /// Writes to the runner's stdout writer.
    Stdout,
}

impl ExportRunner {
    /// Validates `configs`, creates `state_dir`, reads every cursor and
    /// webhook secret, and builds the clients: everything that can be
    /// wrong in the configuration fails here, before anything runs.
    pub fn new(
        log: AuditLog,
        state_dir: PathBuf,
        configs: Vec<ExporterConfig>,
        clock: SharedClock,
    ) -> Result<Self, ExportError> {
        validate_all(&configs)?;
        std::fs::create_dir_all(&state_dir).map_err(|source| ExportError::State {
            path: state_dir.clone(),
            source,
        })?;
        let mut exporters = Vec::with_capacity(configs.len());
        let mut status = Vec::with_capacity(configs.len());
        for cfg in &configs {
            let name = cfg.name().to_owned();
            let cursor_path = cursor::path_of(&state_dir, &name);
            let cursor = cursor::load(&cursor_path)?;
            let (target, batch) = match cfg {
                ExporterConfig::Syslog(c) => {
                    let header = Header {
                        hostname: c.hostname.clone().unwrap_or_else(machine_hostname),
                        app_name: c.app_name.clone(),
                    };
                    let tls = match &c.tls {
                        None => None,
                        Some(t) => Some(TlsSetup {
                            connector: crate::tls::connector(&name, &t.ca_file)?,
                            server_name: crate::tls::server_name(
                                &name,
                                &c.addr,
                                t.server_name.as_deref(),
                            )?,
                        }),
                    };
                    let sink = SyslogSink::new(c.addr.clone(), header, tls);
                    (Target::Sink(Sink::Syslog(sink)), MAX_BATCH)
                }
                ExporterConfig::Webhook(c) => {
                    (Target::Sink(Sink::Webhook(WebhookSink::new(c)?)), c.batch)
                }
                ExporterConfig::Stdout(_) => (Target::Stdout, MAX_BATCH),
            };
            status.push(initial_status(&name, cfg.kind(), &cursor));
            exporters.push(Prepared {
                name,
                target,
                cursor_path,
                cursor,
                batch,
            });
        }
        Ok(Self {
            log,
            exporters,
            clock,
            backoff: Backoff::default(),
            poll: DEFAULT_POLL,
            notify: Arc::new(Notify::new()),
            status: StatusHandle::new(status),
            stdout: process_stdout(),
        })
    }

    /// Retry delays between `min` and `max` (default 100 ms … 30 s).
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = Backoff::new(min, max);
        self
    }

    /// How often idle exporters look for new events (default 500 ms).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    /// Stdout exporters write here instead of the process's stdout.
    pub fn with_stdout(mut self, out: impl AsyncWrite + Send + Unpin + 'static) -> Self {
        self.stdout = Arc::new(Mutex::new(Box::new(out)));
        self
    }

    /// Call `notify_waiters()` on this after writing events (or storing a
    /// checkpoint) to have idle exporters look at once rather than at
    /// their next poll.
    pub fn notifier(&self) -> Arc<Notify> {
        Arc::clone(&self.notify)
    }

    /// Every exporter's status now (the lag metric).
    pub fn status(&self) -> Vec<ExporterStatus> {
        self.status.status()
    }

    /// A handle that keeps reporting status after [`run`](Self::run) took
    /// the runner.
    pub fn status_handle(&self) -> StatusHandle {
        self.status.clone()
    }

    /// Runs every exporter until `shutdown` is cancelled, then lets each
    /// finish (and record) the delivery under way, closes connections and
    /// returns. Delivery errors never end it: they are retried with
    /// backoff and shown in [`status`](Self::status).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, p) in self.exporters.into_iter().enumerate() {
            let sink = match p.target {
                Target::Sink(s) => s,
                Target::Stdout => Sink::stdout(Arc::clone(&self.stdout)),
            };
            let task = Task {
                index,
                name: p.name,
                log: self.log.clone(),
                sink,
                cursor_path: p.cursor_path,
                cursor: p.cursor,
                batch: p.batch,
                status: self.status.clone(),
                clock: self.clock.clone(),
                backoff: self.backoff,
                poll: self.poll,
                notify: Arc::clone(&self.notify),
            };
            tasks.spawn(task.run(shutdown.clone()));
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "audit exporter task failed");
            }
        }
    }
}

/// One running exporter.
struct Task {
    /// Its entry in the status list.
    index: usize,
    /// Its name (for logs and errors).
    name: String,
    /// The source.
    log: AuditLog,
    /// The destination.
    sink: Sink,
    /// Where the cursor is persisted.
    cursor_path: PathBuf,
    /// What was delivered.
    cursor: Cursor,
    /// Most events per delivery.
    batch: usize,
    /// Where progress is reported.
    status: StatusHandle,
    /// Stamps `last_success`.
    clock: SharedClock,
    /// Retry delays.
    backoff: Backoff,
    /// Idle poll interval.
    poll: Duration,
    /// Early wake-up.
    notify: Arc<Notify>,
}

impl Task {
    /// Delivers until shut down.
    async fn run(mut self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        let notify = Arc::clone(&self.notify);
        while !shutdown.is_cancelled() {
            // Registered before looking, so a notification that arrives
            // between the look and the wait is not missed.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = match self.step(&shutdown).await {
                Ok(true) => {
                    if failures > 0 {
                        tracing::info!(exporter = %self.name, failures, "audit exporter recovered");
                    }
                    failures = 0;
                    continue;
                }
                Ok(false) => {
                    if failures > 0 {
                        // Recovered with nothing to send (e.g. the log was
                        // unreadable for a moment): the error is stale.
                        failures = 0;
                        self.status.update(self.index, |s| {
                            s.last_error = None;
                            s.consecutive_failures = 0;
                        });
                    }
                    self.poll
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    // Every failure is in the status; the log gets the
                    // first and then every power of two, not one per retry.
                    if failures.is_power_of_two() {
                        tracing::warn!(exporter = %self.name, failures, error = %e, "audit export failed; retrying with backoff");
                    }
                    let error = e.to_string();
                    self.status.update(self.index, |s| {
                        s.last_error = Some(error);
                        s.consecutive_failures = failures;
                    });
                    self.backoff.delay(failures)
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
                () = &mut notified, if failures == 0 => {}
            }
        }
        self.sink.close().await;
    }

    /// One look at the log: delivers what is due. `Ok(true)` if something
    /// was delivered, `Ok(false)` if there was nothing to do.
    async fn step(&mut self, shutdown: &CancellationToken) -> Result<bool, ExportError> {
        let (head, _) = self.log.head().await?;
        self.status.update(self.index, |s| s.head = head);
        if self.cursor.seq > head {
            return Err(ExportError::CursorAhead {
                path: self.cursor_path.clone(),
                cursor: self.cursor.seq,
                head,
            });
        }
        let records = if self.cursor.seq < head {
            self.log.records(self.cursor.seq + 1, self.batch).await?
        } else {
            Vec::new()
        };
        let last = records.last().map_or(self.cursor.seq, |r| r.seq);
        let done_cp = self.cursor.checkpoint_seq;
        let checkpoints: Vec<_> = self
            .log
            .checkpoints()
            .await?
            .into_iter()
            .filter(|c| c.checkpoint.seq > done_cp && c.checkpoint.seq <= last)
            .collect();
        let batch = Batch {
            records,
            checkpoints,
        };
        if batch.is_empty() {
            return Ok(false);
        }
        let next = Cursor::at(
            last,
            batch
                .checkpoints
                .last()
                .map_or(done_cp, |c| c.checkpoint.seq.max(done_cp)),
        );
        self.deliver(&batch, shutdown).await?;
        persist(&self.cursor_path, next).await?;
        self.cursor = next;
        let now = self.clock.now();
        self.status.update(self.index, |s| {
            s.cursor = next.seq;
            s.checkpoint_cursor = next.checkpoint_seq;
            s.last_error = None;
            s.consecutive_failures = 0;
            s.last_success = Some(now);
        });
        Ok(true)
    }

    /// Sends one batch; a shutdown during the send gives it a grace period
    /// to finish rather than abandoning it half-acknowledged.
    async fn deliver(
        &mut self,
        batch: &Batch,
        shutdown: &CancellationToken,
    ) -> Result<(), ExportError> {
        let send = self.sink.send(batch, self.cursor.seq);
        tokio::pin!(send);
        tokio::select! {
            r = &mut send => r,
            () = shutdown.cancelled() => match tokio::time::timeout(SHUTDOWN_GRACE, &mut send).await {
                Ok(r) => r,
                Err(_) => Err(ExportError::Timeout {
                    what: "delivering the last batch at shutdown".into(),
                    after: SHUTDOWN_GRACE,
                }),
            },
        }
    }
}

/// Writes the cursor off the async threads (it fsyncs).
async fn persist(path: &Path, cursor: Cursor) -> Result<(), ExportError> {
    let path = path.to_owned();
    let p = path.clone();
    tokio::task::spawn_blocking(move || cursor::store(&p, &cursor))
        .await
        .map_err(|e| ExportError::State {
            path,
            source: std::io::Error::other(e),
        })?
}

/// Status before the first look at the log.
fn initial_status(name: &str, kind: ExporterKind, cursor: &Cursor) -> ExporterStatus {
    ExporterStatus {
        name: name.to_owned(),
        kind,
        cursor: cursor.seq,
        checkpoint_cursor: cursor.checkpoint_seq,
        head: 0,
        lag_events: 0,
        last_error: None,
        consecutive_failures: 0,
        last_success: None,
    }
}

/// This machine's host name as an RFC 5424 HOSTNAME, or NILVALUE.
fn machine_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| (33..=126).contains(&b)))
        .unwrap_or_else(|| "-".to_owned())
}
