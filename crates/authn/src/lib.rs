//! Login state machines for local users: password (argon2id), TOTP and
//! lockout (L0: pure, no I/O, no clock — every function that cares about time
//! takes `now`).
//!
//! Owns: password hashing and the password policy ([`password`]), RFC 6238
//! TOTP with replay protection ([`totp`]), failed-login lockout state
//! ([`lockout`]) and the password + second-factor login decision
//! ([`login`]).
//! Does not own: storing users, TOTP secrets (encryption at rest is the
//! caller's job), failure records or the accepted TOTP step; WebAuthn
//! ceremonies and SSO (this crate only says when WebAuthn is needed);
//! writing audit events (callers log [`RejectReason::audit_reason`]).
//!
//! TOTP is implemented here over `hmac` + `sha1` instead of with `totp-rs`
//! because verification must return the accepted time step (so the caller
//! can refuse a second use of the same window) and compare every candidate
//! window in constant time; the RFC 6238 Appendix B vectors are tests.
#![forbid(unsafe_code)]

mod base32;
mod error;
pub mod lockout;
pub mod login;
pub mod password;
pub mod totp;

pub use error::{AuthnError, TotpError};
pub use lockout::{FailureRecord, LockoutPolicy};
pub use login::{
    Credentials, Factor, LoginAttempt, LoginOutcome, RejectReason, SecondFactor, TotpFacts,
    UserFacts,
};
pub use password::{
    Argon2Params, Password, check_password_policy, dummy_verify, hash_password, hash_password_with,
    needs_rehash, verify_password,
};
pub use totp::{TotpSecret, totp_code_at, totp_step, verify_totp};
