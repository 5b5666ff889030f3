//! The decision trace behind [`authorize`](crate::authorize), for
//! `kgctl access explain`.
//!
//! [`explain`] walks the same checks in the same order, built from the same
//! per-check functions `authorize` uses, so its decision is the same by
//! construction (and a table test holds it to that). Unlike `authorize` it
//! does not stop at the first decisive check: the trace lists every lock that
//! matches and every role's deny and allow check, and `decided_by` points at
//! the one that decided. It never returns a [`Permit`](crate::Permit): an
//! explanation must not be usable as an authorization.

use std::collections::BTreeMap;
use std::fmt;

use keygate_types::{LabelSelector, Labels, Lock, RoleConditions};
use time::OffsetDateTime;

use crate::decision::{
    AccessContext, Action, Denial, Identity, Target, allows, check_deny, check_locks,
    expanded_logins, no_allow, rule_matches,
};
use crate::expression::evaluate;
use crate::labels::label_selector_matches;
use crate::traits::expand_template;

/// The granting role and rule of an allowed decision: what a `Permit`
/// would carry, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The role whose allow conditions matched first.
    pub role: String,
    /// The rule within it, e.g. `allow.logins+allow.node_labels`.
    pub rule: String,
}

/// A decision with every check that led to it.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// Exactly what `authorize` answers for the same input.
    pub decision: Result<Grant, Denial>,
    /// Matching locks, then each role's deny check, then each role's allow
    /// check, in evaluation order.
    pub steps: Vec<Step>,
    /// Index into `steps` of the check that decided; `None` when nothing
    /// matched and the default (deny) applied.
    pub decided_by: Option<usize>,
}

/// One check in the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A lock in force that matches this request.
    Lock(LockStep),
    /// One role's `deny` conditions.
    Deny(RoleStep),
    /// One role's `allow` conditions.
    Allow(RoleStep),
}

/// A matching lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockStep {
    /// Lock name.
    pub lock: String,
    /// What it targets, e.g. `user=alice`.
    pub target: String,
    /// Its message, if any.
    pub message: Option<String>,
    /// When it stops applying (None: until removed).
    pub expires: Option<OffsetDateTime>,
}

/// One role's deny or allow check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleStep {
    /// Role name.
    pub role: String,
    /// The rule that matched (`deny.logins`, `deny.node_labels`,
    /// `deny.node_labels_expression`, `deny.rules`,
    /// `allow.logins+allow.node_labels` (with `+allow.node_labels_expression`
    /// when the role has one, or only the expression), `allow.rules`,
    /// `role`); `None` when this side of the role does not match.
    pub matched: Option<String>,
    /// What was compared.
    pub check: Check,
}

/// The comparison a role check made, by kind of request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A node login.
    NodeLogin {
        /// The login asked for.
        login: String,
        /// The role's logins on this side after trait expansion.
        logins: Vec<String>,
        /// Whether `logins` covers the login (for deny, `*` covers all).
        login_matched: bool,
        /// The role's `node_labels` on this side against the node.
        node_labels: LabelCheck,
        /// The role's `node_labels_expression` on this side, if it has one.
        node_labels_expression: Option<ExpressionCheck>,
    },
    /// An admin verb on a resource kind.
    AdminVerb {
        /// Resource kind.
        kind: String,
        /// Verb.
        verb: String,
        /// Whether one of the role's `rules` on this side covers it.
        rule_matched: bool,
    },
    /// Issuing a certificate (any role allows it; deny never applies).
    Certificate,
    /// A target/action pair no role condition speaks about.
    NotApplicable,
}

/// How a `node_labels_expression` fared against a node and the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpressionCheck {
    /// The expression's text.
    pub expression: String,
    /// The value the decision used: what it evaluated to or, when it does
    /// not parse, `false` on the allow side and `true` on the deny side.
    pub holds: bool,
    /// Why it does not parse (None: it parsed).
    pub error: Option<String>,
}

/// How a label selector fared against a node's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelCheck {
    /// The selector is empty, which matches no node.
    Empty,
    /// Every key matched.
    Matched,
    /// The first key, in selector order, that did not match.
    KeyFailed {
        /// Selector key (`*` for the wildcard key).
        key: String,
        /// Its values after trait expansion.
        patterns: Vec<String>,
        /// The node's value for the key (None: the node lacks it).
        actual: Option<String>,
    },
}

impl LabelCheck {
    /// Does the selector match?
    pub fn matched(&self) -> bool {
        matches!(self, LabelCheck::Matched)
    }
}

/// Explains the decision `authorize` makes for the same arguments. Pure.
pub fn explain(
    id: &Identity,
    target: Target<'_>,
    action: Action<'_>,
    ctx: &AccessContext<'_>,
    now: OffsetDateTime,
) -> Explanation {
    let mut steps = Vec::new();
    let mut decision: Option<Result<Grant, Denial>> = None;
    let mut decided_by = None;
    let mut decide = |steps: &Vec<Step>, d: Result<Grant, Denial>| {
        if decision.is_none() {
            decision = Some(d);
            decided_by = Some(steps.len());
        }
    };

    for lock in ctx.locks {
        // One lock at a time through the very check `authorize` runs, so
        // what "matches" means cannot drift between the two.
        let one = AccessContext {
            locks: std::slice::from_ref(lock),
            serial: ctx.serial,
            mfa_device: ctx.mfa_device,
            session_id: ctx.session_id,
        };
        if let Err(d) = check_locks(id, target, action, &one, now) {
            decide(&steps, Err(d));
            steps.push(Step::Lock(lock_step(lock)));
        }
    }
    for role in &id.roles {
        let verdict = check_deny(id, role, &role.spec.deny, target, action);
        let matched = verdict.as_ref().err().map(|d| d.rule.clone());
        if let Err(d) = verdict {
            decide(&steps, Err(d));
        }
        steps.push(Step::Deny(RoleStep {
            role: role.metadata.name.clone(),
            matched,
            check: check_of(id, &role.spec.deny, target, action, true),
        }));
    }
    for role in &id.roles {
        let matched = allows(id, &role.spec.allow, target, action);
        if let Some(rule) = &matched {
            decide(
                &steps,
                Ok(Grant {
                    role: role.metadata.name.clone(),
                    rule: rule.clone(),
                }),
            );
        }
        steps.push(Step::Allow(RoleStep {
            role: role.metadata.name.clone(),
            matched,
            check: check_of(id, &role.spec.allow, target, action, false),
        }));
    }
    Explanation {
        decision: decision.unwrap_or_else(|| Err(no_allow(id, target, action))),
        steps,
        decided_by,
    }
}

fn lock_step(lock: &Lock) -> LockStep {
    LockStep {
        lock: lock.metadata.name.clone(),
        target: lock.spec.target.to_string(),
        message: lock.spec.message.clone(),
        expires: lock.metadata.expires,
    }
}

/// The details of one side of a role, for display. `deny` selects the
/// deny-side meaning of a `*` login (it denies every login).
fn check_of(
    id: &Identity,
    c: &RoleConditions,
    target: Target<'_>,
    action: Action<'_>,
    deny: bool,
) -> Check {
    match (target, action) {
        (Target::Node { labels, .. }, Action::Login(login)) => {
            let logins = expanded_logins(id, c);
            // Same rule as `allows`: only a real login name can be allowed.
            let login_matched = if deny {
                logins.contains(login) || logins.contains("*")
            } else {
                logins.contains(login) && login.parse::<keygate_types::Login>().is_ok()
            };
            Check::NodeLogin {
                login: login.to_owned(),
                logins: logins.into_iter().collect(),
                login_matched,
                node_labels: label_check(&c.node_labels, labels, &id.traits),
                node_labels_expression: c.node_labels_expression.as_ref().map(|src| {
                    let outcome = evaluate(src, id, labels, deny);
                    ExpressionCheck {
                        expression: src.clone(),
                        holds: outcome.value,
                        error: outcome.error,
                    }
                }),
            }
        }
        (Target::Kind(kind), Action::Verb(verb)) => Check::AdminVerb {
            kind: kind.to_owned(),
            verb: verb.to_owned(),
            rule_matched: c.rules.iter().any(|r| rule_matches(r, kind, verb)),
        },
        (Target::Certificate, Action::Issue) => Check::Certificate,
        _ => Check::NotApplicable,
    }
}

/// Checks a selector key by key (in the order `label_selector_matches`
/// evaluates them) to name the first key that fails.
pub fn label_check(
    selector: &LabelSelector,
    labels: &Labels,
    traits: &BTreeMap<String, Vec<String>>,
) -> LabelCheck {
    if selector.is_empty() {
        return LabelCheck::Empty;
    }
    for (key, values) in selector {
        let one: LabelSelector = BTreeMap::from([(key.clone(), values.clone())]);
        if !label_selector_matches(&one, labels, traits) {
            return LabelCheck::KeyFailed {
                key: key.clone(),
                patterns: values
                    .iter()
                    .flat_map(|v| expand_template(v, traits))
                    .collect(),
                actual: if key == "*" {
                    None
                } else {
                    labels.get(key).cloned()
                },
            };
        }
    }
    LabelCheck::Matched
}

// === impl Display ===

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
        } => {
            let does = if *rule_matched {
                "cover"
            } else {
                "do not cover"
            };
            write!(f, "rules {does} {verb} on {kind}")?;
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
