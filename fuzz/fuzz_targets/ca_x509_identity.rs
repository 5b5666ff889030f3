//! Fuzz target `ca_x509_identity`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::ca_x509_identity`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::ca_x509_identity(data));
