//! TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1, 6 digits, 30-second
//! steps, ±1 step of clock skew, one use per step.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha1::Sha1;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use zeroize::Zeroize;

use crate::{AuthnError, TotpError, base32};

/// Digits in a code.
pub const TOTP_DIGITS: u32 = 6;
/// [`TOTP_DIGITS`] as a length.
const CODE_LEN: usize = 6;
/// Length of a time step in seconds.
pub const TOTP_PERIOD_SECS: i64 = 30;
/// Steps accepted either side of the current one (clock skew, typing time).
pub const TOTP_SKEW_STEPS: u64 = 1;
/// Size of a generated secret (160 bits, the RFC 4226 recommendation).
pub const TOTP_SECRET_LEN: usize = 20;
/// Smallest secret accepted (RFC 4226 R6: at least 128 bits).
pub const TOTP_SECRET_MIN_LEN: usize = 16;
/// Largest secret accepted (HMAC-SHA-1 gains nothing beyond its block size).
pub const TOTP_SECRET_MAX_LEN: usize = 64;

// === impl TotpSecret ===

/// A shared TOTP key. Zeroed on drop; `Debug` prints `<redacted>`.
#[derive(Clone)]
pub struct TotpSecret {
    /// The raw key bytes.
    bytes: Vec<u8>,
}

impl TotpSecret {
    /// A fresh random secret of [`TOTP_SECRET_LEN`] bytes from the OS RNG.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; TOTP_SECRET_LEN];
        OsRng.fill_bytes(&mut bytes);
        Self { bytes }
    }

    /// Wrap raw key bytes (for example after decrypting them from storage).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, AuthnError> {
        if !(TOTP_SECRET_MIN_LEN..=TOTP_SECRET_MAX_LEN).contains(&bytes.len()) {
            return Err(AuthnError::TotpSecretLength {
                got: bytes.len(),
                min: TOTP_SECRET_MIN_LEN,
                max: TOTP_SECRET_MAX_LEN,
            });
        }
        Ok(Self { bytes })
    }

    /// Parse the base32 form shown by authenticator apps.
    pub fn from_base32(text: &str) -> Result<Self, AuthnError> {
        Self::from_bytes(base32::decode(text)?)
    }

    /// The base32 form (no padding), for enrollment screens. This is the
    /// secret itself: show it once, never log it.
    pub fn to_base32(&self) -> String {
        base32::encode(&self.bytes)
    }

    /// The raw key, for the caller to encrypt at rest.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The `otpauth://` Key URI that authenticator apps read from a QR code.
    /// Issuer and account are percent-encoded (a `:` inside either becomes
    /// `%3A`, keeping the label's own separator unambiguous).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_PERIOD_SECS}",
            account = percent_encode(account),
            secret = self.to_base32(),
        )
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl PartialEq for TotpSecret {
    fn eq(&self, other: &Self) -> bool {
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl Eq for TotpSecret {}

impl Drop for TotpSecret {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// === HOTP / TOTP core ===

/// RFC 4226 HOTP value with `digits` digits (6..=9 make sense), or `None` if
/// HMAC refused the key (it never does; the caller treats `None` as a
/// mismatch so that nothing fails open).
pub(crate) fn hotp(key: &[u8], counter: u64, digits: u32) -> Option<u32> {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).ok()?;
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // Dynamic truncation: the low nibble of the last byte picks 4 bytes.
    let offset = usize::from(digest.last().copied()? & 0x0f);
    let code = digest
        .iter()
        .skip(offset)
        .take(4)
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
        & 0x7fff_ffff;
    Some(code % 10u32.checked_pow(digits)?)
}

/// The RFC 6238 time step containing `now`.
pub fn totp_step(now: OffsetDateTime) -> Result<u64, TotpError> {
    u64::try_from(now.unix_timestamp().div_euclid(TOTP_PERIOD_SECS))
        .map_err(|_| TotpError::ClockBeforeEpoch)
}

/// The code for step `step`, zero-padded to [`TOTP_DIGITS`] digits.
fn code_for_step(secret: &TotpSecret, step: u64) -> Option<String> {
    hotp(&secret.bytes, step, TOTP_DIGITS).map(|c| format!("{c:06}"))
}

/// The code an authenticator shows at `now` (for clients and tests).
pub fn totp_code_at(secret: &TotpSecret, now: OffsetDateTime) -> Result<String, TotpError> {
    code_for_step(secret, totp_step(now)?).ok_or(TotpError::Mismatch)
}

/// Check `code` against the steps `now-1 ..= now+1` and return the step it
/// matched. A step at or before `last_used_step` is refused as a replay, so
/// each code works once; the caller must persist the returned step
/// (atomically, compare-and-swap) before treating the login as done.
///
/// Every candidate step is computed and compared in constant time, and the
/// verdict is chosen without data-dependent early exits.
pub fn verify_totp(
    secret: &TotpSecret,
    code: &str,
    now: OffsetDateTime,
    last_used_step: Option<u64>,
) -> Result<u64, TotpError> {
    if code.len() != CODE_LEN || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Malformed);
    }
    let current = totp_step(now)?;
    let first = current.saturating_sub(TOTP_SKEW_STEPS);
    let last = current.saturating_add(TOTP_SKEW_STEPS);

    let mut accepted: Option<u64> = None;
    let mut replayed = false;
    for step in first..=last {
        let expected = code_for_step(secret, step).unwrap_or_default();
        let matches: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        // Step numbers are public (they follow from the time); only the
        // code comparison above needs to be constant-time.
        let used = last_used_step.is_some_and(|last_used| step <= last_used);
        if matches && !used && accepted.is_none() {
            accepted = Some(step);
        }
        replayed |= matches && used;
    }
    match (accepted, replayed) {
        (Some(step), _) => Ok(step),
        (None, true) => Err(TotpError::Replay),
        (None, false) => Err(TotpError::Mismatch),
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

    /// The RFC 6238 Appendix B SHA-1 key: ASCII "12345678901234567890".
    const RFC_KEY: &[u8] = b"12345678901234567890";

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(RFC_KEY.to_vec()).unwrap()
    }

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let vectors: &[(i64, u32)] = &[
            (59, 94_287_082),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ];
        for &(t, expected) in vectors {
            let step = totp_step(at(t)).unwrap();
            assert_eq!(hotp(RFC_KEY, step, 8), Some(expected), "T = {t}");
            // The 6-digit code is the low six digits of the same value.
            assert_eq!(
                totp_code_at(&rfc_secret(), at(t)).unwrap(),
                format!("{:06}", expected % 1_000_000)
            );
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(RFC_KEY, counter as u64, 6), Some(*code));
        }
    }

    #[test]
    fn accepts_adjacent_steps_only() {
        let s = rfc_secret();
        let now = at(1_234_567_890);
        let step = totp_step(now).unwrap();
        for delta in [-1i64, 0, 1] {
            let code = totp_code_at(&s, at(1_234_567_890 + delta * 30)).unwrap();
            assert_eq!(
                verify_totp(&s, &code, now, None),
                Ok(step.checked_add_signed(delta).unwrap())
            );
        }
        for delta in [-3i64, -2, 2, 3] {
            let code = totp_code_at(&s, at(1_234_567_890 + delta * 30)).unwrap();
            assert_eq!(
                verify_totp(&s, &code, now, None),
                Err(TotpError::Mismatch),
                "delta {delta}"
            );
        }
    }

    #[test]
    fn a_code_works_once_per_window() {
        let s = rfc_secret();
        let now = at(1_234_567_890);
        let code = totp_code_at(&s, now).unwrap();
        let step = verify_totp(&s, &code, now, None).unwrap();
        assert_eq!(
            verify_totp(&s, &code, now, Some(step)),
            Err(TotpError::Replay)
        );
        // Still refused 20 s later, within the skew window.
        assert_eq!(
            verify_totp(&s, &code, at(1_234_567_910), Some(step)),
            Err(TotpError::Replay)
        );
        // An older window's code is refused once a newer step was used.
        let previous = totp_code_at(&s, at(1_234_567_890 - 30)).unwrap();
        assert_eq!(
            verify_totp(&s, &previous, now, Some(step)),
            Err(TotpError::Replay)
        );
        // The next window's code is fine.
        let next = totp_code_at(&s, at(1_234_567_890 + 30)).unwrap();
        assert_eq!(verify_totp(&s, &next, now, Some(step)), Ok(step + 1));
    }

    #[test]
    fn rejects_malformed_codes() {
        let s = rfc_secret();
        let now = at(1_234_567_890);
        let good = totp_code_at(&s, now).unwrap();
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            " 12345",
            "１２３４５６",
            "-12345",
            &format!("{good} "),
        ] {
            assert_eq!(
                verify_totp(&s, bad, now, None),
                Err(TotpError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn before_epoch_is_an_error() {
        let s = rfc_secret();
        assert_eq!(
            verify_totp(&s, "123456", at(-31), None),
            Err(TotpError::ClockBeforeEpoch)
        );
        assert_eq!(totp_code_at(&s, at(-1)), Err(TotpError::ClockBeforeEpoch));
        // Step 0 has no previous step; checking there must not underflow.
        let code = totp_code_at(&s, at(0)).unwrap();
        assert_eq!(verify_totp(&s, &code, at(0), None), Ok(0));
    }

    #[test]
    fn secrets_round_trip_and_validate() {
        let s = TotpSecret::generate();
        assert_eq!(s.expose_bytes().len(), TOTP_SECRET_LEN);
        let b32 = s.to_base32();
        assert_eq!(b32.len(), 32);
        assert_eq!(TotpSecret::from_base32(&b32).unwrap(), s);
        assert_eq!(TotpSecret::from_base32(&b32.to_lowercase()).unwrap(), s);
        assert_ne!(TotpSecret::generate(), s);
        assert_eq!(rfc_secret().to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");

        assert!(matches!(
            TotpSecret::from_bytes(vec![0; 15]),
            Err(AuthnError::TotpSecretLength { got: 15, .. })
        ));
        assert!(TotpSecret::from_bytes(vec![0; 65]).is_err());
        assert!(matches!(
            TotpSecret::from_base32("GEZDGNBV!"),
            Err(AuthnError::InvalidBase32(_))
        ));
        assert!(TotpSecret::from_base32("GEZDGNBV").is_err()); // 5 bytes: too short
    }

    #[test]
    fn otpauth_uri_is_well_formed() {
        let uri = rfc_secret().otpauth_uri("Key Gate", "alice@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Key%20Gate:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Key%20Gate&algorithm=SHA1&digits=6&period=30"
        );
        let colon = rfc_secret().otpauth_uri("a:b", "c");
        assert!(colon.starts_with("otpauth://totp/a%3Ab:c?"));
    }

    #[test]
    fn debug_is_redacted() {
        let s = rfc_secret();
        let d = format!("{s:?}");
        assert_eq!(d, "TotpSecret(<redacted>)");
        assert!(!d.contains("GEZ"));
    }
}
