//! The node's access decision: the pure policy engine over the local
//! snapshot. The user's role *names* come from their certificate; role
//! *definitions*, locks and labels come from the snapshot, so a role edit
//! or a lock applies to certificates already issued.

use std::collections::BTreeMap;
use std::time::Duration;

use keygate_policy::{AccessContext, Action, Denial, Identity, Target, authorize, combine_options};
use time::OffsetDateTime;

use crate::Snapshot;

/// What the certificate says about its holder.
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
            .get("roles@keygate")
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        let traits = ext
            .get("traits@keygate")
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

/// What an allowed session may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
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

/// Decides whether `cert` may log in as `login` on this node now.
pub fn decide(
    snap: &Snapshot,
    node_id: &str,
    self_labels: &BTreeMap<String, String>,
    cert: &CertFacts,
    login: &str,
    now: OffsetDateTime,
) -> Result<Grant, Denial> {
    // Roles that no longer exist or have expired grant nothing.
    let roles = cert
        .roles
        .iter()
        .filter_map(|n| snap.roles.get(n))
        .filter(|r| r.metadata.expires.is_none_or(|e| e > now))
        .cloned()
        .collect::<Vec<_>>();
    let identity = Identity {
        user: cert.user.clone(),
        roles,
        traits: cert.traits.clone(),
    };
    // Self-reported labels never override authoritative ones.
    let mut labels = self_labels.clone();
    labels.extend(snap.labels.clone());
    let target = Target::Node {
        name: &snap.node_name,
        id: node_id,
        labels: &labels,
    };
    let ctx = AccessContext {
        locks: &snap.locks,
        serial: Some(cert.serial),
        mfa_device: None,
        session_id: cert.session_id.as_deref(),
    };
    let permit = authorize(&identity, target, Action::Login(login), &ctx, now)?;
    let opts = combine_options(&identity.roles);
    Ok(Grant {
        port_forwarding: opts.port_forwarding,
        agent_forwarding: opts.agent_forwarding,
        idle_timeout: opts.client_idle_timeout,
        disconnect_at: opts.disconnect_expired_cert.then_some(cert.valid_before),
        allowed_by: format!("{}/{}", permit.role(), permit.rule()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use keygate_types::{AnyResource, load_documents};

    fn snap() -> Snapshot {
        let yaml = "kind: role\nversion: v1\nmetadata: {name: dev}\nspec:\n  options: {client_idle_timeout: 5m, disconnect_expired_cert: true}\n  allow:\n    logins: ['{{internal.logins}}']\n    node_labels: {env: dev}\n---\nkind: lock\nversion: v1\nmetadata: {name: l1}\nspec: {target: {user: mallory}, message: offboarded}\n";
        let mut s = Snapshot {
            node_name: "web-1".into(),
            ..Snapshot::default()
        };
        for d in load_documents("s.yaml", yaml).unwrap() {
            match d.resource {
                AnyResource::Role(r) => {
                    s.roles.insert(r.metadata.name.clone(), r);
                }
                AnyResource::Lock(l) => s.locks.push(l),
                _ => {}
            }
        }
        s.labels.insert("env".into(), "dev".into());
        s
    }

    fn cert(user: &str) -> CertFacts {
        let ext = BTreeMap::from([
            ("roles@keygate".to_owned(), "[\"dev\"]".to_owned()),
            (
                "traits@keygate".to_owned(),
                format!("{{\"logins\":[\"{user}\"]}}"),
            ),
        ]);
        CertFacts::from_extensions(
            user,
            7,
            OffsetDateTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000),
            &ext,
        )
    }

    #[test]
    fn decides_from_snapshot_and_certificate() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let s = snap();
        let g = decide(&s, "id-1", &BTreeMap::new(), &cert("alice"), "alice", now).unwrap();
        assert_eq!(g.idle_timeout, Some(Duration::from_secs(300)));
        assert!(g.disconnect_at.is_some());
        assert!(!g.port_forwarding);
        assert!(decide(&s, "id-1", &BTreeMap::new(), &cert("alice"), "root", now).is_err());
        let d = decide(
            &s,
            "id-1",
            &BTreeMap::new(),
            &cert("mallory"),
            "mallory",
            now,
        )
        .unwrap_err();
        assert_eq!(d.rule, "lock");
        // A node claiming env=dev itself does not make a prod node dev.
        let mut prod = s.clone();
        prod.labels.insert("env".into(), "prod".into());
        let self_labels = BTreeMap::from([("env".to_owned(), "dev".to_owned())]);
        assert!(decide(&prod, "id-1", &self_labels, &cert("alice"), "alice", now).is_err());
        // Malformed extensions mean no roles.
        let bad = CertFacts::from_extensions(
            "alice",
            1,
            now,
            &BTreeMap::from([("roles@keygate".to_owned(), "{".to_owned())]),
        );
        assert!(bad.roles.is_empty());
    }
}
