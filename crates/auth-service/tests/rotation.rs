//! CA rotation in the auth service, on the test clock: automatic rotation
//! with a grace period, manual phases, rollback, refusals, and the audit
//! trail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::{admin_socket, cluster, pubkey};
use keygate_api::RotateRequest;
use keygate_auth_service::{AuthError, IssueContext};
use keygate_ca::{CaKind, verify_user_cert};

async fn cert(c: &common::Cluster) -> String {
    let ctx = IssueContext {
        method: "test",
        ..IssueContext::default()
    };
    c.auth
        .issue_user_certs("admin", &pubkey(), None, &ctx)
        .await
        .unwrap()
        .ssh_cert
}

fn works(c: &common::Cluster, cert: &str) -> bool {
    let trusted = c.auth.ca(CaKind::User).unwrap().trusted_ssh_keys();
    verify_user_cert(cert, &trusted, c.now()).is_ok()
}

fn phase(p: &str) -> RotateRequest {
    RotateRequest {
        phase: Some(p.into()),
        ..RotateRequest::default()
    }
}

#[tokio::test]
async fn automatic_rotation_keeps_old_certs_for_the_grace_period_only() {
    let c = cluster().await;
    let socket = admin_socket();
    let old = cert(&c).await;
    let before = c.auth.ca(CaKind::User).unwrap().ssh_public_key();
    let s = c
        .auth
        .rotate_ca(
            &socket,
            "user",
            RotateRequest {
                grace_secs: Some(3600),
                ..RotateRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (s.phase.as_str(), s.mode.as_str()),
        ("update_servers", "auto")
    );
    assert_eq!(s.trusted.len(), 2);
    let new = cert(&c).await;
    assert_ne!(
        c.auth.ca(CaKind::User).unwrap().ssh_public_key(),
        before,
        "a new key signs"
    );
    assert!(
        works(&c, &old) && works(&c, &new),
        "both trusted in the grace period"
    );

    c.clock.advance(Duration::from_secs(1800));
    c.auth.sweep().await;
    assert!(works(&c, &old), "still in the grace period");
    c.clock.advance(Duration::from_secs(1801));
    c.auth.sweep().await;
    let status = c.auth.rotation_statuses();
    assert!(status.iter().all(|s| s.phase == "standby"), "{status:?}");
    assert!(
        !works(&c, &old),
        "old certificates fail after the grace period"
    );
    assert!(works(&c, &new));
    let events = c.events("ca.rotate", None).await;
    assert_eq!(events.len(), 2, "start and completion are audited");
}

#[tokio::test]
async fn manual_phases_rollback_and_refusals() {
    let c = cluster().await;
    let socket = admin_socket();
    let a = cert(&c).await;
    c.auth
        .rotate_ca(&socket, "host", phase("init"))
        .await
        .unwrap();
    // Out of order, and a second automatic rotation, are refused.
    let e = c.auth.rotate_ca(&socket, "host", phase("standby")).await;
    assert!(matches!(e, Err(AuthError::Conflict(_))), "{e:?}");
    let e = c
        .auth
        .rotate_ca(&socket, "host", RotateRequest::default())
        .await;
    assert!(matches!(e, Err(AuthError::Conflict(_))), "{e:?}");
    c.auth
        .rotate_ca(&socket, "host", phase("update_clients"))
        .await
        .unwrap();
    let s = c
        .auth
        .rotate_ca(&socket, "host", phase("update_servers"))
        .await
        .unwrap();
    assert_eq!(s.mode, "manual");
    // Manual rotations never complete by themselves.
    c.clock.advance(Duration::from_secs(100 * 3600));
    c.auth.sweep().await;
    assert_eq!(
        c.auth.ca(CaKind::Host).unwrap().rotation().phase.as_str(),
        "update_servers"
    );
    c.auth
        .rotate_ca(&socket, "host", phase("standby"))
        .await
        .unwrap();

    // User CA: rotate to a new key, then roll back to the old one.
    let a2 = cert(&c).await;
    c.auth
        .rotate_ca(&socket, "user", phase("init"))
        .await
        .unwrap();
    c.auth
        .rotate_ca(&socket, "user", phase("update_clients"))
        .await
        .unwrap();
    let b = cert(&c).await;
    assert!(works(&c, &a2) && works(&c, &b));
    let s = c
        .auth
        .rotate_ca(
            &socket,
            "user",
            RotateRequest {
                rollback: true,
                ..RotateRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(s.phase, "standby");
    assert!(works(&c, &a2), "rollback restores the old key");
    assert!(!works(&c, &b), "certificates from the abandoned key fail");
    let _ = a;

    // Refusals: CAs that do not rotate, bad phases, non-admins.
    let e = c
        .auth
        .rotate_ca(&socket, "audit", RotateRequest::default())
        .await;
    assert!(matches!(e, Err(AuthError::BadRequest(_))), "{e:?}");
    let e = c.auth.rotate_ca(&socket, "user", phase("later")).await;
    assert!(matches!(e, Err(AuthError::BadRequest(_))), "{e:?}");
    c.signed_up_user("bob", &["access"], &["bob"]).await;
    let e = c
        .auth
        .rotate_ca(&common::user("bob"), "user", RotateRequest::default())
        .await;
    assert!(matches!(e, Err(AuthError::AccessDenied(_))), "{e:?}");
}
