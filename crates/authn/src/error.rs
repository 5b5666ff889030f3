//! The crate's error types.
//!
//! [`AuthnError`] is the one error enum for operations that can fail.
//! [`TotpError`] is kept apart on purpose: it is the *verdict* of a TOTP
//! check (wrong code, replay, …), which callers match on to pick an audit
//! reason, rather than a failure of the machinery; it converts into
//! [`AuthnError`] when a caller wants a single type.

/// Why an authentication operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthnError {
    // --- the user's input does not meet the rules ---
    /// The password has fewer characters than the policy requires.
    #[error(
        "password too short: it has {got} characters, at least {min} are required; choose a longer passphrase"
    )]
    PasswordTooShort {
        /// Characters in the offered password.
        got: usize,
        /// Minimum characters required.
        min: usize,
    },
    /// The password is longer than we are willing to hash.
    #[error("password too long: at most {max} bytes are accepted; choose a shorter passphrase")]
    PasswordTooLong {
        /// Maximum length in bytes.
        max: usize,
    },

    // --- stored or configured data is malformed ---
    /// A TOTP secret is not valid base32 (RFC 4648 alphabet A–Z, 2–7).
    #[error("TOTP secret is not valid base32: {0}; re-enter it or enroll the device again")]
    InvalidBase32(&'static str),
    /// A TOTP secret has the wrong size.
    #[error("TOTP secret must be {min} to {max} bytes long, got {got}; enroll the device again")]
    TotpSecretLength {
        /// Length offered.
        got: usize,
        /// Minimum accepted (RFC 4226 requires 128 bits).
        min: usize,
        /// Maximum accepted.
        max: usize,
    },
    /// Argon2 parameters are outside what the algorithm accepts.
    #[error("invalid argon2 parameters: {0}; fix the password hashing configuration")]
    InvalidArgon2Params(String),

    // --- the hashing backend failed ---
    /// Hashing a password failed inside argon2.
    #[error("password hashing failed: {0}; this is a bug or resource exhaustion, retry later")]
    Hash(String),

    // --- a TOTP check failed ---
    /// A TOTP code was not accepted.
    #[error(transparent)]
    Totp(#[from] TotpError),
}

/// Why a TOTP code was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum TotpError {
    /// The input is not exactly six ASCII digits.
    #[error("one-time code must be exactly 6 digits")]
    Malformed,
    /// No window in the accepted range produces this code.
    #[error("one-time code is wrong or expired; wait for a new code and try again")]
    Mismatch,
    /// The code is right but its time window was already used.
    #[error("one-time code was already used; wait for the next code (30 s) and try again")]
    Replay,
    /// `now` lies before the Unix epoch, so no time step exists.
    #[error("clock is before 1970; fix the system clock")]
    ClockBeforeEpoch,
}
