use rand::RngCore;
use russh::keys::ssh_key::{LineEnding, PrivateKey, private::Ed25519Keypair};
use zeroize::Zeroizing;

use crate::ClientError;

/// PKCS#8 v1 header for an Ed25519 private key (RFC 8410): the DER
/// wrapping is fixed, only the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A client's Ed25519 key: OpenSSH form for ssh, PKCS#8 for TLS.
pub struct ClientKey {
    /// The secret seed.
    seed: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKey(<redacted>)")
    }
}

impl ClientKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(seed.as_mut());
        Self { seed }
    }

    /// Reads an OpenSSH private key file written by [`Self::to_openssh`].
    pub fn from_openssh(text: &str) -> Result<Self, ClientError> {
        let key = PrivateKey::from_openssh(text)
            .map_err(|e| ClientError::Material(format!("not an OpenSSH private key: {e}")))?;
        let kp = key
            .key_data()
            .ed25519()
            .ok_or_else(|| ClientError::Material("only Ed25519 keys are supported".into()))?;
        Ok(Self {
            seed: Zeroizing::new(kp.private.to_bytes()),
        })
    }

    fn private_key(&self) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&self.seed))
    }

    /// OpenSSH private key file contents.
    pub fn to_openssh(&self) -> Result<Zeroizing<String>, ClientError> {
        self.private_key()
            .to_openssh(LineEnding::LF)
            .map_err(|e| ClientError::Material(format!("cannot encode key: {e}")))
    }

    /// `ssh-ed25519 AAAA…` public key line.
    pub fn public_openssh(&self) -> Result<String, ClientError> {
        self.private_key()
            .public_key()
            .to_openssh()
            .map_err(|e| ClientError::Material(format!("cannot encode public key: {e}")))
    }

    /// PKCS#8 DER for TLS client authentication.
    pub fn pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(48));
        v.extend_from_slice(&ED25519_PKCS8_PREFIX);
        v.extend_from_slice(self.seed.as_ref());
        v
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn openssh_round_trip_and_pkcs8_is_usable_by_tls() {
        let k = ClientKey::generate();
        let text = k.to_openssh().unwrap();
        let back = ClientKey::from_openssh(&text).unwrap();
        assert_eq!(k.public_openssh().unwrap(), back.public_openssh().unwrap());
        keygate_tls::install_crypto_provider();
        let der = keygate_tls::PrivateKeyDer::Pkcs8(k.pkcs8_der().to_vec().into());
        let provider = keygate_tls::rustls::crypto::aws_lc_rs::default_provider();
        assert!(provider.key_provider.load_private_key(der).is_ok());
        assert!(ClientKey::from_openssh("garbage").is_err());
    }
}
