#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Properties of `authorize()` over random roles, users and nodes: deny
//! only ever removes access, allow rules only ever add it, evaluation is
//! deterministic and independent of role order.

use std::collections::BTreeMap;

use keygate_policy::{AccessContext, Action, Identity, Target, allowed_logins, authorize};
use keygate_types::{Kind, LabelValues, Labels, Resource, Role, RoleConditions, RoleSpec};
use proptest::prelude::*;
use time::OffsetDateTime;

const LOGINS: &[&str] = &[
    "root",
    "ubuntu",
    "alice",
    "deploy",
    "{{internal.logins}}",
    "*",
];
const KEYS: &[&str] = &["env", "team", "*"];
const VALUES: &[&str] = &[
    "prod",
    "dev",
    "web",
    "db",
    "*",
    "pro*",
    "^(dev|web)$",
    "{{internal.teams}}",
];

/// Label expressions, including one that does not parse (roles here are
/// built directly, not validated, as a role stored by another build could
/// be). `user.roles` is left out on purpose: adding a role changes what it
/// sees, so `contains(user.roles, "extra-deny")` on an allow side would let
/// adding a deny-only role grant access — by design of `user.roles`, not a
/// flaw in deny handling.
const EXPRESSIONS: &[Option<&str>] = &[
    None,
    None,
    Some(r#"labels["env"] == "prod""#),
    Some(r#"contains(user.traits["teams"], labels["team"])"#),
    Some(r#"!(labels["team"] == "db")"#),
    Some(r#"startsWith(labels["env"], "pro") || user.name == "v""#),
    Some(r#"labels["env"] == "#),
];

fn conditions() -> impl Strategy<Value = RoleConditions> {
    let logins = proptest::collection::vec(proptest::sample::select(LOGINS), 0..3);
    let expression = proptest::sample::select(EXPRESSIONS);
    let labels = proptest::collection::btree_map(
        proptest::sample::select(KEYS),
        proptest::collection::vec(proptest::sample::select(VALUES), 1..3),
        0..3,
    );
    (logins, labels, expression).prop_map(|(l, m, e)| RoleConditions {
        logins: l.into_iter().map(str::to_owned).collect(),
        node_labels_expression: e.map(str::to_owned),
        node_labels: m
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    LabelValues::Many(v.into_iter().map(str::to_owned).collect()),
                )
            })
            .collect(),
        ..RoleConditions::default()
    })
}

fn role(name: String) -> impl Strategy<Value = Role> {
    (conditions(), conditions()).prop_map(move |(allow, deny)| {
        Resource::new(
            Kind::Role,
            name.clone(),
            RoleSpec {
                allow,
                deny,
                ..RoleSpec::default()
            },
        )
    })
}

fn roles() -> impl Strategy<Value = Vec<Role>> {
    (0usize..4).prop_flat_map(|n| (0..n).map(|i| role(format!("r{i}"))).collect::<Vec<_>>())
}

fn node_labels() -> impl Strategy<Value = Labels> {
    proptest::collection::btree_map(
        proptest::sample::select(&["env", "team"][..]),
        proptest::sample::select(&["prod", "dev", "web", "db", "prod-2"][..]),
        0..3,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    })
}

fn identity(roles: Vec<Role>) -> Identity {
    Identity {
        user: "u".into(),
        roles,
        traits: BTreeMap::from([
            ("logins".to_owned(), vec!["alice".to_owned()]),
            ("teams".to_owned(), vec!["web".to_owned()]),
        ]),
    }
}

fn allowed(id: &Identity, labels: &Labels, login: &str) -> bool {
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    authorize(
        id,
        Target::Node {
            name: "n",
            id: "i",
            labels,
        },
        Action::Login(login),
        &AccessContext::default(),
        now,
    )
    .is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn adding_a_deny_rule_never_grants(rs in roles(), extra in conditions(), labels in node_labels(), login in proptest::sample::select(&["root", "ubuntu", "alice", "deploy"][..])) {
        let before = allowed(&identity(rs.clone()), &labels, login);
        let mut with_deny = rs.clone();
        with_deny.push(Resource::new(Kind::Role, "extra-deny", RoleSpec { deny: extra, ..RoleSpec::default() }));
        let after = allowed(&identity(with_deny), &labels, login);
        prop_assert!(!after || before, "a deny rule granted access");
    }

    #[test]
    fn removing_an_allow_rule_never_grants(rs in roles(), labels in node_labels(), login in proptest::sample::select(&["root", "ubuntu", "alice", "deploy"][..]), which in 0usize..4) {
        let before = allowed(&identity(rs.clone()), &labels, login);
        let mut fewer = rs.clone();
        if let Some(r) = fewer.get_mut(which) {
            r.spec.allow = RoleConditions::default();
        }
        let after = allowed(&identity(fewer), &labels, login);
        prop_assert!(!after || before, "removing an allow rule granted access");
    }

    #[test]
    fn evaluation_is_deterministic_and_order_free(rs in roles(), labels in node_labels(), login in proptest::sample::select(&["root", "ubuntu", "alice", "deploy"][..])) {
        let a = allowed(&identity(rs.clone()), &labels, login);
        prop_assert_eq!(a, allowed(&identity(rs.clone()), &labels, login));
        let mut reversed = rs.clone();
        reversed.reverse();
        prop_assert_eq!(a, allowed(&identity(reversed.clone()), &labels, login));
        let mut logins = allowed_logins(&identity(rs));
        let mut logins_rev = allowed_logins(&identity(reversed));
        logins.sort();
        logins_rev.sort();
        prop_assert_eq!(logins, logins_rev);
    }

    #[test]
    fn certificate_logins_never_include_denied_or_wildcards(rs in roles()) {
        let id = identity(rs);
        for l in allowed_logins(&id) {
            prop_assert!(l != "*" && !l.contains("{{"));
            prop_assert!(!id.roles.iter().any(|r| r.spec.deny.logins.iter().any(|d| d == &l || d == "*")), "{l} is denied");
        }
    }
}
