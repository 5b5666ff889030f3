//! Access explanations on a fixture cluster of 3 users × 5 roles × 20
//! nodes (plus the bootstrap `admin`): `explain` names the deciding role and
//! rule with the trace behind it, `who-can` and `what-can` list exactly the
//! access the policy grants, a deny rule and a lock included, and only
//! callers allowed to read `access` may ask.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::collections::BTreeMap;

use common::{ADMIN_LOGIN, Cluster, admin_socket, cluster, field, user};
use keygate_api::{ExplainRequest, ExplainResponse, FailedLabel, WhatCanEntry, WhoCanEntry};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const ALLOW: &str = "allow.logins+allow.node_labels";

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// Environment and team of node `i`: teams split 10/10, envs cycle.
fn env_team(i: usize) -> (&'static str, &'static str) {
    let env = ["dev", "staging", "prod"][i % 3];
    (env, if i < 10 { "web" } else { "db" })
}

fn node_name(i: usize) -> String {
    format!("node-{i:02}")
}

fn node_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-0000000000{i:02}")
}

/// The fixture:
/// - roles: `dev-access` (own login on dev/staging), `web-prod` (`deploy`
///   on prod web), `db-admin` (`postgres`, `root` on db nodes; expires in a
///   week), `no-prod-db` (deny every login on prod db nodes), `no-root`
///   (deny `root` everywhere);
/// - users: alice [dev-access, web-prod], bob [db-admin, no-prod-db], carol
///   [dev-access, db-admin, no-root] (a temporary user: expires tomorrow);
/// - 20 nodes `node-00`..`node-19` labelled env/team; node-08 reports
///   `env: dev` itself but is authoritatively prod;
/// - a lock on node-05 and an expired lock on alice.
async fn fixture() -> (Cluster, OffsetDateTime, OffsetDateTime) {
    let c = cluster().await;
    let admin = admin_socket();
    let week = c.now() + time::Duration::days(7);
    let tomorrow = c.now() + time::Duration::days(1);
    let role = |name: &str, spec: Value| json!({"kind": "role", "version": "v1", "metadata": {"name": name}, "spec": spec});
    let mut db_admin = role(
        "db-admin",
        json!({"allow": {"logins": ["postgres", "root"], "node_labels": {"team": "db"}}}),
    );
    db_admin["metadata"]["expires"] = json!(rfc3339(week));
    for r in [
        role(
            "dev-access",
            json!({"allow": {"logins": ["{{internal.logins}}"], "node_labels": {"env": ["dev", "staging"]}}}),
        ),
        role(
            "web-prod",
            json!({"allow": {"logins": ["deploy"], "node_labels": {"env": "prod", "team": "web"}}}),
        ),
        db_admin,
        role(
            "no-prod-db",
            json!({"deny": {"node_labels": {"env": "prod", "team": "db"}}}),
        ),
        role("no-root", json!({"deny": {"logins": ["root"]}})),
    ] {
        c.auth.put(&admin, r, false).await.unwrap();
    }
    c.invite("alice", &["dev-access", "web-prod"], &["alice"])
        .await;
    c.invite("bob", &["db-admin", "no-prod-db"], &["bob"]).await;
    c.invite("carol", &["dev-access", "db-admin", "no-root"], &["carol"])
        .await;
    let mut carol = c
        .auth
        .read(&admin, keygate_types::Kind::User, "carol")
        .await
        .unwrap();
    carol["metadata"]["expires"] = json!(rfc3339(tomorrow));
    c.auth.put(&admin, carol, true).await.unwrap();

    for i in 0..20 {
        let (env, team) = env_team(i);
        let self_labels = if i == 8 {
            json!({"env": "dev", "os": "debian"})
        } else {
            json!({"os": "debian"})
        };
        let node = json!({
            "kind": "node", "version": "v1",
            "metadata": {"name": node_name(i), "labels": {"env": env, "team": team}},
            "spec": {"id": node_id(i), "self_labels": self_labels},
        });
        c.auth.put(&admin, node, false).await.unwrap();
    }
    let lock = |name: &str, target: Value, message: &str, expires: Option<OffsetDateTime>| {
        let mut metadata = json!({"name": name});
        if let Some(e) = expires {
            metadata["expires"] = json!(rfc3339(e));
        }
        json!({"kind": "lock", "version": "v1", "metadata": metadata,
               "spec": {"target": target, "message": message}})
    };
    c.auth
        .put(
            &admin,
            lock("maint-05", json!({"node": "node-05"}), "maintenance", None),
            false,
        )
        .await
        .unwrap();
    // Expired a minute ago: must not matter anywhere.
    c.auth
        .put(
            &admin,
            lock(
                "old-alice",
                json!({"user": "alice"}),
                "was away",
                Some(c.now() - time::Duration::minutes(1)),
            ),
            false,
        )
        .await
        .unwrap();
    (c, week, tomorrow)
}

async fn explain(c: &Cluster, u: &str, node: &str, login: &str) -> ExplainResponse {
    c.auth
        .explain_access(
            &admin_socket(),
            ExplainRequest {
                user: u.into(),
                node: node.into(),
                login: login.into(),
            },
        )
        .await
        .unwrap()
}

/// Steps as `phase name matched` strings, to compare whole traces.
fn trace(e: &ExplainResponse) -> Vec<String> {
    e.steps
        .iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s.phase,
                s.name,
                s.rule.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

#[tokio::test]
async fn explain_names_the_deciding_role_and_rule() {
    let (c, _, _) = fixture().await;

    // Allowed through the role that matched, with the trace.
    let e = explain(&c, "alice", "node-00", "alice").await;
    assert!(e.allowed);
    assert_eq!(e.role.as_deref(), Some("dev-access"));
    assert_eq!(e.rule, ALLOW);
    assert_eq!(
        e.reason,
        format!("role \"dev-access\" allows login \"alice\" on node \"node-00\" ({ALLOW})")
    );
    assert_eq!(e.node_id, node_id(0));
    assert_eq!(e.roles, ["dev-access", "web-prod"]);
    assert_eq!(
        trace(&e),
        [
            "deny dev-access -",
            "deny web-prod -",
            format!("allow dev-access {ALLOW}").as_str(),
            "allow web-prod -",
        ]
    );
    assert_eq!(e.decided_by, Some(2));
    let step = &e.steps[2];
    assert_eq!(step.logins, ["alice"], "the trait template was expanded");
    assert_eq!(step.login_matched, Some(true));
    assert_eq!(step.node_labels_matched, Some(true));
    // The expired lock on alice is not in the trace.
    assert!(e.steps.iter().all(|s| s.phase != "lock"));

    // No allow: every role's failing field, and the closest role.
    let e = explain(&c, "alice", "node-02", "alice").await;
    assert!(!e.allowed);
    assert_eq!(e.role, None);
    assert_eq!(e.rule, "no allow rule matched");
    assert_eq!(
        e.reason,
        "no role of \"alice\" allows login \"alice\" on node \"node-02\" (labels {\"env\": \"prod\", \"os\": \"debian\", \"team\": \"web\"}); closest: role \"web-prod\" allows logins [\"deploy\"] there"
    );
    assert_eq!(e.decided_by, None);
    let dev = &e.steps[2];
    assert_eq!(
        (dev.phase.as_str(), dev.name.as_str()),
        ("allow", "dev-access")
    );
    assert_eq!(dev.login_matched, Some(true));
    assert_eq!(
        dev.failed_label,
        Some(FailedLabel {
            key: "env".into(),
            wants: vec!["dev".into(), "staging".into()],
            has: Some("prod".into()),
        })
    );
    let web = &e.steps[3];
    assert_eq!(web.logins, ["deploy"]);
    assert_eq!(web.login_matched, Some(false));
    assert_eq!(web.node_labels_matched, Some(true));
    assert_eq!(
        web.detail,
        "role \"web-prod\" allow: logins [deploy] lacks \"alice\"; node_labels match => no match"
    );

    // A deny rule on labels.
    let e = explain(&c, "bob", "node-11", "root").await;
    assert!(!e.allowed);
    assert_eq!(e.role.as_deref(), Some("no-prod-db"));
    assert_eq!(e.rule, "deny.node_labels");
    assert_eq!(
        e.reason,
        "node \"node-11\" is denied by role \"no-prod-db\" (deny.node_labels)"
    );
    assert_eq!(e.decided_by, Some(1));
    // The allow it overrides is still shown.
    assert_eq!(
        trace(&e),
        [
            "deny db-admin -",
            "deny no-prod-db deny.node_labels",
            format!("allow db-admin {ALLOW}").as_str(),
            "allow no-prod-db -",
        ]
    );

    // A deny rule on logins, from the third role.
    let e = explain(&c, "carol", "node-12", "root").await;
    assert_eq!(e.role.as_deref(), Some("no-root"));
    assert_eq!(e.rule, "deny.logins");
    assert_eq!(e.decided_by, Some(2));

    // A lock decides before any role.
    let e = explain(&c, "alice", "node-05", "deploy").await;
    assert!(!e.allowed);
    assert_eq!(e.role, None);
    assert_eq!(e.rule, "lock");
    assert_eq!(e.reason, "locked by maint-05: maintenance");
    assert_eq!(e.decided_by, Some(0));
    assert_eq!(e.steps[0].phase, "lock");
    assert_eq!(e.steps[0].name, "maint-05");
    assert_eq!(
        e.steps[0].detail,
        "lock \"maint-05\" (node=node-05) matches: maintenance"
    );
    assert!(
        e.steps.iter().any(|s| s.phase == "allow" && s.matched),
        "web-prod would allow it without the lock"
    );

    // The node's own claim of env=dev does not override its authoritative
    // env=prod; the node is found by id too.
    let e = explain(&c, "alice", &node_id(8), "alice").await;
    assert_eq!(e.node, "node-08");
    assert_eq!(e.labels["env"], "prod");
    assert_eq!(e.labels["os"], "debian");
    assert!(!e.allowed);
    assert_eq!(
        e.steps[2].failed_label.as_ref().unwrap().has.as_deref(),
        Some("prod")
    );
}

#[tokio::test]
async fn explain_refuses_unknowns_and_bad_input() {
    let (c, _, _) = fixture().await;
    let req = |u: &str, n: &str, l: &str| ExplainRequest {
        user: u.into(),
        node: n.into(),
        login: l.into(),
    };
    let msg = assert_err!(
        c.auth
            .explain_access(&admin_socket(), req("mallory", "node-00", "root"))
            .await,
        NotFound
    );
    assert_eq!(msg, "user \"mallory\" not found; see kgctl users ls");
    let msg = assert_err!(
        c.auth
            .explain_access(&admin_socket(), req("alice", "node-99", "root"))
            .await,
        NotFound
    );
    assert!(msg.contains("node \"node-99\" not found"), "{msg}");
    assert_err!(
        c.auth
            .explain_access(&admin_socket(), req("alice", "node-00", ""))
            .await,
        BadRequest
    );
    assert_err!(c.auth.what_can(&admin_socket(), "mallory").await, NotFound);
    assert_err!(
        c.auth.who_can(&admin_socket(), "node-99", None).await,
        NotFound
    );
}

/// Every user's expected logins on node `i`, written from the fixture's
/// description rather than computed by the policy engine.
fn expected(i: usize) -> BTreeMap<&'static str, Vec<(&'static str, &'static str)>> {
    let (env, team) = env_team(i);
    let mut m: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    if i == 5 {
        return m; // locked
    }
    m.insert("admin", vec![(ADMIN_LOGIN, "admin")]);
    let devish = env != "prod";
    if devish {
        m.entry("alice").or_default().push(("alice", "dev-access"));
    }
    if env == "prod" && team == "web" {
        m.entry("alice").or_default().push(("deploy", "web-prod"));
    }
    if team == "db" && env != "prod" {
        m.entry("bob")
            .or_default()
            .extend([("postgres", "db-admin"), ("root", "db-admin")]);
    }
    if devish {
        m.entry("carol").or_default().push(("carol", "dev-access"));
    }
    if team == "db" {
        m.entry("carol").or_default().push(("postgres", "db-admin"));
    }
    m
}

#[tokio::test]
async fn who_can_lists_every_user_login_role_and_expiry() {
    let (c, week, tomorrow) = fixture().await;

    let got = c
        .auth
        .who_can(&admin_socket(), "node-12", None)
        .await
        .unwrap();
    let entry = |u: &str, l: &str, r: &str, until: Option<OffsetDateTime>| WhoCanEntry {
        user: u.into(),
        login: l.into(),
        role: r.into(),
        rule: ALLOW.into(),
        until,
    };
    assert_eq!(
        got,
        [
            entry("admin", ADMIN_LOGIN, "admin", None),
            entry("alice", "alice", "dev-access", None),
            // Access through db-admin ends when the role does…
            entry("bob", "postgres", "db-admin", Some(week)),
            entry("bob", "root", "db-admin", Some(week)),
            // …or earlier, when the (temporary) user does.
            entry("carol", "carol", "dev-access", Some(tomorrow)),
            entry("carol", "postgres", "db-admin", Some(tomorrow)),
        ]
    );

    // Only one login: carol's root is denied by no-root.
    let got = c
        .auth
        .who_can(&admin_socket(), "node-12", Some("root"))
        .await
        .unwrap();
    assert_eq!(got, [entry("bob", "root", "db-admin", Some(week))]);
    // By node id; bob's deny rule takes him off prod db nodes.
    let got = c
        .auth
        .who_can(&admin_socket(), &node_id(11), None)
        .await
        .unwrap();
    let users: Vec<(&str, &str)> = got
        .iter()
        .map(|e| (e.user.as_str(), e.login.as_str()))
        .collect();
    assert_eq!(users, [("admin", ADMIN_LOGIN), ("carol", "postgres")]);
    // The locked node: nobody.
    assert!(
        c.auth
            .who_can(&admin_socket(), "node-05", None)
            .await
            .unwrap()
            .is_empty()
    );

    // All 20 nodes against the fixture's description.
    for i in 0..20 {
        let got = c
            .auth
            .who_can(&admin_socket(), &node_name(i), None)
            .await
            .unwrap();
        let mut by_user: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for e in &got {
            assert_eq!(e.rule, ALLOW);
            by_user
                .entry(e.user.as_str())
                .or_default()
                .push((e.login.as_str(), e.role.as_str()));
        }
        assert_eq!(by_user, expected(i), "who-can {}", node_name(i));
    }
}

#[tokio::test]
async fn what_can_lists_nodes_and_logins_and_agrees_with_who_can() {
    let (c, _, _) = fixture().await;
    for u in ["admin", "alice", "bob", "carol"] {
        let got = c.auth.what_can(&admin_socket(), u).await.unwrap();
        let want: Vec<WhatCanEntry> = (0..20)
            .filter_map(|i| {
                let logins: Vec<String> = expected(i)
                    .get(u)?
                    .iter()
                    .map(|(l, _)| (*l).to_owned())
                    .collect();
                Some(WhatCanEntry {
                    node: node_name(i),
                    id: node_id(i),
                    logins,
                })
            })
            .collect();
        assert_eq!(got, want, "what-can {u}");
    }
    let alice = c.auth.what_can(&admin_socket(), "alice").await.unwrap();
    assert_eq!(
        alice.len(),
        16,
        "14 dev/staging nodes + 2 unlocked prod web"
    );
    // Every what-can answer is an allowed explain, and vice versa for a denied login.
    for entry in &alice {
        for l in &entry.logins {
            assert!(explain(&c, "alice", &entry.node, l).await.allowed);
        }
    }
    assert!(!explain(&c, "alice", "node-05", "deploy").await.allowed);
}

#[tokio::test]
async fn only_callers_who_may_read_access_may_ask() {
    let (c, _, _) = fixture().await;
    // alice's roles grant logins, not `access` reads.
    let msg = assert_err!(
        c.auth
            .explain_access(
                &user("alice"),
                ExplainRequest {
                    user: "bob".into(),
                    node: "node-12".into(),
                    login: "root".into(),
                },
            )
            .await,
        AccessDenied
    );
    assert!(msg.contains("allows read on access"), "{msg}");
    assert_err!(
        c.auth.who_can(&user("alice"), "node-12", None).await,
        AccessDenied
    );
    assert_err!(c.auth.what_can(&user("bob"), "bob").await, AccessDenied);
    let ev = c.last_event("auth.failed", Some("bob")).await;
    assert_eq!(field(&ev, "kind"), "access");
    assert_eq!(field(&ev, "verb"), "read");

    // A user holding the admin role may (roles are read from the store).
    let got = c.auth.what_can(&user("admin"), "carol").await.unwrap();
    assert_eq!(got.len(), 17);
}
