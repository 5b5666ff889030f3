//! Deciding which cluster to trust, and building API clients.

use keygate_api::ApiClient;
use keygate_tls::{CertificateDer, PemObject, PrivateKeyDer};
use thiserror::Error;

use crate::{ClientError, Profile};

/// Problems establishing trust in a cluster.
#[derive(Debug, Error)]
pub enum TrustError {
    /// The server's CA does not match the pin.
    #[error("{0}")]
    PinMismatch(String),
    /// The proxy could not be reached at all.
    #[error("cannot reach {proxy}: {reason}")]
    Unreachable {
        /// Address.
        proxy: String,
        /// Why.
        reason: String,
    },
    /// Local setup failure.
    #[error("{0}")]
    Setup(String),
}

/// Connects to `proxy` and returns the host CA certificate it chains to.
/// With `pin`, the CA must match it (else [`TrustError::PinMismatch`]);
/// without, the presented CA is returned unverified so the caller can show
/// its pin and ask the user.
pub async fn fetch_ca(
    proxy: &str,
    pin: Option<&str>,
) -> Result<CertificateDer<'static>, TrustError> {
    let (cfg, capture) =
        keygate_tls::pinned_client_config(pin).map_err(|e| TrustError::Setup(e.to_string()))?;
    let client = ApiClient::https(proxy, cfg).map_err(|e| TrustError::Setup(e.to_string()))?;
    let result: Result<serde_json::Value, _> = client.get("/v1/ca/host").await;
    match (result, capture.ca_cert()) {
        (Ok(_), Some(ca)) => Ok(ca),
        (Err(_), Some(ca)) if pin.is_none() => Ok(ca),
        (Err(e), _) => {
            let msg = e.to_string();
            if msg.contains("does not match the pin") {
                Err(TrustError::PinMismatch(format!(
                    "the cluster at {proxy} does not match --ca-pin {}: you may be talking to an impostor; check the pin with your admin (kgctl status)",
                    pin.unwrap_or("")
                )))
            } else {
                Err(TrustError::Unreachable {
                    proxy: proxy.to_owned(),
                    reason: msg,
                })
            }
        }
        (Ok(_), None) => Err(TrustError::Setup(
            "the TLS handshake recorded no CA certificate".into(),
        )),
    }
}

/// A client trusting only `host_ca`, without a client certificate (login,
/// sign-up).
pub fn anonymous_client(
    proxy: &str,
    host_ca: CertificateDer<'static>,
) -> Result<ApiClient, ClientError> {
    let cfg = keygate_tls::client_config(&[host_ca], None)
        .map_err(|e| ClientError::Material(e.to_string()))?;
    ApiClient::https(proxy, cfg).map_err(|e| ClientError::Material(e.to_string()))
}

/// A client presenting the profile's certificate.
pub fn authenticated_client(profile: &Profile) -> Result<ApiClient, ClientError> {
    let ca_pem = std::fs::read(profile.ca_path()).map_err(|e| {
        ClientError::Profile(format!(
            "cannot read {}: {e}; run kg login",
            profile.ca_path().display()
        ))
    })?;
    let x509_pem = std::fs::read(profile.x509_path()).map_err(|e| {
        ClientError::Profile(format!(
            "cannot read {}: {e}; run kg login",
            profile.x509_path().display()
        ))
    })?;
    let key = profile.key()?;
    client_with(&profile.proxy, &ca_pem, &x509_pem, &key.pkcs8_der())
}

/// A client from PEM material (profiles and identity files).
pub(crate) fn client_with(
    proxy: &str,
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pkcs8: &[u8],
) -> Result<ApiClient, ClientError> {
    let ca = CertificateDer::from_pem_slice(ca_pem)
        .map_err(|e| ClientError::Material(format!("host CA: {e}")))?;
    let cert = CertificateDer::from_pem_slice(cert_pem)
        .map_err(|e| ClientError::Material(format!("certificate: {e}")))?;
    let key = PrivateKeyDer::Pkcs8(key_pkcs8.to_vec().into());
    let cfg = keygate_tls::client_config(&[ca], Some((vec![cert], key)))
        .map_err(|e| ClientError::Material(e.to_string()))?;
    ApiClient::https(proxy, cfg).map_err(|e| ClientError::Material(e.to_string()))
}
