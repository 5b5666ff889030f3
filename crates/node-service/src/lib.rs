//! The node (agent).
//!
//! Owns: joining (once) and renewing the node's identity, the policy
//! snapshot (roles, locks, trusted user CA keys, the node's authoritative
//! labels) refreshed as soon as auth reports a change, heartbeats, sending
//! audit events to auth, and wiring the SSH server to the reverse tunnel.
//! Access decisions are made here, locally, by `keygate_policy::authorize`
//! over the snapshot, so sessions keep working through short auth outages.
//! Does not own: the SSH protocol (keygate-sshd), tunnels (keygate-tunnel).
#![forbid(unsafe_code)]

mod cache;
mod decide;
mod events;
mod glue;
mod identity;
mod run;

pub use cache::{PolicyCache, Snapshot};
pub use decide::{CertFacts, Grant, decide};
pub use events::EventUploader;
pub use identity::{IdentityStore, LoadedIdentity, spki_b64};
pub use run::{NodeConfig, RunningNode, identity, start};

use thiserror::Error;

/// Node failures; each message says what to do.
#[derive(Debug, Error)]
pub enum NodeError {
    /// Identity files or join problems.
    #[error("{0}")]
    Identity(String),
    /// Talking to auth failed.
    #[error(transparent)]
    Api(#[from] keygate_api::ApiError),
}
