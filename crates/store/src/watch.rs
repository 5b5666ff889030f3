//! Watch delivery shared by every backend: the [`Watch`] stream handed to
//! consumers and the [`Hub`] a backend publishes committed events to.
//!
//! A backend publishes each write's events *after* it committed and *while
//! it still holds its write lock*, so every subscriber sees events in
//! revision order. Delivery into a watcher's bounded channel never blocks
//! the writer: a watcher whose buffer is full is cut off, and its consumer
//! gets [`WatchEvent::Compacted`] once it has drained what was queued.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::limits::WATCH_BUFFER;
use crate::{Revision, WatchEvent};

/// A stream of [`WatchEvent`]s from [`crate::Backend::watch`]: replayed
/// history first, then live events. Ends (returns `None`) after a
/// [`WatchEvent::Compacted`] or when the backend is dropped.
#[derive(Debug)]
pub struct Watch {
    /// History events to deliver before anything live.
    replay: VecDeque<WatchEvent>,
    /// Live events from the backend's hub; `None` once the stream ended.
    live: Option<mpsc::Receiver<WatchEvent>>,
    /// Live events at or below this revision were already replayed (or are
    /// older than the requested start) and are skipped.
    skip_through: Revision,
    /// Set by the hub when it cut this watcher off for falling behind.
    overflow: Arc<Mutex<Option<Revision>>>,
}

impl Watch {
    /// A watch that replays `replay`, then delivers live events above
    /// `skip_through` from `sub`.
    pub(crate) fn new(replay: Vec<WatchEvent>, sub: Subscription, skip_through: Revision) -> Self {
        Self {
            replay: replay.into(),
            live: Some(sub.rx),
            skip_through,
            overflow: sub.overflow,
        }
    }

    /// A watch whose only event is `Compacted { compact_revision }`.
    pub(crate) fn compacted(compact_revision: Revision) -> Self {
        Self {
            replay: VecDeque::from([WatchEvent::Compacted { compact_revision }]),
            live: None,
            skip_through: 0,
            overflow: Arc::new(Mutex::new(None)),
        }
    }

    /// The next event, waiting for one if needed; `None` when the stream
    /// ended. Cancel-safe: dropping the future loses no event.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        if let Some(event) = self.replay.pop_front() {
            if matches!(event, WatchEvent::Compacted { .. }) {
                self.replay.clear();
                self.live = None;
            }
            return Some(event);
        }
        let live = self.live.as_mut()?;
        loop {
            match live.recv().await {
                Some(event) if event.revision() <= self.skip_through => continue,
                Some(event) => return Some(event),
                None => {
                    self.live = None;
                    let cut = self
                        .overflow
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take();
                    return cut.map(|compact_revision| WatchEvent::Compacted { compact_revision });
                }
            }
        }
    }
}

/// The receiving half of a hub registration, turned into a [`Watch`].
pub(crate) struct Subscription {
    /// Live events for this watcher.
    rx: mpsc::Receiver<WatchEvent>,
    /// Shared with the hub's [`Subscriber`].
    overflow: Arc<Mutex<Option<Revision>>>,
}

/// The hub's side of one watcher.
struct Subscriber {
    /// Only keys starting with this are delivered.
    prefix: String,
    /// Bounded queue to the watcher.
    tx: mpsc::Sender<WatchEvent>,
    /// Written when the watcher is cut off: the revision up to which it
    /// received everything.
    overflow: Arc<Mutex<Option<Revision>>>,
}

/// Fan-out of committed events to live watchers.
#[derive(Default)]
pub(crate) struct Hub {
    /// Registered watchers; a std mutex because publishing never awaits.
    subscribers: Mutex<Vec<Subscriber>>,
}

impl Hub {
    /// Register a watcher for keys starting with `prefix`. It receives every
    /// event published after this call returns.
    pub(crate) fn subscribe(&self, prefix: &str) -> Subscription {
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let overflow = Arc::new(Mutex::new(None));
        let sub = Subscriber {
            prefix: prefix.to_owned(),
            tx,
            overflow: Arc::clone(&overflow),
        };
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sub);
        Subscription { rx, overflow }
    }

    /// Deliver committed `events` (in revision order). Drops watchers that
    /// went away and cuts off those whose buffer is full.
    pub(crate) fn publish(&self, events: &[WatchEvent]) {
        let mut subs = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subs.retain(|sub| {
            if sub.tx.is_closed() {
                return false;
            }
            for event in events.iter().filter(|e| e.key().is_some_and(|k| k.starts_with(&sub.prefix))) {
                match sub.tx.try_send(event.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        // Everything before this event's revision was queued.
                        let complete_through = event.revision().saturating_sub(1);
                        *sub.overflow.lock().unwrap_or_else(PoisonError::into_inner) = Some(complete_through);
                        tracing::warn!(
                            prefix = %sub.prefix,
                            revision = event.revision(),
                            "watcher fell {WATCH_BUFFER} events behind; cutting it off so it re-lists"
                        );
                        return false;
                    }
                    Err(TrySendError::Closed(_)) => return false,
                }
            }
            true
        });
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

    fn del(key: &str, revision: Revision) -> WatchEvent {
        WatchEvent::Delete {
            key: key.to_owned(),
            revision,
        }
    }

    #[tokio::test]
    async fn replay_then_live_skips_already_replayed() {
        let hub = Hub::default();
        let sub = hub.subscribe("a/");
        // Revision 2 was both replayed and (racing) published live.
        hub.publish(&[del("a/x", 2), del("b/y", 3), del("a/z", 3)]);
        let mut w = Watch::new(vec![del("a/w", 1), del("a/x", 2)], sub, 2);
        assert_eq!(w.next().await, Some(del("a/w", 1)));
        assert_eq!(w.next().await, Some(del("a/x", 2)));
        assert_eq!(w.next().await, Some(del("a/z", 3)));
    }

    #[tokio::test]
    async fn overflow_delivers_queue_then_compacted_then_ends() {
        let hub = Hub::default();
        let mut w = Watch::new(Vec::new(), hub.subscribe(""), 0);
        let events: Vec<_> = (1..=(WATCH_BUFFER as i64 + 5))
            .map(|r| del("k", r))
            .collect();
        hub.publish(&events);
        for r in 1..=WATCH_BUFFER as i64 {
            assert_eq!(w.next().await, Some(del("k", r)));
        }
        let cut = WATCH_BUFFER as i64;
        assert_eq!(
            w.next().await,
            Some(WatchEvent::Compacted {
                compact_revision: cut
            })
        );
        assert_eq!(w.next().await, None);
        // The hub forgot the watcher.
        assert!(hub.subscribers.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn dropped_watchers_are_forgotten() {
        let hub = Hub::default();
        drop(Watch::new(Vec::new(), hub.subscribe("x/"), 0));
        hub.publish(&[del("y", 1)]);
        assert!(hub.subscribers.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn compacted_watch_yields_once() {
        let mut w = Watch::compacted(7);
        assert_eq!(
            w.next().await,
            Some(WatchEvent::Compacted {
                compact_revision: 7
            })
        );
        assert_eq!(w.next().await, None);
    }
}
