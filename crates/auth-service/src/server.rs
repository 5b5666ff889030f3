use std::sync::Arc;

use keygate_audit::AuditLog;
use keygate_ca::{CaKind, CertAuthority, Kek};
use keygate_clock::SharedClock;

use crate::bootstrap::AuthOptions;
use crate::ratelimit::SourceLimiter;
use crate::repo::Repo;

/// Handle to the auth service state. Cheap to clone.
#[derive(Clone)]
pub struct AuthServer {
    /// Shared state.
    inner: Arc<Inner>,
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
    pub user_ca: CertAuthority,
    /// The host CA: host certificates and every TLS server certificate.
    pub host_ca: CertAuthority,
    /// The audit CA: signs audit checkpoints.
    pub audit_ca: CertAuthority,
    /// Per-source failure tracking.
    pub limiter: SourceLimiter,
    /// Settings.
    pub opts: AuthOptions,
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

    pub(crate) fn audit_log(&self) -> &AuditLog {
        &self.inner.audit
    }

    pub(crate) fn kek(&self) -> &Kek {
        &self.inner.kek
    }

    pub(crate) fn limiter(&self) -> &SourceLimiter {
        &self.inner.limiter
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
    pub fn ca(&self, kind: CaKind) -> Option<&CertAuthority> {
        match kind {
            CaKind::User => Some(&self.inner.user_ca),
            CaKind::Host => Some(&self.inner.host_ca),
            CaKind::Audit => Some(&self.inner.audit_ca),
            _ => None,
        }
    }

    pub(crate) fn user_ca(&self) -> &CertAuthority {
        &self.inner.user_ca
    }

    pub(crate) fn host_ca(&self) -> &CertAuthority {
        &self.inner.host_ca
    }

    /// `sha256:` pin of the host CA, which clients and nodes check.
    pub fn ca_pin(&self) -> String {
        keygate_ca::ca_pin(self.inner.host_ca.x509_cert_der()).unwrap_or_default()
    }
}

impl AuthServer {
    /// Periodic housekeeping: expires leases. Errors are logged, not fatal.
    pub async fn sweep(&self) {
        if let Err(e) = self.repo().backend.expire_leases().await {
            tracing::warn!("expiring leases: {e}");
        }
    }
}
