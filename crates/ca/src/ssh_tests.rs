#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::signer::{SignerPublicKey, SoftwareSigner};
use crate::{CaKind, CertAuthority};

const NOW: OffsetDateTime = datetime!(2030-06-01 12:00 UTC);

fn client_key() -> String {
    SoftwareSigner::generate(KeyAlgorithm::Ed25519)
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap()
}

fn user_request(public_key: String) -> UserCertRequest {
    let mut extensions = BTreeMap::new();
    extensions.insert("roles@keygate".to_owned(), r#"["access"]"#.to_owned());
    extensions.insert("permit-pty".to_owned(), String::new());
    extensions.insert("permit-port-forwarding".to_owned(), String::new());
    UserCertRequest {
        public_key,
        key_id: "alice".to_owned(),
        principals: vec!["alice".to_owned(), "root".to_owned()],
        valid_after: NOW - Duration::seconds(60),
        valid_before: NOW + Duration::hours(12),
        serial: 4242,
        extensions,
    }
}

fn user_ca() -> CertAuthority {
    CertAuthority::generate(CaKind::User, "example", NOW).unwrap()
}

#[test]
fn user_cert_round_trip() {
    let ca = user_ca();
    let key = client_key();
    let req = user_request(key.clone());
    let line = ca.sign_user_ssh(&req).unwrap();
    assert!(
        line.starts_with("ssh-ed25519-cert-v01@openssh.com AAAA"),
        "{line}"
    );

    let got = verify_user_cert(&line, &[ca.ssh_public_key()], NOW).unwrap();
    assert_eq!(got.key_id, "alice");
    assert_eq!(got.principals, req.principals);
    assert_eq!(got.serial, 4242);
    assert_eq!(got.valid_after, req.valid_after);
    assert_eq!(got.valid_before, req.valid_before);
    assert_eq!(got.extensions, req.extensions);
    // The certified key is the client's key (comments aside).
    let certified = PublicKey::from_openssh(&got.public_key).unwrap();
    assert_eq!(
        certified.key_data(),
        PublicKey::from_openssh(&key).unwrap().key_data()
    );
}

#[test]
fn extensions_are_encoded_in_lexical_order() {
    let ca = user_ca();
    let mut req = user_request(client_key());
    for name in [
        "permit-X11-forwarding",
        "permit-agent-forwarding",
        "zzz@keygate",
        "aaa@keygate",
    ] {
        req.extensions.insert(
            name.to_owned(),
            if name.ends_with("@keygate") {
                "1".into()
            } else {
                String::new()
            },
        );
    }
    let line = ca.sign_user_ssh(&req).unwrap();
    // ssh-key's decoder refuses unsorted options, so decoding proves order.
    let cert = Certificate::from_openssh(&line).unwrap();
    let names: Vec<&String> = cert.extensions().keys().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(
        cert.extensions().get("aaa@keygate").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        cert.extensions().get("permit-pty").map(String::as_str),
        Some("")
    );
}

#[test]
fn non_ed25519_client_keys_are_accepted_for_ssh() {
    let ca = user_ca();
    let ecdsa = SoftwareSigner::generate(KeyAlgorithm::EcdsaP256)
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap();
    let line = ca.sign_user_ssh(&user_request(ecdsa)).unwrap();
    assert!(
        line.starts_with("ecdsa-sha2-nistp256-cert-v01@openssh.com "),
        "{line}"
    );
    verify_user_cert(&line, &[ca.ssh_public_key()], NOW).unwrap();
}

#[test]
fn bad_requests_are_refused() {
    let ca = user_ca();
    let good = user_request(client_key());
    let field_of = |req: &UserCertRequest| match ca.sign_user_ssh(req) {
        Err(CaError::InvalidRequest { field, .. }) => field,
        other => panic!("expected InvalidRequest, got {other:?}"),
    };

    let mut req = good.clone();
    req.principals.clear();
    assert_eq!(field_of(&req), "principals");

    let mut req = good.clone();
    req.principals.push(String::new());
    assert_eq!(field_of(&req), "principals");

    let mut req = good.clone();
    req.valid_before = req.valid_after;
    assert_eq!(field_of(&req), "valid_before");

    let mut req = good.clone();
    req.valid_before = req.valid_after - Duration::seconds(1);
    assert_eq!(field_of(&req), "valid_before");

    let mut req = good.clone();
    req.key_id.clear();
    assert_eq!(field_of(&req), "key_id");

    let mut req = good.clone();
    req.extensions.insert("permit-pty".into(), "yes".into());
    assert_eq!(field_of(&req), "extensions");

    let mut req = good.clone();
    req.extensions.insert(String::new(), String::new());
    assert_eq!(field_of(&req), "extensions");

    let mut req = good;
    req.valid_after = datetime!(1960-01-01 0:00 UTC);
    assert_eq!(field_of(&req), "valid_after");
}

#[test]
fn unparseable_public_keys_are_refused_clearly() {
    let ca = user_ca();
    for key in [
        "",
        "garbage",
        "ssh-ed25519",
        "ssh-ed25519 AAAA!!!",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
    ] {
        let err = ca.sign_user_ssh(&user_request(key.to_owned())).unwrap_err();
        assert!(
            matches!(err, CaError::InvalidPublicKey { .. }),
            "{key:?}: {err}"
        );
        assert!(err.to_string().contains("OpenSSH public key line"), "{err}");
    }
}

#[test]
fn wrong_ca_is_refused() {
    let ca = user_ca();
    let other = user_ca();
    let line = ca.sign_user_ssh(&user_request(client_key())).unwrap();
    let err = verify_user_cert(&line, &[other.ssh_public_key()], NOW).unwrap_err();
    assert!(matches!(err, CaError::CertificateRejected { .. }), "{err}");
    assert!(err.to_string().contains("untrusted CA"), "{err}");
}

#[test]
fn either_rotation_key_is_trusted() {
    let active = user_ca();
    let next = user_ca();
    let line = next.sign_user_ssh(&user_request(client_key())).unwrap();
    let trusted = [active.ssh_public_key(), next.ssh_public_key()];
    verify_user_cert(&line, &trusted, NOW).unwrap();
}

#[test]
fn host_cert_is_not_a_user_cert() {
    let ca = user_ca();
    let u = user_request(client_key());
    // Signed by the trusted user CA key, but typed host: must still fail.
    let req = HostCertRequest {
        public_key: u.public_key,
        key_id: "node-1".into(),
        principals: vec!["node-1".into()],
        valid_after: u.valid_after,
        valid_before: u.valid_before,
        serial: 7,
        extensions: BTreeMap::new(),
    };
    let line = sign_host_cert(ca.ssh_signer(), &req).unwrap();
    let err = verify_user_cert(&line, &[ca.ssh_public_key()], NOW).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected a user certificate, got a host"),
        "{err}"
    );
    // And the other way round.
    let got = verify_host_cert(&line, &[ca.ssh_public_key()], NOW).unwrap();
    assert_eq!(got.principals, vec!["node-1".to_owned()]);
    let user_line = ca.sign_user_ssh(&user_request(client_key())).unwrap();
    assert!(verify_host_cert(&user_line, &[ca.ssh_public_key()], NOW).is_err());
}

#[test]
fn validity_window_is_enforced() {
    let ca = user_ca();
    let req = user_request(client_key());
    let line = ca.sign_user_ssh(&req).unwrap();
    let trusted = [ca.ssh_public_key()];
    // valid_after is inclusive, valid_before exclusive.
    verify_user_cert(&line, &trusted, req.valid_after).unwrap();
    verify_user_cert(&line, &trusted, req.valid_before - Duration::seconds(1)).unwrap();

    let err = verify_user_cert(&line, &trusted, req.valid_before).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    let err = verify_user_cert(&line, &trusted, req.valid_before + Duration::days(1)).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    let err =
        verify_user_cert(&line, &trusted, req.valid_after - Duration::seconds(1)).unwrap_err();
    assert!(err.to_string().contains("not valid before"), "{err}");
}

#[test]
fn tampered_certificate_is_refused() {
    let ca = user_ca();
    let line = ca.sign_user_ssh(&user_request(client_key())).unwrap();
    let mut parts = line.split_whitespace();
    let algo = parts.next().unwrap();
    let mut blob = B64.decode(parts.next().unwrap()).unwrap();
    // Change one byte of the key id "alice" -> "blice".
    let pos = blob.windows(5).position(|w| w == b"alice").unwrap();
    blob[pos] = b'b';
    let forged = format!("{algo} {}", B64.encode(&blob));
    let err = verify_user_cert(&forged, &[ca.ssh_public_key()], NOW).unwrap_err();
    assert!(
        err.to_string().contains("signature does not verify"),
        "{err}"
    );
}

#[test]
fn garbage_certificates_are_refused() {
    let ca = user_ca();
    let trusted = [ca.ssh_public_key()];
    for line in [
        "",
        "garbage",
        "ssh-ed25519-cert-v01@openssh.com",
        "ssh-ed25519-cert-v01@openssh.com AAAA",
        "ssh-ed25519-cert-v01@openssh.com !!!!",
        &ca.ssh_public_key(),
    ] {
        let err = verify_user_cert(line, &trusted, NOW).unwrap_err();
        assert!(
            matches!(err, CaError::MalformedCertificate { .. }),
            "{line:?}: {err}"
        );
    }
}

#[test]
fn trusted_key_list_problems_are_reported() {
    let ca = user_ca();
    let line = ca.sign_user_ssh(&user_request(client_key())).unwrap();
    assert!(matches!(
        verify_user_cert(&line, &[], NOW),
        Err(CaError::CertificateRejected { .. })
    ));
    assert!(matches!(
        verify_user_cert(&line, &["not a key".to_owned()], NOW),
        Err(CaError::InvalidPublicKey { .. })
    ));
}

#[test]
fn random_serials_are_nonzero_and_vary() {
    let serials: std::collections::BTreeSet<u64> = (0..64).map(|_| random_serial()).collect();
    assert!(!serials.contains(&0));
    assert!(serials.len() > 60);
}

/// A signer whose backend is down: its error must reach the caller intact.
struct BrokenSigner(SignerPublicKey);

impl Signer for BrokenSigner {
    fn public_key(&self) -> SignerPublicKey {
        self.0.clone()
    }

    fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, CaError> {
        Err(CaError::crypto("kms sign", "backend unavailable"))
    }
}

#[test]
fn signer_errors_propagate() {
    let public = SoftwareSigner::generate(KeyAlgorithm::Ed25519)
        .unwrap()
        .public_key();
    let err = sign_user_cert(&BrokenSigner(public), &user_request(client_key())).unwrap_err();
    assert!(err.to_string().contains("backend unavailable"), "{err}");
}

#[test]
fn ssh_needs_an_ed25519_ca_key() {
    let p256 = SoftwareSigner::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let err = sign_user_cert(&p256, &user_request(client_key())).unwrap_err();
    assert!(err.to_string().contains("Ed25519"), "{err}");
}
