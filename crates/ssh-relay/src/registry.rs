//! Live relayed sessions, so the proxy can re-check them when roles or
//! locks change and terminate those no longer allowed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::authority::RelaySession;

/// A live session as the registry lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    /// Who and where.
    pub session: RelaySession,
    /// The user's certificate (OpenSSH line), for re-checks.
    pub user_cert: String,
    /// When it started.
    pub started: OffsetDateTime,
}

/// One entry: the listing and the means to end it.
struct Entry {
    /// What is listed.
    live: LiveSession,
    /// Ends the session.
    kill: CancellationToken,
    /// Why it was ended, shown to the user.
    reason: Arc<Mutex<Option<String>>>,
}

/// The registry (cheap to clone; clones share).
#[derive(Clone, Default)]
pub(crate) struct Registry {
    /// Entries by session id.
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

impl Registry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a session.
    pub(crate) fn insert(
        &self,
        live: LiveSession,
        kill: CancellationToken,
        reason: Arc<Mutex<Option<String>>>,
    ) {
        self.map().insert(
            live.session.session_id.clone(),
            Entry { live, kill, reason },
        );
    }

    /// Removes a session that ended.
    pub(crate) fn remove(&self, id: &str) {
        self.map().remove(id);
    }

    /// Every live session.
    pub(crate) fn list(&self) -> Vec<LiveSession> {
        let mut v: Vec<LiveSession> = self.map().values().map(|e| e.live.clone()).collect();
        v.sort_by(|a, b| a.session.session_id.cmp(&b.session.session_id));
        v
    }

    /// Ends session `id` with `reason`; false if it is not live.
    pub(crate) fn terminate(&self, id: &str, reason: &str) -> bool {
        let map = self.map();
        let Some(e) = map.get(id) else {
            return false;
        };
        *e.reason.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.to_owned());
        e.kill.cancel();
        true
    }

    /// Ends every session (shutdown).
    pub(crate) fn terminate_all(&self, reason: &str) {
        let ids: Vec<String> = self.map().keys().cloned().collect();
        for id in ids {
            self.terminate(&id, reason);
        }
    }
}
