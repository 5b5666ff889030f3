//! Server settings and the russh configuration derived from them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{Certificate, PrivateKey};
use russh::{MethodKind, MethodSet, server};

/// Every rejected authentication takes this long, whatever failed, so the
/// timing of a refusal tells nothing about why.
pub const AUTH_REJECTION_TIME: Duration = Duration::from_millis(200);
/// OpenSSH's default; more attempts only help guessing.
const MAX_AUTH_ATTEMPTS: usize = 6;
/// Keepalives detect dead clients of idle interactive sessions.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Unanswered keepalives before the connection is dropped.
const KEEPALIVE_MAX: usize = 3;
/// Channel window: large enough for full-speed sftp on a LAN.
const WINDOW_SIZE: u32 = 4 * 1024 * 1024;
/// The largest packet we accept; what OpenSSH uses.
const MAX_PACKET_SIZE: u32 = 32 * 1024;
/// Connection garbage collection: nothing at all from the client (not even
/// a keepalive reply) for this long.
const INACTIVITY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How a node's SSH server is set up.
#[derive(Clone)]
pub struct ServerSettings {
    /// The node's Ed25519 host key.
    pub host_key: PrivateKey,
    /// The host certificate from the host CA, presented to clients that
    /// trust the host CA (`@cert-authority`).
    pub host_cert: Option<Certificate>,
    /// The node's registered name (audit, `SessionIdentity::node`).
    pub node_name: String,
    /// The node's id.
    pub node_id: String,
    /// Unauthenticated connections held at once; beyond it the idlest old
    /// one is evicted or the new one is closed at once.
    pub max_unauthenticated: usize,
    /// Authenticated connections (sessions) held at once.
    pub max_sessions: usize,
    /// Connections that have not authenticated within this are closed.
    pub auth_timeout: Duration,
}

impl ServerSettings {
    /// Settings with the usual limits (256 unauthenticated, 1024 sessions,
    /// 30 s to authenticate).
    pub fn new(host_key: PrivateKey, node_name: &str, node_id: &str) -> Self {
        Self {
            host_key,
            host_cert: None,
            node_name: node_name.to_owned(),
            node_id: node_id.to_owned(),
            max_unauthenticated: 256,
            max_sessions: 1024,
            auth_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSettings")
            .field("host_key", &"<redacted>")
            .field("host_cert", &self.host_cert.as_ref().map(|c| c.key_id()))
            .field("node_name", &self.node_name)
            .field("node_id", &self.node_id)
            .field("max_unauthenticated", &self.max_unauthenticated)
            .field("max_sessions", &self.max_sessions)
            .field("auth_timeout", &self.auth_timeout)
            .finish()
    }
}

/// The russh server configuration for `settings`.
pub(crate) fn russh_config(settings: &ServerSettings) -> Arc<server::Config> {
    let config = server::Config {
        server_id: russh::SshId::Standard("SSH-2.0-Keygate".into()),
        // Certificates only: no password, no keyboard-interactive, no none.
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: AUTH_REJECTION_TIME,
        // OpenSSH opens with a `none` probe to learn the methods; answering
        // it at once costs nothing and leaks nothing.
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![settings.host_key.clone()],
        certificates: settings.host_cert.iter().cloned().collect(),
        window_size: WINDOW_SIZE,
        maximum_packet_size: MAX_PACKET_SIZE,
        max_auth_attempts: MAX_AUTH_ATTEMPTS,
        inactivity_timeout: Some(INACTIVITY_TIMEOUT),
        keepalive_interval: Some(KEEPALIVE_INTERVAL),
        keepalive_max: KEEPALIVE_MAX,
        nodelay: true,
        ..Default::default()
    };
    Arc::new(config)
}
