//! First contact with a cluster: trust the host CA whose public-key hash
//! (the CA pin) the user was given, and nothing else.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::TlsError;

/// `sha256:<hex>` of a certificate's SubjectPublicKeyInfo, or None when the
/// bytes are not a certificate.
pub fn ca_pin_of(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    Some(format!(
        "sha256:{}",
        hex::encode(Sha256::digest(cert.public_key().raw))
    ))
}

/// What a pinned handshake saw: the CA certificate the server chained to.
#[derive(Debug, Clone, Default)]
pub struct PinCapture {
    /// The CA certificate that matched the pin (or, in capture-only mode,
    /// the last certificate of the presented chain).
    inner: Arc<Mutex<Option<CertificateDer<'static>>>>,
}

impl PinCapture {
    /// The captured CA certificate, if the handshake got that far.
    pub fn ca_cert(&self) -> Option<CertificateDer<'static>> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, c: CertificateDer<'static>) {
        *self.inner.lock().unwrap_or_else(PoisonError::into_inner) = Some(c);
    }
}

#[derive(Debug)]
struct PinnedVerifier {
    /// Expected pin; None = capture the chain and refuse (first-use prompt).
    pin: Option<String>,
    /// Where the matching CA certificate is recorded.
    capture: PinCapture,
    /// Signature algorithms of the installed provider.
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pin) = &self.pin else {
            if let Some(last) = intermediates.last() {
                self.capture.set(last.clone().into_owned());
            }
            return Err(rustls::Error::General("CA pin not yet confirmed".into()));
        };
        let ca = intermediates
            .iter()
            .find(|c| ca_pin_of(c).is_some_and(|p| bool::from(p.as_bytes().ct_eq(pin.as_bytes()))))
            .ok_or_else(|| {
                rustls::Error::General(format!(
                    "the server's CA does not match the pin {pin}; check --ca-pin (kgctl status shows the right one)"
                ))
            })?;
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let inner = WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let verified =
            inner.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)?;
        self.capture.set(ca.clone().into_owned());
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A client configuration for first contact: the server must chain to a CA
/// certificate it presents whose pin equals `pin`. With `pin = None` the
/// handshake always fails after recording the presented CA, so the caller
/// can show its pin and ask the user (like ssh's first-use prompt).
pub fn pinned_client_config(pin: Option<&str>) -> Result<(ClientConfig, PinCapture), TlsError> {
    crate::install_crypto_provider();
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let capture = PinCapture::default();
    let verifier = PinnedVerifier {
        pin: pin.map(str::to_owned),
        capture: capture.clone(),
        algs: provider.signature_verification_algorithms,
    };
    let mut cfg = ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((cfg, capture))
}
