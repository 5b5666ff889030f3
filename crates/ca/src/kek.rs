//! The key-encryption key (KEK) and the sealed blobs it produces.
//!
//! CA private keys (and, elsewhere, TOTP secrets) are stored in the database
//! only as [`Sealed`] blobs. The KEK lives apart from the database (a 0600
//! file or an environment variable), so a stolen database alone reveals no
//! key. The `aad` given to [`Kek::seal`] names the blob's purpose
//! (`"ca/user/ssh"`…): a blob moved to another purpose fails to open.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::CaError;

/// Length of a KEK in bytes (AES-256).
pub const KEK_LEN: usize = 32;

/// The only [`Sealed`] format version this build writes and reads.
const SEALED_VERSION: u8 = 1;

/// AES-GCM authentication tag length; a ciphertext shorter than this is
/// certainly not ours.
const TAG_LEN: usize = 16;

/// A 256-bit key-encryption key. Debug never prints it.
#[derive(Clone)]
pub struct Kek {
    /// The raw AES-256 key, wiped from memory on drop.
    key: Zeroizing<[u8; KEK_LEN]>,
}

/// An encrypted blob: AES-256-GCM ciphertext (with tag) and its nonce.
///
/// Serialized as `{"v":1,"nonce":"<b64>","ct":"<b64>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Format version; only 1 exists.
    pub v: u8,
    /// The 96-bit random nonce, standard base64.
    pub nonce: String,
    /// Ciphertext followed by the 16-byte GCM tag, standard base64.
    pub ct: String,
}

// === impl Kek ===

impl Kek {
    /// A fresh random KEK from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, CaError> {
        let mut key = Zeroizing::new([0u8; KEK_LEN]);
        aws_lc_rs::rand::fill(key.as_mut_slice())
            .map_err(|e| CaError::crypto("generate key-encryption key", e))?;
        Ok(Self { key })
    }

    /// Loads a KEK from exactly [`KEK_LEN`] raw bytes (the key file's content).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CaError> {
        let array: [u8; KEK_LEN] = bytes.try_into().map_err(|_| CaError::InvalidKek {
            reason: format!(
                "expected exactly {KEK_LEN} bytes, got {}; regenerate the key file or restore the original one",
                bytes.len()
            ),
        })?;
        Ok(Self {
            key: Zeroizing::new(array),
        })
    }

    /// The raw key, for the caller to write to its 0600 key file.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEK_LEN]> {
        self.key.clone()
    }

    /// Encrypts `plaintext` for the purpose named by `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, CaError> {
        let key = self.aead_key()?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|e| CaError::crypto("generate nonce", e))?;
        let mut buf = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|e| CaError::crypto("seal", e))?;
        Ok(Sealed {
            v: SEALED_VERSION,
            nonce: B64.encode(nonce),
            ct: B64.encode(&buf),
        })
    }

    /// Decrypts a blob sealed with this KEK for the same `aad`.
    ///
    /// Any mismatch (other KEK, other purpose, altered bytes) gives the same
    /// [`CaError::Unseal`]: AES-GCM cannot tell them apart, by design.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CaError> {
        if sealed.v != SEALED_VERSION {
            return Err(CaError::corrupt(format!(
                "sealed blob has version {}, this build reads only version {SEALED_VERSION}",
                sealed.v
            )));
        }
        let nonce_bytes = B64
            .decode(&sealed.nonce)
            .map_err(|e| CaError::corrupt(format!("sealed nonce is not base64: {e}")))?;
        let nonce: [u8; NONCE_LEN] = nonce_bytes.as_slice().try_into().map_err(|_| {
            CaError::corrupt(format!(
                "sealed nonce must be {NONCE_LEN} bytes, got {}",
                nonce_bytes.len()
            ))
        })?;
        let mut buf = Zeroizing::new(
            B64.decode(&sealed.ct)
                .map_err(|e| CaError::corrupt(format!("sealed ciphertext is not base64: {e}")))?,
        );
        if buf.len() < TAG_LEN {
            return Err(CaError::corrupt(
                "sealed ciphertext is shorter than its tag",
            ));
        }
        let key = self.aead_key()?;
        let plain_len = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                buf.as_mut_slice(),
            )
            .map_err(|_| CaError::Unseal {
                aad: String::from_utf8_lossy(aad).into_owned(),
            })?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }

    fn aead_key(&self) -> Result<LessSafeKey, CaError> {
        let unbound = UnboundKey::new(&AES_256_GCM, self.key.as_slice())
            .map_err(|e| CaError::crypto("load key-encryption key", e))?;
        Ok(LessSafeKey::new(unbound))
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<redacted>)")
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

    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let kek = Kek::generate().unwrap();
        let sealed = kek.seal(b"private key bytes", b"ca/user/ssh").unwrap();
        assert_eq!(sealed.v, 1);
        let opened = kek.open(&sealed, b"ca/user/ssh").unwrap();
        assert_eq!(opened.as_slice(), b"private key bytes");
    }

    #[test]
    fn nonces_differ_between_seals() {
        let kek = Kek::generate().unwrap();
        let a = kek.seal(b"same", b"x").unwrap();
        let b = kek.seal(b"same", b"x").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ct, b.ct);
    }

    #[test]
    fn serde_shape_is_v_nonce_ct() {
        let kek = Kek::generate().unwrap();
        let sealed = kek.seal(b"abc", b"x").unwrap();
        let json = serde_json::to_value(&sealed).unwrap();
        let obj = json.as_object().unwrap();
        assert_eq!(obj.len(), 3);
        assert_eq!(obj["v"], 1);
        assert!(obj["nonce"].is_string());
        assert!(obj["ct"].is_string());
        let back: Sealed = serde_json::from_value(json).unwrap();
        assert_eq!(back, sealed);
    }

    #[test]
    fn wrong_aad_is_refused() {
        let kek = Kek::generate().unwrap();
        let sealed = kek.seal(b"secret", b"ca/user/ssh").unwrap();
        let err = kek.open(&sealed, b"ca/host/ssh").unwrap_err();
        assert!(
            matches!(err, CaError::Unseal { ref aad } if aad == "ca/host/ssh"),
            "{err}"
        );
    }

    #[test]
    fn wrong_key_is_refused() {
        let sealed = Kek::generate().unwrap().seal(b"secret", b"a").unwrap();
        let other = Kek::generate().unwrap();
        assert!(matches!(
            other.open(&sealed, b"a"),
            Err(CaError::Unseal { .. })
        ));
    }

    #[test]
    fn tampered_ciphertext_is_refused() {
        let kek = Kek::generate().unwrap();
        let mut sealed = kek.seal(b"secret", b"a").unwrap();
        let mut ct = B64.decode(&sealed.ct).unwrap();
        ct[0] ^= 0x01;
        sealed.ct = B64.encode(ct);
        assert!(matches!(
            kek.open(&sealed, b"a"),
            Err(CaError::Unseal { .. })
        ));
    }

    #[test]
    fn tampered_nonce_is_refused() {
        let kek = Kek::generate().unwrap();
        let mut sealed = kek.seal(b"secret", b"a").unwrap();
        let mut nonce = B64.decode(&sealed.nonce).unwrap();
        nonce[11] ^= 0x80;
        sealed.nonce = B64.encode(nonce);
        assert!(matches!(
            kek.open(&sealed, b"a"),
            Err(CaError::Unseal { .. })
        ));
    }

    #[test]
    fn malformed_blobs_are_refused_cleanly() {
        let kek = Kek::generate().unwrap();
        let good = kek.seal(b"secret", b"a").unwrap();
        let cases = [
            Sealed {
                v: 2,
                ..good.clone()
            },
            Sealed {
                nonce: "!!!".into(),
                ..good.clone()
            },
            Sealed {
                nonce: B64.encode([0u8; 8]),
                ..good.clone()
            },
            Sealed {
                ct: "not base64".into(),
                ..good.clone()
            },
            Sealed {
                ct: B64.encode([0u8; 15]),
                ..good.clone()
            },
            Sealed {
                ct: String::new(),
                ..good
            },
        ];
        for case in cases {
            let err = kek.open(&case, b"a").unwrap_err();
            assert!(
                matches!(err, CaError::CorruptStore { .. }),
                "{case:?} gave {err}"
            );
        }
    }

    #[test]
    fn from_bytes_requires_exactly_32_bytes() {
        assert!(matches!(
            Kek::from_bytes(&[0u8; 31]),
            Err(CaError::InvalidKek { .. })
        ));
        assert!(matches!(
            Kek::from_bytes(&[0u8; 33]),
            Err(CaError::InvalidKek { .. })
        ));
        assert!(matches!(
            Kek::from_bytes(&[]),
            Err(CaError::InvalidKek { .. })
        ));
        let kek = Kek::generate().unwrap();
        let again = Kek::from_bytes(kek.to_bytes().as_slice()).unwrap();
        let sealed = kek.seal(b"x", b"a").unwrap();
        assert_eq!(again.open(&sealed, b"a").unwrap().as_slice(), b"x");
    }

    #[test]
    fn debug_is_redacted() {
        let kek = Kek::from_bytes(&[0x41; 32]).unwrap();
        let shown = format!("{kek:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("65") && !shown.contains("41") && !shown.contains('A'));
    }
}
