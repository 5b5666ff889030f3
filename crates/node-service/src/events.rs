//! Audit events leave the node in batches; auth stamps them with the node
//! identity from the connection. Events queue in memory (bounded) while
//! auth is unreachable.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keygate_api::{Ack, ApiClient};
use keygate_audit_model::AuditEvent;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Most events held while auth is unreachable; older ones are dropped
/// (and counted) beyond that.
const MAX_QUEUED: usize = 100_000;
/// Most events sent per call.
const BATCH: usize = 500;

/// Queue + sender of node audit events.
#[derive(Clone, Default)]
pub struct EventUploader {
    /// Pending events.
    queue: Arc<Mutex<VecDeque<AuditEvent>>>,
    /// Wakes the sender.
    notify: Arc<Notify>,
    /// Events dropped because the queue was full.
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl EventUploader {
    /// Queues one event (never blocks a session).
    pub fn push(&self, ev: AuditEvent) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if q.len() >= MAX_QUEUED {
            q.pop_front();
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        q.push_back(ev);
        drop(q);
        self.notify.notify_one();
    }

    /// Events lost to a full queue so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends queued events until `shutdown` (then one last flush).
    pub async fn run(&self, api: ApiClient, shutdown: CancellationToken) {
        loop {
            let batch: Vec<AuditEvent> = {
                let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                let n = q.len().min(BATCH);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.notify.notified() => continue,
                }
            }
            let sent: Result<Ack, _> = api.post("/v1/nodes/events", &batch).await;
            if let Err(e) = sent {
                tracing::warn!(
                    "sending {} audit events failed ({e}); will retry",
                    batch.len()
                );
                {
                    let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                    for ev in batch.into_iter().rev() {
                        q.push_front(ev);
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
