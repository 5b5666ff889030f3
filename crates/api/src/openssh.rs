//! Shapes of the proxy ↔ auth calls behind agentless OpenSSH hosts: the
//! proxy's relay asks auth for a host certificate to present for a node,
//! and, per session, for a decision plus a 1-minute openssh-CA certificate
//! to re-originate the session with.

use serde::{Deserialize, Serialize};

/// `POST /v1/openssh/host-cert` (proxy only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSshHostCertRequest {
    /// Agentless node name or id.
    pub node: String,
    /// The relay's host public key (OpenSSH line).
    pub public_key: String,
}

/// A host certificate for the relay, valid for one node's names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenSshHostCert {
    /// The certificate (OpenSSH line).
    pub cert: String,
    /// End of validity (Unix seconds); the proxy renews before it.
    pub valid_before: i64,
}

/// `POST /v1/openssh/session` (proxy only): may this certificate open a
/// session as `login` on the agentless node, and with what upstream
/// certificate?
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSshSessionRequest {
    /// Agentless node name or id.
    pub node: String,
    /// OS login asked for.
    pub login: String,
    /// The user's certificate as presented to the relay (OpenSSH line).
    pub user_cert: String,
    /// The relay's fresh upstream public key (OpenSSH line) to certify.
    pub public_key: String,
    /// The client's address as the proxy saw it.
    pub client_addr: String,
}

/// What auth decided for an agentless session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenSshSessionGrant {
    /// Session id (audit, locks).
    pub session_id: String,
    /// User (the certificate's key id).
    pub user: String,
    /// The 1-minute openssh-CA certificate for `public_key` (OpenSSH line).
    pub cert: String,
    /// Where the host's sshd listens (`host:port`).
    pub addr: String,
    /// Host CA public keys (OpenSSH lines) the host certificate must chain to.
    pub host_ca_keys: Vec<String>,
    /// Names one of which the host certificate must carry.
    pub host_principals: Vec<String>,
    /// `ssh -L` allowed.
    pub port_forwarding: bool,
    /// Idle timeout in seconds.
    #[serde(default)]
    pub idle_timeout_secs: Option<u64>,
    /// End the session at this time (Unix seconds), when set.
    #[serde(default)]
    pub disconnect_at: Option<i64>,
    /// Role and rule that allowed it.
    pub allowed_by: String,
}

/// A live relayed session, as the proxy asks auth to re-check it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSshLiveSession {
    /// Session id.
    pub session_id: String,
    /// Node name or id.
    pub node: String,
    /// Login.
    pub login: String,
    /// The user's certificate (OpenSSH line).
    pub user_cert: String,
}

/// `POST /v1/openssh/recheck`: the sessions no longer allowed, with why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenSshRevoked {
    /// Session id.
    pub session_id: String,
    /// Why (the lock message or the denial).
    pub reason: String,
}

/// `POST /v1/certs/host` (`kgctl auth sign --host`): certify an agentless
/// node's own sshd host key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSignRequest {
    /// Agentless node name or id.
    pub node: String,
    /// The sshd host public key (OpenSSH line).
    pub public_key: String,
    /// Lifetime in seconds (default 30 days).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// The host certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostSignResponse {
    /// OpenSSH certificate line (for `HostCertificate`).
    pub cert: String,
    /// Names it carries.
    pub principals: Vec<String>,
    /// End of validity (Unix seconds).
    pub valid_before: i64,
}

/// `GET /v1/krl`: the cluster's key revocation list for OpenSSH hosts,
/// public like the CA keys (it names revoked key ids and serials only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KrlBundle {
    /// KRL version (grows with every change).
    pub version: u64,
    /// When it was generated (Unix seconds).
    pub generated_at: i64,
    /// The binary OpenSSH KRL, base64.
    pub krl: String,
    /// Detached SSHSIGs over the KRL bytes (namespace `krl@keygate`), one
    /// per trusted openssh CA key, the active key's first: during a
    /// rotation a host that knows only one of the keys can still check it.
    pub signatures: Vec<String>,
    /// The openssh CA's trusted public keys (for `TrustedUserCAKeys`).
    pub openssh_ca_keys: Vec<String>,
}

/// `POST /v1/ca/{kind}/rotate` (`kgctl auth rotate`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Automatic rotation: how long the old key stays trusted (default 30 h,
    /// the longest a certificate lives).
    #[serde(default)]
    pub grace_secs: Option<u64>,
    /// Manual rotation: the phase to move to (`init`, `update_clients`,
    /// `update_servers`, `standby`).
    #[serde(default)]
    pub phase: Option<String>,
    /// Abandon the rotation and go back to the old key.
    #[serde(default)]
    pub rollback: bool,
}

/// A CA's rotation state after a request (also in `kgctl status`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotationStatus {
    /// CA kind.
    pub kind: String,
    /// Phase.
    pub phase: String,
    /// `auto` or `manual`.
    pub mode: String,
    /// When an automatic rotation completes (Unix seconds).
    #[serde(default)]
    pub grace_ends: Option<i64>,
    /// Fingerprint of the key that signs now.
    pub signing: String,
    /// Fingerprints of every trusted SSH key.
    pub trusted: Vec<String>,
}
