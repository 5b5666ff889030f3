#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! `kgctl plan/apply`: field-level plans, all-or-nothing writes, conflict
//! detection, prune that keeps built-in roles, audit with changed fields.

mod common;

use common::{admin_socket, cluster, role_json};
use keygate_api::ApplyRequest;
use keygate_auth_service::AuthError;
use keygate_types::Kind;
use serde_json::json;

fn req(resources: Vec<serde_json::Value>, prune: bool, dry_run: bool) -> ApplyRequest {
    ApplyRequest {
        resources,
        prune,
        dry_run,
    }
}

#[tokio::test]
async fn plan_then_apply_then_no_changes() {
    let c = cluster().await;
    let s = admin_socket();
    let set = vec![
        role_json("dev", &["alice"], json!({})),
        role_json("ops", &["root"], json!({"max_session_ttl": "8h"})),
    ];
    let plan = c
        .auth
        .apply(&s, req(set.clone(), false, true))
        .await
        .unwrap();
    assert!(!plan.applied);
    assert_eq!(
        plan.changes
            .iter()
            .map(|c| (c.name.as_str(), c.action.as_str()))
            .collect::<Vec<_>>(),
        [("dev", "create"), ("ops", "create")]
    );
    assert!(
        c.auth.read(&s, Kind::Role, "dev").await.is_err(),
        "a plan writes nothing"
    );
    let applied = c
        .auth
        .apply(&s, req(set.clone(), false, false))
        .await
        .unwrap();
    assert!(applied.applied);
    assert!(
        c.auth
            .apply(&s, req(set, false, true))
            .await
            .unwrap()
            .changes
            .is_empty()
    );

    // A one-field edit shows exactly that field.
    let edited = vec![
        role_json("dev", &["alice", "bob"], json!({})),
        role_json("ops", &["root"], json!({"max_session_ttl": "8h"})),
    ];
    let plan = c.auth.apply(&s, req(edited, false, true)).await.unwrap();
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].name, "dev");
    assert_eq!(plan.changes[0].fields, ["spec.allow.logins"]);
}

#[tokio::test]
async fn an_invalid_set_changes_nothing() {
    let c = cluster().await;
    let s = admin_socket();
    let mut bad = role_json("bad", &["root"], json!({}));
    bad["spec"]["allow"]["logins"] = json!(["x y"]);
    let err = c
        .auth
        .apply(
            &s,
            req(
                vec![role_json("good", &["a"], json!({})), bad],
                false,
                false,
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::BadRequest(_)), "{err:?}");
    assert!(
        c.auth.read(&s, Kind::Role, "good").await.is_err(),
        "nothing may be written"
    );
    let dup = vec![
        role_json("x", &["a"], json!({})),
        role_json("x", &["b"], json!({})),
    ];
    assert!(matches!(
        c.auth.apply(&s, req(dup, false, false)).await,
        Err(AuthError::BadRequest(_))
    ));
}

#[tokio::test]
async fn prune_deletes_only_what_is_missing_and_keeps_builtins() {
    let c = cluster().await;
    let s = admin_socket();
    c.auth
        .apply(
            &s,
            req(
                vec![
                    role_json("a", &["x"], json!({})),
                    role_json("b", &["y"], json!({})),
                ],
                false,
                false,
            ),
        )
        .await
        .unwrap();
    let r = c
        .auth
        .apply(
            &s,
            req(vec![role_json("a", &["x"], json!({}))], true, false),
        )
        .await
        .unwrap();
    assert_eq!(
        r.changes
            .iter()
            .map(|c| (c.name.as_str(), c.action.as_str()))
            .collect::<Vec<_>>(),
        [("b", "delete")]
    );
    assert!(c.auth.read(&s, Kind::Role, "b").await.is_err());
    for builtin in ["admin", "access", "auditor", "editor"] {
        assert!(
            c.auth.read(&s, Kind::Role, builtin).await.is_ok(),
            "{builtin} must survive prune"
        );
    }
}

#[tokio::test]
async fn apply_needs_rights_for_every_change_and_audits_fields() {
    let c = cluster().await;
    let s = admin_socket();
    c.invite("viewer", &["access"], &["viewer"]).await;
    let err = c
        .auth
        .apply(
            &common::user("viewer"),
            req(vec![role_json("x", &["a"], json!({}))], false, false),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::AccessDenied(_)), "{err:?}");
    assert!(c.auth.read(&s, Kind::Role, "x").await.is_err());
    c.auth
        .apply(
            &s,
            req(vec![role_json("x", &["a"], json!({}))], false, false),
        )
        .await
        .unwrap();
    c.auth
        .apply(
            &s,
            req(vec![role_json("x", &["a", "b"], json!({}))], false, false),
        )
        .await
        .unwrap();
    let ev = c.last_event("role.updated", None).await;
    assert_eq!(
        common::field(&ev, "changed_fields"),
        &json!(["spec.allow.logins"])
    );
    assert!(ev.actor.is_some());
}
