//! Fuzz target `audit_verify_chain`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::audit_verify_chain`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::audit_verify_chain(data));
