//! Fuzz target `ca_ssh_cert`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::ca_ssh_cert`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::ca_ssh_cert(data));
