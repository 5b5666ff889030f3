use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Stable error codes in `{error, message}` bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Wrong user name, password or second factor.
    InvalidCredentials,
    /// Too many failures: the account or source is locked out for a while.
    LockedOut,
    /// Authenticated, but policy says no.
    AccessDenied,
    /// No credentials where some are needed.
    Unauthenticated,
    /// The named thing does not exist.
    NotFound,
    /// It exists already, or changed under you.
    Conflict,
    /// The request is malformed or violates the schema.
    BadRequest,
    /// A second factor is required but was not given.
    MfaRequired,
    /// Too many requests; retry later.
    RateLimited,
    /// The server failed; see its logs.
    Internal,
}

impl ErrorCode {
    /// HTTP status for this code (the one mapping, used by every server).
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidCredentials | ErrorCode::Unauthenticated | ErrorCode::MfaRequired => {
                401
            }
            ErrorCode::LockedOut | ErrorCode::AccessDenied => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::BadRequest => 400,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
        }
    }

    /// Whether this is a "no" (CLI exit 1) rather than an error (exit 2).
    pub fn is_denial(self) -> bool {
        matches!(
            self,
            ErrorCode::InvalidCredentials
                | ErrorCode::LockedOut
                | ErrorCode::AccessDenied
                | ErrorCode::Unauthenticated
                | ErrorCode::NotFound
                | ErrorCode::MfaRequired
                | ErrorCode::RateLimited
        )
    }
}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub error: ErrorCode,
    /// One sentence: what happened, why, what to do.
    pub message: String,
}

/// What a client call can fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The server answered with an error.
    #[error("{message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Stable code.
        code: ErrorCode,
        /// Server's explanation.
        message: String,
    },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach {target}: {reason}")]
    Transport {
        /// Address or socket path.
        target: String,
        /// Underlying cause.
        reason: String,
    },
    /// The server's answer was not what the API promises.
    #[error("unexpected response from the server: {0}")]
    Decode(String),
    /// Local setup problem (bad certificate files, …).
    #[error("{0}")]
    Setup(String),
}

impl ApiError {
    /// CLI exit code per `CLI.md`: 1 for a "no", 2 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ApiError::Server { code, .. } if code.is_denial() => 1,
            _ => 2,
        }
    }

    /// The server's code, if the server answered.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ApiError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}
