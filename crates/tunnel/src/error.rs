//! The crate's one error type.

use std::io;
use std::time::Duration;

use thiserror::Error;

/// What went wrong with a tunnel, grouped by who is at fault.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TunnelError {
    // === the caller asked for something that is not there ===
    /// No live tunnel for this node on this proxy.
    #[error(
        "node {0:?} has no live tunnel to this proxy; check that its agent is running and can reach the proxy"
    )]
    NotConnected(String),

    // === limits ===
    /// The tunnel already carries as many streams as allowed.
    #[error(
        "node {node_id:?} already has {limit} open streams; wait for some to close or raise max_streams_per_tunnel"
    )]
    TooManyStreams {
        /// The node dialed.
        node_id: String,
        /// The limit in force.
        limit: usize,
    },
    /// The proxy already holds as many tunnels as allowed.
    #[error(
        "this proxy already holds {limit} tunnels; refusing node {node_id:?} (raise max_tunnels)"
    )]
    TooManyTunnels {
        /// The node refused.
        node_id: String,
        /// The limit in force.
        limit: usize,
    },

    // === the tunnel went away or stalled ===
    /// The tunnel closed (peer went away, replaced by a newer tunnel, or shut down).
    #[error("the tunnel closed; the node will reconnect by itself, try again shortly")]
    Closed,
    /// An operation did not finish in time.
    #[error("timed out after {after:?} while {what}")]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// How long we waited.
        after: Duration,
    },
    /// The peer stopped answering keepalives.
    #[error("no keepalive from the peer within {0:?}; the connection is considered dead")]
    KeepaliveTimeout(Duration),
    /// The multiplexer failed (I/O error or protocol violation underneath).
    #[error("tunnel multiplexer failed: {0}")]
    Mux(String),

    // === the peer is at fault ===
    /// The peer's certificate does not stand for the expected identity.
    #[error("the peer's certificate was refused: {0}")]
    PeerIdentity(String),
    /// The peer does not speak the tunnel protocol.
    #[error("the peer broke the tunnel protocol: {0}")]
    Protocol(String),

    // === network and configuration ===
    /// The TCP connection to the proxy could not be made.
    #[error(
        "could not connect to the proxy at {addr}: {source}; check the address and that the proxy is up"
    )]
    Connect {
        /// The proxy address dialed.
        addr: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The TLS handshake failed (untrusted certificate, wrong name, refused client cert…).
    #[error(
        "TLS handshake with {addr} failed: {source}; check the CA pin/host CA and the node certificate"
    )]
    Tls {
        /// The peer address.
        addr: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The configured proxy server name is not a valid DNS name or IP address.
    #[error("invalid proxy server name {0:?}: expected a DNS name or IP address")]
    ServerName(String),
    /// Reading or writing the tunnel failed.
    #[error("I/O on the tunnel failed: {0}")]
    Io(#[from] io::Error),
}

impl From<yamux::ConnectionError> for TunnelError {
    fn from(e: yamux::ConnectionError) -> Self {
        match e {
            yamux::ConnectionError::Closed => Self::Closed,
            other => Self::Mux(other.to_string()),
        }
    }
}
