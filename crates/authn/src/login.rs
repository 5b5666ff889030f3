//! The local-user login decision: password, then (per cluster policy) a
//! second factor, as a state machine consumed by value.
//!
//! The caller loads the facts (the user if any, the cluster's
//! `second_factor` setting, the lockout state), builds a [`LoginAttempt`]
//! and calls [`LoginAttempt::handle`] once with what the client presented.
//! Consuming the attempt means a snapshot of the facts — in particular the
//! last used TOTP step — cannot be reused for a second decision; every try
//! starts from freshly loaded facts.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::TotpError;
use crate::password::{PASSWORD_MAX_BYTES, Password, dummy_verify, verify_password};
use crate::totp::{TotpSecret, verify_totp};

/// Public message for every failure that must not reveal whether the user
/// exists or has a password.
const INVALID_CREDENTIALS: &str = "invalid username or password";

/// The cluster's `auth_preference.second_factor` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecondFactor {
    /// Password only.
    Off,
    /// Password and TOTP.
    Otp,
    /// Password and any enrolled second factor (TOTP or WebAuthn).
    On,
    /// Password and WebAuthn.
    Webauthn,
}

/// A credential the client must present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Factor {
    /// The user's password.
    Password,
    /// A TOTP code.
    Totp,
    /// A WebAuthn assertion (ceremony handled outside this crate).
    Webauthn,
}

/// A user's enrolled TOTP device.
#[derive(Debug, Clone)]
pub struct TotpFacts {
    /// The shared secret (decrypted by the caller).
    pub secret: TotpSecret,
    /// The last step accepted for this user; codes at or before it are
    /// replays.
    pub last_used_step: Option<u64>,
}

/// What the store knows about the user trying to log in.
#[derive(Clone)]
pub struct UserFacts {
    /// The PHC password hash; `None` for users without a password (SSO-only,
    /// bots).
    pub password_hash: Option<String>,
    /// The enrolled TOTP device, if any.
    pub totp: Option<TotpFacts>,
    /// Whether the user has at least one WebAuthn device.
    pub has_webauthn: bool,
}

impl fmt::Debug for UserFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash allows offline guessing, so it is a secret too.
        f.debug_struct("UserFacts")
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("totp", &self.totp)
            .field("has_webauthn", &self.has_webauthn)
            .finish()
    }
}

/// What the client presented.
#[derive(Clone)]
pub struct Credentials {
    /// The password typed.
    pub password: Password,
    /// The TOTP code typed, if any.
    pub otp: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("password", &self.password)
            .field("otp", &self.otp.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a login was refused. [`public_message`](Self::public_message) is
/// what the client sees; [`audit_reason`](Self::audit_reason) is what the
/// audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// No such user.
    UnknownUser,
    /// The user has no password (SSO-only or bot).
    NoPassword,
    /// Wrong password.
    BadPassword,
    /// The password exceeds the accepted length; it was not hashed.
    PasswordTooLong,
    /// The username or the source address is locked out.
    Locked {
        /// When the lock ends.
        until: OffsetDateTime,
    },
    /// Wrong, expired or malformed TOTP code.
    BadOtp,
    /// A TOTP code whose window was already used.
    OtpReplay,
    /// A second factor is required but the user has none that fits.
    SecondFactorNotEnrolled,
    /// The clock is before 1970, so TOTP cannot be checked.
    ClockError,
}

impl RejectReason {
    /// The message for the client. Unknown user, missing password and wrong
    /// password read the same, so usernames cannot be probed.
    pub fn public_message(&self) -> &'static str {
        match self {
            Self::UnknownUser | Self::NoPassword | Self::BadPassword | Self::PasswordTooLong => {
                INVALID_CREDENTIALS
            }
            Self::Locked { .. } => "too many failed login attempts; try again later",
            Self::BadOtp => "invalid one-time code",
            Self::OtpReplay => "one-time code already used; wait for the next code",
            Self::SecondFactorNotEnrolled => {
                "a second factor is required but none is enrolled; ask an administrator to reset your account"
            }
            Self::ClockError => "server clock error; contact an administrator",
        }
    }

    /// A stable machine-readable reason for the audit log.
    pub fn audit_reason(&self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::NoPassword => "no_password",
            Self::BadPassword => "bad_password",
            Self::PasswordTooLong => "password_too_long",
            Self::Locked { .. } => "locked",
            Self::BadOtp => "bad_otp",
            Self::OtpReplay => "otp_replay",
            Self::SecondFactorNotEnrolled => "second_factor_not_enrolled",
            Self::ClockError => "clock_error",
        }
    }

    /// Whether the caller should record this as a failure for lockout.
    /// Refusals because of a lock are not counted (see
    /// [`FailureRecord::record_failure`](crate::FailureRecord::record_failure)),
    /// nor are server-side problems.
    pub fn counts_as_failure(&self) -> bool {
        !matches!(
            self,
            Self::Locked { .. } | Self::SecondFactorNotEnrolled | Self::ClockError
        )
    }
}

/// The result of one login step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in.
    Accepted {
        /// Whether a second factor was checked.
        mfa_used: bool,
        /// The TOTP step accepted; the caller must persist it as the user's
        /// last used step (compare-and-swap) before issuing anything.
        totp_step: Option<u64>,
    },
    /// The password was right; present it again together with one of these
    /// factors.
    Need(Vec<Factor>),
    /// Refused.
    Rejected(RejectReason),
}

impl LoginOutcome {
    /// Whether the caller should record a failure for lockout.
    pub fn counts_as_failure(&self) -> bool {
        matches!(self, Self::Rejected(r) if r.counts_as_failure())
    }
}

/// One login attempt, consumed by [`handle`](Self::handle).
#[derive(Debug)]
pub struct LoginAttempt {
    /// The cluster's second-factor setting.
    second_factor: SecondFactor,
    /// The user, or `None` if the name is unknown.
    user: Option<UserFacts>,
    /// The latest lock end of the username's and source address's failure
    /// records (and any admin lock), as computed by the caller.
    locked_until: Option<OffsetDateTime>,
}

impl LoginAttempt {
    /// Start an attempt from freshly loaded facts.
    pub fn new(
        second_factor: SecondFactor,
        user: Option<UserFacts>,
        locked_until: Option<OffsetDateTime>,
    ) -> Self {
        Self {
            second_factor,
            user,
            locked_until,
        }
    }

    /// Decide. The order matters: lock first (no hashing for locked keys),
    /// then the password — with a dummy hash for unknown users so both paths
    /// take the same time — and only then the second factor, so a code is
    /// never checked (or its window burnt) for a wrong password.
    pub fn handle(self, input: Credentials, now: OffsetDateTime) -> LoginOutcome {
        use LoginOutcome::Rejected;

        if let Some(until) = self.locked_until.filter(|until| *until > now) {
            return Rejected(RejectReason::Locked { until });
        }
        if input.password.len() > PASSWORD_MAX_BYTES {
            return Rejected(RejectReason::PasswordTooLong);
        }
        let Some(user) = self.user else {
            dummy_verify(&input.password);
            return Rejected(RejectReason::UnknownUser);
        };
        let Some(phc) = user.password_hash.as_deref() else {
            dummy_verify(&input.password);
            return Rejected(RejectReason::NoPassword);
        };
        if !verify_password(phc, &input.password) {
            return Rejected(RejectReason::BadPassword);
        }
        second_factor(self.second_factor, &user, input.otp.as_deref(), now)
    }
}

/// The second-factor step, after the password was accepted.
fn second_factor(
    setting: SecondFactor,
    user: &UserFacts,
    otp: Option<&str>,
    now: OffsetDateTime,
) -> LoginOutcome {
    use LoginOutcome::{Need, Rejected};

    let totp = user.totp.as_ref();
    match (setting, totp, otp) {
        (SecondFactor::Off, _, _) => LoginOutcome::Accepted {
            mfa_used: false,
            totp_step: None,
        },
        (SecondFactor::Webauthn, _, _) if user.has_webauthn => Need(vec![Factor::Webauthn]),
        (SecondFactor::Webauthn, _, _) => Rejected(RejectReason::SecondFactorNotEnrolled),
        (SecondFactor::Otp | SecondFactor::On, Some(device), Some(code)) => {
            check_totp(device, code, now)
        }
        (SecondFactor::Otp, Some(_), None) => Need(vec![Factor::Totp]),
        (SecondFactor::Otp, None, _) => Rejected(RejectReason::SecondFactorNotEnrolled),
        (SecondFactor::On, Some(_), None) => {
            let mut factors = vec![Factor::Totp];
            if user.has_webauthn {
                factors.push(Factor::Webauthn);
            }
            Need(factors)
        }
        (SecondFactor::On, None, _) if user.has_webauthn => Need(vec![Factor::Webauthn]),
        (SecondFactor::On, None, _) => Rejected(RejectReason::SecondFactorNotEnrolled),
    }
}

/// Check a TOTP code against the user's device.
fn check_totp(device: &TotpFacts, code: &str, now: OffsetDateTime) -> LoginOutcome {
    match verify_totp(&device.secret, code, now, device.last_used_step) {
        Ok(step) => LoginOutcome::Accepted {
            mfa_used: true,
            totp_step: Some(step),
        },
        Err(TotpError::Replay) => LoginOutcome::Rejected(RejectReason::OtpReplay),
        Err(TotpError::ClockBeforeEpoch) => LoginOutcome::Rejected(RejectReason::ClockError),
        Err(TotpError::Malformed | TotpError::Mismatch) => {
            LoginOutcome::Rejected(RejectReason::BadOtp)
        }
    }
}

#[cfg(test)]
#[path = "login_tests.rs"]
mod tests;
