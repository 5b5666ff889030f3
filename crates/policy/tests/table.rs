#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! One table of decisions across every kind of access — node logins
//! (labels, globs, regexes, multi-value, expressions, traits), certificates,
//! admin verbs with and without `where`, Kubernetes, databases, apps, and
//! filing and reviewing access requests — each checked against `explain`
//! on the way. Roles are in `fixtures/table_roles.yaml`.

use std::collections::BTreeMap;

use keygate_policy::{
    AccessContext, Action, Denial, Identity, KubeResource, Permit, RequestFacts, Target, authorize,
    explain,
};
use keygate_types::{AnyResource, Labels, Role, load_documents};
use serde_json::Value;

mod support;
use support::{assert_agrees, now};

const ROLES: &str = include_str!("fixtures/table_roles.yaml");

fn all_roles() -> BTreeMap<String, Role> {
    load_documents("table_roles.yaml", ROLES)
        .unwrap()
        .into_iter()
        .map(|d| match d.resource {
            AnyResource::Role(r) => (r.metadata.name.clone(), r),
            _ => panic!(),
        })
        .collect()
}

/// Alice, with the traits the roles' templates read.
fn alice(role_names: &[&str]) -> Identity {
    let all = all_roles();
    let t = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Identity {
        user: "alice".into(),
        roles: role_names.iter().map(|n| all[*n].clone()).collect(),
        traits: BTreeMap::from([
            ("logins".into(), t(&["alice"])),
            ("email".into(), t(&["alice@example.com"])),
            ("groups".into(), t(&["oncall-db", "dev-admin", "web"])),
            ("teams".into(), t(&["payments"])),
        ]),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

type Pairs = &'static [(&'static str, &'static str)];
type Names = &'static [&'static str];

/// What is asked.
#[derive(Debug, Clone, Copy)]
enum Ask {
    /// Node labels, login.
    Login(Pairs, &'static str),
    /// A certificate for oneself.
    Cert,
    /// Kind, verb.
    Kind(&'static str, &'static str),
    /// Kind, verb, the resource as JSON.
    Item(&'static str, &'static str, &'static str),
    /// Kubernetes group.
    KGroup(&'static str),
    /// Kubernetes user.
    KUser(&'static str),
    /// Kubernetes verb, kind, namespace, name.
    KVerb(&'static str, &'static str, &'static str, &'static str),
    /// Database labels, db user, db name.
    Db(Pairs, &'static str, &'static str),
    /// App labels.
    App(Pairs),
    /// An app asked with a login (a pair that does not go together).
    AppLogin(Pairs),
    /// File: for user, roles, resources, reason.
    Request(&'static str, Names, Names, &'static str),
    /// Review: request by user, roles, reason.
    Review(&'static str, Names, &'static str),
}

fn run(id: &Identity, target: Target<'_>, action: Action<'_>) -> Result<Permit, Denial> {
    let ctx = AccessContext::default();
    let e = explain(id, target, action, &ctx, now());
    assert_agrees(&e, id, target, action, &ctx);
    authorize(id, target, action, &ctx, now())
}

fn decide(id: &Identity, ask: Ask) -> Result<Permit, Denial> {
    let kube = Target::Kubernetes { cluster: "main" };
    match ask {
        Ask::Login(l, login) => {
            let l = labels(l);
            let target = Target::Node {
                name: "web-1",
                id: "n1",
                labels: &l,
            };
            run(id, target, Action::Login(login))
        }
        Ask::Cert => run(id, Target::Certificate, Action::Issue),
        Ask::Kind(kind, verb) => run(id, Target::Kind(kind), Action::Verb(verb)),
        Ask::Item(kind, verb, json) => {
            let item: Value = serde_json::from_str(json).unwrap();
            run(
                id,
                Target::Resource { kind, item: &item },
                Action::Verb(verb),
            )
        }
        Ask::KGroup(g) => run(id, kube, Action::KubernetesGroup(g)),
        Ask::KUser(u) => run(id, kube, Action::KubernetesUser(u)),
        Ask::KVerb(verb, kind, namespace, name) => {
            let resource = KubeResource {
                kind,
                namespace,
                name,
            };
            run(id, kube, Action::KubernetesVerb { verb, resource })
        }
        Ask::Db(l, db_user, db_name) => {
            let l = labels(l);
            let target = Target::Database {
                name: "orders-db",
                labels: &l,
            };
            run(id, target, Action::DatabaseConnect { db_user, db_name })
        }
        Ask::App(l) | Ask::AppLogin(l) => {
            let l = labels(l);
            let target = Target::App {
                name: "grafana",
                labels: &l,
            };
            let action = match ask {
                Ask::App(_) => Action::AppAccess,
                _ => Action::Login("alice"),
            };
            run(id, target, action)
        }
        Ask::Request(user, roles, resources, reason) => {
            on_request(id, (user, roles, resources, reason), Action::Request)
        }
        Ask::Review(user, roles, reason) => {
            on_request(id, (user, roles, &[], reason), Action::Review)
        }
    }
}

fn on_request(
    id: &Identity,
    (user, roles, resources, reason): (&str, Names, Names, &str),
    action: Action<'_>,
) -> Result<Permit, Denial> {
    let (roles, resources) = (strings(roles), strings(resources));
    let facts = RequestFacts {
        user,
        roles: &roles,
        resources: &resources,
        reason,
    };
    run(id, Target::AccessRequest(facts), action)
}

/// `Ok((role, rule))` — rule `""` is not checked — or
/// `Err((rule, text the reason contains))`.
type Want = Result<(&'static str, &'static str), (&'static str, &'static str)>;

const NO: &str = "no allow rule matched";
const NODE_RULE: &str = "allow.logins+allow.node_labels";
const DB_RULE: &str = "allow.db_labels+allow.db_users+allow.db_names";
const OWNED: &str = r#"{"kind":"node","metadata":{"name":"web-1","labels":{"owner":"alice"}}}"#;
const NOT_OWNED: &str = r#"{"kind":"node","metadata":{"name":"web-2","labels":{"owner":"bob"}}}"#;
const UNLABELLED: &str = r#"{"kind":"node","metadata":{"name":"web-3"}}"#;
const PROD_NODE: &str = r#"{"kind":"node","metadata":{"name":"p-1","labels":{"env":"prod"}}}"#;
const DEV_NODE: &str = r#"{"kind":"node","metadata":{"name":"d-1","labels":{"env":"dev"}}}"#;
const MY_SESSION: &str = r#"{"kind":"session","participants":["alice","bob"]}"#;
const OTHER_SESSION: &str = r#"{"kind":"session","participants":["bob"]}"#;
const BARE_SESSION: &str = r#"{"kind":"session"}"#;

#[rustfmt::skip]
const CASES: &[(&str, Names, Ask, Want)] = &[
    // --- node logins: labels, globs, regexes, multi-value ---
    ("trait login on dev", &["dev"], Ask::Login(&[("env", "dev")], "alice"), Ok(("dev", NODE_RULE))),
    ("literal login, second value", &["dev"], Ask::Login(&[("env", "staging")], "ubuntu"), Ok(("dev", NODE_RULE))),
    ("label value not listed", &["dev"], Ask::Login(&[("env", "prod")], "alice"), Err((NO, "labels"))),
    ("login not listed: closest", &["dev"], Ask::Login(&[("env", "dev")], "root"), Err((NO, "closest: role \"dev\" allows logins [\"alice\", \"ubuntu\"]"))),
    ("node without labels", &["dev"], Ask::Login(&[], "alice"), Err((NO, "on node \"web-1\""))),
    ("no roles", &[], Ask::Login(&[("env", "dev")], "alice"), Err((NO, "no role of \"alice\""))),
    ("glob and regex keys AND", &["globs"], Ask::Login(&[("host", "web-12"), ("region", "eu-west-1")], "deploy"), Ok(("globs", NODE_RULE))),
    ("regex misses", &["globs"], Ask::Login(&[("host", "web-12"), ("region", "eu-south-1")], "deploy"), Err((NO, ""))),
    ("glob misses", &["globs"], Ask::Login(&[("host", "db-1"), ("region", "eu-west-1")], "deploy"), Err((NO, ""))),
    ("multi-value OR with trait", &["multi"], Ask::Login(&[("env", "prod"), ("team", "payments")], "ops"), Ok(("multi", NODE_RULE))),
    ("multi-value second value", &["multi"], Ask::Login(&[("env", "staging"), ("team", "payments")], "ops"), Ok(("multi", NODE_RULE))),
    ("trait value differs", &["multi"], Ask::Login(&[("env", "prod"), ("team", "search")], "ops"), Err((NO, ""))),
    ("a selector key missing", &["multi"], Ask::Login(&[("env", "prod")], "ops"), Err((NO, ""))),
    ("wildcard selector", &["ops-all"], Ask::Login(&[("any", "thing")], "root"), Ok(("ops-all", NODE_RULE))),
    ("deny login wins", &["ops-all", "no-root"], Ask::Login(&[], "root"), Err(("deny.logins", "denied by role \"no-root\""))),
    ("deny wins whatever the order", &["no-root", "ops-all"], Ask::Login(&[], "root"), Err(("deny.logins", "denied by role \"no-root\""))),
    ("deny label wins", &["ops-all", "no-root"], Ask::Login(&[("workload", "database")], "alice"), Err(("deny.node_labels", "denied by role \"no-root\""))),
    ("wildcard is not a login", &["ops-all"], Ask::Login(&[], "*"), Err((NO, ""))),
    // --- traits ---
    ("email.local of external trait", &["email-login"], Ask::Login(&[], "alice"), Ok(("email-login", NODE_RULE))),
    ("regexp.replace rewrites", &["replace-login"], Ask::Login(&[], "dev"), Ok(("replace-login", NODE_RULE))),
    ("regexp.replace drops non-matching", &["replace-login"], Ask::Login(&[], "oncall-db"), Err((NO, "allows logins [\"dev\"]"))),
    ("missing trait expands to nothing", &["missing-trait"], Ask::Login(&[], "alice"), Err((NO, "allows logins []"))),
    // --- label expressions ---
    ("expression holds", &["expr"], Ask::Login(&[("env", "prod"), ("team", "payments")], "deploy"), Ok(("expr", "allow.logins+allow.node_labels_expression"))),
    ("expression fails", &["expr"], Ask::Login(&[("env", "prod"), ("team", "search")], "deploy"), Err((NO, ""))),
    ("deny expression holds", &["expr-deny", "ops-all"], Ask::Login(&[("host", "db-1")], "alice"), Err(("deny.node_labels_expression", "holds"))),
    ("deny expression sees roles", &["expr-deny", "ops-all", "dba"], Ask::Login(&[("host", "db-1")], "alice"), Ok(("ops-all", NODE_RULE))),
    // --- certificates ---
    ("any role gives a certificate", &["dba"], Ask::Cert, Ok(("dba", "role"))),
    ("no role, no certificate", &[], Ask::Cert, Err((NO, "no role that allows this"))),
    // --- admin verbs on kinds ---
    ("wildcard rule", &["everything"], Ask::Kind("node", "delete"), Ok(("everything", "allow.rules"))),
    ("deny rule wins", &["everything", "no-token"], Ask::Kind("token", "list"), Err(("deny.rules", "list on token is denied by role \"no-token\""))),
    ("where rule allows a kind", &["node-owner"], Ask::Kind("node", "read"), Ok(("node-owner", "allow.rules.where"))),
    ("plain rule preferred", &["node-owner"], Ask::Kind("node", "list"), Ok(("node-owner", "allow.rules"))),
    ("verb not covered: closest", &["node-owner"], Ask::Kind("node", "delete"), Err((NO, "closest: role \"node-owner\" allows [\"read\", \"update\", \"list\"] on node"))),
    ("deny where does not deny a kind", &["everything", "no-prod-delete"], Ask::Kind("node", "delete"), Ok(("everything", "allow.rules"))),
    // --- admin verbs on one resource, with where ---
    ("where holds", &["node-owner"], Ask::Item("node", "read", OWNED), Ok(("node-owner", "allow.rules.where"))),
    ("where fails", &["node-owner"], Ask::Item("node", "read", NOT_OWNED), Err((NO, "which does not hold for it"))),
    ("where on missing labels", &["node-owner"], Ask::Item("node", "update", UNLABELLED), Err((NO, "update on node \"web-3\""))),
    ("plain rule on an item", &["node-owner"], Ask::Item("node", "list", NOT_OWNED), Ok(("node-owner", "allow.rules"))),
    ("deny where holds", &["everything", "no-prod-delete"], Ask::Item("node", "delete", PROD_NODE), Err(("deny.rules", "delete on node \"p-1\" is denied by role \"no-prod-delete\""))),
    ("deny where fails", &["everything", "no-prod-delete"], Ask::Item("node", "delete", DEV_NODE), Ok(("everything", "allow.rules"))),
    ("session participant", &["session-viewer"], Ask::Item("session", "read", MY_SESSION), Ok(("session-viewer", "allow.rules.where"))),
    ("not a participant", &["session-viewer"], Ask::Item("session", "read", OTHER_SESSION), Err((NO, "read on this session"))),
    ("participants missing", &["session-viewer"], Ask::Item("session", "list", BARE_SESSION), Err((NO, ""))),
    // --- Kubernetes ---
    ("kube group literal", &["kube-dev"], Ask::KGroup("viewers"), Ok(("kube-dev", "allow.kubernetes_groups"))),
    ("kube group from trait", &["kube-dev"], Ask::KGroup("payments"), Ok(("kube-dev", "allow.kubernetes_groups"))),
    ("kube group regex", &["kube-dev"], Ask::KGroup("dev-team"), Ok(("kube-dev", "allow.kubernetes_groups"))),
    ("kube group not allowed", &["kube-dev"], Ask::KGroup("admins"), Err((NO, "the roles allow [\"viewers\", \"payments\", \"^dev-.*$\"]"))),
    ("kube user from email.local", &["kube-dev"], Ask::KUser("alice"), Ok(("kube-dev", "allow.kubernetes_users"))),
    ("kube user not allowed", &["kube-dev"], Ask::KUser("bob"), Err((NO, "kubernetes user \"bob\""))),
    ("kube get pod", &["kube-dev"], Ask::KVerb("get", "pod", "dev-1", "api"), Ok(("kube-dev", "allow.kubernetes_resources"))),
    ("kube exec pod", &["kube-dev"], Ask::KVerb("exec", "pod", "dev-1", "api"), Ok(("kube-dev", "allow.kubernetes_resources"))),
    ("kube verb not listed: closest", &["kube-dev"], Ask::KVerb("delete", "pod", "dev-1", "api"), Err((NO, "closest: role \"kube-dev\" allows verbs [\"get\", \"list\", \"exec\"] on pod dev-1/api"))),
    ("kube namespace glob misses", &["kube-dev"], Ask::KVerb("get", "pod", "prod", "api"), Err((NO, "get on pod prod/api"))),
    ("kube name glob", &["kube-dev"], Ask::KVerb("get", "deployment", "default", "web-1"), Ok(("kube-dev", ""))),
    ("kube name glob misses", &["kube-dev"], Ask::KVerb("get", "deployment", "default", "db"), Err((NO, ""))),
    ("kube cluster-wide collection", &["kube-dev"], Ask::KVerb("list", "namespace", "", ""), Ok(("kube-dev", ""))),
    ("kube namespaced collection", &["kube-dev"], Ask::KVerb("list", "pod", "dev-2", ""), Ok(("kube-dev", ""))),
    ("kube deny exec wins", &["kube-dev", "kube-no-exec"], Ask::KVerb("exec", "pod", "dev-1", "api"), Err(("deny.kubernetes_resources", "exec on pod dev-1/api is denied by role \"kube-no-exec\""))),
    ("kube deny group wins", &["kube-admin", "kube-no-exec"], Ask::KGroup("system:masters"), Err(("deny.kubernetes_groups", ""))),
    ("kube wildcard group", &["kube-admin"], Ask::KGroup("system:masters"), Ok(("kube-admin", ""))),
    // --- databases ---
    ("db user from email, exact name", &["db-prod"], Ask::Db(&[("env", "prod")], "alice", "orders"), Ok(("db-prod", DB_RULE))),
    ("db regex name", &["db-prod"], Ask::Db(&[("env", "prod")], "readonly", "analytics_eu"), Ok(("db-prod", DB_RULE))),
    ("db regex name misses", &["db-prod"], Ask::Db(&[("env", "prod")], "readonly", "analytics_EU"), Err((NO, ""))),
    ("db user not allowed: closest", &["db-prod"], Ask::Db(&[("env", "prod")], "postgres", "orders"), Err((NO, "closest: role \"db-prod\" allows db users [\"alice\", \"readonly\"]"))),
    ("db labels miss", &["db-prod"], Ask::Db(&[("env", "dev")], "alice", "orders"), Err((NO, "database \"orders-db\""))),
    ("db deny user wins", &["db-prod", "db-no-superuser"], Ask::Db(&[("env", "prod")], "postgres", "orders"), Err(("deny.db_users", "database user \"postgres\" is denied"))),
    ("db deny labels win", &["db-prod", "db-no-secret"], Ask::Db(&[("env", "prod"), ("tier", "secret")], "alice", "orders"), Err(("deny.db_labels", ""))),
    // --- apps ---
    ("app label", &["app-web"], Ask::App(&[("team", "web")]), Ok(("app-web", "allow.app_labels"))),
    ("app label from trait", &["app-web"], Ask::App(&[("team", "payments")]), Ok(("app-web", "allow.app_labels"))),
    ("app label misses", &["app-web"], Ask::App(&[("team", "db")]), Err((NO, "app \"grafana\""))),
    ("app deny wins", &["app-web", "app-no-admin"], Ask::App(&[("team", "web"), ("kind", "admin")]), Err(("deny.app_labels", ""))),
    ("mismatched target and action", &["app-web", "ops-all"], Ask::AppLogin(&[("team", "web")]), Err((NO, ""))),
    // --- filing access requests ---
    ("request a listed role", &["req-dev"], Ask::Request("alice", &["dev"], &[], ""), Ok(("req-dev", "allow.request.roles"))),
    ("request a regex role", &["req-dev"], Ask::Request("alice", &["db-ro"], &[], ""), Ok(("req-dev", "allow.request.roles"))),
    ("request a role from claims", &["req-dev"], Ask::Request("alice", &["db-admin"], &[], ""), Ok(("req-dev", "allow.request.claims_to_roles"))),
    ("search_as_roles needs resources", &["req-dev"], Ask::Request("alice", &["ops-all"], &[], ""), Err((NO, "requesting role \"ops-all\"; requestable: [\"dev\", \"^db-(ro|rw)$\", \"db-admin\"]"))),
    ("search_as_roles with resources", &["req-dev"], Ask::Request("alice", &["ops-all"], &["/node/web-1"], ""), Ok(("req-dev", "allow.request.search_as_roles"))),
    ("several roles grant together", &["req-dev", "req-needs-reason"], Ask::Request("alice", &["dev", "auditor"], &[], "INC-1"), Ok(("req-dev, req-needs-reason", "allow.request.roles"))),
    ("reason required", &["req-dev", "req-needs-reason"], Ask::Request("alice", &["dev", "auditor"], &[], " "), Err(("allow.request.reason_required", "role \"req-needs-reason\" requires a reason"))),
    ("deny request wins", &["req-dev", "req-no-admin"], Ask::Request("alice", &["db-admin"], &[], ""), Err(("deny.request.roles", "requesting role \"db-admin\" is denied by role \"req-no-admin\""))),
    ("only one's own requests", &["req-dev"], Ask::Request("bob", &["dev"], &[], ""), Err(("request.user", "cannot file an access request for \"bob\""))),
    ("a request names a role", &["req-dev"], Ask::Request("alice", &[], &[], ""), Err(("request.roles", "names no role"))),
    ("a role not requestable", &["req-dev"], Ask::Request("alice", &["dev", "admin"], &[], ""), Err((NO, "requesting role \"admin\""))),
    // --- reviewing access requests ---
    ("review a covered role", &["rev-dev"], Ask::Review("bob", &["dev"], ""), Ok(("rev-dev", "allow.review_requests"))),
    ("never one's own", &["rev-dev"], Ask::Review("alice", &["dev"], ""), Err(("review.own_request", "cannot review their own"))),
    ("every role must be covered", &["rev-dev"], Ask::Review("bob", &["dev", "db-ro"], ""), Err((NO, "reviewing \"bob\"'s request for role \"db-ro\""))),
    ("roles cover together, where via reviewer", &["rev-dev", "rev-db", "dba-lead"], Ask::Review("bob", &["dev", "db-ro"], ""), Ok(("rev-dev, rev-db", "allow.review_requests"))),
    ("where fails: closest", &["rev-db"], Ask::Review("bob", &["db-ro"], ""), Err((NO, "closest: role \"rev-db\" covers it where"))),
    ("where via request fields", &["rev-db"], Ask::Review("bob", &["db-ro"], "INC-9"), Ok(("rev-db", "allow.review_requests"))),
    ("deny review where holds", &["rev-db", "dba-lead", "rev-no-mallory"], Ask::Review("mallory", &["db-rw"], ""), Err(("deny.review_requests", "which holds"))),
    ("deny review where fails", &["rev-db", "dba-lead", "rev-no-mallory"], Ask::Review("bob", &["db-rw"], ""), Ok(("rev-db", "allow.review_requests"))),
];

#[test]
fn decision_table() {
    assert!(CASES.len() >= 60, "{} cases", CASES.len());
    for (name, roles, ask, want) in CASES {
        let got = decide(&alice(roles), *ask);
        match (&got, want) {
            (Ok(p), Ok((role, rule))) => {
                assert_eq!(p.role(), *role, "{name}");
                if !rule.is_empty() {
                    assert_eq!(p.rule(), *rule, "{name}");
                }
            }
            (Err(d), Err((rule, reason))) => {
                assert_eq!(d.rule, *rule, "{name}: {}", d.reason);
                assert!(d.reason.contains(reason), "{name}: {}", d.reason);
                // Deny rules name their role; "no allow" names none.
                if rule.starts_with("deny.") {
                    assert!(d.role.is_some(), "{name}");
                }
                if *rule == NO {
                    assert!(d.role.is_none(), "{name}");
                }
            }
            _ => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn template_table() {
    let traits = alice(&[]).traits;
    #[rustfmt::skip]
    let table: &[(&str, &[&str])] = &[
        ("root", &["root"]),
        ("*", &["*"]),
        ("{{internal.logins}}", &["alice"]),
        ("{{external.groups}}", &["oncall-db", "dev-admin", "web"]),
        ("{{ internal.teams }}", &["payments"]),
        ("{{internal.missing}}", &[]),
        ("{{external.missing}}", &[]),
        ("{{email.local(external.email)}}", &["alice"]),
        ("{{email.local(internal.logins)}}", &[]),
        (r#"{{regexp.replace(internal.groups, "^(.*)-admin$", "$1")}}"#, &["dev"]),
        (r#"{{regexp.replace(internal.groups, "^oncall-(?P<t>.*)$", "${t}-oncall")}}"#, &["db-oncall"]),
        (r#"{{regexp.replace(internal.groups, "-", "_")}}"#, &["oncall_db", "dev_admin"]),
        (r#"{{regexp.replace(internal.groups, "^(nomatch)$", "$1")}}"#, &[]),
        (r#"{{regexp.replace(email.local(external.email), "^a", "A")}}"#, &["Alice"]),
        (r#"{{regexp.replace(internal.groups, "^(x$", "$1")}}"#, &[]),
        ("{{internal.logins", &[]),
        ("x-{{internal.logins}}", &[]),
        ("{{unknown.fn(internal.logins)}}", &[]),
    ];
    for (template, want) in table {
        assert_eq!(
            keygate_policy::expand_template(template, &traits),
            *want,
            "{template}"
        );
    }
}

#[test]
fn options_table() {
    use std::time::Duration;

    use keygate_types::{LockMode, RecordSession};
    let all = all_roles();
    let opts = |names: &[&str]| keygate_policy::combine_options(names.iter().map(|n| &all[*n]));
    let hours = |h: u64| Some(Duration::from_secs(h * 3600));

    let none = opts(&[]);
    assert!(!none.port_forwarding && !none.agent_forwarding);
    assert_eq!(none.max_session_ttl, None);

    let one = opts(&["multi"]);
    assert_eq!(one.max_session_ttl, hours(2));
    assert!(one.port_forwarding, "the only role allows it");
    assert!(!one.agent_forwarding, "unset means no");
    assert_eq!(one.record_session, RecordSession::Strict);

    let two = opts(&["no-root", "ops-all"]);
    assert_eq!(two.max_session_ttl, hours(8), "shortest set value wins");
    assert_eq!(two.client_idle_timeout, Some(Duration::from_secs(1800)));
    assert!(two.port_forwarding, "both allow");
    assert!(!two.agent_forwarding, "no-root does not allow");
    assert!(two.require_session_mfa, "any true wins");
    assert_eq!(two.max_sessions, Some(3));
    assert_eq!(two.lock, LockMode::Strict);
    assert_eq!(two.record_session, RecordSession::BestEffort);

    let three = opts(&["ops-all", "multi", "no-root"]);
    assert_eq!(three.max_session_ttl, hours(2));
    assert_eq!(three.record_session, RecordSession::Strict);
    assert!(three.port_forwarding);
    // Order never matters.
    assert_eq!(three, opts(&["no-root", "multi", "ops-all"]));
    // A role without options (dev) takes port forwarding away.
    assert!(!opts(&["multi", "dev"]).port_forwarding);
}
