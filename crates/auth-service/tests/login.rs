//! Password + TOTP login through `AuthServer::login`: what the client gets,
//! what it is refused with, lockout, and what the audit log records.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{ADMIN_LOGIN, ADMIN_PASSWORD, assert_failed_login, cluster, field, ip, login_req};
use keygate_auth_service::AuthError;
use russh::keys::ssh_key::{Certificate, PublicKey};
use serde_json::json;

const TWELVE_HOURS: Duration = Duration::from_secs(12 * 3600);
/// A generous bound for any user certificate a login can yield.
const MAX_SANE_TTL: Duration = Duration::from_secs(366 * 24 * 3600);
/// The public message for every credential failure that must not reveal
/// whether the user exists.
const INVALID: &str = "invalid username or password";

#[tokio::test]
async fn password_and_totp_login_issues_certs_and_audits() {
    let c = cluster().await;
    let code = c.next_admin_code();
    let mut req = login_req("admin", ADMIN_PASSWORD, Some(code));
    let public_key = req.public_key.clone();
    req.ttl_secs = None;
    let now = c.now();

    let certs = c.auth.login(req, Some(ip(7))).await.unwrap();

    assert_eq!(certs.user, "admin");
    assert_eq!(certs.cluster, "test-cluster");
    assert_eq!(certs.roles, vec!["admin"]);
    assert_eq!(
        certs.principals,
        vec![ADMIN_LOGIN.to_owned(), "-keygate-internal".to_owned()],
        "logins come from the user's traits, plus the internal principal"
    );
    assert_eq!(certs.valid_before, whole(now) + TWELVE_HOURS);

    // The SSH certificate itself says the same, for the key we sent.
    let ssh = Certificate::from_openssh(&certs.ssh_cert).unwrap();
    assert_eq!(ssh.key_id(), "admin");
    assert_eq!(ssh.serial(), certs.serial);
    assert_eq!(ssh.valid_principals(), certs.principals.as_slice());
    assert_eq!(
        ssh.valid_before(),
        u64::try_from(certs.valid_before.unix_timestamp()).unwrap()
    );
    assert_eq!(
        ssh.valid_after(),
        u64::try_from(now.unix_timestamp() - 60).unwrap(),
        "backdated one minute for clock skew"
    );
    assert_eq!(
        ssh.public_key(),
        PublicKey::from_openssh(&public_key).unwrap().key_data(),
        "the certificate certifies the key the client sent"
    );
    assert!(ssh.extensions().contains_key("permit-pty"));
    assert_eq!(
        ssh.extensions().get("roles@keygate").map(String::as_str),
        Some(r#"["admin"]"#)
    );

    // So does the X.509 certificate.
    let der = pem_to_der(&certs.x509_cert_pem);
    let x509 = keygate_ca::parse_x509_identity(&der).unwrap();
    assert_eq!(x509.common_name, "admin");
    assert_eq!(x509.roles, vec!["admin"]);
    // Certificates have whole seconds; the response keeps the clock's
    // sub-second part.
    assert_eq!(
        x509.not_after.unix_timestamp(),
        certs.valid_before.unix_timestamp()
    );
    assert_eq!(x509.serial_hex, format!("{:x}", certs.serial));

    let login = c.last_event("user.login", Some("admin")).await;
    assert_eq!(login.code, "KG1000I");
    assert_eq!(login.success, Some(true));
    assert_eq!(login.error, None);
    assert_eq!(login.remote_addr.as_deref(), Some("192.0.2.7"));
    assert_eq!(login.cluster.as_deref(), Some("test-cluster"));
    assert_eq!(field(&login, "method"), "password+totp");

    let cert = c.last_event("cert.create", Some("admin")).await;
    assert_eq!(cert.code, "KG2000I");
    assert_eq!(cert.success, Some(true));
    assert_eq!(field(&cert, "serial"), &json!(certs.serial.to_string()));
    assert_eq!(field(&cert, "principals"), &json!(certs.principals));
    assert_eq!(field(&cert, "roles"), &json!(["admin"]));
    assert_eq!(field(&cert, "ttl_secs"), &json!(12 * 3600));
    assert_eq!(field(&cert, "method"), "password+totp");
    assert_eq!(cert.remote_addr.as_deref(), Some("192.0.2.7"));

    // The audit chain over everything written so far is intact.
    assert!(c.audit.verify().await.unwrap() >= 3);
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_refused_identically() {
    let c = cluster().await;

    let code = c.next_admin_code();
    let wrong = c
        .auth
        .login(
            login_req("admin", "not the password at all", Some(code)),
            Some(ip(1)),
        )
        .await;
    let wrong = match wrong {
        Err(e @ AuthError::InvalidCredentials(_)) => e,
        other => panic!("expected InvalidCredentials, got {other:?}"),
    };
    assert_eq!(wrong.to_string(), INVALID);
    assert_failed_login(
        &c.last_event("user.login", Some("admin")).await,
        "admin",
        "bad_password",
    );
    let ev = c.last_event("user.login", Some("admin")).await;
    assert_eq!(ev.remote_addr.as_deref(), Some("192.0.2.1"));

    let code = c.next_admin_code();
    let unknown = c
        .auth
        .login(
            login_req("nobody", "not the password at all", Some(code)),
            Some(ip(1)),
        )
        .await;
    let unknown = match unknown {
        Err(e @ AuthError::InvalidCredentials(_)) => e,
        other => panic!("expected InvalidCredentials, got {other:?}"),
    };
    assert_eq!(unknown.to_string(), wrong.to_string());
    // What goes over the wire is byte-identical too.
    assert_eq!(
        serde_json::to_vec(&unknown.body()).unwrap(),
        serde_json::to_vec(&wrong.body()).unwrap()
    );
    assert_failed_login(
        &c.last_event("user.login", Some("nobody")).await,
        "nobody",
        "unknown_user",
    );

    // Neither wrote a success or issued anything.
    assert!(c.events("cert.create", None).await.is_empty());
    assert!(
        c.events("user.login", None)
            .await
            .iter()
            .all(|e| e.success == Some(false))
    );
}

#[tokio::test]
async fn unparseable_user_names_are_refused_like_unknown_ones() {
    let c = cluster().await;
    for name in ["system:admin", "@bot", "", &"x".repeat(300)] {
        let msg = assert_err!(
            c.auth
                .login(
                    login_req(name, ADMIN_PASSWORD, Some(c.next_admin_code())),
                    None
                )
                .await,
            InvalidCredentials
        );
        assert_eq!(msg, INVALID, "{name:?}");
    }
    // The audit log keeps at most 256 characters of a presented name.
    let long = c.last_event("user.login", Some(&"x".repeat(256))).await;
    assert_failed_login(&long, &"x".repeat(256), "unknown_user");
}

#[tokio::test]
async fn missing_wrong_and_replayed_totp_codes_are_refused() {
    let c = cluster().await;

    // Right password, no code: the client is told to ask for one.
    c.clock.advance(common::STEP);
    let msg = assert_err!(
        c.auth
            .login(login_req("admin", ADMIN_PASSWORD, None), None)
            .await,
        MfaRequired
    );
    assert!(msg.contains("--otp"), "{msg}");

    // Wrong code.
    let wrong = c.wrong_code(&c.admin_totp);
    let msg = assert_err!(
        c.auth
            .login(login_req("admin", ADMIN_PASSWORD, Some(wrong)), None)
            .await,
        InvalidCredentials
    );
    assert_eq!(msg, "invalid one-time code");
    assert_failed_login(
        &c.last_event("user.login", Some("admin")).await,
        "admin",
        "bad_otp",
    );

    // Malformed code.
    let msg = assert_err!(
        c.auth
            .login(
                login_req("admin", ADMIN_PASSWORD, Some("12345x".into())),
                None
            )
            .await,
        InvalidCredentials
    );
    assert_eq!(msg, "invalid one-time code");

    // A good code works once ...
    let code = c.code(&c.admin_totp);
    c.auth
        .login(login_req("admin", ADMIN_PASSWORD, Some(code.clone())), None)
        .await
        .unwrap();
    // ... and is refused the second time although it is still inside its
    // window (same instant, and again 20 s later).
    let msg = assert_err!(
        c.auth
            .login(login_req("admin", ADMIN_PASSWORD, Some(code.clone())), None)
            .await,
        InvalidCredentials
    );
    assert!(msg.contains("already used"), "{msg}");
    assert_failed_login(
        &c.last_event("user.login", Some("admin")).await,
        "admin",
        "otp_replay",
    );
    c.clock.advance(Duration::from_secs(20));
    assert_err!(
        c.auth
            .login(login_req("admin", ADMIN_PASSWORD, Some(code)), None)
            .await,
        InvalidCredentials
    );
    assert_eq!(c.events("cert.create", Some("admin")).await.len(), 1);

    // The next window's code is fine.
    c.admin_login().await.unwrap();
}

#[tokio::test]
async fn five_failures_lock_the_account_for_thirty_minutes() {
    let c = cluster().await;
    for i in 0..5 {
        let msg = assert_err!(
            c.auth
                .login(
                    login_req("admin", "wrong password", Some(c.next_admin_code())),
                    None
                )
                .await,
            InvalidCredentials
        );
        assert_eq!(msg, INVALID, "failure {i}");
    }

    // The sixth attempt is refused before anything is checked, even with
    // the right password and code.
    let code = c.next_admin_code();
    let msg = assert_err!(
        c.auth
            .login(login_req("admin", ADMIN_PASSWORD, Some(code.clone())), None)
            .await,
        LockedOut
    );
    assert!(msg.contains("kgctl users reset"), "{msg}");
    assert_failed_login(
        &c.last_event("user.login", Some("admin")).await,
        "admin",
        "locked",
    );

    // Still locked after 29 minutes.
    c.clock.advance(Duration::from_secs(29 * 60));
    assert_err!(
        c.auth
            .login(
                login_req("admin", ADMIN_PASSWORD, Some(c.code(&c.admin_totp))),
                None
            )
            .await,
        LockedOut
    );

    // 31 minutes after the fifth failure the lock is over.
    c.clock.advance(Duration::from_secs(60));
    c.admin_login().await.unwrap();

    // The success cleared the record: one more failure does not lock.
    assert_err!(
        c.auth
            .login(
                login_req("admin", "wrong password", Some(c.next_admin_code())),
                None
            )
            .await,
        InvalidCredentials
    );
    c.admin_login().await.unwrap();
}

#[tokio::test]
async fn refusals_while_locked_do_not_extend_the_lock() {
    let c = cluster().await;
    for _ in 0..5 {
        let _ = c
            .auth
            .login(login_req("admin", "wrong password", None), None)
            .await;
    }
    // An attacker keeps trying during the lock; the lock must still end 30
    // minutes after the fifth real failure.
    for _ in 0..10 {
        c.clock.advance(Duration::from_secs(150));
        assert_err!(
            c.auth
                .login(login_req("admin", "wrong password", None), None)
                .await,
            LockedOut
        );
    }
    c.clock.advance(Duration::from_secs(31 * 60 - 10 * 150));
    c.admin_login().await.unwrap();
}

#[tokio::test]
async fn one_source_with_many_failures_is_locked_but_others_are_not() {
    let c = cluster().await;
    // The per-source policy is four times the per-user one: 20 failures in
    // 15 minutes, each for a different (unknown) name so that no per-user
    // record could be what locks.
    let source_limit = 4 * 5;
    for i in 0..source_limit {
        let msg = assert_err!(
            c.auth
                .login(login_req(&format!("probe{i}"), "guess", None), Some(ip(66)))
                .await,
            InvalidCredentials
        );
        assert_eq!(msg, INVALID, "attempt {i}");
    }

    // Now that address is refused, even for a real user with the right
    // password and code ...
    let msg = assert_err!(
        c.auth
            .login(
                login_req("admin", ADMIN_PASSWORD, Some(c.next_admin_code())),
                Some(ip(66))
            )
            .await,
        LockedOut
    );
    assert!(msg.contains("too many failed logins"), "{msg}");
    assert_failed_login(
        &c.last_event("user.login", Some("admin")).await,
        "admin",
        "locked",
    );

    // ... while another address logs in fine, and the user itself is not
    // locked.
    let code = c.code(&c.admin_totp);
    c.auth
        .login(login_req("admin", ADMIN_PASSWORD, Some(code)), Some(ip(67)))
        .await
        .unwrap();

    // The source lock lasts 30 minutes from its last counted failure.
    c.clock.advance(Duration::from_secs(31 * 60));
    let code = c.next_admin_code();
    c.auth
        .login(login_req("admin", ADMIN_PASSWORD, Some(code)), Some(ip(66)))
        .await
        .unwrap();
}

#[tokio::test]
async fn nineteen_failures_from_one_source_do_not_lock_it() {
    let c = cluster().await;
    for i in 0..19 {
        let _ = c
            .auth
            .login(login_req(&format!("probe{i}"), "guess", None), Some(ip(9)))
            .await;
    }
    let code = c.next_admin_code();
    c.auth
        .login(login_req("admin", ADMIN_PASSWORD, Some(code)), Some(ip(9)))
        .await
        .unwrap();
}

/// Regression test for user enumeration through lockout: failure records
/// used to be kept only for existing users, so after five wrong passwords a
/// real name answered "too many failed logins" while an unknown name still
/// answered "invalid username or password" (`keygate-authn`'s lockout docs
/// require records keyed by the *presented* name for exactly this reason).
#[tokio::test]
async fn lockout_does_not_reveal_which_user_names_exist() {
    let c = cluster().await;
    c.signed_up_user("bob", &["access"], &["bob"]).await;

    let mut answers = Vec::new();
    for name in ["bob", "ghost"] {
        for _ in 0..5 {
            let _ = c
                .auth
                .login(login_req(name, "wrong password", None), None)
                .await;
        }
        let sixth = c
            .auth
            .login(login_req(name, "wrong password", None), None)
            .await;
        let err = sixth.expect_err("wrong password");
        answers.push((name, err.code(), err.to_string()));
    }
    let (_, bob_code, bob_msg) = &answers[0];
    let (_, ghost_code, ghost_msg) = &answers[1];
    assert_eq!(
        (bob_code, bob_msg),
        (ghost_code, ghost_msg),
        "the sixth wrong password tells an existing user from an unknown one: {answers:?}"
    );
}

/// Regression test: a client-chosen `ttl_secs` reached `now + ttl` in
/// `issue.rs`, and `OffsetDateTime + std::time::Duration` panics on
/// overflow. Input from the network must never panic: the request is either
/// refused or capped to something sane (no built-in role sets
/// `max_session_ttl`, so only a cluster-wide cap can bound it).
#[tokio::test]
async fn absurd_requested_ttl_is_refused_or_capped_not_a_panic() {
    let c = cluster().await;
    for ttl_secs in [u64::MAX, 100 * 365 * 24 * 3600] {
        let mut req = login_req("admin", ADMIN_PASSWORD, Some(c.next_admin_code()));
        req.ttl_secs = Some(ttl_secs);
        let auth = c.auth.clone();
        let joined = tokio::spawn(async move { auth.login(req, None).await }).await;
        let result = joined.expect("login panicked on a huge ttl_secs");
        match result {
            Err(AuthError::BadRequest(_)) => {}
            Ok(certs) => assert!(
                certs.valid_before <= c.now() + MAX_SANE_TTL,
                "ttl_secs = {ttl_secs} gave a certificate valid until {}",
                certs.valid_before
            ),
            Err(other) => panic!("expected BadRequest or a capped certificate, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn login_with_a_bad_public_key_is_a_bad_request() {
    let c = cluster().await;
    let mut req = login_req("admin", ADMIN_PASSWORD, Some(c.next_admin_code()));
    req.public_key = "ssh-ed25519 not-base64!".into();
    let msg = assert_err!(c.auth.login(req, None).await, BadRequest);
    assert!(msg.contains("public key"), "{msg}");
    assert!(c.events("cert.create", None).await.is_empty());
}

/// Certificates carry whole seconds; so does `valid_before`.
fn whole(t: time::OffsetDateTime) -> time::OffsetDateTime {
    t.replace_nanosecond(0).unwrap()
}
