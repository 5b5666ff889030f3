//! Response time must not tell an attacker which user names exist: with
//! production argon2 parameters, refusing an unknown user costs about as
//! much as refusing a wrong password for a real one. Alone in its own test
//! binary so that no other test competes for the CPU while it measures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{cluster_with, login_req};
use keygate_authn::Argon2Params;
use keygate_clock::{Clock, SystemClock};

/// Measured rounds per path, including warm-up.
const ROUNDS: usize = 15;
/// Rounds discarded at the start (the dummy hash is computed on first use,
/// caches and allocators warm up).
const WARM_UP: usize = 2;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

#[tokio::test]
async fn unknown_and_known_user_rejections_take_the_same_time() {
    let c = cluster_with(Argon2Params::OWASP).await;
    // Wall-clock measurement is the point of this test, so it reads the
    // real monotonic clock (through the clock crate, as everywhere).
    let real = SystemClock::new();
    let mut unknown = Vec::with_capacity(ROUNDS);
    let mut known = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        // More than the 15-minute lockout window between failures, so the
        // known user never gets locked (a locked refusal skips hashing).
        c.clock.advance(Duration::from_secs(16 * 60));

        let start = real.monotonic();
        let msg = assert_err!(
            c.auth
                .login(
                    login_req(&format!("nobody{round}"), "wrong password 123", None),
                    None
                )
                .await,
            InvalidCredentials
        );
        unknown.push(real.monotonic() - start);
        assert_eq!(msg, "invalid username or password");

        let start = real.monotonic();
        let msg = assert_err!(
            c.auth
                .login(login_req("admin", "wrong password 123", None), None)
                .await,
            InvalidCredentials
        );
        known.push(real.monotonic() - start);
        assert_eq!(msg, "invalid username or password");
    }
    // Each round's two rejections run back to back, so the median of the
    // per-round ratios cancels load that comes and goes (tests share the
    // machine with other tests).
    let mut ratios: Vec<f64> = unknown
        .iter()
        .zip(&known)
        .skip(WARM_UP)
        .map(|(u, k)| u.as_secs_f64() / k.as_secs_f64().max(1e-9))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    let unknown = median(unknown.split_off(WARM_UP));
    let known = median(known.split_off(WARM_UP));
    eprintln!("median rejection: unknown user {unknown:?}, known user {known:?}, ratio {ratio:.2}");
    assert!(
        (0.6..=1.6).contains(&ratio),
        "unknown user {unknown:?} vs wrong password {known:?} (ratio {ratio:.2})"
    );
    // Sanity: the production parameters really are being paid for.
    assert!(
        known > Duration::from_millis(5),
        "argon2 was not used: {known:?}"
    );
}
