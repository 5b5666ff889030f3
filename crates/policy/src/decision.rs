//! The decision: who asks ([`Identity`]), what about ([`Target`]), to do
//! what ([`Action`]), and the one function that answers ([`authorize`]).
//! Each kind's conditions live in their own module; this one orders them.

use std::collections::BTreeMap;
use std::fmt;

use keygate_types::{Lock, LockTarget, Role, RoleConditions};
use serde_json::Value;
use time::OffsetDateTime;

use crate::kube::KubeResource;
use crate::requests::RequestFacts;
use crate::{admin, db_app, kube, node, requests};

pub use crate::node::allowed_logins;

/// Who is asking: the user, their resolved roles and traits.
#[derive(Debug, Clone)]
pub struct Identity {
    /// User name.
    pub user: String,
    /// The user's roles, resolved from names by the caller.
    pub roles: Vec<Role>,
    /// The user's traits (local traits or SSO claims).
    pub traits: BTreeMap<String, Vec<String>>,
}

/// What is being accessed. Each target goes with some actions (see
/// [`Action`]); a pair that does not go together is allowed by nothing.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A server. Actions: [`Action::Login`].
    Node {
        /// Node name.
        name: &'a str,
        /// Node id.
        id: &'a str,
        /// Authoritative labels.
        labels: &'a keygate_types::Labels,
    },
    /// An admin API resource kind (`user`, `role`, `event`, …) as a whole —
    /// e.g. to list it. Actions: [`Action::Verb`]. An allow rule with a
    /// `where` allows here (rule `allow.rules.where`); the caller then keeps
    /// the items [`rule_filter`](crate::rule_filter) matches.
    Kind(&'a str),
    /// One admin API resource, as JSON shaped `kind / version / metadata /
    /// spec` (a new one for `create`). Actions: [`Action::Verb`]. Rules'
    /// `where` predicates are evaluated on it.
    Resource {
        /// Its kind, as rules name it.
        kind: &'a str,
        /// The resource.
        item: &'a Value,
    },
    /// Issuing a certificate to the identity itself. Actions:
    /// [`Action::Issue`].
    Certificate,
    /// A Kubernetes cluster. Actions: [`Action::KubernetesGroup`],
    /// [`Action::KubernetesUser`], [`Action::KubernetesVerb`].
    Kubernetes {
        /// Cluster name (roles have no cluster labels: it is for messages).
        cluster: &'a str,
    },
    /// A database. Actions: [`Action::DatabaseConnect`].
    Database {
        /// Database (service) name.
        name: &'a str,
        /// Its labels.
        labels: &'a keygate_types::Labels,
    },
    /// A web application. Actions: [`Action::AppAccess`].
    App {
        /// App name.
        name: &'a str,
        /// Its labels.
        labels: &'a keygate_types::Labels,
    },
    /// An access request. Actions: [`Action::Request`] (the identity files
    /// it), [`Action::Review`] (the identity approves or denies it).
    AccessRequest(RequestFacts<'a>),
}

/// What is being done.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Log in to a node as this OS login.
    Login(&'a str),
    /// An admin verb (`list`, `read`, `create`, `update`, `delete`, …).
    Verb(&'a str),
    /// Obtain a certificate (login, renewal).
    Issue,
    /// Impersonate this Kubernetes group.
    KubernetesGroup(&'a str),
    /// Impersonate this Kubernetes user.
    KubernetesUser(&'a str),
    /// A Kubernetes API verb (`get`, `list`, `exec`, …) on a resource.
    KubernetesVerb {
        /// The verb.
        verb: &'a str,
        /// What it is on.
        resource: KubeResource<'a>,
    },
    /// Connect to a database.
    DatabaseConnect {
        /// The database user to connect as.
        db_user: &'a str,
        /// The database (schema) name to open; `""` when the protocol has
        /// none.
        db_name: &'a str,
    },
    /// Open a web application.
    AppAccess,
    /// File the access request (the identity is the requester).
    Request,
    /// Review the access request (the identity is the reviewer).
    Review,
}

/// Facts about the moment of the decision that are not part of the roles.
#[derive(Debug, Clone, Default)]
pub struct AccessContext<'a> {
    /// Locks in force (expired ones are ignored by `authorize`).
    pub locks: &'a [Lock],
    /// Certificate serial being used, if any (for serial locks).
    pub serial: Option<u64>,
    /// MFA device used, if any.
    pub mfa_device: Option<&'a str>,
    /// The live session being (re)checked, if any (for session locks).
    pub session_id: Option<&'a str>,
}

/// Proof that `authorize` allowed something. Only this crate can make one,
/// so privileged functions taking `&Permit` cannot be reached without the
/// check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    /// The role that granted access (for access requests and reviews, which
    /// several roles may grant together: their names, joined by `, `).
    role: String,
    /// The rule within it.
    rule: String,
}

impl Permit {
    /// A permit granted by `role` under `rule` (only this crate decides).
    pub(crate) fn new(role: String, rule: String) -> Self {
        Self { role, rule }
    }

    /// The granting role (or roles, joined by `, `).
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The granting rule, e.g. `allow.logins+allow.node_labels` or
    /// `allow.rules.where` (granted by a rule with a `where`: for a
    /// [`Target::Kind`], filter the items).
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

/// Why access was refused: the deciding role and rule when one exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The role whose rule decided (None: nothing allowed it, or a rule that
    /// belongs to no role — a lock, one's own access request).
    pub role: Option<String>,
    /// The rule, e.g. `deny.logins`, `lock` or `no allow rule matched`.
    pub rule: String,
    /// One sentence for the user.
    pub reason: String,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Denial {}

pub(crate) fn deny(role: Option<&str>, rule: &str, reason: String) -> Denial {
    Denial {
        role: role.map(str::to_owned),
        rule: rule.to_owned(),
        reason,
    }
}

/// A deny condition that matched, before it is phrased as a [`Denial`].
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    /// The rule, e.g. `deny.db_users`.
    pub(crate) rule: String,
    /// What is denied, e.g. `database user "postgres"`.
    pub(crate) subject: String,
    /// Said after the rule, e.g. ` "expr" holds`.
    pub(crate) detail: String,
}

impl Hit {
    pub(crate) fn new(rule: impl Into<String>, subject: String) -> Self {
        Self {
            rule: rule.into(),
            subject,
            detail: String::new(),
        }
    }

    pub(crate) fn detail(self, detail: String) -> Self {
        Self { detail, ..self }
    }
}

/// The one authorization decision. Pure: no I/O, no clock but `now`.
///
/// Order: locks; checks that belong to no role (one's own access request);
/// every role's deny conditions (any match denies); then allow conditions
/// (one match permits — for access requests and reviews, every requested
/// role must be covered by some role). Nothing is allowed by default. What
/// each kind's conditions mean is documented on its module and in
/// `docs/resources.md`.
pub fn authorize(
    id: &Identity,
    target: Target<'_>,
    action: Action<'_>,
    ctx: &AccessContext<'_>,
    now: OffsetDateTime,
) -> Result<Permit, Denial> {
    check_locks(id, target, action, ctx, now)?;
    decide_roles(id, target, action)
}

/// Everything `authorize` decides after locks.
pub(crate) fn decide_roles(
    id: &Identity,
    target: Target<'_>,
    action: Action<'_>,
) -> Result<Permit, Denial> {
    precheck(id, target, action)?;
    for role in &id.roles {
        check_deny(id, role, &role.spec.deny, target, action)?;
    }
    if let Target::AccessRequest(r) = target
        && let Some(decision) = requests::grant(id, r, action)
    {
        return decision.map(|g| Permit {
            role: g.role,
            rule: g.rule,
        });
    }
    for role in &id.roles {
        if let Some(rule) = allows(id, &role.spec.allow, target, action) {
            return Ok(Permit {
                role: role.metadata.name.clone(),
                rule,
            });
        }
    }
    Err(no_allow(id, target, action))
}

pub(crate) fn check_locks(
    id: &Identity,
    target: Target<'_>,
    action: Action<'_>,
    ctx: &AccessContext<'_>,
    now: OffsetDateTime,
) -> Result<(), Denial> {
    for lock in ctx.locks {
        if lock.metadata.expires.is_some_and(|e| e <= now) {
            continue;
        }
        let hit = match &lock.spec.target {
            LockTarget::User(u) => u == &id.user,
            LockTarget::Role(r) => id.roles.iter().any(|role| &role.metadata.name == r),
            LockTarget::Login(l) => matches!(action, Action::Login(login) if login == l),
            LockTarget::Node(n) => {
                matches!(target, Target::Node { name, id: node_id, .. } if name == n || node_id == n)
            }
            LockTarget::MfaDevice(d) => ctx.mfa_device == Some(d.as_str()),
            LockTarget::Serial(s) => ctx.serial.is_some_and(|serial| serial.to_string() == *s),
            LockTarget::Session(s) => ctx.session_id == Some(s.as_str()),
            LockTarget::AccessRequest(_) => false,
        };
        if hit {
            let msg = lock.spec.message.as_deref().unwrap_or("access is locked");
            return Err(deny(
                None,
                "lock",
                format!("locked by {}: {msg}", lock.metadata.name),
            ));
        }
    }
    Ok(())
}

/// Checks that belong to no role.
pub(crate) fn precheck(
    id: &Identity,
    target: Target<'_>,
    action: Action<'_>,
) -> Result<(), Denial> {
    match target {
        Target::AccessRequest(r) => requests::precheck(id, r, action),
        _ => Ok(()),
    }
}

/// The deny condition of one role side that matches, if any.
pub(crate) fn deny_hit(
    id: &Identity,
    c: &RoleConditions,
    target: Target<'_>,
    action: Action<'_>,
) -> Option<Hit> {
    match (target, action) {
        (Target::Node { name, labels, .. }, Action::Login(login)) => {
            node::deny(id, c, name, labels, login)
        }
        (Target::Kind(kind), Action::Verb(verb)) => admin::deny_kind(c, kind, verb),
        (Target::Resource { kind, item }, Action::Verb(verb)) => {
            admin::deny_item(id, c, kind, item, verb)
        }
        (Target::Kubernetes { .. }, _) => kube::deny(id, c, action),
        (Target::Database { name, labels }, Action::DatabaseConnect { db_user, db_name }) => {
            db_app::deny_db(id, c, name, labels, db_user, db_name)
        }
        (Target::App { name, labels }, Action::AppAccess) => db_app::deny_app(id, c, name, labels),
        (Target::AccessRequest(r), Action::Request) => requests::deny_request(id, c, r),
        (Target::AccessRequest(r), Action::Review) => requests::deny_review(id, c, r),
        _ => None,
    }
}

pub(crate) fn check_deny(
    id: &Identity,
    role: &Role,
    c: &RoleConditions,
    target: Target<'_>,
    action: Action<'_>,
) -> Result<(), Denial> {
    match deny_hit(id, c, target, action) {
        None => Ok(()),
        Some(h) => Err(deny(
            Some(&role.metadata.name),
            &h.rule,
            format!(
                "{} is denied by role {:?} ({}{})",
                h.subject, role.metadata.name, h.rule, h.detail
            ),
        )),
    }
}

/// The rule of one role's allow side that matches, if any (for access
/// requests and reviews: the side covers at least one requested role).
pub(crate) fn allows(
    id: &Identity,
    c: &RoleConditions,
    target: Target<'_>,
    action: Action<'_>,
) -> Option<String> {
    match (target, action) {
        (Target::Node { labels, .. }, Action::Login(login)) => node::allows(id, c, labels, login),
        (Target::Kind(kind), Action::Verb(verb)) => admin::allows_kind(c, kind, verb),
        (Target::Resource { kind, item }, Action::Verb(verb)) => {
            admin::allows_item(id, c, kind, item, verb)
        }
        // Any role at all lets a user obtain their own certificate; what the
        // certificate carries is decided by `allowed_logins` and options.
        (Target::Certificate, Action::Issue) => Some("role".to_owned()),
        (Target::Kubernetes { .. }, _) => kube::allows(id, c, action),
        (Target::Database { labels, .. }, Action::DatabaseConnect { db_user, db_name }) => {
            db_app::allows_db(id, c, labels, db_user, db_name)
        }
        (Target::App { labels, .. }, Action::AppAccess) => db_app::allows_app(id, c, labels),
        (Target::AccessRequest(r), Action::Request) => requests::allows_request(id, c, r),
        (Target::AccessRequest(r), Action::Review) => requests::allows_review(id, c, r),
        _ => None,
    }
}

pub(crate) fn no_allow(id: &Identity, target: Target<'_>, action: Action<'_>) -> Denial {
    let reason = match (target, action) {
        (Target::Node { name, labels, .. }, Action::Login(login)) => {
            node::no_allow(id, name, labels, login)
        }
        (Target::Kind(kind), Action::Verb(verb)) => admin::no_allow_kind(id, kind, verb),
        (Target::Resource { kind, item }, Action::Verb(verb)) => {
            admin::no_allow_item(id, kind, item, verb)
        }
        (Target::Kubernetes { cluster }, _) if kube::subject(action).is_some() => {
            kube::no_allow(id, cluster, action)
        }
        (Target::Database { name, labels }, Action::DatabaseConnect { db_user, db_name }) => {
            db_app::no_allow_db(id, name, labels, db_user, db_name)
        }
        (Target::App { name, labels }, Action::AppAccess) => db_app::no_allow_app(id, name, labels),
        _ => format!("user {:?} has no role that allows this", id.user),
    };
    deny(None, "no allow rule matched", reason)
}
