//! The external baseline: `ssh-keygen -s`, one process per certificate,
//! which is how shell-script CAs issue certificates.

use std::path::PathBuf;
use std::process::Command;

use keygate_ca::verify_user_cert;
use keygate_client::ClientKey;
use keygate_clock::SharedClock;
use tempfile::TempDir;

use crate::BenchError;
use crate::cpu::{PRINCIPALS, ROLES_JSON, TRAITS_JSON};
use crate::measure::{Rate, process_cpu};

/// A CA key and a user key on disk, for `ssh-keygen -s`.
pub struct SshKeygenBench {
    /// The clock rates are timed with.
    clock: SharedClock,
    /// The CA private key file.
    ca_key: PathBuf,
    /// The CA public key line (to verify what ssh-keygen made).
    ca_public: String,
    /// The user's public key file; ssh-keygen writes `user-cert.pub`
    /// beside it.
    user_pub: PathBuf,
    /// Holds the key files; removed on drop.
    _dir: TempDir,
}

impl SshKeygenBench {
    /// Creates the CA key with `ssh-keygen -t ed25519` and a user key,
    /// then signs once and checks the result verifies.
    pub fn new(clock: SharedClock) -> Result<Self, BenchError> {
        let dir = tempfile::tempdir().map_err(|e| BenchError::setup("create a temp dir", e))?;
        let ca_key = dir.path().join("ca");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "bench-ca", "-f"])
            .arg(&ca_key))?;
        let ca_public = std::fs::read_to_string(ca_key.with_extension("pub"))
            .map_err(|e| BenchError::SshKeygen(format!("reading the CA public key: {e}")))?;
        let user_pub = dir.path().join("user.pub");
        let line = ClientKey::generate()
            .public_openssh()
            .map_err(|e| BenchError::setup("encode the client public key", e))?;
        std::fs::write(&user_pub, format!("{line}\n"))
            .map_err(|e| BenchError::setup("write the user public key", e))?;
        let bench = Self {
            clock,
            ca_key,
            ca_public: ca_public.trim().to_owned(),
            user_pub,
            _dir: dir,
        };
        bench.sign_once(1)?;
        let cert = std::fs::read_to_string(bench.cert_path())
            .map_err(|e| BenchError::SshKeygen(format!("reading the certificate it wrote: {e}")))?;
        verify_user_cert(
            &cert,
            std::slice::from_ref(&bench.ca_public),
            bench.clock.now(),
        )
        .map_err(|e| BenchError::SshKeygen(format!("its certificate does not verify: {e}")))?;
        Ok(bench)
    }

    /// Where ssh-keygen writes the certificate.
    fn cert_path(&self) -> PathBuf {
        self.user_pub.with_file_name("user-cert.pub")
    }

    /// One `ssh-keygen -s` process signing the same content as the
    /// in-process benchmark (five principals, standard extensions — which
    /// ssh-keygen adds by default — plus roles and traits).
    fn sign_once(&self, serial: u64) -> Result<(), BenchError> {
        run(Command::new("ssh-keygen")
            .arg("-q")
            .arg("-s")
            .arg(&self.ca_key)
            .args(["-I", "alice", "-n", &PRINCIPALS.join(","), "-V", "-1m:+12h"])
            .args(["-z", &serial.to_string()])
            .args(["-O", &format!("extension:roles@keygate={ROLES_JSON}")])
            .args(["-O", &format!("extension:traits@keygate={TRAITS_JSON}")])
            .arg(&self.user_pub))
    }

    /// Signs `certs` certificates, one process each, and returns the rate.
    pub fn measure(&self, certs: usize) -> Result<Rate, BenchError> {
        let cpu = process_cpu();
        let start = self.clock.monotonic();
        for serial in 0..certs.max(1) {
            self.sign_once(u64::try_from(serial).unwrap_or(u64::MAX).saturating_add(2))?;
        }
        Ok(Rate {
            ops: u64::try_from(certs.max(1)).unwrap_or(u64::MAX),
            elapsed: self.clock.monotonic().saturating_sub(start),
            // Includes the ssh-keygen processes (waited-for children).
            cpu: process_cpu()
                .zip(cpu)
                .map(|(end, start)| end.saturating_sub(start)),
        })
    }
}

/// Runs a command to completion; a spawn failure or non-zero exit is an
/// error carrying its stderr.
fn run(cmd: &mut Command) -> Result<(), BenchError> {
    let out = cmd
        .output()
        .map_err(|e| BenchError::SshKeygen(format!("cannot run it: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(BenchError::SshKeygen(format!(
        "exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}
