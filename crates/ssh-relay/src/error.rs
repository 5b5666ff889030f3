//! What can go wrong in the relay.

/// A relay failure; the message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The SSH protocol layer (russh) failed on either side.
    #[error("ssh protocol error: {0}")]
    Protocol(#[from] russh::Error),
    /// Keys or certificates could not be encoded or parsed.
    #[error("key material: {0}")]
    Material(String),
    /// The host's sshd could not be reached or refused us.
    #[error("{0}")]
    Upstream(String),
}

impl From<russh::keys::Error> for RelayError {
    fn from(e: russh::keys::Error) -> Self {
        Self::Material(e.to_string())
    }
}

impl From<russh::keys::ssh_key::Error> for RelayError {
    fn from(e: russh::keys::ssh_key::Error) -> Self {
        Self::Material(e.to_string())
    }
}
