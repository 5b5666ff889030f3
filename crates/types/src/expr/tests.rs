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
