//! The stdout sink: one JSON line per event (its exact stored bytes) and
//! per checkpoint, for container log collectors.

use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::ExportError;
use crate::batch::{Batch, Item, checkpoint_json};

/// Where stdout exporters write: the process's stdout, or a test's
/// writer. Shared so lines of two exporters never interleave mid-line.
pub type SharedWriter = Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

/// A writer for the process's standard output.
pub fn process_stdout() -> SharedWriter {
    Arc::new(Mutex::new(Box::new(tokio::io::stdout())))
}

/// Writes batches as JSON lines.
pub struct StdoutSink {
    /// The shared output.
    out: SharedWriter,
}

impl std::fmt::Debug for StdoutSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdoutSink").finish_non_exhaustive()
    }
}

impl StdoutSink {
    /// A sink writing to `out`.
    pub fn new(out: SharedWriter) -> Self {
        Self { out }
    }

    /// Writes the batch and flushes: the cursor moves only once the lines
    /// left the process.
    pub async fn send(&mut self, batch: &Batch) -> Result<(), ExportError> {
        let mut buf = Vec::new();
        for item in batch.items() {
            match item {
                Item::Event(r) => buf.extend_from_slice(&r.bytes),
                Item::Checkpoint(c) => buf.extend_from_slice(&checkpoint_json(c)),
            }
            buf.push(b'\n');
        }
        let mut out = self.out.lock().await;
        out.write_all(&buf).await.map_err(ExportError::Stdout)?;
        out.flush().await.map_err(ExportError::Stdout)
    }
}
