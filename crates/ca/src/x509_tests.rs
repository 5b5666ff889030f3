#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use time::macros::datetime;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use super::*;
use crate::{CaKind, CertAuthority, parse_x509_identity};

const NOW: OffsetDateTime = datetime!(2030-06-01 12:00 UTC);

fn ed25519_openssh() -> (SoftwareSigner, String) {
    let key = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
    let line = key.public_key().to_openssh().unwrap();
    (key, line)
}

fn user_request(public_key_openssh: String, serial: u64) -> X509UserRequest {
    let mut traits = BTreeMap::new();
    traits.insert(
        "logins".to_owned(),
        vec!["alice".to_owned(), "root".to_owned()],
    );
    X509UserRequest {
        public_key_openssh,
        common_name: "alice".to_owned(),
        roles: vec!["access".to_owned(), "editor".to_owned()],
        traits,
        not_before: NOW - Duration::seconds(60),
        not_after: NOW + Duration::hours(12),
        serial,
    }
}

fn service_request(key: ServiceKey) -> X509ServiceRequest {
    X509ServiceRequest {
        key,
        common_name: "proxy-1".to_owned(),
        dns_names: vec!["proxy.example.com".to_owned(), "*.example.com".to_owned()],
        ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        system_role: SystemRole::Proxy,
        not_before: NOW,
        not_after: NOW + Duration::days(30),
    }
}

#[test]
fn ca_certificate_shape() {
    let ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let cert = parse_cert(ca.x509_cert_der()).unwrap();
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(cn, "Keygate user CA example");
    assert_eq!(cert.subject(), cert.issuer());
    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign());
    assert_eq!(cert.validity().not_before.to_datetime(), NOW);
    assert_eq!(
        cert.validity().not_after.to_datetime(),
        datetime!(2040-06-01 12:00 UTC)
    );
    cert.verify_signature(None).unwrap();
    // The certificate carries the X.509 signer's key.
    assert_eq!(
        cert.tbs_certificate.subject_pki.raw,
        ca.x509_signer().public_key().spki_der()
    );
}

#[test]
fn ten_years_from_a_leap_day() {
    let leap = datetime!(2032-02-29 0:00 UTC);
    let ca = CertAuthority::generate(CaKind::Host, "c", leap).unwrap();
    let cert = parse_cert(ca.x509_cert_der()).unwrap();
    assert_eq!(
        cert.validity().not_after.to_datetime(),
        leap + Duration::days(3653)
    );
}

#[test]
fn user_certificate_round_trip() {
    let ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let (client, line) = ed25519_openssh();
    let req = user_request(line, 0xdead_beef);
    let der = ca.sign_x509_user(&req).unwrap();

    let id = parse_x509_identity(&der).unwrap();
    assert_eq!(id.common_name, "alice");
    assert_eq!(id.system_role, None);
    assert_eq!(id.roles, req.roles);
    assert_eq!(id.traits, req.traits);
    assert_eq!(id.not_after, req.not_after);
    assert_eq!(id.serial_hex, "deadbeef");

    let cert = parse_cert(&der).unwrap();
    // Same key as the SSH side: the SPKI is the client's Ed25519 key.
    assert_eq!(
        cert.tbs_certificate.subject_pki.raw,
        client.public_key().spki_der()
    );
    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert!(!bc.ca);
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    // Chains to the CA.
    verify_issued_by(&der, ca.x509_cert_der(), NOW).unwrap();
}

#[test]
fn serial_hex_matches_u64_formatting() {
    let ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    for serial in [1, 0x80, u64::MAX, 1 << 63, 0x0100] {
        let der = ca
            .sign_x509_user(&user_request(ed25519_openssh().1, serial))
            .unwrap();
        assert_eq!(
            parse_x509_identity(&der).unwrap().serial_hex,
            format!("{serial:x}")
        );
    }
}

#[test]
fn chain_check_refuses_other_ca_and_time() {
    let ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let other = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let req = user_request(ed25519_openssh().1, 9);
    let der = ca.sign_x509_user(&req).unwrap();
    // Same subject name, different key: the signature check catches it.
    let err = verify_issued_by(&der, other.x509_cert_der(), NOW).unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");
    let other_name = CertAuthority::generate(CaKind::User, "elsewhere", NOW).unwrap();
    let err = verify_issued_by(&der, other_name.x509_cert_der(), NOW).unwrap_err();
    assert!(err.to_string().contains("issuer name"), "{err}");
    assert!(
        verify_issued_by(
            &der,
            ca.x509_cert_der(),
            req.not_after + Duration::seconds(1)
        )
        .is_err()
    );
    assert!(
        verify_issued_by(
            &der,
            ca.x509_cert_der(),
            req.not_before - Duration::seconds(1)
        )
        .is_err()
    );
    assert!(verify_issued_by(b"junk", ca.x509_cert_der(), NOW).is_err());
    assert!(verify_issued_by(&der, b"junk", NOW).is_err());
}

#[test]
fn user_certificate_needs_an_ed25519_key() {
    let ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let p256 = SoftwareSigner::generate(KeyAlgorithm::EcdsaP256)
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap();
    let err = ca.sign_x509_user(&user_request(p256, 1)).unwrap_err();
    assert!(matches!(err, CaError::InvalidPublicKey { .. }), "{err}");
    let err = ca
        .sign_x509_user(&user_request("garbage".into(), 1))
        .unwrap_err();
    assert!(matches!(err, CaError::InvalidPublicKey { .. }), "{err}");
}

#[test]
fn bad_user_requests_are_refused() {
    let ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let good = user_request(ed25519_openssh().1, 1);
    let mut req = good.clone();
    req.common_name.clear();
    assert!(matches!(
        ca.sign_x509_user(&req),
        Err(CaError::InvalidRequest {
            field: "common_name",
            ..
        })
    ));
    let mut req = good;
    req.not_after = req.not_before;
    assert!(matches!(
        ca.sign_x509_user(&req),
        Err(CaError::InvalidRequest {
            field: "not_after",
            ..
        })
    ));
}

#[test]
fn service_certificate_with_generated_key() {
    let ca = CertAuthority::generate(CaKind::Host, "example", NOW).unwrap();
    let issued = ca
        .sign_x509_service(&service_request(ServiceKey::GenerateP256))
        .unwrap();
    assert_ne!(issued.serial, 0);
    let key_der = issued.private_key_pkcs8.as_ref().unwrap();
    let key = SoftwareSigner::from_pkcs8(KeyAlgorithm::EcdsaP256, key_der).unwrap();

    let cert = parse_cert(&issued.cert_der).unwrap();
    assert_eq!(
        cert.tbs_certificate.subject_pki.raw,
        key.public_key().spki_der()
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && eku.server_auth);
    assert!(!cert.basic_constraints().unwrap().unwrap().value.ca);
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    assert!(
        san.general_names
            .contains(&GeneralName::DNSName("proxy.example.com"))
    );
    assert!(
        san.general_names
            .contains(&GeneralName::DNSName("*.example.com"))
    );
    assert!(
        san.general_names
            .contains(&GeneralName::IPAddress(&[127, 0, 0, 1]))
    );
    assert!(cert.extensions().iter().any(|e| matches!(
        e.parsed_extension(),
        ParsedExtension::UnsupportedExtension { .. }
    ) && e.oid.to_id_string() == "1.3.6.1.4.1.59571.1.1"));

    let id = parse_x509_identity(&issued.cert_der).unwrap();
    assert_eq!(id.common_name, "proxy-1");
    assert_eq!(id.system_role, Some(SystemRole::Proxy));
    assert!(id.roles.is_empty() && id.traits.is_empty());
    assert_eq!(id.serial_hex, format!("{:x}", issued.serial));
    verify_issued_by(&issued.cert_der, ca.x509_cert_der(), NOW).unwrap();

    let cert_pem = issued.cert_pem();
    assert!(cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert_eq!(pem_decode_cert(&cert_pem).unwrap(), issued.cert_der);
    let key_pem = issued.private_key_pem().unwrap();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(!format!("{issued:?}").contains("BEGIN"));
    assert!(format!("{issued:?}").contains("<redacted>"));
}

#[test]
fn service_certificate_for_an_existing_key() {
    let ca = CertAuthority::generate(CaKind::Host, "example", NOW).unwrap();
    for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
        let key = SoftwareSigner::generate(alg).unwrap();
        let mut req = service_request(ServiceKey::Spki(key.public_key().spki_der()));
        req.system_role = SystemRole::Node;
        let issued = ca.sign_x509_service(&req).unwrap();
        assert!(issued.private_key_pkcs8.is_none());
        let cert = parse_cert(&issued.cert_der).unwrap();
        assert_eq!(
            cert.tbs_certificate.subject_pki.raw,
            key.public_key().spki_der()
        );
        assert_eq!(
            parse_x509_identity(&issued.cert_der).unwrap().system_role,
            Some(SystemRole::Node)
        );
    }
}

#[test]
fn bad_service_requests_are_refused() {
    let ca = CertAuthority::generate(CaKind::Host, "example", NOW).unwrap();
    let err = ca
        .sign_x509_service(&service_request(ServiceKey::Spki(b"junk".to_vec())))
        .unwrap_err();
    assert!(matches!(err, CaError::InvalidPublicKey { .. }), "{err}");
    let mut req = service_request(ServiceKey::GenerateP256);
    req.dns_names = vec!["bücher.example".into()];
    assert!(matches!(
        ca.sign_x509_service(&req),
        Err(CaError::InvalidRequest {
            field: "dns_names",
            ..
        })
    ));
}

#[test]
fn each_ca_signs_only_its_own_certificates() {
    let user = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let host = CertAuthority::generate(CaKind::Host, "example", NOW).unwrap();
    let err = host
        .sign_x509_user(&user_request(ed25519_openssh().1, 1))
        .unwrap_err();
    assert!(
        err.to_string().contains("does not sign user X.509"),
        "{err}"
    );
    let err = user
        .sign_x509_service(&service_request(ServiceKey::GenerateP256))
        .unwrap_err();
    assert!(err.to_string().contains("use the host CA"), "{err}");
}

#[test]
fn ca_certificate_has_no_identity() {
    let ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let err = parse_x509_identity(ca.x509_cert_der()).unwrap_err();
    assert!(
        err.to_string().contains("no Keygate identity extension"),
        "{err}"
    );
}

#[test]
fn trailing_bytes_and_truncation_are_refused() {
    let ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let der = ca
        .sign_x509_user(&user_request(ed25519_openssh().1, 1))
        .unwrap();
    let mut long = der.clone();
    long.push(0);
    assert!(parse_x509_identity(&long).is_err());
    for cut in [1, 10, der.len() / 2, der.len() - 1] {
        assert!(parse_x509_identity(&der[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn pem_decoder_refuses_other_blocks() {
    assert!(pem_decode_cert("not pem").is_err());
    assert!(pem_decode_cert(&pem_encode("PRIVATE KEY", b"x")).is_err());
}
