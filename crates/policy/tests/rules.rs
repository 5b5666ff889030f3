#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Admin rules with `where` (one item, a kind, and `rule_filter` for
//! listings), predicates that do not parse, the built-in roles, and how
//! explanations read for the new kinds.

use std::collections::BTreeMap;

use keygate_policy::{
    AccessContext, Action, Identity, KubeResource, RequestFacts, Step, Target, authorize, explain,
    rule_filter,
};
use keygate_types::{
    AnyResource, Kind, Resource, Role, RoleConditions, RoleSpec, Rule, builtin_roles,
    load_documents,
};
use serde_json::{Value, json};

mod support;
use support::{assert_agrees, now};

fn role_yaml(yaml: &str) -> Role {
    match load_documents("r.yaml", yaml).unwrap().remove(0).resource {
        AnyResource::Role(r) => r,
        _ => panic!(),
    }
}

fn who(user: &str, roles: Vec<Role>) -> Identity {
    Identity {
        user: user.into(),
        roles,
        traits: BTreeMap::from([("teams".into(), vec!["web".into()])]),
    }
}

fn node_item(name: &str, labels: Value) -> Value {
    json!({"kind": "node", "version": "v1", "metadata": {"name": name, "labels": labels}, "spec": {}})
}

fn verb(id: &Identity, target: Target<'_>, v: &str) -> Result<String, String> {
    let ctx = AccessContext::default();
    let e = explain(id, target, Action::Verb(v), &ctx, now());
    assert_agrees(&e, id, target, Action::Verb(v), &ctx);
    authorize(id, target, Action::Verb(v), &ctx, now())
        .map(|p| format!("{}/{}", p.role(), p.rule()))
        .map_err(|d| d.rule)
}

const TEAM_NODES: &str = r#"
kind: role
version: v1
metadata: {name: team-nodes}
spec:
  allow:
    rules:
      - resources: [node]
        verbs: [list, read]
        where: 'contains(user.traits["teams"], resource.metadata.labels["team"])'
  deny:
    rules:
      - resources: [node]
        verbs: [read]
        where: 'labels["secret"] == "yes"'
"#;

#[test]
fn rule_filter_keeps_what_authorize_allows() {
    let id = who("alice", vec![role_yaml(TEAM_NODES)]);
    let items = [
        node_item("web-1", json!({"team": "web"})),
        node_item("web-2", json!({"team": "web", "secret": "yes"})),
        node_item("db-1", json!({"team": "db"})),
        node_item("bare", json!({})),
        json!({"kind": "node"}),
        json!("not an object"),
    ];
    // The kind is allowed (the listing must then be filtered).
    assert_eq!(
        verb(&id, Target::Kind("node"), "read").unwrap(),
        "team-nodes/allow.rules.where"
    );
    let filter = rule_filter(&id, "node", "read");
    assert!(!filter.matches_nothing() && !filter.matches_everything());
    let kept: Vec<bool> = items.iter().map(|i| filter.matches(i)).collect();
    assert_eq!(kept, [true, false, false, false, false, false]);
    for (item, kept) in items.iter().zip(kept) {
        let target = Target::Resource { kind: "node", item };
        assert_eq!(verb(&id, target, "read").is_ok(), kept, "{item}");
    }
    // The deny `where` applies to read only; list keeps the secret node.
    let list = rule_filter(&id, "node", "list");
    assert!(list.matches(&items[1]));
    assert!(rule_filter(&id, "node", "delete").matches_nothing());
    assert!(rule_filter(&id, "user", "read").matches_nothing());

    let all = who("root", vec![builtin_roles().remove(0)]);
    let everything = rule_filter(&all, "node", "read");
    assert!(everything.matches_everything());
    assert!(items.iter().all(|i| everything.matches(i)));
}

/// A role stored by another build can carry a `where` that does not parse:
/// on allow it never holds, on deny it always does.
#[test]
fn unparseable_where_never_allows_and_always_denies() {
    let raw = |name: &str, allow: Vec<Rule>, deny: Vec<Rule>| -> Role {
        Resource::new(
            Kind::Role,
            name,
            RoleSpec {
                allow: RoleConditions {
                    rules: allow,
                    ..RoleConditions::default()
                },
                deny: RoleConditions {
                    rules: deny,
                    ..RoleConditions::default()
                },
                ..RoleSpec::default()
            },
        )
    };
    let rule = |w: Option<&str>| Rule {
        resources: vec!["node".into()],
        verbs: vec!["read".into()],
        where_: w.map(str::to_owned),
    };
    let item = node_item("web-1", json!({"team": "web"}));
    let target = Target::Resource {
        kind: "node",
        item: &item,
    };
    let broken = Some("resource.metadata.name ==");
    let id = who("alice", vec![raw("bad-allow", vec![rule(broken)], vec![])]);
    assert_eq!(
        verb(&id, target, "read").unwrap_err(),
        "no allow rule matched"
    );
    let id = who(
        "alice",
        vec![
            raw("bad-deny", vec![], vec![rule(broken)]),
            raw("ok", vec![rule(None)], vec![]),
        ],
    );
    assert_eq!(verb(&id, target, "read").unwrap_err(), "deny.rules");
    let e = explain(
        &id,
        target,
        Action::Verb("read"),
        &AccessContext::default(),
        now(),
    );
    let line = e.steps[0].to_string();
    assert!(line.contains("does not parse"), "{line}");
    // At the kind level, the deny `where` is left to the filter, which
    // keeps nothing.
    assert_eq!(
        verb(&id, Target::Kind("node"), "read").unwrap(),
        "ok/allow.rules"
    );
    assert!(!rule_filter(&id, "node", "read").matches(&item));
}

#[test]
fn bad_where_and_patterns_are_rejected_when_loading() {
    for (body, want) in [
        (
            "rules: [{resources: [node], verbs: [read], where: 'resource.metadata.name == '}]",
            "spec.allow.rules[0].where: expected a value",
        ),
        (
            "rules: [{resources: [node], verbs: [read], where: 'reviewer.name == \"x\"'}]",
            "`reviewer` is not available here",
        ),
        (
            "review_requests: {roles: [dev], where: 'request.user == 1'}",
            "spec.allow.review_requests.where: unexpected character '1'",
        ),
        (
            "kubernetes_groups: ['^(unclosed$']",
            "spec.allow.kubernetes_groups[0]: invalid regular expression",
        ),
        (
            "db_names: ['^(a{1000}){1000}$']",
            "spec.allow.db_names[0]: invalid regular expression",
        ),
        (
            "logins: ['{{regexp.replace(internal.logins, \"(\", \"x\")}}']",
            "spec.allow.logins[0]",
        ),
    ] {
        let yaml = format!(
            "kind: role\nversion: v1\nmetadata: {{name: r}}\nspec:\n  allow:\n    {body}\n"
        );
        let e = load_documents("r.yaml", &yaml).unwrap_err().to_string();
        assert!(e.contains(want), "{body}: {e}");
    }
}

#[test]
fn builtin_requester_and_reviewer() {
    let builtin: BTreeMap<String, Role> = builtin_roles()
        .into_iter()
        .map(|r| (r.metadata.name.clone(), r))
        .collect();
    let names: Vec<&str> = builtin.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "access",
            "admin",
            "auditor",
            "editor",
            "requester",
            "reviewer"
        ]
    );
    let as_user =
        |user: &str, roles: &[&str]| who(user, roles.iter().map(|n| builtin[*n].clone()).collect());
    let ctx = AccessContext::default();
    let ask = |id: &Identity, user: &str, roles: &[&str], action: Action<'_>| {
        let roles: Vec<String> = roles.iter().map(|s| (*s).to_owned()).collect();
        let facts = RequestFacts {
            user,
            roles: &roles,
            resources: &[],
            reason: "on call",
        };
        let target = Target::AccessRequest(facts);
        let e = explain(id, target, action, &ctx, now());
        assert_agrees(&e, id, target, action, &ctx);
        authorize(id, target, action, &ctx, now()).map_err(|d| d.rule)
    };
    let alice = as_user("alice", &["requester"]);
    assert!(ask(&alice, "alice", &["access", "editor"], Action::Request).is_ok());
    assert!(ask(&alice, "alice", &["admin"], Action::Request).is_err());
    assert!(ask(&alice, "alice", &["access"], Action::Review).is_err());
    let bob = as_user("bob", &["reviewer"]);
    assert_eq!(
        ask(&bob, "alice", &["access"], Action::Review)
            .unwrap()
            .role(),
        "reviewer"
    );
    assert!(ask(&bob, "alice", &["admin"], Action::Review).is_err());
    assert_eq!(
        ask(&bob, "bob", &["access"], Action::Review).unwrap_err(),
        "review.own_request"
    );
    // Requesters see their own requests only; reviewers see all.
    let own =
        json!({"kind": "access_request", "metadata": {"name": "r1"}, "spec": {"user": "alice"}});
    let other =
        json!({"kind": "access_request", "metadata": {"name": "r2"}, "spec": {"user": "carol"}});
    for (id, item, allowed) in [
        (&alice, &own, true),
        (&alice, &other, false),
        (&bob, &other, true),
    ] {
        let target = Target::Resource {
            kind: "access_request",
            item,
        };
        assert_eq!(
            verb(id, target, "read").is_ok(),
            allowed,
            "{} {item}",
            id.user
        );
    }
    assert!(verb(&bob, Target::Kind("access_request"), "create").is_err());
    assert_eq!(
        verb(&alice, Target::Kind("access_request"), "create").unwrap(),
        "requester/allow.rules.where"
    );
}

#[test]
fn explanations_of_the_new_kinds_read_as_one_line_each() {
    let role = role_yaml(
        r#"
kind: role
version: v1
metadata: {name: k}
spec:
  allow:
    kubernetes_resources: [{kind: pod, namespace: 'dev-*', name: '*', verbs: [get]}]
    db_labels: {env: prod}
    db_users: [readonly]
    db_names: ['*']
    app_labels: {team: web}
    review_requests: {roles: [dev], where: 'request.reason != ""'}
  deny:
    db_users: [postgres]
"#,
    );
    let id = who("alice", vec![role]);
    let ctx = AccessContext::default();
    let line = |target: Target<'_>, action: Action<'_>, i: usize| -> String {
        let e = explain(&id, target, action, &ctx, now());
        assert_agrees(&e, &id, target, action, &ctx);
        match &e.steps[i] {
            s @ (Step::Allow(_) | Step::Deny(_)) => s.to_string(),
            other => panic!("{other:?}"),
        }
    };
    let resource = KubeResource {
        kind: "pod",
        namespace: "dev-1",
        name: "api",
    };
    let kube = Target::Kubernetes { cluster: "main" };
    assert_eq!(
        line(
            kube,
            Action::KubernetesVerb {
                verb: "exec",
                resource
            },
            1
        ),
        "role \"k\" allow: kubernetes [pod dev-*/* [get]] do not cover exec on pod dev-1/api => no match"
    );
    let prod = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
    let db = Target::Database {
        name: "orders",
        labels: &prod,
    };
    let connect = Action::DatabaseConnect {
        db_user: "postgres",
        db_name: "orders",
    };
    assert_eq!(
        line(db, connect, 0),
        "role \"k\" deny: db_users [postgres] covers \"postgres\"; db_names [] lacks \"orders\"; db_labels empty (matches no database) => DENY (deny.db_users)"
    );
    let connect = Action::DatabaseConnect {
        db_user: "readonly",
        db_name: "orders",
    };
    assert_eq!(
        line(db, connect, 1),
        "role \"k\" allow: db_users [readonly] covers \"readonly\"; db_names [*] covers \"orders\"; db_labels match => ALLOW (allow.db_labels+allow.db_users+allow.db_names)"
    );
    let app = Target::App {
        name: "grafana",
        labels: &prod,
    };
    assert_eq!(
        line(app, Action::AppAccess, 1),
        "role \"k\" allow: app_labels key \"team\" wants [web], app has no \"team\" label => no match"
    );
    let roles = vec!["dev".to_owned()];
    let facts = RequestFacts {
        user: "bob",
        roles: &roles,
        resources: &[],
        reason: "",
    };
    assert_eq!(
        line(Target::AccessRequest(facts), Action::Review, 1),
        "role \"k\" allow: review_requests.roles [dev] cover [dev] of requested [dev]; where \"request.reason != \\\"\\\"\" is false => no match"
    );
    let item = node_item("web-1", json!({}));
    let target = Target::Resource {
        kind: "node",
        item: &item,
    };
    assert_eq!(
        line(target, Action::Verb("read"), 1),
        "role \"k\" allow: rules do not cover read on node => no match"
    );
}
