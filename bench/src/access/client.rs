//! The one OpenSSH client every measurement uses, pointed at one of five
//! paths: the node directly, sshd directly, the node through the proxy
//! (`kg proxy ssh`, what `kg ssh` runs), sshd through an sshd jump host
//! (what `ssh -J` runs) and an agentless sshd through the proxy's SSH
//! relay (`kg proxy ssh` again).

use std::path::Path;
use std::process::{Command, Stdio};

use keygate_testkit::SSH;

use super::cluster::{LOGIN, NODE, Peers, RELAY_NODE};

/// The cipher every SSH hop is asked for (the agentless sshd is pinned to
/// it too, see `cluster`). AES-GCM uses the CPU's AES instructions on
/// both sides; russh and OpenSSH both offer it.
pub const CIPHER: &str = "aes256-gcm@openssh.com";

/// The key exchange every SSH hop is asked for. OpenSSH 9.2 would pick
/// `sntrup761x25519-sha512@openssh.com` with sshd, which russh does not
/// offer, so the agent would get plain curve25519: pinning it keeps the
/// handshake the same work on both sides.
pub const KEX_ALGORITHM: &str = "curve25519-sha256";

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
    /// The agentless node's sshd through the proxy's SSH relay: the proxy
    /// terminates the client's SSH connection and opens its own to sshd.
    RelayProxy,
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
        .args(["-c", CIPHER, "-o"])
        .arg(format!("KexAlgorithms={KEX_ALGORITHM}"))
        .args(["-l", LOGIN]);
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

/// Host-key options for a Keygate-certified host (the agent, or the
/// relay speaking for an agentless node): the profile's `known_hosts`,
/// which trusts Keygate's host CA, checked for the node's name.
fn agent_host_opts(ssh: &mut Command, peers: &Peers, node: &str) {
    ssh.arg("-o")
        .arg(opt("UserKnownHostsFile", &peers.known_hosts))
        .args(["-o", "StrictHostKeyChecking=yes", "-o"])
        .arg(format!("HostKeyAlias={node}"));
}

/// `ProxyCommand` running `kg proxy ssh`, what `kg ssh` and `kg config`'s
/// ssh_config use.
fn kg_proxy_command(peers: &Peers) -> String {
    format!(
        "ProxyCommand={} proxy ssh --proxy {} %r@%h:%p",
        peers.kg.display(),
        peers.proxy
    )
}

/// `ssh … <target> <remote>` for `path`, stdout and stderr not yet set.
pub fn command(peers: &Peers, path: Route, remote: &str) -> Command {
    let mut ssh = base(peers);
    let sshd_port = peers.sshd.port().to_string();
    match path {
        Route::AgentDirect => {
            agent_host_opts(&mut ssh, peers, NODE);
            ssh.args(["-p", &peers.node_port.to_string(), "127.0.0.1"]);
        }
        Route::SshdDirect => {
            sshd_host_opts(&mut ssh);
            ssh.args(["-p", &sshd_port, "127.0.0.1"]);
        }
        Route::AgentProxy => {
            agent_host_opts(&mut ssh, peers, NODE);
            ssh.arg("-o").arg(kg_proxy_command(peers));
            ssh.arg(NODE);
        }
        Route::RelayProxy => {
            // The relay presents a host certificate from the host CA
            // naming the node, so the same check applies.
            agent_host_opts(&mut ssh, peers, RELAY_NODE);
            ssh.arg("-o").arg(kg_proxy_command(peers));
            ssh.arg(RELAY_NODE);
        }
        Route::SshdJump => {
            sshd_host_opts(&mut ssh);
            // Exactly what `-J` runs, spelled out so the jump hop gets the
            // same cipher and an equivalent certificate (`-J` does not
            // pass `-o` options on).
            let jump = format!(
                "ProxyCommand={SSH} -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes \
                 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
                 -c {CIPHER} -o KexAlgorithms={KEX_ALGORITHM} -i {} -o CertificateFile={} -l {LOGIN} -p {sshd_port} -W %h:%p 127.0.0.1",
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
