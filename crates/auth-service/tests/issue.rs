//! Certificate issuance: roles and locks are read at issue time, role
//! options bound the lifetime, renewal re-checks everything.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{admin_socket, cluster, field, pubkey, role_json, user, user_lock_json};
use keygate_auth_service::Caller;
use keygate_types::Kind;
use serde_json::json;

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn role_changes_apply_to_the_next_issue_and_renewal() {
    let c = cluster().await;
    let socket = admin_socket();
    c.auth
        .put(
            &socket,
            role_json("ops", &["ubuntu", "{{internal.logins}}"], json!({})),
            false,
        )
        .await
        .unwrap();
    c.invite("erin", &["ops"], &["erin"]).await;

    let first = c.issue("erin", None).await.unwrap();
    assert_eq!(
        first.principals,
        vec!["erin", "ubuntu", "-keygate-internal"]
    );
    assert_eq!(first.roles, vec!["ops"]);

    c.auth
        .put(&socket, role_json("ops", &["deploy"], json!({})), true)
        .await
        .unwrap();

    let issued = c.issue("erin", None).await.unwrap();
    assert_eq!(issued.principals, vec!["deploy", "-keygate-internal"]);
    let renewed = c.auth.renew(&user("erin"), &pubkey(), None).await.unwrap();
    assert_eq!(renewed.principals, vec!["deploy", "-keygate-internal"]);
    let ev = c.last_event("cert.create", Some("erin")).await;
    assert_eq!(field(&ev, "method"), "renewal");
    assert_eq!(
        field(&ev, "principals"),
        &json!(["deploy", "-keygate-internal"])
    );
    assert_ne!(renewed.serial, issued.serial);

    // A deny rule added to the role removes the login at once.
    let mut ops = role_json("ops", &["deploy", "ubuntu"], json!({}));
    ops["spec"]["deny"] = json!({"logins": ["ubuntu"]});
    c.auth.put(&socket, ops, true).await.unwrap();
    let denied = c.auth.renew(&user("erin"), &pubkey(), None).await.unwrap();
    assert_eq!(denied.principals, vec!["deploy", "-keygate-internal"]);

    // Deleting the only role leaves nothing to issue on.
    c.auth.remove(&socket, Kind::Role, "ops").await.unwrap();
    assert_err!(c.issue("erin", None).await, AccessDenied);
    assert_err!(
        c.auth.renew(&user("erin"), &pubkey(), None).await,
        AccessDenied
    );
}

#[tokio::test]
async fn trait_changes_apply_to_the_next_renewal() {
    let c = cluster().await;
    let socket = admin_socket();
    c.invite("erin", &["access"], &["erin"]).await;
    let mut erin = c.auth.read(&socket, Kind::User, "erin").await.unwrap();
    erin["spec"]["traits"]["logins"] = json!(["erin", "postgres", "root; rm", "*"]);
    c.auth.put(&socket, erin, true).await.unwrap();
    let certs = c.auth.renew(&user("erin"), &pubkey(), None).await.unwrap();
    // Values that are not valid logins never reach a certificate.
    assert_eq!(
        certs.principals,
        vec!["erin", "postgres", "-keygate-internal"]
    );
}

#[tokio::test]
async fn a_user_lock_refuses_certificates_until_it_expires_or_goes() {
    let c = cluster().await;
    let socket = admin_socket();
    c.invite("erin", &["access"], &["erin"]).await;
    c.issue("erin", None).await.unwrap();

    c.auth
        .put(
            &socket,
            user_lock_json("lock-erin", "erin", "offboarded: see ticket 42", None),
            false,
        )
        .await
        .unwrap();
    let ev = c.last_event("lock.created", None).await;
    assert_eq!(ev.code, "KG3200I");
    assert_eq!(field(&ev, "name"), "lock-erin");

    let msg = assert_err!(c.issue("erin", None).await, AccessDenied);
    assert!(msg.contains("offboarded: see ticket 42"), "{msg}");
    assert!(msg.contains("lock-erin"), "{msg}");
    let msg = assert_err!(
        c.auth.renew(&user("erin"), &pubkey(), None).await,
        AccessDenied
    );
    assert!(msg.contains("offboarded"), "{msg}");
    let denial = c.last_event("auth.failed", Some("erin")).await;
    assert_eq!(denial.code, "KG1001W");
    assert_eq!(denial.success, Some(false));
    assert_eq!(field(&denial, "rule"), "lock");
    assert!(denial.error.as_deref().unwrap().contains("offboarded"));
    assert_eq!(c.events("cert.create", Some("erin")).await.len(), 1);

    // Other users are unaffected.
    c.issue("admin", None).await.unwrap();

    // The lock also stops the locked user's admin calls.
    let mut erin = c.auth.read(&socket, Kind::User, "erin").await.unwrap();
    erin["spec"]["roles"] = json!(["admin"]);
    c.auth.put(&socket, erin, true).await.unwrap();
    assert_err!(c.auth.list(&user("erin"), Kind::User).await, AccessDenied);

    c.auth
        .remove(&socket, Kind::Lock, "lock-erin")
        .await
        .unwrap();
    assert_eq!(c.last_event("lock.deleted", None).await.code, "KG3201I");
    c.issue("erin", None).await.unwrap();

    // A lock whose expiry has passed has no effect ...
    let past = c.now() - Duration::from_secs(60);
    c.auth
        .put(
            &socket,
            user_lock_json("old-lock", "erin", "long over", Some(past)),
            false,
        )
        .await
        .unwrap();
    c.issue("erin", None).await.unwrap();

    // ... and a lock that expires later stops working then.
    let soon = c.now() + HOUR;
    c.auth
        .put(
            &socket,
            user_lock_json("short-lock", "erin", "one hour", Some(soon)),
            false,
        )
        .await
        .unwrap();
    assert_err!(c.issue("erin", None).await, AccessDenied);
    c.clock.advance(HOUR);
    c.issue("erin", None).await.unwrap();
}

#[tokio::test]
async fn a_role_lock_refuses_every_holder() {
    let c = cluster().await;
    c.invite("erin", &["access"], &["erin"]).await;
    c.auth
        .put(
            &admin_socket(),
            json!({"kind": "lock", "version": "v1", "metadata": {"name": "no-access"},
                   "spec": {"target": {"role": "access"}}}),
            false,
        )
        .await
        .unwrap();
    let msg = assert_err!(c.issue("erin", None).await, AccessDenied);
    assert!(msg.contains("no-access"), "{msg}");
    c.issue("admin", None).await.unwrap();
}

#[tokio::test]
async fn login_of_a_locked_user_is_refused_after_the_password() {
    let c = cluster().await;
    let totp = c.signed_up_user("erin", &["access"], &["erin"]).await;
    c.auth
        .put(
            &admin_socket(),
            user_lock_json("lock-erin", "erin", "offboarded", None),
            false,
        )
        .await
        .unwrap();
    let msg = assert_err!(
        c.auth
            .login(
                common::login_req("erin", common::USER_PASSWORD, Some(c.next_code(&totp))),
                None
            )
            .await,
        AccessDenied
    );
    assert!(msg.contains("offboarded"), "{msg}");
    assert!(c.events("cert.create", Some("erin")).await.is_empty());
    assert!(
        c.events("user.login", Some("erin"))
            .await
            .iter()
            .all(|e| e.success != Some(true)),
        "a refused login is not recorded as a success"
    );
}

#[tokio::test]
async fn max_session_ttl_caps_the_lifetime() {
    let c = cluster().await;
    let socket = admin_socket();
    c.auth
        .put(
            &socket,
            role_json("short", &["erin"], json!({"max_session_ttl": "1h"})),
            false,
        )
        .await
        .unwrap();
    c.invite("erin", &["access", "short"], &["erin"]).await;
    let now = c.now();

    // Asked for 12 h, the shortest role allows 1 h.
    let certs = c.issue("erin", Some(12 * HOUR)).await.unwrap();
    assert_eq!(certs.valid_before, whole(now) + HOUR);
    assert_eq!(
        field(&c.last_event("cert.create", Some("erin")).await, "ttl_secs"),
        &json!(3600)
    );
    // The default (12 h) is capped the same way.
    let certs = c.issue("erin", None).await.unwrap();
    assert_eq!(certs.valid_before, whole(now) + HOUR);
    // Shorter requests are honoured.
    let certs = c
        .issue("erin", Some(Duration::from_secs(600)))
        .await
        .unwrap();
    assert_eq!(certs.valid_before, whole(now) + Duration::from_secs(600));
    // Renewal obeys the cap too.
    let renewed = c
        .auth
        .renew(&user("erin"), &pubkey(), Some(24 * HOUR))
        .await
        .unwrap();
    assert_eq!(renewed.valid_before, whole(now) + HOUR);

    // Less than a minute is refused, whatever the roles.
    for short in [
        Duration::ZERO,
        Duration::from_secs(1),
        Duration::from_secs(59),
    ] {
        let msg = assert_err!(c.issue("erin", Some(short)).await, BadRequest);
        assert!(msg.contains("1m"), "{msg}");
        assert_err!(c.issue("admin", Some(short)).await, BadRequest);
    }
    let mut req = common::login_req("admin", common::ADMIN_PASSWORD, Some(c.next_admin_code()));
    req.ttl_secs = Some(30);
    assert_err!(c.auth.login(req, None).await, BadRequest);
    assert_eq!(
        c.issue("admin", Some(Duration::from_secs(60)))
            .await
            .unwrap()
            .valid_before,
        whole(c.now()) + Duration::from_secs(60)
    );
}

#[tokio::test]
async fn the_cluster_caps_user_certificates_when_no_role_does() {
    let c = cluster().await;
    let now = c.now();
    // No built-in role sets max_session_ttl; the cluster cap is 30 h.
    let certs = c.issue("admin", Some(48 * HOUR)).await.unwrap();
    assert_eq!(certs.valid_before, whole(now) + 30 * HOUR);
    let mut req = common::login_req("admin", common::ADMIN_PASSWORD, Some(c.next_admin_code()));
    req.ttl_secs = Some(365 * 24 * 3600);
    let certs = c.auth.login(req, None).await.unwrap();
    assert_eq!(certs.valid_before, whole(c.now()) + 30 * HOUR);
    assert_eq!(
        field(
            &c.last_event("cert.create", Some("admin")).await,
            "ttl_secs"
        ),
        &json!(30 * 3600)
    );
    let renewed = c
        .auth
        .renew(&user("admin"), &pubkey(), Some(100 * HOUR))
        .await
        .unwrap();
    assert_eq!(renewed.valid_before, whole(c.now()) + 30 * HOUR);
}

#[tokio::test]
async fn a_lock_on_the_admin_role_does_not_lock_out_the_admin_socket() {
    let c = cluster().await;
    let socket = admin_socket();
    c.auth
        .put(
            &socket,
            json!({"kind": "lock", "version": "v1", "metadata": {"name": "freeze-admins"},
                   "spec": {"target": {"role": "admin"}, "message": "incident"}}),
            false,
        )
        .await
        .unwrap();
    // Users holding the role are locked out, certificates and admin calls.
    let msg = assert_err!(c.issue("admin", None).await, AccessDenied);
    assert!(msg.contains("incident"), "{msg}");
    assert_err!(c.auth.list(&user("admin"), Kind::Role).await, AccessDenied);
    // The operator on the auth host can still undo it.
    c.auth.list(&socket, Kind::Lock).await.unwrap();
    c.auth
        .remove(&socket, Kind::Lock, "freeze-admins")
        .await
        .unwrap();
    c.issue("admin", None).await.unwrap();
}

/// Regression test: `sign_for` clamps the lifetime to at least one minute
/// *after* applying the role's `max_session_ttl`, so a role that allows
/// 30 s gets certificates valid for 60 s — longer than the role permits.
/// Either fix is fine: refuse such a role when it is written, or refuse to
/// issue under it, saying why.
#[tokio::test]
async fn a_role_max_session_ttl_under_a_minute_is_never_exceeded() {
    let c = cluster().await;
    let put = c
        .auth
        .put(
            &admin_socket(),
            role_json("tiny", &["erin"], json!({"max_session_ttl": "30s"})),
            false,
        )
        .await;
    if let Err(e) = put {
        let msg = assert_err!(Err::<(), _>(e), BadRequest);
        assert!(msg.contains("max_session_ttl"), "{msg}");
        return;
    }
    c.invite("erin", &["tiny"], &["erin"]).await;
    let now = c.now();
    match c.issue("erin", None).await {
        Ok(certs) => assert!(
            certs.valid_before <= now + Duration::from_secs(30),
            "role allows 30s, certificate valid until now + {}",
            certs.valid_before - now
        ),
        Err(e) => assert!(
            e.to_string().contains("max_session_ttl"),
            "refusing is fine if it says why: {e}"
        ),
    }
}

#[tokio::test]
async fn renewal_needs_a_user_caller() {
    let c = cluster().await;
    assert_err!(
        c.auth.renew(&admin_socket(), &pubkey(), None).await,
        Unauthenticated
    );
    assert_err!(
        c.auth
            .renew(&Caller::Anonymous { remote: None }, &pubkey(), None)
            .await,
        Unauthenticated
    );
    assert_err!(
        c.auth.renew(&user("ghost"), &pubkey(), None).await,
        AccessDenied
    );
}

#[tokio::test]
async fn admin_sign_issues_for_others_with_the_actor_recorded() {
    let c = cluster().await;
    c.invite("bot-ci", &["access"], &["ci"]).await;
    let certs = c
        .auth
        .sign(
            &admin_socket(),
            keygate_api::SignRequest {
                user: "bot-ci".into(),
                public_key: pubkey(),
                ttl_secs: 7 * 24 * 3600,
            },
        )
        .await
        .unwrap();
    assert_eq!(certs.user, "bot-ci");
    assert_eq!(certs.valid_before, whole(c.now()) + 7 * 24 * HOUR);
    let ev = c.last_event("cert.create", Some("bot-ci")).await;
    assert_eq!(field(&ev, "method"), "admin");
    assert_eq!(ev.actor.as_ref().unwrap().name, common::ADMIN_SOCKET_ACTOR);

    let msg = assert_err!(
        c.auth
            .sign(
                &admin_socket(),
                keygate_api::SignRequest {
                    user: "bot-ci".into(),
                    public_key: pubkey(),
                    ttl_secs: 366 * 24 * 3600
                },
            )
            .await,
        BadRequest
    );
    assert!(msg.contains("365d"), "{msg}");
    // Only admins may sign for others.
    assert_err!(
        c.auth
            .sign(
                &user("bot-ci"),
                keygate_api::SignRequest {
                    user: "admin".into(),
                    public_key: pubkey(),
                    ttl_secs: 3600
                },
            )
            .await,
        AccessDenied
    );
}

/// Certificates carry whole seconds; so does `valid_before`.
fn whole(t: time::OffsetDateTime) -> time::OffsetDateTime {
    t.replace_nanosecond(0).unwrap()
}

#[tokio::test]
async fn expired_roles_and_users_grant_nothing() {
    let c = cluster().await;
    let socket = admin_socket();
    let expires = (c.now() + Duration::from_secs(600))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut temp = role_json("temp-access", &["tina"], json!({}));
    temp["metadata"]["expires"] = json!(expires);
    c.auth.put(&socket, temp, false).await.unwrap();
    c.invite("tina", &["temp-access"], &["tina"]).await;
    let certs = c.issue("tina", Some(HOUR)).await.unwrap();
    assert!(
        certs.principals.iter().any(|p| p == "tina"),
        "{:?}",
        certs.principals
    );
    // Ten minutes later the role has expired: with no live role there is
    // no certificate at all.
    c.clock.advance(Duration::from_secs(601));
    assert!(matches!(
        c.issue("tina", Some(HOUR)).await,
        Err(keygate_auth_service::AuthError::AccessDenied(_))
    ));

    // An expired user gets no logins at all, even with live roles.
    let user_expires = (c.now() + Duration::from_secs(60))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    c.invite("ulla", &["access"], &["ulla"]).await;
    let mut u = c
        .auth
        .read(&socket, keygate_types::Kind::User, "ulla")
        .await
        .unwrap();
    u["metadata"]["expires"] = json!(user_expires);
    c.auth.put(&socket, u, true).await.unwrap();
    assert!(
        c.issue("ulla", Some(HOUR))
            .await
            .unwrap()
            .principals
            .iter()
            .any(|p| p == "ulla")
    );
    c.clock.advance(Duration::from_secs(61));
    assert!(matches!(
        c.issue("ulla", Some(HOUR)).await,
        Err(keygate_auth_service::AuthError::AccessDenied(_))
    ));
}
