#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use time::Duration;
use time::macros::datetime;

use super::*;
use crate::verify_user_cert;

const NOW: OffsetDateTime = datetime!(2030-06-01 12:00 UTC);

fn user_request() -> UserCertRequest {
    let client = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
    UserCertRequest {
        public_key: client.public_key().to_openssh().unwrap(),
        key_id: "alice".into(),
        principals: vec!["alice".into()],
        valid_after: NOW,
        valid_before: NOW + Duration::hours(1),
        serial: 1,
        extensions: BTreeMap::new(),
    }
}

#[test]
fn kind_names() {
    let names: Vec<&str> = CaKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names, ["user", "host", "openssh", "db", "jwt", "audit"]);
    for kind in CaKind::ALL {
        assert_eq!(kind.as_str().parse::<CaKind>().unwrap(), kind);
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
    }
    assert!("root".parse::<CaKind>().is_err());
    assert!("User".parse::<CaKind>().is_err());
}

#[test]
fn stored_round_trip_keeps_keys() {
    let kek = Kek::generate().unwrap();
    let ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let stored = ca.to_stored(&kek).unwrap();
    assert_eq!(stored.kind, CaKind::User);
    assert_eq!(stored.cluster, "example");
    assert!(stored.next.is_none());

    // Through JSON, as the store keeps it.
    let json = serde_json::to_string(&stored).unwrap();
    assert!(!json.contains("next"));
    let back: StoredCa = serde_json::from_str(&json).unwrap();
    let loaded = CertAuthority::from_stored(&back, &kek).unwrap();
    assert_eq!(loaded.kind(), CaKind::User);
    assert_eq!(loaded.cluster(), "example");
    assert_eq!(loaded.ssh_public_key(), ca.ssh_public_key());
    assert_eq!(loaded.x509_cert_der(), ca.x509_cert_der());

    // Certificates signed after reloading verify against the original key.
    let line = loaded.sign_user_ssh(&user_request()).unwrap();
    verify_user_cert(&line, &[ca.ssh_public_key()], NOW).unwrap();
}

#[test]
fn stored_json_has_no_private_key_in_clear() {
    let kek = Kek::generate().unwrap();
    let ca = CertAuthority::generate(CaKind::Host, "example", NOW).unwrap();
    let json = serde_json::to_string(&ca.to_stored(&kek).unwrap()).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let ssh_priv = b64.encode(ca.ssh.pkcs8_der());
    let x509_priv = b64.encode(ca.x509.pkcs8_der());
    assert!(!json.contains(&ssh_priv));
    assert!(!json.contains(&x509_priv));
    assert!(!json.contains("PRIVATE KEY"));
}

#[test]
fn wrong_kek_is_refused() {
    let ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let stored = ca.to_stored(&Kek::generate().unwrap()).unwrap();
    let err = CertAuthority::from_stored(&stored, &Kek::generate().unwrap()).unwrap_err();
    assert!(matches!(err, CaError::Unseal { .. }), "{err}");
}

#[test]
fn blobs_are_bound_to_their_purpose() {
    let kek = Kek::generate().unwrap();
    let user = CertAuthority::generate(CaKind::User, "example", NOW)
        .unwrap()
        .to_stored(&kek)
        .unwrap();
    let host = CertAuthority::generate(CaKind::Host, "example", NOW)
        .unwrap()
        .to_stored(&kek)
        .unwrap();

    // The host CA's key planted into the user CA record.
    let mut planted = user.clone();
    planted.active.ssh_private = host.active.ssh_private.clone();
    assert!(matches!(
        CertAuthority::from_stored(&planted, &kek),
        Err(CaError::Unseal { .. })
    ));

    // SSH and X.509 blobs swapped within one CA.
    let mut swapped = user.clone();
    std::mem::swap(
        &mut swapped.active.ssh_private,
        &mut swapped.active.x509_private,
    );
    assert!(matches!(
        CertAuthority::from_stored(&swapped, &kek),
        Err(CaError::Unseal { .. })
    ));

    // Relabelled kind: the aad no longer matches.
    let mut relabelled = user;
    relabelled.kind = CaKind::OpenSsh;
    assert!(matches!(
        CertAuthority::from_stored(&relabelled, &kek),
        Err(CaError::Unseal { .. })
    ));
}

#[test]
fn mismatched_public_parts_are_refused() {
    let kek = Kek::generate().unwrap();
    let a = CertAuthority::generate(CaKind::User, "example", NOW)
        .unwrap()
        .to_stored(&kek)
        .unwrap();
    let b = CertAuthority::generate(CaKind::User, "example", NOW)
        .unwrap()
        .to_stored(&kek)
        .unwrap();

    let mut wrong_ssh = a.clone();
    wrong_ssh.active.ssh_public = b.active.ssh_public.clone();
    let err = CertAuthority::from_stored(&wrong_ssh, &kek).unwrap_err();
    assert!(
        err.to_string().contains("SSH private key does not match"),
        "{err}"
    );

    let mut wrong_cert = a.clone();
    wrong_cert.active.x509_cert_pem = b.active.x509_cert_pem.clone();
    let err = CertAuthority::from_stored(&wrong_cert, &kek).unwrap_err();
    assert!(
        err.to_string().contains("X.509 private key does not match"),
        "{err}"
    );

    let mut garbage = a;
    garbage.active.x509_cert_pem =
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into();
    assert!(matches!(
        CertAuthority::from_stored(&garbage, &kek),
        Err(CaError::CorruptStore { .. })
    ));
}

#[test]
fn rotation_shape_trusts_both_keys() {
    let kek = Kek::generate().unwrap();
    let active = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let next = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let mut stored = active.to_stored(&kek).unwrap();
    assert_eq!(
        stored.trusted_ssh_public_keys(),
        vec![active.ssh_public_key()]
    );
    stored.next = Some(next.to_stored(&kek).unwrap().active);
    assert_eq!(
        stored.trusted_ssh_public_keys(),
        vec![active.ssh_public_key(), next.ssh_public_key()]
    );
    assert_eq!(
        stored.trusted_x509_certs_pem(),
        vec![active.x509_cert_pem(), next.x509_cert_pem()]
    );
    let json = serde_json::to_string(&stored).unwrap();
    assert_eq!(serde_json::from_str::<StoredCa>(&json).unwrap(), stored);
    // Loading still yields the active keys.
    let loaded = CertAuthority::from_stored(&stored, &kek).unwrap();
    assert_eq!(loaded.ssh_public_key(), active.ssh_public_key());
}

#[test]
fn generate_requires_a_cluster_name() {
    assert!(matches!(
        CertAuthority::generate(CaKind::User, " ", NOW),
        Err(CaError::InvalidRequest {
            field: "cluster_name",
            ..
        })
    ));
}

#[test]
fn kind_restrictions_for_ssh() {
    let host = CertAuthority::generate(CaKind::Host, "example", NOW).unwrap();
    assert!(host.sign_user_ssh(&user_request()).is_err());
    let openssh = CertAuthority::generate(CaKind::OpenSsh, "example", NOW).unwrap();
    openssh.sign_user_ssh(&user_request()).unwrap();
    let user = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let r = user_request();
    let host_req = HostCertRequest {
        public_key: r.public_key,
        key_id: "n".into(),
        principals: vec!["n".into()],
        valid_after: r.valid_after,
        valid_before: r.valid_before,
        serial: 1,
        extensions: BTreeMap::new(),
    };
    assert!(user.sign_host_ssh(&host_req).is_err());
    host.sign_host_ssh(&host_req).unwrap();
}

#[test]
fn debug_is_redacted() {
    let ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let shown = format!("{ca:?}");
    assert!(shown.contains("<redacted>"));
    assert!(shown.contains("ssh-ed25519"));
}
