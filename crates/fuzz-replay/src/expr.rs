//! Target for the label-expression language (`keygate_types::expr`).

use std::collections::BTreeMap;

use keygate_types::expr::{MAX_DEPTH, MAX_SOURCE_BYTES};
use keygate_types::{Expr, ExprEnv};

use crate::input;
use crate::invariant::{check, check_eq};

/// `Expr::parse` on any text, then `eval` in two environments. An error
/// points inside the input (or at its end); an accepted expression is at
/// most 1024 bytes, keeps its source, evaluates the same way twice, and its
/// negation `!(…)` either evaluates to the opposite or is refused only for
/// the depth or size limits.
pub fn types_expr(data: &[u8]) {
    let Some(text) = input::text(data) else {
        return;
    };
    let expr = match Expr::parse(text) {
        Ok(expr) => expr,
        Err(e) => {
            check(
                e.position <= text.len() && e.line >= 1 && e.column >= 1,
                "an error points inside the input",
                &e,
            );
            check(
                e.line <= text.lines().count().max(1) + 1,
                "an error's line exists",
                &e,
            );
            return;
        }
    };
    check(
        text.len() <= MAX_SOURCE_BYTES,
        "accepted expressions are at most 1024 bytes",
        &text.len(),
    );
    check_eq(&expr.source(), &text, "an expression keeps its source");
    check_eq(
        &expr.to_string().as_str(),
        &text,
        "an expression prints as its source",
    );

    let labels = BTreeMap::from([
        ("env".to_owned(), "prod".to_owned()),
        ("team".to_owned(), "db".to_owned()),
        ("host".to_owned(), "web-1".to_owned()),
        (String::new(), String::new()),
    ]);
    let traits = BTreeMap::from([
        ("teams".to_owned(), vec!["db".to_owned(), "web".to_owned()]),
        ("logins".to_owned(), Vec::new()),
    ]);
    let roles = ["dev".to_owned(), "intern".to_owned()];
    let full = ExprEnv {
        labels: &labels,
        user_name: "alice",
        traits: &traits,
        roles: &roles,
    };
    let empty_labels = BTreeMap::new();
    let empty_traits = BTreeMap::new();
    let empty = ExprEnv {
        labels: &empty_labels,
        user_name: "",
        traits: &empty_traits,
        roles: &[],
    };
    for env in [&full, &empty] {
        let value = expr.eval(env);
        check_eq(&expr.eval(env), &value, "evaluation is deterministic");
        let negated = format!("!({text})");
        match Expr::parse(&negated) {
            Ok(not) => check_eq(&not.eval(env), &!value, "`!(e)` is the negation of e"),
            Err(e) => check(
                negated.len() > MAX_SOURCE_BYTES
                    || e.message.contains(&format!("deeper than {MAX_DEPTH}"))
                    || e.message.contains("more than"),
                "`!(e)` of a valid e fails only on limits",
                &e,
            ),
        }
    }
}

/// `Template::parse` (role value templates such as
/// `{{regexp.replace(internal.teams, "^(.*)-eng$", "$1")}}`) on any text,
/// then `expand` over fixed traits. Errors point inside the input; an
/// accepted template expands the same way twice, never to an empty value.
pub fn types_template(data: &[u8]) {
    let Some(text) = input::text(data) else {
        return;
    };
    let template = match keygate_types::Template::parse(text) {
        Ok(t) => t,
        Err(e) => {
            check(
                e.position <= text.len(),
                "an error points inside the input",
                &e,
            );
            return;
        }
    };
    let traits = std::collections::BTreeMap::from([
        (
            "logins".to_owned(),
            vec!["alice".to_owned(), "root".to_owned()],
        ),
        (
            "teams".to_owned(),
            vec!["db-eng".to_owned(), "web".to_owned()],
        ),
        ("email".to_owned(), vec!["alice@example.com".to_owned()]),
    ]);
    let once = template.expand(&traits);
    check_eq(
        &template.expand(&traits),
        &once,
        "expansion is deterministic",
    );
    check(once.iter().all(|v| !v.is_empty()), "no empty values", &once);
}
