//! Local port forwarding and agent forwarding, only when granted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::time::{Duration, Instant};

use keygate_sshd::{SessionGrant, SshEvent};
use keygate_testkit::{ClientKey, OsUser};
use support::{Node, full_grant, stderr, stdout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP echo server on a loopback port.
async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// Starts `ssh -N -L local:127.0.0.1:target` and returns the child.
fn forward(
    node: &Node,
    client: &support::Client,
    login: &str,
    local: u16,
    target: u16,
) -> tokio::process::Child {
    let mut cmd = support::ssh_command(node.port, client, &["ExitOnForwardFailure=yes"]);
    cmd.arg("-N")
        .arg("-L")
        .arg(format!("127.0.0.1:{local}:127.0.0.1:{target}"))
        .arg(format!("{login}@127.0.0.1"))
        .stderr(std::process::Stdio::piped());
    cmd.spawn().unwrap()
}

/// Connects to the forwarded port (retrying until ssh listens) and sends
/// `msg`; returns what came back (empty if the tunnel was refused).
async fn through(local: u16, msg: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", local)).await {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("ssh never listened on {local}: {e}"),
        }
    };
    s.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    match tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut back)).await {
        Ok(Ok(_)) => back,
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_port_forwarding_only_when_granted() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);
    let target = echo_server().await;

    let local = keygate_testkit::free_port().unwrap();
    let mut ssh = forward(&node, &client, login, local, target);
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(through(local, &payload).await, payload);
    ssh.kill().await.unwrap();
    let ev = node
        .events
        .wait_for("allowed forward", |e| {
            matches!(e, SshEvent::PortForward { allowed: true, .. })
        })
        .await;
    let SshEvent::PortForward { host, port, .. } = ev else {
        unreachable!()
    };
    assert_eq!((host.as_str(), port), ("127.0.0.1", u32::from(target)));

    // Roles say no.
    node.authz.set(Ok(SessionGrant {
        port_forwarding: false,
        ..full_grant()
    }));
    let local = keygate_testkit::free_port().unwrap();
    let mut ssh = forward(&node, &client, login, local, target);
    assert!(through(local, b"hello").await.is_empty());
    ssh.kill().await.unwrap();
    let ev = node
        .events
        .wait_for("refused forward", |e| {
            matches!(e, SshEvent::PortForward { allowed: false, .. })
        })
        .await;
    assert!(matches!(ev, SshEvent::PortForward { reason: Some(r), .. } if r.contains("roles")));

    // Roles say yes but the certificate lacks permit-port-forwarding.
    node.authz.set(Ok(full_grant()));
    let no_ext = node.client_with("noext", |r| {
        r.principals = vec![login.to_owned()];
        r.extensions.remove("permit-port-forwarding");
    });
    let local = keygate_testkit::free_port().unwrap();
    let mut ssh = forward(&node, &no_ext, login, local, target);
    assert!(through(local, b"hello").await.is_empty());
    ssh.kill().await.unwrap();
    node.events
        .wait_for("refused by cert", |e| {
            matches!(e, SshEvent::PortForward { reason: Some(r), .. } if r.contains("permit-port-forwarding"))
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_forwarding_only_when_granted() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);

    // A real ssh-agent holding one key.
    let sock = node.dir.path().join("agent.sock");
    let agent = std::process::Command::new("/usr/bin/ssh-agent")
        .arg("-a")
        .arg(&sock)
        .output()
        .unwrap();
    assert!(agent.status.success());
    let agent_pid = String::from_utf8_lossy(&agent.stdout)
        .split("SSH_AGENT_PID=")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap()
        .parse::<i32>()
        .unwrap();
    struct KillAgent(i32);
    impl Drop for KillAgent {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    let _agent = KillAgent(agent_pid);
    let held = ClientKey::generate_named(node.dir.path(), "held").unwrap();
    let added = std::process::Command::new("/usr/bin/ssh-add")
        .arg(&held.private_key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let fingerprint = keygate_ca::ssh_fingerprint(&held.public_line).unwrap();

    // ssh forwards only the agent it would use itself (IdentityAgent); with
    // IdentitiesOnly it still authenticates only with the certificate.
    let identity_agent = format!("IdentityAgent={}", sock.display());
    let with_agent = |command: &str| {
        let mut cmd =
            support::ssh_command(node.port, &client, &["ForwardAgent=yes", &identity_agent]);
        cmd.arg(format!("{login}@127.0.0.1")).arg(command);
        cmd
    };
    let out = with_agent("ssh-add -l; stat -c %U \"$SSH_AUTH_SOCK\"")
        .output()
        .await
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains(&fingerprint),
        "{text} / {} / {:#?}",
        stderr(&out),
        node.events.events()
    );
    assert!(text.contains(login), "socket not owned by the user: {text}");
    node.events
        .wait_for("agent allowed", |e| {
            matches!(e, SshEvent::AgentForward { allowed: true, .. })
        })
        .await;

    node.authz.set(Ok(SessionGrant {
        agent_forwarding: false,
        ..full_grant()
    }));
    let out = with_agent("echo \"sock=$SSH_AUTH_SOCK\"")
        .output()
        .await
        .unwrap();
    assert_eq!(stdout(&out).trim(), "sock=");
    node.events
        .wait_for("agent refused", |e| {
            matches!(e, SshEvent::AgentForward { allowed: false, .. })
        })
        .await;
}
