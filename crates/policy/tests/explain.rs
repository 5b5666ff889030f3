#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! `explain`: the trace names each check, and its decision is always the one
//! `authorize` makes (a table of hand-picked cases plus thousands of
//! generated ones).

use std::collections::BTreeMap;

use keygate_policy::{
    AccessContext, Action, Check, Explanation, Grant, Identity, LabelCheck, Step, Target, explain,
};
use keygate_types::{AnyResource, Labels, Lock, Role, load_documents};

mod support;
use support::{Gen, assert_agrees, now};

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
---
kind: role
version: v1
metadata: {name: glob}
spec:
  allow:
    logins: ['*', deploy]
    node_labels: {host: 'web-*', region: '^eu-(west|north)-[0-9]$'}
---
kind: role
version: v1
metadata: {name: deny-all-logins}
spec:
  deny:
    logins: ['*']
---
kind: role
version: v1
metadata: {name: wild-key}
spec:
  allow:
    logins: [guest]
    node_labels: {'*': [nope]}
---
kind: role
version: v1
metadata: {name: empty}
spec: {}
---
kind: role
version: v1
metadata: {name: expr-team}
spec:
  allow:
    logins: [deploy, '{{internal.logins}}']
    node_labels_expression: 'labels["env"] == "prod" && contains(user.traits["teams"], labels["team"])'
---
kind: role
version: v1
metadata: {name: expr-both}
spec:
  allow:
    logins: [ubuntu, readonly]
    node_labels: {env: [dev, staging, prod]}
    node_labels_expression: '!(labels["workload"] == "database") || user.name == "carol"'
---
kind: role
version: v1
metadata: {name: expr-deny}
spec:
  deny:
    node_labels_expression: 'startsWith(labels["host"], "web-") && user.name == "bob"'
"#;

const LOCKS: &str = r#"
kind: lock
version: v1
metadata: {name: lock-alice}
spec: {target: {user: alice}, message: offboarding}
---
kind: lock
version: v1
metadata: {name: lock-root}
spec: {target: {login: root}}
---
kind: lock
version: v1
metadata: {name: lock-web}
spec: {target: {node: web-1}}
---
kind: lock
version: v1
metadata: {name: lock-ops, expires: '2020-01-01T00:00:00Z'}
spec: {target: {role: ops}}
---
kind: lock
version: v1
metadata: {name: lock-dev}
spec: {target: {role: dev}, message: dev frozen}
---
kind: lock
version: v1
metadata: {name: lock-serial}
spec: {target: {serial: '42'}}
---
kind: lock
version: v1
metadata: {name: lock-device}
spec: {target: {mfa_device: yubi}}
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

fn locks() -> Vec<Lock> {
    load_documents("locks.yaml", LOCKS)
        .unwrap()
        .into_iter()
        .map(|d| match d.resource {
            AnyResource::Lock(l) => l,
            _ => panic!(),
        })
        .collect()
}

fn id(user: &str, role_names: &[&str]) -> Identity {
    let all = roles();
    Identity {
        user: user.into(),
        roles: role_names.iter().map(|n| all[*n].clone()).collect(),
        traits: BTreeMap::from([
            ("logins".into(), vec![user.to_owned()]),
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

fn node<'a>(name: &'a str, l: &'a Labels) -> Target<'a> {
    Target::Node {
        name,
        id: "id-of-node",
        labels: l,
    }
}

/// Explains a login and checks it against `authorize` on the way.
fn explain_login(
    id: &Identity,
    name: &str,
    l: &Labels,
    login: &str,
    locks: &[Lock],
) -> Explanation {
    let ctx = AccessContext {
        locks,
        ..AccessContext::default()
    };
    let e = explain(id, node(name, l), Action::Login(login), &ctx, now());
    assert_agrees(&e, id, node(name, l), Action::Login(login), &ctx);
    e
}

fn allow_step<'a>(e: &'a Explanation, role: &str) -> &'a keygate_policy::RoleStep {
    e.steps
        .iter()
        .find_map(|s| match s {
            Step::Allow(r) if r.role == role => Some(r),
            _ => None,
        })
        .unwrap()
}

#[test]
fn allowed_names_role_rule_and_expanded_logins() {
    let l = labels(&[("env", "dev")]);
    let e = explain_login(&id("alice", &["no-root", "dev"]), "web-1", &l, "alice", &[]);
    assert_eq!(
        e.decision,
        Ok(Grant {
            role: "dev".into(),
            rule: "allow.logins+allow.node_labels".into()
        })
    );
    // Deny of both roles, then allow of both roles, in role order.
    let kinds: Vec<String> = e
        .steps
        .iter()
        .map(|s| match s {
            Step::Lock(l) => format!("lock {}", l.lock),
            Step::Deny(r) => format!("deny {}", r.role),
            Step::Allow(r) => format!("allow {}", r.role),
        })
        .collect();
    assert_eq!(
        kinds,
        ["deny no-root", "deny dev", "allow no-root", "allow dev"]
    );
    assert_eq!(e.decided_by, Some(3));
    let dev = allow_step(&e, "dev");
    assert_eq!(
        dev.check,
        Check::NodeLogin {
            login: "alice".into(),
            logins: vec!["alice".into(), "ubuntu".into()],
            login_matched: true,
            node_labels: LabelCheck::Matched,
            node_labels_expression: None,
        }
    );
    assert_eq!(
        e.steps[3].to_string(),
        "role \"dev\" allow: logins [alice, ubuntu] covers \"alice\"; node_labels match => ALLOW (allow.logins+allow.node_labels)"
    );
    // no-root's deny was checked field by field and did not match.
    let Step::Deny(d) = &e.steps[0] else { panic!() };
    assert_eq!(d.matched, None);
    assert_eq!(
        d.check,
        Check::NodeLogin {
            login: "alice".into(),
            logins: vec!["root".into()],
            login_matched: false,
            node_labels: LabelCheck::KeyFailed {
                key: "workload".into(),
                patterns: vec!["database".into()],
                actual: None
            },
            node_labels_expression: None,
        }
    );
}

#[test]
fn no_allow_names_the_failing_key_and_the_closest_role() {
    let l = labels(&[("env", "prod"), ("team", "search")]);
    let e = explain_login(
        &id("alice", &["dev", "prod-ro"]),
        "db-7",
        &l,
        "readonly",
        &[],
    );
    let d = e.decision.clone().unwrap_err();
    assert_eq!(d.rule, "no allow rule matched");
    assert_eq!(d.role, None);
    assert_eq!(e.decided_by, None);
    // dev: login not there and env fails; prod-ro: login fine, team fails.
    assert_eq!(
        allow_step(&e, "dev").check,
        Check::NodeLogin {
            login: "readonly".into(),
            logins: vec!["alice".into(), "ubuntu".into()],
            login_matched: false,
            node_labels: LabelCheck::KeyFailed {
                key: "env".into(),
                patterns: vec!["dev".into(), "staging".into()],
                actual: Some("prod".into())
            },
            node_labels_expression: None,
        }
    );
    let prod = allow_step(&e, "prod-ro");
    assert_eq!(
        prod.check,
        Check::NodeLogin {
            login: "readonly".into(),
            logins: vec!["readonly".into()],
            login_matched: true,
            // The trait template was expanded before comparing.
            node_labels: LabelCheck::KeyFailed {
                key: "team".into(),
                patterns: vec!["payments".into()],
                actual: Some("search".into())
            },
            node_labels_expression: None,
        }
    );
    assert_eq!(
        Step::Allow(prod.clone()).to_string(),
        "role \"prod-ro\" allow: logins [readonly] covers \"readonly\"; node_labels key \"team\" wants [payments], node has \"search\" => no match"
    );

    // When a role's labels fit but not the login, the denial says which
    // logins it would have allowed there.
    let l = labels(&[("env", "dev")]);
    let e = explain_login(&id("alice", &["dev"]), "web-1", &l, "root", &[]);
    let d = e.decision.unwrap_err();
    assert!(
        d.reason
            .contains("closest: role \"dev\" allows logins [\"alice\", \"ubuntu\"]"),
        "{}",
        d.reason
    );
}

#[test]
fn deny_wins_and_names_the_field() {
    let l = labels(&[("env", "dev")]);
    let e = explain_login(&id("alice", &["ops", "no-root"]), "web-1", &l, "root", &[]);
    let d = e.decision.clone().unwrap_err();
    assert_eq!(d.role.as_deref(), Some("no-root"));
    assert_eq!(d.rule, "deny.logins");
    assert_eq!(e.decided_by, Some(1));
    // The allow that would have matched is still shown.
    assert!(allow_step(&e, "ops").matched.is_some());

    let l = labels(&[("env", "dev"), ("workload", "database")]);
    let e = explain_login(&id("alice", &["ops", "no-root"]), "pg-1", &l, "alice", &[]);
    let d = e.decision.unwrap_err();
    assert_eq!(d.rule, "deny.node_labels");
    assert_eq!(
        e.steps[1].to_string(),
        "role \"no-root\" deny: logins [root] lacks \"alice\"; node_labels match => DENY (deny.node_labels)"
    );

    // `deny.logins: ['*']` covers every login.
    let e = explain_login(
        &id("alice", &["ops", "deny-all-logins"]),
        "web-1",
        &labels(&[]),
        "alice",
        &[],
    );
    assert_eq!(e.decision.unwrap_err().rule, "deny.logins");
}

#[test]
fn every_matching_lock_is_listed_and_the_first_decides() {
    let l = labels(&[("env", "dev")]);
    let all = locks();
    let e = explain_login(&id("alice", &["dev", "ops"]), "web-1", &l, "root", &all);
    let names: Vec<&str> = e
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Lock(l) => Some(l.lock.as_str()),
            _ => None,
        })
        .collect();
    // lock-ops expired; serial and device locks need a serial / device.
    assert_eq!(names, ["lock-alice", "lock-root", "lock-web", "lock-dev"]);
    assert_eq!(e.decided_by, Some(0));
    let d = e.decision.clone().unwrap_err();
    assert_eq!(d.rule, "lock");
    assert_eq!(d.reason, "locked by lock-alice: offboarding");
    assert_eq!(
        e.steps[0].to_string(),
        "lock \"lock-alice\" (user=alice) matches: offboarding"
    );

    // With a serial and device the remaining locks match too.
    let ctx = AccessContext {
        locks: &all,
        serial: Some(42),
        mfa_device: Some("yubi"),
        session_id: None,
    };
    let bob = id("bob", &["ops"]);
    let e = explain(&bob, node("db-1", &l), Action::Login("bob"), &ctx, now());
    assert_agrees(&e, &bob, node("db-1", &l), Action::Login("bob"), &ctx);
    let names: Vec<&str> = e
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Lock(l) => Some(l.lock.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["lock-serial", "lock-device"]);
}

#[test]
fn globs_regexes_wildcard_keys_and_empty_selectors() {
    let l = labels(&[("host", "web-3"), ("region", "eu-west-1")]);
    let e = explain_login(&id("carol", &["glob"]), "web-3", &l, "deploy", &[]);
    assert!(e.decision.is_ok());
    let l = labels(&[("host", "web-3"), ("region", "us-east-1")]);
    let e = explain_login(
        &id("carol", &["glob", "wild-key", "empty"]),
        "web-3",
        &l,
        "deploy",
        &[],
    );
    assert!(e.decision.is_err());
    assert!(matches!(
        &allow_step(&e, "glob").check,
        Check::NodeLogin { node_labels: LabelCheck::KeyFailed { key, .. }, .. } if key == "region"
    ));
    let wild = allow_step(&e, "wild-key");
    assert_eq!(
        Step::Allow(wild.clone()).to_string(),
        "role \"wild-key\" allow: logins [guest] lacks \"deploy\"; node_labels key \"*\" wants [nope] (only \"*\" matches every node) => no match"
    );
    assert!(matches!(
        &allow_step(&e, "empty").check,
        Check::NodeLogin {
            node_labels: LabelCheck::Empty,
            ..
        }
    ));
    // A side with nothing set says so instead of listing emptiness.
    assert_eq!(
        Step::Allow(allow_step(&e, "empty").clone()).to_string(),
        "role \"empty\" allow: no logins or node_labels set => no match"
    );
}

#[test]
fn admin_verbs_and_certificates_are_explained_too() {
    let alice = id("alice", &["ops", "no-role-delete"]);
    let ctx = AccessContext::default();
    for (kind, verb, expect) in [
        ("role", "read", Ok("ops")),
        ("role", "delete", Err("deny.rules")),
        ("token", "list", Err("no allow rule matched")),
    ] {
        let e = explain(&alice, Target::Kind(kind), Action::Verb(verb), &ctx, now());
        assert_agrees(&e, &alice, Target::Kind(kind), Action::Verb(verb), &ctx);
        match expect {
            Ok(role) => assert_eq!(e.decision.as_ref().unwrap().role, role),
            Err(rule) => assert_eq!(e.decision.as_ref().unwrap_err().rule, rule),
        }
    }
    let e = explain(&alice, Target::Certificate, Action::Issue, &ctx, now());
    assert_agrees(&e, &alice, Target::Certificate, Action::Issue, &ctx);
    assert_eq!(e.decision.unwrap().rule, "role");
    let nobody = id("nobody", &[]);
    let e = explain(&nobody, Target::Certificate, Action::Issue, &ctx, now());
    assert!(e.steps.is_empty());
    assert!(e.decision.is_err());
    // Mismatched pairs are refused by both, with nothing matching.
    let e = explain(
        &alice,
        Target::Kind("role"),
        Action::Login("root"),
        &ctx,
        now(),
    );
    assert_agrees(
        &e,
        &alice,
        Target::Kind("role"),
        Action::Login("root"),
        &ctx,
    );
}

#[test]
fn explain_always_agrees_with_authorize() {
    let all_roles: Vec<Role> = roles().into_values().collect();
    let all_locks = locks();
    let users = ["alice", "bob", "carol"];
    let logins = [
        "alice", "bob", "root", "ubuntu", "readonly", "deploy", "guest", "*", "nope",
    ];
    let keys = ["env", "team", "workload", "host", "region"];
    let values = [
        "dev",
        "staging",
        "prod",
        "payments",
        "search",
        "database",
        "web-1",
        "web-22",
        "eu-west-1",
        "eu-south-1",
        "nope",
    ];
    let node_names = ["web-1", "db-1", "id-of-node"];
    let kinds = ["user", "role", "token", "node"];
    let verbs = ["list", "read", "delete", "create"];
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let (mut allowed, mut denied_by_role, mut locked, mut no_match) = (0, 0, 0, 0);
    // (allowed, denied) by a label expression.
    let mut by_expression = (0, 0);
    for _ in 0..20_000 {
        let user = *g.pick(&users);
        let mut traits = BTreeMap::from([
            (
                "logins".into(),
                vec![user.to_owned(), (*g.pick(&logins)).to_owned()],
            ),
            ("teams".into(), vec![(*g.pick(&values)).to_owned()]),
        ]);
        if g.below(4) == 0 {
            traits.clear();
        }
        let id = Identity {
            user: user.into(),
            roles: g.subset(&all_roles, 4),
            traits,
        };
        let node_labels: Labels = (0..g.below(4))
            .map(|_| ((*g.pick(&keys)).to_owned(), (*g.pick(&values)).to_owned()))
            .collect();
        let lock_set = g.subset(&all_locks, 2);
        let ctx = AccessContext {
            locks: &lock_set,
            serial: (g.below(3) == 0).then_some(42),
            mfa_device: (g.below(3) == 0).then_some("yubi"),
            session_id: None,
        };
        let name = *g.pick(&node_names);
        let login = *g.pick(&logins);
        let (kind, verb) = (*g.pick(&kinds), *g.pick(&verbs));
        let cases = [
            (node(name, &node_labels), Action::Login(login)),
            (Target::Kind(kind), Action::Verb(verb)),
            (Target::Certificate, Action::Issue),
        ];
        for (target, action) in cases {
            let e = explain(&id, target, action, &ctx, now());
            assert_agrees(&e, &id, target, action, &ctx);
            match &e.decision {
                Ok(g) if g.rule.contains("node_labels_expression") => by_expression.0 += 1,
                Err(d) if d.rule == "deny.node_labels_expression" => by_expression.1 += 1,
                _ => {}
            }
            match &e.decision {
                Ok(_) => allowed += 1,
                Err(d) if d.rule == "lock" => locked += 1,
                Err(d) if d.role.is_some() => denied_by_role += 1,
                Err(_) => no_match += 1,
            }
        }
    }
    // The generator reaches every kind of outcome, often.
    for (what, n) in [
        ("allowed", allowed),
        ("denied by a role", denied_by_role),
        ("locked", locked),
        ("no match", no_match),
    ] {
        assert!(n > 1000, "only {n} cases {what}");
    }
    assert!(
        by_expression.0 > 20 && by_expression.1 > 20,
        "label expressions decided too few cases: {by_expression:?}"
    );
}
