//! The node's view of policy: an immutable snapshot replaced whole
//! whenever auth reports that roles or locks changed (long-poll watch), so
//! decisions never see a half-updated state and survive auth outages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use keygate_api::{ApiClient, NodeSnapshot, WatchResponse};
use keygate_types::{AnyResource, Lock, Role};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One consistent view of what decisions need.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Store revision it reflects.
    pub revision: i64,
    /// Roles by name.
    pub roles: BTreeMap<String, Role>,
    /// Locks in force (expired ones are ignored at decision time).
    pub locks: Vec<Lock>,
    /// Trusted user CA keys.
    pub user_ca_ssh: Vec<String>,
    /// The node's authoritative labels.
    pub labels: BTreeMap<String, String>,
    /// The node's name.
    pub node_name: String,
    /// The host CA key signing host certificates now.
    pub host_ca_signing: Option<String>,
}

impl Snapshot {
    fn from_api(s: NodeSnapshot) -> Self {
        let mut roles = BTreeMap::new();
        for v in s.roles {
            if let Ok(AnyResource::Role(r)) = AnyResource::from_json(v) {
                roles.insert(r.metadata.name.clone(), r);
            }
        }
        let locks = s
            .locks
            .into_iter()
            .filter_map(|v| match AnyResource::from_json(v) {
                Ok(AnyResource::Lock(l)) => Some(l),
                _ => None,
            })
            .collect();
        Self {
            revision: s.revision,
            roles,
            locks,
            user_ca_ssh: s.user_ca_ssh,
            labels: s.labels,
            node_name: s.node_name,
            host_ca_signing: s.host_ca_signing,
        }
    }
}

/// The current snapshot, shared by every session.
#[derive(Clone)]
pub struct PolicyCache {
    /// Latest snapshot.
    rx: watch::Receiver<Arc<Snapshot>>,
    /// Publisher.
    tx: Arc<watch::Sender<Arc<Snapshot>>>,
}

impl Default for PolicyCache {
    fn default() -> Self {
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        Self {
            rx,
            tx: Arc::new(tx),
        }
    }
}

impl PolicyCache {
    /// The snapshot now.
    pub fn current(&self) -> Arc<Snapshot> {
        self.rx.borrow().clone()
    }

    /// Notified on every replacement.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.rx.clone()
    }

    /// Replaces the snapshot (tests and the refresher).
    pub fn publish(&self, s: Snapshot) {
        self.tx.send_replace(Arc::new(s));
    }

    /// Fetches one snapshot now.
    pub async fn refresh(&self, api: &ApiClient) -> Result<i64, keygate_api::ApiError> {
        let s: NodeSnapshot = api.get("/v1/nodes/snapshot").await?;
        let rev = s.revision;
        self.publish(Snapshot::from_api(s));
        Ok(rev)
    }

    /// Keeps the snapshot fresh until `shutdown`: fetch, then long-poll for
    /// changes; on errors keep the last good snapshot and retry.
    pub async fn run(&self, api: ApiClient, shutdown: CancellationToken) {
        let mut revision: Option<i64> = None;
        let mut failures: u32 = 0;
        loop {
            let step = async {
                let rev = match revision {
                    Some(r) => r,
                    None => self.refresh(&api).await?,
                };
                let w: WatchResponse = api.get(&format!("/v1/nodes/watch?from={rev}")).await?;
                if w.changed {
                    Ok::<Option<i64>, keygate_api::ApiError>(Some(self.refresh(&api).await?))
                } else {
                    Ok(Some(w.revision.max(rev)))
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                r = step => match r {
                    Ok(rev) => { revision = rev; failures = 0; }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!("policy refresh failed ({e}); keeping the last snapshot");
                        revision = None;
                        let wait = Duration::from_millis(250u64.saturating_mul(1 << failures.min(5)));
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                },
            }
        }
    }
}
