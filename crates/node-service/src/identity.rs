//! The node's identity on disk: one Ed25519 key (SSH host key and TLS key)
//! and the certificates auth issued at join. Joining happens once; after
//! that the node renews its own certificates.

use std::path::{Path, PathBuf};

use base64::Engine;
use keygate_api::{ApiClient, JoinRequest, NodeIdentity};
use keygate_client::ClientKey;
use keygate_tls::{CertificateDer, PemObject, PrivateKeyDer};

use crate::NodeError;

/// Files of a node's identity.
pub struct IdentityStore {
    /// The node's state directory.
    dir: PathBuf,
}

/// A loaded identity.
pub struct LoadedIdentity {
    /// The key.
    pub key: ClientKey,
    /// What auth issued.
    pub identity: NodeIdentity,
}

impl std::fmt::Debug for LoadedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedIdentity")
            .field("node_id", &self.identity.node_id)
            .finish()
    }
}

/// Ed25519 SubjectPublicKeyInfo prefix (RFC 8410); the 32-byte key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The SPKI of the key, for the node's X.509 certificate.
pub fn spki_b64(key: &ClientKey) -> Result<String, NodeError> {
    let line = key
        .public_openssh()
        .map_err(|e| NodeError::Identity(e.to_string()))?;
    let b64 = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| NodeError::Identity("bad public key".into()))?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| NodeError::Identity(e.to_string()))?;
    // SSH wire format: string "ssh-ed25519", string key(32).
    let raw = blob
        .get(blob.len().saturating_sub(32)..)
        .ok_or_else(|| NodeError::Identity("short key".into()))?;
    let mut spki = ED25519_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(raw);
    Ok(base64::engine::general_purpose::STANDARD.encode(spki))
}

impl IdentityStore {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("node.key")
    }

    fn identity_path(&self) -> PathBuf {
        self.dir.join("node-identity.json")
    }

    /// The stored identity, if the node has joined.
    pub fn load(&self) -> Result<Option<LoadedIdentity>, NodeError> {
        let Ok(text) = std::fs::read_to_string(self.identity_path()) else {
            return Ok(None);
        };
        let identity: NodeIdentity = serde_json::from_str(&text).map_err(|e| {
            NodeError::Identity(format!(
                "{} is damaged ({e}); remove it and join again",
                self.identity_path().display()
            ))
        })?;
        let key_text = std::fs::read_to_string(self.key_path())
            .map_err(|e| NodeError::Identity(format!("{}: {e}", self.key_path().display())))?;
        let key =
            ClientKey::from_openssh(&key_text).map_err(|e| NodeError::Identity(e.to_string()))?;
        Ok(Some(LoadedIdentity { key, identity }))
    }

    /// Saves key and identity (key 0600).
    pub fn save(&self, key: &ClientKey, identity: &NodeIdentity) -> Result<(), NodeError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| NodeError::Identity(format!("{}: {e}", self.dir.display())))?;
        keygate_client::write_private(
            &self.key_path(),
            key.to_openssh()
                .map_err(|e| NodeError::Identity(e.to_string()))?
                .as_bytes(),
        )
        .map_err(|e| NodeError::Identity(e.to_string()))?;
        let json =
            serde_json::to_vec_pretty(identity).map_err(|e| NodeError::Identity(e.to_string()))?;
        keygate_client::write_private(&self.identity_path(), &json)
            .map_err(|e| NodeError::Identity(e.to_string()))
    }

    /// Joins through `client` (an anonymous, pinned proxy client).
    pub async fn join(
        &self,
        client: &ApiClient,
        token: &str,
        node_name: &str,
        addr: Option<String>,
        self_labels: std::collections::BTreeMap<String, String>,
    ) -> Result<LoadedIdentity, NodeError> {
        let key = ClientKey::generate();
        let req = JoinRequest {
            token: token.to_owned(),
            node_name: node_name.to_owned(),
            ssh_public_key: key
                .public_openssh()
                .map_err(|e| NodeError::Identity(e.to_string()))?,
            tls_spki_b64: spki_b64(&key)?,
            addr,
            self_labels,
        };
        let identity: NodeIdentity = client
            .post("/v1/join", &req)
            .await
            .map_err(NodeError::Api)?;
        self.save(&key, &identity)?;
        Ok(LoadedIdentity { key, identity })
    }
}

impl LoadedIdentity {
    /// The node certificate and key, replaceable when renewed.
    pub fn rotating_cert(&self) -> Result<keygate_tls::RotatingClientCert, NodeError> {
        let (chain, key) = self.tls_parts()?;
        keygate_tls::RotatingClientCert::new(chain, &key)
            .map_err(|e| NodeError::Identity(e.to_string()))
    }

    /// The certificate chain and key for TLS.
    pub fn tls_parts(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), NodeError> {
        let cert = CertificateDer::from_pem_slice(self.identity.x509_cert_pem.as_bytes())
            .map_err(|e| NodeError::Identity(format!("node certificate: {e}")))?;
        Ok((
            vec![cert],
            PrivateKeyDer::Pkcs8(self.key.pkcs8_der().to_vec().into()),
        ))
    }

    /// TLS client settings trusting the host CA and presenting `cert`.
    pub fn tls_client(
        &self,
        cert: &keygate_tls::RotatingClientCert,
    ) -> Result<keygate_tls::rustls::ClientConfig, NodeError> {
        let ca = CertificateDer::from_pem_slice(self.identity.host_ca_pem.as_bytes())
            .map_err(|e| NodeError::Identity(format!("host CA: {e}")))?;
        cert.client_config(&[ca])
            .map_err(|e| NodeError::Identity(e.to_string()))
    }
}
