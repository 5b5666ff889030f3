//! The node's access decision: the shared login decision of
//! `keygate-policy` over the node's local snapshot.

use std::collections::BTreeMap;

use keygate_policy::{Denial, SessionHost, decide_login};
use time::OffsetDateTime;

use crate::Snapshot;

pub use keygate_policy::{CertFacts, SessionGrant as Grant};

/// Decides whether `cert` may log in as `login` on this node now.
pub fn decide(
    snap: &Snapshot,
    node_id: &str,
    self_labels: &BTreeMap<String, String>,
    cert: &CertFacts,
    login: &str,
    now: OffsetDateTime,
) -> Result<Grant, Denial> {
    // Self-reported labels never override authoritative ones.
    let mut labels = self_labels.clone();
    labels.extend(snap.labels.clone());
    let host = SessionHost {
        name: &snap.node_name,
        id: node_id,
        labels: &labels,
    };
    decide_login(&snap.roles, &snap.locks, host, cert, login, now)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use keygate_types::{AnyResource, load_documents};
    use std::time::Duration;

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
