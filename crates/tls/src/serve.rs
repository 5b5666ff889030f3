//! The HTTP server loop: accept, TLS handshake (bounded in time and
//! number), then hand the connection to hyper with the peer's identity
//! attached to every request as a [`ConnInfo`] / [`UnixPeer`] extension.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use thiserror::Error;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Most connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 4096;
/// A client that has not finished its TLS handshake by then is dropped
/// (protects against half-open connection floods).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Who is on the other end of a TLS connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer's address as seen by this server.
    pub remote: SocketAddr,
    /// The verified client chain (leaf first), when one was presented.
    pub peer_certs: Option<Arc<Vec<CertificateDer<'static>>>>,
}

/// Who is on the other end of the admin Unix socket.
#[derive(Debug, Clone, Copy)]
pub struct UnixPeer {
    /// Peer process's user id (SO_PEERCRED).
    pub uid: u32,
    /// Peer process id, when the kernel tells.
    pub pid: Option<i32>,
}

/// Server loop failures.
#[derive(Debug, Error)]
pub enum ServeError {
    /// Accepting failed in a way that is not per-connection.
    #[error("accept failed: {0}")]
    Accept(#[from] std::io::Error),
}

async fn drain(graceful: GracefulShutdown) {
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` is cancelled,
/// then drains in-flight requests.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let acceptor = TlsAcceptor::from(tls);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, remote) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "connection limit reached; dropping");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let peer_certs =
                stream.get_ref().1.peer_certificates().map(|c| {
                    Arc::new(c.iter().map(|c| c.clone().into_owned()).collect::<Vec<_>>())
                });
            let info = ConnInfo { remote, peer_certs };
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(info.clone());
                router.clone().oneshot(req)
            });
            let builder = Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%remote, "connection ended: {e}");
            }
        });
    }
    drain(graceful).await;
    Ok(())
}

/// Serves `router` on a Unix socket until `shutdown`; only peers whose uid
/// is in `allowed_uids` get through (others are closed at once).
pub async fn serve_unix(
    listener: UnixListener,
    allowed_uids: Vec<u32>,
    router: Router,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(256));
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("admin socket accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let Ok(cred) = stream.peer_cred() else {
            continue;
        };
        if !allowed_uids.contains(&cred.uid()) {
            tracing::warn!(uid = cred.uid(), "admin socket: refused peer uid");
            continue;
        }
        let peer = UnixPeer {
            uid: cred.uid(),
            pid: cred.pid(),
        };
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(peer);
                router.clone().oneshot(req)
            });
            let builder = Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!("admin connection ended: {e}");
            }
        });
    }
    drain(graceful).await;
    Ok(())
}
