//! State shared by the handler, the pumps and the supervisor of one
//! relayed connection.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use russh::ChannelId;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::authority::{RelayEvent, RelaySession};
use crate::upstream::Upstream;

/// One client connection.
pub(crate) struct Conn {
    /// The relay.
    pub(crate) relay: Arc<Shared>,
    /// Node name or id the client asked for.
    pub(crate) node: String,
    /// Client address.
    pub(crate) client: SocketAddr,
    /// Set once both legs authenticated.
    pub(crate) session: OnceLock<RelaySession>,
    /// The host leg, once authenticated.
    pub(crate) upstream: OnceLock<Arc<Upstream>>,
    /// Our side of the client connection.
    pub(crate) handle: OnceLock<russh::server::Handle>,
    /// Cancelled once authenticated.
    pub(crate) authenticated: CancellationToken,
    /// Cancelled to end the session (lock, admin, shutdown).
    pub(crate) kill: CancellationToken,
    /// Why it was ended.
    pub(crate) kill_reason: Arc<Mutex<Option<String>>>,
    /// Monotonic milliseconds of the last client or host activity.
    pub(crate) last_activity_ms: AtomicU64,
    /// Bytes client → host.
    pub(crate) bytes_in: AtomicU64,
    /// Bytes host → client.
    pub(crate) bytes_out: AtomicU64,
    /// Open session channels (to tell users why their session ends).
    pub(crate) open_channels: Mutex<BTreeSet<ChannelId>>,
    /// Idle timeout from the grant.
    pub(crate) idle_timeout: OnceLock<Option<std::time::Duration>>,
    /// Hard end from the grant.
    pub(crate) disconnect_at: OnceLock<Option<time::OffsetDateTime>>,
}

impl Conn {
    pub(crate) fn new(relay: Arc<Shared>, node: &str, client: SocketAddr) -> Self {
        let now = relay.clock.monotonic().as_millis();
        Self {
            relay,
            node: node.to_owned(),
            client,
            session: OnceLock::new(),
            upstream: OnceLock::new(),
            handle: OnceLock::new(),
            authenticated: CancellationToken::new(),
            kill: CancellationToken::new(),
            kill_reason: Arc::default(),
            last_activity_ms: AtomicU64::new(u64::try_from(now).unwrap_or(u64::MAX)),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            open_channels: Mutex::default(),
            idle_timeout: OnceLock::new(),
            disconnect_at: OnceLock::new(),
        }
    }

    /// Notes activity now (idle timeout).
    pub(crate) fn touch(&self) {
        let now = u64::try_from(self.relay.clock.monotonic().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(now, Ordering::Relaxed);
    }

    /// The session, once authenticated.
    pub(crate) fn session(&self) -> Option<RelaySession> {
        self.session.get().cloned()
    }

    /// Sends an event.
    pub(crate) fn emit(&self, ev: RelayEvent) {
        self.relay.events.event(ev);
    }

    /// Audits a refused request.
    pub(crate) fn refused(&self, request: &str, reason: &str) {
        self.emit(RelayEvent::Refused {
            session: self.session(),
            client: self.client,
            request: request.to_owned(),
            reason: reason.to_owned(),
        });
    }

    /// Channels open now.
    pub(crate) fn channels(&self) -> Vec<ChannelId> {
        self.open_channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Tracks a channel.
    pub(crate) fn channel_opened(&self, id: ChannelId) {
        self.open_channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id);
    }

    /// Forgets a channel.
    pub(crate) fn channel_closed(&self, id: ChannelId) {
        self.open_channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}
