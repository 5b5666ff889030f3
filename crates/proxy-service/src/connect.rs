//! `GET /v1/connect?node=N`: upgrades an authenticated HTTPS connection
//! into a raw byte stream to a node (over its reverse tunnel, or by direct
//! dial). The proxy only routes: the SSH session inside is end to end and
//! the node makes the access decision; the proxy refuses early only what
//! auth says the user cannot see.

use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{StatusCode, header};
use hyper_util::rt::TokioIo;
use keygate_api::{ErrorCode, FORWARDED_CERT_HEADER, FORWARDED_FOR_HEADER, NodeInfo};
use keygate_tls::ConnInfo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{Proxy, error};

use keygate_tunnel::CLIENT_PREAMBLE;

/// Query of a connect request.
#[derive(Deserialize)]
pub struct ConnectQuery {
    /// Node name or id.
    node: String,
    /// Port on the node (22 = its SSH service).
    #[serde(default)]
    port: Option<u16>,
}

async fn visible_nodes(p: &Proxy, conn: &ConnInfo, leaf: &[u8]) -> Result<Vec<NodeInfo>, Response> {
    let resp = p
        .http
        .get(format!("{}/v1/nodes", p.auth_base))
        .header(FORWARDED_FOR_HEADER, conn.remote.to_string())
        .header(
            FORWARDED_CERT_HEADER,
            base64::engine::general_purpose::STANDARD.encode(leaf),
        )
        .send()
        .await
        .map_err(|e| {
            error(
                StatusCode::BAD_GATEWAY,
                ErrorCode::Internal,
                format!("the proxy cannot reach auth: {e}"),
            )
        })?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| error(StatusCode::BAD_GATEWAY, ErrorCode::Internal, e.to_string()))?;
    if !status.is_success() {
        let mut r = Response::new(axum::body::Body::from(bytes));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        return Err(r);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_GATEWAY,
            ErrorCode::Internal,
            format!("auth's node list: {e}"),
        )
    })
}

/// Handler for `/v1/connect`.
pub async fn connect(
    State(p): State<Proxy>,
    Query(q): Query<ConnectQuery>,
    mut req: Request,
) -> Response {
    let Some(conn) = req.extensions().get::<ConnInfo>().cloned() else {
        return error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "no connection information".into(),
        );
    };
    let Some(leaf) = conn
        .peer_certs
        .as_ref()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
    else {
        return error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "connecting to nodes needs your certificate: run kg login".into(),
        );
    };
    let nodes = match visible_nodes(&p, &conn, &leaf).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let Some(node) = nodes
        .into_iter()
        .find(|n| n.name == q.node || n.id == q.node)
    else {
        return error(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!(
                "node {:?} does not exist or none of your roles allows a login there (see kg ls)",
                q.node
            ),
        );
    };
    if q.port.is_some_and(|pt| pt != 22 && pt != 3022) {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "only the node's SSH service can be reached".into(),
        );
    }
    if node.sub_kind == "openssh" {
        return relay_connect(&p, &node, conn.remote, req).await;
    }
    let upstream: Box<dyn Stream> = match p.tunnels.as_ref().map(|t| t.clone()) {
        Some(t) => match t.dial(&node.id).await {
            Ok(mut s) => {
                // Tell the node who the client is (only the proxy can open
                // tunnel streams, so the node can trust this line).
                let line = format!("{CLIENT_PREAMBLE}{}\n", conn.remote);
                if let Err(e) = tokio::io::AsyncWriteExt::write_all(&mut s, line.as_bytes()).await {
                    return error(
                        StatusCode::BAD_GATEWAY,
                        ErrorCode::Internal,
                        format!("node {:?}: {e}", node.name),
                    );
                }
                Box::new(s)
            }
            Err(e) => match direct(&node).await {
                Some(s) => s,
                None => {
                    return error(
                        StatusCode::BAD_GATEWAY,
                        ErrorCode::Internal,
                        format!(
                            "node {:?} is not connected ({e}); is its agent running?",
                            node.name
                        ),
                    );
                }
            },
        },
        None => match direct(&node).await {
            Some(s) => s,
            None => {
                return error(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::Internal,
                    format!("node {:?} is not reachable", node.name),
                );
            }
        },
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => {
                let mut client = TokioIo::new(up);
                let mut upstream = upstream;
                if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    tracing::debug!("connect stream ended: {e}");
                }
            }
            Err(e) => tracing::debug!("upgrade failed: {e}"),
        }
    });
    switching()
}

/// Agentless node: the proxy terminates SSH itself (the relay), so the
/// upgraded stream goes into the relay rather than to the host.
async fn relay_connect(
    p: &Proxy,
    node: &NodeInfo,
    client: std::net::SocketAddr,
    mut req: Request,
) -> Response {
    if let Err(e) = p.relay_auth.refresh_user_ca().await {
        return error(StatusCode::BAD_GATEWAY, ErrorCode::Internal, e);
    }
    let prepared = match p.relay.prepare(&node.name).await {
        Ok(pr) => pr,
        Err(e) => {
            return error(
                StatusCode::BAD_GATEWAY,
                ErrorCode::Internal,
                format!("node {:?}: {e}", node.name),
            );
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => prepared.serve(TokioIo::new(up), client).await,
            Err(e) => tracing::debug!("upgrade failed: {e}"),
        }
    });
    switching()
}

fn switching() -> Response {
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, "upgrade"),
            (header::UPGRADE, "keygate-ssh"),
        ],
    )
        .into_response()
}

/// A byte stream of either kind.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn direct(node: &NodeInfo) -> Option<Box<dyn Stream>> {
    let addr = node.addr.as_ref()?;
    let s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let _ = s.set_nodelay(true);
    Some(Box::new(s))
}
