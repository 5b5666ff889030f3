//! Fuzz target `types_template`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::types_template`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::types_template(data));
