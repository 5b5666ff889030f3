//! Fuzz target `authn_totp`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::authn_totp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::authn_totp(data));
