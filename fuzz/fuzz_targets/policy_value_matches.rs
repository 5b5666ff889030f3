//! Fuzz target `policy_value_matches`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::policy_value_matches`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::policy_value_matches(data));
