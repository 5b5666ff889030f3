//! Fuzz target `types_load`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::types_load`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::types_load(data));
