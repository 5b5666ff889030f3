#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Table-driven decisions over roles written as YAML, as users write them.

use std::collections::BTreeMap;

use keygate_policy::{AccessContext, Action, Identity, Target, allowed_logins, authorize};
use keygate_types::{AnyResource, Labels, Lock, Role, load_documents};
use time::OffsetDateTime;

const ROLES: &str = r#"
kind: role
version: v1
metadata: {name: dev}
spec:
  allow:
    logins: ['{{internal.logins}}', ubuntu]
    node_labels: {env: [dev, staging]}
---
kind: role
version: v1
metadata: {name: prod-ro}
spec:
  options: {max_session_ttl: 1h}
  allow:
    logins: [readonly]
    node_labels: {env: prod, team: '{{internal.teams}}'}
---
kind: role
version: v1
metadata: {name: no-root}
spec:
  deny:
    logins: [root]
    node_labels: {workload: database}
---
kind: role
version: v1
metadata: {name: ops}
spec:
  allow:
    logins: [root, '{{internal.logins}}']
    node_labels: {'*': '*'}
    rules: [{resources: [user, role], verbs: [list, read]}]
---
kind: role
version: v1
metadata: {name: no-role-delete}
spec:
  deny:
    rules: [{resources: [role], verbs: [delete]}]
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

fn id(role_names: &[&str]) -> Identity {
    let all = roles();
    Identity {
        user: "alice".into(),
        roles: role_names.iter().map(|n| all[*n].clone()).collect(),
        traits: BTreeMap::from([
            ("logins".into(), vec!["alice".into()]),
            ("teams".into(), vec!["payments".into()]),
        ]),
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

fn login(roles: &[&str], node_labels: &[(&str, &str)], login: &str) -> Result<String, String> {
    let l = labels(node_labels);
    authorize(
        &id(roles),
        Target::Node {
            name: "web-1",
            id: "n1",
            labels: &l,
        },
        Action::Login(login),
        &AccessContext::default(),
        now(),
    )
    .map(|p| p.role().to_owned())
    .map_err(|d| format!("{}|{}", d.rule, d.reason))
}

#[test]
fn node_login_table() {
    // (roles, labels, login, expected Ok(role) or Err(substring of rule|reason))
    type Case<'a> = (
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
        &'a str,
        Result<&'a str, &'a str>,
    );
    let cases: Vec<Case> = vec![
        (&["dev"], &[("env", "dev")], "alice", Ok("dev")),
        (&["dev"], &[("env", "staging")], "ubuntu", Ok("dev")),
        (
            &["dev"],
            &[("env", "prod")],
            "alice",
            Err("no allow rule matched"),
        ),
        (
            &["dev"],
            &[("env", "dev")],
            "root",
            Err("no allow rule matched"),
        ),
        (&["dev"], &[], "alice", Err("no allow rule matched")),
        (
            &[],
            &[("env", "dev")],
            "alice",
            Err("no allow rule matched"),
        ),
        (
            &["prod-ro"],
            &[("env", "prod"), ("team", "payments")],
            "readonly",
            Ok("prod-ro"),
        ),
        (
            &["prod-ro"],
            &[("env", "prod"), ("team", "search")],
            "readonly",
            Err("no allow rule matched"),
        ),
        (
            &["prod-ro"],
            &[("env", "prod")],
            "readonly",
            Err("no allow rule matched"),
        ),
        (&["ops"], &[("env", "prod")], "root", Ok("ops")),
        (
            &["ops", "no-root"],
            &[("env", "prod")],
            "root",
            Err("deny.logins"),
        ),
        (
            &["no-root", "ops"],
            &[("env", "prod")],
            "root",
            Err("deny.logins"),
        ),
        (&["ops", "no-root"], &[("env", "prod")], "alice", Ok("ops")),
        (
            &["ops", "no-root"],
            &[("workload", "database")],
            "alice",
            Err("deny.node_labels"),
        ),
        (
            &["dev", "prod-ro"],
            &[("env", "prod"), ("team", "payments")],
            "alice",
            Err("closest: role \"prod-ro\""),
        ),
    ];
    for (roles, node, l, want) in cases {
        let got = login(roles, node, l);
        match (&got, want) {
            (Ok(r), Ok(w)) => assert_eq!(r, w, "{roles:?} {node:?} {l}"),
            (Err(e), Err(w)) => assert!(e.contains(w), "{roles:?} {node:?} {l}: {e}"),
            _ => panic!("{roles:?} {node:?} {l}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn admin_verbs() {
    let ctx = AccessContext::default();
    let check = |roles: &[&str], kind: &str, verb: &str| {
        authorize(
            &id(roles),
            Target::Kind(kind),
            Action::Verb(verb),
            &ctx,
            now(),
        )
        .map_err(|d| d.rule)
    };
    assert!(check(&["ops"], "user", "list").is_ok());
    assert!(check(&["ops"], "user", "delete").is_err());
    assert!(check(&["dev"], "user", "list").is_err());
    let builtin: Vec<Role> = keygate_types::builtin_roles();
    let admin = Identity {
        user: "root-admin".into(),
        roles: vec![builtin[0].clone(), roles()["no-role-delete"].clone()],
        traits: BTreeMap::new(),
    };
    assert!(
        authorize(
            &admin,
            Target::Kind("role"),
            Action::Verb("create"),
            &ctx,
            now()
        )
        .is_ok()
    );
    let d = authorize(
        &admin,
        Target::Kind("role"),
        Action::Verb("delete"),
        &ctx,
        now(),
    )
    .unwrap_err();
    assert_eq!(d.rule, "deny.rules");
    assert_eq!(d.role.as_deref(), Some("no-role-delete"));
}

#[test]
fn locks_deny_and_expire() {
    let l = labels(&[("env", "dev")]);
    let lock_yaml = "kind: lock\nversion: v1\nmetadata: {name: lock-1, expires: '2027-06-01T00:00:00Z'}\nspec: {target: {user: alice}, message: offboarded}\n";
    let AnyResource::Lock(lock) = load_documents("l.yaml", lock_yaml)
        .unwrap()
        .remove(0)
        .resource
    else {
        panic!()
    };
    let locks: Vec<Lock> = vec![lock];
    let ctx = AccessContext {
        locks: &locks,
        ..AccessContext::default()
    };
    let target = Target::Node {
        name: "web-1",
        id: "n1",
        labels: &l,
    };
    let d = authorize(&id(&["dev"]), target, Action::Login("alice"), &ctx, now()).unwrap_err();
    assert_eq!(d.rule, "lock");
    assert!(d.reason.contains("offboarded"));
    let after = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    assert!(authorize(&id(&["dev"]), target, Action::Login("alice"), &ctx, after).is_ok());
}

#[test]
fn certificate_logins_exclude_denied_and_wildcards() {
    assert_eq!(allowed_logins(&id(&["dev"])), vec!["alice", "ubuntu"]);
    assert_eq!(allowed_logins(&id(&["ops", "no-root"])), vec!["alice"]);
    assert!(allowed_logins(&id(&[])).is_empty());
}

#[test]
fn deny_all_logins_leaves_the_certificate_without_logins() {
    let yaml =
        "kind: role\nversion: v1\nmetadata: {name: nologin}\nspec:\n  deny:\n    logins: ['*']\n";
    let AnyResource::Role(nologin) = load_documents("r.yaml", yaml).unwrap().remove(0).resource
    else {
        panic!()
    };
    let mut who = id(&["ops"]);
    who.roles.push(nologin);
    assert!(allowed_logins(&who).is_empty());
}
