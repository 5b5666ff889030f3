//! The SSH login decision shared by every place that opens sessions: a
//! Keygate node (over its local snapshot) and the proxy's relay to
//! agentless OpenSSH hosts (decided by auth). The user's role *names* come
//! from their certificate; role *definitions*, locks and labels come from
//! the caller's current view, so a role edit or a lock applies to
//! certificates already issued.

use std::collections::BTreeMap;
use std::time::Duration;

use keygate_types::{Lock, Role};
use time::OffsetDateTime;

use crate::{AccessContext, Action, Denial, Identity, Target, authorize, combine_options};

/// The certificate extension naming the user's roles (a JSON array).
pub const ROLES_EXTENSION: &str = "roles@keygate";
/// The certificate extension carrying the user's traits (a JSON object).
pub const TRAITS_EXTENSION: &str = "traits@keygate";

/// What a user certificate says about its holder.
#[derive(Debug, Clone)]
pub struct CertFacts {
    /// User (certificate key id).
    pub user: String,
    /// Role names (`roles@keygate`).
    pub roles: Vec<String>,
    /// Traits (`traits@keygate`).
    pub traits: BTreeMap<String, Vec<String>>,
    /// Serial (for serial locks).
    pub serial: u64,
    /// End of validity.
    pub valid_before: OffsetDateTime,
    /// The live session being re-checked (None for a new login).
    pub session_id: Option<String>,
}

impl CertFacts {
    /// Reads the Keygate extensions; absent or malformed ones mean no
    /// roles (deny by default), never an error that could be retried into
    /// something else.
    pub fn from_extensions(
        user: &str,
        serial: u64,
        valid_before: OffsetDateTime,
        ext: &BTreeMap<String, String>,
    ) -> Self {
        let roles = ext
            .get(ROLES_EXTENSION)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        let traits = ext
            .get(TRAITS_EXTENSION)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        Self {
            user: user.to_owned(),
            roles,
            traits,
            serial,
            valid_before,
            session_id: None,
        }
    }
}

/// The host a session is for.
#[derive(Debug, Clone, Copy)]
pub struct SessionHost<'a> {
    /// Registered name.
    pub name: &'a str,
    /// Id.
    pub id: &'a str,
    /// Effective labels (self-reported ones already overridden by
    /// authoritative ones).
    pub labels: &'a BTreeMap<String, String>,
}

/// What an allowed session may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    /// `ssh -L` allowed.
    pub port_forwarding: bool,
    /// Agent forwarding allowed.
    pub agent_forwarding: bool,
    /// Close idle sessions after this.
    pub idle_timeout: Option<Duration>,
    /// Close the session at this time (certificate expiry) when set.
    pub disconnect_at: Option<OffsetDateTime>,
    /// The role and rule that allowed it (for the audit log).
    pub allowed_by: String,
}

/// Decides whether `cert` may log in as `login` on `host` now, with the
/// roles and locks the caller currently knows.
pub fn decide_login(
    roles: &BTreeMap<String, Role>,
    locks: &[Lock],
    host: SessionHost<'_>,
    cert: &CertFacts,
    login: &str,
    now: OffsetDateTime,
) -> Result<SessionGrant, Denial> {
    // Roles that no longer exist or have expired grant nothing.
    let roles = cert
        .roles
        .iter()
        .filter_map(|n| roles.get(n))
        .filter(|r| r.metadata.expires.is_none_or(|e| e > now))
        .cloned()
        .collect::<Vec<_>>();
    let identity = Identity {
        user: cert.user.clone(),
        roles,
        traits: cert.traits.clone(),
    };
    let target = Target::Node {
        name: host.name,
        id: host.id,
        labels: host.labels,
    };
    let ctx = AccessContext {
        locks,
        serial: Some(cert.serial),
        mfa_device: None,
        session_id: cert.session_id.as_deref(),
    };
    let permit = authorize(&identity, target, Action::Login(login), &ctx, now)?;
    let opts = combine_options(&identity.roles);
    Ok(SessionGrant {
        port_forwarding: opts.port_forwarding,
        agent_forwarding: opts.agent_forwarding,
        idle_timeout: opts.client_idle_timeout,
        disconnect_at: opts.disconnect_expired_cert.then_some(cert.valid_before),
        allowed_by: format!("{}/{}", permit.role(), permit.rule()),
    })
}
