//! Fuzz target `ca_kek_open`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::ca_kek_open`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::ca_kek_open(data));
