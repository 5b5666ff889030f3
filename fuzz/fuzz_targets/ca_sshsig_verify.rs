//! Fuzz target `ca_sshsig_verify`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::ca_sshsig_verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::ca_sshsig_verify(data));
