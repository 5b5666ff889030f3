//! Bounding unauthenticated connections.
//!
//! A plain semaphore lets a flood of silent connections lock everyone out
//! until `auth_timeout`. Instead, when the limit is reached a new
//! connection may take the place of the *idlest* pending one (fewest bytes
//! received, then oldest) that is older than [`MIN_AGE_TO_EVICT`]: a real
//! client sends its version string and key exchange within milliseconds,
//! so it is never the idlest for long, while silent half-open connections
//! are.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::stream::WireCounters;

/// Pending connections younger than this are never evicted, so a burst of
/// new connections cannot evict each other before they could speak.
pub(crate) const MIN_AGE_TO_EVICT: Duration = Duration::from_millis(250);

/// The set of pending (unauthenticated) connections.
#[derive(Debug)]
pub(crate) struct Admission {
    /// Most pending connections held at once.
    limit: usize,
    /// The pending connections.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Next ticket number.
    next: u64,
    /// Ticket number → connection.
    pending: HashMap<u64, Pending>,
}

#[derive(Debug)]
struct Pending {
    /// Monotonic time of admission.
    since: Duration,
    /// How much it has sent.
    counters: Arc<WireCounters>,
    /// Closes it.
    kill: CancellationToken,
    /// Set when it was closed to make room.
    evicted: Arc<AtomicBool>,
}

/// What [`Admission::admit`] decided.
#[derive(Debug)]
pub(crate) enum Admit {
    /// Admitted; the ticket frees the slot when dropped.
    Admitted(Ticket),
    /// Admitted by evicting an idle connection.
    AdmittedByEviction(Ticket),
    /// Full of connections too young to evict.
    Refused,
}

/// One admitted connection's slot.
#[derive(Debug)]
pub(crate) struct Ticket {
    /// Where the slot lives.
    admission: Arc<Admission>,
    /// Its number.
    id: u64,
    /// Set if the connection was evicted.
    evicted: Arc<AtomicBool>,
}

impl Ticket {
    /// Whether this connection was closed to make room for another.
    pub(crate) fn was_evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.lock().pending.remove(&self.id);
    }
}

impl Admission {
    /// Room for `limit` pending connections (at least one).
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit: limit.max(1),
            state: Mutex::new(State::default()),
        })
    }

    /// Admits a connection at monotonic time `now`.
    pub(crate) fn admit(
        self: &Arc<Self>,
        now: Duration,
        counters: Arc<WireCounters>,
        kill: CancellationToken,
    ) -> Admit {
        let mut state = self.lock();
        let mut evicted_one = false;
        if state.pending.len() >= self.limit {
            let victim = state
                .pending
                .iter()
                .filter(|(_, p)| now.saturating_sub(p.since) >= MIN_AGE_TO_EVICT)
                .min_by_key(|(_, p)| (p.counters.bytes_in(), p.since))
                .map(|(id, _)| *id);
            let Some(victim) = victim.and_then(|id| state.pending.remove(&id)) else {
                return Admit::Refused;
            };
            victim.evicted.store(true, Ordering::Relaxed);
            victim.kill.cancel();
            evicted_one = true;
        }
        let id = state.next;
        state.next = state.next.wrapping_add(1);
        let evicted = Arc::new(AtomicBool::new(false));
        state.pending.insert(
            id,
            Pending {
                since: now,
                counters,
                kill,
                evicted: evicted.clone(),
            },
        );
        let ticket = Ticket {
            admission: self.clone(),
            id,
            evicted,
        };
        if evicted_one {
            Admit::AdmittedByEviction(ticket)
        } else {
            Admit::Admitted(ticket)
        }
    }

    /// Closes every pending connection (server shutdown).
    pub(crate) fn close_all(&self) {
        for p in self.lock().pending.values() {
            p.kill.cancel();
        }
    }

    /// Connections pending now.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
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

    fn admit(a: &Arc<Admission>, at_ms: u64) -> (Admit, CancellationToken) {
        let kill = CancellationToken::new();
        let r = a.admit(
            Duration::from_millis(at_ms),
            Arc::new(WireCounters::default()),
            kill.clone(),
        );
        (r, kill)
    }

    #[test]
    fn a_full_set_of_young_connections_refuses_newcomers() {
        let a = Admission::new(2);
        let (t1, _) = admit(&a, 0);
        let (t2, _) = admit(&a, 10);
        assert!(matches!(t1, Admit::Admitted(_)));
        assert!(matches!(t2, Admit::Admitted(_)));
        assert!(matches!(admit(&a, 100).0, Admit::Refused));
        assert_eq!(a.pending(), 2);
    }

    #[test]
    fn the_oldest_idle_connection_is_evicted_for_a_newcomer() {
        let a = Admission::new(2);
        let (t1, k1) = admit(&a, 0);
        let (_t2, k2) = admit(&a, 100);
        let (t3, _) = admit(&a, 1_000);
        assert!(matches!(t3, Admit::AdmittedByEviction(_)));
        assert!(k1.is_cancelled() && !k2.is_cancelled());
        let Admit::Admitted(t1) = t1 else { panic!() };
        assert!(t1.was_evicted());
        // The evicted ticket's drop does not free someone else's slot.
        drop(t1);
        assert_eq!(a.pending(), 2);
    }

    #[test]
    fn close_all_closes_every_pending_connection() {
        let a = Admission::new(4);
        let (_t1, k1) = admit(&a, 0);
        let (_t2, k2) = admit(&a, 0);
        a.close_all();
        assert!(k1.is_cancelled() && k2.is_cancelled());
    }

    #[test]
    fn dropping_a_ticket_frees_its_slot() {
        let a = Admission::new(1);
        let (t1, _) = admit(&a, 0);
        drop(t1);
        assert!(matches!(admit(&a, 1).0, Admit::Admitted(_)));
    }
}
