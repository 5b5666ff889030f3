//! Request and response bodies under `/v1/`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// `POST /v1/login`: password (+ TOTP) for certificates.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// User name.
    pub user: String,
    /// Password (never logged).
    pub password: String,
    /// Current TOTP code, when the user has one.
    #[serde(default)]
    pub otp: Option<String>,
    /// The client's public key (OpenSSH `ssh-ed25519 AAAA…`); used for both
    /// the SSH and the X.509 certificate.
    pub public_key: String,
    /// Requested lifetime in seconds (capped by roles; default 12 h).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("otp", &self.otp.as_ref().map(|_| "<redacted>"))
            .field("public_key", &self.public_key)
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

/// `POST /v1/certs/renew` (authenticated by the current certificate).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// Public key to certify (may be a new one).
    pub public_key: String,
    /// Requested lifetime in seconds.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// Certificates for a user or bot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertsResponse {
    /// Whose certificates these are.
    pub user: String,
    /// Cluster name.
    pub cluster: String,
    /// OpenSSH user certificate line.
    pub ssh_cert: String,
    /// X.509 client certificate (PEM).
    pub x509_cert_pem: String,
    /// Host CA certificate (PEM): what TLS servers chain to.
    pub host_ca_pem: String,
    /// Host CA SSH public keys (for `@cert-authority` in known_hosts).
    pub host_ca_ssh: Vec<String>,
    /// User CA SSH public keys (for `TrustedUserCAKeys`).
    pub user_ca_ssh: Vec<String>,
    /// Logins in the certificate.
    pub principals: Vec<String>,
    /// The user's roles.
    pub roles: Vec<String>,
    /// Certificate serial.
    pub serial: u64,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_before: OffsetDateTime,
}

/// `POST /v1/signup`: complete an invitation.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The token `kgctl users add` printed.
    pub token: String,
    /// The new password.
    pub password: String,
}

impl fmt::Debug for SignupRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignupRequest { token: <redacted>, password: <redacted> }")
    }
}

/// Answer to a sign-up.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignupResponse {
    /// The user whose sign-up completed.
    pub user: String,
    /// `otpauth://` URI to load into an authenticator app, when TOTP is
    /// required. Shown once.
    #[serde(default)]
    pub totp_uri: Option<String>,
}

impl fmt::Debug for SignupResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignupResponse")
            .field("user", &self.user)
            .field("totp_uri", &"<redacted>")
            .finish()
    }
}

/// One certificate authority in `kgctl status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaInfo {
    /// `user`, `host`, `audit`, …
    pub kind: String,
    /// SSH key fingerprints (`SHA256:…`), active first.
    pub ssh_fingerprints: Vec<String>,
    /// X.509 SPKI pin (`sha256:…`).
    pub x509_pin: String,
    /// Rotation phase (`standby` when not rotating).
    #[serde(default)]
    pub rotation: Option<String>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusResponse {
    /// Cluster name.
    pub cluster: String,
    /// Pin clients and nodes use on first contact.
    pub ca_pin: String,
    /// Server version.
    pub version: String,
    /// Every CA.
    pub cas: Vec<CaInfo>,
    /// The caller, as the server sees them.
    pub caller: String,
    /// The proxy's public address, when auth knows it.
    #[serde(default)]
    pub proxy_addr: Option<String>,
}

/// `POST /v1/users`: invite a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddUserRequest {
    /// New user's name.
    pub name: String,
    /// Roles to grant.
    pub roles: Vec<String>,
    /// Traits, including `logins`.
    #[serde(default)]
    pub traits: BTreeMap<String, Vec<String>>,
    /// How long the sign-up token lives, in seconds (default 1 h).
    #[serde(default)]
    pub token_ttl_secs: Option<u64>,
}

/// Answer to an invitation or a reset.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignupToken {
    /// The user.
    pub user: String,
    /// The one-time token (shown once, stored hashed).
    pub token: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
}

impl fmt::Debug for SignupToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignupToken")
            .field("user", &self.user)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `POST /v1/certs/sign`: certificates for a named user (admin only) —
/// `kgctl auth sign`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// Whose identity to issue.
    pub user: String,
    /// Public key to certify.
    pub public_key: String,
    /// Lifetime in seconds.
    pub ttl_secs: u64,
}

/// `POST /v1/resources`: create or overwrite.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutResourceRequest {
    /// The resource (kind/version/metadata/spec).
    pub resource: serde_json::Value,
    /// Overwrite an existing one.
    #[serde(default)]
    pub force: bool,
}

/// `GET /v1/ca/{kind}`: a CA's public material.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaExport {
    /// CA kind.
    pub kind: String,
    /// SSH public keys (OpenSSH lines), active first.
    pub ssh_public_keys: Vec<String>,
    /// X.509 CA certificate (PEM).
    pub x509_pem: String,
}

/// Generic acknowledgement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ack {
    /// What was done.
    pub message: String,
}

/// `POST /v1/tokens`: a join token (admin).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// What the token admits: `node`.
    pub kind: String,
    /// Lifetime in seconds (default 30 min).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// Labels given to what joins (authoritative).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Usable more than once.
    #[serde(default)]
    pub reusable: bool,
}

/// A new join token, shown once.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The secret.
    pub token: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Pin the joining node checks.
    pub ca_pin: String,
    /// Proxy address to join through, when known.
    #[serde(default)]
    pub proxy_addr: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

/// `POST /v1/join`: a node presents a token and its public keys.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The join token.
    pub token: String,
    /// The node's name (unique among live nodes).
    pub node_name: String,
    /// The node's SSH host public key (OpenSSH line).
    pub ssh_public_key: String,
    /// The node's TLS public key (SubjectPublicKeyInfo DER, base64).
    pub tls_spki_b64: String,
    /// Address for direct dial, if any.
    #[serde(default)]
    pub addr: Option<String>,
    /// Labels the node reports itself (never override authoritative ones).
    #[serde(default)]
    pub self_labels: BTreeMap<String, String>,
}

impl fmt::Debug for JoinRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinRequest")
            .field("token", &"<redacted>")
            .field("node_name", &self.node_name)
            .finish()
    }
}

/// What a node gets back from joining or renewing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// Assigned id (bound into its certificates).
    pub node_id: String,
    /// Its registered name.
    pub node_name: String,
    /// Cluster name.
    pub cluster: String,
    /// SSH host certificate (OpenSSH line).
    pub host_cert: String,
    /// X.509 certificate for the tunnel (PEM).
    pub x509_cert_pem: String,
    /// Host CA certificate (PEM).
    pub host_ca_pem: String,
    /// Trusted user CA keys.
    pub user_ca_ssh: Vec<String>,
    /// Where to dial the reverse tunnel.
    #[serde(default)]
    pub tunnel_addr: Option<String>,
    /// End of validity of the certificates.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_before: OffsetDateTime,
}

/// `POST /v1/nodes/heartbeat`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Direct-dial address, if any.
    #[serde(default)]
    pub addr: Option<String>,
    /// Self-reported labels (including command labels).
    #[serde(default)]
    pub self_labels: BTreeMap<String, String>,
    /// Agent version.
    #[serde(default)]
    pub version: String,
    /// Live sessions on the node.
    #[serde(default)]
    pub sessions: Vec<SessionSummary>,
}

/// A live session, as nodes report it and `kgctl sessions ls` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionSummary {
    /// Session id (also `KEYGATE_SESSION_ID` in the session).
    pub id: String,
    /// Keygate user.
    pub user: String,
    /// OS login.
    pub login: String,
    /// Node name (set by auth).
    #[serde(default)]
    pub node: String,
    /// Client address.
    pub remote: String,
    /// Start time.
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
}

/// `GET /v1/nodes/snapshot`: what a node needs to decide locally.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// Store revision the snapshot reflects.
    pub revision: i64,
    /// Every role (resources as JSON).
    pub roles: Vec<serde_json::Value>,
    /// Every lock.
    pub locks: Vec<serde_json::Value>,
    /// Trusted user CA keys.
    pub user_ca_ssh: Vec<String>,
    /// The node's authoritative labels.
    pub labels: BTreeMap<String, String>,
    /// The node's name.
    pub node_name: String,
    /// The host CA key that signs host certificates now; a node whose
    /// host certificate was signed by another key (a rotation) renews it.
    #[serde(default)]
    pub host_ca_signing: Option<String>,
}

/// `GET /v1/nodes/watch?from=REV`: long poll for relevant changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchResponse {
    /// Latest revision seen.
    pub revision: i64,
    /// Whether something changed since `from`.
    pub changed: bool,
}

/// A node as a user sees it (`kg ls`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Name.
    pub name: String,
    /// Id.
    pub id: String,
    /// Effective labels (self labels, overridden by authoritative ones).
    pub labels: BTreeMap<String, String>,
    /// Direct address, if any.
    #[serde(default)]
    pub addr: Option<String>,
    /// Logins the caller may use there.
    pub logins: Vec<String>,
    /// `keygate` (agent) or `openssh` (agentless, reached through the
    /// proxy's relay).
    #[serde(default = "keygate_sub_kind")]
    pub sub_kind: String,
}

fn keygate_sub_kind() -> String {
    "keygate".into()
}

// === access explanations (`kgctl access …`) ===

/// `POST /v1/access/explain`: why may (or may not) a user log in to a node?
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// User name.
    pub user: String,
    /// Node name or id.
    pub node: String,
    /// OS login.
    pub login: String,
}

/// The decision with every check behind it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplainResponse {
    /// User name.
    pub user: String,
    /// Node name.
    pub node: String,
    /// Node id.
    pub node_id: String,
    /// The node's effective labels (self labels overridden by authoritative ones).
    pub labels: BTreeMap<String, String>,
    /// OS login.
    pub login: String,
    /// The user's roles, in evaluation order (missing roles are left out).
    pub roles: Vec<String>,
    /// The verdict.
    pub allowed: bool,
    /// The deciding role (None: a lock, or no role allowed it).
    #[serde(default)]
    pub role: Option<String>,
    /// The deciding rule, e.g. `deny.logins`, `lock`, `no allow rule matched`.
    pub rule: String,
    /// One sentence naming role and rule.
    pub reason: String,
    /// Every check, in evaluation order.
    pub steps: Vec<ExplainStep>,
    /// Index into `steps` of the deciding check (None: default deny).
    #[serde(default)]
    pub decided_by: Option<usize>,
}

/// One check of an explanation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplainStep {
    /// `lock`, `deny` or `allow`.
    pub phase: String,
    /// Lock or role name.
    pub name: String,
    /// Whether the check matched (a lock applies, a deny or allow matches).
    pub matched: bool,
    /// The rule that matched, e.g. `deny.node_labels`.
    #[serde(default)]
    pub rule: Option<String>,
    /// Role logins on this side after trait expansion (role steps).
    #[serde(default)]
    pub logins: Vec<String>,
    /// Whether those logins cover the requested login (role steps).
    #[serde(default)]
    pub login_matched: Option<bool>,
    /// Whether the role's `node_labels` on this side match the node.
    #[serde(default)]
    pub node_labels_matched: Option<bool>,
    /// The first selector key that failed, when one did.
    #[serde(default)]
    pub failed_label: Option<FailedLabel>,
    /// The check in one line, for humans.
    pub detail: String,
}

/// A `node_labels` key that did not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedLabel {
    /// Selector key.
    pub key: String,
    /// Its values after trait expansion.
    pub wants: Vec<String>,
    /// The node's value (None: the node lacks the label).
    #[serde(default)]
    pub has: Option<String>,
}

/// `GET /v1/access/who-can?node=N[&login=L]`: one user's way in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoCanEntry {
    /// User name.
    pub user: String,
    /// An OS login the user may use there.
    pub login: String,
    /// The role that allows it.
    pub role: String,
    /// The rule within the role.
    pub rule: String,
    /// When this access ends by itself (the user's or role's expiry);
    /// None: until someone changes it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
}

/// `GET /v1/access/what-can?user=U`: one node the user can reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatCanEntry {
    /// Node name.
    pub node: String,
    /// Node id.
    pub id: String,
    /// The logins the user may use there.
    pub logins: Vec<String>,
}

/// `POST /v1/resources/apply`: plan or apply a set of resources atomically.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// The desired resources.
    pub resources: Vec<serde_json::Value>,
    /// Delete resources of the same kinds that are not in the set
    /// (built-in roles are never pruned).
    #[serde(default)]
    pub prune: bool,
    /// Only compute the plan.
    #[serde(default)]
    pub dry_run: bool,
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    /// Resource kind.
    pub kind: String,
    /// Resource name.
    pub name: String,
    /// `create`, `update` or `delete`.
    pub action: String,
    /// Dotted paths of the fields that change (updates).
    #[serde(default)]
    pub fields: Vec<String>,
}

/// Answer to plan/apply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyResponse {
    /// Whether the changes were written.
    pub applied: bool,
    /// What changes (or would change).
    pub changes: Vec<PlannedChange>,
}
