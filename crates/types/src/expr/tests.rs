#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use super::*;

/// Labels, traits and role names of the test user.
type Parts = (
    BTreeMap<String, String>,
    BTreeMap<String, Vec<String>>,
    Vec<String>,
);

fn env_parts() -> Parts {
    let labels = BTreeMap::from([
        ("env".to_owned(), "prod".to_owned()),
        ("team".to_owned(), "db".to_owned()),
        ("host".to_owned(), "web-12".to_owned()),
    ]);
    let traits = BTreeMap::from([
        ("teams".to_owned(), vec!["db".to_owned(), "web".to_owned()]),
        ("logins".to_owned(), vec!["alice".to_owned()]),
    ]);
    let roles = vec!["dev".to_owned(), "ops".to_owned()];
    (labels, traits, roles)
}

fn eval(src: &str) -> bool {
    let (labels, traits, roles) = env_parts();
    let env = ExprEnv {
        labels: &labels,
        user_name: "alice",
        traits: &traits,
        roles: &roles,
    };
    Expr::parse(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .eval(&env)
}

fn error(src: &str) -> ExprError {
    match Expr::parse(src) {
        Ok(_) => panic!("{src:?} should be rejected"),
        Err(e) => e,
    }
}

#[test]
fn evaluation_table() {
    let table: &[(&str, bool)] = &[
        (r#"labels["env"] == "prod""#, true),
        (r#"labels["env"] != "prod""#, false),
        (r#"labels["env"] == "dev""#, false),
        (r#"labels["missing"] == """#, true),
        (
            r#"labels["env"] == "prod" && contains(user.traits["teams"], labels["team"])"#,
            true,
        ),
        (r#"contains(user.traits["teams"], "ops")"#, false),
        (r#"contains(user.traits["missing"], "")"#, false),
        (r#"user.traits["missing"] == user.traits["nope"]"#, true),
        (r#"user.name == "alice""#, true),
        (r#"contains(user.roles, "ops")"#, true),
        (r#"contains(user.roles, "admin")"#, false),
        (r#"startsWith(labels["host"], "web-")"#, true),
        (r#"hasPrefix(labels["host"], "db-")"#, false),
        (r#"equals(labels["team"], "db")"#, true),
        (r#"equals(true, false)"#, false),
        (r#"regexp.match(labels["host"], "^web-[0-9]+$")"#, true),
        (r#"regexp.match(labels["host"], "^db-")"#, false),
        (r#"regexp.match(user.traits["teams"], "^w")"#, true),
        (r#"!(labels["env"] == "dev")"#, true),
        (r#"!!true"#, true),
        (r#"false || true && false"#, false),
        (r#"(false || true) && true"#, true),
        (r#"true == (labels["env"] == "prod")"#, true),
        ("labels[\"env\"]\n  == \"prod\"", true),
        (r#"labels["q\"x\\"] == "q\"x\\""#, false),
        (r#""a\"b\\" == "a\"b\\""#, true),
    ];
    for (src, want) in table {
        assert_eq!(eval(src), *want, "{src}");
    }
}

#[test]
fn escapes_are_resolved() {
    let labels = BTreeMap::from([("k\"".to_owned(), "v\\".to_owned())]);
    let env = ExprEnv {
        labels: &labels,
        user_name: "",
        traits: &BTreeMap::new(),
        roles: &[],
    };
    assert!(Expr::parse(r#"labels["k\""] == "v\\""#).unwrap().eval(&env));
}

#[test]
fn errors_carry_positions() {
    let table: &[(&str, usize, &str)] = &[
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        (r#"labels["env"] = "prod""#, 14, "use `==`"),
        (r#"labels["env"] == "prod"#, 17, "not closed"),
        (r#"labels["env"] == "a\n""#, 19, "unknown escape"),
        (r#"labels[env] == "prod""#, 7, "key in double quotes"),
        (r#"labels["env"] == "prod" &&"#, 26, "expected a value"),
        (
            r#"labels["env"] == "prod" "x""#,
            24,
            "after a complete expression",
        ),
        (r#"labels["env"]"#, 0, "must be a condition"),
        (
            r#"labels["env"] == true"#,
            14,
            "cannot compare a string with a boolean",
        ),
        (r#"!labels["env"]"#, 1, "`!` needs a condition"),
        (r#"labels["a"] && true"#, 0, "`&&` needs a condition"),
        (r#"true || "x""#, 8, "`||` needs a condition"),
        (
            r#"contains(labels["a"], "x")"#,
            9,
            "argument 1 of `contains` must be a list",
        ),
        (r#"contains(user.roles)"#, 0, "takes 2 arguments, found 1"),
        (
            r#"frobnicate("x", "y")"#,
            0,
            "unknown function `frobnicate`",
        ),
        (r#"foo == "x""#, 0, "unknown name `foo`"),
        (r#"user.email == "x""#, 5, "unknown user field"),
        (
            r#"regexp.match(labels["a"], "^(x$")"#,
            26,
            "invalid regular expression",
        ),
        (
            r#"regexp.match(labels["a"], labels["b"])"#,
            26,
            "string literal",
        ),
        (
            r#"equals(user.roles, "x")"#,
            19,
            "both arguments of `equals`",
        ),
        (r#"true == true == true"#, 13, "do not chain"),
        (r#"(true"#, 5, "`)` to close"),
        (r#"true # x"#, 5, "unexpected character '#'"),
        (r#"true & false"#, 5, "use `&&`"),
        (r#"true | false"#, 5, "use `||`"),
    ];
    for (src, pos, msg) in table {
        let e = error(src);
        assert_eq!(e.position, *pos, "{src}: {e}");
        assert!(e.message.contains(msg), "{src}: {e}");
    }
}

#[test]
fn columns_count_characters_and_lines() {
    let e = error("\"é\" == true");
    assert_eq!((e.position, e.line, e.column), (5, 1, 5));
    assert!(e.to_string().ends_with("at column 5"), "{e}");
    let e = error("true &&\n  \"x\"");
    assert_eq!((e.line, e.column), (2, 3));
    assert!(e.to_string().ends_with("at line 2, column 3"), "{e}");
}

#[test]
fn limits_are_enforced() {
    let long = format!("labels[\"{}\"] == \"x\"", "k".repeat(MAX_SOURCE_BYTES));
    let e = error(&long);
    assert_eq!(e.position, MAX_SOURCE_BYTES);
    assert!(e.message.contains("at most 1024"), "{e}");

    let ok_deep = format!("{}true{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(eval(&ok_deep));
    let deep = format!(
        "{}true{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(error(&deep).message.contains("deeper than 32"));
    let bangs = format!("{}true", "!".repeat(MAX_DEPTH + 1));
    assert!(error(&bangs).message.contains("deeper than 32"));
    let calls = format!(
        "{}true{}",
        "equals(true, ".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(error(&calls).message.contains("deeper than 32"));

    // 128 literals and 127 `||` nodes fit; one more term does not.
    let fits = vec!["false"; 128].join("||");
    assert!(!eval(&fits));
    let too_many = vec!["false"; 129].join("||");
    assert!(error(&too_many).message.contains("more than 256 terms"));
}

#[test]
fn hostile_regexes_are_rejected_at_parse_time() {
    let e = error(r#"regexp.match(labels["a"], "^(a{1000}){1000}$")"#);
    assert!(e.message.contains("invalid regular expression"), "{e}");
    assert_eq!(e.position, 26);
}

#[test]
fn display_and_from_str_keep_the_source() {
    let src = r#"labels["env"] == "prod""#;
    let e: Expr = src.parse().unwrap();
    assert_eq!(e.to_string(), src);
    assert_eq!(e.source(), src);
}

#[test]
fn role_validation_reports_field_and_column() {
    let mut spec = crate::RoleSpec::default();
    spec.allow.node_labels_expression = Some(r#"labels["env"] == "prod""#.into());
    spec.deny.node_labels_expression = Some(r#"contains(user.roles, "intern")"#.into());
    assert!(spec.validate().is_ok());

    spec.allow.node_labels_expression = Some(r#"labels["env"] = "prod""#.into());
    assert_eq!(
        spec.validate().unwrap_err().to_string(),
        "invalid spec.allow.node_labels_expression: `=` is not an operator; use `==` at column 15"
    );
    spec.allow.node_labels_expression = None;
    spec.deny.node_labels_expression = Some("contains(user.roles)".into());
    let e = spec.validate().unwrap_err().to_string();
    assert!(
        e.starts_with("invalid spec.deny.node_labels_expression: "),
        "{e}"
    );
    assert!(e.ends_with("at column 1"), "{e}");
}

fn eval_fields(src: &str, fields: &Fields<'_>) -> bool {
    let (labels, traits, roles) = env_parts();
    let env = ExprEnv {
        labels: &labels,
        user_name: "alice",
        traits: &traits,
        roles: &roles,
    };
    Expr::parse(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .eval_with(&env, fields)
}

#[test]
fn document_fields_table() {
    let resource = serde_json::json!({
        "kind": "node",
        "metadata": {"name": "web-1", "labels": {"env": "prod", "k-8": "v"}},
        "spec": {"count": 3, "on": true, "off": false, "none": null,
                 "participants": ["alice", "bob", 7], "obj": {}}
    });
    let request = serde_json::json!({"user": "bob", "roles": ["dba"]});
    let reviewer = serde_json::json!({"name": "alice", "roles": ["dev", "dba-lead"]});
    let fields: &Fields<'_> = &[
        ("resource", &resource),
        ("session", &resource),
        ("request", &request),
        ("reviewer", &reviewer),
    ];
    let table: &[(&str, bool)] = &[
        (r#"resource.metadata.labels["env"] == "prod""#, true),
        (r#"resource["metadata"]["labels"]["k-8"] == "v""#, true),
        (r#"resource.metadata.labels["env"] != "prod""#, false),
        (r#"resource.metadata.labels["missing"] == """#, true),
        (r#"resource.metadata.labels["missing"] != "x""#, true),
        (r#"resource.nope.deeper == """#, true),
        (r#"resource.metadata.name.deeper == """#, true),
        (r#"contains(session.spec.participants, user.name)"#, true),
        (r#"contains(session.spec.participants, "carol")"#, false),
        (r#"contains(session.spec.missing, "alice")"#, false),
        (r#"contains(resource.metadata.name, "web-1")"#, false),
        (r#"resource.spec.on"#, true),
        (r#"resource.spec.off"#, false),
        (r#"!resource.spec.off"#, true),
        (r#"resource.spec.none"#, false),
        (r#"resource.spec.none == false"#, true),
        (r#"resource.spec.count == "3""#, false),
        (r#"resource.spec.count != "3""#, false),
        (r#"resource.spec.obj == resource.spec.obj"#, false),
        (r#"resource.spec.none == user.traits["missing"]"#, true),
        (
            r#"resource.spec.participants == resource.spec.participants"#,
            false,
        ),
        (r#"request.roles == request.roles"#, true),
        (r#"!equals(request.user, reviewer.name)"#, true),
        (r#"equals(request.user, user.name)"#, false),
        (r#"contains(reviewer.roles, "dba-lead")"#, true),
        (r#"startsWith(resource.metadata.name, "web-")"#, true),
        (r#"regexp.match(reviewer.roles, "^dba-")"#, true),
        (r#"regexp.match(resource.metadata.missing, "^$")"#, true),
        (r#"labels["env"] == resource.metadata.labels["env"]"#, true),
    ];
    for (src, want) in table {
        assert_eq!(eval_fields(src, fields), *want, "{src}");
        // Unbound, every field is absent.
        let unbound = eval_fields(src, &[]);
        assert_eq!(unbound, eval(src), "{src}");
    }
    assert!(eval(r#"resource.metadata.labels["env"] == """#));
    assert!(!eval(r#"contains(session.participants, user.name)"#));
}

#[test]
fn field_errors_and_roots() {
    let table: &[(&str, usize, &str)] = &[
        (
            r#"resource == "x""#,
            9,
            "expected `.` or `[` after `resource`",
        ),
        (r#"resource. == "x""#, 10, "field name after `.`"),
        (r#"session[x] == "x""#, 8, "key in double quotes"),
        (r#"event == "x""#, 0, "unknown name `event`"),
        (r#"resource.a == "x" == "y""#, 18, "do not chain"),
    ];
    for (src, pos, msg) in table {
        let e = error(src);
        assert_eq!(e.position, *pos, "{src}: {e}");
        assert!(e.message.contains(msg), "{src}: {e}");
    }
    let e = Expr::parse(r#"user.name == "a" || contains(session.participants, "x")"#).unwrap();
    assert_eq!(e.roots().collect::<Vec<_>>(), vec!["session"]);
    assert!(e.check_roots(&["resource", "session"]).is_ok());
    let err = e.check_roots(&["request", "reviewer"]).unwrap_err();
    assert_eq!(err.position, 29);
    assert!(
        err.message.contains("`session` is not available here"),
        "{err}"
    );
    assert!(err.message.contains("request.…, reviewer.…"), "{err}");
    let err = e.check_roots(&[]).unwrap_err();
    assert!(err.message.contains("only labels"), "{err}");
}

#[test]
fn role_where_and_templates_are_checked_at_load() {
    let ok = r#"
kind: role
version: v1
metadata: {name: r}
spec:
  allow:
    logins: ['{{regexp.replace(internal.logins, "^(.*)-adm$", "$1")}}']
    db_users: ['{{email.local(external.email)}}']
    kubernetes_resources: [{kind: pod, namespace: '*', name: '*', verbs: [get, exec]}]
    request:
      roles: ['^db-(ro|rw)$']
      claims_to_roles: [{claim: groups, value: '^oncall-(.*)$', roles: ['$1-admin']}]
      thresholds: [{approve: 2, deny: 1, filter: 'contains(reviewer.roles, "dba-lead")'}]
    review_requests: {roles: [dba], where: '!equals(request.user, reviewer.name)'}
    rules: [{resources: [session], verbs: [list, read], where: 'contains(session.participants, user.name)'}]
"#;
    crate::load_documents("ok.yaml", ok).unwrap();
    let bad: &[(&str, &str)] = &[
        (
            "rules: [{resources: [node], verbs: [read], where: 'resource.metadata.name = \"x\"'}]",
            "spec.allow.rules[0].where: `=` is not an operator; use `==` at column 24",
        ),
        (
            "rules: [{resources: [node], verbs: [read], where: 'request.user == user.name'}]",
            "spec.allow.rules[0].where: `request` is not available here",
        ),
        (
            "review_requests: {roles: [dba], where: 'resource.metadata.name == \"x\"'}",
            "spec.allow.review_requests.where: `resource` is not available here",
        ),
        (
            "node_labels_expression: 'resource.metadata.name == \"x\"'",
            "spec.allow.node_labels_expression: `resource` is not available here",
        ),
        (
            "request: {thresholds: [{approve: 1, deny: 1, filter: 'contains(reviewer.roles)'}]}",
            "spec.allow.request.thresholds[0].filter: `contains` takes 2 arguments",
        ),
        (
            "request: {thresholds: [{approve: 0, deny: 1}]}",
            "spec.allow.request.thresholds[0]: approve and deny",
        ),
        (
            "request: {roles: ['^db-($']}",
            "spec.allow.request.roles[0]: invalid regular expression",
        ),
        (
            "request: {claims_to_roles: [{claim: groups, value: '^(x$', roles: [a]}]}",
            "spec.allow.request.claims_to_roles[0].value: invalid regular expression",
        ),
        (
            "review_requests: {roles: ['^(a{1000}){1000}$']}",
            "spec.allow.review_requests.roles[0]: invalid regular expression",
        ),
        (
            "logins: ['{{regexp.replace(internal.a, \"^(x$\", \"y\")}}']",
            "spec.allow.logins[0]: \"{{regexp.replace(internal.a, \\\"^(x$\\\", \\\"y\\\")}}\": invalid regular expression",
        ),
        (
            "db_users: ['{{bogus}}']",
            "spec.allow.db_users[0]: \"{{bogus}}\": unknown template",
        ),
        (
            "node_labels: {team: 'x-{{internal.teams}}'}",
            "spec.allow.node_labels.team: \"x-{{internal.teams}}\": a template must be the whole value",
        ),
        (
            "kubernetes_resources: [{kind: pod, namespace: '*', name: '*'}]",
            "spec.allow.kubernetes_resources[0]: an entry needs a kind and at least one verb",
        ),
        (
            "kubernetes_resources: [{kind: pod, namespace: '^(x$', verbs: [get]}]",
            "spec.allow.kubernetes_resources[0].namespace: invalid regular expression",
        ),
    ];
    for (allow, want) in bad {
        let yaml = format!(
            "kind: role\nversion: v1\nmetadata: {{name: r}}\nspec:\n  allow:\n    {allow}\n"
        );
        let e = crate::load_documents("bad.yaml", &yaml)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{allow}\n  gave: {e}\n  want: {want}");
    }
    let long = format!(
        "rules: [{{resources: [node], verbs: [read], where: '{}'}}]",
        vec!["true"; 300].join(" && ")
    );
    let yaml =
        format!("kind: role\nversion: v1\nmetadata: {{name: r}}\nspec:\n  deny:\n    {long}\n");
    let e = crate::load_documents("long.yaml", &yaml)
        .unwrap_err()
        .to_string();
    assert!(e.contains("spec.deny.rules[0].where: expression is"), "{e}");
    assert!(e.contains("at most 1024"), "{e}");
}
