#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use time::macros::datetime;

use super::*;
use crate::{CaKind, CertAuthority, Kek, UserCertRequest, verify_user_cert};

const T: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
const HOUR: Duration = Duration::from_secs(3600);

fn stored(kek: &Kek) -> StoredCa {
    CertAuthority::generate(CaKind::User, "c", T)
        .unwrap()
        .to_stored(kek)
        .unwrap()
}

/// A user certificate signed by the active key of `ca`.
fn cert(ca: &StoredCa, kek: &Kek) -> String {
    let authority = CertAuthority::from_stored(ca, kek).unwrap();
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    authority
        .sign_user_ssh(&UserCertRequest {
            public_key: key.into(),
            key_id: "alice".into(),
            principals: vec!["alice".into()],
            valid_after: T,
            valid_before: T + HOUR * 100,
            serial: 7,
            extensions: Default::default(),
        })
        .unwrap()
}

fn accepted(ca: &StoredCa, kek: &Kek, cert: &str) -> bool {
    let trusted = CertAuthority::from_stored(ca, kek)
        .unwrap()
        .trusted_ssh_keys();
    verify_user_cert(cert, &trusted, T + HOUR).is_ok()
}

#[test]
fn automatic_rotation_trusts_both_keys_until_grace_ends() {
    let kek = Kek::generate().unwrap();
    let ca = stored(&kek);
    let old_cert = cert(&ca, &kek);
    let r = ca
        .rotated(
            RotationRequest::Auto { grace: HOUR },
            || ca.fresh_ssh_key_set(&kek),
            T,
        )
        .unwrap();
    assert_eq!(r.rotation.phase, RotationPhase::UpdateServers);
    assert_ne!(r.active.ssh_public, ca.active.ssh_public, "a new key signs");
    assert_eq!(
        r.active.x509_cert_pem, ca.active.x509_cert_pem,
        "X.509 CA kept"
    );
    let new_cert = cert(&r, &kek);
    assert!(
        accepted(&r, &kek, &old_cert),
        "old certificates work in the grace period"
    );
    assert!(accepted(&r, &kek, &new_cert));
    assert!(!r.rotation_due(T + HOUR / 2));
    assert!(r.rotation_due(T + HOUR));
    // A second rotation cannot start while one runs.
    assert!(
        r.rotated(
            RotationRequest::Auto { grace: HOUR },
            || r.fresh_ssh_key_set(&kek),
            T
        )
        .is_err()
    );
    // Completing drops the old key.
    let done = r
        .rotated(
            RotationRequest::Manual(RotationPhase::Standby),
            || unreachable!(),
            T,
        )
        .unwrap();
    assert!(done.rotation.is_standby());
    assert!(
        !accepted(&done, &kek, &old_cert),
        "old certificates fail after"
    );
    assert!(accepted(&done, &kek, &new_cert));
    // The state survives storage.
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<StoredCa>(&json).unwrap(), r);
}

#[test]
fn manual_phases_in_order_and_rollback_from_each() {
    let kek = Kek::generate().unwrap();
    let ca = stored(&kek);
    let old_cert = cert(&ca, &kek);
    let step =
        |c: &StoredCa, p| c.rotated(RotationRequest::Manual(p), || c.fresh_ssh_key_set(&kek), T);
    // Out of order is refused.
    assert!(step(&ca, RotationPhase::UpdateClients).is_err());
    assert!(step(&ca, RotationPhase::Standby).is_err());
    let init = step(&ca, RotationPhase::Init).unwrap();
    assert_eq!(init.active, ca.active, "init still signs with the old key");
    assert_eq!(init.trusted_ssh_public_keys().len(), 2);
    let clients = step(&init, RotationPhase::UpdateClients).unwrap();
    assert_eq!(Some(&clients.active), init.next.as_ref());
    let new_cert = cert(&clients, &kek);
    let servers = step(&clients, RotationPhase::UpdateServers).unwrap();
    assert!(accepted(&servers, &kek, &old_cert) && accepted(&servers, &kek, &new_cert));
    assert!(
        !servers.rotation_due(T + HOUR * 1000),
        "manual rotations never complete by themselves"
    );
    // Rollback from every phase restores the old key alone.
    for phase in [&init, &clients, &servers] {
        let back = phase
            .rotated(RotationRequest::Rollback, || unreachable!(), T)
            .unwrap();
        assert_eq!(back.active, ca.active);
        assert!(back.next.is_none() && back.previous.is_none());
        assert!(accepted(&back, &kek, &old_cert));
        assert!(
            !accepted(&back, &kek, &new_cert),
            "the abandoned key is no longer trusted"
        );
    }
    assert!(
        ca.rotated(RotationRequest::Rollback, || unreachable!(), T)
            .is_err()
    );
    assert_eq!(
        "update_clients".parse::<RotationPhase>().unwrap(),
        RotationPhase::UpdateClients
    );
    assert!("later".parse::<RotationPhase>().is_err());
}
