//! Fuzz target `ca_krl_decode`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::ca_krl_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::ca_krl_decode(data));
