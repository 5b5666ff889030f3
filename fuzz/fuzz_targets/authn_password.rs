//! Fuzz target `authn_password`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::authn_password`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::authn_password(data));
