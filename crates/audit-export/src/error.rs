//! The one error type of the exporters.

use std::path::PathBuf;
use std::time::Duration;

use keygate_audit::AuditError;

/// Why an exporter could not be set up, or why one delivery failed (the
/// runner retries those with backoff and shows them in
/// [`ExporterStatus::last_error`](crate::ExporterStatus::last_error)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    // === the configuration is wrong (fix keygate.yaml) ===
    /// An exporter's settings are invalid.
    #[error("audit exporter {exporter:?}: {reason}")]
    Config {
        /// The exporter's name (or its position when it has none).
        exporter: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A webhook's secret (or CA) file cannot be read.
    #[error("audit exporter {exporter:?}: cannot read {}: {source}", path.display())]
    File {
        /// The exporter's name.
        exporter: String,
        /// The file named in the config.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    // === the exporter's own state on disk ===
    /// The state directory cannot be created or written.
    #[error("audit export state in {}: {source}", path.display())]
    State {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A cursor file exists but does not parse.
    #[error(
        "audit export cursor {} is unreadable ({reason}); remove it to export the whole log again",
        path.display()
    )]
    Cursor {
        /// The cursor file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The cursor points past the end of the log: the log was replaced.
    #[error(
        "audit export cursor {} is at seq {cursor} but the log ends at {head}: the audit log was replaced or cut short; remove the cursor file to export it from the start",
        path.display()
    )]
    CursorAhead {
        /// The cursor file.
        path: PathBuf,
        /// Its sequence number.
        cursor: u64,
        /// The log's last sequence number.
        head: u64,
    },

    // === the audit log (source) ===
    /// Reading the log failed.
    #[error("reading the audit log: {0}")]
    Audit(#[from] AuditError),

    // === the receiver (peer) ===
    /// No TCP connection to the syslog receiver.
    #[error("cannot connect to syslog receiver {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing to the syslog receiver failed (the connection is dropped
    /// and the batch sent again on a new one).
    #[error("sending to syslog receiver {addr}: {source}")]
    Send {
        /// `host:port`.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The receiver did not answer in time.
    #[error("{what} did not complete within {after:?}")]
    Timeout {
        /// What was attempted.
        what: String,
        /// The limit.
        after: Duration,
    },
    /// The webhook request failed before an answer arrived.
    #[error("webhook {url}: {reason}")]
    Http {
        /// The webhook URL.
        url: String,
        /// The transport error with its causes.
        reason: String,
    },
    /// The webhook answered with a non-2xx status.
    #[error("webhook {url} refused the batch with HTTP {status}: {body}")]
    Rejected {
        /// The webhook URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// Writing to stdout failed.
    #[error("writing audit events to stdout: {0}")]
    Stdout(#[source] std::io::Error),
}

impl ExportError {
    /// A configuration error for `exporter`.
    pub(crate) fn config(exporter: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            exporter: exporter.to_owned(),
            reason: reason.into(),
        }
    }
}
