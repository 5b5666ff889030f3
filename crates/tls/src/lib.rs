//! TLS plumbing shared by every Keygate service and client.
//!
//! Owns: installing the one crypto provider (aws-lc-rs), server and client
//! `rustls` configurations, the CA-pin check for first contact, and an
//! HTTP server loop (TCP+TLS or Unix socket) that passes each request the
//! peer's verified certificate chain, address or Unix credentials.
//! Does not own: deciding what a certificate means (that is `keygate-ca`'s
//! identity parsing and `keygate-policy`), or which routes exist.
#![forbid(unsafe_code)]

mod config;
mod pin;
mod rotating;
mod serve;

pub use config::{ClientAuth, client_config, install_crypto_provider, server_config};
pub use pin::{PinCapture, ca_pin_of, pinned_client_config};
pub use rotating::RotatingClientCert;
pub use rustls;
pub use rustls_pki_types::pem::PemObject;
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer};
pub use serve::{ConnInfo, ServeError, UnixPeer, serve_tls, serve_unix};

use thiserror::Error;

/// TLS setup errors (configuration faults, not peer faults).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key could not be loaded.
    #[error("invalid TLS credentials: {0}")]
    Credentials(String),
    /// rustls refused the configuration.
    #[error("TLS configuration error: {0}")]
    Config(#[from] rustls::Error),
    /// The client verifier could not be built (e.g. empty root set).
    #[error("TLS client verification setup failed: {0}")]
    Verifier(String),
}
