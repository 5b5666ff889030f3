//! Databases (`db_labels`, `db_names`, `db_users`) and apps (`app_labels`).
//!
//! Like node logins: an allow side matches when its label selector matches
//! the resource AND (for a database) its `db_users` cover the database user
//! AND its `db_names` cover the database name; a deny side matches when ANY
//! of them does. Names and users are patterns (exact, `*`, globs,
//! `^regex$`, templates); an empty selector matches nothing.

use keygate_types::{Labels, RoleConditions};

use crate::decision::{Hit, Identity};
use crate::labels::{any_matches, expanded, label_selector_matches};

pub(crate) fn deny_db(
    id: &Identity,
    c: &RoleConditions,
    db: &str,
    labels: &Labels,
    db_user: &str,
    db_name: &str,
) -> Option<Hit> {
    if label_selector_matches(&c.db_labels, labels, &id.traits) {
        return Some(Hit::new("deny.db_labels", format!("database {db:?}")));
    }
    if any_matches(&c.db_users, db_user, &id.traits) {
        return Some(Hit::new(
            "deny.db_users",
            format!("database user {db_user:?}"),
        ));
    }
    any_matches(&c.db_names, db_name, &id.traits)
        .then(|| Hit::new("deny.db_names", format!("database name {db_name:?}")))
}

/// Does the allow side reach this database (its labels)?
pub(crate) fn reaches_db(id: &Identity, c: &RoleConditions, labels: &Labels) -> bool {
    label_selector_matches(&c.db_labels, labels, &id.traits)
}

pub(crate) fn allows_db(
    id: &Identity,
    c: &RoleConditions,
    labels: &Labels,
    db_user: &str,
    db_name: &str,
) -> Option<String> {
    (reaches_db(id, c, labels)
        && any_matches(&c.db_users, db_user, &id.traits)
        && any_matches(&c.db_names, db_name, &id.traits))
    .then(|| "allow.db_labels+allow.db_users+allow.db_names".to_owned())
}

/// Why no role allows the connection; the closest role reaches the
/// database, with the users and names it allows there.
pub(crate) fn no_allow_db(
    id: &Identity,
    db: &str,
    labels: &Labels,
    db_user: &str,
    db_name: &str,
) -> String {
    let closest = id
        .roles
        .iter()
        .find(|r| reaches_db(id, &r.spec.allow, labels))
        .map(|r| {
            format!(
                "; closest: role {:?} allows db users {:?} and db names {:?} there",
                r.metadata.name,
                expanded(&r.spec.allow.db_users, &id.traits),
                expanded(&r.spec.allow.db_names, &id.traits),
            )
        })
        .unwrap_or_default();
    format!(
        "no role of {:?} allows connecting to database {db:?} as {db_user:?} to {db_name:?} (labels {labels:?}){closest}",
        id.user
    )
}

pub(crate) fn deny_app(
    id: &Identity,
    c: &RoleConditions,
    app: &str,
    labels: &Labels,
) -> Option<Hit> {
    label_selector_matches(&c.app_labels, labels, &id.traits)
        .then(|| Hit::new("deny.app_labels", format!("app {app:?}")))
}

pub(crate) fn allows_app(id: &Identity, c: &RoleConditions, labels: &Labels) -> Option<String> {
    label_selector_matches(&c.app_labels, labels, &id.traits).then(|| "allow.app_labels".to_owned())
}

pub(crate) fn no_allow_app(id: &Identity, app: &str, labels: &Labels) -> String {
    format!(
        "no role of {:?} allows app {app:?} (labels {labels:?}): no app_labels match it",
        id.user
    )
}
