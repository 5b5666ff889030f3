//! Fuzz target `audit_bundle`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::audit_bundle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::audit_bundle(data));
