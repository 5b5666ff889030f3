//! Signed audit checkpoints: every [`CHECKPOINT_EVERY_EVENTS`] events or
//! [`CHECKPOINT_EVERY`] (whichever first, when anything was written) auth
//! signs the chain head `(seq, hash)` with the audit CA's SSH key (SSHSIG,
//! namespace `audit-checkpoint@keygate`) and stores it beside the log.
//! Exporters also ship them off the host, where a root who rewrites and
//! re-signs the local log cannot reach.

use std::sync::atomic::Ordering;
use std::time::Duration;

use keygate_audit_model::{CHECKPOINT_NAMESPACE, Checkpoint, SignedCheckpoint, hex};
use keygate_ca::CaKind;

use crate::{AuthError, AuthServer};

/// Checkpoint after this many new events.
pub const CHECKPOINT_EVERY_EVENTS: u64 = 1000;
/// ... or after this long with any new event.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

impl AuthServer {
    /// Signs and stores a checkpoint of the current head, unless the last
    /// one already covers it. Returns it.
    pub async fn checkpoint_now(&self) -> Result<Option<SignedCheckpoint>, AuthError> {
        let (seq, hash) = self
            .audit_log()
            .head()
            .await
            .map_err(|e| AuthError::Audit(e.to_string()))?;
        let last = self.inner_checkpoint_seq().load(Ordering::Relaxed);
        if seq == 0 || seq == last {
            return Ok(None);
        }
        let ca = self
            .ca(CaKind::Audit)
            .ok_or_else(|| AuthError::Internal("the audit CA is missing".into()))?;
        let checkpoint = Checkpoint {
            cluster: self.cluster().to_owned(),
            seq,
            hash: hex(&hash),
            time: self.clock().now(),
        };
        let signature =
            keygate_ca::sshsig_sign(ca.ssh_signer(), CHECKPOINT_NAMESPACE, &checkpoint.message())?;
        let signed = SignedCheckpoint {
            checkpoint,
            signature,
        };
        self.audit_log()
            .store_checkpoint(&signed)
            .await
            .map_err(|e| AuthError::Audit(e.to_string()))?;
        self.inner_checkpoint_seq().store(seq, Ordering::Relaxed);
        self.inner_checkpoint_events()
            .store(self.audit_log().stats().events, Ordering::Relaxed);
        self.inner_checkpoint_at()
            .store(self.clock().monotonic().as_secs().max(1), Ordering::Relaxed);
        Ok(Some(signed))
    }

    /// Called by `sweep`: a checkpoint when enough events or time passed.
    pub(crate) async fn maybe_checkpoint(&self) -> Result<(), AuthError> {
        // Both counts are this process's writes (the log's head may be
        // higher, from earlier runs: that does not change what is new).
        let written = self.audit_log().stats().events;
        let at_last = self.inner_checkpoint_events().load(Ordering::Relaxed);
        let last_at = self.inner_checkpoint_at().load(Ordering::Relaxed);
        let now = self.clock().monotonic().as_secs();
        let due_by_time = last_at == 0 || now.saturating_sub(last_at) >= CHECKPOINT_EVERY.as_secs();
        let due_by_count = written.saturating_sub(at_last) >= CHECKPOINT_EVERY_EVENTS;
        if due_by_time || due_by_count {
            self.checkpoint_now().await?;
        }
        Ok(())
    }

    /// Whether `cp`'s signature verifies with a trusted audit CA key.
    pub(crate) fn checkpoint_signature_ok(&self, cp: &SignedCheckpoint) -> bool {
        let Some(ca) = self.ca(CaKind::Audit) else {
            return false;
        };
        keygate_ca::sshsig_verify(
            &cp.signature,
            &ca.trusted_ssh_keys(),
            CHECKPOINT_NAMESPACE,
            &cp.checkpoint.message(),
        )
        .is_ok()
    }
}
