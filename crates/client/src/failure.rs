//! How `kg` and `kgctl` fail: one line on stderr and an exit code per
//! CLI.md (1 = the answer is "no", 2 = usage or internal error).

use std::process::ExitCode;

use crate::ClientError;

/// A failure with its exit code and one-line message.
#[derive(Debug)]
pub struct Failure {
    /// Exit code per CLI.md.
    pub code: u8,
    /// What happened, why, what to do next (empty: already printed).
    pub message: String,
}

impl Failure {
    /// Bad input, usage or an internal error (exit 2).
    pub fn usage(m: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: m.into(),
        }
    }

    /// A "no": denied, not found, not logged in (exit 1).
    pub fn no(m: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: m.into(),
        }
    }

    /// An exit code whose reason was already printed on stdout.
    pub fn silent(code: u8) -> Self {
        Self {
            code,
            message: String::new(),
        }
    }

    /// Prints the message (prefixed with the program) and returns the code.
    pub fn report(self, program: &str) -> ExitCode {
        if !self.message.is_empty() {
            eprintln!("{program}: {}", self.message);
        }
        ExitCode::from(self.code)
    }
}

impl From<keygate_api::ApiError> for Failure {
    fn from(e: keygate_api::ApiError) -> Self {
        Self {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        // Not being logged in, or a refused connection, is a "no".
        let code = match &e {
            ClientError::Profile(_) | ClientError::Connect { denied: true, .. } => 1,
            _ => 2,
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}
