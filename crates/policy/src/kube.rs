//! Kubernetes: `kubernetes_groups`, `kubernetes_users`,
//! `kubernetes_resources`.
//!
//! The role schema has no cluster labels, so a role speaks about every
//! cluster alike; what it allows is decided by the group or user to
//! impersonate, or by the verb and the resource. Values are patterns
//! (exact, `*`, globs, `^regex$`; groups and users may be templates). A
//! `kubernetes_resources` entry matches when its kind, namespace and name
//! patterns match and its verbs hold the verb (or `*`); an empty namespace
//! matches only cluster-wide resources and an empty name only a request for
//! the whole collection (name `""`), which `*` also covers.

use keygate_types::{KubernetesResource, RoleConditions};

use crate::decision::{Action, Hit, Identity};
use crate::labels::{any_matches, expanded, value_matches};

/// One Kubernetes API object (or collection) a verb is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubeResource<'a> {
    /// Kind, as roles write it (`pod`, `deployment`, `secret`, …).
    pub kind: &'a str,
    /// Namespace; `""` for cluster-wide resources.
    pub namespace: &'a str,
    /// Name; `""` for the whole collection (`list`, `watch`, `create`).
    pub name: &'a str,
}

impl std::fmt::Display for KubeResource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.name.is_empty() { "*" } else { self.name };
        if self.namespace.is_empty() {
            write!(f, "{} {name}", self.kind)
        } else {
            write!(f, "{} {}/{name}", self.kind, self.namespace)
        }
    }
}

/// Does a role entry cover this resource, whatever the verb?
pub(crate) fn entry_reaches(e: &KubernetesResource, r: KubeResource<'_>) -> bool {
    value_matches(&e.kind, r.kind)
        && value_matches(&e.namespace, r.namespace)
        && value_matches(&e.name, r.name)
}

/// Does a role entry cover this verb on this resource?
pub(crate) fn entry_matches(e: &KubernetesResource, verb: &str, r: KubeResource<'_>) -> bool {
    entry_reaches(e, r) && e.verbs.iter().any(|v| v == "*" || v == verb)
}

/// An entry as messages and explanations show it.
pub(crate) fn entry_text(e: &KubernetesResource) -> String {
    let ns = if e.namespace.is_empty() {
        String::new()
    } else {
        format!("{}/", e.namespace)
    };
    let name: &str = if e.name.is_empty() { "\"\"" } else { &e.name };
    format!("{} {ns}{name} [{}]", e.kind, e.verbs.join(", "))
}

/// What the action asks for, as messages say it (None: not a Kubernetes
/// action).
pub(crate) fn subject(action: Action<'_>) -> Option<String> {
    match action {
        Action::KubernetesGroup(g) => Some(format!("kubernetes group {g:?}")),
        Action::KubernetesUser(u) => Some(format!("kubernetes user {u:?}")),
        Action::KubernetesVerb { verb, resource } => Some(format!("{verb} on {resource}")),
        _ => None,
    }
}

/// The field a side's match comes from, and whether it matches.
pub(crate) fn side_matches(
    id: &Identity,
    c: &RoleConditions,
    action: Action<'_>,
) -> Option<(&'static str, bool)> {
    match action {
        Action::KubernetesGroup(g) => Some((
            "kubernetes_groups",
            any_matches(&c.kubernetes_groups, g, &id.traits),
        )),
        Action::KubernetesUser(u) => Some((
            "kubernetes_users",
            any_matches(&c.kubernetes_users, u, &id.traits),
        )),
        Action::KubernetesVerb { verb, resource } => Some((
            "kubernetes_resources",
            c.kubernetes_resources
                .iter()
                .any(|e| entry_matches(e, verb, resource)),
        )),
        _ => None,
    }
}

/// The side's patterns for this action, templates expanded.
pub(crate) fn patterns(id: &Identity, c: &RoleConditions, action: Action<'_>) -> Vec<String> {
    match action {
        Action::KubernetesGroup(_) => expanded(&c.kubernetes_groups, &id.traits),
        Action::KubernetesUser(_) => expanded(&c.kubernetes_users, &id.traits),
        Action::KubernetesVerb { .. } => c.kubernetes_resources.iter().map(entry_text).collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn deny(id: &Identity, c: &RoleConditions, action: Action<'_>) -> Option<Hit> {
    let (field, matched) = side_matches(id, c, action)?;
    let rule = match field {
        "kubernetes_groups" => "deny.kubernetes_groups",
        "kubernetes_users" => "deny.kubernetes_users",
        _ => "deny.kubernetes_resources",
    };
    matched.then(|| Hit::new(rule, subject(action).unwrap_or_default()))
}

pub(crate) fn allows(id: &Identity, c: &RoleConditions, action: Action<'_>) -> Option<String> {
    let (field, matched) = side_matches(id, c, action)?;
    matched.then(|| format!("allow.{field}"))
}

/// Why no role allows it; for a verb, the closest role reaches the resource
/// with other verbs; for a group or user, the ones the roles allow.
pub(crate) fn no_allow(id: &Identity, cluster: &str, action: Action<'_>) -> String {
    let what = subject(action).unwrap_or_default();
    let closest = match action {
        Action::KubernetesVerb { resource, .. } => id
            .roles
            .iter()
            .find_map(|role| {
                let verbs: Vec<&str> = role
                    .spec
                    .allow
                    .kubernetes_resources
                    .iter()
                    .filter(|e| entry_reaches(e, resource))
                    .flat_map(|e| e.verbs.iter().map(String::as_str))
                    .collect();
                (!verbs.is_empty()).then(|| {
                    format!(
                        "; closest: role {:?} allows verbs {verbs:?} on {resource}",
                        role.metadata.name
                    )
                })
            })
            .unwrap_or_default(),
        _ => {
            let allowed: Vec<String> = id
                .roles
                .iter()
                .flat_map(|r| patterns(id, &r.spec.allow, action))
                .collect();
            if allowed.is_empty() {
                String::new()
            } else {
                format!("; the roles allow {allowed:?}")
            }
        }
    };
    format!(
        "no role of {:?} allows {what} on kubernetes cluster {cluster:?}{closest}",
        id.user
    )
}
