//! What the relay asks of the cluster: the [`RelayAuthority`] (the proxy
//! implements it by calling auth) and the [`RelayEvents`] tap.

use std::net::SocketAddr;
use std::time::Duration;

use time::OffsetDateTime;

/// Decides and certifies on the relay's behalf.
#[async_trait::async_trait]
pub trait RelayAuthority: Send + Sync + 'static {
    /// User-CA public keys (OpenSSH lines) currently trusted, for the
    /// relay's own first check of an offered certificate.
    fn trusted_user_ca_keys(&self) -> Vec<String>;

    /// Re-reads the trusted keys now (a certificate from a CA key the relay
    /// does not know yet, e.g. right after a rotation). Implementations
    /// rate-limit it.
    async fn refresh_trust(&self) {}

    /// A host certificate (OpenSSH line) for `host_public_key` carrying the
    /// names of `node`, to present to the user's client.
    async fn host_cert(&self, node: &str, host_public_key: &str) -> Result<String, String>;

    /// The access decision for one session and, when allowed, a
    /// short-lived openssh-CA certificate for the relay's upstream key.
    /// `Err` carries the denial text shown to the user.
    async fn open(&self, req: &OpenRequest) -> Result<UpstreamGrant, String>;
}

/// One session the relay wants to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    /// Target node name or id.
    pub node: String,
    /// OS login asked for.
    pub login: String,
    /// The user's certificate (OpenSSH line), already verified by the SSH
    /// layer (signature of the session) and by the relay (CA, principal).
    pub user_cert: String,
    /// The relay's fresh upstream public key (OpenSSH line).
    pub public_key: String,
    /// The client's address.
    pub client: SocketAddr,
}

/// What the cluster allowed, with the means to reach the host.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamGrant {
    /// Session id.
    pub session_id: String,
    /// The user.
    pub user: String,
    /// openssh-CA certificate for the upstream key (OpenSSH line).
    pub cert: String,
    /// The host's sshd (`host:port`).
    pub addr: String,
    /// Host CA keys the host certificate must chain to.
    pub host_ca_keys: Vec<String>,
    /// Names one of which the host certificate must carry.
    pub host_principals: Vec<String>,
    /// `ssh -L` allowed.
    pub port_forwarding: bool,
    /// Idle timeout.
    pub idle_timeout: Option<Duration>,
    /// Hard end of the session.
    pub disconnect_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for UpstreamGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamGrant")
            .field("session_id", &self.session_id)
            .field("user", &self.user)
            .field("addr", &self.addr)
            .field("host_principals", &self.host_principals)
            .field("port_forwarding", &self.port_forwarding)
            .finish_non_exhaustive()
    }
}

/// Who a relayed session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySession {
    /// Session id (from the grant).
    pub session_id: String,
    /// User.
    pub user: String,
    /// OS login on the host.
    pub login: String,
    /// Node name as the client asked for it.
    pub node: String,
    /// Client address.
    pub client: SocketAddr,
}

/// Something that happened in a relayed session, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// Authenticated on both legs.
    SessionStart {
        /// The session.
        session: RelaySession,
    },
    /// The connection ended.
    SessionEnd {
        /// The session.
        session: RelaySession,
        /// Why (`client closed`, `host closed`, `terminated: …`, `idle`…).
        reason: String,
        /// Bytes from client to host.
        bytes_in: u64,
        /// Bytes from host to client.
        bytes_out: u64,
    },
    /// A command, shell or subsystem started on a channel.
    Exec {
        /// The session.
        session: RelaySession,
        /// `shell`, the command, or `subsystem:NAME`.
        command: String,
        /// Whether the host accepted it.
        accepted: bool,
    },
    /// A command ended with a status.
    ExitStatus {
        /// The session.
        session: RelaySession,
        /// The command as started.
        command: String,
        /// Exit status.
        status: u32,
    },
    /// `ssh -L`.
    PortForward {
        /// The session.
        session: RelaySession,
        /// Destination.
        target: String,
        /// Whether it was allowed (and the host accepted it).
        allowed: bool,
        /// Why not, when not.
        reason: Option<String>,
    },
    /// A request the relay refused.
    Refused {
        /// The session, if authenticated.
        session: Option<RelaySession>,
        /// Client address.
        client: SocketAddr,
        /// What was asked.
        request: String,
        /// Why.
        reason: String,
    },
}

/// Receives relay events (the proxy sends them to auth's audit log).
pub trait RelayEvents: Send + Sync + 'static {
    /// Must not block.
    fn event(&self, ev: RelayEvent);
}
