//! Agentless OpenSSH hosts for end-to-end tests: a real `sshd` set up the
//! way docs/agentless.md says (openssh CA from `keygate krl-sync`, a host
//! certificate from `kgctl auth sign --host`, `RevokedKeys`), and the
//! plain-OpenSSH and `krl-sync` invocations the tests share.

use std::path::Path;
use std::process::{Command, Output};

use keygate_testkit::{SSH, SSH_KEYGEN, Sshd, SshdConfig, free_port};

use crate::{Cluster, bin, run, text};

/// An agentless host: its sshd and the files behind it.
pub struct AgentlessHost {
    /// The running sshd.
    pub sshd: Sshd,
    /// Node name.
    pub name: String,
    /// Host key, certificate, KRL and openssh CA file.
    pub dir: tempfile::TempDir,
}

/// `ssh-keygen -t ed25519` into `path`.
pub fn keygen(path: &Path) -> Result<(), String> {
    let o = run(
        Command::new(SSH_KEYGEN)
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path),
        "",
    );
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("ssh-keygen: {}", text(&o)))
    }
}

/// `keygate krl-sync ARGS` keeping its files (`keygate.krl`,
/// `openssh_ca.pub`) in `dir`.
pub fn krl_sync(dir: &Path, args: &[&str]) -> Output {
    run(
        Command::new(bin("keygate"))
            .arg("krl-sync")
            .arg("--out")
            .arg(dir.join("keygate.krl"))
            .arg("--ca-file")
            .arg(dir.join("openssh_ca.pub"))
            .args(args),
        "",
    )
}

/// Plain `ssh -F <kg config>` to `login@node.cluster`.
pub fn plain_ssh(c: &Cluster, config: &Path, node: &str, cmd: &str) -> Output {
    run(
        Command::new(SSH)
            .env("KEYGATE_HOME", &c.home)
            .env_remove("SSH_AUTH_SOCK")
            .arg("-F")
            .arg(config)
            .args(["-o", "BatchMode=yes", "-l", c.login()])
            .arg(format!("{node}.{}", c.name))
            .arg(cmd),
        "",
    )
}

/// Registers `name` (`kgctl nodes add --openssh`) and starts its sshd.
/// `cert_for` signs the host key as another node (to test refusals).
pub fn add_agentless_host(
    c: &Cluster,
    name: &str,
    labels: &str,
    cert_for: Option<&str>,
) -> Result<AgentlessHost, String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let address = format!("127.0.0.1:{port}");
    c.kgctl_ok(&[
        "nodes",
        "add",
        "--openssh",
        "--name",
        name,
        "--address",
        &address,
        "--labels",
        labels,
    ])?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let key = dir.path().join("ssh_host_ed25519_key");
    keygen(&key)?;
    let cert = dir.path().join("ssh_host_ed25519_key-cert.pub");
    let pub_key = format!("{}.pub", key.display());
    let cert_path = cert.to_string_lossy().into_owned();
    let signed_as = cert_for.unwrap_or(name);
    c.kgctl_ok(&[
        "auth", "sign", "--host", signed_as, "--key", &pub_key, "--out", &cert_path,
    ])?;
    let ca = c.kgctl_ok(&["auth", "export", "--type", "openssh"])?;
    let exported = String::from_utf8_lossy(&ca.stdout).trim().to_owned();
    if exported.is_empty() {
        return Err("no openssh CA keys exported".into());
    }
    // The KRL as docs/agentless.md sets it up: fetched by krl-sync before
    // sshd starts (sshd refuses every login if RevokedKeys is missing).
    let b = &c.daemon.banner;
    let o = krl_sync(
        dir.path(),
        &["--proxy", &b.proxy, "--ca-pin", &b.ca_pin, "--once"],
    );
    if !o.status.success() {
        return Err(format!("krl-sync: {}", text(&o)));
    }
    // krl-sync wrote the openssh CA keys it verified the KRL with: the
    // same keys kgctl exports, in the file sshd reads at every login.
    let ca_file = dir.path().join("openssh_ca.pub");
    let synced = std::fs::read_to_string(&ca_file).map_err(|e| e.to_string())?;
    if synced.trim() != exported {
        return Err(format!(
            "krl-sync wrote {synced:?}, kgctl exports {exported:?}"
        ));
    }
    let sshd = Sshd::start(SshdConfig {
        trusted_user_ca_file: Some(ca_file),
        extra: vec![
            format!("HostCertificate {}", cert.display()),
            format!("RevokedKeys {}", dir.path().join("keygate.krl").display()),
            "Subsystem sftp internal-sftp".to_owned(),
        ],
        host_key: Some(key),
        port: Some(port),
        ..SshdConfig::default()
    })
    .map_err(|e| e.to_string())?;
    Ok(AgentlessHost {
        sshd,
        name: name.to_owned(),
        dir,
    })
}
