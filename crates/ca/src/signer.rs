//! The [`Signer`] trait every CA key sits behind, and its software
//! implementation.
//!
//! SSH certificates (Ed25519) and X.509 certificates (ECDSA P-256) are both
//! signed through this trait, so a KMS or HSM backend can replace
//! [`SoftwareSigner`] without touching the certificate templates.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use russh::keys::ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData};
use zeroize::Zeroizing;

use crate::error::CaError;

/// Ed25519 raw public key length.
const ED25519_LEN: usize = 32;
/// Uncompressed SEC1 P-256 point length (`0x04 || X || Y`).
const P256_POINT_LEN: usize = 65;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE {
/// AlgorithmIdentifier { id-Ed25519 }, BIT STRING (0 unused bits) }.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of a P-256 SubjectPublicKeyInfo (RFC 5480): id-ecPublicKey with
/// the prime256v1 named curve, then the BIT STRING header.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The key types a CA signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// Ed25519: SSH certificates (and client keys).
    Ed25519,
    /// ECDSA over NIST P-256 with SHA-256: X.509 certificates.
    EcdsaP256,
}

/// A signer's public key: algorithm plus raw key bytes (Ed25519: 32 bytes;
/// P-256: the 65-byte uncompressed point). Built only through
/// [`SignerPublicKey::new`], so the length always fits the algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerPublicKey {
    /// Which algorithm the key belongs to.
    algorithm: KeyAlgorithm,
    /// The raw public key bytes, checked against `algorithm`.
    raw: Vec<u8>,
}

/// Something that holds a CA private key and signs with it.
///
/// Signature formats are the ones the certificate formats embed:
/// Ed25519 → the 64-byte signature; ECDSA P-256 → the DER `ECDSA-Sig-Value`
/// over SHA-256 of `msg` (what X.509 carries).
pub trait Signer: Send + Sync {
    /// The public half of the key.
    fn public_key(&self) -> SignerPublicKey;

    /// Signs `msg` (the signer hashes it as its algorithm requires).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CaError>;
}

/// A private key held in process memory (the default; KMS/HSM come later).
pub struct SoftwareSigner {
    /// The key as PKCS#8 DER, kept for sealing; wiped on drop.
    pkcs8: Zeroizing<Vec<u8>>,
    /// The parsed key; aws-lc frees (and cleanses) it on drop.
    key: SoftwareKey,
    /// Cached public key.
    public: SignerPublicKey,
}

/// The parsed private key of a [`SoftwareSigner`].
enum SoftwareKey {
    /// Ed25519 key pair.
    Ed25519(Ed25519KeyPair),
    /// P-256 key pair producing ASN.1 DER signatures.
    EcdsaP256(EcdsaKeyPair),
}

// === impl SignerPublicKey ===

impl SignerPublicKey {
    /// Wraps raw public key bytes, checking their length (and, for P-256,
    /// the uncompressed-point marker).
    pub fn new(algorithm: KeyAlgorithm, raw: Vec<u8>) -> Result<Self, CaError> {
        let ok = match algorithm {
            KeyAlgorithm::Ed25519 => raw.len() == ED25519_LEN,
            KeyAlgorithm::EcdsaP256 => raw.len() == P256_POINT_LEN && raw.first() == Some(&0x04),
        };
        if !ok {
            return Err(CaError::public_key(format!(
                "{} bytes are not a raw {algorithm:?} public key",
                raw.len()
            )));
        }
        Ok(Self { algorithm, raw })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The raw key bytes (see the type docs for the layout).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The DER SubjectPublicKeyInfo, as found in X.509 certificates.
    pub fn spki_der(&self) -> Vec<u8> {
        let prefix: &[u8] = match self.algorithm {
            KeyAlgorithm::Ed25519 => &ED25519_SPKI_PREFIX,
            KeyAlgorithm::EcdsaP256 => &P256_SPKI_PREFIX,
        };
        let mut der = Vec::with_capacity(prefix.len() + self.raw.len());
        der.extend_from_slice(prefix);
        der.extend_from_slice(&self.raw);
        der
    }

    /// The key in ssh-key's representation.
    pub(crate) fn to_ssh_key_data(&self) -> Result<KeyData, CaError> {
        match self.algorithm {
            KeyAlgorithm::Ed25519 => {
                let raw: [u8; ED25519_LEN] = self
                    .raw
                    .as_slice()
                    .try_into()
                    .map_err(|_| CaError::public_key("ed25519 key is not 32 bytes"))?;
                Ok(KeyData::Ed25519(Ed25519PublicKey(raw)))
            }
            KeyAlgorithm::EcdsaP256 => EcdsaPublicKey::from_sec1_bytes(&self.raw)
                .map(KeyData::Ecdsa)
                .map_err(|e| CaError::public_key(format!("p-256 point: {e}"))),
        }
    }

    /// The key as an OpenSSH public key line (`ssh-ed25519 AAAA…`), no comment.
    pub fn to_openssh(&self) -> Result<String, CaError> {
        let key = russh::keys::PublicKey::from(self.to_ssh_key_data()?);
        key.to_openssh()
            .map_err(|e| CaError::crypto("encode openssh public key", e))
    }
}

// === impl SoftwareSigner ===

impl SoftwareSigner {
    /// Generates a fresh key pair.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, CaError> {
        let rng = SystemRandom::new();
        let doc = match algorithm {
            KeyAlgorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
            KeyAlgorithm::EcdsaP256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            }
        }
        .map_err(|e| CaError::crypto("generate key pair", e))?;
        Self::from_pkcs8(algorithm, doc.as_ref())
    }

    /// Loads a key pair from unencrypted PKCS#8 DER.
    pub fn from_pkcs8(algorithm: KeyAlgorithm, der: &[u8]) -> Result<Self, CaError> {
        let (key, raw) = match algorithm {
            KeyAlgorithm::Ed25519 => {
                let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| {
                    CaError::corrupt(format!("not an Ed25519 PKCS#8 private key: {e}"))
                })?;
                let raw = pair.public_key().as_ref().to_vec();
                (SoftwareKey::Ed25519(pair), raw)
            }
            KeyAlgorithm::EcdsaP256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der).map_err(
                    |e| CaError::corrupt(format!("not a P-256 PKCS#8 private key: {e}")),
                )?;
                let raw = pair.public_key().as_ref().to_vec();
                (SoftwareKey::EcdsaP256(pair), raw)
            }
        };
        Ok(Self {
            pkcs8: Zeroizing::new(der.to_vec()),
            key,
            public: SignerPublicKey::new(algorithm, raw)?,
        })
    }

    /// The private key as PKCS#8 DER, for sealing. Handle with care.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }
}

impl Signer for SoftwareSigner {
    fn public_key(&self) -> SignerPublicKey {
        self.public.clone()
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CaError> {
        match &self.key {
            SoftwareKey::Ed25519(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
            SoftwareKey::EcdsaP256(pair) => pair
                .sign(&SystemRandom::new(), msg)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|e| CaError::crypto("ecdsa sign", e)),
        }
    }
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareSigner")
            .field("public", &self.public)
            .field("private", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]

    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ED25519, UnparsedPublicKey};

    use super::*;

    #[test]
    fn ed25519_signatures_verify() {
        let signer = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
        let sig = signer.sign(b"hello").unwrap();
        assert_eq!(sig.len(), 64);
        let public = signer.public_key();
        UnparsedPublicKey::new(&ED25519, public.raw())
            .verify(b"hello", &sig)
            .unwrap();
        assert!(
            UnparsedPublicKey::new(&ED25519, public.raw())
                .verify(b"other", &sig)
                .is_err()
        );
    }

    #[test]
    fn p256_signatures_verify() {
        let signer = SoftwareSigner::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let sig = signer.sign(b"hello").unwrap();
        let public = signer.public_key();
        assert_eq!(public.raw().len(), 65);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public.raw())
            .verify(b"hello", &sig)
            .unwrap();
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
            let a = SoftwareSigner::generate(alg).unwrap();
            let b = SoftwareSigner::from_pkcs8(alg, a.pkcs8_der()).unwrap();
            assert_eq!(a.public_key(), b.public_key());
        }
    }

    #[test]
    fn garbage_pkcs8_is_refused() {
        for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
            assert!(matches!(
                SoftwareSigner::from_pkcs8(alg, b"garbage"),
                Err(CaError::CorruptStore { .. })
            ));
        }
        // A valid key of the other algorithm is refused too.
        let ed = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
        assert!(SoftwareSigner::from_pkcs8(KeyAlgorithm::EcdsaP256, ed.pkcs8_der()).is_err());
    }

    #[test]
    fn public_key_lengths_are_checked() {
        assert!(SignerPublicKey::new(KeyAlgorithm::Ed25519, vec![0; 31]).is_err());
        assert!(SignerPublicKey::new(KeyAlgorithm::EcdsaP256, vec![0; 65]).is_err());
        assert!(SignerPublicKey::new(KeyAlgorithm::EcdsaP256, vec![4; 64]).is_err());
        assert!(SignerPublicKey::new(KeyAlgorithm::Ed25519, vec![7; 32]).is_ok());
    }

    #[test]
    fn spki_der_parses_as_the_same_key() {
        use x509_parser::prelude::FromDer;
        use x509_parser::x509::SubjectPublicKeyInfo;
        for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
            let public = SoftwareSigner::generate(alg).unwrap().public_key();
            let der = public.spki_der();
            let (rest, spki) = SubjectPublicKeyInfo::from_der(&der).unwrap();
            assert!(rest.is_empty());
            assert_eq!(spki.subject_public_key.data.as_ref(), public.raw());
        }
    }

    #[test]
    fn openssh_encoding_of_ed25519() {
        let public = SoftwareSigner::generate(KeyAlgorithm::Ed25519)
            .unwrap()
            .public_key();
        let line = public.to_openssh().unwrap();
        assert!(line.starts_with("ssh-ed25519 AAAA"), "{line}");
    }

    #[test]
    fn debug_is_redacted() {
        let signer = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
        let shown = format!("{signer:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains(&format!("{:?}", signer.pkcs8_der())));
    }
}
