#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Properties of `authorize()` for Kubernetes, databases, apps, admin rules
//! with `where`, and access requests and reviews, over random roles: a deny
//! side never grants, role order never matters, and `explain` always
//! agrees. Expressions here do not read `user.roles` or `reviewer.roles`
//! (adding a role changes what those see — by design, not a deny flaw).

use std::collections::BTreeMap;

use keygate_policy::{
    AccessContext, Action, Identity, KubeResource, RequestFacts, Target, authorize, explain,
};
use keygate_types::{
    Kind, KubernetesResource, LabelValues, Labels, RequestConditions, Resource, ReviewConditions,
    Role, RoleConditions, RoleSpec, Rule,
};
use proptest::prelude::*;
use serde_json::json;

mod support;
use support::{assert_agrees, now};

const PATTERNS: &[&str] = &[
    "dev",
    "db-*",
    "^db-(ro|rw)$",
    "*",
    "{{internal.teams}}",
    "ops",
];
const NAMES: &[&str] = &["dev", "db-ro", "db-rw", "ops", "web", "payments"];
const VALUES: &[&str] = &["prod", "dev", "web", "*", "pro*", "{{internal.teams}}"];
const WHERES: &[Option<&str>] = &[
    None,
    None,
    Some(r#"labels["env"] == "prod""#),
    Some(r#"resource.metadata.labels["team"] == user.name"#),
    Some(r#"request.reason != """#),
    Some(r#"!equals(request.user, "mallory")"#),
    Some(r#"contains(request.roles, "dev")"#),
    Some(r#"resource.metadata.name =="#),
];

fn strings(picks: &[&str]) -> Vec<String> {
    picks.iter().map(|s| (*s).to_owned()).collect()
}

fn patterns() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(proptest::sample::select(PATTERNS), 0..3).prop_map(|v| strings(&v))
}

fn selector() -> impl Strategy<Value = keygate_types::LabelSelector> {
    proptest::collection::btree_map(
        proptest::sample::select(&["env", "team", "*"][..]),
        proptest::collection::vec(proptest::sample::select(VALUES), 1..3),
        0..2,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (k.to_owned(), LabelValues::Many(strings(&v))))
            .collect()
    })
}

fn kube_entries() -> impl Strategy<Value = Vec<KubernetesResource>> {
    let entry = (
        proptest::sample::select(&["pod", "*", "deploy*"][..]),
        proptest::sample::select(&["dev", "*", ""][..]),
        proptest::sample::select(&["api", "*", ""][..]),
        proptest::collection::vec(proptest::sample::select(&["get", "exec", "*"][..]), 1..3),
    )
        .prop_map(|(kind, ns, name, verbs)| KubernetesResource {
            kind: kind.to_owned(),
            namespace: ns.to_owned(),
            name: name.to_owned(),
            verbs: strings(&verbs),
        });
    proptest::collection::vec(entry, 0..2)
}

fn rules() -> impl Strategy<Value = Vec<Rule>> {
    let rule = (
        proptest::sample::select(&["node", "*", "session"][..]),
        proptest::sample::select(&["read", "*", "list"][..]),
        proptest::sample::select(WHERES),
    )
        .prop_map(|(k, v, w)| Rule {
            resources: vec![k.to_owned()],
            verbs: vec![v.to_owned()],
            where_: w.map(str::to_owned),
        });
    proptest::collection::vec(rule, 0..2)
}

fn conditions() -> impl Strategy<Value = RoleConditions> {
    (
        (patterns(), patterns(), kube_entries()),
        (selector(), patterns(), patterns(), selector()),
        (
            proptest::option::of((patterns(), patterns(), any::<bool>())),
            proptest::option::of((patterns(), proptest::sample::select(WHERES))),
            rules(),
        ),
    )
        .prop_map(
            |((kg, ku, kr), (dl, dn, du, al), (request, review, rules))| RoleConditions {
                kubernetes_groups: kg,
                kubernetes_users: ku,
                kubernetes_resources: kr,
                db_labels: dl,
                db_names: dn,
                db_users: du,
                app_labels: al,
                request: request.map(|(roles, search, reason)| RequestConditions {
                    roles,
                    search_as_roles: search,
                    reason_required: Some(reason),
                    ..RequestConditions::default()
                }),
                review_requests: review.map(|(roles, w)| ReviewConditions {
                    roles,
                    where_: w.map(str::to_owned),
                }),
                rules,
                ..RoleConditions::default()
            },
        )
}

fn roles() -> impl Strategy<Value = Vec<Role>> {
    proptest::collection::vec((conditions(), conditions()), 0..4).prop_map(|sides| {
        sides
            .into_iter()
            .enumerate()
            .map(|(i, (allow, deny))| {
                Resource::new(
                    Kind::Role,
                    format!("r{i}"),
                    RoleSpec {
                        allow,
                        deny,
                        ..RoleSpec::default()
                    },
                )
            })
            .collect()
    })
}

/// What is asked: which kind (0..9) and the values to use.
#[derive(Debug, Clone)]
struct Ask {
    /// Which kind of question.
    which: usize,
    /// A name (group, user, db user, role…).
    name: &'static str,
    /// Another name (db name, second role…).
    other: &'static str,
    /// Labels of the database, app or resource.
    labels: Labels,
    /// Requester for requests and reviews.
    requester: &'static str,
    /// Request reason.
    reason: &'static str,
}

fn ask() -> impl Strategy<Value = Ask> {
    (
        0usize..10,
        proptest::sample::select(NAMES),
        proptest::sample::select(NAMES),
        proptest::collection::btree_map(
            proptest::sample::select(&["env", "team"][..]),
            proptest::sample::select(&["prod", "dev", "web", "u", "production"][..]),
            0..3,
        ),
        proptest::sample::select(&["u", "bob", "mallory"][..]),
        proptest::sample::select(&["", "INC-1"][..]),
    )
        .prop_map(|(which, name, other, labels, requester, reason)| Ask {
            which,
            name,
            other,
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            requester,
            reason,
        })
}

/// Decides `ask` for a user holding `roles`; checks `explain` agrees.
fn allowed(roles: Vec<Role>, a: &Ask) -> bool {
    let id = Identity {
        user: "u".into(),
        roles,
        traits: BTreeMap::from([("teams".to_owned(), vec!["web".to_owned()])]),
    };
    let item = json!({"kind": "node", "metadata": {"name": a.name, "labels": a.labels}, "participants": [a.name]});
    let wanted = vec![a.name.to_owned(), a.other.to_owned()];
    let resources = vec!["/node/web-1".to_owned()];
    let facts = RequestFacts {
        user: a.requester,
        roles: &wanted,
        resources: if a.which == 8 { &resources } else { &[] },
        reason: a.reason,
    };
    let resource = KubeResource {
        kind: "pod",
        namespace: if a.which == 2 { "dev" } else { "" },
        name: a.other,
    };
    let kube = Target::Kubernetes { cluster: "c" };
    let (target, action) = match a.which {
        0 => (kube, Action::KubernetesGroup(a.name)),
        1 => (kube, Action::KubernetesUser(a.name)),
        2 | 3 => (
            kube,
            Action::KubernetesVerb {
                verb: if a.which == 2 { "exec" } else { "get" },
                resource,
            },
        ),
        4 => (
            Target::Database {
                name: "d",
                labels: &a.labels,
            },
            Action::DatabaseConnect {
                db_user: a.name,
                db_name: a.other,
            },
        ),
        5 => (
            Target::App {
                name: "a",
                labels: &a.labels,
            },
            Action::AppAccess,
        ),
        6 => (
            Target::Resource {
                kind: if a.other == "web" { "session" } else { "node" },
                item: &item,
            },
            Action::Verb("read"),
        ),
        7 | 8 => (
            Target::AccessRequest(RequestFacts { user: "u", ..facts }),
            Action::Request,
        ),
        _ => (Target::AccessRequest(facts), Action::Review),
    };
    let ctx = AccessContext::default();
    let e = explain(&id, target, action, &ctx, now());
    assert_agrees(&e, &id, target, action, &ctx);
    authorize(&id, target, action, &ctx, now()).is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn adding_a_deny_side_never_grants(rs in roles(), extra in conditions(), a in ask()) {
        let before = allowed(rs.clone(), &a);
        let mut with_deny = rs;
        with_deny.push(Resource::new(Kind::Role, "extra-deny", RoleSpec { deny: extra, ..RoleSpec::default() }));
        prop_assert!(!allowed(with_deny, &a) || before, "a deny side granted access");
    }

    #[test]
    fn role_order_does_not_matter(rs in roles(), a in ask()) {
        let forward = allowed(rs.clone(), &a);
        let mut reversed = rs;
        reversed.reverse();
        prop_assert_eq!(forward, allowed(reversed, &a));
    }
}
