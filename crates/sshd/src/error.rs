//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong in the node SSH server, grouped by who is at fault.
///
/// Errors caused by a peer never escape as panics: they end that connection
/// (or that channel) and are reported as [`crate::SshEvent`]s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshdError {
    // === the peer ===
    /// The SSH protocol layer (russh) rejected what the peer sent or failed
    /// to send to it; the connection is closed.
    #[error("ssh protocol error: {0}")]
    Protocol(#[from] russh::Error),

    // === the host ===
    /// The login named in the certificate does not exist on this host.
    #[error(
        "the login {login:?} does not exist on this node; ask an admin to create the OS user or use another login"
    )]
    NoSuchLogin {
        /// The login that was asked for.
        login: String,
    },
    /// This daemon is not root, so it cannot switch to another OS user.
    #[error(
        "this node runs as the unprivileged user {daemon_user:?} and can only open sessions as that user, not as {login:?}; run the node as root to allow other logins"
    )]
    Unprivileged {
        /// The login that was asked for.
        login: String,
        /// The OS user the daemon runs as.
        daemon_user: String,
    },
    /// Looking up an OS user or its groups failed.
    #[error("could not look up the OS user {login:?}: {source}")]
    UserLookup {
        /// The login being looked up.
        login: String,
        /// What the C library said.
        source: nix::Error,
    },
    /// No `sftp-server` binary was found on this host.
    #[error(
        "no sftp-server binary found (looked in {looked:?}); install openssh-sftp-server on the node"
    )]
    NoSftpServer {
        /// The paths tried.
        looked: Vec<PathBuf>,
    },
    /// Starting a process, opening a PTY or another local I/O step failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl SshdError {
    /// An I/O error with a description of what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    /// A `nix` error during a local I/O step.
    pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> Self {
        let what = what.into();
        move |errno| Self::Io {
            what,
            source: std::io::Error::from(errno),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = SshdError> = std::result::Result<T, E>;
