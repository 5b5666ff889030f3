use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// Installs aws-lc-rs as the process-wide rustls provider. Every `main` and
/// test calls this first: if a dependency also enables ring, rustls would
/// otherwise refuse to choose and panic.
pub fn install_crypto_provider() {
    // Already installed (by an earlier call) is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Whether a server asks for client certificates.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// No client certificates.
    None,
    /// Clients may present a certificate chaining to these roots.
    Optional(Vec<CertificateDer<'static>>),
    /// Clients must present a certificate chaining to these roots.
    Required(Vec<CertificateDer<'static>>),
}

fn roots(certs: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certs {
        store
            .add(c.clone())
            .map_err(|e| TlsError::Credentials(format!("bad CA certificate: {e}")))?;
    }
    Ok(store)
}

/// A server configuration presenting `chain` (leaf first) with `key`.
/// ALPN offers HTTP/2 and HTTP/1.1.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    install_crypto_provider();
    let builder = ServerConfig::builder();
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional(cas) => {
            let v = WebPkiClientVerifier::builder(Arc::new(roots(&cas)?))
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(v)
        }
        ClientAuth::Required(cas) => {
            let v = WebPkiClientVerifier::builder(Arc::new(roots(&cas)?))
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(v)
        }
    };
    let mut cfg = builder.with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A client configuration trusting only `trusted_cas` (the cluster's host
/// CA), optionally presenting a client certificate.
pub fn client_config(
    trusted_cas: &[CertificateDer<'static>],
    client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, TlsError> {
    install_crypto_provider();
    let builder = ClientConfig::builder().with_root_certificates(roots(trusted_cas)?);
    let mut cfg = match client_cert {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
