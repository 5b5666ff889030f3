//! The proxy's SSH relay for agentless OpenSSH hosts (ARCHITECTURE.md §6).
//!
//! Owns: terminating a user's SSH connection for one agentless node
//! (presenting a host certificate with the node's names, accepting only a
//! Keygate user certificate for a login among its principals), asking the
//! cluster through [`RelayAuthority`] for the decision and a 1-minute
//! openssh-CA certificate for a fresh key, logging in to the host's sshd
//! with it (after checking the host's certificate against the host CA and
//! the node's names), and relaying session channels (pty, shell, exec,
//! sftp and other subsystems, window changes, signals, exit status) and
//! `ssh -L` when the roles allow; idle timeouts, the certificate's end,
//! terminations (locks) with a message; events for the audit log.
//!
//! Does not own: the decision (auth, behind [`RelayAuthority`]), the
//! transport to the client (the proxy hands over an upgraded stream), the
//! audit log (the proxy turns [`RelayEvent`]s into audit events).
//!
//! Trust boundary: the client and the host are both untrusted peers; the
//! user's certificate is checked here and again by auth; the host must
//! prove it is the node with a host certificate.
#![forbid(unsafe_code)]

mod authority;
mod bridge;
mod conn;
mod error;
mod handler;
mod registry;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use keygate_clock::SharedClock;
use russh::keys::{Certificate, PrivateKey};
use russh::{Disconnect, MethodKind, MethodSet};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

pub use authority::{
    OpenRequest, RelayAuthority, RelayEvent, RelayEvents, RelaySession, UpstreamGrant,
};
pub use error::RelayError;
pub use registry::LiveSession;

use crate::conn::Conn;
use crate::handler::RelayHandler;
use crate::registry::Registry;

/// Every refused authentication takes this long.
const AUTH_REJECTION_TIME: Duration = Duration::from_millis(200);
/// Time allowed to authenticate (both legs).
const AUTH_TIMEOUT: Duration = Duration::from_secs(30);
/// How often idle time, expiry and terminations are checked.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// After the termination message, time for the client to read it.
const MESSAGE_GRACE: Duration = Duration::from_millis(150);
/// Client-side window, as on Keygate nodes.
const WINDOW_SIZE: u32 = 4 * 1024 * 1024;
/// Largest packet accepted.
const MAX_PACKET_SIZE: u32 = 32 * 1024;

/// What every connection shares.
pub(crate) struct Shared {
    /// Decides and certifies.
    pub(crate) authority: Arc<dyn RelayAuthority>,
    /// Receives events.
    pub(crate) events: Arc<dyn RelayEvents>,
    /// Time.
    pub(crate) clock: SharedClock,
    /// Live sessions.
    pub(crate) registry: Registry,
    /// The relay's host key (the certificate names the node).
    host_key: PrivateKey,
    /// Its public half (OpenSSH line).
    host_public: String,
}

/// The relay. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    /// Everything.
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("host_key", &"<redacted>")
            .field("live", &self.shared.registry.list().len())
            .finish()
    }
}

/// A relay connection ready to be served: the host certificate for the
/// node is in hand, so failures before the stream is taken over can still
/// be reported to the client as errors.
pub struct Prepared {
    /// The relay.
    shared: Arc<Shared>,
    /// Node asked for.
    node: String,
    /// russh configuration with the node's host certificate.
    config: Arc<russh::server::Config>,
}

impl Relay {
    /// A relay with a fresh host key.
    pub fn new(
        authority: Arc<dyn RelayAuthority>,
        events: Arc<dyn RelayEvents>,
        clock: SharedClock,
    ) -> Result<Self, RelayError> {
        let host_key = upstream::fresh_key();
        let host_public = host_key.public_key().to_openssh()?;
        Ok(Self {
            shared: Arc::new(Shared {
                authority,
                events,
                clock,
                registry: Registry::default(),
                host_key,
                host_public,
            }),
        })
    }

    /// Gets the host certificate for `node`.
    pub async fn prepare(&self, node: &str) -> Result<Prepared, RelayError> {
        let s = &self.shared;
        let line = s
            .authority
            .host_cert(node, &s.host_public)
            .await
            .map_err(RelayError::Upstream)?;
        let cert = Certificate::from_openssh(&line)
            .map_err(|e| RelayError::Material(format!("relay host certificate: {e}")))?;
        let config = russh::server::Config {
            server_id: russh::SshId::Standard("SSH-2.0-Keygate-Relay".into()),
            methods: MethodSet::from(&[MethodKind::PublicKey][..]),
            auth_rejection_time: AUTH_REJECTION_TIME,
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![s.host_key.clone()],
            certificates: vec![cert],
            window_size: WINDOW_SIZE,
            maximum_packet_size: MAX_PACKET_SIZE,
            max_auth_attempts: 6,
            inactivity_timeout: Some(Duration::from_secs(15 * 60)),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        };
        Ok(Prepared {
            shared: s.clone(),
            node: node.to_owned(),
            config: Arc::new(config),
        })
    }

    /// Live sessions.
    pub fn live(&self) -> Vec<LiveSession> {
        self.shared.registry.list()
    }

    /// Ends a live session with `reason` (shown to the user).
    pub fn terminate(&self, session_id: &str, reason: &str) -> bool {
        self.shared.registry.terminate(session_id, reason)
    }

    /// Ends every live session (shutdown).
    pub fn terminate_all(&self, reason: &str) {
        self.shared.registry.terminate_all(reason);
    }
}

impl Prepared {
    /// Serves one client connection until it ends.
    pub async fn serve<S>(self, stream: S, client: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let conn = Arc::new(Conn::new(self.shared.clone(), &self.node, client));
        let handler = RelayHandler::new(conn.clone());
        let running = match russh::server::run_stream(self.config, stream, handler).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "relay connection failed to start");
                return;
            }
        };
        let _ = conn.handle.set(running.handle());
        let ended = CancellationToken::new();
        let guard = ended.clone().drop_guard();
        tokio::spawn(async move {
            if let Err(e) = running.await {
                tracing::debug!(error = %e, "relay connection ended with an error");
            }
            drop(guard);
        });
        tokio::select! {
            () = ended.cancelled() => {}
            () = conn.authenticated.cancelled() => {}
            () = tokio::time::sleep(AUTH_TIMEOUT) => {}
        }
        if !conn.authenticated.is_cancelled() {
            if let Some(h) = conn.handle.get() {
                let _ = h
                    .disconnect(
                        Disconnect::ByApplication,
                        "authentication timeout".into(),
                        "en".into(),
                    )
                    .await;
            }
            return;
        }
        let reason = supervise(&conn, &ended).await;
        if let Some(up) = conn.upstream.get() {
            let _ = up
                .handle
                .disconnect(Disconnect::ByApplication, "session ended", "en")
                .await;
        }
        if let Some(session) = conn.session() {
            self.shared.registry.remove(&session.session_id);
            conn.emit(RelayEvent::SessionEnd {
                session,
                reason,
                bytes_in: conn.bytes_in.load(std::sync::atomic::Ordering::Relaxed),
                bytes_out: conn.bytes_out.load(std::sync::atomic::Ordering::Relaxed),
            });
        }
    }
}

/// Watches a live session until it ends; returns why.
async fn supervise(conn: &Arc<Conn>, ended: &CancellationToken) -> String {
    let idle = conn.idle_timeout.get().copied().flatten();
    let disconnect_at = conn.disconnect_at.get().copied().flatten();
    let gone = conn
        .upstream
        .get()
        .map(|u| u.gone.clone())
        .unwrap_or_default();
    loop {
        tokio::select! {
            () = ended.cancelled() => return "client closed the connection".into(),
            () = gone.cancelled() => {
                end_client(conn, "the host closed the connection").await;
                return "host closed the connection".into();
            }
            () = conn.kill.cancelled() => {
                let why = conn
                    .kill_reason
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
                    .unwrap_or_else(|| "terminated".into());
                end_client(conn, &format!("session terminated: {why}")).await;
                return format!("terminated: {why}");
            }
            () = tokio::time::sleep(WATCH_INTERVAL) => {}
        }
        if let Some(limit) = idle {
            let now = conn.relay.clock.monotonic().as_millis();
            let last = u128::from(
                conn.last_activity_ms
                    .load(std::sync::atomic::Ordering::Relaxed),
            );
            if now.saturating_sub(last) >= limit.as_millis() {
                end_client(conn, "session closed after being idle").await;
                return "idle timeout".into();
            }
        }
        if disconnect_at.is_some_and(|t| conn.relay.clock.now() >= t) {
            end_client(conn, "your certificate expired: run kg login").await;
            return "certificate expired".into();
        }
    }
}

/// Tells the user why, then disconnects.
async fn end_client(conn: &Conn, message: &str) {
    let Some(h) = conn.handle.get() else {
        return;
    };
    for id in conn.channels() {
        let _ = h
            .extended_data(id, 1, format!("\r\nkeygate: {message}\r\n").into_bytes())
            .await;
    }
    tokio::time::sleep(MESSAGE_GRACE).await;
    let _ = h
        .disconnect(
            Disconnect::ByApplication,
            format!("keygate: {message}"),
            "en".into(),
        )
        .await;
}
