//! The client side shared by `kg` and `kgctl`.
//!
//! Owns: client key pairs (one Ed25519 key serves SSH and mTLS), the
//! profile layout under `KEYGATE_HOME` (`~/.keygate/<proxy>/`), the
//! identity-file format of `kgctl auth sign`, trust on first contact (CA
//! pin), adding keys to a running ssh-agent, and building API clients.
//! Does not own: argument parsing or output formatting (the binaries).
#![forbid(unsafe_code)]

mod agent;
mod connect;
mod failure;
mod identity;
mod key;
mod profile;
mod trust;

pub use agent::add_to_agent;
pub use connect::{connect_node, query_escape};
pub use failure::Failure;
pub use identity::{IdentityFile, parse_identity_file};
pub use key::ClientKey;
pub use profile::{Home, Profile, write_private};
pub use trust::{TrustError, anonymous_client, authenticated_client, fetch_ca};

use thiserror::Error;

/// Client-side failures; each message says what to do next.
#[derive(Debug, Error)]
pub enum ClientError {
    /// Local file problems.
    #[error("{0}")]
    Io(String),
    /// Not logged in, or the profile is unusable.
    #[error("{0}")]
    Profile(String),
    /// Bad key or certificate material.
    #[error("{0}")]
    Material(String),
    /// The proxy refused or failed to connect us to a node.
    #[error("{message}")]
    Connect {
        /// Whether it was a "no" (not found, denied) rather than a failure.
        denied: bool,
        /// What the proxy said.
        message: String,
    },
}

pub mod output;
