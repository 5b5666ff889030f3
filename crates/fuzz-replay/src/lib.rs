//! The bodies of Keygate's fuzz targets, one plain function per target.
//!
//! Owns: what each fuzz target does with its input — which parser it feeds,
//! how a byte string is cut into that parser's arguments, and which
//! invariants (round trips, differential checks) must hold on success.
//! The cargo-fuzz project in `fuzz/` (its own workspace, the only place that
//! links libFuzzer) calls these functions from `fuzz/fuzz_targets/<name>.rs`;
//! `tests/replay.rs` calls the same functions on every file of
//! `fuzz/corpus/<name>/`, so CI replays each corpus as an ordinary test.
//! Does not own: the parsers themselves (they live in the L0 crates), or
//! fuzzing infrastructure (see `docs/fuzzing.md` and `scripts/fuzz`).
//!
//! Every function takes arbitrary bytes and must return normally. A parser
//! error is an expected outcome; a panic — from the parser or from a broken
//! invariant checked here — is a bug.
#![forbid(unsafe_code)]

mod audit;
mod authn;
mod ca;
mod expr;
mod input;
mod invariant;
mod policy;
mod types;

pub use audit::{audit_bundle, audit_parse_stored, audit_verify_chain};
pub use authn::{authn_password, authn_totp};
pub use ca::{
    FUZZ_AAD, FUZZ_KEK, FUZZ_SIGNED_MESSAGE, ca_kek_open, ca_krl_decode, ca_ssh_cert,
    ca_ssh_fingerprint, ca_sshsig_verify, ca_x509_identity,
};
pub use expr::{types_expr, types_template};
pub use policy::{policy_label_selector, policy_value_matches};
pub use types::{types_json, types_load, types_names};

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target by name; the name is also the fuzz target's binary name and
/// its corpus directory under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("types_load", types_load),
    ("types_json", types_json),
    ("types_names", types_names),
    ("types_expr", types_expr),
    ("types_template", types_template),
    ("audit_parse_stored", audit_parse_stored),
    ("audit_verify_chain", audit_verify_chain),
    ("audit_bundle", audit_bundle),
    ("ca_x509_identity", ca_x509_identity),
    ("ca_ssh_cert", ca_ssh_cert),
    ("ca_kek_open", ca_kek_open),
    ("ca_ssh_fingerprint", ca_ssh_fingerprint),
    ("ca_krl_decode", ca_krl_decode),
    ("ca_sshsig_verify", ca_sshsig_verify),
    ("authn_totp", authn_totp),
    ("authn_password", authn_password),
    ("policy_value_matches", policy_value_matches),
    ("policy_label_selector", policy_label_selector),
];
