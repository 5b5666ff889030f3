//! A client certificate that can be replaced while connections come and
//! go: every new handshake uses the latest one. Nodes renew their
//! certificates this way without restarting their tunnel or API client.

use std::sync::{Arc, RwLock};

use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// The current client identity, replaceable at any time.
#[derive(Debug, Clone)]
pub struct RotatingClientCert {
    /// Shared so every config built from it sees replacements.
    current: Arc<RwLock<Arc<CertifiedKey>>>,
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(key)?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

impl RotatingClientCert {
    /// Starts with `chain` and `key`.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: &PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        Ok(Self {
            current: Arc::new(RwLock::new(certified(chain, key)?)),
        })
    }

    /// Replaces the identity for future handshakes.
    pub fn replace(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: &PrivateKeyDer<'static>,
    ) -> Result<(), TlsError> {
        let next = certified(chain, key)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(())
    }

    /// A client configuration trusting `trusted_cas` and presenting the
    /// current identity.
    pub fn client_config(
        &self,
        trusted_cas: &[CertificateDer<'static>],
    ) -> Result<ClientConfig, TlsError> {
        crate::install_crypto_provider();
        let mut roots = RootCertStore::empty();
        for c in trusted_cas {
            roots
                .add(c.clone())
                .map_err(|e| TlsError::Credentials(format!("bad CA certificate: {e}")))?;
        }
        let mut cfg = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_cert_resolver(Arc::new(self.clone()));
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

impl ResolvesClientCert for RotatingClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }

    fn has_certs(&self) -> bool {
        true
    }
}
