#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Decisions with `node_labels_expression`: on the allow side it narrows
//! (together with `node_labels`) or alone decides which nodes a role
//! reaches; on the deny side it denies wherever it holds; an expression that
//! does not parse never allows and always denies.

use std::collections::BTreeMap;

use keygate_policy::{AccessContext, Action, Check, Identity, Step, Target, authorize, explain};
use keygate_types::{
    AnyResource, Kind, Labels, Resource, Role, RoleConditions, RoleSpec, load_documents,
};
use time::OffsetDateTime;

const ROLES: &str = r#"
kind: role
version: v1
metadata: {name: team-prod}
spec:
  allow:
    logins: [deploy]
    node_labels_expression: 'labels["env"] == "prod" && contains(user.traits["teams"], labels["team"])'
---
kind: role
version: v1
metadata: {name: both}
spec:
  allow:
    logins: [ubuntu]
    node_labels: {env: [dev, prod]}
    node_labels_expression: 'regexp.match(labels["host"], "^web-[0-9]+$")'
---
kind: role
version: v1
metadata: {name: own-node}
spec:
  allow:
    logins: [ubuntu]
    node_labels_expression: 'labels["owner"] == user.name'
---
kind: role
version: v1
metadata: {name: no-db-for-interns}
spec:
  deny:
    node_labels_expression: 'contains(user.roles, "intern") && labels["workload"] == "database"'
---
kind: role
version: v1
metadata: {name: intern}
spec:
  deny:
    node_labels: {env: secret}
---
kind: role
version: v1
metadata: {name: everything}
spec:
  allow:
    logins: [deploy, ubuntu]
    node_labels: {'*': '*'}
"#;

fn roles() -> BTreeMap<String, Role> {
    load_documents("roles.yaml", ROLES)
        .unwrap()
        .into_iter()
        .map(|d| match d.resource {
            AnyResource::Role(r) => (r.metadata.name.clone(), r),
            _ => panic!(),
        })
        .collect()
}

fn id(user: &str, role_names: &[&str]) -> Identity {
    let all = roles();
    Identity {
        user: user.into(),
        roles: role_names.iter().map(|n| all[*n].clone()).collect(),
        traits: BTreeMap::from([("teams".into(), vec!["payments".into(), "search".into()])]),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

/// `Ok(role/rule)` or `Err(rule)`, checked against `explain` on the way.
fn login(id: &Identity, l: &Labels, login: &str) -> Result<String, String> {
    let target = Target::Node {
        name: "n1",
        id: "i1",
        labels: l,
    };
    let ctx = AccessContext::default();
    let got = authorize(id, target, Action::Login(login), &ctx, now());
    let e = explain(id, target, Action::Login(login), &ctx, now());
    match (&got, &e.decision) {
        (Ok(p), Ok(g)) => assert_eq!((p.role(), p.rule()), (g.role.as_str(), g.rule.as_str())),
        (Err(d), Err(x)) => assert_eq!(d, x),
        (a, b) => panic!("authorize {a:?} vs explain {b:?}"),
    }
    got.map(|p| format!("{}/{}", p.role(), p.rule()))
        .map_err(|d| d.rule)
}

/// User, roles, node labels, login, expected outcome.
type Case = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
    Result<String, String>,
);

#[test]
fn allow_table() {
    let ok = |r: &str| Ok::<String, String>(r.to_owned());
    let no = || Err::<String, String>("no allow rule matched".to_owned());
    let table: &[Case] = &[
        // Expression only: it alone decides the nodes.
        (
            "alice",
            &["team-prod"],
            &[("env", "prod"), ("team", "payments")],
            "deploy",
            ok("team-prod/allow.logins+allow.node_labels_expression"),
        ),
        (
            "alice",
            &["team-prod"],
            &[("env", "prod"), ("team", "billing")],
            "deploy",
            no(),
        ),
        (
            "alice",
            &["team-prod"],
            &[("env", "dev"), ("team", "search")],
            "deploy",
            no(),
        ),
        ("alice", &["team-prod"], &[], "deploy", no()),
        // Logins still have to match.
        (
            "alice",
            &["team-prod"],
            &[("env", "prod"), ("team", "search")],
            "root",
            no(),
        ),
        // Both set: both must hold.
        (
            "alice",
            &["both"],
            &[("env", "prod"), ("host", "web-12")],
            "ubuntu",
            ok("both/allow.logins+allow.node_labels+allow.node_labels_expression"),
        ),
        (
            "alice",
            &["both"],
            &[("env", "stage"), ("host", "web-12")],
            "ubuntu",
            no(),
        ),
        (
            "alice",
            &["both"],
            &[("env", "dev"), ("host", "db-1")],
            "ubuntu",
            no(),
        ),
        // The user's own name.
        (
            "alice",
            &["own-node"],
            &[("owner", "alice")],
            "ubuntu",
            ok("own-node/allow.logins+allow.node_labels_expression"),
        ),
        ("bob", &["own-node"], &[("owner", "alice")], "ubuntu", no()),
        // A missing label is "", never an error: "" != "bob".
        ("bob", &["own-node"], &[], "ubuntu", no()),
    ];
    for (user, role_names, node, want_login, want) in table {
        let got = login(&id(user, role_names), &labels(node), want_login);
        assert_eq!(&got, want, "{user} {role_names:?} {node:?} {want_login}");
    }
}

#[test]
fn deny_expression_uses_roles_and_labels() {
    let db = labels(&[("workload", "database"), ("env", "prod")]);
    let web = labels(&[("workload", "web")]);
    // Not an intern: the deny expression does not hold.
    assert!(
        login(
            &id("alice", &["no-db-for-interns", "everything"]),
            &db,
            "deploy"
        )
        .is_ok()
    );
    // An intern: denied on databases, still allowed elsewhere.
    let intern = id("alice", &["no-db-for-interns", "intern", "everything"]);
    assert_eq!(
        login(&intern, &db, "deploy"),
        Err("deny.node_labels_expression".to_owned())
    );
    assert!(login(&intern, &web, "deploy").is_ok());
    let reason = authorize(
        &intern,
        Target::Node {
            name: "db-1",
            id: "i",
            labels: &db,
        },
        Action::Login("deploy"),
        &AccessContext::default(),
        now(),
    )
    .unwrap_err()
    .reason;
    assert!(reason.contains("no-db-for-interns"), "{reason}");
    assert!(reason.contains("holds"), "{reason}");
}

fn raw_role(name: &str, allow: RoleConditions, deny: RoleConditions) -> Role {
    Resource::new(
        Kind::Role,
        name,
        RoleSpec {
            allow,
            deny,
            ..RoleSpec::default()
        },
    )
}

#[test]
fn invalid_expressions_never_allow_and_always_deny() {
    // Roles built directly, as if stored by another build: not validated.
    let bad = r#"labels["env"] = "prod""#;
    let allow_bad = raw_role(
        "allow-bad",
        RoleConditions {
            logins: vec!["deploy".into()],
            node_labels_expression: Some(bad.into()),
            ..RoleConditions::default()
        },
        RoleConditions::default(),
    );
    let deny_bad = raw_role(
        "deny-bad",
        RoleConditions::default(),
        RoleConditions {
            node_labels_expression: Some(bad.into()),
            ..RoleConditions::default()
        },
    );
    let all = roles();
    let everything = all["everything"].clone();
    let node = labels(&[("env", "prod")]);
    let who = |roles: Vec<Role>| Identity {
        user: "alice".into(),
        roles,
        traits: BTreeMap::new(),
    };
    assert_eq!(
        login(&who(vec![allow_bad.clone()]), &node, "deploy"),
        Err("no allow rule matched".to_owned())
    );
    assert!(login(&who(vec![everything.clone()]), &node, "deploy").is_ok());
    assert_eq!(
        login(&who(vec![deny_bad.clone(), everything]), &node, "deploy"),
        Err("deny.node_labels_expression".to_owned())
    );
    // The explanation says the expression does not parse and how it counted.
    let id = who(vec![deny_bad, allow_bad]);
    let target = Target::Node {
        name: "n1",
        id: "i1",
        labels: &node,
    };
    let e = explain(
        &id,
        target,
        Action::Login("deploy"),
        &AccessContext::default(),
        now(),
    );
    let lines: Vec<String> = e.steps.iter().map(ToString::to_string).collect();
    assert!(lines[0].contains("does not parse"), "{lines:?}");
    assert!(lines[0].contains("counted as true"), "{lines:?}");
    let Step::Allow(a) = &e.steps[3] else {
        panic!("{lines:?}")
    };
    let Check::NodeLogin {
        node_labels_expression: Some(x),
        ..
    } = &a.check
    else {
        panic!("{a:?}")
    };
    assert!(!x.holds);
    assert!(
        x.error
            .as_deref()
            .unwrap()
            .contains("use `==` at column 15"),
        "{x:?}"
    );
}

#[test]
fn explanation_shows_the_expression_and_its_value() {
    let id = id("alice", &["both"]);
    let node = labels(&[("env", "prod"), ("host", "db-1")]);
    let target = Target::Node {
        name: "n1",
        id: "i1",
        labels: &node,
    };
    let e = explain(
        &id,
        target,
        Action::Login("ubuntu"),
        &AccessContext::default(),
        now(),
    );
    assert_eq!(
        e.steps[1].to_string(),
        "role \"both\" allow: logins [ubuntu] covers \"ubuntu\"; node_labels match; \
         node_labels_expression \"regexp.match(labels[\\\"host\\\"], \\\"^web-[0-9]+$\\\")\" is false => no match"
    );
}

#[test]
fn invalid_expressions_are_rejected_when_loading_roles() {
    let yaml = r#"
kind: role
version: v1
metadata: {name: bad}
spec:
  allow:
    node_labels_expression: 'contains(labels["team"], "x")'
"#;
    let e = load_documents("bad.yaml", yaml).unwrap_err().to_string();
    assert!(e.contains("spec.allow.node_labels_expression"), "{e}");
    assert!(e.contains("must be a list"), "{e}");
    assert!(e.contains("at column 10"), "{e}");
}
