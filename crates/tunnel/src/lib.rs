//! Reverse tunnels between nodes and proxies.
//!
//! Nodes usually sit behind NAT, so the node dials *out* to the proxy over
//! mutually-authenticated TLS and keeps one multiplexed (yamux) connection
//! open; the proxy then opens streams back to the node over it. Each stream
//! carries one raw SSH connection end to end: this crate never looks inside.
//!
//! Owns: the proxy side ([`TunnelServer`]: accepting node tunnels, binding
//! each to the node id in the node's certificate, the registry of live
//! tunnels, opening streams), the node side ([`TunnelClient`]: dialing,
//! re-dialing with [`Backoff`], handing inbound streams to a callback), the
//! keepalive that notices a dead peer, and the limits that keep all of it
//! bounded ([`Limits`]).
//!
//! Does not own: issuing or trusting certificates (the caller builds the
//! rustls configs with `keygate-tls` from the host CA), what runs on a
//! stream (SSH: `keygate-sshd`), or authorizing who may dial which node (the
//! proxy's policy check happens before [`TunnelServer::dial`]).
//!
//! Wire format: TLS with ALPN [`TUNNEL_ALPN`], then yamux. The first stream
//! the node opens is the keepalive control stream (one-byte ping/pong);
//! every stream the proxy opens is handed to the node's callback.
#![forbid(unsafe_code)]

mod backoff;
mod client;
mod error;
mod identity;
mod keepalive;
mod mux;
mod server;
mod stream;

use std::time::Duration;

pub use backoff::Backoff;
pub use client::{TunnelClient, TunnelState};
pub use error::TunnelError;
pub use identity::{node_id_from_cert, require_proxy_cert};
pub use server::TunnelServer;
pub use stream::TunnelStream;

/// The ALPN protocol id of the tunnel, so that the proxy can tell tunnel
/// connections apart from HTTPS on a shared port. [`TunnelServer::serve`]
/// and [`TunnelClient`] set it on the configs they are given.
pub const TUNNEL_ALPN: &[u8] = b"keygate-tunnel/1";

/// Ceiling for [`Limits::max_streams_per_tunnel`]. Each stream may buffer
/// up to 256 KiB (the yamux window) on the receiving side, so this also
/// caps the memory one tunnel can pin.
pub const MAX_STREAMS_PER_TUNNEL_CEILING: usize = 1024;

/// Bounds on what the proxy accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most node tunnels held at once; further nodes are refused until one
    /// leaves (a reconnecting node replaces its own tunnel and is never
    /// refused for this reason).
    pub max_tunnels: usize,
    /// Most streams open at once over one tunnel (clamped to
    /// 1..=[`MAX_STREAMS_PER_TUNNEL_CEILING`]).
    pub max_streams_per_tunnel: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tunnels: 4096,
            max_streams_per_tunnel: 256,
        }
    }
}

impl Limits {
    /// The stream limit actually enforced.
    pub(crate) fn streams(&self) -> usize {
        self.max_streams_per_tunnel
            .clamp(1, MAX_STREAMS_PER_TUNNEL_CEILING)
    }

    /// The tunnel limit actually enforced.
    pub(crate) fn tunnels(&self) -> usize {
        self.max_tunnels.max(1)
    }
}

/// How a dead peer is noticed. The node pings every `interval` and gives up
/// when no answer arrives within `timeout`; the proxy gives up on a node it
/// has not heard from for `interval + timeout`. Both sides must use the
/// same values (the defaults notice a dead peer within 15 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Time between two pings from the node.
    pub interval: Duration,
    /// How long the node waits for the answer to one ping.
    pub timeout: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Keepalive {
    /// Longest silence the proxy tolerates from a node.
    pub(crate) fn idle_limit(&self) -> Duration {
        self.interval.saturating_add(self.timeout)
    }
}

/// First line the proxy writes on every tunnel stream it opens:
/// `KEYGATE-CLIENT <ip:port>\n`, the client's address as the proxy saw it,
/// so the node audits sessions with the real remote address. Only the
/// proxy can open streams on a tunnel, so the node may trust it.
pub const CLIENT_PREAMBLE: &str = "KEYGATE-CLIENT ";
