//! What the server reports: audit-worthy events, the recording tap and
//! counters.
//!
//! The node service turns [`SshEvent`]s into audit events and feeds the
//! [`SessionEvents::output`]/[`SessionEvents::resize`] tap into the session
//! recorder. This crate never writes audit records or recordings itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Who is acting in a session: taken from the verified certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIdentity {
    /// The session id (one per SSH connection), also in `KEYGATE_SESSION_ID`.
    pub session_id: String,
    /// The Keygate user (the certificate's key id).
    pub user: String,
    /// The OS login.
    pub login: String,
    /// The node's name.
    pub node: String,
    /// The client's address.
    pub remote: SocketAddr,
}

/// Why a connection ended, as far as the server knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The client closed the connection (or it broke).
    ClientClosed,
    /// [`crate::SessionRegistry::terminate_where`] ended it (locks, admin).
    Terminated {
        /// The message shown to the client.
        message: String,
    },
    /// No client activity for the grant's idle timeout.
    IdleTimeout,
    /// The login certificate expired (`disconnect_expired_cert`).
    CertificateExpired,
    /// The server is shutting down.
    Shutdown,
}

/// An event worth auditing. Never carries key material or secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SshEvent {
    /// A connection was closed before authentication because the server was
    /// at its limit of unauthenticated connections (`evicted` = an older
    /// idle connection was closed to make room for a newer one).
    ConnectionRefused {
        /// The client's address.
        remote: SocketAddr,
        /// Why, in words.
        reason: String,
        /// Whether this was an idle connection evicted for a newer one.
        evicted: bool,
    },
    /// A connection ended before any login attempt: not SSH, a protocol
    /// error, or closed at once (port scans).
    ConnectionFailed {
        /// The client's address.
        remote: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// An authentication attempt (or a whole unauthenticated connection)
    /// failed.
    AuthFailed {
        /// The client's address.
        remote: SocketAddr,
        /// The certificate's key id, when a certificate got far enough to be
        /// read (it is only trusted once verified).
        user: Option<String>,
        /// The login the client asked for.
        login: String,
        /// Why it was refused.
        reason: String,
    },
    /// A session (an authenticated connection) started.
    SessionStart {
        /// Who.
        identity: SessionIdentity,
        /// The certificate's serial.
        serial: u64,
        /// Roles from the certificate's `roles@keygate` extension.
        roles: Vec<String>,
    },
    /// A session ended.
    SessionEnd {
        /// Who.
        identity: SessionIdentity,
        /// How long it lasted.
        duration: Duration,
        /// Bytes received from the client on the wire.
        bytes_in: u64,
        /// Bytes sent to the client on the wire.
        bytes_out: u64,
        /// Why it ended.
        reason: EndReason,
    },
    /// An interactive shell started (with or without a PTY).
    Shell {
        /// Who.
        identity: SessionIdentity,
        /// Whether a PTY was allocated.
        tty: bool,
    },
    /// A command (`exec` request) finished, or failed to start.
    Exec {
        /// Who.
        identity: SessionIdentity,
        /// The command line as sent by the client (lossily UTF-8).
        command: String,
        /// Exit code, if it exited normally.
        exit_code: Option<i32>,
        /// Signal name, if a signal ended it.
        signal: Option<String>,
        /// Why it could not be started, if it could not.
        error: Option<String>,
    },
    /// An sftp subsystem (modern `scp` and `sftp`) finished.
    Sftp {
        /// Who.
        identity: SessionIdentity,
        /// Bytes the client sent into the subsystem.
        bytes_in: u64,
        /// Bytes the subsystem sent to the client.
        bytes_out: u64,
        /// Exit code of `sftp-server`, if it exited normally.
        exit_code: Option<i32>,
        /// Why it could not be started, if it could not.
        error: Option<String>,
    },
    /// A local port forwarding (`direct-tcpip`) channel was asked for.
    PortForward {
        /// Who.
        identity: SessionIdentity,
        /// Destination host.
        host: String,
        /// Destination port.
        port: u32,
        /// Whether it was allowed (and connected).
        allowed: bool,
        /// Why not, if not.
        reason: Option<String>,
    },
    /// Agent forwarding was asked for.
    AgentForward {
        /// Who.
        identity: SessionIdentity,
        /// Whether it was allowed.
        allowed: bool,
        /// Why not, if not.
        reason: Option<String>,
    },
    /// Another channel or request was refused (X11, remote forwarding,
    /// PTY without `permit-pty`, unknown subsystem…).
    RequestDenied {
        /// Who.
        identity: SessionIdentity,
        /// The request type (`x11-req`, `tcpip-forward`, `subsystem foo`…).
        request: String,
        /// Why.
        reason: String,
    },
}

/// Receives everything worth auditing or recording. Implementations must be
/// quick and must not block: they run on the connection's tasks.
pub trait SessionEvents: Send + Sync + 'static {
    /// An audit-worthy event.
    fn event(&self, ev: SshEvent);

    /// Output of a PTY or a command (stdout and stderr) of `session_id`, for
    /// session recording. Called before the bytes are sent to the client.
    fn output(&self, _session_id: &str, _data: &[u8]) {}

    /// The PTY of `session_id` was resized (at allocation and on every
    /// `window-change`), for session recording.
    fn resize(&self, _session_id: &str, _cols: u32, _rows: u32) {}
}

/// The live counters behind [`StatsSnapshot`] (same meanings).
#[derive(Debug, Default)]
pub(crate) struct ServerStats {
    /// Connections handed to the server.
    pub connections: AtomicU64,
    /// Connections closed at once because the unauthenticated limit was hit.
    pub connections_refused: AtomicU64,
    /// Idle unauthenticated connections closed to make room for new ones.
    pub connections_evicted: AtomicU64,
    /// Connections that did not authenticate within `auth_timeout`.
    pub auth_timeouts: AtomicU64,
    /// Connections that ended in an SSH protocol error before a login
    /// attempt.
    pub protocol_errors: AtomicU64,
    /// Refused authentication attempts.
    pub auth_failures: AtomicU64,
    /// Sessions that started.
    pub sessions_started: AtomicU64,
    /// Sessions ended by `terminate_where`, idle timeout or cert expiry.
    pub sessions_terminated: AtomicU64,
}

/// The server's counters at one moment (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Connections handed to the server.
    pub connections: u64,
    /// Connections closed at once because the unauthenticated limit was hit.
    pub connections_refused: u64,
    /// Idle unauthenticated connections closed to make room for new ones.
    pub connections_evicted: u64,
    /// Connections that did not authenticate within `auth_timeout`.
    pub auth_timeouts: u64,
    /// Connections that ended in an SSH protocol error before a login
    /// attempt (garbage, malformed packets).
    pub protocol_errors: u64,
    /// Refused authentication attempts.
    pub auth_failures: u64,
    /// Sessions that started.
    pub sessions_started: u64,
    /// Sessions ended by `terminate_where`, idle timeout, certificate
    /// expiry or shutdown.
    pub sessions_terminated: u64,
}

impl ServerStats {
    /// Adds one to a counter.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            connections: get(&self.connections),
            connections_refused: get(&self.connections_refused),
            connections_evicted: get(&self.connections_evicted),
            auth_timeouts: get(&self.auth_timeouts),
            protocol_errors: get(&self.protocol_errors),
            auth_failures: get(&self.auth_failures),
            sessions_started: get(&self.sessions_started),
            sessions_terminated: get(&self.sessions_terminated),
        }
    }
}
