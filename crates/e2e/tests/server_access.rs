#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Server access end to end, with the real binaries: an all-in-one daemon
//! (auth + proxy + node `n1`) and a second node process `n2` reachable only
//! through its reverse tunnel, driven by the real `kg ssh` / `kg scp`
//! (OpenSSH underneath), OpenSSH `sftp`, and a real terminal in tmux.
//! Sessions run as a throw-away `kgt-*` OS user, so these tests need root.
//!
//! Each test starts its own cluster (about a second) so none depends on
//! another's changes to roles or locks. Waiting is always polling with a
//! deadline; nothing sleeps out a TTL.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use keygate_e2e::{
    Cluster, KillOnDrop, Stopwatch, Tmux, processes_of, run, shell_quote, text, wait_until,
};
use sha2::{Digest, Sha256};

/// How often polling loops look again.
const POLL: Duration = Duration::from_millis(100);
/// How long a terminal gets to show what was typed.
const SCREEN: Duration = Duration::from_secs(10);

/// The roles of the denial tests (docs/resources.md shapes).
const ROLES: &str = "
kind: role
version: v1
metadata: {name: no-root}
spec:
  deny:
    logins: [root]
---
kind: role
version: v1
metadata: {name: dev-only}
spec:
  allow:
    logins: ['{{internal.logins}}']
    node_labels: {env: dev}
    rules:
      - resources: [node]
        verbs: [list, read]
";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `login` runs a process matching `pattern`.
fn runs(login: &str, pattern: &str) -> bool {
    !processes_of(login, pattern).unwrap().is_empty()
}

/// A bash prompt (`user@host:~$`) is on screen: the remote shell is ready.
fn prompt_shown(screen: &str) -> bool {
    screen.lines().any(|l| l.trim_end().ends_with('$'))
}

/// Files removed on drop, also when the test fails half way.
struct RemoveOnDrop(
    /// Absolute paths.
    Vec<String>,
);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

#[test]
fn exec_exit_status_and_login_user() {
    let c = Cluster::start().unwrap();
    let login = c.login();
    for node in ["n1", "n2"] {
        let o = c.ssh(&[
            &format!("{login}@{node}"),
            "id -un; echo on-stderr >&2; exit 3",
        ]);
        assert_eq!(o.status.code(), Some(3), "{node}: {}", text(&o));
        assert_eq!(stdout(&o), login, "{node}: the shell runs as the login");
        assert!(stderr(&o).contains("on-stderr"), "{node}: {}", text(&o));
    }
    // And success is 0.
    let o = c.ssh(&[&format!("{login}@n2"), "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn interactive_pty_in_tmux() {
    let c = Cluster::start().unwrap();
    let login = c.login().to_owned();
    let exit_file = c.tmp.path().join("exit-status");
    let cmd = format!(
        "{}; echo EXIT=$? > {}",
        c.kg_shell(&["ssh", "-t", &format!("{login}@n1")]),
        shell_quote(&exit_file.to_string_lossy())
    );
    let t = Tmux::start(c.tmp.path(), "pty", 120, 40, &cmd).unwrap();
    t.wait_for("the remote prompt", SCREEN, prompt_shown)
        .unwrap();

    // Type, see output: the login, a real PTY, the terminal's size. One
    // command at a time: typed-ahead keys echo into the previous output.
    t.type_line("id -un").unwrap();
    t.wait_for_line(&login, SCREEN).unwrap();
    t.type_line("tty").unwrap();
    t.wait_for("a /dev/pts/N line", SCREEN, |s| {
        s.lines().any(|l| l.trim().starts_with("/dev/pts/"))
    })
    .unwrap();
    t.type_line("stty size").unwrap();
    t.wait_for_line("40 120", SCREEN).unwrap();

    // Resize: the window change reaches the remote PTY. It travels
    // asynchronously (SIGWINCH → ssh → node), so ask until it shows.
    t.resize(100, 30).unwrap();
    let resized = wait_until(SCREEN, POLL, || {
        t.type_line("stty size").ok()?;
        t.wait_for_line("30 100", Duration::from_secs(1)).ok()
    });
    assert!(resized.is_some(), "{}", t.screen().unwrap());

    // Ctrl-C interrupts the remote foreground program, not the session.
    t.type_line("sleep 100").unwrap();
    let started = wait_until(SCREEN, POLL, || runs(&login, "^sleep 100").then_some(()));
    assert!(
        started.is_some(),
        "sleep never started: {}",
        t.screen().unwrap()
    );
    t.send_keys(&["C-c"]).unwrap();
    let interrupted = wait_until(SCREEN, POLL, || (!runs(&login, "^sleep 100")).then_some(()));
    assert!(
        interrupted.is_some(),
        "Ctrl-C must end the remote sleep: {}",
        t.screen().unwrap()
    );
    t.type_line("echo alive").unwrap();
    t.wait_for_line("alive", SCREEN).unwrap();

    // The exit status of the shell is kg's.
    t.type_line("exit 7").unwrap();
    let status = wait_until(SCREEN, POLL, || {
        std::fs::read_to_string(&exit_file)
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    assert_eq!(status.as_deref().map(str::trim), Some("EXIT=7"));
    let gone = wait_until(SCREEN, POLL, || (!t.alive()).then_some(()));
    assert!(gone.is_some(), "the tmux session ends with kg");
}

#[test]
fn scp_50_mib_round_trip_and_sftp() {
    let c = Cluster::start().unwrap();
    let login = c.login().to_owned();
    let uid = {
        let o = Command::new("id").args(["-u", &login]).output().unwrap();
        stdout(&o).parse::<u32>().unwrap()
    };
    let local = c.tmp.path().join("random.bin");
    {
        use rand::RngCore;
        let mut data = vec![0u8; 50 * 1024 * 1024];
        rand::thread_rng().fill_bytes(&mut data);
        std::fs::File::create(&local)
            .unwrap()
            .write_all(&data)
            .unwrap();
    }
    let want = sha256(&local);

    // kg scp up to the tunnel-only node and back.
    let remote = format!("/tmp/{login}-scp.bin");
    let via_sftp = format!("/tmp/{login}-sftp.bin");
    // The node is this host: whatever happens, leave no 50 MiB files behind.
    let _cleanup = RemoveOnDrop(vec![remote.clone(), via_sftp.clone()]);
    let watch = Stopwatch::start();
    let o = c.run_kg(&[
        "scp",
        &local.to_string_lossy(),
        &format!("{login}@n2:{remote}"),
    ]);
    assert!(o.status.success(), "upload: {}", text(&o));
    let meta = std::fs::metadata(&remote).unwrap();
    assert_eq!(meta.uid(), uid, "the node wrote the file as the login");
    let back = c.tmp.path().join("back.bin");
    let o = c.run_kg(&[
        "scp",
        &format!("{login}@n2:{remote}"),
        &back.to_string_lossy(),
    ]);
    assert!(o.status.success(), "download: {}", text(&o));
    eprintln!("kg scp 50 MiB up and down: {:?}", watch.elapsed());
    assert_eq!(sha256(&back), want, "scp round trip is byte-exact");

    // Real OpenSSH sftp through the `kg config` block.
    let config = c.ssh_config().unwrap();
    let back2 = c.tmp.path().join("back-sftp.bin");
    let batch = c.tmp.path().join("sftp-batch");
    std::fs::write(
        &batch,
        format!(
            "put {} {via_sftp}\nls -l {via_sftp}\nget {via_sftp} {}\nrm {via_sftp}\nrm {remote}\n",
            local.display(),
            back2.display()
        ),
    )
    .unwrap();
    let o = run(
        Command::new("sftp")
            .env("KEYGATE_HOME", &c.home)
            .env_remove("SSH_AUTH_SOCK")
            .arg("-F")
            .arg(&config)
            .arg("-b")
            .arg(&batch)
            .arg(format!("{login}@n1.{}", c.name)),
        "",
    );
    assert!(o.status.success(), "sftp: {}", text(&o));
    assert!(
        stdout(&o).contains(&login),
        "ls -l shows the owner: {}",
        text(&o)
    );
    assert_eq!(sha256(&back2), want, "sftp round trip is byte-exact");
    assert!(!Path::new(&via_sftp).exists(), "sftp rm worked");
    assert!(!Path::new(&remote).exists(), "sftp rm worked");
}

#[test]
fn denials_by_deny_rule_and_node_labels() {
    let c = Cluster::start().unwrap();
    let login = c.login().to_owned();
    let config = c.ssh_config().unwrap();
    let openssh = |target: &str| {
        run(
            Command::new(keygate_testkit::SSH)
                .env("KEYGATE_HOME", &c.home)
                .env_remove("SSH_AUTH_SOCK")
                .arg("-F")
                .arg(&config)
                .args(["-o", "BatchMode=yes", target, "true"]),
            "",
        )
    };
    // Before: admin may log in as root, and n2 is reachable.
    let o = c.ssh(&["root@n1", "id -un"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "root"),
        "{}",
        text(&o)
    );
    let o = c.ssh(&[&format!("{login}@n2"), "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // A deny rule on root wins over admin's allow.
    c.apply(ROLES).unwrap();
    c.set_admin(&["admin", "no-root"], &["root", &login])
        .unwrap();
    let status = c.kg_json(&["status"]).unwrap();
    assert!(
        !status["logins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "root"),
        "{status}"
    );
    let o = c.ssh(&["root@n1", "true"]);
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    // Not just OpenSSH's bare "Permission denied (publickey)": kg says
    // which login and that roles decided it.
    assert!(
        stderr(&o).contains("\"root\" is denied") && stderr(&o).contains("role"),
        "the refusal says root is denied by roles: {}",
        text(&o)
    );
    // The node itself refuses too (plain OpenSSH, no kg pre-check).
    let o = openssh(&format!("root@n1.{}", c.name));
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", text(&o));
    let o = c.ssh(&[&format!("{login}@n1"), "id -un"]);
    assert_eq!(stdout(&o), login, "other logins still work: {}", text(&o));

    // Only env=dev nodes: n2 (env=prod) disappears and is refused by name.
    c.set_admin(&["dev-only", "no-root"], &["root", &login])
        .unwrap();
    let names = c.node_names().unwrap();
    assert!(names.iter().any(|n| n == "n1"), "{names:?}");
    assert!(!names.iter().any(|n| n == "n2"), "{names:?}");
    let o = c.ssh(&[&format!("{login}@n2"), "true"]);
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    assert!(
        stderr(&o).contains("does not exist or none of your roles allows a login there"),
        "{}",
        text(&o)
    );
    let o = openssh(&format!("{login}@n2.{}", c.name));
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    let o = c.ssh(&[&format!("{login}@n1"), "id -un"]);
    assert_eq!(stdout(&o), login, "n1 is still allowed: {}", text(&o));
}

#[test]
fn foreign_ca_certificate_refused() {
    let c = Cluster::start().unwrap();
    let login = c.login().to_owned();
    let dir = c.tmp.path().join("foreign");
    std::fs::create_dir(&dir).unwrap();
    let keygen = |args: &[&str]| {
        let o = Command::new(keygate_testkit::SSH_KEYGEN)
            .current_dir(&dir)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "ssh-keygen {args:?}: {}", text(&o));
    };
    keygen(&["-q", "-t", "ed25519", "-N", "", "-f", "ca"]);
    keygen(&["-q", "-t", "ed25519", "-N", "", "-f", "user"]);
    keygen(&[
        "-q", "-s", "ca", "-I", "admin", "-n", &login, "-V", "-5m:+1h", "user.pub",
    ]);

    // The harness works with the cluster's own certificate…
    let (key, cert) = c.profile_key();
    let o = c.openssh_with(&key, &cert, &login, "n1", "id -un");
    assert_eq!(
        (o.status.code(), stdout(&o)),
        (Some(0), login.clone()),
        "{}",
        text(&o)
    );
    // …and a same-shaped certificate from another CA is refused.
    let (key, cert) = (dir.join("user"), dir.join("user-cert.pub"));
    let o = c.openssh_with(&key, &cert, &login, "n1", "id -un");
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", text(&o));
    assert!(stdout(&o).is_empty(), "{}", text(&o));
}

#[test]
fn lock_kills_live_sessions_and_blocks_login() {
    let c = Cluster::start().unwrap();
    let login = c.login().to_owned();
    let target = format!("{login}@n1");

    // An interactive session in a terminal…
    let exit_file = c.tmp.path().join("exit-status");
    let err_file = c.tmp.path().join("tmux-stderr");
    let cmd = format!(
        "{} 2> {}; echo EXIT=$? > {}",
        c.kg_shell(&["ssh", "-t", &target]),
        shell_quote(&err_file.to_string_lossy()),
        shell_quote(&exit_file.to_string_lossy())
    );
    let t = Tmux::start(c.tmp.path(), "lock", 120, 40, &cmd).unwrap();
    t.wait_for("the remote prompt", SCREEN, prompt_shown)
        .unwrap();
    t.type_line("id -un").unwrap();
    t.wait_for_line(&login, SCREEN).unwrap();
    // …and a running command without a terminal.
    let bg_err = c.tmp.path().join("bg-stderr");
    let mut bg = KillOnDrop(
        c.kg()
            .args(["ssh", &target, "sleep 61"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&bg_err).unwrap())
            .spawn()
            .unwrap(),
    );
    let running = wait_until(SCREEN, POLL, || runs(&login, "sleep 61").then_some(()));
    assert!(running.is_some(), "the background session never started");

    let o = c
        .kgctl_ok(&[
            "lock",
            "--user",
            "admin",
            "--message",
            "offboarded",
            "--format",
            "json",
        ])
        .unwrap();
    let watch = Stopwatch::start();
    let lock: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let lock_name = lock["metadata"]["name"].as_str().unwrap().to_owned();

    // Both sessions end within 2 s of the lock, saying why.
    let mut tty_end = None;
    let mut exec_end = None;
    wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        if tty_end.is_none() && std::fs::read_to_string(&exit_file).is_ok_and(|s| s.ends_with('\n'))
        {
            tty_end = Some(watch.elapsed());
        }
        if exec_end.is_none() && bg.0.try_wait().ok().flatten().is_some() {
            exec_end = Some(watch.elapsed());
        }
        (tty_end.is_some() && exec_end.is_some()).then_some(())
    });
    eprintln!("lock → terminal session closed after {tty_end:?}, exec session after {exec_end:?}");
    let limit = Duration::from_secs(2);
    assert!(
        tty_end.is_some_and(|d| d <= limit),
        "terminal session lived {tty_end:?}"
    );
    assert!(
        exec_end.is_some_and(|d| d <= limit),
        "exec session lived {exec_end:?}"
    );
    let tty_err = std::fs::read_to_string(&err_file).unwrap();
    assert!(tty_err.contains("offboarded"), "{tty_err}");
    assert_eq!(
        std::fs::read_to_string(&exit_file).unwrap().trim(),
        "EXIT=255"
    );
    let exec_err = std::fs::read_to_string(&bg_err).unwrap();
    assert!(exec_err.contains("offboarded"), "{exec_err}");
    assert_eq!(bg.0.try_wait().unwrap().and_then(|s| s.code()), Some(255));

    // No new session, no renewal.
    let o = c.ssh(&[&target, "true"]);
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    assert!(stderr(&o).contains("offboarded"), "{}", text(&o));
    let o = c.renew();
    assert!(!o.status.success(), "renewal while locked: {}", text(&o));
    assert!(text(&o).contains("offboarded"), "{}", text(&o));

    // Removing the lock restores access.
    c.kgctl_ok(&["locks", "rm", &lock_name]).unwrap();
    let back = wait_until(SCREEN, POLL, || {
        c.ssh(&[&target, "true"]).status.success().then_some(())
    });
    assert!(
        back.is_some(),
        "kg ssh after locks rm: {}",
        text(&c.ssh(&[&target, "true"]))
    );
    let o = c.renew();
    assert!(o.status.success(), "{}", text(&o));

    // A lock with a TTL refuses at once and lets go by itself when it expires.
    c.kgctl_ok(&[
        "lock",
        "--user",
        "admin",
        "--message",
        "brief",
        "--ttl",
        "3s",
    ])
    .unwrap();
    let watch = Stopwatch::start();
    let o = c.ssh(&[&target, "true"]);
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    assert!(stderr(&o).contains("brief"), "{}", text(&o));
    let back = wait_until(Duration::from_secs(15), POLL, || {
        c.ssh(&[&target, "true"]).status.success().then_some(())
    });
    assert!(
        back.is_some(),
        "access never came back after the lock expired"
    );
    assert!(
        watch.elapsed() >= Duration::from_secs(2),
        "the lock held for {:?}, shorter than its TTL",
        watch.elapsed()
    );
}

#[test]
fn nodes_reconnect_after_proxy_restart() {
    let mut c = Cluster::start().unwrap();
    let target = format!("{}@n2", c.login());
    let login = c.login().to_owned();
    let o = c.ssh(&[&target, "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A session open through the proxy while it goes away.
    let live = KillOnDrop(
        c.kg()
            .args(["ssh", &target, "sleep 62"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let running = wait_until(SCREEN, POLL, || runs(&login, "sleep 62").then_some(()));
    assert!(running.is_some(), "the session never started");

    let down = Stopwatch::start();
    let cut = std::thread::spawn(move || {
        let mut live = live;
        let status = wait_until(Duration::from_secs(30), Duration::from_millis(20), || {
            live.0.try_wait().ok().flatten()
        });
        (status, down.elapsed())
    });
    c.stop_daemon().unwrap();
    let exited_at = down.elapsed();
    c.start_daemon().unwrap();
    let watch = Stopwatch::start();

    // The cut session ends promptly on both sides: the client does not
    // hang once the proxy is gone, the node does not keep the command.
    let (status, ended_at) = cut.join().unwrap();
    eprintln!(
        "SIGTERM → daemon exited after {exited_at:?}; the cut session's kg ssh exited after {ended_at:?}"
    );
    assert_eq!(status.and_then(|s| s.code()), Some(255));
    assert!(
        ended_at <= exited_at + Duration::from_secs(2),
        "kg ssh took {ended_at:?} to notice a proxy that was gone after {exited_at:?}"
    );
    let reaped = wait_until(Duration::from_secs(5), POLL, || {
        (!runs(&login, "sleep 62")).then_some(())
    });
    assert!(
        reaped.is_some(),
        "the node kept the cut session's command running"
    );
    // The daemon's own node is back at once.
    let o = c.ssh(&[&format!("{}@n1", c.login()), "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The separate node redials its tunnel by itself.
    let back = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        c.ssh(&[&target, "true"]).status.success().then_some(())
    });
    eprintln!("n2 reachable again {:?} after the restart", watch.elapsed());
    assert!(
        back.is_some(),
        "n2 did not reconnect within 20 s: {}\nnode log:\n{}\ndaemon log:\n{}",
        text(&c.ssh(&[&target, "true"])),
        std::fs::read_to_string(&c.remote.log).unwrap_or_default(),
        std::fs::read_to_string(&c.daemon.log).unwrap_or_default()
    );
    assert!(
        c.remote.child.try_wait().unwrap().is_none(),
        "the node process kept running (it reconnected, it was not restarted)"
    );
    assert!(c.node_names().unwrap().iter().any(|n| n == "n2"));
}
