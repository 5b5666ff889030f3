//! Detached SSH signatures (`PROTOCOL.sshsig`, what `ssh-keygen -Y sign`
//! writes), made through a [`Signer`] and checked against a list of trusted
//! keys. Keygate signs each KRL in [`crate::KRL_SIG_NAMESPACE`] so that hosts
//! can check it with `ssh-keygen -Y verify` before installing it.
//!
//! The blob format and armor come from ssh-key (via russh); the policy —
//! which namespace, hash and key to accept — is ours.

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::{Algorithm, HashAlg, LineEnding, Signature, SshSig};

use crate::error::CaError;
use crate::signer::{KeyAlgorithm, Signer};
use crate::ssh::parse_openssh_public_key;

/// Largest armored signature [`sshsig_verify`] reads; an Ed25519 one is
/// about 300 bytes.
const MAX_ARMORED_LEN: usize = 16 * 1024;

fn rejected(reason: impl Into<String>) -> CaError {
    CaError::SignatureRejected {
        reason: reason.into(),
    }
}

/// Signs `message` with `signer` (an Ed25519 key) in `namespace`, hashing
/// it with SHA-512 as `ssh-keygen -Y sign` does; returns the armored
/// signature (`-----BEGIN SSH SIGNATURE-----`, base64 in 70 columns).
pub fn sshsig_sign(
    signer: &dyn Signer,
    namespace: &str,
    message: &[u8],
) -> Result<String, CaError> {
    if namespace.is_empty() {
        return Err(CaError::request("namespace", "must not be empty"));
    }
    let public = signer.public_key();
    if public.algorithm() != KeyAlgorithm::Ed25519 {
        return Err(CaError::crypto(
            "sign sshsig",
            "SSH signatures are made with Ed25519 keys only",
        ));
    }
    let signed_data = SshSig::signed_data(namespace, HashAlg::Sha512, message)
        .map_err(|e| CaError::crypto("build sshsig signed data", e))?;
    let raw = signer.sign(&signed_data)?;
    let signature =
        Signature::new(Algorithm::Ed25519, raw).map_err(|e| CaError::crypto("sign sshsig", e))?;
    SshSig::new(
        public.to_ssh_key_data()?,
        namespace,
        HashAlg::Sha512,
        signature,
    )
    .and_then(|sig| sig.to_pem(LineEnding::LF))
    .map_err(|e| CaError::crypto("encode sshsig", e))
}

/// Checks an armored SSH signature over `message`: version 1, exactly
/// `namespace`, hash `sha512` or `sha256`, made by one of
/// `trusted_public_key_lines` (OpenSSH public key lines; Ed25519 only), and
/// a valid signature. The first problem found is returned.
pub fn sshsig_verify(
    armored: &str,
    trusted_public_key_lines: &[String],
    namespace: &str,
    message: &[u8],
) -> Result<(), CaError> {
    if armored.len() > MAX_ARMORED_LEN {
        return Err(rejected(format!(
            "{} bytes is too long for an SSH signature",
            armored.len()
        )));
    }
    let sig = SshSig::from_pem(armored.trim())
        .map_err(|e| rejected(format!("not an armored SSH signature: {e}")))?;
    if sig.version() != SshSig::VERSION {
        return Err(rejected(format!(
            "unsupported signature version {}",
            sig.version()
        )));
    }
    if sig.namespace() != namespace {
        return Err(rejected(format!(
            "signature is for namespace {:?}, expected {namespace:?}",
            sig.namespace()
        )));
    }
    // HashAlg is non-exhaustive: accept exactly the two PROTOCOL.sshsig names.
    if !matches!(sig.hash_alg(), HashAlg::Sha512 | HashAlg::Sha256) {
        return Err(rejected(format!(
            "unsupported hash algorithm {:?}",
            sig.hash_alg()
        )));
    }
    if trusted_public_key_lines.is_empty() {
        return Err(rejected("no trusted signing keys are configured"));
    }
    let mut trusted = Vec::with_capacity(trusted_public_key_lines.len());
    for (i, line) in trusted_public_key_lines.iter().enumerate() {
        let key = parse_openssh_public_key(line)
            .map_err(|e| CaError::public_key(format!("trusted signing key #{i}: {e}")))?;
        trusted.push(key.key_data().clone());
    }
    if !trusted.iter().any(|k| k == sig.public_key()) {
        let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256);
        return Err(rejected(format!(
            "signed by an untrusted key ({fingerprint})"
        )));
    }
    let KeyData::Ed25519(key) = sig.public_key() else {
        return Err(rejected(format!(
            "signing key type {} is not supported (Ed25519 only)",
            sig.public_key().algorithm()
        )));
    };
    if sig.algorithm() != Algorithm::Ed25519 {
        return Err(rejected(format!(
            "signature algorithm {} does not match the Ed25519 key",
            sig.algorithm()
        )));
    }
    // OpenSSH rebuilds the signed data with an empty reserved field, so we do
    // too (SshSig::signed_data), whatever the blob's reserved field holds.
    let signed_data = SshSig::signed_data(sig.namespace(), sig.hash_alg(), message)
        .map_err(|e| rejected(format!("cannot rebuild the signed data: {e}")))?;
    UnparsedPublicKey::new(&ED25519, key.as_ref())
        .verify(&signed_data, sig.signature_bytes())
        .map_err(|_| rejected("the signature does not match the data"))
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
    use crate::krl::KRL_SIG_NAMESPACE;
    use crate::signer::SoftwareSigner;

    fn key() -> (SoftwareSigner, String) {
        let signer = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
        let line = signer.public_key().to_openssh().unwrap();
        (signer, line)
    }

    fn is_rejected(result: Result<(), CaError>, needle: &str) {
        match result {
            Err(CaError::SignatureRejected { reason }) => {
                assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
            }
            other => panic!("expected a rejection containing {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn sign_then_verify() {
        let (signer, line) = key();
        let armored = sshsig_sign(&signer, KRL_SIG_NAMESPACE, b"krl bytes").unwrap();
        assert!(armored.starts_with("-----BEGIN SSH SIGNATURE-----\n"));
        assert!(armored.trim_end().ends_with("-----END SSH SIGNATURE-----"));
        assert!(armored.lines().all(|l| l.len() <= 70), "{armored}");
        sshsig_verify(&armored, &[line], KRL_SIG_NAMESPACE, b"krl bytes").unwrap();
    }

    #[test]
    fn tampered_message_wrong_namespace_untrusted_key_are_rejected() {
        let (signer, line) = key();
        let (_, other) = key();
        let armored = sshsig_sign(&signer, KRL_SIG_NAMESPACE, b"krl bytes").unwrap();
        let trusted = std::slice::from_ref(&line);
        is_rejected(
            sshsig_verify(&armored, trusted, KRL_SIG_NAMESPACE, b"krl bytez"),
            "does not match",
        );
        is_rejected(
            sshsig_verify(&armored, trusted, "file", b"krl bytes"),
            "namespace",
        );
        is_rejected(
            sshsig_verify(&armored, &[other], KRL_SIG_NAMESPACE, b"krl bytes"),
            "untrusted",
        );
        is_rejected(
            sshsig_verify(&armored, &[], KRL_SIG_NAMESPACE, b"krl bytes"),
            "no trusted",
        );
        assert!(matches!(
            sshsig_verify(
                &armored,
                &["ssh-ed25519 !!".to_owned()],
                KRL_SIG_NAMESPACE,
                b"krl bytes"
            ),
            Err(CaError::InvalidPublicKey { .. })
        ));
    }

    #[test]
    fn garbage_and_oversized_armor_are_rejected() {
        let (signer, line) = key();
        let trusted = std::slice::from_ref(&line);
        for bad in [
            "",
            "garbage",
            "-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n",
            "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n",
        ] {
            is_rejected(sshsig_verify(bad, trusted, "n", b"m"), "not an armored");
        }
        let armored = sshsig_sign(&signer, "n", b"m").unwrap();
        // Any truncation of the armor is refused, never a panic.
        for cut in 0..armored.len() - 1 {
            if let Some(prefix) = armored.get(..cut) {
                assert!(sshsig_verify(prefix, trusted, "n", b"m").is_err());
            }
        }
        let huge = "A".repeat(MAX_ARMORED_LEN + 1);
        is_rejected(sshsig_verify(&huge, trusted, "n", b"m"), "too long");
    }

    #[test]
    fn signing_needs_ed25519_and_a_namespace() {
        let p256 = SoftwareSigner::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert!(matches!(
            sshsig_sign(&p256, "n", b"m"),
            Err(CaError::Crypto { .. })
        ));
        let (signer, _) = key();
        assert!(matches!(
            sshsig_sign(&signer, "", b"m"),
            Err(CaError::InvalidRequest { .. })
        ));
    }

    #[test]
    fn sha256_signatures_are_accepted() {
        // Build a sha256 SSHSIG by hand, as other signers may.
        let (signer, line) = key();
        let data = SshSig::signed_data("n", HashAlg::Sha256, b"m").unwrap();
        let sig = Signature::new(Algorithm::Ed25519, signer.sign(&data).unwrap()).unwrap();
        let armored = SshSig::new(
            signer.public_key().to_ssh_key_data().unwrap(),
            "n",
            HashAlg::Sha256,
            sig,
        )
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap();
        sshsig_verify(&armored, std::slice::from_ref(&line), "n", b"m").unwrap();
        // The hash algorithm is part of the signed data: relabelling fails.
        let relabelled = SshSig::new(
            signer.public_key().to_ssh_key_data().unwrap(),
            "n",
            HashAlg::Sha512,
            SshSig::from_pem(&armored).unwrap().signature().clone(),
        )
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap();
        is_rejected(
            sshsig_verify(&relabelled, &[line], "n", b"m"),
            "does not match",
        );
    }
}
