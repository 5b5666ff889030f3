//! The one error type of the benchmark crate.

use thiserror::Error;

/// Why a benchmark could not run. A goal that is not met is *not* an
/// error: it is reported in the table.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Preparing keys, temp dirs or the in-process cluster failed.
    #[error("benchmark setup failed: {0}")]
    Setup(String),
    /// A signing or issuing call under measurement failed; the number
    /// would be meaningless, so the run stops.
    #[error("operation under measurement failed: {0}")]
    Operation(String),
    /// `ssh-keygen` could not be run or refused to sign.
    #[error("ssh-keygen failed: {0}; install openssh-client (Debian: apt install openssh-client)")]
    SshKeygen(String),
    /// An API call against the in-process cluster failed.
    #[error("API call failed: {0}")]
    Api(String),
    /// A measuring task died.
    #[error("benchmark task failed: {0}")]
    Task(String),
}

impl BenchError {
    /// A setup failure with what was being done.
    pub(crate) fn setup(what: &str, e: impl std::fmt::Display) -> Self {
        Self::Setup(format!("{what}: {e}"))
    }

    /// A failure of the measured operation.
    pub(crate) fn op(what: &str, e: impl std::fmt::Display) -> Self {
        Self::Operation(format!("{what}: {e}"))
    }
}
