//! The sftp subsystem with the real `sftp` and (sftp-based) `scp` clients.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use keygate_sshd::SshEvent;
use keygate_testkit::OsUser;
use support::{Node, random_file, stderr, transfer_options};

const FIVE_MIB: usize = 5 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sftp_and_scp_round_trip_five_mib_byte_exact() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);
    let work = tempfile::tempdir().unwrap();
    let original = random_file(&work.path().join("up.bin"), FIVE_MIB);

    // sftp: put, then get back under another name.
    let batch = work.path().join("batch");
    std::fs::write(
        &batch,
        format!(
            "put {up} remote.bin\nget remote.bin {down}\n",
            up = work.path().join("up.bin").display(),
            down = work.path().join("down.bin").display()
        ),
    )
    .unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("/usr/bin/sftp")
            .args(transfer_options(&client))
            .args(["-P", &node.port.to_string(), "-b"])
            .arg(&batch)
            .arg(format!("{login}@127.0.0.1"))
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(out.status.success(), "sftp failed: {}", stderr(&out));
    let remote = user.home().join("remote.bin");
    assert_eq!(
        std::fs::read(&remote).unwrap(),
        original,
        "upload corrupted"
    );
    assert_eq!(
        std::fs::read(work.path().join("down.bin")).unwrap(),
        original
    );
    // Written by the login user, not by root.
    let uid = nix::unistd::User::from_name(login).unwrap().unwrap().uid;
    assert_eq!(std::fs::metadata(&remote).unwrap().uid(), uid.as_raw());

    // scp (sftp protocol since OpenSSH 9): up and back.
    let scp = |from: String, to: String| {
        let mut cmd = tokio::process::Command::new("/usr/bin/scp");
        cmd.args(transfer_options(&client))
            .args(["-P", &node.port.to_string()])
            .arg(from)
            .arg(to);
        cmd
    };
    let out = scp(
        work.path().join("up.bin").display().to_string(),
        format!("{login}@127.0.0.1:scp.bin"),
    )
    .output()
    .await
    .unwrap();
    assert!(out.status.success(), "scp up failed: {}", stderr(&out));
    let back = work.path().join("scp-back.bin");
    let out = scp(
        format!("{login}@127.0.0.1:scp.bin"),
        back.display().to_string(),
    )
    .output()
    .await
    .unwrap();
    assert!(out.status.success(), "scp down failed: {}", stderr(&out));
    assert_eq!(std::fs::read(&back).unwrap(), original);
    assert_eq!(
        std::fs::read(user.home().join("scp.bin")).unwrap(),
        original
    );

    // Audited with volumes; file data is not fed to the recording tap.
    let ev = node
        .events
        .wait_for("sftp", |e| {
            matches!(e, SshEvent::Sftp { bytes_in, exit_code: Some(0), .. } if *bytes_in > FIVE_MIB as u64)
        })
        .await;
    let SshEvent::Sftp { identity, .. } = ev else {
        unreachable!()
    };
    assert_eq!(identity.login, login);
    assert!(node.events.output.lock().unwrap().len() < 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_subsystems_are_refused() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);
    let mut cmd = support::ssh_command(node.port, &client, &[]);
    cmd.arg("-s")
        .arg(format!("{login}@127.0.0.1"))
        .arg("nosuch");
    let out = cmd.output().await.unwrap();
    assert!(!out.status.success());
    node.events
        .wait_for("denied subsystem", |e| {
            matches!(e, SshEvent::RequestDenied { request, .. } if request == "subsystem nosuch")
        })
        .await;
}
