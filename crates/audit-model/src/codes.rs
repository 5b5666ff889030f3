//! The registry of event types and their stable codes.
//!
//! A code is `KG` + four digits + a severity letter: `I` information,
//! `W` warning (a refused or failed action), `E` error. The first digit is
//! the domain: 1 authentication, 2 credentials issued, 3 resource changes,
//! 4 session activity. Codes are part of the public interface (SIEM rules
//! match on them): never reuse or renumber one.

/// Every event type Keygate emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// A user logged in.
    UserLogin,
    /// A login was refused (same name as [`Self::UserLogin`], own code).
    UserLoginFailed,
    /// A request failed authentication (bad certificate, token, …).
    AuthFailed,
    /// A user changed their password (or an admin reset it).
    UserPasswordChange,
    /// A certificate was issued.
    CertCreate,
    /// A join or invite token was created.
    TokenCreate,
    /// A user was created.
    UserCreate,
    /// A user was updated.
    UserUpdate,
    /// A user was deleted.
    UserDelete,
    /// A role was created.
    RoleCreated,
    /// A role was updated.
    RoleUpdated,
    /// A role was deleted.
    RoleDeleted,
    /// A lock was created.
    LockCreated,
    /// A lock was deleted.
    LockDeleted,
    /// An interactive session started.
    SessionStart,
    /// A session ended.
    SessionEnd,
    /// A command was executed.
    Exec,
    /// A file was copied with scp/sftp.
    Scp,
    /// A port was forwarded.
    PortForward,
    /// A node joined the cluster (or failed to).
    NodeJoin,
    /// A resource of another kind (token, node, auth preference…) was
    /// created.
    ResourceCreated,
    /// A resource of another kind was updated.
    ResourceUpdated,
    /// A resource of another kind was deleted.
    ResourceDeleted,
    /// A certificate authority's rotation moved to a phase (or rolled back).
    CaRotate,
}

impl EventType {
    /// All event types, for documentation and uniqueness tests.
    pub const ALL: &'static [EventType] = &[
        Self::UserLogin,
        Self::UserLoginFailed,
        Self::AuthFailed,
        Self::UserPasswordChange,
        Self::CertCreate,
        Self::TokenCreate,
        Self::UserCreate,
        Self::UserUpdate,
        Self::UserDelete,
        Self::RoleCreated,
        Self::RoleUpdated,
        Self::RoleDeleted,
        Self::LockCreated,
        Self::LockDeleted,
        Self::SessionStart,
        Self::SessionEnd,
        Self::Exec,
        Self::Scp,
        Self::PortForward,
        Self::NodeJoin,
        Self::ResourceCreated,
        Self::ResourceUpdated,
        Self::ResourceDeleted,
        Self::CaRotate,
    ];

    /// The event name stored in the `event` field.
    pub const fn name(self) -> &'static str {
        match self {
            Self::UserLogin | Self::UserLoginFailed => "user.login",
            Self::AuthFailed => "auth.failed",
            Self::UserPasswordChange => "user.password_change",
            Self::CertCreate => "cert.create",
            Self::TokenCreate => "token.create",
            Self::UserCreate => "user.create",
            Self::UserUpdate => "user.update",
            Self::UserDelete => "user.delete",
            Self::RoleCreated => "role.created",
            Self::RoleUpdated => "role.updated",
            Self::RoleDeleted => "role.deleted",
            Self::LockCreated => "lock.created",
            Self::LockDeleted => "lock.deleted",
            Self::SessionStart => "session.start",
            Self::SessionEnd => "session.end",
            Self::Exec => "exec",
            Self::Scp => "scp",
            Self::PortForward => "port_forward",
            Self::NodeJoin => "node.join",
            Self::ResourceCreated => "resource.created",
            Self::ResourceUpdated => "resource.updated",
            Self::ResourceDeleted => "resource.deleted",
            Self::CaRotate => "ca.rotate",
        }
    }

    /// The stable code stored in the `code` field.
    pub const fn code(self) -> &'static str {
        match self {
            Self::UserLogin => "KG1000I",
            Self::UserLoginFailed => "KG1000W",
            Self::AuthFailed => "KG1001W",
            Self::UserPasswordChange => "KG1002I",
            Self::CertCreate => "KG2000I",
            Self::TokenCreate => "KG2100I",
            Self::UserCreate => "KG3000I",
            Self::UserUpdate => "KG3001I",
            Self::UserDelete => "KG3002I",
            Self::RoleCreated => "KG3100I",
            Self::RoleUpdated => "KG3101I",
            Self::RoleDeleted => "KG3102I",
            Self::LockCreated => "KG3200I",
            Self::LockDeleted => "KG3201I",
            Self::SessionStart => "KG4000I",
            Self::SessionEnd => "KG4001I",
            Self::Exec => "KG4002I",
            Self::Scp => "KG4003I",
            Self::PortForward => "KG4004I",
            Self::NodeJoin => "KG2200I",
            Self::ResourceCreated => "KG3300I",
            Self::ResourceUpdated => "KG3301I",
            Self::ResourceDeleted => "KG3302I",
            Self::CaRotate => "KG2300I",
        }
    }

    /// The `success` value the type implies, for types that record
    /// an outcome by their code.
    pub const fn success(self) -> Option<bool> {
        match self {
            Self::UserLogin => Some(true),
            Self::UserLoginFailed | Self::AuthFailed => Some(false),
            _ => None,
        }
    }

    /// The type with this code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.code() == code)
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
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for t in EventType::ALL {
            let code = t.code();
            assert!(seen.insert(code), "duplicate code {code}");
            let b = code.as_bytes();
            assert_eq!(b.len(), 7, "{code}");
            assert!(code.starts_with("KG"), "{code}");
            assert!(b[2..6].iter().all(u8::is_ascii_digit), "{code}");
            assert!(matches!(b[6], b'I' | b'W' | b'E'), "{code}");
            assert_eq!(EventType::from_code(code), Some(*t));
        }
        assert_eq!(EventType::from_code("KG9999I"), None);
        assert_eq!(EventType::from_code(""), None);
    }

    #[test]
    fn names_match_architecture() {
        assert_eq!(EventType::UserLogin.name(), "user.login");
        assert_eq!(EventType::UserLogin.code(), "KG1000I");
        assert_eq!(EventType::UserLoginFailed.code(), "KG1000W");
        for t in EventType::ALL {
            let n = t.name();
            assert!(
                !n.is_empty()
                    && n.bytes()
                        .all(|c| c.is_ascii_lowercase() || c == b'.' || c == b'_'),
                "{n}"
            );
        }
    }
}
