use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ApiError, ErrorBody, ErrorCode};

/// Longest any single API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response accepted.
const MAX_RESPONSE: usize = 16 << 20;

/// TLS settings for an HTTPS client.
pub type ClientTls = keygate_tls::rustls::ClientConfig;

#[derive(Debug, Clone)]
enum Transport {
    /// HTTPS to a proxy or auth address.
    Https {
        client: reqwest::Client,
        base: String,
    },
    /// HTTP over the admin Unix socket of a local daemon.
    Unix { path: PathBuf },
}

/// A client of the Keygate API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// How requests travel.
    transport: Transport,
}

impl ApiClient {
    /// A client for `https://{addr}` using `tls` (which decides what server
    /// is trusted and which client certificate is shown).
    pub fn https(addr: &str, tls: ClientTls) -> Result<Self, ApiError> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| ApiError::Setup(format!("cannot build HTTPS client: {e}")))?;
        Ok(Self {
            transport: Transport::Https {
                client,
                base: format!("https://{addr}"),
            },
        })
    }

    /// A client for the daemon's admin socket.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self {
            transport: Transport::Unix { path: path.into() },
        }
    }

    /// Where this client sends requests (for error messages).
    pub fn target(&self) -> String {
        match &self.transport {
            Transport::Https { base, .. } => base.clone(),
            Transport::Unix { path } => path.display().to_string(),
        }
    }

    /// GET `path` and decode JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    /// POST JSON to `path` and decode JSON.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// DELETE `path`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call::<(), T>(Method::DELETE, path, None).await
    }

    /// One API call.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let body = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| ApiError::Setup(e.to_string()))?),
            None => None,
        };
        let (status, bytes) = match &self.transport {
            Transport::Https { client, base } => {
                let mut req = client.request(method, format!("{base}{path}"));
                if let Some(b) = body {
                    req = req
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(b);
                }
                let resp = req.send().await.map_err(|e| ApiError::Transport {
                    target: base.clone(),
                    reason: error_chain(&e),
                })?;
                let status = resp.status();
                let bytes = resp.bytes().await.map_err(|e| ApiError::Transport {
                    target: base.clone(),
                    reason: error_chain(&e),
                })?;
                (status, bytes)
            }
            Transport::Unix { path: sock } => {
                tokio::time::timeout(CALL_TIMEOUT, unix_call(sock, method, path, body))
                    .await
                    .map_err(|_| ApiError::Transport {
                        target: sock.display().to_string(),
                        reason: "timed out".into(),
                    })??
            }
        };
        if bytes.len() > MAX_RESPONSE {
            return Err(ApiError::Decode("response too large".into()));
        }
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode(e.to_string()));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => Err(ApiError::Server {
                status: status.as_u16(),
                code: b.error,
                message: b.message,
            }),
            Err(_) => Err(ApiError::Server {
                status: status.as_u16(),
                code: if status.is_server_error() {
                    ErrorCode::Internal
                } else {
                    ErrorCode::BadRequest
                },
                message: format!(
                    "server answered {status}: {}",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
            }),
        }
    }
}

/// Flattens an error and its sources into one line (reqwest hides the
/// useful part, e.g. the TLS failure, in `source()`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_str = s.to_string();
        if !out.contains(&s_str) {
            out.push_str(": ");
            out.push_str(&s_str);
        }
        cur = s.source();
    }
    out
}

async fn unix_call(
    sock: &std::path::Path,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), ApiError> {
    let target = sock.display().to_string();
    let terr = |reason: String| ApiError::Transport {
        target: target.clone(),
        reason,
    };
    let stream = tokio::net::UnixStream::connect(sock).await.map_err(|e| {
        terr(format!(
            "{e}; is `keygate start` running with this --data-dir, and are you the user running it?"
        ))
    })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| terr(e.to_string()))?;
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "localhost")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| ApiError::Setup(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| terr(e.to_string()))?;
    let status = resp.status();
    let bytes = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| terr(e.to_string()))?
        .to_bytes();
    Ok((status, bytes))
}
