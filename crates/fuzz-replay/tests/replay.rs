//! Replays every fuzz target's committed corpus (`fuzz/corpus/<target>/`)
//! through the same function the fuzz target calls, so that CI runs each
//! seed and each crash found earlier on every build, without libFuzzer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use keygate_fuzz_replay::{TARGETS, Target};

/// Largest corpus file we commit (keeps the repository and the replay small).
const MAX_FILE_BYTES: usize = 4096;
/// Most files per target corpus.
const MAX_FILES: usize = 30;

/// The `fuzz/` project at the repository root.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Runs `target` on every file of its corpus; fails on an empty corpus, an
/// oversized corpus, or any panic (naming every file that panicked).
fn replay(name: &str, target: Target) {
    let dir = fuzz_dir().join("corpus").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    assert!(
        files.len() <= MAX_FILES,
        "corpus {} has {} files; keep at most {MAX_FILES} (minimise with `cargo fuzz cmin`)",
        dir.display(),
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        assert!(
            data.len() <= MAX_FILE_BYTES,
            "{} is {} bytes; corpus files stay under {MAX_FILE_BYTES}",
            file.display(),
            data.len()
        );
        if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
            failures.push(file.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{name} panicked on: {failures:#?}\nreproduce one with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run {name} <file>"
    );
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name), keygate_fuzz_replay::$name);
            }
        )*

        /// The targets that have a replay test above.
        const REPLAYED: &[&str] = &[$(stringify!($name)),*];
    };
}

replay_tests!(
    types_load,
    types_json,
    types_names,
    types_expr,
    types_template,
    audit_parse_stored,
    audit_verify_chain,
    audit_bundle,
    ca_x509_identity,
    ca_ssh_cert,
    ca_kek_open,
    ca_ssh_fingerprint,
    ca_krl_decode,
    ca_sshsig_verify,
    authn_totp,
    authn_password,
    policy_value_matches,
    policy_label_selector,
);

/// A target added to the library, to `fuzz/fuzz_targets/` or to
/// `fuzz/Cargo.toml` but not to the others (or not replayed here) fails.
#[test]
fn targets_replay_tests_and_fuzz_project_agree() {
    let mut listed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    listed.sort_unstable();
    let mut replayed = REPLAYED.to_vec();
    replayed.sort_unstable();
    assert_eq!(listed, replayed, "TARGETS vs replay tests");

    let mut on_disk: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(listed, on_disk, "TARGETS vs fuzz/fuzz_targets/*.rs");

    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in &listed {
        let source =
            std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs"))).unwrap();
        assert!(
            source.contains(&format!("keygate_fuzz_replay::{name}(")),
            "fuzz_targets/{name}.rs must call keygate_fuzz_replay::{name}"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
}

/// The harnesses skip non-UTF-8 and empty input without panicking (the
/// corpus may not contain such files, libFuzzer certainly sends them).
#[test]
fn degenerate_inputs_are_harmless() {
    for (_, target) in TARGETS {
        for data in [&b""[..], b"\xff\xfe\x00", b"\n\n\n", &[0u8; 64]] {
            target(data);
        }
    }
}
