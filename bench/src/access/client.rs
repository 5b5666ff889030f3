//! The one OpenSSH client every measurement uses, pointed at one of four
//! paths: the node directly, sshd directly, the node through the proxy
//! (`kg proxy ssh`, what `kg ssh` runs) and sshd through an sshd jump host
//! (what `ssh -J` runs).

use std::path::Path;
use std::process::{Command, Stdio};

use keygate_testkit::SSH;

use super::cluster::{LOGIN, NODE, Peers};

/// The cipher both servers are asked for. AES-GCM uses the CPU's AES
/// instructions on both sides; russh and OpenSSH both offer it.
pub const CIPHER: &str = "aes256-gcm@openssh.com";

/// The key exchange both servers are asked for. OpenSSH 9.2 would pick
/// `sntrup761x25519-sha512@openssh.com` with sshd, which russh does not
/// offer, so the agent would get plain curve25519: pinning it keeps the
/// handshake the same work on both sides.
const KEX: &str = "KexAlgorithms=curve25519-sha256";

/// Where a session goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The standalone node's own listener.
    AgentDirect,
    /// OpenSSH's sshd.
    SshdDirect,
    /// The standalone node through the proxy and its reverse tunnel.
    AgentProxy,
    /// sshd through sshd as a jump host (`ssh -J`).
    SshdJump,
}

/// Options shared by every path: the admin's key and certificate only, no
/// config file, no agent, no prompts, one cipher.
fn base(peers: &Peers) -> Command {
    let mut ssh = Command::new(SSH);
    ssh.env_remove("SSH_AUTH_SOCK")
        .env("KEYGATE_HOME", &peers.home)
        .stdin(Stdio::null())
        .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
        ])
        .args(["-c", CIPHER, "-o", KEX, "-l", LOGIN]);
    ssh.arg("-o").arg(opt("IdentityFile", &peers.key));
    ssh.arg("-o").arg(opt("CertificateFile", &peers.cert));
    ssh
}

fn opt(name: &str, path: &Path) -> String {
    format!("{name}={}", path.display())
}

/// Host-key options for sshd: its key is made fresh for the run, so it is
/// not checked (the agent side checks its host certificate; that costs
/// one signature verification, well below the noise).
fn sshd_host_opts(ssh: &mut Command) {
    ssh.args([
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
    ])
    .args(["-o", "LogLevel=ERROR"]);
}

/// Host-key options for the agent: the profile's `known_hosts`, which
/// trusts Keygate's host CA for the node's name.
fn agent_host_opts(ssh: &mut Command, peers: &Peers) {
    ssh.arg("-o")
        .arg(opt("UserKnownHostsFile", &peers.known_hosts))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlias=n2"]);
}

/// `ssh … <target> <remote>` for `path`, stdout and stderr not yet set.
pub fn command(peers: &Peers, path: Route, remote: &str) -> Command {
    let mut ssh = base(peers);
    let sshd_port = peers.sshd.port().to_string();
    match path {
        Route::AgentDirect => {
            agent_host_opts(&mut ssh, peers);
            ssh.args(["-p", &peers.node_port.to_string(), "127.0.0.1"]);
        }
        Route::SshdDirect => {
            sshd_host_opts(&mut ssh);
            ssh.args(["-p", &sshd_port, "127.0.0.1"]);
        }
        Route::AgentProxy => {
            agent_host_opts(&mut ssh, peers);
            ssh.arg("-o").arg(format!(
                "ProxyCommand={} proxy ssh --proxy {} %r@%h:%p",
                peers.kg.display(),
                peers.proxy
            ));
            ssh.arg(NODE);
        }
        Route::SshdJump => {
            sshd_host_opts(&mut ssh);
            // Exactly what `-J` runs, spelled out so the jump hop gets the
            // same cipher and an equivalent certificate (`-J` does not
            // pass `-o` options on).
            let jump = format!(
                "ProxyCommand={SSH} -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes \
                 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
                 -c {CIPHER} -o {KEX} -i {} -o CertificateFile={} -l {LOGIN} -p {sshd_port} -W %h:%p 127.0.0.1",
                peers.jump_key.display(),
                peers.jump_cert.display()
            );
            ssh.arg("-o").arg(jump);
            ssh.args(["-p", &sshd_port, "127.0.0.1"]);
        }
    }
    ssh.arg(remote);
    ssh
}
