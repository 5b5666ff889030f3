//! CA rotation as a by-value state machine over [`StoredCa`]
//! (ARCHITECTURE.md §2): `standby → init → update_clients →
//! update_servers → standby`, or all at once with a grace period, with
//! rollback from any phase. Only the SSH keys rotate; a CA's X.509
//! certificate (whose key is the CA pin for the host CA) stays.
//!
//! | phase | signs with | trusted |
//! |---|---|---|
//! | standby | active | active |
//! | init | active (old) | old + next |
//! | update_clients, update_servers | new | new + previous (old) |
//!
//! Trusting both keys from `init` on gives verifiers (nodes, agentless
//! hosts, clients' `known_hosts`) time to learn the new key before
//! anything signed by it shows up, and keeps the old certificates valid
//! until the rotation completes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::authority::{StoredCa, StoredKeySet};
use crate::error::CaError;

/// Where a rotation stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationPhase {
    /// No rotation.
    #[default]
    Standby,
    /// The next key exists and is trusted; the old one still signs.
    Init,
    /// The new key signs; the old one is still trusted.
    UpdateClients,
    /// As `update_clients`; servers re-issue their host certificates.
    UpdateServers,
}

/// Who moves the rotation on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationMode {
    /// Auth completes it when the grace period ends.
    #[default]
    Auto,
    /// An admin moves it phase by phase.
    Manual,
}

/// A CA's rotation state, stored with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationState {
    /// Current phase.
    #[serde(default)]
    pub phase: RotationPhase,
    /// Automatic or manual.
    #[serde(default)]
    pub mode: RotationMode,
    /// When the rotation started.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started: Option<OffsetDateTime>,
    /// When an automatic rotation completes (the old key stops being
    /// trusted).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub grace_ends: Option<OffsetDateTime>,
}

impl RotationState {
    /// Whether there is no rotation (for `skip_serializing_if`).
    pub fn is_standby(&self) -> bool {
        self.phase == RotationPhase::Standby
    }
}

/// What an admin asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationRequest {
    /// Rotate now, trusting the old key for `grace` more.
    Auto {
        /// How long old certificates stay valid.
        grace: Duration,
    },
    /// Move a manual rotation to this phase.
    Manual(RotationPhase),
    /// Abandon the rotation and go back to the old key.
    Rollback,
}

impl RotationPhase {
    /// The phase's name as the CLI and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standby => "standby",
            Self::Init => "init",
            Self::UpdateClients => "update_clients",
            Self::UpdateServers => "update_servers",
        }
    }
}

impl std::str::FromStr for RotationPhase {
    type Err = CaError;

    fn from_str(s: &str) -> Result<Self, CaError> {
        [
            Self::Standby,
            Self::Init,
            Self::UpdateClients,
            Self::UpdateServers,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| {
            CaError::request(
                "phase",
                format!("unknown phase {s:?}: use init, update_clients, update_servers or standby"),
            )
        })
    }
}

fn refuse(msg: String) -> CaError {
    CaError::request("rotation", msg)
}

impl StoredCa {
    /// The CA after `req`, or why it cannot be done now. `fresh` makes the
    /// new key set (called only when one is needed).
    pub fn rotated(
        &self,
        req: RotationRequest,
        fresh: impl FnOnce() -> Result<StoredKeySet, CaError>,
        now: OffsetDateTime,
    ) -> Result<StoredCa, CaError> {
        let phase = self.rotation.phase;
        let mut out = self.clone();
        match req {
            RotationRequest::Auto { grace } => {
                if phase != RotationPhase::Standby {
                    return Err(refuse(format!(
                        "the {} CA is already rotating (phase {}): finish it with --manual --phase … or undo it with --rollback",
                        self.kind,
                        phase.as_str()
                    )));
                }
                out.previous = Some(self.active.clone());
                out.active = fresh()?;
                out.next = None;
                out.rotation = RotationState {
                    phase: RotationPhase::UpdateServers,
                    mode: RotationMode::Auto,
                    started: Some(now),
                    grace_ends: Some(now + grace),
                };
            }
            RotationRequest::Manual(to) => {
                match (phase, to) {
                    (RotationPhase::Standby, RotationPhase::Init) => {
                        out.next = Some(fresh()?);
                        out.rotation = RotationState {
                            phase: to,
                            mode: RotationMode::Manual,
                            started: Some(now),
                            grace_ends: None,
                        };
                    }
                    (RotationPhase::Init, RotationPhase::UpdateClients) => {
                        let next = self.next.clone().ok_or_else(|| {
                            CaError::corrupt("rotation in init without a next key")
                        })?;
                        out.previous = Some(self.active.clone());
                        out.active = next;
                        out.next = None;
                        out.rotation.phase = to;
                    }
                    (RotationPhase::UpdateClients, RotationPhase::UpdateServers) => {
                        out.rotation.phase = to;
                    }
                    // Completing: the old key stops being trusted (an
                    // automatic rotation may be completed early too).
                    (RotationPhase::UpdateServers, RotationPhase::Standby) => {
                        out.previous = None;
                        out.rotation = RotationState::default();
                    }
                    (from, to) => {
                        return Err(refuse(format!(
                            "cannot go from {} to {}: the phases are standby → init → update_clients → update_servers → standby",
                            from.as_str(),
                            to.as_str()
                        )));
                    }
                }
            }
            RotationRequest::Rollback => match phase {
                RotationPhase::Standby => {
                    return Err(refuse(format!(
                        "the {} CA is not rotating: nothing to roll back",
                        self.kind
                    )));
                }
                RotationPhase::Init => {
                    out.next = None;
                    out.rotation = RotationState::default();
                }
                RotationPhase::UpdateClients | RotationPhase::UpdateServers => {
                    let old = self.previous.clone().ok_or_else(|| {
                        CaError::corrupt("rotation past init without the previous key")
                    })?;
                    out.active = old;
                    out.previous = None;
                    out.next = None;
                    out.rotation = RotationState::default();
                }
            },
        }
        Ok(out)
    }

    /// Whether an automatic rotation's grace period is over at `now`.
    pub fn rotation_due(&self, now: OffsetDateTime) -> bool {
        self.rotation.mode == RotationMode::Auto
            && self.rotation.phase != RotationPhase::Standby
            && self.rotation.grace_ends.is_some_and(|t| t <= now)
    }
}

#[cfg(test)]
#[path = "rotation_tests.rs"]
mod tests;
