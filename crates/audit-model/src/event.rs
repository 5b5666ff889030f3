//! The audit event: who did what, when, from where, and how it went.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::{AuditModelError, EventType};

/// Keys that extra fields may not use: the schema's own fields, plus `seq`
/// which storage adds.
pub const RESERVED_KEYS: &[&str] = &[
    "seq",
    "id",
    "time",
    "event",
    "code",
    "user",
    "actor",
    "login",
    "node",
    "session_id",
    "remote_addr",
    "cluster",
    "success",
    "error",
];

/// One audit event. Serialises to a flat JSON object; `None` fields are
/// omitted and extra typed fields sit beside the standard ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique id (UUIDv7, so ids sort by creation time).
    pub id: String,
    /// When it happened (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Event type name, e.g. `user.login`.
    pub event: String,
    /// Stable code, e.g. `KG1000I`; names may be refined, codes never change.
    pub code: String,
    /// Whose access this is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Who acted (differs from `user` when an admin or bot acts on someone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// The OS login used on a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// The node id (stamped by auth from the sender's certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The session this event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The client's address as seen by the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    /// The cluster name (for logs merged from several clusters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Whether the action succeeded, for event types that can fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// What went wrong, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Event-specific extra fields (e.g. a certificate's serial and TTL).
    /// Keys must not be in [`RESERVED_KEYS`].
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// Who performed an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The actor's name (user, bot or system component).
    pub name: String,
    /// What kind of identity acted.
    pub kind: ActorKind,
    /// Which interface the action came through, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
}

/// What kind of identity acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// A person.
    Human,
    /// A bot identity (CI, plug-ins, Terraform).
    Bot,
    /// Keygate itself (expiry, rotation, internal jobs).
    System,
}

/// The interface an action came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// `kg` or `kgctl`.
    Cli,
    /// The web UI.
    Web,
    /// The HTTP API directly.
    Api,
    /// The Terraform provider.
    Terraform,
    /// SCIM provisioning.
    Scim,
}

/// A UUIDv7 event id from a time and 10 caller-supplied random bytes (pure:
/// the caller owns both the clock and the randomness). Times before 1970
/// are clamped to the epoch.
pub fn event_id(time: OffsetDateTime, random: &[u8; 10]) -> String {
    let millis = u64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, random)
        .into_uuid()
        .to_string()
}

// === impl AuditEvent ===

impl AuditEvent {
    /// A new event of type `ty`, with its name, code and (for types that
    /// imply it) success flag filled in.
    pub fn new(ty: EventType, time: OffsetDateTime, id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            time,
            event: ty.name().to_owned(),
            code: ty.code().to_owned(),
            user: None,
            actor: None,
            login: None,
            node: None,
            session_id: None,
            remote_addr: None,
            cluster: None,
            success: ty.success(),
            error: None,
            fields: Map::new(),
        }
    }

    /// Set whose access this is about.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Set who acted.
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = Some(actor);
        self
    }

    /// Set the OS login.
    pub fn login(mut self, login: impl Into<String>) -> Self {
        self.login = Some(login.into());
        self
    }

    /// Set the node id.
    pub fn node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// Set the session id.
    pub fn session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Set the client address.
    pub fn remote_addr(mut self, remote_addr: impl Into<String>) -> Self {
        self.remote_addr = Some(remote_addr.into());
        self
    }

    /// Set the cluster name.
    pub fn cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = Some(cluster.into());
        self
    }

    /// Set the success flag.
    pub fn success(mut self, success: bool) -> Self {
        self.success = Some(success);
        self
    }

    /// Record an error (and mark the event as failed).
    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self.success = Some(false);
        self
    }

    /// Add an extra field; refused if `key` is reserved by the schema.
    /// Like [`with_field`](Self::with_field) for keys fixed in code: a
    /// reserved key (a programming error) is stored as `x_<key>` instead of
    /// failing, so that the event is never lost.
    pub fn field(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        let key = if RESERVED_KEYS.contains(&key) {
            format!("x_{key}")
        } else {
            key.to_owned()
        };
        self.fields.insert(key, value.into());
        self
    }

    pub fn with_field(
        mut self,
        key: impl Into<String>,
        value: impl Into<Value>,
    ) -> Result<Self, AuditModelError> {
        let key = key.into();
        if RESERVED_KEYS.contains(&key.as_str()) {
            return Err(AuditModelError::ReservedField(key));
        }
        self.fields.insert(key, value.into());
        Ok(self)
    }

    /// Check what construction through the public fields may have missed:
    /// no extra field may shadow a schema field (it would produce duplicate
    /// JSON keys).
    pub fn validate(&self) -> Result<(), AuditModelError> {
        match self
            .fields
            .keys()
            .find(|k| RESERVED_KEYS.contains(&k.as_str()))
        {
            Some(key) => Err(AuditModelError::ReservedField(key.clone())),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const T: OffsetDateTime = datetime!(2025-06-01 10:20:30.5 UTC);

    #[test]
    fn serialises_flat_and_omits_none() {
        let ev = AuditEvent::new(EventType::CertCreate, T, "id-1")
            .user("alice")
            .actor(Actor {
                name: "alice".into(),
                kind: ActorKind::Human,
                via: Some(Via::Cli),
            })
            .with_field("serial", 42)
            .unwrap();
        let v: Value = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "id-1",
                "time": "2025-06-01T10:20:30.5Z",
                "event": "cert.create",
                "code": "KG2000I",
                "user": "alice",
                "actor": {"name": "alice", "kind": "human", "via": "cli"},
                "serial": 42
            })
        );
        let back: AuditEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn login_types_carry_success() {
        assert_eq!(
            AuditEvent::new(EventType::UserLogin, T, "a").success,
            Some(true)
        );
        let failed = AuditEvent::new(EventType::UserLoginFailed, T, "b").error("bad password");
        assert_eq!(failed.success, Some(false));
        assert_eq!(failed.event, "user.login");
        assert_eq!(failed.code, "KG1000W");
        assert_eq!(
            AuditEvent::new(EventType::RoleCreated, T, "c").success,
            None
        );
    }

    #[test]
    fn reserved_fields_are_refused() {
        for key in ["seq", "id", "user", "time"] {
            let r = AuditEvent::new(EventType::Exec, T, "x").with_field(key, 1);
            assert!(matches!(r, Err(AuditModelError::ReservedField(k)) if k == key));
        }
        let mut ev = AuditEvent::new(EventType::Exec, T, "x");
        assert!(ev.validate().is_ok());
        ev.fields.insert("seq".into(), json!(7));
        assert!(ev.validate().is_err());
    }

    #[test]
    fn deserialise_rejects_bad_enums_and_missing_fields() {
        let base =
            json!({"id": "i", "time": "2025-06-01T10:20:30Z", "event": "exec", "code": "KG4002I"});
        assert!(serde_json::from_value::<AuditEvent>(base.clone()).is_ok());
        for (k, v) in [
            ("actor", json!({"name": "x", "kind": "alien"})),
            (
                "actor",
                json!({"name": "x", "kind": "bot", "via": "carrier-pigeon"}),
            ),
            ("time", json!("yesterday")),
            ("success", json!("yes")),
        ] {
            let mut bad = base.clone();
            bad[k] = v;
            assert!(serde_json::from_value::<AuditEvent>(bad).is_err(), "{k}");
        }
        let mut missing = base;
        missing.as_object_mut().unwrap().remove("code");
        assert!(serde_json::from_value::<AuditEvent>(missing).is_err());
    }

    #[test]
    fn event_ids_are_v7_and_time_ordered() {
        let a = event_id(T, &[0; 10]);
        let b = event_id(T + time::Duration::milliseconds(1), &[0; 10]);
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert!(a < b);
        assert_ne!(event_id(T, &[1; 10]), a);
        // Before the epoch: clamped, still a valid id.
        let early = event_id(datetime!(1960-01-01 0:00 UTC), &[0; 10]);
        assert_eq!(uuid::Uuid::parse_str(&early).unwrap().get_version_num(), 7);
    }
}
