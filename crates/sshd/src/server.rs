//! The server: admission, one supervisor per connection, the accept loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use keygate_clock::SharedClock;
use russh::Disconnect;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::{Admission, Admit};
use crate::auth::Authorizer;
use crate::config::{ServerSettings, russh_config};
use crate::conn::Conn;
use crate::events::{EndReason, ServerStats, SessionEvents, SshEvent, StatsSnapshot};
use crate::handler::ConnHandler;
use crate::registry::SessionRegistry;
use crate::stream::{GuardedStream, WireCounters};

/// How often idle timeouts and certificate expiry are checked.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// After the termination message, how long the client gets to read it
/// before the processes are hung up and the disconnect is sent.
const MESSAGE_GRACE: Duration = Duration::from_millis(150);
/// After the disconnect, how long before the transport is cut.
const DISCONNECT_GRACE: Duration = Duration::from_millis(700);
/// On shutdown, how long live sessions get to end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// After an accept error (out of descriptors…), pause before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// State shared by all connections of one server.
pub(crate) struct Shared {
    /// russh's configuration.
    pub config: std::sync::RwLock<Arc<russh::server::Config>>,
    /// What the config was built from (to rebuild it with a renewed host
    /// certificate).
    pub settings: std::sync::Mutex<ServerSettings>,
    /// Decides who may log in.
    pub authz: Arc<dyn Authorizer>,
    /// Receives events and output.
    pub events: Arc<dyn SessionEvents>,
    /// The source of time.
    pub clock: SharedClock,
    /// Live sessions.
    pub registry: SessionRegistry,
    /// Counters.
    pub stats: ServerStats,
    /// Unauthenticated connections.
    pub admission: Arc<Admission>,
    /// Authenticated connections.
    pub sessions: Arc<Semaphore>,
    /// The node's name (events).
    pub node_name: String,
    /// The node's id.
    pub node_id: String,
    /// Time allowed to authenticate.
    pub auth_timeout: Duration,
}

/// The node's SSH server. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct SshServer {
    /// Everything.
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SshServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshServer")
            .field("node_name", &self.shared.node_name)
            .field("node_id", &self.shared.node_id)
            .field("sessions", &self.shared.registry.len())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The configuration new connections use.
    fn current_config(&self) -> Arc<russh::server::Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl SshServer {
    /// A server for `settings`.
    pub fn new(
        settings: ServerSettings,
        authz: Arc<dyn Authorizer>,
        events: Arc<dyn SessionEvents>,
        clock: SharedClock,
    ) -> Self {
        let config = std::sync::RwLock::new(russh_config(&settings));
        Self {
            shared: Arc::new(Shared {
                config,
                settings: std::sync::Mutex::new(settings.clone()),
                authz,
                events,
                clock,
                registry: SessionRegistry::default(),
                stats: ServerStats::default(),
                admission: Admission::new(settings.max_unauthenticated),
                sessions: Arc::new(Semaphore::new(
                    settings.max_sessions.clamp(1, Semaphore::MAX_PERMITS),
                )),
                node_name: settings.node_name,
                node_id: settings.node_id,
                auth_timeout: settings.auth_timeout,
            }),
        }
    }

    /// Presents `cert` to new connections from now on (a renewed host
    /// certificate); live sessions are untouched.
    pub fn replace_host_cert(&self, cert: russh::keys::Certificate) {
        let mut settings = self
            .shared
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        settings.host_cert = Some(cert);
        let config = russh_config(&settings);
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
    }

    /// The live sessions of this server.
    pub fn registry(&self) -> &SessionRegistry {
        &self.shared.registry
    }

    /// Counters of connections, refusals and sessions.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Serves one already-accepted byte stream (a TCP connection or a
    /// tunnel stream) until the connection ends. Never panics on what the
    /// peer sends; everything ends up as events.
    pub async fn serve_stream<S>(&self, stream: S, remote: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve(stream, remote, None).await;
    }

    /// Accepts connections on `listener` until `shutdown`, then ends live
    /// sessions (the clients see "node is shutting down") and waits briefly
    /// for them.
    pub async fn serve_tcp(&self, listener: TcpListener, shutdown: CancellationToken) {
        let local = listener.local_addr().ok();
        let tasks = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = shutdown.cancelled() => break,
            };
            match accepted {
                Ok((tcp, remote)) => {
                    let _ = tcp.set_nodelay(true);
                    let server = self.clone();
                    tasks.spawn(async move { server.serve(tcp, remote, local).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ssh accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
        drop(listener);
        self.shared.registry.end_all(&EndReason::Shutdown);
        self.shared.admission.close_all();
        tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("ssh sessions still running after shutdown grace period");
        }
    }

    async fn serve<S>(&self, stream: S, remote: SocketAddr, local: Option<SocketAddr>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = &self.shared;
        ServerStats::bump(&shared.stats.connections);
        let counters = Arc::new(WireCounters::default());
        let kill = CancellationToken::new();
        let now = shared.clock.monotonic();
        let ticket = match shared.admission.admit(now, counters.clone(), kill.clone()) {
            Admit::Admitted(t) => t,
            Admit::AdmittedByEviction(t) => {
                ServerStats::bump(&shared.stats.connections_evicted);
                t
            }
            Admit::Refused => {
                ServerStats::bump(&shared.stats.connections_refused);
                shared.events.event(SshEvent::ConnectionRefused {
                    remote,
                    reason: "too many unauthenticated connections".into(),
                    evicted: false,
                });
                return;
            }
        };
        let conn = Arc::new(Conn::new(
            shared.clone(),
            remote,
            local,
            counters.clone(),
            kill.clone(),
        ));
        let guarded = GuardedStream::new(stream, kill.clone(), counters);
        let handler = ConnHandler::new(conn.clone());
        let auth_deadline = tokio::time::sleep(shared.auth_timeout);
        tokio::pin!(auth_deadline);

        // Whatever happens to this future (even being dropped by a caller
        // whose tunnel went away), the connection ends with it.
        let mut guard = ConnGuard {
            shared: shared.clone(),
            conn: conn.clone(),
        };
        let started = tokio::select! {
            r = russh::server::run_stream(shared.current_config(), guarded, handler) => match r {
                Ok(running) => Some(running),
                Err(e) => {
                    conn.note_transport_error(&e);
                    None
                }
            },
            () = &mut auth_deadline => None,
        };
        let Some(running) = started else {
            let timed_out = auth_deadline.is_elapsed();
            self.end_unauthenticated(&conn, ticket.was_evicted(), timed_out);
            return;
        };
        let _ = conn.handle.set(running.handle());
        // Polling a finished russh session twice would panic, so its end is
        // turned into a token that may be awaited any number of times.
        let ended = CancellationToken::new();
        let ended_guard = ended.clone().drop_guard();
        let watched = conn.clone();
        tokio::spawn(async move {
            if let Err(e) = running.await {
                watched.note_transport_error(&e);
            }
            drop(ended_guard);
        });
        tokio::select! {
            () = ended.cancelled() => {}
            () = conn.authenticated.cancelled() => {}
            () = &mut auth_deadline => {}
        }
        if conn.authenticated.is_cancelled() {
            drop(ticket);
            supervise(&conn, &ended).await;
            conn.closed.cancel();
            self.end_session(&conn);
        } else {
            conn.kill.cancel();
            let timed_out = auth_deadline.is_elapsed();
            self.end_unauthenticated(&conn, ticket.was_evicted(), timed_out);
        }
        guard.conn = conn;
    }

    /// Audits a connection that never authenticated.
    fn end_unauthenticated(&self, conn: &Conn, evicted: bool, timed_out: bool) {
        let shared = &self.shared;
        if evicted {
            shared.events.event(SshEvent::ConnectionRefused {
                remote: conn.remote,
                reason: "idle unauthenticated connection closed to make room for a new one".into(),
                evicted: true,
            });
            return;
        }
        let login = Conn::lock(&conn.attempted_login).clone();
        if timed_out {
            ServerStats::bump(&shared.stats.auth_timeouts);
        }
        // A refusal that reached our certificate checks was audited then.
        if conn.cert_checked.load(Ordering::Relaxed) && !timed_out {
            return;
        }
        let reason = match (&login, timed_out) {
            (_, true) => format!(
                "did not authenticate within {} s",
                shared.auth_timeout.as_secs()
            ),
            (Some(_), false) => "no usable certificate was presented: certificates that are \
                                 expired, not yet valid or badly signed are refused by the SSH \
                                 layer before inspection"
                .to_owned(),
            (None, false) => {
                // Never got as far as asking to log in: garbage, a protocol
                // error or a port scan.
                let error = Conn::lock(&conn.transport_error).clone();
                if error.is_some() {
                    ServerStats::bump(&shared.stats.protocol_errors);
                }
                shared.events.event(SshEvent::ConnectionFailed {
                    remote: conn.remote,
                    reason: error.unwrap_or_else(|| "closed before authenticating".to_owned()),
                });
                return;
            }
        };
        ServerStats::bump(&shared.stats.auth_failures);
        shared.events.event(SshEvent::AuthFailed {
            remote: conn.remote,
            user: None,
            login: login.unwrap_or_default(),
            reason,
        });
    }

    /// Unregisters and audits a session that ended.
    fn end_session(&self, conn: &Conn) {
        let shared = &self.shared;
        shared.registry.remove(&conn.id);
        Conn::lock(&conn.session_permit).take();
        let Some(auth) = conn.session.get() else {
            return;
        };
        let reason = conn.termination.reason().unwrap_or(EndReason::ClientClosed);
        if reason != EndReason::ClientClosed {
            ServerStats::bump(&shared.stats.sessions_terminated);
        }
        shared.events.event(SshEvent::SessionEnd {
            identity: auth.identity.clone(),
            duration: shared.clock.monotonic().saturating_sub(auth.started_mono),
            bytes_in: conn.counters.bytes_in(),
            bytes_out: conn.counters.bytes_out(),
            reason,
        });
    }
}

/// Ends a connection whose `serve` future is dropped or returns: cuts the
/// transport, hangs up its processes, forgets the session.
struct ConnGuard {
    /// The server.
    shared: Arc<Shared>,
    /// The connection.
    conn: Arc<Conn>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.conn.kill.cancel();
        self.conn.closed.cancel();
        self.shared.registry.remove(&self.conn.id);
    }
}

/// Runs an authenticated connection until it ends (`ended`) or is asked to
/// end; then shows the reason, hangs up, disconnects and, if the client
/// lingers, cuts the transport.
async fn supervise(conn: &Arc<Conn>, ended: &CancellationToken) {
    tokio::select! {
        () = ended.cancelled() => return,
        () = conn.termination.requested() => {}
        () = watch_limits(conn) => {}
    }
    let message = match conn.termination.reason() {
        Some(EndReason::Terminated { message }) => message,
        Some(EndReason::IdleTimeout) => "keygate: session closed: idle timeout".to_owned(),
        Some(EndReason::CertificateExpired) => {
            "keygate: session closed: certificate expired".to_owned()
        }
        Some(EndReason::Shutdown) => {
            "keygate: session closed: the node is shutting down".to_owned()
        }
        Some(EndReason::ClientClosed) | None => "keygate: session closed".to_owned(),
    };
    if let Some(handle) = conn.handle.get() {
        let channels: Vec<_> = Conn::lock(&conn.open_channels).iter().copied().collect();
        for id in channels {
            let line = format!("\r\n{message}\r\n");
            let _ = tokio::time::timeout(MESSAGE_GRACE, handle.extended_data(id, 1, line)).await;
        }
        tokio::select! {
            () = ended.cancelled() => return,
            () = tokio::time::sleep(MESSAGE_GRACE) => {}
        }
        conn.closed.cancel();
        let _ = tokio::time::timeout(
            MESSAGE_GRACE,
            handle.disconnect(Disconnect::ByApplication, message, "en".into()),
        )
        .await;
    }
    if tokio::time::timeout(DISCONNECT_GRACE, ended.cancelled())
        .await
        .is_err()
    {
        conn.kill.cancel();
        let _ = tokio::time::timeout(DISCONNECT_GRACE, ended.cancelled()).await;
    }
}

/// Resolves after asking the connection to end for idleness or expiry.
async fn watch_limits(conn: &Conn) {
    let Some(auth) = conn.session.get() else {
        return std::future::pending().await;
    };
    let (idle, expiry) = (auth.grant.idle_timeout, auth.grant.disconnect_at);
    if idle.is_none() && expiry.is_none() {
        return std::future::pending().await;
    }
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tick.tick().await;
        if expiry.is_some_and(|at| conn.server.clock.now() >= at) {
            conn.termination.request(EndReason::CertificateExpired);
            return;
        }
        if idle.is_some_and(|limit| conn.idle_for() >= limit) {
            conn.termination.request(EndReason::IdleTimeout);
            return;
        }
    }
}
