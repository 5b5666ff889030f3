#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! `explain` agrees with `authorize` for every new kind of access, over
//! thousands of generated combinations of the table's roles, and the
//! generator reaches both outcomes for each kind.

use std::collections::BTreeMap;

use keygate_policy::{
    AccessContext, Action, Identity, KubeResource, RequestFacts, Target, authorize, explain,
};
use keygate_types::{AnyResource, Labels, Role, load_documents};
use serde_json::json;

mod support;
use support::{Gen, assert_agrees, now};

const ROLES: &str = include_str!("fixtures/table_roles.yaml");

#[test]
fn explain_agrees_for_every_kind() {
    let all: Vec<Role> = load_documents("table_roles.yaml", ROLES)
        .unwrap()
        .into_iter()
        .map(|d| match d.resource {
            AnyResource::Role(r) => r,
            _ => panic!(),
        })
        .collect();
    let names = ["alice", "bob", "mallory", "postgres", "readonly", "viewers"];
    let words = [
        "dev", "db-ro", "db-rw", "db-admin", "auditor", "ops-all", "orders", "api", "web-1",
        "payments", "",
    ];
    let kinds = ["pod", "deployment", "namespace", "secret"];
    let namespaces = ["dev-1", "default", "", "prod"];
    let keys = ["env", "team", "tier", "kind", "owner"];
    let values = ["prod", "dev", "web", "payments", "secret", "admin", "alice"];
    let mut g = Gen(0xD1B5_4A32_D192_ED03);
    // (allowed, denied) per kind of question.
    let mut seen = [(0u32, 0u32); 10];
    for _ in 0..6000 {
        let id = Identity {
            user: (*g.pick(&names[..3])).to_owned(),
            roles: g.subset(&all, 4),
            traits: BTreeMap::from([
                ("email".into(), vec!["alice@example.com".into()]),
                ("groups".into(), vec!["oncall-db".into()]),
                ("teams".into(), vec![(*g.pick(&values)).to_owned()]),
            ]),
        };
        let labels: Labels = (0..g.below(3))
            .map(|_| ((*g.pick(&keys)).to_owned(), (*g.pick(&values)).to_owned()))
            .collect();
        let (a, b) = (*g.pick(&words), *g.pick(&words));
        let (n, kind) = (*g.pick(&names), *g.pick(&kinds));
        let wanted: Vec<String> = [a, b]
            .iter()
            .take(1 + g.below(2))
            .map(|s| (*s).to_owned())
            .collect();
        let resources = vec!["/node/web-1".to_owned()];
        let facts = RequestFacts {
            user: g.word(&names[..3]),
            roles: &wanted,
            resources: if g.below(3) == 0 { &resources } else { &[] },
            reason: if g.below(2) == 0 { "" } else { "INC-7" },
        };
        let item =
            json!({"kind": "node", "metadata": {"name": a, "labels": labels}, "participants": [n]});
        let resource = KubeResource {
            kind,
            namespace: g.word(&namespaces),
            name: b,
        };
        let kube = Target::Kubernetes { cluster: "main" };
        let verb = *g.pick(&["get", "exec", "list", "delete"]);
        let mut db_labels = labels.clone();
        if g.below(2) == 0 {
            db_labels.insert("env".into(), "prod".into());
        }
        let db = Target::Database {
            name: "orders-db",
            labels: &db_labels,
        };
        let mut app_labels = labels.clone();
        if g.below(2) == 0 {
            app_labels.insert("team".into(), "web".into());
        }
        let app = Target::App {
            name: "grafana",
            labels: &app_labels,
        };
        let self_request = RequestFacts {
            user: &id.user,
            ..facts
        };
        let cases = [
            (kube, Action::KubernetesGroup(n)),
            (kube, Action::KubernetesUser(n)),
            (kube, Action::KubernetesVerb { verb, resource }),
            (
                db,
                Action::DatabaseConnect {
                    db_user: n,
                    db_name: g.word(&["orders", "analytics_eu", "nope"]),
                },
            ),
            (app, Action::AppAccess),
            (
                Target::Kind(g.word(&["node", "session", "token"])),
                Action::Verb(verb),
            ),
            (
                Target::Resource {
                    kind: g.word(&["node", "session"]),
                    item: &item,
                },
                Action::Verb(g.word(&["read", "delete", "update", "list"])),
            ),
            (Target::AccessRequest(self_request), Action::Request),
            (Target::AccessRequest(facts), Action::Request),
            (Target::AccessRequest(facts), Action::Review),
        ];
        let ctx = AccessContext::default();
        for (i, (target, action)) in cases.into_iter().enumerate() {
            let e = explain(&id, target, action, &ctx, now());
            assert_agrees(&e, &id, target, action, &ctx);
            match authorize(&id, target, action, &ctx, now()) {
                Ok(_) => seen[i].0 += 1,
                Err(_) => seen[i].1 += 1,
            }
        }
    }
    for (i, (allowed, denied)) in seen.iter().enumerate() {
        assert!(
            *allowed > 20 && *denied > 20,
            "kind {i}: {allowed} allowed, {denied} denied; all: {seen:?}"
        );
    }
}
