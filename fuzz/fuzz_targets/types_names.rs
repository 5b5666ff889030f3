//! Fuzz target `types_names`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::types_names`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::types_names(data));
