//! Admin rules with a `where`: auth judges each item (read, create,
//! update, delete, apply), filters listings, and refuses operations on a
//! whole kind to a grant that holds only for some items.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{admin_socket, cluster, user};
use keygate_auth_service::AuthError;
use keygate_types::Kind;
use serde_json::json;

fn lock(name: &str, target: &str, env: &str) -> serde_json::Value {
    json!({"kind": "lock", "version": "v1",
           "metadata": {"name": name, "labels": {"env": env}},
           "spec": {"target": {"user": target}}})
}

#[tokio::test]
async fn where_rules_judge_each_item() {
    let c = cluster().await;
    let socket = admin_socket();
    c.auth
        .put(
            &socket,
            json!({"kind": "role", "version": "v1", "metadata": {"name": "dev-locks"},
            "spec": {"allow": {"rules": [{
                "resources": ["lock"],
                "verbs": ["list", "read", "create", "update", "delete"],
                "where": "resource.metadata.labels[\"env\"] == \"dev\""
            }]}}}),
            false,
        )
        .await
        .unwrap();
    c.auth
        .put(
            &socket,
            json!({"kind": "user", "version": "v1", "metadata": {"name": "dana"},
                   "spec": {"roles": ["dev-locks"]}}),
            false,
        )
        .await
        .unwrap();
    c.auth
        .put(&socket, lock("prod-1", "x", "prod"), false)
        .await
        .unwrap();
    c.auth
        .put(&socket, lock("dev-1", "y", "dev"), false)
        .await
        .unwrap();
    let dana = user("dana");

    // Listing shows only what the where admits.
    let listed = c.auth.list(&dana, Kind::Lock).await.unwrap();
    let names: Vec<&str> = listed
        .iter()
        .filter_map(|l| l["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, vec!["dev-1"]);
    // One item: read, create, update and delete follow the item.
    assert!(c.auth.read(&dana, Kind::Lock, "dev-1").await.is_ok());
    let e = c.auth.read(&dana, Kind::Lock, "prod-1").await;
    assert!(matches!(e, Err(AuthError::AccessDenied(_))), "{e:?}");
    c.auth
        .put(&dana, lock("dev-2", "z", "dev"), false)
        .await
        .unwrap();
    let e = c.auth.put(&dana, lock("prod-2", "z", "prod"), false).await;
    assert!(matches!(e, Err(AuthError::AccessDenied(_))), "{e:?}");
    // Moving an item out of the where's reach is an update of a prod item.
    let e = c.auth.put(&dana, lock("dev-1", "y", "prod"), true).await;
    assert!(matches!(e, Err(AuthError::AccessDenied(_))), "{e:?}");
    let e = c.auth.remove(&dana, Kind::Lock, "prod-1").await;
    assert!(matches!(e, Err(AuthError::AccessDenied(_))), "{e:?}");
    c.auth.remove(&dana, Kind::Lock, "dev-2").await.unwrap();
    assert!(
        c.auth.read(&socket, Kind::Lock, "prod-1").await.is_ok(),
        "prod lock untouched"
    );
    // Denials are audited with the rule.
    assert!(!c.events("auth.failed", Some("dana")).await.is_empty());
}

#[tokio::test]
async fn whole_kind_operations_need_an_unconditional_grant() {
    let c = cluster().await;
    let socket = admin_socket();
    c.auth
        .put(
            &socket,
            json!({"kind": "role", "version": "v1", "metadata": {"name": "some-cas"},
            "spec": {"allow": {"rules": [{
                "resources": ["cert_authority"],
                "verbs": ["update"],
                "where": "resource.metadata.name == \"user\""
            }]}}}),
            false,
        )
        .await
        .unwrap();
    c.auth
        .put(
            &socket,
            json!({"kind": "user", "version": "v1", "metadata": {"name": "erin"},
                   "spec": {"roles": ["some-cas"]}}),
            false,
        )
        .await
        .unwrap();
    let e = c
        .auth
        .rotate_ca(&user("erin"), "user", keygate_api::RotateRequest::default())
        .await;
    match e {
        Err(AuthError::AccessDenied(m)) => assert!(m.contains("only for items"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
