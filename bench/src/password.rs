//! The cost of a password login's expensive part: one argon2id
//! verification with the production (OWASP) parameters, on one thread.

use std::time::Duration;

use keygate_authn::{Argon2Params, Password, hash_password_with, verify_password};
use keygate_clock::SharedClock;

use crate::BenchError;
use crate::measure::median;

/// What one password check costs.
#[derive(Debug, Clone, PartialEq)]
pub struct Argon2Cost {
    /// The parameters measured.
    pub params: Argon2Params,
    /// Time to hash once (sign-up, password change).
    pub hash: Duration,
    /// Median time of one verification (every login).
    pub verify: Duration,
    /// How many verifications were timed.
    pub samples: usize,
}

impl Argon2Cost {
    /// Verifications per second one core can do.
    pub fn verifies_per_sec(&self) -> f64 {
        let secs = self.verify.as_secs_f64();
        if secs > 0.0 { 1.0 / secs } else { 0.0 }
    }
}

/// Hashes once with `params`, then times `verifies` verifications of the
/// right password (each must succeed).
pub fn measure_argon2(
    clock: &SharedClock,
    params: Argon2Params,
    verifies: usize,
) -> Result<Argon2Cost, BenchError> {
    let password = Password::new("correct horse battery staple");
    let start = clock.monotonic();
    let phc =
        hash_password_with(&password, params).map_err(|e| BenchError::op("argon2 hash", e))?;
    let hash = clock.monotonic().saturating_sub(start);
    let samples = verifies.max(1);
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = clock.monotonic();
        let ok = verify_password(&phc, &password);
        let took = clock.monotonic().saturating_sub(start);
        if !ok {
            return Err(BenchError::Operation(
                "argon2 verification of the right password failed".into(),
            ));
        }
        times.push(took.as_secs_f64());
    }
    Ok(Argon2Cost {
        params,
        hash,
        verify: Duration::from_secs_f64(median(&times)),
        samples,
    })
}
