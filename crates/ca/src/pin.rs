//! CA pins and SSH key fingerprints: the short strings humans and join
//! commands carry to say "trust exactly this key".

use russh::keys::{HashAlg, PublicKey};
use sha2::{Digest, Sha256};

use crate::error::CaError;
use crate::x509::parse_cert;

/// Prefix of every CA pin.
const PIN_PREFIX: &str = "sha256:";

/// The CA pin of a (host) CA certificate: `sha256:` + lowercase hex of
/// SHA-256 over its DER SubjectPublicKeyInfo.
///
/// Pinning the key rather than the certificate keeps the pin stable when
/// the CA certificate is re-issued for the same key.
pub fn ca_pin(ca_cert_der: &[u8]) -> Result<String, CaError> {
    let cert = parse_cert(ca_cert_der)?;
    let digest = Sha256::digest(cert.tbs_certificate.subject_pki.raw);
    Ok(format!("{PIN_PREFIX}{}", hex::encode(digest)))
}

/// Whether `cert_der`'s public key matches `pin` (constant-time compare;
/// unparseable certificates and malformed pins never match).
pub fn verify_pin(cert_der: &[u8], pin: &str) -> bool {
    let Ok(expected) = ca_pin(cert_der) else {
        return false;
    };
    let given = pin.trim().to_ascii_lowercase();
    aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes()).is_ok()
}

/// The fingerprint of an OpenSSH public key line exactly as `ssh-keygen -l`
/// prints it: `SHA256:` + unpadded base64.
pub fn ssh_fingerprint(openssh_public_key: &str) -> Result<String, CaError> {
    let key = PublicKey::from_openssh(openssh_public_key.trim())
        .map_err(|e| CaError::public_key(format!("not an OpenSSH public key line: {e}")))?;
    Ok(key.fingerprint(HashAlg::Sha256).to_string())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]

    use time::macros::datetime;

    use super::*;
    use crate::{CaKind, CertAuthority};

    #[test]
    fn pin_is_stable_and_well_formed() {
        let ca = CertAuthority::generate(CaKind::Host, "example", datetime!(2030-01-01 0:00 UTC))
            .unwrap();
        let pin = ca_pin(ca.x509_cert_der()).unwrap();
        assert_eq!(pin, ca_pin(ca.x509_cert_der()).unwrap());
        let hex_part = pin.strip_prefix("sha256:").unwrap();
        assert_eq!(hex_part.len(), 64);
        assert!(
            hex_part
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert!(verify_pin(ca.x509_cert_der(), &pin));
        assert!(verify_pin(
            ca.x509_cert_der(),
            &pin.to_uppercase().replace("SHA256", "sha256")
        ));
    }

    #[test]
    fn pin_survives_persistence_but_differs_between_cas() {
        let now = datetime!(2030-01-01 0:00 UTC);
        let kek = crate::Kek::generate().unwrap();
        let ca = CertAuthority::generate(CaKind::Host, "example", now).unwrap();
        let reloaded = CertAuthority::from_stored(&ca.to_stored(&kek).unwrap(), &kek).unwrap();
        assert_eq!(
            ca_pin(ca.x509_cert_der()).unwrap(),
            ca_pin(reloaded.x509_cert_der()).unwrap()
        );
        let other = CertAuthority::generate(CaKind::Host, "example", now).unwrap();
        let pin = ca_pin(ca.x509_cert_der()).unwrap();
        assert!(!verify_pin(other.x509_cert_der(), &pin));
    }

    #[test]
    fn pin_matches_spki_hash_computed_independently() {
        // The SPKI of the CA cert is exactly the signer's public key SPKI.
        let ca =
            CertAuthority::generate(CaKind::Host, "c", datetime!(2030-01-01 0:00 UTC)).unwrap();
        let cert = parse_cert(ca.x509_cert_der()).unwrap();
        let expected = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(cert.tbs_certificate.subject_pki.raw))
        );
        assert_eq!(ca_pin(ca.x509_cert_der()).unwrap(), expected);
    }

    #[test]
    fn garbage_never_matches() {
        assert!(ca_pin(b"not a certificate").is_err());
        assert!(ca_pin(&[]).is_err());
        assert!(!verify_pin(b"junk", "sha256:00"));
        let ca =
            CertAuthority::generate(CaKind::Host, "c", datetime!(2030-01-01 0:00 UTC)).unwrap();
        assert!(!verify_pin(ca.x509_cert_der(), ""));
        assert!(!verify_pin(ca.x509_cert_der(), "sha256:"));
        assert!(!verify_pin(ca.x509_cert_der(), "sha256:zz"));
    }

    #[test]
    fn ssh_fingerprint_format() {
        let ca =
            CertAuthority::generate(CaKind::User, "c", datetime!(2030-01-01 0:00 UTC)).unwrap();
        let fp = ssh_fingerprint(&ca.ssh_public_key()).unwrap();
        assert!(fp.starts_with("SHA256:"));
        assert_eq!(fp.len(), "SHA256:".len() + 43, "{fp}");
        assert!(ssh_fingerprint("ssh-ed25519 !!!").is_err());
        assert!(ssh_fingerprint("").is_err());
    }
}
