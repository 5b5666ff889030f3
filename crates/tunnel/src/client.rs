//! Node side: dial the proxy, keep the tunnel up, serve the streams the
//! proxy opens.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use keygate_clock::{OffsetDateTime, SharedClock, SystemClock};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::compat::TokioAsyncReadCompatExt;
use tokio_util::sync::CancellationToken;

use crate::identity::{leaf, require_proxy_cert};
use crate::{Backoff, Keepalive, TUNNEL_ALPN, TunnelError, TunnelStream, keepalive, mux};

/// Giving up on a TCP connect after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Giving up on a TLS handshake after this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A tunnel that stayed up this long resets the backoff: the next failure
/// is treated as a fresh one, not as more of the same outage.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Most streams the proxy may hold open at once. Above the proxy's own
/// ceiling (twice `MAX_STREAMS_PER_TUNNEL_CEILING` plus headroom), since
/// yamux kills the whole session when a peer exceeds this.
const MAX_STREAMS: usize = 4096;

/// Whether a node's tunnel is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelState {
    /// The proxy accepted the tunnel and answers keepalives.
    Connected {
        /// When the proxy first answered.
        since: OffsetDateTime,
    },
    /// No working tunnel (not yet connected, or lost and retrying).
    Disconnected {
        /// When the tunnel was lost (or the client was created).
        since: OffsetDateTime,
        /// Why the last attempt failed, if one did.
        last_error: Option<String>,
    },
}

impl TunnelState {
    /// True when connected.
    pub fn is_connected(&self) -> bool {
        matches!(self, Self::Connected { .. })
    }
}

/// The node's end of the reverse tunnel.
pub struct TunnelClient {
    /// `host:port` of the proxy's tunnel listener.
    proxy_addr: String,
    /// The name the proxy's certificate must carry.
    server_name: String,
    /// Trusts the host CA, presents the node certificate; ALPN set to ours.
    tls: Arc<ClientConfig>,
    /// Delays between attempts.
    backoff: Backoff,
    /// Ping interval and timeout (must match the proxy's).
    keepalive: Keepalive,
    /// Timestamps for the state, and the monotonic time that decides
    /// whether a tunnel was stable.
    clock: SharedClock,
    /// Current state, for [`Self::state`].
    state: watch::Sender<TunnelState>,
}

impl fmt::Debug for TunnelClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The TLS config holds the node's private key: leave it out.
        f.debug_struct("TunnelClient")
            .field("proxy_addr", &self.proxy_addr)
            .field("server_name", &self.server_name)
            .field("backoff", &self.backoff)
            .field("keepalive", &self.keepalive)
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl TunnelClient {
    /// A client for the proxy at `proxy_addr` (`host:port`) whose
    /// certificate must be valid for `server_name`. `tls` must trust the
    /// host CA and present the node's certificate (system role `node`); its
    /// ALPN list is replaced by [`TUNNEL_ALPN`].
    pub fn new(
        proxy_addr: String,
        server_name: String,
        tls: Arc<ClientConfig>,
        backoff: Backoff,
    ) -> Self {
        let mut cfg = ClientConfig::clone(&tls);
        cfg.alpn_protocols = vec![TUNNEL_ALPN.to_vec()];
        let clock = SystemClock::shared();
        let (state, _) = watch::channel(TunnelState::Disconnected {
            since: clock.now(),
            last_error: None,
        });
        Self {
            proxy_addr,
            server_name,
            tls: Arc::new(cfg),
            backoff,
            keepalive: Keepalive::default(),
            clock,
            state,
        }
    }

    /// Uses `keepalive` instead of the default (it must match the proxy's).
    pub fn with_keepalive(mut self, keepalive: Keepalive) -> Self {
        self.keepalive = keepalive;
        self
    }

    /// Uses `clock` for state timestamps and stability checks.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.state.send_replace(TunnelState::Disconnected {
            since: clock.now(),
            last_error: None,
        });
        self.clock = clock;
        self
    }

    /// Follows the connection state.
    pub fn state(&self) -> watch::Receiver<TunnelState> {
        self.state.subscribe()
    }

    /// Connects, serves, and reconnects (exponential backoff with full
    /// jitter, reset after a stable tunnel) until `shutdown`. Every stream
    /// the proxy opens is passed to `on_stream` in a task of its own.
    pub async fn run<F, Fut>(&self, on_stream: F, shutdown: CancellationToken)
    where
        F: Fn(TunnelStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_stream = Arc::new(on_stream);
        let mut attempt: u32 = 0;
        while !shutdown.is_cancelled() {
            let mut connected_at = None;
            let result = self.session(&on_stream, &shutdown, &mut connected_at).await;
            if shutdown.is_cancelled() {
                break;
            }
            let err = result.err().unwrap_or(TunnelError::Closed);
            let stable = connected_at
                .is_some_and(|t| self.clock.monotonic().saturating_sub(t) >= STABLE_AFTER);
            if stable {
                attempt = 0;
            }
            tracing::warn!(proxy = %self.proxy_addr, "reverse tunnel down: {err}");
            self.set_disconnected(Some(err.to_string()));
            let delay = self.backoff.delay(attempt, rand::random());
            attempt = attempt.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => break,
            }
        }
        self.set_disconnected(None);
    }

    // === internals ===

    /// One tunnel, from connect to its end. `connected_at` is set (monotonic)
    /// when the proxy first answers a keepalive. `Ok` means an orderly end.
    async fn session<F, Fut>(
        &self,
        on_stream: &Arc<F>,
        shutdown: &CancellationToken,
        connected_at: &mut Option<Duration>,
    ) -> Result<(), TunnelError>
    where
        F: Fn(TunnelStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let tls = tokio::select! {
            r = self.connect() => r?,
            () = shutdown.cancelled() => return Ok(()),
        };
        let stop = shutdown.child_token();
        let conn =
            yamux::Connection::new(tls.compat(), mux::config(MAX_STREAMS), yamux::Mode::Client);
        let (opener, requests) = mux::opener();
        let handler = Arc::clone(on_stream);
        let on_inbound = move |s: yamux::Stream| {
            let handler = Arc::clone(&handler);
            tokio::spawn(async move { handler(TunnelStream::new(s, None)).await });
        };
        let drive = async {
            let r = mux::drive(conn, requests, on_inbound, stop.clone()).await;
            stop.cancel();
            r
        };
        let keep = async {
            let ping = async {
                let control = match opener.open().await {
                    Ok(s) => s,
                    Err(e) => return e,
                };
                drop(opener);
                keepalive::ping(control, self.keepalive, || {
                    if connected_at.is_none() {
                        *connected_at = Some(self.clock.monotonic());
                        tracing::info!(proxy = %self.proxy_addr, "reverse tunnel up");
                        self.state.send_replace(TunnelState::Connected {
                            since: self.clock.now(),
                        });
                    }
                })
                .await
            };
            let e = tokio::select! {
                e = ping => Some(e),
                () = stop.cancelled() => None,
            };
            stop.cancel();
            e
        };
        let (driven, kept) = tokio::join!(drive, keep);
        mux::outcome(driven, kept)
    }

    /// TCP + TLS to the proxy, checking that it is a proxy speaking our ALPN.
    async fn connect(&self) -> Result<TlsStream<TcpStream>, TunnelError> {
        let name = ServerName::try_from(self.server_name.clone())
            .map_err(|_| TunnelError::ServerName(self.server_name.clone()))?;
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.proxy_addr))
            .await
            .map_err(|_| TunnelError::Timeout {
                what: "connecting to the proxy",
                after: CONNECT_TIMEOUT,
            })?
            .map_err(|source| TunnelError::Connect {
                addr: self.proxy_addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let connector = TlsConnector::from(Arc::clone(&self.tls));
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| TunnelError::Timeout {
                what: "the TLS handshake with the proxy",
                after: HANDSHAKE_TIMEOUT,
            })?
            .map_err(|source| TunnelError::Tls {
                addr: self.proxy_addr.clone(),
                source,
            })?;
        let session = tls.get_ref().1;
        if session.alpn_protocol() != Some(TUNNEL_ALPN) {
            return Err(TunnelError::Protocol(format!(
                "{} does not speak the tunnel protocol (no ALPN {}); is this the proxy's tunnel address?",
                self.proxy_addr,
                String::from_utf8_lossy(TUNNEL_ALPN)
            )));
        }
        require_proxy_cert(leaf(session.peer_certificates())?)?;
        Ok(tls)
    }

    fn set_disconnected(&self, last_error: Option<String>) {
        let now = self.clock.now();
        self.state.send_modify(|s| {
            let since = match s {
                TunnelState::Disconnected { since, .. } => *since,
                TunnelState::Connected { .. } => now,
            };
            *s = TunnelState::Disconnected { since, last_error };
        });
    }
}
