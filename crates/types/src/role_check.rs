//! Semantic checks of a role, run whenever one is loaded or created, so a
//! role that could not be evaluated as written never gets stored.

use crate::{
    Expr, LabelSelector, RoleConditions, RoleSpec, Template, TypesError, role::KubernetesResource,
};

/// Longest label, name or role pattern accepted, in bytes.
const MAX_PATTERN_BYTES: usize = 1024;
/// Largest compiled `^regex$` pattern, in bytes.
const MAX_REGEX_BYTES: usize = 1 << 20;

/// Document roots a rule's `where` can read: the resource the verb is on
/// (a session is also `session`).
pub const RULE_WHERE_ROOTS: &[&str] = &["resource", "session"];
/// Document roots `review_requests.where` and threshold filters can read.
pub const REVIEW_WHERE_ROOTS: &[&str] = &["request", "reviewer"];

impl RoleSpec {
    /// Semantic checks: well-formed logins and templates, label and name
    /// patterns (regexes compile within limits), label expressions and
    /// `where` predicates (parsed, type-checked and limited to the documents
    /// the field can see; errors name the field and the column).
    pub fn validate(&self) -> Result<(), TypesError> {
        for (side, c) in [("allow", &self.allow), ("deny", &self.deny)] {
            check_side(&format!("spec.{side}"), c)?;
        }
        Ok(())
    }
}

fn check_side(at: &str, c: &RoleConditions) -> Result<(), TypesError> {
    for (i, l) in c.logins.iter().enumerate() {
        check_login_or_template(&format!("{at}.logins[{i}]"), l)?;
    }
    for (name, selector) in [
        ("node_labels", &c.node_labels),
        ("db_labels", &c.db_labels),
        ("app_labels", &c.app_labels),
    ] {
        check_selector(&format!("{at}.{name}"), selector)?;
    }
    if let Some(src) = &c.node_labels_expression {
        check_expr(&format!("{at}.node_labels_expression"), src, &[])?;
    }
    for (name, values) in [
        ("kubernetes_groups", &c.kubernetes_groups),
        ("kubernetes_users", &c.kubernetes_users),
        ("db_names", &c.db_names),
        ("db_users", &c.db_users),
    ] {
        check_patterns(&format!("{at}.{name}"), values)?;
    }
    for (i, k) in c.kubernetes_resources.iter().enumerate() {
        check_kube(&format!("{at}.kubernetes_resources[{i}]"), k)?;
    }
    if let Some(r) = &c.request {
        let at = format!("{at}.request");
        check_patterns(&format!("{at}.roles"), &r.roles)?;
        check_patterns(&format!("{at}.search_as_roles"), &r.search_as_roles)?;
        for (i, m) in r.claims_to_roles.iter().enumerate() {
            let f = format!("{at}.claims_to_roles[{i}]");
            if m.claim.is_empty() || m.roles.is_empty() {
                return Err(TypesError::invalid(
                    f,
                    "a mapping needs a claim and at least one role",
                ));
            }
            check_pattern(&format!("{f}.value"), &m.value)?;
        }
        for (i, t) in r.thresholds.iter().enumerate() {
            let f = format!("{at}.thresholds[{i}]");
            if t.approve == 0 || t.deny == 0 {
                return Err(TypesError::invalid(
                    f,
                    "approve and deny must each be at least 1 (a request never decides itself)",
                ));
            }
            if let Some(src) = &t.filter {
                check_expr(&format!("{f}.filter"), src, REVIEW_WHERE_ROOTS)?;
            }
        }
    }
    if let Some(r) = &c.review_requests {
        check_patterns(&format!("{at}.review_requests.roles"), &r.roles)?;
        if let Some(src) = &r.where_ {
            check_expr(
                &format!("{at}.review_requests.where"),
                src,
                REVIEW_WHERE_ROOTS,
            )?;
        }
    }
    for (i, r) in c.rules.iter().enumerate() {
        if r.resources.is_empty() || r.verbs.is_empty() {
            return Err(TypesError::invalid(
                format!("{at}.rules[{i}]"),
                "a rule needs at least one resource and one verb",
            ));
        }
        if let Some(src) = &r.where_ {
            check_expr(&format!("{at}.rules[{i}].where"), src, RULE_WHERE_ROOTS)?;
        }
    }
    Ok(())
}

/// Parses and type-checks an expression and limits the documents it reads.
fn check_expr(field: &str, src: &str, roots: &[&str]) -> Result<(), TypesError> {
    Expr::parse(src)
        .and_then(|e| e.check_roots(roots))
        .map_err(|e| TypesError::invalid(field, e.to_string()))
}

fn check_kube(field: &str, k: &KubernetesResource) -> Result<(), TypesError> {
    if k.kind.is_empty() || k.verbs.is_empty() || k.verbs.iter().any(String::is_empty) {
        return Err(TypesError::invalid(
            field,
            "an entry needs a kind and at least one verb, e.g. {kind: pod, namespace: '*', name: '*', verbs: [get]}",
        ));
    }
    for (name, v) in [
        ("kind", &k.kind),
        ("namespace", &k.namespace),
        ("name", &k.name),
    ] {
        check_pattern(&format!("{field}.{name}"), v)?;
    }
    Ok(())
}

fn check_selector(field: &str, selector: &LabelSelector) -> Result<(), TypesError> {
    for (k, vals) in selector {
        for v in vals.iter() {
            check_pattern(&format!("{field}.{k}"), v)?;
        }
    }
    Ok(())
}

fn check_patterns(field: &str, values: &[String]) -> Result<(), TypesError> {
    for (i, v) in values.iter().enumerate() {
        check_pattern(&format!("{field}[{i}]"), v)?;
    }
    Ok(())
}

fn check_template(field: &str, s: &str) -> Result<(), TypesError> {
    Template::parse(s)
        .map(|_| ())
        .map_err(|e| TypesError::invalid(field, format!("{s:?}: {e}")))
}

fn check_login_or_template(field: &str, s: &str) -> Result<(), TypesError> {
    if Template::is_template(s) {
        return check_template(field, s);
    }
    if s == "*" {
        return Ok(());
    }
    s.parse::<crate::Login>()
        .map(|_| ())
        .map_err(|e| TypesError::invalid(field, e.to_string()))
}

/// A value pattern (label value, name, role): a template, `^regex$` that
/// compiles within limits, or text (exact, `*`, glob).
fn check_pattern(field: &str, v: &str) -> Result<(), TypesError> {
    if v.len() > MAX_PATTERN_BYTES {
        return Err(TypesError::invalid(
            field,
            "pattern longer than 1024 characters",
        ));
    }
    if Template::is_template(v) {
        return check_template(field, v);
    }
    if v.starts_with('^') && v.ends_with('$') {
        regex::RegexBuilder::new(v)
            .size_limit(MAX_REGEX_BYTES)
            .dfa_size_limit(MAX_REGEX_BYTES)
            .build()
            .map_err(|e| {
                let detail = e.to_string().replace('\n', " ");
                TypesError::invalid(field, format!("invalid regular expression: {detail}"))
            })?;
    }
    Ok(())
}
