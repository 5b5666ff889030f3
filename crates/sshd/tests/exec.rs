//! Commands and shells as the real login user, through the real `ssh`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use keygate_sshd::SshEvent;
use keygate_testkit::OsUser;
use support::{Node, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_runs_as_login_user() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);

    let out = node.ssh(&client, login, &[], "id -un").await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), login);

    // Supplementary groups, home, environment.
    let out = node
        .ssh(
            &client,
            login,
            &[],
            "id -u; pwd; echo \"$HOME $USER $LOGNAME $SHELL\"; echo \"sid=$KEYGATE_SESSION_ID\"; echo \"conn=$SSH_CONNECTION\"; env | grep -c '^LD_' || true",
        )
        .await;
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let uid = nix::unistd::User::from_name(login).unwrap().unwrap().uid;
    assert_eq!(lines[0], uid.to_string());
    assert_eq!(lines[1], format!("/home/{login}"));
    assert_eq!(lines[2], format!("/home/{login} {login} {login} /bin/bash"));
    assert!(
        lines[3].starts_with("sid=") && lines[3].len() > 20,
        "{text}"
    );
    assert!(lines[4].starts_with("conn=127.0.0.1 "), "{text}");
    assert!(
        lines[4].ends_with(&format!(" 127.0.0.1 {}", node.port)),
        "{text}"
    );
    assert_eq!(lines[5], "0", "the daemon's environment leaked: {text}");

    // Exit status and stderr are carried.
    let out = node
        .ssh(&client, login, &[], "echo to-stderr >&2; exit 3")
        .await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("to-stderr"), "{}", stderr(&out));

    // A command killed by a signal is reported as such (ssh exits 255).
    let out = node.ssh(&client, login, &[], "kill -TERM $$").await;
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));

    // stdin reaches the command and EOF ends it.
    let mut cmd = support::ssh_command(node.port, &client, &[]);
    cmd.arg(format!("{login}@127.0.0.1"))
        .arg("wc -c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &[b'x'; 100_000])
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(stdout(&out).trim(), "100000");

    let ev = node
        .events
        .wait_for("exec exit 3", |e| {
            matches!(e, SshEvent::Exec { command, exit_code: Some(3), .. } if command.contains("exit 3"))
        })
        .await;
    let SshEvent::Exec { identity, .. } = ev else {
        unreachable!()
    };
    assert_eq!(identity.user, "alice");
    assert_eq!(identity.login, login);
    assert_eq!(identity.node, support::NODE_NAME);
    node.events
        .wait_for("exec id -un", |e| {
            matches!(e, SshEvent::Exec { command, exit_code: Some(0), .. } if command == "id -un")
        })
        .await;
    node.events
        .wait_for(
            "exec killed",
            |e| matches!(e, SshEvent::Exec { signal: Some(s), exit_code: None, .. } if s == "TERM"),
        )
        .await;
    let start = node
        .events
        .wait_for("session start", |e| {
            matches!(e, SshEvent::SessionStart { .. })
        })
        .await;
    let SshEvent::SessionStart { serial, roles, .. } = start else {
        unreachable!()
    };
    assert_eq!((serial, roles), (42, vec!["dev".to_owned()]));
    let end = node
        .events
        .wait_for("session end", |e| matches!(e, SshEvent::SessionEnd { .. }))
        .await;
    let SshEvent::SessionEnd {
        bytes_in,
        bytes_out,
        ..
    } = end
    else {
        unreachable!()
    };
    assert!(bytes_in > 0 && bytes_out > 0);
    // Command output went through the recording tap.
    let tapped = node.events.output.lock().unwrap().clone();
    assert!(String::from_utf8_lossy(&tapped).contains(login));
    // Only the requested exec left no session behind.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node.server.registry().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(node.server.registry().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pty_exec_gets_a_terminal() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);

    let mut cmd = support::ssh_command(node.port, &client, &[]);
    cmd.arg("-tt")
        .arg(format!("{login}@127.0.0.1"))
        .arg("tty; echo term=$TERM; stty size; echo tty=$SSH_TTY")
        .env("TERM", "xterm-256color");
    let out = cmd.output().await.unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text} / {}", stderr(&out));
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("term=xterm-256color"), "{text}");
    // ssh without a local terminal sends 0x0, which means 80x24.
    assert!(text.contains("24 80"), "{text}");
    assert!(text.contains("tty=/dev/pts/"), "{text}");
    // The PTY converts \n to \r\n: real terminal output.
    assert!(text.contains("\r\n"));
    // The terminal belongs to the login user.
    let out = node
        .ssh(&client, login, &["RequestTTY=force"], "stat -c %U $(tty)")
        .await;
    assert_eq!(stdout(&out).trim(), login);
}

/// Drives `ssh -tt` from a real terminal (a PTY the test owns), resizes
/// that terminal and checks the remote side sees the new size.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pty_resize_reaches_the_remote_terminal() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name().to_owned();
    let client = node.client("alice", &[&login]);

    let pty = nix::pty::openpty(None, None).unwrap();
    let slave_path = nix::unistd::ttyname(&pty.slave).unwrap();
    let stty = |size: &str| {
        let status = std::process::Command::new("stty")
            .arg("-F")
            .arg(&slave_path)
            .args(size.split(' '))
            .status()
            .unwrap();
        assert!(status.success());
    };
    stty("rows 24 cols 80");
    let mut cmd = support::ssh_command(node.port, &client, &[]).into_std();
    cmd.arg("-tt")
        .arg(format!("{login}@127.0.0.1"))
        .arg("stty size; read line; stty size; exit 0")
        .env("TERM", "xterm")
        .stdin(std::fs::File::from(pty.slave.try_clone().unwrap()))
        .stdout(std::fs::File::from(pty.slave.try_clone().unwrap()))
        .stderr(std::fs::File::from(pty.slave.try_clone().unwrap()))
        .process_group(0);
    let mut child = cmd.spawn().unwrap();
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut reader = master.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!("never saw {needle:?}; terminal showed: {seen:?}"),
            }
        }
    };
    wait_for("24 80");
    stty("rows 40 cols 120");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGWINCH,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    master.write_all(b"\r").unwrap();
    wait_for("40 120");
    assert!(child.wait().unwrap().success());
    let resizes = node.events.resizes.lock().unwrap().clone();
    assert!(resizes.contains(&(120, 40)), "{resizes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interactive_shell_runs_the_login_shell() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);
    let mut cmd = support::ssh_command(node.port, &client, &[]);
    cmd.arg("-tt")
        .arg(format!("{login}@127.0.0.1"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .env("TERM", "xterm");
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"echo shell-$((6*7)) $0; exit 5\n")
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(stdout(&out).contains("shell-42 -bash"), "{}", stdout(&out));
    node.events
        .wait_for("shell", |e| matches!(e, SshEvent::Shell { tty: true, .. }))
        .await;
}

/// A client (russh's, since OpenSSH never sends such values) asking for an
/// absurd terminal size gets a clamped one, and the server keeps going.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn absurd_terminal_sizes_are_clamped() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);
    let (ok, handle) = node.russh_client(&client, login).await;
    assert!(ok);
    let mut channel = handle.channel_open_session().await.unwrap();
    channel
        .request_pty(true, "xterm", u32::MAX, u32::MAX, u32::MAX, u32::MAX, &[])
        .await
        .unwrap();
    channel
        .exec(true, "stty size; read x; stty size")
        .await
        .unwrap();
    let mut seen = String::new();
    let mut resized = false;
    let mut status = None;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(10), channel.wait())
        .await
        .unwrap()
    {
        match msg {
            russh::ChannelMsg::Data { data } => {
                seen.push_str(&String::from_utf8_lossy(&data));
                if !resized && seen.contains("4096 4096") {
                    resized = true;
                    channel.window_change(0, u32::MAX, 0, 0).await.unwrap();
                    channel.data(&b"\n"[..]).await.unwrap();
                }
            }
            russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            _ => {}
        }
    }
    assert_eq!(status, Some(0), "{seen}");
    assert!(seen.contains("4096 80"), "{seen}");
    node.assert_still_serving(&client, login).await;
}
