//! Password hashing (argon2id, PHC strings), verification, the timing
//! equaliser for unknown users, and the password policy.

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Params, Version};
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroize;

use crate::AuthnError;

/// Argon2id memory cost in KiB (OWASP password storage cheat sheet).
pub const ARGON2_M_COST_KIB: u32 = 19_456;
/// Argon2id iterations (OWASP).
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id lanes (OWASP).
pub const ARGON2_P_COST: u32 = 1;
/// Salt length in bytes (the PHC recommendation is 16).
pub const SALT_LEN: usize = 16;

/// Fewest characters (Unicode scalar values) a new password may have.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Most bytes a password may have; longer input is refused before hashing
/// so that nobody can make us hash megabytes.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// Refuse to verify stored hashes whose parameters exceed these: a corrupted
/// or planted hash must not make a single login allocate gigabytes.
const MAX_VERIFY_M_COST_KIB: u32 = 1024 * 1024;
/// See [`MAX_VERIFY_M_COST_KIB`].
const MAX_VERIFY_T_COST: u32 = 32;
/// See [`MAX_VERIFY_M_COST_KIB`].
const MAX_VERIFY_P_COST: u32 = 16;

// === impl Password ===

/// A password as typed by a user. Zeroed on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wrap a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password itself; only for hashing and verification.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the password is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

// === impl Argon2Params ===

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory cost in KiB.
    pub m_cost_kib: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Degree of parallelism (lanes).
    pub p_cost: u32,
}

impl Argon2Params {
    /// The production parameters (OWASP: m = 19 MiB, t = 2, p = 1).
    pub const OWASP: Self = Self {
        m_cost_kib: ARGON2_M_COST_KIB,
        t_cost: ARGON2_T_COST,
        p_cost: ARGON2_P_COST,
    };

    /// Tiny parameters that make hashing take microseconds. Only for tests:
    /// a hash made with these offers no protection against offline guessing.
    pub const fn dangerous_cheap_for_tests() -> Self {
        Self {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        }
    }

    /// The argon2id hasher for these parameters.
    fn hasher(self) -> Result<Argon2<'static>, AuthnError> {
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, None)
            .map_err(|e| AuthnError::InvalidArgon2Params(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP
    }
}

// === hashing and verification ===

/// Hash a password with the production parameters; returns a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
pub fn hash_password(password: &Password) -> Result<String, AuthnError> {
    hash_password_with(password, Argon2Params::OWASP)
}

/// Hash a password with explicit parameters (tests use cheap ones).
pub fn hash_password_with(password: &Password, params: Argon2Params) -> Result<String, AuthnError> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(AuthnError::PasswordTooLong {
            max: PASSWORD_MAX_BYTES,
        });
    }
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    hash_with_salt(password, params, &salt)
}

/// Hash with a given salt (random for real hashes, fixed for the dummy).
fn hash_with_salt(
    password: &Password,
    params: Argon2Params,
    salt: &[u8],
) -> Result<String, AuthnError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| AuthnError::Hash(e.to_string()))?;
    let hash = params
        .hasher()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|e| AuthnError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. Any malformed,
/// non-argon2id or absurdly expensive stored hash verifies as `false`.
/// Argon2's output comparison is constant-time.
pub fn verify_password(phc: &str, password: &Password) -> bool {
    if password.len() > PASSWORD_MAX_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != ARGON2ID_IDENT {
        return false;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_VERIFY_M_COST_KIB
        || params.t_cost() > MAX_VERIFY_T_COST
        || params.p_cost() > MAX_VERIFY_P_COST
    {
        return false;
    }
    // The hasher's own parameters are ignored: verification re-hashes with
    // the parameters recorded in the PHC string.
    Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
}

/// Whether a stored hash was made with parameters other than `wanted` (or
/// cannot be parsed), so the caller should re-hash after a successful login.
pub fn needs_rehash(phc: &str, wanted: Argon2Params) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    parsed.algorithm != ARGON2ID_IDENT
        || params.m_cost() != wanted.m_cost_kib
        || params.t_cost() != wanted.t_cost
        || params.p_cost() != wanted.p_cost
}

/// A hash with production parameters that no password matches in practice,
/// computed once per process.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let pw = Password::from("keygate dummy password: never a real credential");
            hash_with_salt(&pw, Argon2Params::OWASP, b"keygate-dummy-salt").ok()
        })
        .as_deref()
}

/// Spend as long as a real verification with production parameters, and
/// always fail. Used when the user does not exist or has no password, so
/// that response time does not tell an attacker which usernames exist.
pub fn dummy_verify(password: &Password) {
    if let Some(phc) = dummy_hash() {
        // The result is deliberately ignored: only the time spent matters.
        let _ = verify_password(phc, password);
    }
}

/// Check a *new* password against the policy: at least
/// [`PASSWORD_MIN_CHARS`] characters, at most [`PASSWORD_MAX_BYTES`] bytes.
pub fn check_password_policy(password: &Password) -> Result<(), AuthnError> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(AuthnError::PasswordTooLong {
            max: PASSWORD_MAX_BYTES,
        });
    }
    let chars = password.expose().chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(AuthnError::PasswordTooShort {
            got: chars,
            min: PASSWORD_MIN_CHARS,
        });
    }
    Ok(())
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

    const CHEAP: Argon2Params = Argon2Params::dangerous_cheap_for_tests();

    #[test]
    fn hash_then_verify_round_trips() {
        let pw = Password::from("correct horse battery staple");
        let phc = hash_password_with(&pw, CHEAP).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(verify_password(&phc, &pw));
        assert!(!verify_password(
            &phc,
            &Password::from("correct horse battery stapl")
        ));
    }

    #[test]
    fn production_hash_records_owasp_parameters() {
        let pw = Password::from("correct horse battery staple");
        let phc = hash_password(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, &pw));
        assert!(!needs_rehash(&phc, Argon2Params::OWASP));
        assert!(needs_rehash(&phc, CHEAP));
    }

    #[test]
    fn salts_differ_between_hashes() {
        let pw = Password::from("correct horse battery staple");
        assert_ne!(
            hash_password_with(&pw, CHEAP).unwrap(),
            hash_password_with(&pw, CHEAP).unwrap()
        );
    }

    #[test]
    fn malformed_or_foreign_hashes_never_verify() {
        let pw = Password::from("correct horse battery staple");
        let good = hash_password_with(&pw, CHEAP).unwrap();
        // A cut hash may still parse (base64 of a shorter output) with our
        // parameters, so only whether it verifies is certain.
        let cut = &good[..good.len() - 4];
        assert!(!verify_password(cut, &pw), "{cut:?} verified");
        for bad in [
            "",
            "plaintext",
            "$argon2id$",
            "$argon2id$v=19$m=64,t=1,p=1$",
            &good.replace("argon2id", "argon2i"),
            // Absurd memory cost: refused without hashing.
            &good.replace("m=64", "m=4000000"),
        ] {
            assert!(!verify_password(bad, &pw), "{bad:?} verified");
            assert!(needs_rehash(bad, CHEAP) || bad.contains("m=4000000"));
        }
    }

    #[test]
    fn invalid_params_are_an_error() {
        let pw = Password::from("correct horse battery staple");
        let err = hash_password_with(
            &pw,
            Argon2Params {
                m_cost_kib: 1,
                t_cost: 0,
                p_cost: 1,
            },
        );
        assert!(matches!(err, Err(AuthnError::InvalidArgon2Params(_))));
    }

    #[test]
    fn dummy_verify_is_stable_and_quiet() {
        // Computed once; repeated calls must not panic or change anything.
        dummy_verify(&Password::from("x"));
        dummy_verify(&Password::from("y"));
        let phc = dummy_hash().unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(std::ptr::eq(phc, dummy_hash().unwrap()));
    }

    #[test]
    fn policy_bounds() {
        assert_eq!(
            check_password_policy(&Password::from("short")),
            Err(AuthnError::PasswordTooShort { got: 5, min: 12 })
        );
        // Twelve characters but more bytes: characters are what count.
        assert!(check_password_policy(&Password::from("ééééééééééé")).is_err());
        assert!(check_password_policy(&Password::from("éééééééééééé")).is_ok());
        assert!(check_password_policy(&Password::from("a".repeat(1024))).is_ok());
        assert_eq!(
            check_password_policy(&Password::from("a".repeat(1025))),
            Err(AuthnError::PasswordTooLong { max: 1024 })
        );
        assert!(hash_password_with(&Password::from("a".repeat(1025)), CHEAP).is_err());
        assert!(!verify_password(
            "$argon2id$",
            &Password::from("a".repeat(1025))
        ));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let s = format!("{:?}", Password::from("hunter2hunter2"));
        assert!(!s.contains("hunter2"));
        assert!(s.contains("<redacted>"));
    }
}
