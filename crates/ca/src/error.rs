//! The one error type of this crate.

use thiserror::Error;

/// Everything that can go wrong while creating, loading or using a CA, or
/// while checking a certificate. Variants are grouped by who is at fault.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaError {
    // === the caller's request ===
    /// A certificate request is malformed (empty principals, inverted
    /// validity, bad extension…). The caller must fix the request.
    #[error("invalid certificate request: {field}: {reason}")]
    InvalidRequest {
        /// Which request field is wrong.
        field: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// A public key given to us (OpenSSH line, SPKI DER) cannot be parsed or
    /// is of a type this use does not accept.
    #[error("invalid public key: {reason}")]
    InvalidPublicKey {
        /// Why the key was refused, e.g. "not an OpenSSH public key line".
        reason: String,
    },

    // === a certificate presented to us ===
    /// The bytes are not a certificate we can read (garbage, truncated,
    /// missing the Keygate extension…).
    #[error("malformed certificate: {reason}")]
    MalformedCertificate {
        /// What could not be parsed.
        reason: String,
    },
    /// The certificate is well-formed but must not be accepted: untrusted
    /// CA, bad signature, wrong type, outside its validity window.
    #[error("certificate rejected: {reason}")]
    CertificateRejected {
        /// Why it was rejected, phrased for an operator.
        reason: String,
    },

    // === stored key material ===
    /// The key-encryption key has the wrong length or cannot be used.
    #[error("invalid key-encryption key: {reason}")]
    InvalidKek {
        /// What is wrong with it.
        reason: String,
    },
    /// A sealed blob could not be opened: wrong key-encryption key, wrong
    /// purpose (aad), or the blob was altered. Check that the KEK file is the
    /// one this database was created with.
    #[error(
        "cannot decrypt sealed data for {aad:?}: wrong key-encryption key, or the data was altered"
    )]
    Unseal {
        /// The purpose the blob was opened for.
        aad: String,
    },
    /// Stored CA data is inconsistent or unreadable (bad base64, unknown
    /// version, private key not matching the stored public key…).
    #[error("corrupt stored CA data: {reason}")]
    CorruptStore {
        /// What is inconsistent.
        reason: String,
    },

    // === the crypto backend ===
    /// Key generation, signing or encoding failed inside the crypto library
    /// or a remote signer. Usually not fixable by the caller; retry or check
    /// the signer backend.
    #[error("crypto operation failed: {operation}: {reason}")]
    Crypto {
        /// What we were doing ("sign ssh certificate", "generate p-256 key"…).
        operation: &'static str,
        /// The library's explanation, if any.
        reason: String,
    },

    // === a KRL or detached signature presented to us ===
    /// The bytes are not an OpenSSH KRL this crate accepts: truncated,
    /// trailing data, unknown or critical sections, a signature section,
    /// more entries than the decoder's bounds. Regenerate the KRL (Keygate
    /// emits only unsigned KRLs with serial and key-id lists and SHA-256
    /// fingerprints).
    #[error("malformed KRL: {reason}")]
    MalformedKrl {
        /// What could not be parsed or is refused.
        reason: String,
    },
    /// A detached SSH signature (SSHSIG) must not be accepted: unreadable,
    /// wrong namespace, untrusted key, or the signature does not match the
    /// data. Do not use the signed file; fetch it and its signature again.
    #[error("SSH signature rejected: {reason}")]
    SignatureRejected {
        /// Why it was rejected, phrased for an operator.
        reason: String,
    },
}

impl CaError {
    pub(crate) fn request(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn public_key(reason: impl Into<String>) -> Self {
        Self::InvalidPublicKey {
            reason: reason.into(),
        }
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Self::MalformedCertificate {
            reason: reason.into(),
        }
    }

    pub(crate) fn rejected(reason: impl Into<String>) -> Self {
        Self::CertificateRejected {
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        Self::CorruptStore {
            reason: reason.into(),
        }
    }

    pub(crate) fn crypto(operation: &'static str, reason: impl ToString) -> Self {
        Self::Crypto {
            operation,
            reason: reason.to_string(),
        }
    }
}
