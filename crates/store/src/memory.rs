//! In-memory [`Backend`]: a `BTreeMap` plus a history `Vec`, behind one
//! mutex. Same semantics as the SQLite backend (the conformance suite runs
//! against both); nothing survives the process. Meant for unit tests of
//! other crates.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use keygate_clock::SharedClock;

use crate::limits::{
    MAX_REPLAY_EVENTS, now_ms, ttl_ms, validate_key, validate_prefix, validate_txn, validate_value,
    validate_watch_revision,
};
use crate::watch::Hub;
use crate::{
    Backend, Compare, KeyValue, LeaseId, Op, Revision, StoreError, TxnResult, Watch, WatchEvent,
};

/// Everything in memory; see the module docs.
pub struct MemoryBackend {
    /// Source of wall time for lease deadlines.
    clock: SharedClock,
    /// All data. A std mutex: no operation awaits while holding it.
    state: Mutex<State>,
    /// Live watchers; published to while `state` is held, so in order.
    hub: Hub,
}

/// One granted lease.
struct Lease {
    /// Unix ms after which the lease is expired.
    deadline_ms: i64,
    /// TTL applied again by each keep-alive.
    ttl_ms: i64,
}

#[derive(Default)]
struct State {
    /// Current keys.
    kv: BTreeMap<String, KeyValue>,
    /// Every event above `compacted`, in revision order.
    history: Vec<WatchEvent>,
    /// Live leases by id.
    leases: BTreeMap<LeaseId, Lease>,
    /// Latest revision written.
    revision: Revision,
    /// History at or below this is gone.
    compacted: Revision,
    /// Last lease id handed out (ids are never reused).
    last_lease: LeaseId,
}

impl MemoryBackend {
    /// An empty store reading time from `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            state: Mutex::new(State::default()),
            hub: Hub::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run one write: expire due leases first (so the write sees the same
    /// world reads do), then `f`, then record and publish every event. `f`
    /// must check everything before it mutates, so an error leaves no trace.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut State, i64, &mut Vec<WatchEvent>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let now = now_ms(&self.clock);
        let mut state = self.lock();
        let mut events = Vec::new();
        state.expire_due(now, &mut events);
        let out = f(&mut state, now, &mut events);
        if !events.is_empty() {
            state.history.extend(events.iter().cloned());
            self.hub.publish(&events);
        }
        out
    }
}

impl State {
    fn visible(&self, kv: &KeyValue, now: i64) -> bool {
        kv.lease
            .is_none_or(|id| self.leases.get(&id).is_some_and(|l| l.deadline_ms > now))
    }

    fn in_prefix<'a>(
        &'a self,
        prefix: &'a str,
        now: i64,
    ) -> impl Iterator<Item = &'a KeyValue> + 'a {
        self.kv
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, kv)| kv)
            .filter(move |kv| self.visible(kv, now))
    }

    fn require_lease(&self, lease: Option<LeaseId>, now: i64) -> Result<(), StoreError> {
        match lease {
            Some(id) if self.leases.get(&id).is_none_or(|l| l.deadline_ms <= now) => {
                Err(StoreError::LeaseNotFound(id))
            }
            _ => Ok(()),
        }
    }

    /// Apply validated ops at the next revision; returns how many changed
    /// something. The revision advances only if one did.
    fn apply(&mut self, ops: Vec<Op>, events: &mut Vec<WatchEvent>) -> usize {
        let rev = self.revision + 1;
        let mut changed = 0;
        for op in ops {
            match op {
                Op::Put { key, value, lease } => {
                    let create_revision = self.kv.get(&key).map_or(rev, |kv| kv.create_revision);
                    let kv = KeyValue {
                        key: key.clone(),
                        value,
                        create_revision,
                        mod_revision: rev,
                        lease,
                    };
                    events.push(WatchEvent::Put(kv.clone()));
                    self.kv.insert(key, kv);
                    changed += 1;
                }
                Op::Delete { key } => {
                    if self.kv.remove(&key).is_some() {
                        events.push(WatchEvent::Delete { key, revision: rev });
                        changed += 1;
                    }
                }
            }
        }
        if changed > 0 {
            self.revision = rev;
        }
        changed
    }

    /// End lease `id` and delete its keys at one revision.
    fn revoke(&mut self, id: LeaseId, events: &mut Vec<WatchEvent>) {
        self.leases.remove(&id);
        let keys: Vec<Op> = self
            .kv
            .values()
            .filter(|kv| kv.lease == Some(id))
            .map(|kv| Op::Delete {
                key: kv.key.clone(),
            })
            .collect();
        self.apply(keys, events);
    }

    fn expire_due(&mut self, now: i64, events: &mut Vec<WatchEvent>) -> usize {
        let due: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline_ms <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &due {
            self.revoke(*id, events);
        }
        due.len()
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        validate_key(key)?;
        let now = now_ms(&self.clock);
        let state = self.lock();
        Ok(state
            .kv
            .get(key)
            .filter(|kv| state.visible(kv, now))
            .cloned())
    }

    async fn range(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self.range_at(prefix).await?.0)
    }

    async fn range_at(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        validate_prefix(prefix)?;
        let now = now_ms(&self.clock);
        let state = self.lock();
        Ok((
            state.in_prefix(prefix, now).cloned().collect(),
            state.revision,
        ))
    }

    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        validate_key(key)?;
        validate_value(key, &value)?;
        self.write(|state, now, events| {
            state.require_lease(lease, now)?;
            state.apply(
                vec![Op::Put {
                    key: key.to_owned(),
                    value,
                    lease,
                }],
                events,
            );
            Ok(state.revision)
        })
    }

    async fn delete(&self, key: &str) -> Result<Option<Revision>, StoreError> {
        validate_key(key)?;
        self.write(|state, _, events| {
            let changed = state.apply(
                vec![Op::Delete {
                    key: key.to_owned(),
                }],
                events,
            );
            Ok((changed > 0).then_some(state.revision))
        })
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<usize, StoreError> {
        validate_prefix(prefix)?;
        self.write(|state, now, events| {
            let ops = state
                .in_prefix(prefix, now)
                .map(|kv| Op::Delete {
                    key: kv.key.clone(),
                })
                .collect();
            Ok(state.apply(ops, events))
        })
    }

    async fn txn(&self, compares: Vec<Compare>, ops: Vec<Op>) -> Result<TxnResult, StoreError> {
        validate_txn(&compares, &ops)?;
        self.write(|state, now, events| {
            let holds = compares
                .iter()
                .all(|c| c.holds(state.kv.get(c.key()).map(|kv| kv.mod_revision)));
            if !holds {
                return Ok(TxnResult {
                    succeeded: false,
                    revision: state.revision,
                });
            }
            for op in &ops {
                if let Op::Put { lease, .. } = op {
                    state.require_lease(*lease, now)?;
                }
            }
            state.apply(ops, events);
            Ok(TxnResult {
                succeeded: true,
                revision: state.revision,
            })
        })
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let ttl_ms = ttl_ms(ttl)?;
        self.write(|state, now, _| {
            state.last_lease += 1;
            let lease = Lease {
                deadline_ms: now.saturating_add(ttl_ms),
                ttl_ms,
            };
            state.leases.insert(state.last_lease, lease);
            Ok(state.last_lease)
        })
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.write(|state, now, _| {
            let l = state
                .leases
                .get_mut(&lease)
                .ok_or(StoreError::LeaseNotFound(lease))?;
            l.deadline_ms = now.saturating_add(l.ttl_ms);
            Ok(())
        })
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.write(|state, _, events| {
            if !state.leases.contains_key(&lease) {
                return Err(StoreError::LeaseNotFound(lease));
            }
            state.revoke(lease, events);
            Ok(())
        })
    }

    async fn expire_leases(&self) -> Result<usize, StoreError> {
        // `write` expires due leases itself; count them here instead.
        let now = now_ms(&self.clock);
        let mut state = self.lock();
        let mut events = Vec::new();
        let expired = state.expire_due(now, &mut events);
        state.history.extend(events.iter().cloned());
        self.hub.publish(&events);
        Ok(expired)
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.lock().revision)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let mut state = self.lock();
        if revision > state.revision {
            return Err(StoreError::InvalidRevision {
                revision,
                reason: format!(
                    "cannot compact beyond the current revision {}",
                    state.revision
                ),
            });
        }
        if revision > state.compacted {
            state.history.retain(|e| e.revision() > revision);
            state.compacted = revision;
        }
        Ok(())
    }

    async fn watch(&self, prefix: &str, from_revision: Revision) -> Result<Watch, StoreError> {
        validate_prefix(prefix)?;
        validate_watch_revision(from_revision)?;
        // Replay and registration happen under the state lock, so no write
        // can fall between them.
        let state = self.lock();
        if from_revision == 0 {
            return Ok(Watch::new(
                Vec::new(),
                self.hub.subscribe(prefix),
                state.revision,
            ));
        }
        if from_revision <= state.compacted {
            return Ok(Watch::compacted(state.compacted));
        }
        let start = state
            .history
            .partition_point(|e| e.revision() < from_revision);
        let replay: Vec<WatchEvent> = state
            .history
            .iter()
            .skip(start)
            .filter(|e| e.key().is_some_and(|k| k.starts_with(prefix)))
            .take(MAX_REPLAY_EVENTS + 1)
            .cloned()
            .collect();
        if replay.len() > MAX_REPLAY_EVENTS {
            return Ok(Watch::compacted(state.compacted.max(from_revision - 1)));
        }
        let skip_through = state.revision.max(from_revision - 1);
        Ok(Watch::new(replay, self.hub.subscribe(prefix), skip_through))
    }
}
