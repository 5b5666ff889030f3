//! Proxy side: accepting node tunnels and opening streams to nodes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::compat::TokioAsyncReadCompatExt;
use tokio_util::sync::CancellationToken;

use crate::identity::{leaf, node_id_from_cert};
use crate::mux::{self, Opener};
use crate::{Keepalive, Limits, TUNNEL_ALPN, TunnelError, TunnelStream, keepalive};

/// A node that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections allowed beyond `max_tunnels` while handshaking, so that a
/// node reconnecting before its dead tunnel is noticed still gets in.
const HANDSHAKE_SLACK: usize = 64;
/// How long tunnels get to close after `serve` is told to stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The proxy's end of the reverse tunnels: a registry of live tunnels,
/// keyed by the node id from each node's certificate. Cheap to clone (all
/// clones share the registry).
#[derive(Debug, Clone)]
pub struct TunnelServer {
    /// Bounds on tunnels and streams.
    limits: Limits,
    /// Keepalive settings (must match the nodes').
    keepalive: Keepalive,
    /// State shared by all clones.
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Live tunnels by node id.
    tunnels: Mutex<HashMap<String, Entry>>,
    /// The sorted node ids of `tunnels`, republished on every change.
    connected: watch::Sender<Vec<String>>,
    /// Tells a tunnel apart from the one that replaced it.
    next_generation: AtomicU64,
    /// Parent of every tunnel's stop token: [`TunnelServer::shutdown`].
    root: CancellationToken,
}

/// One live tunnel in the registry.
#[derive(Debug)]
struct Entry {
    /// Which registration this is (a reconnect gets a new one).
    generation: u64,
    /// Opens streams on this tunnel.
    opener: Opener,
    /// Permits for the per-tunnel stream limit.
    streams: Arc<Semaphore>,
    /// Closes this tunnel (when replaced).
    stop: CancellationToken,
}

impl TunnelServer {
    /// A server with no tunnels yet.
    pub fn new(limits: Limits) -> Self {
        let (connected, _) = watch::channel(Vec::new());
        Self {
            limits,
            keepalive: Keepalive::default(),
            shared: Arc::new(Shared {
                tunnels: Mutex::new(HashMap::new()),
                connected,
                next_generation: AtomicU64::new(0),
                root: CancellationToken::new(),
            }),
        }
    }

    /// Uses `keepalive` instead of the default (it must match the nodes').
    pub fn with_keepalive(mut self, keepalive: Keepalive) -> Self {
        self.keepalive = keepalive;
        self
    }

    /// Accepts node tunnels on `listener` until `shutdown` is cancelled,
    /// then closes the tunnels it accepted. `tls` must require client
    /// certificates chaining to the host CA; its ALPN list is replaced by
    /// [`TUNNEL_ALPN`]. Only certificates with system role `node` are
    /// accepted, and each tunnel is registered under the certificate's
    /// common name (bound by auth at join, never chosen by the node). A
    /// second tunnel for the same node replaces the first.
    pub async fn serve(
        &self,
        listener: TcpListener,
        tls: Arc<ServerConfig>,
        shutdown: CancellationToken,
    ) {
        let mut cfg = ServerConfig::clone(&tls);
        cfg.alpn_protocols = vec![TUNNEL_ALPN.to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(cfg));
        let conns = Arc::new(Semaphore::new(
            self.limits.tunnels().saturating_add(HANDSHAKE_SLACK),
        ));
        let stop = self.shared.root.child_token();
        let mut tasks = JoinSet::new();
        loop {
            let (tcp, remote) = tokio::select! {
                () = shutdown.cancelled() => break,
                () = stop.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!("tunnel accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            while tasks.try_join_next().is_some() {}
            let Ok(permit) = conns.clone().try_acquire_owned() else {
                tracing::warn!(%remote, "tunnel connection limit reached; dropping");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let this = self.clone();
            let acceptor = acceptor.clone();
            let stop = stop.clone();
            tasks.spawn(async move {
                let _permit = permit;
                this.accept_one(acceptor, tcp, remote, stop).await;
            });
        }
        stop.cancel();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("some tunnels were still open after {DRAIN_TIMEOUT:?}; dropping them");
        }
    }

    /// Serves one tunnel over an already-accepted (and authenticated)
    /// stream for `node_id`, until it closes or [`Self::shutdown`]. For
    /// callers that terminate TLS themselves (a shared port routed by ALPN);
    /// they must have checked the certificate with
    /// [`crate::node_id_from_cert`].
    pub async fn handle_connection<S>(&self, stream: S, node_id: String)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let root = self.shared.root.clone();
        self.run_logged(stream, node_id, &root).await;
    }

    /// Opens a new stream to `node_id` over its tunnel.
    pub async fn dial(&self, node_id: &str) -> Result<TunnelStream, TunnelError> {
        let (opener, streams) = {
            let map = self.shared.lock();
            let entry = map
                .get(node_id)
                .ok_or_else(|| TunnelError::NotConnected(node_id.to_owned()))?;
            (entry.opener.clone(), entry.streams.clone())
        };
        let permit = streams
            .try_acquire_owned()
            .map_err(|_| TunnelError::TooManyStreams {
                node_id: node_id.to_owned(),
                limit: self.limits.streams(),
            })?;
        let stream = opener.open().await?;
        Ok(TunnelStream::new(stream, Some(permit)))
    }

    /// Node ids with a live tunnel, sorted.
    pub fn connected(&self) -> Vec<String> {
        self.shared.connected.borrow().clone()
    }

    /// Follows changes of the connected set (sorted node ids).
    pub fn subscribe(&self) -> watch::Receiver<Vec<String>> {
        self.shared.connected.subscribe()
    }

    /// Closes every tunnel (served or handed in), ends every `serve`, and
    /// refuses tunnels from now on.
    pub fn shutdown(&self) {
        self.shared.root.cancel();
    }

    // === internals ===

    async fn accept_one(
        &self,
        acceptor: TlsAcceptor,
        tcp: TcpStream,
        remote: SocketAddr,
        stop: CancellationToken,
    ) {
        let handshake = tokio::select! {
            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => r,
            () = stop.cancelled() => return,
        };
        let tls = match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::info!(%remote, "tunnel TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                tracing::info!(%remote, "tunnel TLS handshake timed out");
                return;
            }
        };
        let node_id = match leaf(tls.get_ref().1.peer_certificates()).and_then(node_id_from_cert) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(%remote, "refusing tunnel: {e}");
                return;
            }
        };
        tracing::info!(%remote, node = %node_id, "node tunnel connected");
        self.run_logged(tls, node_id, &stop).await;
    }

    async fn run_logged<S>(&self, io: S, node_id: String, parent: &CancellationToken)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        match self.run_tunnel(io, &node_id, parent).await {
            Ok(()) => tracing::info!(node = %node_id, "node tunnel closed"),
            Err(e) => tracing::warn!(node = %node_id, "node tunnel ended: {e}"),
        }
    }

    async fn run_tunnel<S>(
        &self,
        io: S,
        node_id: &str,
        parent: &CancellationToken,
    ) -> Result<(), TunnelError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if parent.is_cancelled() {
            return Err(TunnelError::Closed);
        }
        let stop = parent.child_token();
        let (opener, requests) = mux::opener();
        let limit = self.limits.streams();
        let generation = self.shared.next_generation.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            generation,
            opener,
            streams: Arc::new(Semaphore::new(limit)),
            stop: stop.clone(),
        };
        self.shared
            .register(node_id, entry, self.limits.tunnels())?;
        // Removes the entry however this future ends (even if dropped).
        let _registered = Registered {
            shared: &self.shared,
            node_id,
            generation,
        };

        // yamux forgets a dropped stream a little after our permit returns,
        // and refusing a stream there would kill the whole session: give it
        // headroom above our own limit (plus the keepalive stream).
        let yamux_streams = limit.saturating_mul(2).saturating_add(8);
        let conn =
            yamux::Connection::new(io.compat(), mux::config(yamux_streams), yamux::Mode::Server);
        let (control_tx, control_rx) = oneshot::channel();
        let mut control_tx = Some(control_tx);
        let on_inbound = move |s: yamux::Stream| match control_tx.take() {
            Some(tx) => {
                let _ = tx.send(s);
            }
            // Only the proxy opens streams; dropping resets the node's extra ones.
            None => tracing::debug!("node opened an unexpected stream; resetting it"),
        };
        let idle = self.keepalive.idle_limit();
        let drive = async {
            let r = mux::drive(conn, requests, on_inbound, stop.clone()).await;
            stop.cancel();
            r
        };
        let keep = async {
            let watch = async {
                match tokio::time::timeout(idle, control_rx).await {
                    Ok(Ok(control)) => keepalive::answer(control, idle).await,
                    Ok(Err(_)) => TunnelError::Closed,
                    Err(_) => TunnelError::Protocol(format!(
                        "the node opened no keepalive stream within {idle:?}"
                    )),
                }
            };
            let e = tokio::select! {
                e = watch => Some(e),
                () = stop.cancelled() => None,
            };
            stop.cancel();
            e
        };
        let (driven, kept) = tokio::join!(drive, keep);
        mux::outcome(driven, kept)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // The map stays consistent even if a holder panicked.
        self.tunnels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, node_id: &str, entry: Entry, max: usize) -> Result<(), TunnelError> {
        let mut map = self.lock();
        if !map.contains_key(node_id) && map.len() >= max {
            return Err(TunnelError::TooManyTunnels {
                node_id: node_id.to_owned(),
                limit: max,
            });
        }
        if let Some(old) = map.insert(node_id.to_owned(), entry) {
            tracing::info!(node = %node_id, "node reconnected; closing its previous tunnel");
            old.stop.cancel();
        }
        self.publish(&map);
        Ok(())
    }

    fn deregister(&self, node_id: &str, generation: u64) {
        let mut map = self.lock();
        if map.get(node_id).is_some_and(|e| e.generation == generation) {
            map.remove(node_id);
            self.publish(&map);
        }
    }

    fn publish(&self, map: &HashMap<String, Entry>) {
        let mut ids: Vec<String> = map.keys().cloned().collect();
        ids.sort();
        self.connected.send_replace(ids);
    }
}

/// Drop guard: takes a tunnel out of the registry unless it was replaced.
struct Registered<'a> {
    /// The registry.
    shared: &'a Shared,
    /// Key of the entry.
    node_id: &'a str,
    /// Only this registration is removed, never its replacement.
    generation: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.deregister(self.node_id, self.generation);
    }
}
