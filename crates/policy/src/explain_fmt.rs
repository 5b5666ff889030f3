//! How explanations read: one line per step.

use std::fmt;

use crate::explain::{Check, ExpressionCheck, LabelCheck, RoleStep, Step};

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

impl fmt::Display for LabelCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelCheck::Empty => f.write_str("empty (matches no node)"),
            LabelCheck::Matched => f.write_str("match"),
            LabelCheck::KeyFailed {
                key,
                patterns,
                actual,
            } => match actual {
                _ if key == "*" => write!(
                    f,
                    "key \"*\" wants {} (only \"*\" matches every node)",
                    list(patterns)
                ),
                Some(v) => write!(f, "key {key:?} wants {}, node has {v:?}", list(patterns)),
                None => write!(
                    f,
                    "key {key:?} wants {}, node has no {key:?} label",
                    list(patterns)
                ),
            },
        }
    }
}

impl fmt::Display for ExpressionCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            Some(e) => write!(
                f,
                "{:?} does not parse ({e}), counted as {}",
                self.expression, self.holds
            ),
            None => write!(f, "{:?} is {}", self.expression, self.holds),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Lock(l) => {
                write!(f, "lock {:?} ({}) matches", l.lock, l.target)?;
                if let Some(m) = &l.message {
                    write!(f, ": {m}")?;
                }
                Ok(())
            }
            Step::Deny(s) => role_line(f, "deny", s),
            Step::Allow(s) => role_line(f, "allow", s),
        }
    }
}

fn role_line(f: &mut fmt::Formatter<'_>, side: &str, s: &RoleStep) -> fmt::Result {
    write!(f, "role {:?} {side}: ", s.role)?;
    match &s.check {
        // Most roles set only one side; say so rather than list emptiness.
        Check::NodeLogin {
            logins,
            node_labels: LabelCheck::Empty,
            node_labels_expression: None,
            ..
        } if logins.is_empty() => f.write_str("no logins or node_labels set")?,
        Check::NodeLogin {
            login,
            logins,
            login_matched,
            node_labels,
            node_labels_expression,
        } => {
            let has = if *login_matched { "covers" } else { "lacks" };
            write!(
                f,
                "logins {} {has} {login:?}; node_labels {node_labels}",
                list(logins)
            )?;
            if let Some(e) = node_labels_expression {
                write!(f, "; node_labels_expression {e}")?;
            }
        }
        Check::AdminVerb {
            kind,
            verb,
            rule_matched,
            unconditional,
            conditions,
        } => {
            let does = if *rule_matched {
                "cover"
            } else {
                "do not cover"
            };
            write!(f, "rules {does} {verb} on {kind}")?;
            if *rule_matched && !*unconditional && conditions.is_empty() {
                f.write_str(" (only where a condition holds: items are filtered)")?;
            }
            for c in conditions {
                write!(f, "; where {c}")?;
            }
        }
        Check::Kubernetes {
            request,
            patterns,
            matched,
        } => {
            let has = if *matched { "cover" } else { "do not cover" };
            write!(f, "kubernetes {} {has} {request}", list(patterns))?;
        }
        Check::Database {
            db_user,
            db_name,
            users,
            names,
            user_matched,
            name_matched,
            db_labels,
        } => {
            let has = |m: bool| if m { "covers" } else { "lacks" };
            write!(
                f,
                "db_users {} {} {db_user:?}; db_names {} {} {db_name:?}; db_labels {}",
                list(users),
                has(*user_matched),
                list(names),
                has(*name_matched),
                labels_text(db_labels, "database")
            )?;
        }
        Check::App { app_labels } => {
            write!(f, "app_labels {}", labels_text(app_labels, "app"))?;
        }
        Check::AccessRequest {
            review,
            requested,
            patterns,
            covered,
            condition,
        } => {
            let field = if *review {
                "review_requests.roles"
            } else {
                "request roles"
            };
            write!(
                f,
                "{field} {} cover {} of requested {}",
                list(patterns),
                list(covered),
                list(requested)
            )?;
            if let Some(c) = condition {
                write!(f, "; where {c}")?;
            }
        }
        Check::Certificate => f.write_str(if side == "allow" {
            "holding a role allows a certificate"
        } else {
            "deny does not apply to certificates"
        })?,
        Check::NotApplicable => f.write_str("no condition applies")?,
    }
    match &s.matched {
        Some(rule) => write!(f, " => {} ({rule})", side.to_uppercase()),
        None => f.write_str(" => no match"),
    }
}

/// A label check on a database or an app, worded for it.
fn labels_text(check: &LabelCheck, what: &str) -> String {
    match check {
        LabelCheck::Empty => format!("empty (matches no {what})"),
        LabelCheck::KeyFailed {
            key,
            patterns,
            actual,
        } if key != "*" => match actual {
            Some(v) => format!("key {key:?} wants {}, {what} has {v:?}", list(patterns)),
            None => format!(
                "key {key:?} wants {}, {what} has no {key:?} label",
                list(patterns)
            ),
        },
        other => other.to_string(),
    }
}
