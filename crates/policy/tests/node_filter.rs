#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! `NodeFilter` agrees with `authorize` login by login: over random roles
//! (allow and deny sides with exact values, globs, regexes, templates,
//! wildcards and expressions), random nodes and random locks.

use std::collections::BTreeMap;

use keygate_policy::{
    AccessContext, Action, Identity, NodeFilter, Target, allowed_logins, authorize,
};
use keygate_types::{
    Kind, LabelValues, Labels, Lock, LockSpec, LockTarget, Resource, Role, RoleConditions, RoleSpec,
};
use proptest::prelude::*;
use time::OffsetDateTime;

const LOGINS: &[&str] = &[
    "root",
    "ubuntu",
    "alice",
    "deploy",
    "{{internal.logins}}",
    "{{email.local(external.email)}}",
    "*",
    "not a login",
];
const KEYS: &[&str] = &["env", "team", "region", "*"];
const VALUES: &[&str] = &[
    "prod",
    "dev",
    "web",
    "db",
    "*",
    "pro*",
    "us-*",
    "*-1",
    "^(dev|web)$",
    "^us-.*$",
    "^(unclosed$",
    "{{internal.teams}}",
    "{{internal.missing}}",
    "{{bogus",
];
const EXPRESSIONS: &[Option<&str>] = &[
    None,
    None,
    None,
    Some(r#"labels["env"] == "prod""#),
    Some(r#"contains(user.traits["teams"], labels["team"])"#),
    Some(r#"!(labels["team"] == "db")"#),
    Some(r#"startsWith(labels["region"], "us") || user.name == "v""#),
    Some(r#"contains(user.roles, "r1")"#),
    Some(r#"labels["env"] == "#),
];

fn conditions() -> impl Strategy<Value = RoleConditions> {
    let logins = proptest::collection::vec(proptest::sample::select(LOGINS), 0..4);
    let expression = proptest::sample::select(EXPRESSIONS);
    let one = proptest::sample::select(VALUES).prop_map(|v| LabelValues::One(v.to_owned()));
    let many = proptest::collection::vec(proptest::sample::select(VALUES), 0..3)
        .prop_map(|v| LabelValues::Many(v.into_iter().map(str::to_owned).collect()));
    let labels = proptest::collection::btree_map(
        proptest::sample::select(KEYS).prop_map(str::to_owned),
        prop_oneof![one, many],
        0..3,
    );
    (logins, labels, expression).prop_map(|(l, m, e)| RoleConditions {
        logins: l.into_iter().map(str::to_owned).collect(),
        node_labels_expression: e.map(str::to_owned),
        node_labels: m,
        ..RoleConditions::default()
    })
}

/// A deny side: usually empty or narrow, so that something stays allowed.
fn deny_conditions() -> impl Strategy<Value = RoleConditions> {
    prop_oneof![
        3 => Just(RoleConditions::default()),
        2 => conditions(),
    ]
}

fn roles() -> impl Strategy<Value = Vec<Role>> {
    proptest::collection::vec((conditions(), deny_conditions()), 0..6).prop_map(|sides| {
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

fn node() -> impl Strategy<Value = (String, String, Labels)> {
    let labels = proptest::collection::btree_map(
        proptest::sample::select(&["env", "team", "region", "os"][..]),
        proptest::sample::select(
            &[
                "prod",
                "dev",
                "web",
                "db",
                "prod-1",
                "us-east-1",
                "eu-west-1",
            ][..],
        ),
        0..4,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Labels>()
    });
    (0u8..4, labels).prop_map(|(n, l)| (format!("node-{n}"), format!("id-{n}"), l))
}

fn lock() -> impl Strategy<Value = Lock> {
    let target = prop_oneof![
        proptest::sample::select(&["u", "v"][..]).prop_map(|s| LockTarget::User(s.into())),
        proptest::sample::select(&["r0", "r3", "x"][..]).prop_map(|s| LockTarget::Role(s.into())),
        proptest::sample::select(&["root", "alice", "deploy"][..])
            .prop_map(|s| LockTarget::Login(s.into())),
        proptest::sample::select(&["node-1", "id-2", "node-9"][..])
            .prop_map(|s| LockTarget::Node(s.into())),
        proptest::sample::select(&["mfa-1", "mfa-2"][..])
            .prop_map(|s| LockTarget::MfaDevice(s.into())),
        proptest::sample::select(&["7", "8"][..]).prop_map(|s| LockTarget::Serial(s.into())),
        proptest::sample::select(&["s1", "s2"][..]).prop_map(|s| LockTarget::Session(s.into())),
        Just(LockTarget::AccessRequest("req".into())),
    ];
    (target, any::<bool>()).prop_map(|(target, expired)| {
        let mut l = Resource::new(
            Kind::Lock,
            "lock",
            LockSpec {
                target,
                message: None,
            },
        );
        if expired {
            l.metadata.expires = Some(now() - time::Duration::minutes(1));
        }
        l
    })
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn identity(roles: Vec<Role>) -> Identity {
    Identity {
        user: "u".into(),
        roles,
        traits: BTreeMap::from([
            (
                "logins".to_owned(),
                vec!["alice".to_owned(), "deploy".to_owned()],
            ),
            ("teams".to_owned(), vec!["web".to_owned(), "db".to_owned()]),
            ("email".to_owned(), vec!["ubuntu@example.com".to_owned()]),
        ]),
    }
}

/// What the callers did before `NodeFilter`: `authorize` per login.
fn by_authorize(
    id: &Identity,
    ctx: &AccessContext<'_>,
    (name, node_id, labels): &(String, String, Labels),
) -> Vec<(String, String, String)> {
    allowed_logins(id)
        .into_iter()
        .filter_map(|l| {
            let target = Target::Node {
                name,
                id: node_id,
                labels,
            };
            authorize(id, target, Action::Login(&l), ctx, now())
                .ok()
                .map(|p| (l, p.role().to_owned(), p.rule().to_owned()))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn agrees_with_authorize(
        rs in roles(),
        nodes in proptest::collection::vec(node(), 1..6),
        locks in proptest::collection::vec(lock(), 0..3),
        mfa in proptest::option::of(proptest::sample::select(&["mfa-1", "mfa-3"][..])),
        serial in proptest::option::of(7u64..9),
        session in proptest::option::of(proptest::sample::select(&["s1", "s3"][..])),
    ) {
        let id = identity(rs);
        let ctx = AccessContext { locks: &locks, serial, mfa_device: mfa, session_id: session };
        let filter = NodeFilter::new(&id, &ctx, now());
        for n in &nodes {
            let want = by_authorize(&id, &ctx, n);
            let got: Vec<(String, String, String)> = filter
                .grants(&n.0, &n.1, &n.2)
                .into_iter()
                .map(|(l, p)| (l, p.role().to_owned(), p.rule().to_owned()))
                .collect();
            prop_assert_eq!(&got, &want, "node {:?}", n);
            let logins: Vec<String> = want.into_iter().map(|g| g.0).collect();
            prop_assert_eq!(filter.logins(&n.0, &n.1, &n.2), logins);
        }
    }
}

/// The generator does reach both outcomes (a filter that always said no
/// would otherwise agree with a strict `authorize` vacuously).
#[test]
fn grants_and_refuses_on_a_fixed_fleet() {
    let role = |name: &str, allow: RoleConditions, deny: RoleConditions| {
        Resource::new(
            Kind::Role,
            name,
            RoleSpec {
                allow,
                deny,
                ..RoleSpec::default()
            },
        )
    };
    let sel = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), LabelValues::One(v.to_owned()))]);
    let id = identity(vec![
        role(
            "dev",
            RoleConditions {
                logins: vec!["{{internal.logins}}".into()],
                node_labels: sel("team", "{{internal.teams}}"),
                ..RoleConditions::default()
            },
            RoleConditions {
                node_labels: sel("env", "^prod$"),
                ..RoleConditions::default()
            },
        ),
        role(
            "ops",
            RoleConditions {
                logins: vec!["root".into()],
                node_labels: sel("region", "us-*"),
                ..RoleConditions::default()
            },
            RoleConditions::default(),
        ),
    ]);
    let locks = vec![Resource::new(
        Kind::Lock,
        "l",
        LockSpec {
            target: LockTarget::Login("deploy".into()),
            message: None,
        },
    )];
    let ctx = AccessContext {
        locks: &locks,
        ..AccessContext::default()
    };
    let filter = NodeFilter::new(&id, &ctx, now());
    let labels = |pairs: &[(&str, &str)]| -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let web_us = labels(&[("team", "web"), ("region", "us-east-1"), ("env", "dev")]);
    assert_eq!(filter.logins("a", "1", &web_us), vec!["alice", "root"]);
    let g = filter.grants("a", "1", &web_us);
    assert_eq!(g[0].1.role(), "dev");
    assert_eq!(g[1].1.role(), "ops");
    assert_eq!(g[1].1.rule(), "allow.logins+allow.node_labels");
    let prod = labels(&[("team", "web"), ("region", "us-east-1"), ("env", "prod")]);
    assert!(filter.logins("b", "2", &prod).is_empty());
    let eu = labels(&[("team", "search"), ("region", "eu-west-1")]);
    assert!(filter.logins("c", "3", &eu).is_empty());
    for n in [("a", "1", &web_us), ("b", "2", &prod), ("c", "3", &eu)] {
        let want = by_authorize(&id, &ctx, &(n.0.into(), n.1.into(), n.2.clone()));
        let got: Vec<String> = filter.logins(n.0, n.1, n.2);
        assert_eq!(got, want.into_iter().map(|g| g.0).collect::<Vec<_>>());
    }
}

/// More than 64 selectors (the memo's bitsets span several words), over
/// many nodes sharing label values (the memo is reused).
#[test]
fn many_roles_cross_the_bitset_word() {
    let envs = ["prod", "dev", "web", "db"];
    let regions = ["us-east-1", "eu-west-1", "us-west-2"];
    let roles: Vec<Role> = (0..70)
        .map(|i| {
            let sel =
                |k: &str, v: &str| BTreeMap::from([(k.to_owned(), LabelValues::One(v.to_owned()))]);
            let allow_sel = match i % 3 {
                0 => sel("env", envs[i % envs.len()]),
                1 => sel("region", if i % 2 == 0 { "us-*" } else { "^eu-.*$" }),
                _ => sel("team", "{{internal.teams}}"),
            };
            let deny_sel = if i % 11 == 0 {
                sel("team", "search")
            } else {
                BTreeMap::new()
            };
            Resource::new(
                Kind::Role,
                format!("r{i}"),
                RoleSpec {
                    allow: RoleConditions {
                        // The last roles alone grant `app`: their selectors
                        // sit past the first bitset word.
                        logins: if i >= 60 {
                            vec!["app".into()]
                        } else {
                            vec![LOGINS[i % 4].to_owned(), "{{internal.logins}}".into()]
                        },
                        node_labels: allow_sel,
                        ..RoleConditions::default()
                    },
                    deny: RoleConditions {
                        node_labels: deny_sel,
                        ..RoleConditions::default()
                    },
                    ..RoleSpec::default()
                },
            )
        })
        .collect();
    let id = identity(roles);
    let ctx = AccessContext::default();
    let filter = NodeFilter::new(&id, &ctx, now());
    let mut granted = 0;
    let mut apps = 0;
    for n in 0..200usize {
        let labels: Labels = [
            ("env", envs[n % envs.len()]),
            ("region", regions[(n / 4) % regions.len()]),
            ("team", ["web", "db", "search"][(n / 12) % 3]),
        ]
        .into_iter()
        .filter(|(k, _)| !(*k == "team" && n % 5 == 0))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let node = (format!("n{n}"), format!("i{n}"), labels);
        let want = by_authorize(&id, &ctx, &node);
        let got: Vec<(String, String, String)> = filter
            .grants(&node.0, &node.1, &node.2)
            .into_iter()
            .map(|(l, p)| (l, p.role().to_owned(), p.rule().to_owned()))
            .collect();
        assert_eq!(got, want, "node {node:?}");
        granted += got.len();
        apps += got.iter().filter(|g| g.0 == "app").count();
    }
    assert!(
        granted > apps && apps > 0,
        "{granted} grants, {apps} of app"
    );
}
