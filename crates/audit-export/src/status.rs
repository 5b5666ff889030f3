//! What each exporter is doing: the lag metric and the last error, read
//! while the exporters run.

use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use time::OffsetDateTime;

use crate::config::ExporterKind;

/// One exporter's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExporterStatus {
    /// The exporter's name.
    pub name: String,
    /// Its kind.
    pub kind: ExporterKind,
    /// Last event seq delivered (persisted).
    pub cursor: u64,
    /// Seq of the last checkpoint delivered.
    pub checkpoint_cursor: u64,
    /// The log's last seq when the exporter last looked (0 before it
    /// first looked).
    pub head: u64,
    /// Events in the log not yet delivered (`head - cursor`): the lag.
    pub lag_events: u64,
    /// Why the last attempt failed; `None` once a delivery succeeds.
    pub last_error: Option<String>,
    /// Failed attempts since the last success (drives the backoff).
    pub consecutive_failures: u32,
    /// When a delivery last succeeded (this run).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success: Option<OffsetDateTime>,
}

/// A cheap, cloneable view of every exporter's status, updated by the
/// running exporters.
#[derive(Debug, Clone, Default)]
pub struct StatusHandle {
    /// One entry per exporter, in configuration order.
    inner: Arc<Mutex<Vec<ExporterStatus>>>,
}

impl StatusHandle {
    /// A handle over these initial entries.
    pub(crate) fn new(entries: Vec<ExporterStatus>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(entries)),
        }
    }

    /// Every exporter's status, in configuration order.
    pub fn status(&self) -> Vec<ExporterStatus> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The status of the exporter called `name`.
    pub fn get(&self, name: &str) -> Option<ExporterStatus> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|s| s.name == name)
            .cloned()
    }

    /// Changes entry `index` (and keeps the lag in step).
    pub(crate) fn update(&self, index: usize, f: impl FnOnce(&mut ExporterStatus)) {
        let mut all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = all.get_mut(index) {
            f(s);
            s.lag_events = s.head.saturating_sub(s.cursor);
        }
    }
}
