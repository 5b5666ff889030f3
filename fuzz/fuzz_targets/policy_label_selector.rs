//! Fuzz target `policy_label_selector`: the body, its input format and its invariants are
//! documented on `keygate_fuzz_replay::policy_label_selector`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz_replay::policy_label_selector(data));
