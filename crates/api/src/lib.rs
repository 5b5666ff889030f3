//! Keygate's HTTP API: request/response types and the client.
//!
//! Owns: the JSON shapes exchanged under `/v1/` (documented in
//! `docs/api.md`), the error body and its codes, and [`ApiClient`], which
//! speaks them over HTTPS (pinned to the cluster's host CA, optionally with
//! a client certificate) or over the auth host's admin Unix socket.
//! Does not own: servers (see `keygate-auth-service`, `keygate-proxy-service`).
#![forbid(unsafe_code)]

mod client;
mod error;
mod openssh;
mod types;

pub use client::{ApiClient, ClientTls};
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use openssh::*;
pub use types::*;

/// Header carrying the client certificate (base64 DER) that the proxy
/// verified during its TLS handshake, when it forwards a request to auth.
/// Auth honours it only on connections from a `role=proxy` certificate, and
/// re-verifies the certificate itself.
pub const FORWARDED_CERT_HEADER: &str = "x-keygate-forwarded-cert";
/// Header marking a proxy's call on its own account (the agentless-host
/// relay). The proxy never copies client headers when it forwards, and
/// auth ignores the mark on forwarded requests.
pub const PROXY_INTERNAL_HEADER: &str = "x-keygate-proxy-internal";
/// Header carrying the client's address as the proxy saw it.
pub const FORWARDED_FOR_HEADER: &str = "x-keygate-forwarded-for";
/// Largest request body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 1 << 20;
