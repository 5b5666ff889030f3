//! CA rotation (`kgctl auth rotate`): moves a CA through the state machine
//! of `keygate_ca::rotation`, stores it with a compare-and-swap, swaps it
//! in, and audits every step. `sweep` completes automatic rotations when
//! their grace period ends. Nodes learn new trust through their policy
//! watch (the CA keys are under `/secrets/ca/`, which the watch covers),
//! agentless hosts through `krl-sync`, clients at their next `kg login`.

use std::time::Duration;

use keygate_api::{RotateRequest, RotationStatus};
use keygate_audit_model::EventType;
use keygate_ca::{CaKind, CertAuthority, RotationPhase, RotationRequest, StoredCa};

use crate::audit::actor_of;
use crate::repo::ca_key;
use crate::{AuthError, AuthServer, Caller};

/// Default grace period: the longest a certificate can live (the cluster
/// cap), so nothing issued before the rotation is cut short.
const DEFAULT_GRACE: Duration = Duration::from_secs(30 * 3600);
/// CAs that rotate.
const ROTATABLE: [CaKind; 3] = [CaKind::User, CaKind::Host, CaKind::OpenSsh];

/// The status of `ca`.
pub(crate) fn status_of(ca: &CertAuthority) -> RotationStatus {
    let fp = |k: &str| keygate_ca::ssh_fingerprint(k).unwrap_or_default();
    let r = ca.rotation();
    RotationStatus {
        kind: ca.kind().as_str().into(),
        phase: r.phase.as_str().into(),
        mode: match r.mode {
            keygate_ca::RotationMode::Auto => "auto".into(),
            keygate_ca::RotationMode::Manual => "manual".into(),
        },
        grace_ends: r.grace_ends.map(|t| t.unix_timestamp()),
        signing: fp(&ca.ssh_public_key()),
        trusted: ca.trusted_ssh_keys().iter().map(|k| fp(k)).collect(),
    }
}

impl AuthServer {
    /// `POST /v1/ca/{kind}/rotate`.
    pub async fn rotate_ca(
        &self,
        caller: &Caller,
        kind: &str,
        req: RotateRequest,
    ) -> Result<RotationStatus, AuthError> {
        self.authorize_admin(caller, "cert_authority", "update")
            .await?;
        let kind: CaKind = kind
            .parse()
            .ok()
            .filter(|k| ROTATABLE.contains(k))
            .ok_or_else(|| {
                AuthError::BadRequest(format!(
                    "cannot rotate the {kind:?} CA: use --type user, host or openssh"
                ))
            })?;
        let request = match (req.rollback, req.phase.as_deref(), req.grace_secs) {
            (true, None, None) => RotationRequest::Rollback,
            (false, Some(p), None) => RotationRequest::Manual(
                p.parse::<RotationPhase>()
                    .map_err(|e| AuthError::BadRequest(e.to_string()))?,
            ),
            (false, None, grace) => RotationRequest::Auto {
                grace: grace.map_or(DEFAULT_GRACE, Duration::from_secs),
            },
            _ => {
                return Err(AuthError::BadRequest(
                    "give one of: --grace-period, --manual --phase P, --rollback".into(),
                ));
            }
        };
        let (from, to) = self.apply_rotation(kind, request).await?;
        let ca = self
            .ca(kind)
            .ok_or_else(|| AuthError::Internal(format!("the {kind} CA is missing")))?;
        let status = status_of(&ca);
        let ev = self
            .event(EventType::CaRotate)
            .actor(actor_of(caller))
            .success(true)
            .field("ca", kind.as_str())
            .field("from", from.as_str())
            .field("phase", to.as_str())
            .field("mode", status.mode.clone())
            .field("rollback", req.rollback)
            .field("signing", status.signing.clone())
            .field("trusted", serde_json::json!(status.trusted));
        self.audit(ev).await?;
        Ok(status)
    }

    /// Applies one transition to the stored CA and swaps the result in.
    async fn apply_rotation(
        &self,
        kind: CaKind,
        request: RotationRequest,
    ) -> Result<(RotationPhase, RotationPhase), AuthError> {
        let key = ca_key(kind.as_str());
        let (stored, rev) = self
            .repo()
            .get_json::<StoredCa>(&key)
            .await?
            .ok_or_else(|| AuthError::Internal(format!("the {kind} CA is not stored")))?;
        let now = self.clock().now();
        let next = stored
            .rotated(request, || stored.fresh_ssh_key_set(self.kek()), now)
            .map_err(|e| AuthError::Conflict(e.to_string()))?;
        let loaded = CertAuthority::from_stored(&next, self.kek())?;
        if !self.repo().cas_json(&key, rev, &next).await? {
            return Err(AuthError::Conflict(format!(
                "the {kind} CA changed concurrently; try again"
            )));
        }
        if let Some(slot) = self.ca_slot(kind) {
            slot.set(loaded);
        }
        Ok((stored.rotation.phase, next.rotation.phase))
    }

    /// Completes automatic rotations whose grace period is over.
    pub(crate) async fn complete_due_rotations(&self) -> Result<(), AuthError> {
        let now = self.clock().now();
        for kind in ROTATABLE {
            let Some((stored, _)) = self
                .repo()
                .get_json::<StoredCa>(&ca_key(kind.as_str()))
                .await?
            else {
                continue;
            };
            if !stored.rotation_due(now) {
                continue;
            }
            let (from, to) = self
                .apply_rotation(kind, RotationRequest::Manual(RotationPhase::Standby))
                .await?;
            let ev = self
                .event(EventType::CaRotate)
                .success(true)
                .field("ca", kind.as_str())
                .field("from", from.as_str())
                .field("phase", to.as_str())
                .field("mode", "auto")
                .field("reason", "grace period over");
            self.audit(ev).await?;
            tracing::info!(
                ca = kind.as_str(),
                "CA rotation completed: the old key is no longer trusted"
            );
        }
        Ok(())
    }

    /// Rotation state of every rotatable CA.
    pub fn rotation_statuses(&self) -> Vec<RotationStatus> {
        ROTATABLE
            .iter()
            .filter_map(|k| self.ca(*k))
            .map(|ca| status_of(&ca))
            .collect()
    }
}
