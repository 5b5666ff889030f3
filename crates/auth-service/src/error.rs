use keygate_api::{ErrorBody, ErrorCode};
use thiserror::Error;

/// Everything the auth service can refuse or fail with. Each variant maps
/// to exactly one API error code (and so one HTTP status) in
/// [`AuthError::code`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Wrong credentials; the message never says whether the user exists.
    #[error("{0}")]
    InvalidCredentials(String),
    /// Too many failures.
    #[error("{0}")]
    LockedOut(String),
    /// A second factor is needed.
    #[error("{0}")]
    MfaRequired(String),
    /// Policy said no (the text names the deciding role and rule).
    #[error("{0}")]
    AccessDenied(String),
    /// No identity where one is required.
    #[error("{0}")]
    Unauthenticated(String),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It exists already or changed concurrently.
    #[error("{0}")]
    Conflict(String),
    /// Malformed input.
    #[error("{0}")]
    BadRequest(String),
    /// Too many requests from one source.
    #[error("{0}")]
    RateLimited(String),
    /// Storage failed.
    #[error("storage error: {0}")]
    Store(#[from] keygate_store::StoreError),
    /// The audit log could not be written (the operation was refused).
    #[error("audit log unavailable: {0}")]
    Audit(String),
    /// Certificate authority failure.
    #[error("certificate authority error: {0}")]
    Ca(#[from] keygate_ca::CaError),
    /// Anything else internal.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    /// The one mapping from error kind to API code.
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::InvalidCredentials(_) => ErrorCode::InvalidCredentials,
            AuthError::LockedOut(_) => ErrorCode::LockedOut,
            AuthError::MfaRequired(_) => ErrorCode::MfaRequired,
            AuthError::AccessDenied(_) => ErrorCode::AccessDenied,
            AuthError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            AuthError::NotFound(_) => ErrorCode::NotFound,
            AuthError::Conflict(_) => ErrorCode::Conflict,
            AuthError::BadRequest(_) => ErrorCode::BadRequest,
            AuthError::RateLimited(_) => ErrorCode::RateLimited,
            AuthError::Store(_)
            | AuthError::Audit(_)
            | AuthError::Ca(_)
            | AuthError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The body sent to clients. Internal details stay in the server log.
    pub fn body(&self) -> ErrorBody {
        let message = match self.code() {
            ErrorCode::Internal => "the auth service failed; see its log".to_owned(),
            _ => self.to_string(),
        };
        ErrorBody {
            error: self.code(),
            message,
        }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        AuthError::Internal(e.to_string())
    }
}

impl From<keygate_types::TypesError> for AuthError {
    fn from(e: keygate_types::TypesError) -> Self {
        AuthError::BadRequest(e.to_string())
    }
}

impl From<keygate_policy::Denial> for AuthError {
    fn from(d: keygate_policy::Denial) -> Self {
        AuthError::AccessDenied(d.reason)
    }
}

impl axum::response::IntoResponse for AuthError {
    fn into_response(self) -> axum::response::Response {
        let code = self.code();
        if code == ErrorCode::Internal {
            tracing::error!("{self}");
        }
        let status = http::StatusCode::from_u16(code.status())
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.body())).into_response()
    }
}
