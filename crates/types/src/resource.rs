use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Labels, RoleName, Ttl, TypesError, UserName, role::Role};

/// `metadata` common to every resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Unique name within the kind.
    pub name: String,
    /// Free text for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Labels matched by role selectors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// When the resource stops existing (tokens, locks, temporary users).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires: Option<OffsetDateTime>,
    /// Storage revision (read-only; set on output, used for compare-and-swap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
}

/// The generic `kind / version / metadata / spec` envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource<S> {
    /// Resource kind, e.g. `role`.
    pub kind: String,
    /// Schema version, `v1`.
    pub version: String,
    /// Name, labels, expiry, revision.
    pub metadata: Metadata,
    /// Kind-specific body.
    pub spec: S,
}

impl<S> Resource<S> {
    /// A v1 resource of `kind` named `name`.
    pub fn new(kind: Kind, name: impl Into<String>, spec: S) -> Self {
        Self {
            kind: kind.as_str().to_owned(),
            version: crate::V1.to_owned(),
            metadata: Metadata {
                name: name.into(),
                ..Metadata::default()
            },
            spec,
        }
    }

    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

/// Every kind this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    User,
    Role,
    Token,
    Lock,
    Node,
    AuthPreference,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::User,
        Kind::Role,
        Kind::Token,
        Kind::Lock,
        Kind::Node,
        Kind::AuthPreference,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Role => "role",
            Kind::Token => "token",
            Kind::Lock => "lock",
            Kind::Node => "node",
            Kind::AuthPreference => "auth_preference",
        }
    }
}

impl FromStr for Kind {
    type Err = TypesError;
    fn from_str(s: &str) -> Result<Self, TypesError> {
        let k = match s {
            "user" | "users" => Kind::User,
            "role" | "roles" => Kind::Role,
            "token" | "tokens" => Kind::Token,
            "lock" | "locks" => Kind::Lock,
            "node" | "nodes" => Kind::Node,
            "auth_preference" | "cluster_auth_preference" => Kind::AuthPreference,
            other => return Err(TypesError::UnknownKind(other.to_owned())),
        };
        Ok(k)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === user ===

/// A Keygate user (local or SSO-linked).
pub type User = Resource<UserSpec>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Roles granted to the user.
    #[serde(default)]
    pub roles: Vec<RoleName>,
    /// Free-form string lists used by role templates (`{{internal.logins}}`).
    #[serde(default)]
    pub traits: BTreeMap<String, Vec<String>>,
    /// The SSO connector this user is linked to; `None` for local users.
    #[serde(default)]
    pub connector: Option<ConnectorRef>,
    /// Read-only status, maintained by auth.
    #[serde(default)]
    pub status: UserStatus,
}

/// Link between a user and an SSO connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorRef {
    /// `oidc` or `saml`.
    pub kind: String,
    /// Connector name.
    pub name: String,
    /// The IdP's subject identifier.
    pub subject: String,
}

/// Read-only user status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UserStatus {
    /// Locked out after failed logins or by a lock.
    #[serde(default)]
    pub locked: bool,
    /// Until when a login lockout lasts.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub locked_until: Option<OffsetDateTime>,
    /// Whether the user has a password set (sign-up completed).
    #[serde(default)]
    pub has_password: bool,
    /// Whether a TOTP device is enrolled.
    #[serde(default)]
    pub has_totp: bool,
}

// === token ===

/// A join or sign-up token. Its name is the SHA-256 of the secret; the
/// secret itself is never stored.
pub type Token = Resource<TokenSpec>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// What the token lets its holder do: `node`, `signup`, …
    #[serde(default)]
    pub roles: Vec<String>,
    /// Labels given to what joins with it (authoritative).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// Usable more than once.
    #[serde(default)]
    pub reusable: bool,
    /// For sign-up tokens: the user it completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserName>,
}

// === lock ===

/// A lock: refuses certificates and sessions matching its target.
pub type Lock = Resource<LockSpec>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockSpec {
    /// Exactly one target.
    pub target: LockTarget,
    /// Shown to the locked-out party.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What a lock applies to (exactly one field set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LockTarget {
    User(String),
    Role(String),
    Login(String),
    Node(String),
    MfaDevice(String),
    AccessRequest(String),
    Serial(String),
    /// One live session (admin terminate); meaningful only while it runs.
    Session(String),
}

impl fmt::Display for LockTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, v) = match self {
            LockTarget::User(v) => ("user", v),
            LockTarget::Role(v) => ("role", v),
            LockTarget::Login(v) => ("login", v),
            LockTarget::Node(v) => ("node", v),
            LockTarget::MfaDevice(v) => ("mfa_device", v),
            LockTarget::AccessRequest(v) => ("access_request", v),
            LockTarget::Serial(v) => ("serial", v),
            LockTarget::Session(v) => ("session", v),
        };
        write!(f, "{k}={v}")
    }
}

// === node ===

/// A server registered with the cluster.
pub type Node = Resource<NodeSpec>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Stable id assigned at join.
    #[serde(default)]
    pub id: String,
    /// Address for agentless or direct dial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// `keygate` or `openssh`.
    #[serde(default = "default_sub_kind")]
    pub sub_kind: String,
    /// Labels the node reports itself; never override `metadata.labels`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub self_labels: Labels,
}

fn default_sub_kind() -> String {
    "keygate".to_owned()
}

// === auth_preference ===

/// Cluster-wide authentication settings (a singleton named `cluster`).
pub type AuthPreference = Resource<AuthPreferenceSpec>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthPreferenceSpec {
    /// Which second factor local logins need.
    #[serde(default)]
    pub second_factor: SecondFactor,
    /// Passwordless (WebAuthn) logins allowed.
    #[serde(default)]
    pub passwordless: bool,
    /// `local` or a connector name.
    #[serde(default = "default_connector")]
    pub default_connector: String,
    /// Cluster-wide per-session MFA.
    #[serde(default)]
    pub require_session_mfa: bool,
    /// WebAuthn relying-party settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn: Option<BTreeMap<String, String>>,
    /// Failed-login lockout policy.
    #[serde(default)]
    pub lockout: LockoutSpec,
}

impl Default for AuthPreferenceSpec {
    fn default() -> Self {
        Self {
            second_factor: SecondFactor::default(),
            passwordless: false,
            default_connector: default_connector(),
            require_session_mfa: false,
            webauthn: None,
            lockout: LockoutSpec::default(),
        }
    }
}

impl AuthPreferenceSpec {
    /// Whether local users need a TOTP device (enrolled at sign-up).
    pub fn second_factor_wants_totp(&self) -> bool {
        matches!(self.second_factor, SecondFactor::Otp | SecondFactor::On)
    }
}

fn default_connector() -> String {
    "local".to_owned()
}

/// `off | otp | webauthn | on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    /// Passwords alone; enrolled TOTP devices are not asked for.
    Off,
    /// TOTP required.
    #[default]
    Otp,
    /// WebAuthn required.
    Webauthn,
    /// Any second factor required.
    On,
}

/// Lockout after repeated failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockoutSpec {
    /// Failures within `window` that lock the account.
    pub max_failures: u32,
    /// Sliding window for counting failures.
    pub window: Ttl,
    /// How long the lockout lasts.
    pub duration: Ttl,
}

impl Default for LockoutSpec {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Ttl::constant_secs(15 * 60),
            duration: Ttl::constant_secs(30 * 60),
        }
    }
}

// === any ===

/// A resource of any kind, as loaded from YAML/JSON.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // resources are few and short-lived; boxing buys nothing
pub enum AnyResource {
    User(User),
    Role(Role),
    Token(Token),
    Lock(Lock),
    Node(Node),
    AuthPreference(AuthPreference),
}

impl AnyResource {
    pub fn kind(&self) -> Kind {
        match self {
            AnyResource::User(_) => Kind::User,
            AnyResource::Role(_) => Kind::Role,
            AnyResource::Token(_) => Kind::Token,
            AnyResource::Lock(_) => Kind::Lock,
            AnyResource::Node(_) => Kind::Node,
            AnyResource::AuthPreference(_) => Kind::AuthPreference,
        }
    }

    pub fn metadata(&self) -> &Metadata {
        match self {
            AnyResource::User(r) => &r.metadata,
            AnyResource::Role(r) => &r.metadata,
            AnyResource::Token(r) => &r.metadata,
            AnyResource::Lock(r) => &r.metadata,
            AnyResource::Node(r) => &r.metadata,
            AnyResource::AuthPreference(r) => &r.metadata,
        }
    }

    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// Writes the canonical kind name (`users` → `user`) into the envelope.
    pub fn canonicalize(&mut self) {
        let k = self.kind().as_str().to_owned();
        match self {
            AnyResource::User(r) => r.kind = k,
            AnyResource::Role(r) => r.kind = k,
            AnyResource::Token(r) => r.kind = k,
            AnyResource::Lock(r) => r.kind = k,
            AnyResource::Node(r) => r.kind = k,
            AnyResource::AuthPreference(r) => r.kind = k,
        }
    }

    /// JSON form (used for storage and the API).
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            AnyResource::User(r) => serde_json::to_value(r),
            AnyResource::Role(r) => serde_json::to_value(r),
            AnyResource::Token(r) => serde_json::to_value(r),
            AnyResource::Lock(r) => serde_json::to_value(r),
            AnyResource::Node(r) => serde_json::to_value(r),
            AnyResource::AuthPreference(r) => serde_json::to_value(r),
        }
    }

    /// Parse from JSON (API bodies, stored values), validating.
    pub fn from_json(v: serde_json::Value) -> Result<Self, TypesError> {
        let kind_str = v
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_owned();
        let kind: Kind = kind_str.parse()?;
        let err = |e: serde_json::Error| TypesError::invalid(kind.as_str(), e.to_string());
        let r = match kind {
            Kind::User => AnyResource::User(serde_json::from_value(v).map_err(err)?),
            Kind::Role => AnyResource::Role(serde_json::from_value(v).map_err(err)?),
            Kind::Token => AnyResource::Token(serde_json::from_value(v).map_err(err)?),
            Kind::Lock => AnyResource::Lock(serde_json::from_value(v).map_err(err)?),
            Kind::Node => AnyResource::Node(serde_json::from_value(v).map_err(err)?),
            Kind::AuthPreference => {
                AnyResource::AuthPreference(serde_json::from_value(v).map_err(err)?)
            }
        };
        let mut r = r;
        r.canonicalize();
        r.validate()?;
        Ok(r)
    }

    /// Semantic checks beyond the schema.
    pub fn validate(&self) -> Result<(), TypesError> {
        let md = self.metadata();
        let kind = self.kind();
        let version = match self {
            AnyResource::User(r) => &r.version,
            AnyResource::Role(r) => &r.version,
            AnyResource::Token(r) => &r.version,
            AnyResource::Lock(r) => &r.version,
            AnyResource::Node(r) => &r.version,
            AnyResource::AuthPreference(r) => &r.version,
        };
        if version != crate::V1 {
            return Err(TypesError::UnsupportedVersion {
                kind: kind.as_str().to_owned(),
                version: version.clone(),
            });
        }
        match self {
            AnyResource::User(u) => {
                md.name
                    .parse::<UserName>()
                    .map_err(|e| TypesError::invalid("metadata.name", e.to_string()))?;
                for (k, vals) in &u.spec.traits {
                    crate::validate_name("spec.traits key", k)?;
                    if vals.len() > 256 {
                        return Err(TypesError::invalid(
                            format!("spec.traits.{k}"),
                            "at most 256 values",
                        ));
                    }
                }
            }
            AnyResource::Role(r) => {
                md.name
                    .parse::<RoleName>()
                    .map_err(|e| TypesError::invalid("metadata.name", e.to_string()))?;
                r.spec.validate()?;
            }
            AnyResource::AuthPreference(_) => {
                if md.name != "cluster" {
                    return Err(TypesError::invalid(
                        "metadata.name",
                        "auth_preference is a singleton named \"cluster\"",
                    ));
                }
            }
            _ => crate::validate_name("metadata.name", &md.name)?,
        }
        Ok(())
    }
}
