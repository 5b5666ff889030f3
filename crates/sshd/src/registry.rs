//! The live sessions of one node: listed by the node service and ended by
//! locks, certificate expiry or an admin.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::events::EndReason;

/// One live session (an authenticated SSH connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Session id (also `KEYGATE_SESSION_ID` in the session's processes).
    pub id: String,
    /// The Keygate user (certificate key id).
    pub user: String,
    /// The OS login.
    pub login: String,
    /// The client's address.
    pub remote: SocketAddr,
    /// When it was authenticated.
    pub started: OffsetDateTime,
    /// Roles from the certificate's `roles@keygate` extension.
    pub roles: Vec<String>,
    /// The certificate's serial.
    pub serial: u64,
    /// When the certificate expires.
    pub cert_valid_before: OffsetDateTime,
}

/// A request to end one connection, shared by whoever may ask (registry,
/// timers, shutdown) and the connection's supervisor.
#[derive(Debug, Clone, Default)]
pub(crate) struct Termination {
    /// Cancelled once an end was asked for.
    token: CancellationToken,
    /// Why: the first request wins.
    reason: Arc<Mutex<Option<EndReason>>>,
}

impl Termination {
    /// Asks for the connection to end; returns false if an end was already
    /// asked for (the first reason is kept).
    pub(crate) fn request(&self, reason: EndReason) -> bool {
        let mut slot = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return false;
        }
        *slot = Some(reason);
        drop(slot);
        self.token.cancel();
        true
    }

    /// The reason an end was asked for, if it was.
    pub(crate) fn reason(&self) -> Option<EndReason> {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Resolves once an end was asked for.
    pub(crate) async fn requested(&self) {
        self.token.cancelled().await;
    }
}

/// Live sessions of this server; cheap to clone, every clone sees the same
/// sessions. Any component may list them or end matching ones.
#[derive(Debug, Clone, Default)]
pub struct SessionRegistry {
    /// Session id → what it is and how to end it.
    inner: Arc<Mutex<HashMap<String, (SessionInfo, Termination)>>>,
}

impl SessionRegistry {
    /// The live sessions, in no particular order.
    pub fn list(&self) -> Vec<SessionInfo> {
        self.lock().values().map(|(info, _)| info.clone()).collect()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Ends every live session matching `pred`: the client is shown
    /// `message` (on the stderr of its open channels and as the disconnect
    /// reason), its processes are hung up, and the connection closes within
    /// about a second. Returns how many sessions were asked to end.
    pub fn terminate_where(&self, pred: impl Fn(&SessionInfo) -> bool, message: &str) -> usize {
        let targets: Vec<Termination> = self
            .lock()
            .values()
            .filter(|(info, _)| pred(info))
            .map(|(_, t)| t.clone())
            .collect();
        targets
            .iter()
            .filter(|t| {
                t.request(EndReason::Terminated {
                    message: message.to_owned(),
                })
            })
            .count()
    }

    /// Adds a session.
    pub(crate) fn insert(&self, info: SessionInfo, termination: Termination) {
        self.lock().insert(info.id.clone(), (info, termination));
    }

    /// Removes a session that ended.
    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Asks every session to end with `reason`.
    pub(crate) fn end_all(&self, reason: &EndReason) {
        for (_, t) in self.lock().values() {
            t.request(reason.clone());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (SessionInfo, Termination)>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;

    fn info(id: &str, user: &str) -> SessionInfo {
        SessionInfo {
            id: id.into(),
            user: user.into(),
            login: "root".into(),
            remote: "127.0.0.1:1".parse().unwrap(),
            started: OffsetDateTime::UNIX_EPOCH,
            roles: vec![],
            serial: 7,
            cert_valid_before: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn terminate_where_ends_only_matching_sessions_once() {
        let reg = SessionRegistry::default();
        let (a, b) = (Termination::default(), Termination::default());
        reg.insert(info("1", "alice"), a.clone());
        reg.insert(info("2", "bob"), b.clone());
        assert_eq!(reg.len(), 2);

        assert_eq!(reg.terminate_where(|s| s.user == "alice", "locked"), 1);
        a.requested().await;
        assert_eq!(
            a.reason(),
            Some(EndReason::Terminated {
                message: "locked".into()
            })
        );
        assert_eq!(b.reason(), None);
        // Asking again does not count a session already ending.
        assert_eq!(reg.terminate_where(|s| s.user == "alice", "again"), 0);

        reg.remove("1");
        assert_eq!(reg.list(), vec![info("2", "bob")]);
    }

    #[test]
    fn the_first_reason_wins() {
        let t = Termination::default();
        assert!(t.request(EndReason::IdleTimeout));
        assert!(!t.request(EndReason::CertificateExpired));
        assert_eq!(t.reason(), Some(EndReason::IdleTimeout));
    }
}
