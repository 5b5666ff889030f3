//! Single-thread signing: raw Ed25519 (the baseline) and
//! `CertAuthority::sign_user_ssh` with a realistic user certificate.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use keygate_ca::{
    CaKind, CertAuthority, STANDARD_EXTENSIONS, UserCertRequest, random_serial, verify_user_cert,
};
use keygate_client::ClientKey;
use keygate_clock::SharedClock;

use crate::BenchError;
use crate::measure::{Rate, run_sync};

/// Size of the message the raw baseline signs: about the to-be-signed
/// part of a small SSH certificate.
pub const RAW_MESSAGE_LEN: usize = 300;

/// The logins every benchmark certificate carries (five principals, as
/// in the B4 spec, the last one being auth's internal principal).
pub(crate) const PRINCIPALS: [&str; 5] = ["root", "ubuntu", "deploy", "alice", "-keygate-internal"];
/// `roles@keygate` value of the benchmark certificate.
pub(crate) const ROLES_JSON: &str = r#"["admin","dev"]"#;
/// `traits@keygate` value of the benchmark certificate.
pub(crate) const TRAITS_JSON: &str = r#"{"logins":["root","ubuntu","deploy","alice"]}"#;

/// Everything the two single-thread measurements need, prepared once.
pub struct SignBench {
    /// The clock rates are timed with.
    clock: SharedClock,
    /// Baseline key.
    raw_key: Ed25519KeyPair,
    /// Baseline message.
    raw_msg: Vec<u8>,
    /// A user CA, as auth holds it.
    ca: CertAuthority,
    /// A realistic request; only the serial changes per certificate.
    request: UserCertRequest,
}

/// The rounds of the single-thread signing comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuRates {
    /// Raw Ed25519 signatures, one measurement per round.
    pub raw: Vec<Rate>,
    /// `sign_user_ssh` certificates, one measurement per round.
    pub sign: Vec<Rate>,
}

impl SignBench {
    /// Generates the keys and the request, and checks once that the
    /// certificate really verifies (so the loop measures real work).
    pub fn new(clock: SharedClock) -> Result<Self, BenchError> {
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|e| BenchError::setup("generate the baseline Ed25519 key", e))?;
        let raw_key = Ed25519KeyPair::from_pkcs8(doc.as_ref())
            .map_err(|e| BenchError::setup("load the baseline Ed25519 key", e))?;
        let raw_msg: Vec<u8> = (0..RAW_MESSAGE_LEN)
            .map(|i| u8::try_from(i % 251).unwrap_or(0))
            .collect();
        let now = clock.now();
        let ca = CertAuthority::generate(CaKind::User, "bench", now)
            .map_err(|e| BenchError::setup("generate the user CA", e))?;
        let request = user_cert_request(&ClientKey::generate(), now)?;
        let bench = Self {
            clock,
            raw_key,
            raw_msg,
            ca,
            request,
        };
        let cert = bench.sign_once()?;
        verify_user_cert(&cert, &bench.ca.trusted_ssh_keys(), now)
            .map_err(|e| BenchError::setup("the benchmark certificate does not verify", e))?;
        Ok(bench)
    }

    /// The request signed in the loop (the ssh-keygen comparison signs
    /// the same content).
    pub fn request(&self) -> &UserCertRequest {
        &self.request
    }

    /// One certificate, as auth would make it (fresh serial each time).
    fn sign_once(&self) -> Result<String, BenchError> {
        let mut req = self.request.clone();
        req.serial = random_serial();
        self.ca
            .sign_user_ssh(&req)
            .map_err(|e| BenchError::op("sign_user_ssh", e))
    }

    /// Raw Ed25519 signatures of a 300-byte message for `window`.
    pub fn raw_ed25519(&self, window: Duration) -> Result<Rate, BenchError> {
        run_sync(&self.clock, window, || {
            let sig = self.raw_key.sign(&self.raw_msg);
            // Keep the optimiser from dropping the signature.
            std::hint::black_box(sig);
            Ok(())
        })
    }

    /// `CertAuthority::sign_user_ssh` certificates for `window`.
    pub fn sign_user_ssh(&self, window: Duration) -> Result<Rate, BenchError> {
        run_sync(&self.clock, window, || {
            std::hint::black_box(self.sign_once()?);
            Ok(())
        })
    }

    /// `rounds` interleaved rounds: raw, then sign, then raw again…
    pub fn compare(&self, rounds: usize, window: Duration) -> Result<CpuRates, BenchError> {
        // Warm caches and lazy initialisation outside the timed rounds.
        self.raw_ed25519(window / 10)?;
        self.sign_user_ssh(window / 10)?;
        let mut out = CpuRates {
            raw: Vec::with_capacity(rounds),
            sign: Vec::with_capacity(rounds),
        };
        for _ in 0..rounds {
            out.raw.push(self.raw_ed25519(window)?);
            out.sign.push(self.sign_user_ssh(window)?);
        }
        Ok(out)
    }
}

/// A user certificate request shaped like auth's (five principals, the
/// standard extensions, roles and traits as JSON), valid for 12 h.
pub(crate) fn user_cert_request(
    key: &ClientKey,
    now: time::OffsetDateTime,
) -> Result<UserCertRequest, BenchError> {
    let public_key = key
        .public_openssh()
        .map_err(|e| BenchError::setup("encode the client public key", e))?;
    let mut extensions: BTreeMap<String, String> = STANDARD_EXTENSIONS
        .iter()
        .map(|name| ((*name).to_owned(), String::new()))
        .collect();
    extensions.insert("roles@keygate".into(), ROLES_JSON.into());
    extensions.insert("traits@keygate".into(), TRAITS_JSON.into());
    Ok(UserCertRequest {
        public_key,
        key_id: "alice".into(),
        principals: PRINCIPALS.iter().map(|p| (*p).to_owned()).collect(),
        valid_after: now - time::Duration::minutes(1),
        valid_before: now + time::Duration::hours(12),
        serial: random_serial(),
        extensions,
    })
}
