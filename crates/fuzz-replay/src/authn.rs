//! Targets for `keygate-authn`: TOTP secrets and codes, stored password
//! hashes.

use keygate_authn::{
    Argon2Params, Password, TotpError, TotpSecret, hash_password_with, needs_rehash, totp_code_at,
    totp_step, verify_password, verify_totp,
};
use time::OffsetDateTime;

use crate::input;
use crate::invariant::{check, check_eq, fail, must};

/// `now` when an input leaves it blank (2030-01-01T00:00:00Z).
const DEFAULT_NOW: i64 = 1_893_456_000;
/// Secret used when the input's secret line does not decode, so that codes
/// are fuzzed either way (RFC 6238 Appendix B SHA-1 key).
const FALLBACK_SECRET: &[u8] = b"12345678901234567890";
/// Largest argon2 costs the password target actually verifies with: a
/// PHC string may legitimately ask for a GiB of memory, which would turn a
/// fuzzing loop into a benchmark without exercising more parsing code.
const FUZZ_MAX_M_COST_KIB: u32 = 1024;
/// See [`FUZZ_MAX_M_COST_KIB`].
const FUZZ_MAX_T_COST: u32 = 4;
/// See [`FUZZ_MAX_M_COST_KIB`].
const FUZZ_MAX_P_COST: u32 = 4;

/// `TotpSecret::from_base32` and `verify_totp` with arbitrary codes.
///
/// Input format (lines): base32 secret, code, `now` as Unix seconds (blank:
/// 2030-01-01), last used step (blank: none).
pub fn authn_totp(data: &[u8]) {
    let Some(text) = input::text(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let secret_line = lines.next().unwrap_or_default();
    let code = lines.next().unwrap_or_default();
    let Some(now) = input::number_or(lines.next().unwrap_or_default(), DEFAULT_NOW)
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
    else {
        return;
    };
    let last_used = match lines.next().map(str::trim).unwrap_or_default() {
        "" => None,
        step => match step.parse::<u64>() {
            Ok(step) => Some(step),
            Err(_) => return,
        },
    };

    let secret = match TotpSecret::from_base32(secret_line) {
        Ok(secret) => {
            let encoded = secret.to_base32();
            let again = must(TotpSecret::from_base32(&encoded), "decoding to_base32");
            check_eq(&again, &secret, "base32 round trip");
            let lower = must(
                TotpSecret::from_base32(&encoded.to_ascii_lowercase()),
                "decoding lowercase base32",
            );
            check_eq(&lower, &secret, "base32 is case-insensitive");
            secret
        }
        Err(_) => must(
            TotpSecret::from_bytes(FALLBACK_SECRET.to_vec()),
            "the fallback secret",
        ),
    };

    let current = totp_step(now);
    match verify_totp(&secret, code, now, last_used) {
        Ok(step) => {
            let current = must(current, "a step exists when a code verified");
            check(
                step.abs_diff(current) <= 1,
                "accepted step is within one of now",
                &(step, current),
            );
            check(
                last_used.is_none_or(|used| step > used),
                "an accepted step was not used before",
                &(step, last_used),
            );
            check_eq(
                &code_at_step(&secret, step),
                &code.to_owned(),
                "code of the step",
            );
        }
        Err(TotpError::Malformed) => check(
            code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()),
            "only a code that is not 6 digits is malformed",
            &code,
        ),
        Err(_) => {}
    }

    // The code an authenticator shows now is accepted once, then refused.
    let Ok(current) = current else { return };
    let shown = must(totp_code_at(&secret, now), "the code shown now");
    let step = must(
        verify_totp(&secret, &shown, now, None),
        "the code shown now",
    );
    check(step.abs_diff(current) <= 1, "accepted step near now", &step);
    check_eq(
        &verify_totp(&secret, &shown, now, Some(current.saturating_add(1))),
        &Err(TotpError::Replay),
        "a used code is a replay",
    );
}

/// `verify_password` with an arbitrary stored PHC string.
///
/// Input format: the PHC string on the first line, the password after it.
pub fn authn_password(data: &[u8]) {
    let Some(text) = input::text(data) else {
        return;
    };
    let (phc, password) = input::first_line(text);
    let password = Password::new(password);
    // Always cheap: it only parses.
    let _ = needs_rehash(phc, Argon2Params::OWASP);
    if affordable(phc) && verify_password(phc, &password) {
        let other = Password::new(format!("{}\u{0}x", password.expose()));
        check(
            !verify_password(phc, &other),
            "a hash matches one password",
            &phc,
        );
    }
    // What we hash we verify, whatever the password's bytes.
    if let Ok(fresh) = hash_password_with(&password, Argon2Params::dangerous_cheap_for_tests()) {
        check(
            verify_password(&fresh, &password),
            "a fresh hash verifies",
            &fresh,
        );
    }
}

/// Whether verifying against `phc` stays within the fuzzing cost budget.
/// Strings argon2 cannot even parse are affordable (they fail fast).
fn affordable(phc: &str) -> bool {
    let Ok(hash) = argon2::password_hash::PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return true;
    };
    params.m_cost() <= FUZZ_MAX_M_COST_KIB
        && params.t_cost() <= FUZZ_MAX_T_COST
        && params.p_cost() <= FUZZ_MAX_P_COST
}

/// The code for time step `step`.
fn code_at_step(secret: &TotpSecret, step: u64) -> String {
    let at = i64::try_from(step)
        .ok()
        .and_then(|s| s.checked_mul(30))
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok());
    match at {
        Some(at) => must(totp_code_at(secret, at), "code at an accepted step"),
        None => fail("accepted step is a representable time", &step),
    }
}
