use thiserror::Error;

/// Everything that can be wrong with resource input.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypesError {
    /// The text is not valid YAML/JSON or does not match the schema.
    #[error("{source_name}:{line}:{column}: {message}")]
    Syntax {
        /// File name (or `<stdin>`) the text came from.
        source_name: String,
        /// 1-based line of the problem.
        line: u64,
        /// 1-based column of the problem.
        column: u64,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A value has the right shape but is not acceptable.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// Dotted path of the field, e.g. `spec.allow.logins[1]`.
        field: String,
        /// Why it is rejected and what would be accepted.
        message: String,
    },
    /// `kind` names nothing Keygate knows.
    #[error("unknown kind {0:?}: expected one of user, role, token, lock, node, auth_preference")]
    UnknownKind(String),
    /// `version` is not one this build speaks.
    #[error("unsupported version {version:?} for kind {kind}: expected v1")]
    UnsupportedVersion {
        /// The resource kind.
        kind: String,
        /// The version found.
        version: String,
    },
}

impl TypesError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
