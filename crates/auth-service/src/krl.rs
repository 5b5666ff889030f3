//! The key revocation list for OpenSSH hosts (ARCHITECTURE.md §6): locks
//! expanded into what sshd can revoke — key ids (a user, and every user
//! holding a locked role) and serials — under the user and openssh CAs,
//! as an unsigned OpenSSH KRL with detached SSHSIGs by the openssh CA
//! (one per trusted key, so rotations keep the chain of trust).
//!
//! Login, node, MFA-device and session locks cannot be expressed in a KRL
//! (it revokes certificates, not principals): the relay enforces those,
//! and it is the only holder of openssh-CA certificates.

use std::collections::BTreeSet;

use base64::Engine;
use keygate_api::KrlBundle;
use keygate_ca::{CaKind, KRL_SIG_NAMESPACE, Krl, KrlCaSection};
use keygate_types::{AnyResource, Kind, LockTarget};

use crate::{AuthError, AuthServer};

impl AuthServer {
    /// The current KRL.
    pub async fn krl(&self) -> Result<Krl, AuthError> {
        let now = self.clock().now();
        let locks = self.repo().locks().await?;
        let mut key_ids = BTreeSet::new();
        let mut serials = BTreeSet::new();
        let mut roles = BTreeSet::new();
        for l in locks
            .iter()
            .filter(|l| l.metadata.expires.is_none_or(|e| e > now))
        {
            match &l.spec.target {
                LockTarget::User(u) => {
                    key_ids.insert(u.clone());
                }
                LockTarget::Role(r) => {
                    roles.insert(r.clone());
                }
                // Serial 0 means "no serial" to OpenSSH and cannot be listed.
                LockTarget::Serial(s) => {
                    if let Ok(n) = s.parse::<u64>()
                        && n != 0
                    {
                        serials.insert(n);
                    }
                }
                _ => {}
            }
        }
        if !roles.is_empty() {
            for r in self.repo().list_resources(Kind::User).await? {
                if let AnyResource::User(u) = r
                    && u.spec
                        .roles
                        .iter()
                        .any(|role| roles.contains(role.as_str()))
                {
                    key_ids.insert(u.metadata.name.clone());
                }
            }
        }
        let version = u64::try_from(self.repo().backend.current_revision().await?).unwrap_or(0);
        let mut krl = Krl::new(version, now, format!("keygate {}", self.cluster()));
        for kind in [CaKind::OpenSsh, CaKind::User] {
            let Some(ca) = self.ca(kind) else { continue };
            for key in ca.trusted_ssh_keys() {
                if serials.is_empty() && key_ids.is_empty() {
                    continue;
                }
                krl.certificates.push(KrlCaSection {
                    ca_public_key: key,
                    serials: serials.clone(),
                    key_ids: key_ids.clone(),
                });
            }
        }
        Ok(krl)
    }

    /// `GET /v1/krl`: the KRL, signed.
    pub async fn krl_bundle(&self) -> Result<KrlBundle, AuthError> {
        let krl = self.krl().await?;
        let bytes = krl.encode()?;
        let ca = self
            .ca(CaKind::OpenSsh)
            .ok_or_else(|| AuthError::Internal("the openssh CA is missing".into()))?;
        let signatures = ca
            .all_ssh_signers()
            .into_iter()
            .map(|s| keygate_ca::sshsig_sign(s, KRL_SIG_NAMESPACE, &bytes))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KrlBundle {
            version: krl.version,
            generated_at: krl.generated_at.unix_timestamp(),
            krl: base64::engine::general_purpose::STANDARD.encode(&bytes),
            signatures,
            openssh_ca_keys: ca.trusted_ssh_keys(),
        })
    }
}
