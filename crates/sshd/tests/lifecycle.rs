//! Ending live sessions (locks, idle timeout, certificate expiry) and
//! staying up under floods and garbage.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::time::{Duration, Instant};

use keygate_clock::Clock;
use keygate_sshd::{EndReason, SessionGrant, SshEvent};
use keygate_testkit::OsUser;
use support::{Node, NodeOptions, full_grant, stderr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts `ssh login@node sleep 30` and waits until its session is live.
async fn live_session(node: &Node, client: &support::Client, login: &str) -> tokio::process::Child {
    let mut cmd = support::ssh_command(node.port, client, &[]);
    cmd.arg(format!("{login}@127.0.0.1"))
        .arg("sleep 30")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while node.server.registry().is_empty() {
        assert!(Instant::now() < deadline, "session never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the command start too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    child
}

/// Waits for ssh to exit; returns (elapsed, exit code, stderr).
async fn ended(child: tokio::process::Child, since: Instant) -> (Duration, Option<i32>, String) {
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("ssh was not disconnected")
        .unwrap();
    (since.elapsed(), out.status.code(), stderr(&out))
}

fn processes_of(login: &str) -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-u", login])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminate_where_ends_a_live_session_within_two_seconds() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);
    let child = live_session(&node, &client, login).await;

    let sessions = node.server.registry().list();
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(
        (s.user.as_str(), s.login.as_str(), s.serial),
        ("alice", login, 42)
    );
    assert_eq!(s.roles, vec!["dev".to_owned()]);
    assert_eq!(s.remote.ip().to_string(), "127.0.0.1");
    assert!(processes_of(login) >= 1);

    // Nobody else is touched by a non-matching predicate.
    assert_eq!(
        node.server
            .registry()
            .terminate_where(|s| s.user == "bob", "x"),
        0
    );
    let t = Instant::now();
    let n = node.server.registry().terminate_where(
        |s| s.user == "alice",
        "keygate: user alice is locked: incident 42",
    );
    assert_eq!(n, 1);
    let (elapsed, code, err) = ended(child, t).await;
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_ne!(code, Some(0));
    assert!(err.contains("user alice is locked: incident 42"), "{err}");

    let ev = node
        .events
        .wait_for("session end", |e| matches!(e, SshEvent::SessionEnd { .. }))
        .await;
    assert!(matches!(
        ev,
        SshEvent::SessionEnd { reason: EndReason::Terminated { ref message }, .. } if message.contains("incident 42")
    ));
    // The session's processes are gone too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while processes_of(login) > 0 {
        assert!(Instant::now() < deadline, "processes of {login} survived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(node.server.registry().is_empty());
    assert_eq!(node.server.stats().sessions_terminated, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_sessions_are_closed() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);
    node.authz.set(Ok(SessionGrant {
        idle_timeout: Some(Duration::from_secs(600)),
        ..full_grant()
    }));
    let child = live_session(&node, &client, login).await;
    let t = Instant::now();
    node.clock.advance(Duration::from_secs(601));
    let (elapsed, code, err) = ended(child, t).await;
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert_ne!(code, Some(0));
    assert!(err.contains("idle timeout"), "{err}");
    node.events
        .wait_for("idle end", |e| {
            matches!(
                e,
                SshEvent::SessionEnd {
                    reason: EndReason::IdleTimeout,
                    ..
                }
            )
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_end_when_the_certificate_expires() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);
    let expiry = node.clock.now() + time::Duration::hours(1);
    node.authz.set(Ok(SessionGrant {
        disconnect_at: Some(expiry),
        ..full_grant()
    }));
    let child = live_session(&node, &client, login).await;
    let t = Instant::now();
    node.clock.advance(Duration::from_secs(3601));
    let (elapsed, code, err) = ended(child, t).await;
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert_ne!(code, Some(0));
    assert!(err.contains("certificate expired"), "{err}");
    node.events
        .wait_for("expiry end", |e| {
            matches!(
                e,
                SshEvent::SessionEnd {
                    reason: EndReason::CertificateExpired,
                    ..
                }
            )
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_half_open_connections_does_not_lock_users_out() {
    let node = Node::start_with(NodeOptions {
        max_unauthenticated: 256,
        ..NodeOptions::default()
    })
    .await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);

    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(TcpStream::connect(("127.0.0.1", node.port)).await.unwrap());
    }
    // The flood is now older than a real client's handshake takes.
    node.clock.advance(Duration::from_secs(1));
    let t = Instant::now();
    loop {
        let out = node
            .ssh(&client, login, &[], "echo through-the-flood")
            .await;
        if support::stdout(&out).trim() == "through-the-flood" {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "locked out: {}",
            stderr(&out)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t.elapsed()
    );
    let stats = node.server.stats();
    assert!(stats.connections >= 301, "{stats:?}");
    assert!(
        stats.connections_refused + stats.connections_evicted >= 44,
        "{stats:?}"
    );
    node.events
        .wait_for("refusal", |e| {
            matches!(e, SshEvent::ConnectionRefused { .. })
        })
        .await;
    drop(flood);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_and_silence_end_only_their_own_connection() {
    let node = Node::start_with(NodeOptions {
        auth_timeout: Duration::from_secs(2),
        ..NodeOptions::default()
    })
    .await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);

    // Not SSH at all.
    let mut s = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    // A valid banner, then a packet with an absurd length and junk.
    let mut s = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
    s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await.unwrap();
    s.write_all(&[0xff, 0xff, 0xff, 0xf0, 0x04, 1, 2, 3, 4, 5, 6, 7])
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "server kept a garbage connection open");
    // Random bytes after the banner.
    let mut s = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
    let mut junk = vec![0u8; 4096];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut junk)
        .unwrap();
    s.write_all(b"SSH-2.0-x\r\n").await.unwrap();
    let _ = s.write_all(&junk).await;
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "server kept a junk connection open");

    node.events
        .wait_for("protocol error", |e| {
            matches!(e, SshEvent::ConnectionFailed { .. })
        })
        .await;
    assert!(
        node.server.stats().protocol_errors >= 1,
        "{:?}",
        node.server.stats()
    );

    // Silence: closed after auth_timeout, counted and audited.
    let mut silent = TcpStream::connect(("127.0.0.1", node.port)).await.unwrap();
    let mut buf = Vec::new();
    let t = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "silent connection never closed");
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    node.events
        .wait_for("auth timeout", |e| {
            matches!(e, SshEvent::AuthFailed { reason, .. } if reason.contains("did not authenticate"))
        })
        .await;
    assert!(node.server.stats().auth_timeouts >= 1);

    node.assert_still_serving(&client, login).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_number_of_sessions_is_bounded() {
    let node = Node::start_with(NodeOptions {
        max_sessions: 1,
        ..NodeOptions::default()
    })
    .await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);
    let first = live_session(&node, &client, login).await;
    let out = node.ssh(&client, login, &[], "true").await;
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("session limit"), "{}", stderr(&out));
    // Ending the first frees its slot.
    node.server
        .registry()
        .terminate_where(|_| true, "make room");
    let _ = ended(first, Instant::now()).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = node.ssh(&client, login, &[], "echo again").await;
        if support::stdout(&out).trim() == "again" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slot never freed: {}",
            stderr(&out)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_ends_live_sessions() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);
    let child = live_session(&node, &client, login).await;
    let t = Instant::now();
    node.shutdown();
    let (elapsed, code, err) = ended(child, t).await;
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert_ne!(code, Some(0));
    assert!(err.contains("shutting down"), "{err}");
    node.events
        .wait_for("shutdown end", |e| {
            matches!(
                e,
                SshEvent::SessionEnd {
                    reason: EndReason::Shutdown,
                    ..
                }
            )
        })
        .await;
    // No longer accepting.
    let refused = TcpStream::connect(("127.0.0.1", node.port)).await;
    assert!(refused.is_err());
}
