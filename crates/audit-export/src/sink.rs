//! The destinations, behind one enum (three kinds, no trait objects).

use crate::ExportError;
use crate::batch::Batch;
use crate::stdout::{SharedWriter, StdoutSink};
use crate::syslog::SyslogSink;
use crate::webhook::WebhookSink;

/// Where one exporter delivers.
#[derive(Debug)]
pub enum Sink {
    /// RFC 5424 over TCP.
    Syslog(SyslogSink),
    /// Signed JSON batches over HTTPS.
    Webhook(WebhookSink),
    /// JSON lines.
    Stdout(StdoutSink),
}

impl Sink {
    /// A stdout sink writing to `out`.
    pub fn stdout(out: SharedWriter) -> Self {
        Self::Stdout(StdoutSink::new(out))
    }

    /// Delivers `batch`; `Ok` means the receiver has it (as far as the
    /// protocol can tell). `cursor` is the last seq delivered before it.
    pub async fn send(&mut self, batch: &Batch, cursor: u64) -> Result<(), ExportError> {
        match self {
            Self::Syslog(s) => s.send(batch).await,
            Self::Webhook(s) => s.send(batch, cursor).await,
            Self::Stdout(s) => s.send(batch).await,
        }
    }

    /// Ends the delivery cleanly (syslog closes its connection in order).
    pub async fn close(&mut self) {
        if let Self::Syslog(s) = self {
            s.close().await;
        }
    }
}
