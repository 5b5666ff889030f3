//! Audit exporters: a copy of every audit event and every signed
//! checkpoint, delivered to a SIEM or log pipeline.
//!
//! Owns: the exporter settings ([`ExporterConfig`]), the runner
//! ([`ExportRunner`]: one task per exporter), the persisted cursors
//! (`<state_dir>/<name>.cursor`, replaced atomically), retry with
//! exponential backoff and jitter, the lag metric ([`ExporterStatus`]),
//! and the wire formats: syslog RFC 5424 over TCP or TLS with RFC 6587
//! octet counting, HTTPS webhook with JSON batches signed by HMAC-SHA256, and
//! stdout JSON lines.
//! Does not own: the log itself, its chain or checkpoint signing
//! (`keygate-audit`, `keygate-audit-model`), or when checkpoints are made.
//!
//! Delivery is at-least-once: the cursor moves only after a batch was
//! delivered, so a failure or crash re-sends the batch under way (and
//! nothing else); after a clean shutdown nothing is sent twice. Receivers
//! can drop duplicates by `seq` (every event carries it). Checkpoints go
//! out right after the last event they cover, so an external copy can be
//! checked with `kgctl audit verify --checkpoints`.
//!
//! Syslog over TCP has no acknowledgement: a batch counts as delivered
//! once written to a connection the receiver had not closed.
#![forbid(unsafe_code)]

mod backoff;
mod batch;
mod config;
mod cursor;
mod error;
mod rfc5424;
mod runner;
mod sink;
mod status;
mod stdout;
mod syslog;
mod tls;
mod webhook;

pub use backoff::Backoff;
pub use config::{
    DEFAULT_WEBHOOK_BATCH, ExporterConfig, ExporterKind, MAX_BATCH, MAX_NAME_LEN, StdoutConfig,
    SyslogConfig, SyslogTls, WebhookConfig, validate_all,
};
pub use error::ExportError;
pub use rfc5424::SD_ID;
pub use runner::ExportRunner;
pub use status::{ExporterStatus, StatusHandle};
pub use webhook::{BATCH_HEADER, SIGNATURE_HEADER};
