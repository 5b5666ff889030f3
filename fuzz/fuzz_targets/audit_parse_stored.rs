//! Fuzz target `audit_parse_stored`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::audit_parse_stored`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::audit_parse_stored(data));
