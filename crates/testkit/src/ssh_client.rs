//! Client-side OpenSSH: key pairs, `ssh` and `ssh-keygen -L`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::process::{output, require_tool, run_ok};
use crate::{Result, TestkitError};

/// The OpenSSH client.
pub const SSH: &str = "/usr/bin/ssh";
/// OpenSSH's key tool.
pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";

/// An Ed25519 key pair on disk, made by `ssh-keygen`, for a test client.
#[derive(Debug, Clone)]
pub struct ClientKey {
    /// Private key file (mode 0600, no passphrase).
    pub private_key: PathBuf,
    /// Public key file (`<private_key>.pub`).
    pub public_key: PathBuf,
    /// The public key as one OpenSSH line (`ssh-ed25519 AAAA… comment`),
    /// what certificate issuance takes.
    pub public_line: String,
}

impl ClientKey {
    /// Generates `dir/id_ed25519` and `dir/id_ed25519.pub`.
    pub fn generate(dir: &Path) -> Result<Self> {
        Self::generate_named(dir, "id_ed25519")
    }

    /// Generates `dir/<name>` and `dir/<name>.pub`, for tests needing
    /// several keys in one directory.
    pub fn generate_named(dir: &Path, name: &str) -> Result<Self> {
        require_tool(SSH_KEYGEN, "openssh-client")?;
        let private_key = dir.join(name);
        let public_key = dir.join(format!("{name}.pub"));
        run_ok(
            Command::new(SSH_KEYGEN)
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "keygate-test", "-f"])
                .arg(&private_key),
        )?;
        // ssh refuses keys others can read; ssh-keygen already writes 0600,
        // but make the contract explicit rather than inherited.
        std::fs::set_permissions(&private_key, std::fs::Permissions::from_mode(0o600)).map_err(
            TestkitError::io(format!("chmod 600 {}", private_key.display())),
        )?;
        let public_line = std::fs::read_to_string(&public_key)
            .map_err(TestkitError::io(format!("read {}", public_key.display())))?
            .trim()
            .to_owned();
        Ok(Self {
            private_key,
            public_key,
            public_line,
        })
    }

    /// Where OpenSSH looks for this key's certificate (`<key>-cert.pub`).
    pub fn cert_path(&self) -> PathBuf {
        let mut name = self.private_key.clone().into_os_string();
        name.push("-cert.pub");
        PathBuf::from(name)
    }

    /// Writes an OpenSSH certificate line to [`Self::cert_path`] and
    /// returns that path.
    pub fn write_cert(&self, cert_line: &str) -> Result<PathBuf> {
        let path = self.cert_path();
        std::fs::write(&path, format!("{}\n", cert_line.trim()))
            .map_err(TestkitError::io(format!("write {}", path.display())))?;
        Ok(path)
    }
}

/// Runs the real `ssh` client: `login@127.0.0.1 -p port command`,
/// authenticating only with `key` + `cert` (no agent, no other keys, no
/// config files, no prompts, host key not checked). Returns the output
/// whatever the exit status: a refused login is exit 255.
pub fn ssh_exec(port: u16, login: &str, key: &Path, cert: &Path, command: &str) -> Result<Output> {
    require_tool(SSH, "openssh-client")?;
    let mut cmd = Command::new(SSH);
    cmd.args(["-F", "/dev/null"])
        .args(["-o", "BatchMode=yes"])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "IdentitiesOnly=yes"])
        .args(["-o", "IdentityAgent=none"])
        .args(["-o", "PreferredAuthentications=publickey"])
        .args(["-o", "ConnectTimeout=10"])
        .arg("-i")
        .arg(key)
        .arg("-o")
        .arg(format!("CertificateFile={}", cert.display()))
        .args(["-p", &port.to_string()])
        .arg(format!("{login}@127.0.0.1"))
        .arg(command);
    output(&mut cmd)
}

/// `ssh-keygen -L -f cert`: OpenSSH's own reading of a certificate, with
/// times printed in UTC (`TZ=UTC`). Parse it with [`crate::CertListing`].
pub fn ssh_keygen_l(cert: &Path) -> Result<String> {
    require_tool(SSH_KEYGEN, "openssh-client")?;
    let out = run_ok(
        Command::new(SSH_KEYGEN)
            .env("TZ", "UTC")
            .arg("-L")
            .arg("-f")
            .arg(cert),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;

    #[test]
    fn generates_a_private_ed25519_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = ClientKey::generate(dir.path()).unwrap();
        assert!(
            key.public_line.starts_with("ssh-ed25519 AAAA"),
            "{}",
            key.public_line
        );
        let mode = std::fs::metadata(&key.private_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(key.cert_path(), dir.path().join("id_ed25519-cert.pub"));
    }

    #[test]
    fn ssh_keygen_l_rejects_a_non_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let key = ClientKey::generate(dir.path()).unwrap();
        let path = key.write_cert("not a certificate").unwrap();
        let err = ssh_keygen_l(&path).unwrap_err();
        assert!(matches!(err, TestkitError::CommandFailed { .. }), "{err}");
    }

    #[test]
    fn ssh_exec_reports_an_unreachable_port_as_a_failed_login() {
        let dir = tempfile::tempdir().unwrap();
        let key = ClientKey::generate(dir.path()).unwrap();
        let port = crate::free_port().unwrap();
        let out = ssh_exec(port, "nobody", &key.private_key, &key.cert_path(), "true").unwrap();
        assert_eq!(out.status.code(), Some(255));
    }
}
