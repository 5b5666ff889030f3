//! Access requests: who may file one (`request`) and who may review one
//! (`review_requests`).
//!
//! Unlike the other kinds, a request names several roles, and the roles of
//! the user decide together: every requested role must be covered by some
//! role's allow side (not necessarily the same one), and a deny side that
//! covers any requested role denies the whole request.
//!
//! - **Filing**: a requested role is covered by `request.roles`, by the roles
//!   `request.claims_to_roles` yields from the user's traits, and — only for
//!   a request naming resources — by `request.search_as_roles`. The user
//!   files their own requests only; one naming no role is refused; if any
//!   of the user's roles sets `request.reason_required`, the reason must not
//!   be blank.
//! - **Reviewing**: a requested role is covered by `review_requests.roles`
//!   when `review_requests.where` (if set) holds; on the deny side, the
//!   `where` (if set) must hold too. A user never reviews their own request.
//!   `where` sees `request.user`, `request.roles`, `request.resources`,
//!   `request.reason`, `reviewer.name`, `reviewer.roles`,
//!   `reviewer.traits["k"]` (and `user.…`, the reviewer too).

use std::collections::BTreeSet;

use keygate_types::{Labels, RequestConditions, RoleConditions};
use serde_json::{Value, json};

use crate::decision::{Action, Denial, Hit, Identity, deny};
use crate::explain::Grant;
use crate::expression::{Outcome, evaluate_with};
use crate::labels::{any_matches, expanded, value_matches};
use crate::regexes::compiled;

/// An access request, as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// Who files it (or filed it).
    pub user: &'a str,
    /// The roles requested.
    pub roles: &'a [String],
    /// The resources requested (e.g. `/node/web-1`); empty for a request
    /// for whole roles.
    pub resources: &'a [String],
    /// Why (may be empty).
    pub reason: &'a str,
}

impl RequestFacts<'_> {
    /// The `request` document `where` predicates see.
    fn document(&self) -> Value {
        json!({
            "user": self.user,
            "roles": self.roles,
            "resources": self.resources,
            "reason": self.reason,
        })
    }
}

/// Checks that do not depend on roles: a user files only their own
/// requests, never reviews their own, and a request names a role.
pub(crate) fn precheck(
    id: &Identity,
    r: RequestFacts<'_>,
    action: Action<'_>,
) -> Result<(), Denial> {
    match action {
        Action::Request if r.user != id.user => Err(deny(
            None,
            "request.user",
            format!(
                "{:?} cannot file an access request for {:?}: users file their own requests",
                id.user, r.user
            ),
        )),
        Action::Review if r.user == id.user => Err(deny(
            None,
            "review.own_request",
            format!("{:?} cannot review their own access request", id.user),
        )),
        Action::Request | Action::Review if r.roles.is_empty() => Err(deny(
            None,
            "request.roles",
            "the access request names no role; name at least one role".to_owned(),
        )),
        _ => Ok(()),
    }
}

// === filing ===

/// The roles `claims_to_roles` yields from the user's traits (`$1` and
/// `${name}` in a mapping's roles refer to the groups of a `^regex$` value).
fn claim_roles(id: &Identity, rc: &RequestConditions) -> Vec<String> {
    let mut out = Vec::new();
    for m in &rc.claims_to_roles {
        for v in id.traits.get(&m.claim).into_iter().flatten() {
            if m.value.starts_with('^') && m.value.ends_with('$') {
                let Some(re) = compiled(&m.value) else {
                    continue;
                };
                let Some(caps) = re.captures(v) else {
                    continue;
                };
                for r in &m.roles {
                    let mut role = String::new();
                    caps.expand(r, &mut role);
                    if !role.is_empty() {
                        out.push(role);
                    }
                }
            } else if value_matches(&m.value, v) {
                out.extend(m.roles.iter().cloned());
            }
        }
    }
    out
}

/// The role patterns one side lets a user request, each with its field.
pub(crate) fn requestable(
    id: &Identity,
    c: &RoleConditions,
    with_resources: bool,
) -> Vec<(String, &'static str)> {
    let Some(rc) = &c.request else {
        return Vec::new();
    };
    let mut out: Vec<(String, &'static str)> = expanded(&rc.roles, &id.traits)
        .into_iter()
        .map(|p| (p, "request.roles"))
        .collect();
    out.extend(
        claim_roles(id, rc)
            .into_iter()
            .map(|p| (p, "request.claims_to_roles")),
    );
    if with_resources {
        out.extend(
            expanded(&rc.search_as_roles, &id.traits)
                .into_iter()
                .map(|p| (p, "request.search_as_roles")),
        );
    }
    out
}

/// The field of the first pattern covering `role`, if any.
fn covering_field(patterns: &[(String, &'static str)], role: &str) -> Option<&'static str> {
    patterns
        .iter()
        .find(|(p, _)| value_matches(p, role))
        .map(|(_, f)| *f)
}

pub(crate) fn deny_request(id: &Identity, c: &RoleConditions, r: RequestFacts<'_>) -> Option<Hit> {
    let patterns = requestable(id, c, !r.resources.is_empty());
    r.roles.iter().find_map(|role| {
        covering_field(&patterns, role)
            .map(|f| Hit::new(format!("deny.{f}"), format!("requesting role {role:?}")))
    })
}

/// One role's share of a request: the fields covering at least one
/// requested role, joined (None: it covers none).
pub(crate) fn allows_request(
    id: &Identity,
    c: &RoleConditions,
    r: RequestFacts<'_>,
) -> Option<String> {
    let patterns = requestable(id, c, !r.resources.is_empty());
    let fields: BTreeSet<&str> = r
        .roles
        .iter()
        .filter_map(|role| covering_field(&patterns, role))
        .collect();
    join_rules(&fields)
}

fn join_rules(fields: &BTreeSet<&str>) -> Option<String> {
    (!fields.is_empty()).then(|| {
        fields
            .iter()
            .map(|f| format!("allow.{f}"))
            .collect::<Vec<_>>()
            .join("+")
    })
}

fn grant_request(id: &Identity, r: RequestFacts<'_>) -> Result<Grant, Denial> {
    let with_resources = !r.resources.is_empty();
    let mut roles: Vec<&str> = Vec::new();
    let mut fields = BTreeSet::new();
    for wanted in r.roles {
        let found = id.roles.iter().find_map(|role| {
            covering_field(&requestable(id, &role.spec.allow, with_resources), wanted)
                .map(|f| (role.metadata.name.as_str(), f))
        });
        let Some((role, field)) = found else {
            let offered: Vec<String> = id
                .roles
                .iter()
                .flat_map(|role| requestable(id, &role.spec.allow, with_resources))
                .map(|(p, _)| p)
                .collect();
            return Err(deny(
                None,
                "no allow rule matched",
                format!(
                    "no role of {:?} allows requesting role {wanted:?}{}; requestable: {offered:?}",
                    id.user,
                    if with_resources { " for resources" } else { "" }
                ),
            ));
        };
        if !roles.contains(&role) {
            roles.push(role);
        }
        fields.insert(field);
    }
    let needs_reason = id.roles.iter().find(|role| {
        role.spec
            .allow
            .request
            .as_ref()
            .is_some_and(|rc| rc.reason_required == Some(true))
    });
    if let Some(role) = needs_reason
        && r.reason.trim().is_empty()
    {
        return Err(deny(
            Some(&role.metadata.name),
            "allow.request.reason_required",
            format!(
                "role {:?} requires a reason for access requests; say why the access is needed",
                role.metadata.name
            ),
        ));
    }
    Ok(Grant {
        role: roles.join(", "),
        rule: join_rules(&fields).unwrap_or_default(),
    })
}

// === reviewing ===

/// Evaluates a `review_requests.where` for this request and reviewer.
pub(crate) fn review_where(id: &Identity, src: &str, r: RequestFacts<'_>, deny: bool) -> Outcome {
    let request = r.document();
    let names: Vec<&str> = id.roles.iter().map(|r| r.metadata.name.as_str()).collect();
    let reviewer = json!({"name": id.user, "roles": names, "traits": id.traits});
    evaluate_with(
        src,
        id,
        &Labels::new(),
        &[("request", &request), ("reviewer", &reviewer)],
        deny,
    )
}

/// The requested roles a side's `review_requests.roles` name (before its
/// `where`).
pub(crate) fn reviewable<'r>(
    id: &Identity,
    c: &RoleConditions,
    r: RequestFacts<'r>,
) -> Vec<&'r str> {
    let Some(rc) = &c.review_requests else {
        return Vec::new();
    };
    r.roles
        .iter()
        .filter(|role| any_matches(&rc.roles, role, &id.traits))
        .map(String::as_str)
        .collect()
}

pub(crate) fn deny_review(id: &Identity, c: &RoleConditions, r: RequestFacts<'_>) -> Option<Hit> {
    let rc = c.review_requests.as_ref()?;
    let role = *reviewable(id, c, r).first()?;
    let detail = match &rc.where_ {
        None => String::new(),
        Some(src) => {
            let outcome = review_where(id, src, r, true);
            if !outcome.value {
                return None;
            }
            match outcome.error {
                Some(_) => format!(" where {src:?}, which does not parse and so denies"),
                None => format!(" where {src:?}, which holds"),
            }
        }
    };
    Some(
        Hit::new(
            "deny.review_requests",
            format!("reviewing a request for role {role:?}"),
        )
        .detail(detail),
    )
}

/// The requested roles one allow side covers (its `where` holding).
fn reviews(id: &Identity, c: &RoleConditions, r: RequestFacts<'_>) -> Vec<String> {
    let covered = reviewable(id, c, r);
    let holds = c
        .review_requests
        .as_ref()
        .and_then(|rc| rc.where_.as_deref())
        .is_none_or(|src| review_where(id, src, r, false).value);
    if holds {
        covered.into_iter().map(str::to_owned).collect()
    } else {
        Vec::new()
    }
}

pub(crate) fn allows_review(
    id: &Identity,
    c: &RoleConditions,
    r: RequestFacts<'_>,
) -> Option<String> {
    (!reviews(id, c, r).is_empty()).then(|| "allow.review_requests".to_owned())
}

fn grant_review(id: &Identity, r: RequestFacts<'_>) -> Result<Grant, Denial> {
    let per_role: Vec<(&str, Vec<String>)> = id
        .roles
        .iter()
        .map(|role| {
            (
                role.metadata.name.as_str(),
                reviews(id, &role.spec.allow, r),
            )
        })
        .collect();
    let mut roles: Vec<&str> = Vec::new();
    for wanted in r.roles {
        let Some((role, _)) = per_role
            .iter()
            .find(|(_, covered)| covered.contains(wanted))
        else {
            return Err(no_review(id, r, wanted));
        };
        if !roles.contains(role) {
            roles.push(role);
        }
    }
    Ok(Grant {
        role: roles.join(", "),
        rule: "allow.review_requests".to_owned(),
    })
}

/// Why no role covers reviewing `wanted`; the closest role names it but
/// its `where` does not hold.
fn no_review(id: &Identity, r: RequestFacts<'_>, wanted: &str) -> Denial {
    let closest = id
        .roles
        .iter()
        .find_map(|role| {
            let rc = role.spec.allow.review_requests.as_ref()?;
            let src = rc.where_.as_deref()?;
            any_matches(&rc.roles, wanted, &id.traits).then(|| {
                format!(
                    "; closest: role {:?} covers it where {src:?}, which does not hold",
                    role.metadata.name
                )
            })
        })
        .unwrap_or_default();
    deny(
        None,
        "no allow rule matched",
        format!(
            "no role of {:?} allows reviewing {:?}'s request for role {wanted:?}{closest}",
            id.user, r.user
        ),
    )
}

/// The decision for filing or reviewing, which all roles make together
/// (None: not a request action).
pub(crate) fn grant(
    id: &Identity,
    r: RequestFacts<'_>,
    action: Action<'_>,
) -> Option<Result<Grant, Denial>> {
    match action {
        Action::Request => Some(grant_request(id, r)),
        Action::Review => Some(grant_review(id, r)),
        _ => None,
    }
}
