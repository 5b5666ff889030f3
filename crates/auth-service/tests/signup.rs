//! Invitations, sign-up and admin resets: tokens are single-use and
//! time-limited, the password policy holds, TOTP is enrolled, and every
//! change is audited.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{
    ADMIN_SOCKET_ACTOR, USER_PASSWORD, admin_socket, cluster, field, login_req, secret_from_uri,
};
use keygate_api::SignupRequest;
use keygate_audit_model::ActorKind;
use keygate_types::Kind;
use serde_json::json;

fn signup(token: &str, password: &str) -> SignupRequest {
    SignupRequest {
        token: token.into(),
        password: password.into(),
    }
}

/// The message every unusable token gets.
const BAD_TOKEN: &str = "the sign-up token is invalid, used or expired";

#[tokio::test]
async fn invite_sign_up_and_log_in() {
    let c = cluster().await;
    let now = c.now();
    let token = c.invite("bob", &["access"], &["bob", "ubuntu"]).await;
    assert_eq!(token.len(), 64, "256 random bits, hex");

    let created = c.last_event("user.create", Some("bob")).await;
    assert_eq!(created.code, "KG3000I");
    assert_eq!(created.success, Some(true));
    let actor = created.actor.as_ref().unwrap();
    assert_eq!(actor.name, ADMIN_SOCKET_ACTOR);
    assert_eq!(actor.kind, ActorKind::Human);

    // The token is stored only as its hash, with a one-hour expiry.
    let tokens = c.auth.list(&admin_socket(), Kind::Token).await.unwrap();
    assert_eq!(tokens.len(), 1);
    let stored = serde_json::to_string(&tokens).unwrap();
    assert!(
        !stored.contains(&token),
        "the token secret is stored: {stored}"
    );
    assert_eq!(tokens[0]["spec"]["user"], "bob");
    let expires = time::OffsetDateTime::parse(
        tokens[0]["metadata"]["expires"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        expires.unix_timestamp(),
        (now + Duration::from_secs(3600)).unix_timestamp()
    );

    // Before sign-up bob cannot log in, and says so like any bad password.
    let msg = assert_err!(
        c.auth
            .login(login_req("bob", USER_PASSWORD, None), None)
            .await,
        InvalidCredentials
    );
    assert_eq!(msg, "invalid username or password");
    common::assert_failed_login(
        &c.last_event("user.login", Some("bob")).await,
        "bob",
        "no_password",
    );

    // Too short: refused, and the token survives the mistake.
    let msg = assert_err!(c.auth.signup(signup(&token, "short")).await, BadRequest);
    assert!(msg.contains("12"), "{msg}");
    let resp = c.auth.signup(signup(&token, USER_PASSWORD)).await.unwrap();
    assert_eq!(resp.user, "bob");
    let uri = resp
        .totp_uri
        .expect("TOTP is required, so sign-up enrols it");
    assert!(uri.contains("bob"), "{uri}");
    let totp = secret_from_uri(&uri);

    let changed = c.last_event("user.password_change", Some("bob")).await;
    assert_eq!(changed.code, "KG1002I");
    assert_eq!(changed.success, Some(true));
    assert_eq!(field(&changed, "method"), "signup");

    let user = c
        .auth
        .read(&admin_socket(), Kind::User, "bob")
        .await
        .unwrap();
    assert_eq!(user["spec"]["status"]["has_password"], json!(true));
    assert_eq!(user["spec"]["status"]["has_totp"], json!(true));

    // Single use.
    let msg = assert_err!(
        c.auth.signup(signup(&token, "another long password")).await,
        InvalidCredentials
    );
    assert!(msg.starts_with(BAD_TOKEN), "{msg}");
    assert!(
        c.auth
            .list(&admin_socket(), Kind::Token)
            .await
            .unwrap()
            .is_empty()
    );

    // The new credentials work.
    let certs = c
        .auth
        .login(
            login_req("bob", USER_PASSWORD, Some(c.next_code(&totp))),
            None,
        )
        .await
        .unwrap();
    assert_eq!(certs.roles, vec!["access"]);
    assert_eq!(certs.principals, vec!["bob", "ubuntu", "-keygate-internal"]);
}

#[tokio::test]
async fn unknown_and_expired_tokens_are_refused() {
    let c = cluster().await;
    let msg = assert_err!(
        c.auth
            .signup(signup("00".repeat(32).as_str(), USER_PASSWORD))
            .await,
        InvalidCredentials
    );
    assert!(msg.starts_with(BAD_TOKEN), "{msg}");
    let msg = assert_err!(
        c.auth.signup(signup("", USER_PASSWORD)).await,
        InvalidCredentials
    );
    assert!(msg.starts_with(BAD_TOKEN), "{msg}");

    let token = c.invite("carol", &["access"], &["carol"]).await;
    c.clock.advance(Duration::from_secs(3600));
    let msg = assert_err!(
        c.auth.signup(signup(&token, USER_PASSWORD)).await,
        InvalidCredentials
    );
    assert!(msg.starts_with(BAD_TOKEN), "{msg}");
    c.clock.advance(Duration::from_secs(60));
    assert_err!(
        c.auth.signup(signup(&token, USER_PASSWORD)).await,
        InvalidCredentials
    );
    let user = c
        .auth
        .read(&admin_socket(), Kind::User, "carol")
        .await
        .unwrap();
    assert_eq!(user["spec"]["status"]["has_password"], json!(false));
}

#[tokio::test]
async fn a_join_token_is_not_a_sign_up_token() {
    let c = cluster().await;
    // A node join token whose name is the hash of a secret we know.
    let secret = "ab".repeat(32);
    let name = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(secret.as_bytes()))
    };
    let expires = (c.now() + Duration::from_secs(600))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    c.auth
        .put(
            &admin_socket(),
            json!({"kind": "token", "version": "v1",
                   "metadata": {"name": name, "expires": expires},
                   "spec": {"roles": ["node"], "user": "admin"}}),
            false,
        )
        .await
        .unwrap();
    assert_err!(
        c.auth.signup(signup(&secret, USER_PASSWORD)).await,
        InvalidCredentials
    );
}

#[tokio::test]
async fn add_user_validates_its_input() {
    let c = cluster().await;
    let req = |name: &str, roles: &[&str]| keygate_api::AddUserRequest {
        name: name.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        traits: Default::default(),
        token_ttl_secs: None,
    };
    let msg = assert_err!(
        c.auth
            .add_user(&admin_socket(), req("dan", &["no-such-role"]))
            .await,
        BadRequest
    );
    assert!(msg.contains("no-such-role"), "{msg}");
    assert_err!(
        c.auth
            .add_user(&admin_socket(), req("system:evil", &["access"]))
            .await,
        BadRequest
    );
    assert_err!(
        c.auth
            .add_user(&admin_socket(), req("admin", &["access"]))
            .await,
        Conflict
    );
    // Nothing was created or announced.
    assert!(c.events("user.create", Some("dan")).await.is_empty());
    assert_err!(
        c.auth.read(&admin_socket(), Kind::User, "dan").await,
        NotFound
    );
}

#[tokio::test]
async fn reset_clears_credentials_and_issues_a_new_token() {
    let c = cluster().await;
    let old_totp = c.signed_up_user("bob", &["access"], &["bob"]).await;

    let reset = c.auth.reset_user(&admin_socket(), "bob").await.unwrap();
    assert_eq!(reset.user, "bob");
    let ev = c.last_event("user.password_change", Some("bob")).await;
    assert_eq!(field(&ev, "method"), "reset");
    assert_eq!(ev.actor.as_ref().unwrap().name, ADMIN_SOCKET_ACTOR);
    let user = c
        .auth
        .read(&admin_socket(), Kind::User, "bob")
        .await
        .unwrap();
    assert_eq!(user["spec"]["status"]["has_password"], json!(false));
    assert_eq!(user["spec"]["status"]["has_totp"], json!(false));

    // The old password and device are gone.
    let msg = assert_err!(
        c.auth
            .login(
                login_req("bob", USER_PASSWORD, Some(c.next_code(&old_totp))),
                None
            )
            .await,
        InvalidCredentials
    );
    assert_eq!(msg, "invalid username or password");

    // The new token sets a new password and a new device.
    let resp = c
        .auth
        .signup(signup(&reset.token, "a brand new password"))
        .await
        .unwrap();
    let new_totp = secret_from_uri(&resp.totp_uri.unwrap());
    assert_ne!(new_totp, old_totp);
    assert_err!(
        c.auth
            .login(
                login_req("bob", USER_PASSWORD, Some(c.next_code(&new_totp))),
                None
            )
            .await,
        InvalidCredentials
    );
    assert_err!(
        c.auth
            .login(
                login_req("bob", "a brand new password", Some(c.next_code(&old_totp))),
                None
            )
            .await,
        InvalidCredentials
    );
    c.auth
        .login(
            login_req("bob", "a brand new password", Some(c.next_code(&new_totp))),
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn reset_unlocks_a_locked_out_user() {
    let c = cluster().await;
    c.signed_up_user("bob", &["access"], &["bob"]).await;
    for _ in 0..5 {
        let _ = c
            .auth
            .login(login_req("bob", "wrong password", None), None)
            .await;
    }
    assert_err!(
        c.auth
            .login(login_req("bob", USER_PASSWORD, None), None)
            .await,
        LockedOut
    );
    let reset = c.auth.reset_user(&admin_socket(), "bob").await.unwrap();
    let totp = secret_from_uri(
        &c.auth
            .signup(signup(&reset.token, USER_PASSWORD))
            .await
            .unwrap()
            .totp_uri
            .unwrap(),
    );
    c.auth
        .login(
            login_req("bob", USER_PASSWORD, Some(c.next_code(&totp))),
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn reset_of_a_missing_user_is_not_found() {
    let c = cluster().await;
    assert_err!(c.auth.reset_user(&admin_socket(), "nobody").await, NotFound);
}

/// Regression test: `reset_user` issues a new token but leaves the earlier,
/// unused invitation valid, so whoever holds the old link can still set
/// the password after the admin reset the account.
#[tokio::test]
async fn reset_revokes_earlier_sign_up_tokens() {
    let c = cluster().await;
    let first = c.invite("bob", &["access"], &["bob"]).await;
    let reset = c.auth.reset_user(&admin_socket(), "bob").await.unwrap();
    let msg = assert_err!(
        c.auth
            .signup(signup(&first, "the old link still works"))
            .await,
        InvalidCredentials
    );
    assert!(msg.starts_with(BAD_TOKEN), "{msg}");
    c.auth
        .signup(signup(&reset.token, USER_PASSWORD))
        .await
        .unwrap();
}

/// Regression test: deleting a user leaves their sign-up token behind, and
/// `signup` does not check that the user still exists. The token then
/// writes a password and TOTP seed for the deleted name, which a user
/// created later under that name inherits: the holder of the old
/// invitation can log in as the new account.
#[tokio::test]
async fn a_sign_up_token_dies_with_its_user() {
    let c = cluster().await;
    let token = c.invite("bob", &["access"], &["bob"]).await;
    c.auth
        .remove(&admin_socket(), Kind::User, "bob")
        .await
        .unwrap();

    let used = c
        .auth
        .signup(signup(&token, "attacker chosen password"))
        .await;

    // Whatever the answer, a later "bob" must not get those credentials.
    c.auth
        .put(
            &admin_socket(),
            json!({"kind": "user", "version": "v1", "metadata": {"name": "bob"},
                   "spec": {"roles": ["admin"], "traits": {"logins": ["root"]}}}),
            false,
        )
        .await
        .unwrap();
    if let Ok(resp) = &used {
        let totp = secret_from_uri(resp.totp_uri.as_deref().unwrap());
        let login = c
            .auth
            .login(
                login_req("bob", "attacker chosen password", Some(c.next_code(&totp))),
                None,
            )
            .await;
        assert!(
            login.is_err(),
            "the new bob can be logged into with credentials set through the deleted bob's invitation"
        );
    }
    assert!(used.is_err(), "a token for a deleted user was accepted");
}

/// Regression test: `token_ttl_secs` reached `now + ttl` in
/// `create_signup_token`, which panicked on overflow. It is now refused,
/// but only after `add_user` created (and audited) the user, so the admin
/// gets an error for a change that happened and a retry says Conflict.
#[tokio::test]
async fn an_absurd_token_ttl_is_refused_before_the_user_is_created() {
    let c = cluster().await;
    let auth = c.auth.clone();
    let joined = tokio::spawn(async move {
        auth.add_user(
            &admin_socket(),
            keygate_api::AddUserRequest {
                name: "ivy".into(),
                roles: vec!["access".into()],
                traits: Default::default(),
                token_ttl_secs: Some(u64::MAX),
            },
        )
        .await
    })
    .await;
    let result = joined.expect("add_user panicked on token_ttl_secs = u64::MAX");
    assert_err!(result, BadRequest);
    // Refused before anything was created.
    assert_err!(
        c.auth.read(&admin_socket(), Kind::User, "ivy").await,
        NotFound
    );
}
