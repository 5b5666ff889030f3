//! The roles every cluster has (created at start when missing).

use std::collections::BTreeMap;

use crate::resource::Kind;
use crate::{
    LabelSelector, LabelValues, RequestConditions, Resource, ReviewConditions, Role,
    RoleConditions, RoleSpec, Rule,
};

/// The roles `requester` may ask for and `reviewer` may review: everything
/// built in but `admin`, whose grant should be a deliberate role edit.
const REQUESTABLE: &[&str] = &["access", "auditor", "editor"];

fn wildcard() -> LabelSelector {
    BTreeMap::from([("*".to_owned(), LabelValues::One("*".to_owned()))])
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn rule(resources: &[&str], verbs: &[&str]) -> Rule {
    Rule {
        resources: strings(resources),
        verbs: strings(verbs),
        where_: None,
    }
}

fn role(name: &str, description: &str, allow: RoleConditions) -> Role {
    let mut r = Resource::new(
        Kind::Role,
        name,
        RoleSpec {
            allow,
            ..RoleSpec::default()
        },
    );
    r.metadata.description = Some(description.to_owned());
    r
}

/// The roles every cluster has:
///
/// | role | grants |
/// |---|---|
/// | `admin` | every admin verb; logins from traits on every node |
/// | `access` | logins from traits on every node; list/read nodes |
/// | `auditor` | list/read the audit log and recordings |
/// | `editor` | manage users, roles, locks, tokens, nodes; no logins |
/// | `requester` | request `access`, `auditor`, `editor`; create, list and read its own access requests |
/// | `reviewer` | review requests for those roles (never one's own); list and read access requests |
pub fn builtin_roles() -> Vec<Role> {
    let traits_logins = vec!["{{internal.logins}}".to_owned()];
    let admin = role(
        "admin",
        "Full control of the cluster; logins from the user's traits.",
        RoleConditions {
            logins: traits_logins.clone(),
            node_labels: wildcard(),
            rules: vec![rule(&["*"], &["*"])],
            ..RoleConditions::default()
        },
    );
    let access = role(
        "access",
        "Log in to every node with the logins in the user's traits.",
        RoleConditions {
            logins: traits_logins,
            node_labels: wildcard(),
            rules: vec![rule(&["node"], &["list", "read"])],
            ..RoleConditions::default()
        },
    );
    let auditor = role(
        "auditor",
        "Read the audit log and session recordings.",
        RoleConditions {
            rules: vec![rule(&["event", "session"], &["list", "read"])],
            ..RoleConditions::default()
        },
    );
    let editor = role(
        "editor",
        "Manage users, roles, locks, tokens and nodes; no logins, no audit log.",
        RoleConditions {
            rules: vec![rule(
                &[
                    "user",
                    "role",
                    "lock",
                    "token",
                    "node",
                    "auth_preference",
                    "access",
                    "certificate",
                ],
                &["*"],
            )],
            ..RoleConditions::default()
        },
    );
    let requester = role(
        "requester",
        "Request the access, auditor or editor role; see and file one's own access requests.",
        RoleConditions {
            request: Some(RequestConditions {
                roles: strings(REQUESTABLE),
                search_as_roles: strings(&["access"]),
                ..RequestConditions::default()
            }),
            rules: vec![Rule {
                where_: Some("resource.spec.user == user.name".to_owned()),
                ..rule(&["access_request"], &["create", "list", "read"])
            }],
            ..RoleConditions::default()
        },
    );
    let reviewer = role(
        "reviewer",
        "Approve or deny requests for the access, auditor or editor role (never one's own).",
        RoleConditions {
            review_requests: Some(ReviewConditions {
                roles: strings(REQUESTABLE),
                where_: None,
            }),
            rules: vec![rule(&["access_request"], &["list", "read"])],
            ..RoleConditions::default()
        },
    );
    vec![admin, access, auditor, editor, requester, reviewer]
}
