//! Running OpenSSH's `ssh-keygen`, the oracle for the KRL and SSHSIG
//! conformance tests. A missing tool fails the test: these checks are the
//! point of the suite, so they must never be skipped silently.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `ssh-keygen` binary; panics with an install hint when missing.
pub fn ssh_keygen() -> PathBuf {
    for candidate in ["/usr/bin/ssh-keygen", "/bin/ssh-keygen"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("ssh-keygen not found: install openssh-client (apt-get install openssh-client)");
}

/// Runs `ssh-keygen` with `args` in `dir` (TZ=UTC), feeding `stdin`.
pub fn keygen(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(ssh_keygen())
        .args(args)
        .current_dir(dir)
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Like [`keygen`] without input, failing the test on a non-zero exit;
/// returns stdout.
pub fn keygen_ok(dir: &Path, args: &[&str]) -> String {
    let out = keygen(dir, args, b"");
    assert!(
        out.status.success(),
        "ssh-keygen {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Generates an Ed25519 key pair `dir/name` (+ `.pub`) with ssh-keygen;
/// returns the public key line.
pub fn new_key(dir: &Path, name: &str) -> String {
    keygen_ok(
        dir,
        &["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", name],
    );
    read(dir, &format!("{name}.pub"))
}

/// A file of `dir` as trimmed text.
pub fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .trim()
        .to_owned()
}

pub fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), content).unwrap();
}
