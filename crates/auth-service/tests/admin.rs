//! The admin API: every verb is authorized by the caller's current roles,
//! denials are audited with the deciding rule, changes are audited with
//! their actor, and bad input is refused naming the field.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use common::{ADMIN_SOCKET_ACTOR, admin_socket, cluster, field, role_json, user};
use keygate_audit_model::{ActorKind, Via};
use keygate_auth_service::Caller;
use keygate_types::Kind;
use serde_json::json;

#[tokio::test]
async fn a_user_with_only_access_cannot_list_users_and_the_denial_is_audited() {
    let c = cluster().await;
    c.invite("dave", &["access"], &["dave"]).await;

    let msg = assert_err!(c.auth.list(&user("dave"), Kind::User).await, AccessDenied);
    assert!(
        msg.contains("no role of \"dave\" allows list on user"),
        "{msg}"
    );
    assert!(msg.contains("rule no allow rule matched"), "{msg}");

    let ev = c.last_event("auth.failed", Some("dave")).await;
    assert_eq!(ev.code, "KG1001W");
    assert_eq!(ev.success, Some(false));
    assert_eq!(
        ev.error.as_deref(),
        Some("no role of \"dave\" allows list on user")
    );
    assert_eq!(field(&ev, "rule"), "no allow rule matched");
    assert_eq!(field(&ev, "kind"), "user");
    assert_eq!(field(&ev, "verb"), "list");
    let actor = ev.actor.as_ref().unwrap();
    assert_eq!(actor.name, "dave");
    assert_eq!(actor.kind, ActorKind::Human);
    assert_eq!(actor.via, Some(Via::Cli));

    // What `access` does grant still works.
    assert!(
        c.auth
            .list(&user("dave"), Kind::Node)
            .await
            .unwrap()
            .is_empty()
    );
    // And every write is refused the same way.
    assert_err!(
        c.auth
            .put(
                &user("dave"),
                role_json("mine", &["root"], json!({})),
                false
            )
            .await,
        AccessDenied
    );
    assert_err!(
        c.auth.remove(&user("dave"), Kind::Role, "access").await,
        AccessDenied
    );
    assert_err!(
        c.auth.reset_user(&user("dave"), "admin").await,
        AccessDenied
    );
    assert!(
        c.auth
            .read(&admin_socket(), Kind::Role, "access")
            .await
            .is_ok()
    );
    assert_eq!(c.events("auth.failed", Some("dave")).await.len(), 4);
}

#[tokio::test]
async fn a_deny_rule_names_its_role() {
    let c = cluster().await;
    let mut role = role_json("no-users", &[], json!({}));
    role["spec"]["deny"] = json!({"rules": [{"resources": ["user"], "verbs": ["*"]}]});
    c.auth.put(&admin_socket(), role, false).await.unwrap();
    c.invite("erin", &["admin", "no-users"], &["erin"]).await;

    let msg = assert_err!(c.auth.list(&user("erin"), Kind::User).await, AccessDenied);
    assert!(msg.contains("no-users"), "{msg}");
    assert!(msg.contains("deny.rules"), "{msg}");
    let ev = c.last_event("auth.failed", Some("erin")).await;
    assert_eq!(field(&ev, "rule"), "deny.rules");
    assert_eq!(field(&ev, "role"), "no-users");
    // The admin role still grants everything else.
    c.auth.list(&user("erin"), Kind::Role).await.unwrap();
}

#[tokio::test]
async fn anonymous_callers_and_missing_users_get_nothing() {
    let c = cluster().await;
    let anon = Caller::Anonymous { remote: None };
    assert_err!(c.auth.list(&anon, Kind::User).await, Unauthenticated);
    assert_err!(
        c.auth
            .list(
                &Caller::Proxy {
                    remote: None,
                    internal: false
                },
                Kind::User
            )
            .await,
        Unauthenticated
    );
    assert_err!(c.auth.status(&anon).await, Unauthenticated);
    let msg = assert_err!(c.auth.list(&user("ghost"), Kind::User).await, AccessDenied);
    assert!(msg.contains("no longer exists"), "{msg}");
}

#[tokio::test]
async fn admin_socket_creates_updates_and_deletes_roles_with_audit() {
    let c = cluster().await;
    let socket = admin_socket();

    c.auth
        .put(&socket, role_json("ops", &["ubuntu"], json!({})), false)
        .await
        .unwrap();
    let created = c.last_event("role.created", None).await;
    assert_eq!(created.code, "KG3100I");
    assert_eq!(created.success, Some(true));
    assert_eq!(field(&created, "name"), "ops");
    assert_eq!(field(&created, "kind"), "role");
    let actor = created.actor.as_ref().unwrap();
    assert_eq!(actor.name, ADMIN_SOCKET_ACTOR);
    assert_eq!(actor.kind, ActorKind::Human);
    let stored = c.auth.read(&socket, Kind::Role, "ops").await.unwrap();
    assert_eq!(stored["spec"]["allow"]["logins"], json!(["ubuntu"]));
    assert!(stored["metadata"]["revision"].as_i64().unwrap() > 0);

    // Without force an existing role is not overwritten.
    let msg = assert_err!(
        c.auth
            .put(&socket, role_json("ops", &["deploy"], json!({})), false)
            .await,
        Conflict
    );
    assert!(msg.contains("--force"), "{msg}");
    let unchanged = c.auth.read(&socket, Kind::Role, "ops").await.unwrap();
    assert_eq!(unchanged["spec"]["allow"]["logins"], json!(["ubuntu"]));
    assert!(c.events("role.updated", None).await.is_empty());

    c.auth
        .put(&socket, role_json("ops", &["deploy"], json!({})), true)
        .await
        .unwrap();
    let updated = c.last_event("role.updated", None).await;
    assert_eq!(updated.code, "KG3101I");
    assert_eq!(field(&updated, "name"), "ops");
    assert_eq!(updated.actor.as_ref().unwrap().name, ADMIN_SOCKET_ACTOR);
    let changed = c.auth.read(&socket, Kind::Role, "ops").await.unwrap();
    assert_eq!(changed["spec"]["allow"]["logins"], json!(["deploy"]));

    c.auth.remove(&socket, Kind::Role, "ops").await.unwrap();
    let deleted = c.last_event("role.deleted", None).await;
    assert_eq!(deleted.code, "KG3102I");
    assert_eq!(field(&deleted, "name"), "ops");
    assert_eq!(deleted.actor.as_ref().unwrap().name, ADMIN_SOCKET_ACTOR);
    assert_err!(c.auth.read(&socket, Kind::Role, "ops").await, NotFound);

    let msg = assert_err!(c.auth.remove(&socket, Kind::Role, "ops").await, NotFound);
    assert!(msg.contains("ops"), "{msg}");
    assert_err!(
        c.auth.remove(&socket, Kind::Lock, "never-was").await,
        NotFound
    );
    assert_eq!(c.events("role.deleted", None).await.len(), 1);
}

#[tokio::test]
async fn a_user_with_the_admin_role_is_audited_as_itself() {
    let c = cluster().await;
    c.auth
        .put(
            &user("admin"),
            role_json("ops", &["ubuntu"], json!({})),
            false,
        )
        .await
        .unwrap();
    let ev = c.last_event("role.created", None).await;
    let actor = ev.actor.as_ref().unwrap();
    assert_eq!(actor.name, "admin");
    assert_eq!(actor.kind, ActorKind::Human);

    let bot = Caller::User {
        name: "admin".into(),
        bot: true,
        remote: None,
    };
    c.auth.remove(&bot, Kind::Role, "ops").await.unwrap();
    let ev = c.last_event("role.deleted", None).await;
    assert_eq!(ev.actor.as_ref().unwrap().kind, ActorKind::Bot);
}

#[tokio::test]
async fn invalid_resources_are_refused_naming_the_field() {
    let c = cluster().await;
    let socket = admin_socket();

    let mut unknown = role_json("ops", &["ubuntu"], json!({}));
    unknown["spec"]["allow"]["bogus_field"] = json!(true);
    let msg = assert_err!(c.auth.put(&socket, unknown, false).await, BadRequest);
    assert!(msg.contains("bogus_field"), "{msg}");

    let msg = assert_err!(
        c.auth
            .put(
                &socket,
                role_json("ops", &["ubuntu", "root; rm"], json!({})),
                false
            )
            .await,
        BadRequest
    );
    assert!(msg.contains("spec.allow.logins[1]"), "{msg}");

    let msg = assert_err!(
        c.auth
            .put(
                &socket,
                role_json("ops", &["ubuntu"], json!({"max_session_ttl": "soon"})),
                false
            )
            .await,
        BadRequest
    );
    assert!(msg.contains("soon"), "{msg}");

    let msg = assert_err!(
        c.auth
            .put(
                &socket,
                role_json("Bad Name!", &["ubuntu"], json!({})),
                false
            )
            .await,
        BadRequest
    );
    assert!(msg.contains("metadata.name"), "{msg}");

    let msg = assert_err!(
        c.auth
            .put(&socket, json!({"kind": "spaceship"}), false)
            .await,
        BadRequest
    );
    assert!(msg.contains("spaceship"), "{msg}");

    let mut v2 = role_json("ops", &["ubuntu"], json!({}));
    v2["version"] = json!("v2");
    let msg = assert_err!(c.auth.put(&socket, v2, false).await, BadRequest);
    assert!(msg.contains("v2"), "{msg}");

    let msg = assert_err!(
        c.auth
            .put(
                &socket,
                json!({"kind": "auth_preference", "version": "v1", "metadata": {"name": "other"}, "spec": {}}),
                true
            )
            .await,
        BadRequest
    );
    assert!(msg.contains("singleton"), "{msg}");

    // Nothing was stored or announced.
    assert_err!(c.auth.read(&socket, Kind::Role, "ops").await, NotFound);
    assert!(c.events("role.created", None).await.is_empty());
}

#[tokio::test]
async fn user_status_is_never_taken_from_input() {
    let c = cluster().await;
    let socket = admin_socket();
    c.auth
        .put(
            &socket,
            json!({"kind": "user", "version": "v1", "metadata": {"name": "frank"},
                   "spec": {"roles": ["access"], "traits": {"logins": ["frank"]},
                            "status": {"has_password": true, "has_totp": true}}}),
            false,
        )
        .await
        .unwrap();
    let frank = c.auth.read(&socket, Kind::User, "frank").await.unwrap();
    assert_eq!(frank["spec"]["status"]["has_password"], json!(false));
    assert_eq!(frank["spec"]["status"]["has_totp"], json!(false));
    let ev = c.last_event("user.create", Some("frank")).await;
    assert_eq!(ev.actor.as_ref().unwrap().name, ADMIN_SOCKET_ACTOR);

    // An update keeps the status auth maintains.
    let mut admin = c.auth.read(&socket, Kind::User, "admin").await.unwrap();
    admin["spec"]["status"]["has_totp"] = json!(false);
    admin["spec"]["traits"]["logins"] = json!(["kgt-admin", "ubuntu"]);
    c.auth.put(&socket, admin, true).await.unwrap();
    let admin = c.auth.read(&socket, Kind::User, "admin").await.unwrap();
    assert_eq!(admin["spec"]["status"]["has_totp"], json!(true));
    assert_eq!(
        admin["spec"]["traits"]["logins"],
        json!(["kgt-admin", "ubuntu"])
    );
    assert_eq!(
        c.last_event("user.update", Some("admin")).await.code,
        "KG3001I"
    );
}

#[tokio::test]
async fn removing_a_user_removes_their_login() {
    let c = cluster().await;
    let totp = c.signed_up_user("gina", &["access"], &["gina"]).await;
    c.auth
        .remove(&admin_socket(), Kind::User, "gina")
        .await
        .unwrap();
    let ev = c.last_event("user.delete", Some("gina")).await;
    assert_eq!(ev.actor.as_ref().unwrap().name, ADMIN_SOCKET_ACTOR);
    let msg = assert_err!(
        c.auth
            .login(
                common::login_req("gina", common::USER_PASSWORD, Some(c.next_code(&totp))),
                None
            )
            .await,
        InvalidCredentials
    );
    assert_eq!(msg, "invalid username or password");
    common::assert_failed_login(
        &c.last_event("user.login", Some("gina")).await,
        "gina",
        "unknown_user",
    );
}

#[tokio::test]
async fn status_names_the_caller_and_the_cas() {
    let c = cluster().await;
    let s = c.auth.status(&admin_socket()).await.unwrap();
    assert_eq!(s.cluster, "test-cluster");
    assert_eq!(s.caller, ADMIN_SOCKET_ACTOR);
    assert!(s.ca_pin.starts_with("sha256:"), "{}", s.ca_pin);
    let kinds: Vec<&str> = s.cas.iter().map(|ca| ca.kind.as_str()).collect();
    assert_eq!(kinds, ["user", "host", "openssh", "audit"]);
    assert!(
        s.cas
            .iter()
            .all(|ca| ca.ssh_fingerprints.iter().all(|f| f.starts_with("SHA256:")))
    );
    assert_eq!(c.auth.status(&user("admin")).await.unwrap().caller, "admin");
}

#[tokio::test]
async fn authorize_admin_reads_roles_at_call_time() {
    let c = cluster().await;
    c.invite("hank", &["access"], &["hank"]).await;
    assert_err!(
        c.auth
            .authorize_admin(&user("hank"), "role", "create")
            .await,
        AccessDenied
    );

    let mut hank = c
        .auth
        .read(&admin_socket(), Kind::User, "hank")
        .await
        .unwrap();
    hank["spec"]["roles"] = json!(["access", "admin"]);
    c.auth.put(&admin_socket(), hank, true).await.unwrap();
    let permit = c
        .auth
        .authorize_admin(&user("hank"), "role", "create")
        .await
        .unwrap();
    assert_eq!(permit.role(), "admin");
    assert_eq!(permit.rule(), "allow.rules");
}
