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
//!
//! Every kind of target is explained: node logins, admin verbs (with each
//! `where` evaluated for one resource), Kubernetes, databases, apps, and
//! access requests and reviews — for those, which all roles decide together,
//! each allow step says which requested roles that role covers, and
//! `decided_by` points at the first granting role's step.

use std::collections::BTreeMap;

use keygate_types::{LabelSelector, Labels, Lock, RoleConditions};
use time::OffsetDateTime;

use crate::admin::{rule_matches, where_outcome};
use crate::decision::{
    AccessContext, Action, Denial, Identity, Target, allows, check_deny, check_locks, no_allow,
    precheck,
};
use crate::expression::{Outcome, evaluate};
use crate::labels::{any_matches, expanded, label_selector_matches};
use crate::node::expanded_logins;
use crate::traits::expand_template;
use crate::{kube, requests};

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
    /// matched and the default (deny) applied, or when a check outside the
    /// steps decided (one's own access request, a missing reason).
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
    /// `allow.rules.where`, `role`, and the `deny.…`/`allow.…` fields of the
    /// other kinds); `None` when this side of the role does not match.
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
    /// An admin verb on a resource kind, or on one resource.
    AdminVerb {
        /// Resource kind.
        kind: String,
        /// Verb.
        verb: String,
        /// Whether one of the role's `rules` on this side covers it
        /// (`where` aside).
        rule_matched: bool,
        /// Whether a covering rule has no `where`.
        unconditional: bool,
        /// For one resource: the `where` of each covering rule, evaluated
        /// on it. Empty for a kind (they are not evaluated there).
        conditions: Vec<ExpressionCheck>,
    },
    /// Kubernetes: a group, a user, or a verb on a resource.
    Kubernetes {
        /// What is asked, e.g. `kubernetes group "viewers"` or
        /// `exec on pod default/web`.
        request: String,
        /// The role's patterns on this side for it (templates expanded;
        /// resource entries as `kind namespace/name [verbs]`).
        patterns: Vec<String>,
        /// Whether one of them covers the request.
        matched: bool,
    },
    /// A database connection.
    Database {
        /// The database user asked for.
        db_user: String,
        /// The database name asked for.
        db_name: String,
        /// The role's `db_users` on this side after trait expansion.
        users: Vec<String>,
        /// The role's `db_names` on this side after trait expansion.
        names: Vec<String>,
        /// Whether `users` covers `db_user`.
        user_matched: bool,
        /// Whether `names` covers `db_name`.
        name_matched: bool,
        /// The role's `db_labels` on this side against the database.
        db_labels: LabelCheck,
    },
    /// Opening an app.
    App {
        /// The role's `app_labels` on this side against the app.
        app_labels: LabelCheck,
    },
    /// Filing or reviewing an access request.
    AccessRequest {
        /// Reviewing (true) or filing (false).
        review: bool,
        /// The roles the request names.
        requested: Vec<String>,
        /// The role patterns this side offers (`request.roles`, roles from
        /// `claims_to_roles`, `search_as_roles` for resource requests; or
        /// `review_requests.roles`).
        patterns: Vec<String>,
        /// The requested roles those patterns cover.
        covered: Vec<String>,
        /// `review_requests.where` on this side, evaluated, if it has one.
        condition: Option<ExpressionCheck>,
    },
    /// Issuing a certificate (any role allows it; deny never applies).
    Certificate,
    /// A target/action pair no role condition speaks about.
    NotApplicable,
}

/// How an expression (`node_labels_expression`, a `where`) fared.
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
    // The first decisive check wins; `at` is the step it is recorded as.
    let mut decide = |at: Option<usize>, d: Result<Grant, Denial>| {
        if decision.is_none() {
            decision = Some(d);
            decided_by = at;
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
            decide(Some(steps.len()), Err(d));
            steps.push(Step::Lock(lock_step(lock)));
        }
    }
    if let Err(d) = precheck(id, target, action) {
        decide(None, Err(d));
    }
    for role in &id.roles {
        let verdict = check_deny(id, role, &role.spec.deny, target, action);
        let matched = verdict.as_ref().err().map(|d| d.rule.clone());
        if let Err(d) = verdict {
            decide(Some(steps.len()), Err(d));
        }
        steps.push(Step::Deny(RoleStep {
            role: role.metadata.name.clone(),
            matched,
            check: check_of(id, &role.spec.deny, target, action, true),
        }));
    }
    // Requests and reviews are granted by all roles together: the steps
    // show each role's share, the decision is the joint one.
    let joint = match target {
        Target::AccessRequest(r) => requests::grant(id, r, action),
        _ => None,
    };
    let first_allow = steps.len();
    for role in &id.roles {
        let matched = allows(id, &role.spec.allow, target, action);
        if let (Some(rule), None) = (&matched, &joint) {
            decide(
                Some(steps.len()),
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
    if let Some(joint) = joint {
        let at = joint.as_ref().ok().and_then(|g| {
            let first = g.role.split(", ").next().unwrap_or_default();
            steps
                .iter()
                .enumerate()
                .skip(first_allow)
                .find(|(_, s)| matches!(s, Step::Allow(r) if r.role == first))
                .map(|(i, _)| i)
        });
        decide(at, joint);
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
                node_labels_expression: c
                    .node_labels_expression
                    .as_ref()
                    .map(|src| expression_check(src, evaluate(src, id, labels, deny))),
            }
        }
        (Target::Kind(kind), Action::Verb(verb)) => admin_check(c, kind, verb, |_| None),
        (Target::Resource { kind, item }, Action::Verb(verb)) => {
            admin_check(c, kind, verb, |src| {
                Some(where_outcome(id, src, kind, item, deny))
            })
        }
        (Target::Certificate, Action::Issue) => Check::Certificate,
        (Target::Kubernetes { .. }, _) => {
            match (kube::subject(action), kube::side_matches(id, c, action)) {
                (Some(request), Some((_, matched))) => Check::Kubernetes {
                    request,
                    patterns: kube::patterns(id, c, action),
                    matched,
                },
                _ => Check::NotApplicable,
            }
        }
        (Target::Database { labels, .. }, Action::DatabaseConnect { db_user, db_name }) => {
            Check::Database {
                db_user: db_user.to_owned(),
                db_name: db_name.to_owned(),
                users: expanded(&c.db_users, &id.traits),
                names: expanded(&c.db_names, &id.traits),
                user_matched: any_matches(&c.db_users, db_user, &id.traits),
                name_matched: any_matches(&c.db_names, db_name, &id.traits),
                db_labels: label_check(&c.db_labels, labels, &id.traits),
            }
        }
        (Target::App { labels, .. }, Action::AppAccess) => Check::App {
            app_labels: label_check(&c.app_labels, labels, &id.traits),
        },
        (Target::AccessRequest(r), Action::Request) => {
            let patterns = requests::requestable(id, c, !r.resources.is_empty());
            Check::AccessRequest {
                review: false,
                requested: r.roles.to_vec(),
                covered: r
                    .roles
                    .iter()
                    .filter(|role| patterns.iter().any(|(p, _)| crate::value_matches(p, role)))
                    .cloned()
                    .collect(),
                patterns: patterns.into_iter().map(|(p, _)| p).collect(),
                condition: None,
            }
        }
        (Target::AccessRequest(r), Action::Review) => {
            let rc = c.review_requests.as_ref();
            Check::AccessRequest {
                review: true,
                requested: r.roles.to_vec(),
                patterns: rc
                    .map(|rc| expanded(&rc.roles, &id.traits))
                    .unwrap_or_default(),
                covered: requests::reviewable(id, c, r)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                condition: rc
                    .and_then(|rc| rc.where_.as_ref())
                    .map(|src| expression_check(src, requests::review_where(id, src, r, deny))),
            }
        }
        _ => Check::NotApplicable,
    }
}

fn expression_check(src: &str, outcome: Outcome) -> ExpressionCheck {
    ExpressionCheck {
        expression: src.to_owned(),
        holds: outcome.value,
        error: outcome.error,
    }
}

/// The rules of one side about a verb on a kind; `eval` evaluates a
/// `where` on the resource, when there is one.
fn admin_check(
    c: &RoleConditions,
    kind: &str,
    verb: &str,
    eval: impl Fn(&str) -> Option<Outcome>,
) -> Check {
    let covering: Vec<_> = c
        .rules
        .iter()
        .filter(|r| rule_matches(r, kind, verb))
        .collect();
    Check::AdminVerb {
        kind: kind.to_owned(),
        verb: verb.to_owned(),
        rule_matched: !covering.is_empty(),
        unconditional: covering.iter().any(|r| r.where_.is_none()),
        conditions: covering
            .iter()
            .filter_map(|r| r.where_.as_deref())
            .filter_map(|src| eval(src).map(|o| expression_check(src, o)))
            .collect(),
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
