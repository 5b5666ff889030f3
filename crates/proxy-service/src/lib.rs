//! The proxy: the cluster's public entry point.
//!
//! Owns: the HTTPS listener (a host-CA certificate; client certificates
//! from the user CA optional), `/readyz`, and forwarding every `/v1/` call
//! to auth over mTLS with the client's verified certificate and address
//! attached (ARCHITECTURE.md §6). It holds no state and makes no access
//! decision of its own: auth re-verifies the forwarded certificate and
//! authorizes every call.
//! Also: `/v1/connect` (an upgraded stream to a node over its tunnel, or,
//! for agentless OpenSSH nodes, into the SSH relay of `keygate-ssh-relay`,
//! whose decisions auth makes through the proxy-only `/v1/openssh/*` API).
//! Does not own: the web UI.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine;
use http::{HeaderValue, StatusCode};
use keygate_api::{
    ErrorBody, ErrorCode, FORWARDED_CERT_HEADER, FORWARDED_FOR_HEADER, MAX_BODY_BYTES,
};
use keygate_tls::{ConnInfo, rustls};
use tokio_util::sync::CancellationToken;

mod connect;
mod relay;

pub use keygate_tunnel::TunnelServer;

/// How the proxy reaches auth.
#[derive(Clone)]
pub struct ProxyConfig {
    /// Auth's internal address.
    pub auth_addr: String,
    /// TLS settings for calling auth: trusts the host CA and presents the
    /// proxy's own certificate (system role `proxy`).
    pub auth_tls: rustls::ClientConfig,
    /// TLS settings for the public listener.
    pub public_tls: Arc<rustls::ServerConfig>,
    /// Reverse tunnels from nodes (None: direct dial only).
    pub tunnels: Option<Arc<TunnelServer>>,
    /// The source of time.
    pub clock: keygate_clock::SharedClock,
}

#[derive(Clone)]
struct Proxy {
    /// Client for auth.
    http: reqwest::Client,
    /// `https://auth_addr`.
    auth_base: String,
    /// Node tunnels.
    tunnels: Option<Arc<TunnelServer>>,
    /// The relay to agentless OpenSSH nodes.
    relay: keygate_ssh_relay::Relay,
    /// Auth as the relay sees it.
    relay_auth: Arc<relay::AuthAuthority>,
}

/// The proxy's routes and the background work they need.
struct Built {
    /// Routes.
    router: Router,
    /// The relay.
    relay: keygate_ssh_relay::Relay,
    /// Its audit tap.
    tap: Arc<relay::AuditTap>,
    /// Auth on the proxy's own account.
    internal: relay::Internal,
    /// Auth as the relay sees it.
    relay_auth: Arc<relay::AuthAuthority>,
}

/// Errors starting the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The HTTP client for auth could not be built.
    #[error("cannot set up the connection to auth: {0}")]
    Setup(String),
    /// The SSH relay could not be set up.
    #[error(transparent)]
    Relay(#[from] keygate_ssh_relay::RelayError),
    /// Serving failed.
    #[error(transparent)]
    Serve(#[from] keygate_tls::ServeError),
}

/// The proxy's routes and relay.
fn build(cfg: &ProxyConfig) -> Result<Built, ProxyError> {
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(cfg.auth_tls.clone())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| ProxyError::Setup(e.to_string()))?;
    let auth_base = format!("https://{}", cfg.auth_addr);
    let internal = relay::Internal {
        http: http.clone(),
        auth_base: auth_base.clone(),
    };
    let relay_auth = Arc::new(relay::AuthAuthority::new(
        internal.clone(),
        cfg.clock.clone(),
    ));
    let tap = Arc::new(relay::AuditTap::new(cfg.clock.clone()));
    let relay = keygate_ssh_relay::Relay::new(relay_auth.clone(), tap.clone(), cfg.clock.clone())?;
    let state = Proxy {
        http,
        auth_base,
        tunnels: cfg.tunnels.clone(),
        relay: relay.clone(),
        relay_auth: relay_auth.clone(),
    };
    let router = Router::new()
        .route("/readyz", get(readyz))
        .route("/v1/connect", get(connect::connect))
        .route("/v1/openssh/{*rest}", any(internal_only))
        .route("/v1/{*rest}", any(forward))
        .with_state(state);
    Ok(Built {
        router,
        relay,
        tap,
        internal,
        relay_auth,
    })
}

/// Auth's proxy-only API is never reachable through the proxy.
async fn internal_only() -> Response {
    error(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint".into(),
    )
}

/// Serves the proxy on `listener` until `shutdown`.
pub async fn run(
    cfg: ProxyConfig,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ProxyError> {
    let built = build(&cfg)?;
    let tap = built.tap.clone();
    let internal = built.internal.clone();
    let s = shutdown.clone();
    tokio::spawn(async move { tap.upload(internal, s).await });
    tokio::spawn(relay::recheck_loop(
        built.relay.clone(),
        built.relay_auth.clone(),
        built.internal.clone(),
        built.tap.clone(),
        shutdown.clone(),
    ));
    let served =
        keygate_tls::serve_tls(listener, cfg.public_tls.clone(), built.router, shutdown).await;
    built.relay.terminate_all("the proxy is shutting down");
    served?;
    Ok(())
}

fn error(status: StatusCode, code: ErrorCode, message: String) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            error: code,
            message,
        }),
    )
        .into_response()
}

/// Ready when auth answers.
async fn readyz(State(p): State<Proxy>) -> Response {
    match p.http.get(format!("{}/v1/ping", p.auth_base)).send().await {
        Ok(r) if r.status().is_success() => (StatusCode::OK, "ok\n").into_response(),
        Ok(r) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("auth answered {}\n", r.status()),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("auth unreachable: {e}\n"),
        )
            .into_response(),
    }
}

async fn forward(State(p): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let conn = parts.extensions.get::<ConnInfo>().cloned();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BadRequest,
                format!("request body larger than {MAX_BODY_BYTES} bytes"),
            );
        }
    };
    let mut out = p
        .http
        .request(parts.method.clone(), format!("{}{path}", p.auth_base))
        .body(bytes);
    if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE) {
        out = out.header(http::header::CONTENT_TYPE, ct.clone());
    }
    if let Some(conn) = &conn {
        out = out.header(FORWARDED_FOR_HEADER, conn.remote.to_string());
        if let Some(leaf) = conn.peer_certs.as_ref().and_then(|c| c.first()) {
            out = out.header(
                FORWARDED_CERT_HEADER,
                base64::engine::general_purpose::STANDARD.encode(leaf.as_ref()),
            );
        }
    }
    let resp = match out.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("forwarding to auth failed: {e}");
            return error(
                StatusCode::BAD_GATEWAY,
                ErrorCode::Internal,
                "the proxy cannot reach the auth service; try again shortly".into(),
            );
        }
    };
    let status = resp.status();
    let ct = resp.headers().get(http::header::CONTENT_TYPE).cloned();
    match resp.bytes().await {
        Ok(b) => {
            let mut r = Response::new(Body::from(b));
            *r.status_mut() = status;
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                ct.unwrap_or_else(|| HeaderValue::from_static("application/json")),
            );
            r
        }
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            ErrorCode::Internal,
            format!("auth's answer broke off: {e}"),
        ),
    }
}

/// The address a proxy should advertise for a listen address: `0.0.0.0`
/// is not dialable, and loopback is named `localhost` because browsers
/// refuse WebAuthn on IP-address origins (ARCHITECTURE.md §6).
pub fn advertised(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}
