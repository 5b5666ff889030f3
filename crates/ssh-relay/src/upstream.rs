//! The relay's leg to the host: a russh client that accepts only a host
//! certificate from the cluster's host CA naming the node, and logs in with
//! the per-session openssh-CA certificate.

use std::sync::Arc;
use std::time::Duration;

use keygate_clock::SharedClock;
use rand::RngCore;
use russh::client;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{Algorithm, Certificate, PrivateKey, PublicKeyOrCertificate};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::authority::UpstreamGrant;
use crate::error::RelayError;

/// Time allowed to reach and authenticate to the host.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upstream channel window, as large as the client side's.
const WINDOW_SIZE: u32 = 4 * 1024 * 1024;

/// A fresh Ed25519 key for one upstream session (never stored).
pub(crate) fn fresh_key() -> PrivateKey {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}

/// Checks the host's certificate.
pub(crate) struct UpstreamHandler {
    /// Trusted host CA keys.
    host_ca_keys: Vec<String>,
    /// Acceptable names.
    principals: Vec<String>,
    /// Time source for validity.
    clock: SharedClock,
    /// Why the host key was refused, for the user's error.
    refusal: Arc<std::sync::Mutex<Option<String>>>,
    /// Cancelled when the host's connection ends.
    pub(crate) gone: CancellationToken,
}

impl client::Handler for UpstreamHandler {
    type Error = RelayError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let verdict = match key {
            PublicKeyOrCertificate::Certificate(cert) => self.check_cert(cert),
            PublicKeyOrCertificate::PublicKey { .. } => Err(
                "the host presented a plain host key, not a Keygate host certificate: install one with kgctl auth sign --host (HostCertificate in sshd_config)"
                    .to_owned(),
            ),
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(reason) => {
                *self
                    .refusal
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
                Ok(false)
            }
        }
    }

    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        self.gone.cancel();
        match reason {
            client::DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            client::DisconnectReason::Error(e) => Err(e),
        }
    }
}

impl UpstreamHandler {
    fn check_cert(&self, cert: &Certificate) -> Result<(), String> {
        let line = cert
            .to_openssh()
            .map_err(|e| format!("the host certificate could not be re-encoded: {e}"))?;
        let v = keygate_ca::verify_host_cert(&line, &self.host_ca_keys, self.clock.now())
            .map_err(|e| format!("the host certificate was refused: {e}"))?;
        if v.principals.iter().any(|p| self.principals.contains(p)) {
            Ok(())
        } else {
            Err(format!(
                "the host certificate is for {} but this node is {}",
                v.principals.join(", "),
                self.principals.join(", ")
            ))
        }
    }
}

/// An authenticated connection to the host.
pub(crate) struct Upstream {
    /// The russh client handle.
    pub(crate) handle: client::Handle<UpstreamHandler>,
    /// Cancelled when the host's side ends.
    pub(crate) gone: CancellationToken,
}

/// Connects to the host of `grant` and logs in as `login` with `key` and the
/// grant's certificate.
pub(crate) async fn connect(
    grant: &UpstreamGrant,
    login: &str,
    key: PrivateKey,
    clock: SharedClock,
) -> Result<Upstream, RelayError> {
    let cert = Certificate::from_openssh(&grant.cert)
        .map_err(|e| RelayError::Material(format!("upstream certificate: {e}")))?;
    let refusal = Arc::new(std::sync::Mutex::new(None));
    let gone = CancellationToken::new();
    let handler = UpstreamHandler {
        host_ca_keys: grant.host_ca_keys.clone(),
        principals: grant.host_principals.clone(),
        clock,
        refusal: refusal.clone(),
        gone: gone.clone(),
    };
    let preferred = russh::Preferred {
        host_key_certificates: std::borrow::Cow::Owned(vec![Algorithm::Ed25519]),
        ..russh::Preferred::default()
    };
    let config = Arc::new(client::Config {
        preferred,
        window_size: WINDOW_SIZE,
        nodelay: true,
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        ..client::Config::default()
    });
    let addr = grant.addr.clone();
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| RelayError::Upstream(format!("cannot reach {addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let mut handle = match client::connect_stream(config, tcp, handler).await {
            Ok(h) => h,
            Err(RelayError::Protocol(russh::Error::UnknownKey)) => {
                let why = refusal
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
                    .unwrap_or_else(|| "unknown host key".to_owned());
                return Err(RelayError::Upstream(format!("host {addr}: {why}")));
            }
            Err(e) => return Err(RelayError::Upstream(format!("host {addr}: {e}"))),
        };
        let auth = handle
            .authenticate_openssh_cert(login, Arc::new(key), cert)
            .await
            .map_err(|e| RelayError::Upstream(format!("host {addr}: {e}")))?;
        if !auth.success() {
            return Err(RelayError::Upstream(format!(
                "the sshd at {addr} refused the Keygate certificate for {login:?}: does the account exist, and does sshd trust the openssh CA (TrustedUserCAKeys from kgctl auth export --type openssh)?"
            )));
        }
        Ok(handle)
    };
    let handle = tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| {
            RelayError::Upstream(format!(
                "the sshd at {} did not answer within {} s",
                grant.addr,
                CONNECT_TIMEOUT.as_secs()
            ))
        })??;
    Ok(Upstream { handle, gone })
}
