//! Admin API verbs: `rules` of `resources`, `verbs` and an optional `where`.
//!
//! A rule covers a verb on a kind when its `resources` hold the kind (or
//! `*`) and its `verbs` the verb (or `*`). Its `where`, when set, narrows it
//! to the items for which the predicate holds:
//!
//! - **One item** ([`Target::Resource`](crate::Target::Resource)): a deny
//!   rule denies when it has no `where` or its `where` holds; an allow rule
//!   allows when it has no `where` or its `where` holds.
//! - **A kind** ([`Target::Kind`](crate::Target::Kind), e.g. `list`): only
//!   deny rules without `where` deny; an allow rule allows with or without
//!   `where` — the grant's rule is then `allow.rules.where`, and the caller
//!   keeps only the items [`rule_filter`] matches.
//!
//! A `where` that does not parse (only a role stored by another build can
//! carry one) never holds on the allow side and always holds on the deny
//! side.

use keygate_types::{Labels, RoleConditions, Rule};
use serde_json::Value;

use crate::decision::{Action, Hit, Identity, Target, decide_roles};
use crate::expression::{Outcome, evaluate_with};

/// Does a rule cover `verb` on `kind` (ignoring its `where`)?
pub(crate) fn rule_matches(r: &Rule, kind: &str, verb: &str) -> bool {
    r.resources.iter().any(|k| k == "*" || k == kind)
        && r.verbs.iter().any(|v| v == "*" || v == verb)
}

/// The item's `metadata.labels` (string values), for `labels["k"]`.
fn item_labels(item: &Value) -> Labels {
    item.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// How an item reads in messages: its kind and, when it has one, its name.
fn item_subject(verb: &str, kind: &str, item: &Value) -> String {
    match item.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => format!("{verb} on {kind} {name:?}"),
        None => format!("{verb} on this {kind}"),
    }
}

/// Evaluates a rule's `where` on one item: the item is `resource` (and
/// `session` for a session), its `metadata.labels` are `labels`, the caller
/// is `user`.
pub(crate) fn where_outcome(
    id: &Identity,
    src: &str,
    kind: &str,
    item: &Value,
    deny: bool,
) -> Outcome {
    let labels = item_labels(item);
    let mut fields: Vec<(&str, &Value)> = vec![("resource", item)];
    if kind == "session" {
        fields.push(("session", item));
    }
    evaluate_with(src, id, &labels, &fields, deny)
}

pub(crate) fn deny_kind(c: &RoleConditions, kind: &str, verb: &str) -> Option<Hit> {
    c.rules
        .iter()
        .any(|r| r.where_.is_none() && rule_matches(r, kind, verb))
        .then(|| Hit::new("deny.rules", format!("{verb} on {kind}")))
}

pub(crate) fn deny_item(
    id: &Identity,
    c: &RoleConditions,
    kind: &str,
    item: &Value,
    verb: &str,
) -> Option<Hit> {
    c.rules
        .iter()
        .filter(|r| rule_matches(r, kind, verb))
        .find_map(|r| {
            let detail = match &r.where_ {
                None => String::new(),
                Some(src) => {
                    let outcome = where_outcome(id, src, kind, item, true);
                    if !outcome.value {
                        return None;
                    }
                    match outcome.error {
                        Some(_) => {
                            format!(" where {src:?}, which does not parse and so denies every item")
                        }
                        None => format!(" where {src:?}, which holds"),
                    }
                }
            };
            Some(Hit::new("deny.rules", item_subject(verb, kind, item)).detail(detail))
        })
}

pub(crate) fn allows_kind(c: &RoleConditions, kind: &str, verb: &str) -> Option<String> {
    let mut covering = c.rules.iter().filter(|r| rule_matches(r, kind, verb));
    let first = covering.next()?;
    let unconditional = first.where_.is_none() || covering.any(|r| r.where_.is_none());
    Some(if unconditional {
        "allow.rules".to_owned()
    } else {
        "allow.rules.where".to_owned()
    })
}

pub(crate) fn allows_item(
    id: &Identity,
    c: &RoleConditions,
    kind: &str,
    item: &Value,
    verb: &str,
) -> Option<String> {
    let covering: Vec<&Rule> = c
        .rules
        .iter()
        .filter(|r| rule_matches(r, kind, verb))
        .collect();
    if covering.iter().any(|r| r.where_.is_none()) {
        return Some("allow.rules".to_owned());
    }
    covering
        .iter()
        .filter_map(|r| r.where_.as_deref())
        .any(|src| where_outcome(id, src, kind, item, false).value)
        .then(|| "allow.rules.where".to_owned())
}

/// Why no role allows the verb on the kind; the closest role covers the
/// kind with other verbs.
pub(crate) fn no_allow_kind(id: &Identity, kind: &str, verb: &str) -> String {
    let closest = id
        .roles
        .iter()
        .find_map(|role| {
            let verbs: Vec<&str> = role
                .spec
                .allow
                .rules
                .iter()
                .filter(|r| r.resources.iter().any(|k| k == "*" || k == kind))
                .flat_map(|r| r.verbs.iter().map(String::as_str))
                .collect();
            (!verbs.is_empty()).then(|| {
                format!(
                    "; closest: role {:?} allows {verbs:?} on {kind}",
                    role.metadata.name
                )
            })
        })
        .unwrap_or_default();
    format!("no role of {:?} allows {verb} on {kind}{closest}", id.user)
}

/// Why no role allows the verb on this item; the closest role covers the
/// verb with a `where` that does not hold for it.
pub(crate) fn no_allow_item(id: &Identity, kind: &str, item: &Value, verb: &str) -> String {
    let closest = id.roles.iter().find_map(|role| {
        role.spec
            .allow
            .rules
            .iter()
            .filter(|r| rule_matches(r, kind, verb))
            .find_map(|r| r.where_.as_deref())
            .map(|src| {
                format!(
                    "; closest: role {:?} allows {verb} on {kind} where {src:?}, which does not hold for it",
                    role.metadata.name
                )
            })
    });
    match closest {
        Some(closest) => format!(
            "no role of {:?} allows {}{closest}",
            id.user,
            item_subject(verb, kind, item)
        ),
        None => no_allow_kind(id, kind, verb),
    }
}

/// Which items of one kind a verb reaches, for a caller that lists or
/// watches a kind: [`authorize`](crate::authorize) on
/// [`Target::Kind`](crate::Target::Kind) decides whether the verb is
/// allowed at all (locks included), then each item is kept only when
/// [`ResourceFilter::matches`] says so.
#[derive(Debug, Clone, Copy)]
pub struct ResourceFilter<'a> {
    /// Whose access.
    id: &'a Identity,
    /// The resource kind the items are of.
    kind: &'a str,
    /// The verb (`list`, `read`, `watch`, …).
    verb: &'a str,
}

/// The filter for `verb` on items of `kind`, with the same rules and
/// `where` predicates [`authorize`](crate::authorize) applies to one
/// [`Target::Resource`](crate::Target::Resource).
pub fn rule_filter<'a>(id: &'a Identity, kind: &'a str, verb: &'a str) -> ResourceFilter<'a> {
    ResourceFilter { id, kind, verb }
}

impl ResourceFilter<'_> {
    /// Is the verb allowed on this item (the JSON of one resource, shaped
    /// `kind / version / metadata / spec`)? Exactly what `authorize` answers
    /// for `Target::Resource` without locks, which the kind-level check
    /// covered.
    pub fn matches(&self, item: &Value) -> bool {
        let target = Target::Resource {
            kind: self.kind,
            item,
        };
        decide_roles(self.id, target, Action::Verb(self.verb)).is_ok()
    }

    /// No item can match: no rule allows the verb on the kind, or a deny
    /// rule without `where` forbids it (the caller can skip the listing).
    pub fn matches_nothing(&self) -> bool {
        let roles = &self.id.roles;
        roles
            .iter()
            .any(|r| deny_kind(&r.spec.deny, self.kind, self.verb).is_some())
            || !roles
                .iter()
                .any(|r| allows_kind(&r.spec.allow, self.kind, self.verb).is_some())
    }

    /// Every item matches: an allow rule without `where` covers the verb and
    /// no deny rule does (with or without `where`); no filtering needed.
    pub fn matches_everything(&self) -> bool {
        let (kind, verb) = (self.kind, self.verb);
        let roles = &self.id.roles;
        !roles.iter().any(|r| {
            r.spec
                .deny
                .rules
                .iter()
                .any(|rule| rule_matches(rule, kind, verb))
        }) && roles
            .iter()
            .any(|r| allows_kind(&r.spec.allow, kind, verb).as_deref() == Some("allow.rules"))
    }
}
