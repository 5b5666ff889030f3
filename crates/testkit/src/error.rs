//! The one error type of the test kit.

use std::path::PathBuf;

/// Result alias for the test kit.
pub type Result<T, E = TestkitError> = std::result::Result<T, E>;

/// Why a launcher or helper failed. Messages say what the test machine
/// needs, because the usual cause is a missing package or privilege.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    // === the test machine lacks something ===
    /// A helper that changes the system (accounts, `/run/sshd`) needs root.
    #[error(
        "{what} needs root, but the tests run as uid {uid}: run them as root (e.g. in the CI container)"
    )]
    NotRoot {
        /// What was attempted.
        what: &'static str,
        /// The effective uid we run as.
        uid: u32,
    },
    /// `/usr/sbin/sshd` is absent.
    #[error("OpenSSH server not installed: run apt-get install -y openssh-server")]
    SshdMissing,
    /// Another required program is absent.
    #[error("{} not found: run apt-get install -y {package}", path.display())]
    ToolMissing {
        /// Where we looked.
        path: PathBuf,
        /// The Debian package that provides it.
        package: &'static str,
    },

    // === a program we ran failed ===
    /// A helper command exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line, for copy-and-paste.
        command: String,
        /// Exit status as printed by std.
        status: String,
        /// What it wrote to stderr (trimmed).
        stderr: String,
    },
    /// `sshd` exited or never listened.
    #[error("sshd did not start: {reason}\n--- end of sshd log ---\n{log_tail}")]
    SshdStart {
        /// What went wrong.
        reason: String,
        /// The last lines sshd wrote.
        log_tail: String,
    },

    // === bad input to a helper ===
    /// `ssh-keygen -L` output we cannot read.
    #[error("cannot read ssh-keygen -L output: {reason}")]
    Listing {
        /// What was missing or malformed.
        reason: String,
    },
    /// An OS user name outside what the kit is allowed to create/delete.
    #[error("refusing OS user name {name:?}: {reason}")]
    BadUserName {
        /// The offending name.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    // === plain I/O ===
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl TestkitError {
    /// Wraps an I/O error with what we were doing.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
