use std::sync::Arc;

use crate::AuthError;

use keygate_audit::AuditLog;
use keygate_ca::{CaKind, CertAuthority, Kek};
use keygate_clock::SharedClock;

use crate::bootstrap::AuthOptions;
use crate::ratelimit::FailureLimiter;
use crate::repo::Repo;

/// How often old store history is dropped.
const COMPACT_EVERY_SECS: u64 = 600;
/// How many recent revisions of history are kept for watchers.
const KEEP_REVISIONS: i64 = 10_000;

/// Handle to the auth service state. Cheap to clone.
#[derive(Clone)]
pub struct AuthServer {
    /// Shared state.
    inner: Arc<Inner>,
}

/// One CA, replaced as a whole when it rotates; readers take the current
/// one and keep it for the operation at hand.
pub(crate) struct CaSlot(std::sync::RwLock<Arc<CertAuthority>>);

impl CaSlot {
    pub(crate) fn new(ca: CertAuthority) -> Self {
        Self(std::sync::RwLock::new(Arc::new(ca)))
    }

    /// The current CA.
    pub(crate) fn get(&self) -> Arc<CertAuthority> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces it.
    pub(crate) fn set(&self, ca: CertAuthority) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(ca);
    }
}

pub(crate) struct Inner {
    /// Typed storage.
    pub repo: Repo,
    /// Durable, hash-chained audit log.
    pub audit: AuditLog,
    /// The one clock.
    pub clock: SharedClock,
    /// Key-encryption key for secrets at rest (TOTP seeds).
    pub kek: Kek,
    /// Cluster name (in certificates and events).
    pub cluster: String,
    /// The user CA: user SSH and X.509 certificates.
    pub user_ca: CaSlot,
    /// The host CA: host certificates and every TLS server certificate.
    pub host_ca: CaSlot,
    /// The audit CA: signs audit checkpoints.
    pub audit_ca: CaSlot,
    /// The openssh CA: per-session certificates for agentless hosts.
    pub openssh_ca: CaSlot,
    /// Per-source failure tracking.
    pub limiter: FailureLimiter<std::net::IpAddr>,
    /// Failure tracking for names that are not users.
    pub unknown_users: FailureLimiter<String>,
    /// Bounds concurrent password hashing (each argon2 run takes ~19 MiB
    /// and a core for tens of milliseconds).
    pub hash_permits: tokio::sync::Semaphore,
    /// Settings.
    pub opts: AuthOptions,
    /// Certificates already verified.
    pub verified: crate::caller::VerifiedCerts,
    /// Monotonic second of the last history compaction.
    pub last_compaction: std::sync::atomic::AtomicU64,
    /// Seq of the last signed audit checkpoint (this process).
    pub checkpoint_seq: std::sync::atomic::AtomicU64,
    /// Monotonic second of the last signed audit checkpoint (0: none yet).
    pub checkpoint_at: std::sync::atomic::AtomicU64,
    /// Events this process had written at the last checkpoint.
    pub checkpoint_events: std::sync::atomic::AtomicU64,
}

impl AuthServer {
    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn repo(&self) -> &Repo {
        &self.inner.repo
    }

    pub(crate) fn inner_checkpoint_seq(&self) -> &std::sync::atomic::AtomicU64 {
        &self.inner.checkpoint_seq
    }

    pub(crate) fn inner_checkpoint_events(&self) -> &std::sync::atomic::AtomicU64 {
        &self.inner.checkpoint_events
    }

    pub(crate) fn inner_checkpoint_at(&self) -> &std::sync::atomic::AtomicU64 {
        &self.inner.checkpoint_at
    }

    pub(crate) fn audit_log(&self) -> &AuditLog {
        &self.inner.audit
    }

    pub(crate) fn kek(&self) -> &Kek {
        &self.inner.kek
    }

    pub(crate) fn limiter(&self) -> &FailureLimiter<std::net::IpAddr> {
        &self.inner.limiter
    }

    pub(crate) fn verified_certs(&self) -> &crate::caller::VerifiedCerts {
        &self.inner.verified
    }

    pub(crate) fn unknown_users(&self) -> &FailureLimiter<String> {
        &self.inner.unknown_users
    }

    /// A permit to hash one password.
    pub(crate) async fn hash_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, AuthError> {
        self.inner
            .hash_permits
            .acquire()
            .await
            .map_err(AuthError::internal)
    }

    pub(crate) fn opts(&self) -> &AuthOptions {
        &self.inner.opts
    }

    /// The clock everything here uses.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Cluster name.
    pub fn cluster(&self) -> &str {
        &self.inner.cluster
    }

    /// One CA by kind.
    pub fn ca(&self, kind: CaKind) -> Option<Arc<CertAuthority>> {
        self.ca_slot(kind).map(CaSlot::get)
    }

    pub(crate) fn ca_slot(&self, kind: CaKind) -> Option<&CaSlot> {
        match kind {
            CaKind::User => Some(&self.inner.user_ca),
            CaKind::Host => Some(&self.inner.host_ca),
            CaKind::Audit => Some(&self.inner.audit_ca),
            CaKind::OpenSsh => Some(&self.inner.openssh_ca),
            _ => None,
        }
    }

    pub(crate) fn user_ca(&self) -> Arc<CertAuthority> {
        self.inner.user_ca.get()
    }

    pub(crate) fn host_ca(&self) -> Arc<CertAuthority> {
        self.inner.host_ca.get()
    }

    /// `sha256:` pin of the host CA, which clients and nodes check.
    pub fn ca_pin(&self) -> String {
        keygate_ca::ca_pin(self.inner.host_ca.get().x509_cert_der()).unwrap_or_default()
    }
}

impl AuthServer {
    /// Periodic housekeeping: expires leases, and now and then drops old
    /// store history (it holds superseded values, including old password
    /// hashes and sealed seeds; watchers only need the recent past).
    /// Errors are logged, not fatal.
    pub async fn sweep(&self) {
        if let Err(e) = self.repo().backend.expire_leases().await {
            tracing::warn!("expiring leases: {e}");
        }
        if let Err(e) = self.complete_due_rotations().await {
            tracing::warn!("completing CA rotations: {e}");
        }
        if let Err(e) = self.maybe_checkpoint().await {
            tracing::warn!("signing an audit checkpoint: {e}");
        }
        let now = self.clock().monotonic().as_secs();
        let last = self
            .inner
            .last_compaction
            .load(std::sync::atomic::Ordering::Relaxed);
        if now.saturating_sub(last) >= COMPACT_EVERY_SECS || last == 0 {
            self.inner
                .last_compaction
                .store(now.max(1), std::sync::atomic::Ordering::Relaxed);
            match self.repo().backend.current_revision().await {
                Ok(rev) if rev > KEEP_REVISIONS => {
                    if let Err(e) = self.repo().backend.compact(rev - KEEP_REVISIONS).await {
                        tracing::warn!("compacting store history: {e}");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("reading the store revision: {e}"),
            }
        }
    }
}
