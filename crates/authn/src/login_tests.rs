#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use time::Duration;
use time::macros::datetime;

use super::*;
use crate::password::{Argon2Params, hash_password_with};
use crate::totp::totp_code_at;

const NOW: OffsetDateTime = datetime!(2025-03-01 12:00:00 UTC);
const PASSWORD: &str = "correct horse battery staple";

fn user(totp: bool, webauthn: bool) -> UserFacts {
    let phc = hash_password_with(
        &Password::from(PASSWORD),
        Argon2Params::dangerous_cheap_for_tests(),
    )
    .unwrap();
    UserFacts {
        password_hash: Some(phc),
        totp: totp.then(|| TotpFacts {
            secret: TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap(),
            last_used_step: None,
        }),
        has_webauthn: webauthn,
    }
}

fn creds(password: &str, otp: Option<&str>) -> Credentials {
    Credentials {
        password: Password::from(password),
        otp: otp.map(str::to_owned),
    }
}

fn code(u: &UserFacts) -> String {
    totp_code_at(&u.totp.as_ref().unwrap().secret, NOW).unwrap()
}

fn run(setting: SecondFactor, u: Option<UserFacts>, c: Credentials) -> LoginOutcome {
    LoginAttempt::new(setting, u, None).handle(c, NOW)
}

#[test]
fn password_only_when_second_factor_off() {
    let out = run(
        SecondFactor::Off,
        Some(user(true, false)),
        creds(PASSWORD, None),
    );
    assert_eq!(
        out,
        LoginOutcome::Accepted {
            mfa_used: false,
            totp_step: None
        }
    );
}

#[test]
fn unknown_user_and_bad_password_look_the_same() {
    let unknown = run(SecondFactor::Off, None, creds(PASSWORD, None));
    let bad = run(
        SecondFactor::Off,
        Some(user(false, false)),
        creds("wrong password!!", None),
    );
    let no_pw = run(
        SecondFactor::Off,
        Some(UserFacts {
            password_hash: None,
            ..user(false, false)
        }),
        creds(PASSWORD, None),
    );
    let (LoginOutcome::Rejected(a), LoginOutcome::Rejected(b), LoginOutcome::Rejected(c)) =
        (unknown, bad, no_pw)
    else {
        panic!("expected three rejections");
    };
    assert_eq!(a, RejectReason::UnknownUser);
    assert_eq!(b, RejectReason::BadPassword);
    assert_eq!(c, RejectReason::NoPassword);
    assert_eq!(a.public_message(), "invalid username or password");
    assert_eq!(a.public_message(), b.public_message());
    assert_eq!(a.public_message(), c.public_message());
    // The audit log still sees the difference.
    assert_ne!(a.audit_reason(), b.audit_reason());
    assert!(a.counts_as_failure() && b.counts_as_failure() && c.counts_as_failure());
}

#[test]
fn otp_required_asks_for_code_after_password() {
    let out = run(
        SecondFactor::Otp,
        Some(user(true, false)),
        creds(PASSWORD, None),
    );
    assert_eq!(out, LoginOutcome::Need(vec![Factor::Totp]));
    assert!(!out.counts_as_failure());
}

#[test]
fn otp_required_accepts_right_code_and_reports_step() {
    let u = user(true, false);
    let c = code(&u);
    let out = run(SecondFactor::Otp, Some(u), creds(PASSWORD, Some(&c)));
    let step = crate::totp_step(NOW).unwrap();
    assert_eq!(
        out,
        LoginOutcome::Accepted {
            mfa_used: true,
            totp_step: Some(step)
        }
    );
}

#[test]
fn wrong_password_never_reaches_otp() {
    let u = user(true, false);
    let c = code(&u);
    let out = run(
        SecondFactor::Otp,
        Some(u),
        creds("wrong password!!", Some(&c)),
    );
    assert_eq!(out, LoginOutcome::Rejected(RejectReason::BadPassword));
    // Nor does it ask for a code.
    let out = run(
        SecondFactor::Otp,
        Some(user(true, false)),
        creds("wrong password!!", None),
    );
    assert_eq!(out, LoginOutcome::Rejected(RejectReason::BadPassword));
}

#[test]
fn bad_malformed_and_replayed_codes_are_rejected() {
    let out = run(
        SecondFactor::Otp,
        Some(user(true, false)),
        creds(PASSWORD, Some("000000")),
    );
    // 000000 is not the code at NOW for the RFC key (checked below).
    assert_ne!(code(&user(true, false)), "000000");
    assert_eq!(out, LoginOutcome::Rejected(RejectReason::BadOtp));
    let out = run(
        SecondFactor::Otp,
        Some(user(true, false)),
        creds(PASSWORD, Some("12ab56")),
    );
    assert_eq!(out, LoginOutcome::Rejected(RejectReason::BadOtp));

    let mut u = user(true, false);
    let c = code(&u);
    let step = crate::totp_step(NOW).unwrap();
    if let Some(t) = u.totp.as_mut() {
        t.last_used_step = Some(step);
    }
    let out = run(SecondFactor::Otp, Some(u), creds(PASSWORD, Some(&c)));
    assert_eq!(out, LoginOutcome::Rejected(RejectReason::OtpReplay));
    assert!(out.counts_as_failure());
}

#[test]
fn missing_enrollment_is_reported_after_password() {
    let out = run(
        SecondFactor::Otp,
        Some(user(false, false)),
        creds(PASSWORD, Some("123456")),
    );
    assert_eq!(
        out,
        LoginOutcome::Rejected(RejectReason::SecondFactorNotEnrolled)
    );
    let out = run(
        SecondFactor::On,
        Some(user(false, false)),
        creds(PASSWORD, None),
    );
    assert_eq!(
        out,
        LoginOutcome::Rejected(RejectReason::SecondFactorNotEnrolled)
    );
    let out = run(
        SecondFactor::Webauthn,
        Some(user(true, false)),
        creds(PASSWORD, None),
    );
    assert_eq!(
        out,
        LoginOutcome::Rejected(RejectReason::SecondFactorNotEnrolled)
    );
    assert!(!out.counts_as_failure());
}

#[test]
fn on_offers_every_enrolled_factor() {
    let out = run(
        SecondFactor::On,
        Some(user(true, true)),
        creds(PASSWORD, None),
    );
    assert_eq!(
        out,
        LoginOutcome::Need(vec![Factor::Totp, Factor::Webauthn])
    );
    let out = run(
        SecondFactor::On,
        Some(user(false, true)),
        creds(PASSWORD, Some("123456")),
    );
    assert_eq!(out, LoginOutcome::Need(vec![Factor::Webauthn]));
    let u = user(true, true);
    let c = code(&u);
    let out = run(SecondFactor::On, Some(u), creds(PASSWORD, Some(&c)));
    assert!(matches!(out, LoginOutcome::Accepted { mfa_used: true, .. }));
    let out = run(
        SecondFactor::Webauthn,
        Some(user(true, true)),
        creds(PASSWORD, None),
    );
    assert_eq!(out, LoginOutcome::Need(vec![Factor::Webauthn]));
}

#[test]
fn lock_wins_before_any_check_and_expires() {
    let until = NOW + Duration::minutes(10);
    let out = LoginAttempt::new(SecondFactor::Off, Some(user(false, false)), Some(until))
        .handle(creds(PASSWORD, None), NOW);
    assert_eq!(out, LoginOutcome::Rejected(RejectReason::Locked { until }));
    assert!(!out.counts_as_failure());
    // Unknown users are locked the same way (records are keyed by name).
    let out =
        LoginAttempt::new(SecondFactor::Off, None, Some(until)).handle(creds(PASSWORD, None), NOW);
    assert_eq!(out, LoginOutcome::Rejected(RejectReason::Locked { until }));
    // After the lock ends the password is checked again.
    let out = LoginAttempt::new(SecondFactor::Off, Some(user(false, false)), Some(until))
        .handle(creds(PASSWORD, None), until);
    assert!(matches!(out, LoginOutcome::Accepted { .. }));
}

#[test]
fn oversized_password_is_refused_without_hashing() {
    let huge = "a".repeat(PASSWORD_MAX_BYTES + 1);
    let out = run(
        SecondFactor::Off,
        Some(user(false, false)),
        creds(&huge, None),
    );
    assert_eq!(out, LoginOutcome::Rejected(RejectReason::PasswordTooLong));
    assert_eq!(
        RejectReason::PasswordTooLong.public_message(),
        "invalid username or password"
    );
}

#[test]
fn debug_output_hides_secrets() {
    let u = user(true, false);
    let phc = u.password_hash.clone().unwrap();
    let dbg = format!("{:?} {:?}", u, creds(PASSWORD, Some("123456")));
    assert!(!dbg.contains(&phc));
    assert!(!dbg.contains(PASSWORD));
    assert!(!dbg.contains("123456"));
    assert!(!dbg.contains("12345678901234567890"));
}

#[test]
fn setting_parses_from_config_names() {
    for (text, want) in [
        ("\"off\"", SecondFactor::Off),
        ("\"otp\"", SecondFactor::Otp),
        ("\"on\"", SecondFactor::On),
        ("\"webauthn\"", SecondFactor::Webauthn),
    ] {
        assert_eq!(serde_json::from_str::<SecondFactor>(text).unwrap(), want);
    }
    assert!(serde_json::from_str::<SecondFactor>("\"optional\"").is_err());
}
