//! Node logins: `logins`, `node_labels`, `node_labels_expression`.

use std::collections::BTreeSet;

use keygate_types::{Labels, RoleConditions};

use crate::decision::{Hit, Identity};
use crate::expression::{evaluate, holds};
use crate::labels::{contains_expanded, label_selector_matches};
use crate::traits::expand_template;

pub(crate) fn expanded_logins(id: &Identity, c: &RoleConditions) -> BTreeSet<String> {
    c.logins
        .iter()
        .flat_map(|l| expand_template(l, &id.traits))
        .collect()
}

/// A deny side matches when its logins cover the login (`*` covers all), OR
/// its `node_labels` match, OR its `node_labels_expression` holds.
pub(crate) fn deny(
    id: &Identity,
    c: &RoleConditions,
    node: &str,
    labels: &Labels,
    login: &str,
) -> Option<Hit> {
    if contains_expanded(&c.logins, &id.traits, login)
        || contains_expanded(&c.logins, &id.traits, "*")
    {
        return Some(Hit::new("deny.logins", format!("login {login:?}")));
    }
    if label_selector_matches(&c.node_labels, labels, &id.traits) {
        return Some(Hit::new("deny.node_labels", format!("node {node:?}")));
    }
    let src = c.node_labels_expression.as_ref()?;
    let outcome = evaluate(src, id, labels, true);
    outcome.value.then(|| {
        let why = if outcome.error.is_some() {
            " does not parse, which denies every node"
        } else {
            " holds"
        };
        Hit::new("deny.node_labels_expression", format!("node {node:?}"))
            .detail(format!(" {src:?}{why}"))
    })
}

/// An allow side matches when its logins cover the login AND the node
/// conditions hold (see [`allow_node_matches`]).
pub(crate) fn allows(
    id: &Identity,
    c: &RoleConditions,
    labels: &Labels,
    login: &str,
) -> Option<String> {
    // `*` and names no OS account can have are never a login, whatever a
    // role lists (certificates never carry them either).
    let login_ok = contains_expanded(&c.logins, &id.traits, login)
        && login.parse::<keygate_types::Login>().is_ok();
    (login_ok && allow_node_matches(id, c, labels)).then(|| allow_node_rule(c).to_owned())
}

/// Does one role's allow side reach this node? `node_labels` (when set)
/// must match AND `node_labels_expression` (when set) must hold; a role with
/// only an expression reaches the nodes where it holds, and a role with
/// neither reaches no node (deny by default).
pub(crate) fn allow_node_matches(id: &Identity, c: &RoleConditions, labels: &Labels) -> bool {
    let expr = c.node_labels_expression.as_deref();
    if c.node_labels.is_empty() && expr.is_none() {
        return false;
    }
    (c.node_labels.is_empty() || label_selector_matches(&c.node_labels, labels, &id.traits))
        && expr.is_none_or(|src| holds(src, id, labels, false))
}

/// The rule name a node-login grant carries, naming the node conditions used.
pub(crate) fn allow_node_rule(c: &RoleConditions) -> &'static str {
    match (c.node_labels.is_empty(), c.node_labels_expression.is_some()) {
        (false, true) => "allow.logins+allow.node_labels+allow.node_labels_expression",
        (true, true) => "allow.logins+allow.node_labels_expression",
        _ => "allow.logins+allow.node_labels",
    }
}

/// Why no role allows the login, naming the closest role: one that reaches
/// the node, with the logins it would allow there.
pub(crate) fn no_allow(id: &Identity, node: &str, labels: &Labels, login: &str) -> String {
    let closest = id
        .roles
        .iter()
        .find(|r| allow_node_matches(id, &r.spec.allow, labels))
        .map(|r| {
            let logins: Vec<String> = expanded_logins(id, &r.spec.allow).into_iter().collect();
            format!(
                "; closest: role {:?} allows logins {logins:?} there",
                r.metadata.name
            )
        })
        .unwrap_or_default();
    format!(
        "no role of {:?} allows login {login:?} on node {node:?} (labels {labels:?}){closest}",
        id.user
    )
}

/// The logins a certificate for `id` carries: every allowed login (traits
/// expanded) minus every denied one; wildcards never become principals.
pub fn allowed_logins(id: &Identity) -> Vec<String> {
    let denied: BTreeSet<String> = id
        .roles
        .iter()
        .flat_map(|r| expanded_logins(id, &r.spec.deny))
        .collect();
    if denied.contains("*") {
        // `deny.logins: ['*']` denies every login, so the certificate
        // must carry none (sshd would otherwise accept them).
        return Vec::new();
    }
    let allowed: BTreeSet<String> = id
        .roles
        .iter()
        .flat_map(|r| expanded_logins(id, &r.spec.allow))
        .collect();
    allowed
        .into_iter()
        .filter(|l| !denied.contains(l) && l != "*" && l.parse::<keygate_types::Login>().is_ok())
        .collect()
}
