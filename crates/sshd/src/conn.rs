//! State shared by one connection's russh handler, its supervisor and its
//! channel tasks.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use keygate_ca::VerifiedSshCert;
use russh::ChannelId;
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::auth::{LoginUser, SessionGrant};
use crate::events::{ServerStats, SessionIdentity, SshEvent};
use crate::registry::Termination;
use crate::server::Shared;
use crate::stream::WireCounters;

/// One connection.
pub(crate) struct Conn {
    /// The server it belongs to.
    pub server: Arc<Shared>,
    /// Session id (UUID v4), fixed at accept time.
    pub id: String,
    /// The client's address.
    pub remote: SocketAddr,
    /// Our address, when known (for `SSH_CONNECTION`).
    pub local: Option<SocketAddr>,
    /// Wire byte counts.
    pub counters: Arc<WireCounters>,
    /// Hard close of the transport.
    pub kill: CancellationToken,
    /// Graceful end (message, hang-up, disconnect) requested.
    pub termination: Termination,
    /// Cancelled once the connection is over: channel tasks hang up their
    /// processes, forwarders stop.
    pub closed: CancellationToken,
    /// Cancelled once authenticated.
    pub authenticated: CancellationToken,
    /// Set once authenticated.
    pub session: OnceLock<Arc<Authenticated>>,
    /// russh's handle, set right after the SSH version exchange.
    pub handle: OnceLock<russh::server::Handle>,
    /// Monotonic milliseconds of the last client activity.
    last_activity_ms: AtomicU64,
    /// The login of the last authentication attempt (for audit of
    /// connections that never got to a certificate check).
    pub attempted_login: Mutex<Option<String>>,
    /// Whether a certificate reached our checks (then its refusal was
    /// already audited with a precise reason).
    pub cert_checked: AtomicBool,
    /// Open session channels, to show a termination message on.
    pub open_channels: Mutex<BTreeSet<ChannelId>>,
    /// The `max_sessions` slot, held while authenticated.
    pub session_permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// The forwarded agent's socket, once agent forwarding was set up.
    pub agent_socket: Mutex<Option<PathBuf>>,
    /// Why the SSH layer ended the connection, if it failed.
    pub transport_error: Mutex<Option<String>>,
}

/// What an authenticated connection is allowed to be.
#[derive(Debug)]
pub(crate) struct Authenticated {
    /// Who, for events.
    pub identity: SessionIdentity,
    /// The verified login certificate.
    pub cert: VerifiedSshCert,
    /// Roles from the certificate.
    pub roles: Vec<String>,
    /// The OS account.
    pub user: LoginUser,
    /// What the authorizer allowed.
    pub grant: SessionGrant,
    /// Wall time of authentication.
    pub started: OffsetDateTime,
    /// Monotonic time of authentication.
    pub started_mono: Duration,
}

impl Conn {
    /// A new connection's state.
    pub(crate) fn new(
        server: Arc<Shared>,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        counters: Arc<WireCounters>,
        kill: CancellationToken,
    ) -> Self {
        let accepted = server.clock.monotonic();
        Self {
            server,
            id: uuid::Uuid::new_v4().to_string(),
            remote,
            local,
            counters,
            kill,
            termination: Termination::default(),
            closed: CancellationToken::new(),
            authenticated: CancellationToken::new(),
            session: OnceLock::new(),
            handle: OnceLock::new(),
            last_activity_ms: AtomicU64::new(millis(accepted)),
            attempted_login: Mutex::new(None),
            cert_checked: AtomicBool::new(false),
            open_channels: Mutex::new(BTreeSet::new()),
            session_permit: Mutex::new(None),
            agent_socket: Mutex::new(None),
            transport_error: Mutex::new(None),
        }
    }

    /// Notes client activity (for the idle timeout).
    pub(crate) fn touch(&self) {
        let now = millis(self.server.clock.monotonic());
        self.last_activity_ms.store(now, Ordering::Relaxed);
    }

    /// How long the client has been idle.
    pub(crate) fn idle_for(&self) -> Duration {
        let now = millis(self.server.clock.monotonic());
        Duration::from_millis(now.saturating_sub(self.last_activity_ms.load(Ordering::Relaxed)))
    }

    /// Remembers why the SSH layer gave up on this connection.
    pub(crate) fn note_transport_error(&self, e: &crate::error::SshdError) {
        Self::lock(&self.transport_error).get_or_insert_with(|| e.to_string());
    }

    /// Reports an event.
    pub(crate) fn emit(&self, ev: SshEvent) {
        self.server.events.event(ev);
    }

    /// The server's counters.
    pub(crate) fn stats(&self) -> &ServerStats {
        &self.server.stats
    }

    /// Locks a mutex of this connection, shrugging off poisoning (the data
    /// are plain values that stay consistent).
    pub(crate) fn lock<'a, T>(m: &'a Mutex<T>) -> std::sync::MutexGuard<'a, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
