//! Fuzz target `types_expr`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::types_expr`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::types_expr(data));
