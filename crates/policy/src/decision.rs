use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use keygate_types::{Labels, Lock, LockTarget, Role, RoleConditions};
use time::OffsetDateTime;

use crate::expression::{evaluate, holds};
use crate::labels::label_selector_matches;
use crate::traits::expand_template;

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

/// What is being accessed.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A server.
    Node {
        /// Node name.
        name: &'a str,
        /// Node id.
        id: &'a str,
        /// Authoritative labels.
        labels: &'a Labels,
    },
    /// An admin API resource kind (`user`, `role`, `event`, …).
    Kind(&'a str),
    /// Issuing a certificate to the identity itself.
    Certificate,
}

/// What is being done.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Log in to a node as this OS login.
    Login(&'a str),
    /// An admin verb (`list`, `read`, `create`, `update`, `delete`).
    Verb(&'a str),
    /// Obtain a certificate (login, renewal).
    Issue,
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
    /// The role that granted access.
    role: String,
    /// The rule within it.
    rule: String,
}

impl Permit {
    /// The granting role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The granting rule.
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

/// Why access was refused: the deciding role and rule when one exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The role whose deny rule matched (None: nothing allowed it).
    pub role: Option<String>,
    /// The rule, e.g. `deny.logins` or `lock`.
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

fn deny(role: Option<&str>, rule: &str, reason: String) -> Denial {
    Denial {
        role: role.map(str::to_owned),
        rule: rule.to_owned(),
        reason,
    }
}

/// The one authorization decision. Pure: no I/O, no clock but `now`.
///
/// Order: locks, then every role's deny conditions (any match denies), then
/// allow conditions (one match permits). Nothing is allowed by default.
///
/// Node logins: a deny side matches when its logins cover the login, OR its
/// `node_labels` match, OR its `node_labels_expression` holds. An allow side
/// matches when its logins cover the login AND the node conditions hold
/// (see `allow_node_matches`). An expression that does not parse never
/// allows and always denies.
pub fn authorize(
    id: &Identity,
    target: Target<'_>,
    action: Action<'_>,
    ctx: &AccessContext<'_>,
    now: OffsetDateTime,
) -> Result<Permit, Denial> {
    check_locks(id, target, action, ctx, now)?;
    for role in &id.roles {
        check_deny(id, role, &role.spec.deny, target, action)?;
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

pub(crate) fn expanded_logins(id: &Identity, c: &RoleConditions) -> BTreeSet<String> {
    c.logins
        .iter()
        .flat_map(|l| expand_template(l, &id.traits))
        .collect()
}

pub(crate) fn check_deny(
    id: &Identity,
    role: &Role,
    c: &RoleConditions,
    target: Target<'_>,
    action: Action<'_>,
) -> Result<(), Denial> {
    let name = Some(role.metadata.name.as_str());
    match (target, action) {
        (
            Target::Node {
                name: node, labels, ..
            },
            Action::Login(login),
        ) => {
            let logins = expanded_logins(id, c);
            if logins.contains(login) || logins.contains("*") {
                return Err(deny(
                    name,
                    "deny.logins",
                    format!(
                        "login {login:?} is denied by role {:?} (deny.logins)",
                        role.metadata.name
                    ),
                ));
            }
            if label_selector_matches(&c.node_labels, labels, &id.traits) {
                return Err(deny(
                    name,
                    "deny.node_labels",
                    format!(
                        "node {node:?} is denied by role {:?} (deny.node_labels)",
                        role.metadata.name
                    ),
                ));
            }
            if let Some(src) = &c.node_labels_expression {
                let outcome = evaluate(src, id, labels, true);
                if outcome.value {
                    let why = if outcome.error.is_some() {
                        " does not parse, which denies every node"
                    } else {
                        " holds"
                    };
                    return Err(deny(
                        name,
                        "deny.node_labels_expression",
                        format!(
                            "node {node:?} is denied by role {:?} (deny.node_labels_expression {src:?}{why})",
                            role.metadata.name
                        ),
                    ));
                }
            }
        }
        (Target::Kind(kind), Action::Verb(verb))
            if c.rules.iter().any(|r| rule_matches(r, kind, verb)) =>
        {
            return Err(deny(
                name,
                "deny.rules",
                format!(
                    "{verb} on {kind} is denied by role {:?} (deny.rules)",
                    role.metadata.name
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}

pub(crate) fn rule_matches(r: &keygate_types::Rule, kind: &str, verb: &str) -> bool {
    r.resources.iter().any(|k| k == "*" || k == kind)
        && r.verbs.iter().any(|v| v == "*" || v == verb)
}

pub(crate) fn allows(
    id: &Identity,
    c: &RoleConditions,
    target: Target<'_>,
    action: Action<'_>,
) -> Option<String> {
    match (target, action) {
        (Target::Node { labels, .. }, Action::Login(login)) => {
            let logins = expanded_logins(id, c);
            // `*` and names no OS account can have are never a login,
            // whatever a role lists (certificates never carry them either).
            let login_ok = logins.contains(login) && login.parse::<keygate_types::Login>().is_ok();
            (login_ok && allow_node_matches(id, c, labels)).then(|| allow_node_rule(c).to_owned())
        }
        (Target::Kind(kind), Action::Verb(verb)) => c
            .rules
            .iter()
            .any(|r| rule_matches(r, kind, verb))
            .then(|| "allow.rules".to_owned()),
        // Any role at all lets a user obtain their own certificate; what the
        // certificate carries is decided by `allowed_logins` and options.
        (Target::Certificate, Action::Issue) => Some("role".to_owned()),
        _ => None,
    }
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

pub(crate) fn no_allow(id: &Identity, target: Target<'_>, action: Action<'_>) -> Denial {
    match (target, action) {
        (Target::Node { name, labels, .. }, Action::Login(login)) => {
            let closest = id
                .roles
                .iter()
                .find(|r| allow_node_matches(id, &r.spec.allow, labels))
                .map(|r| {
                    let logins: Vec<String> =
                        expanded_logins(id, &r.spec.allow).into_iter().collect();
                    format!(
                        "; closest: role {:?} allows logins {logins:?} there",
                        r.metadata.name
                    )
                })
                .unwrap_or_default();
            deny(
                None,
                "no allow rule matched",
                format!(
                    "no role of {:?} allows login {login:?} on node {name:?} (labels {labels:?}){closest}",
                    id.user
                ),
            )
        }
        (Target::Kind(kind), Action::Verb(verb)) => deny(
            None,
            "no allow rule matched",
            format!("no role of {:?} allows {verb} on {kind}", id.user),
        ),
        _ => deny(
            None,
            "no allow rule matched",
            format!("user {:?} has no role that allows this", id.user),
        ),
    }
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
