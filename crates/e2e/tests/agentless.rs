#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Agentless OpenSSH hosts end to end: a real `sshd` that trusts only the
//! cluster's openssh CA and presents a host certificate from
//! `kgctl auth sign --host`, reached with plain `ssh`, `scp`, `rsync` and
//! `kg ssh` through the proxy's relay. A user's own certificate is useless
//! against that sshd directly; a lock ends a relayed session; a host with a
//! certificate for another name or from another CA is refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use keygate_e2e::{
    AgentlessHost, Cluster, KillOnDrop, Stopwatch, add_agentless_host, keygen, krl_sync, plain_ssh,
    run, text, wait_until,
};
use keygate_testkit::{SSH, SSH_KEYGEN, Sshd, SshdConfig, free_port};

/// Registers and starts an agentless host (see `keygate_e2e::agentless`).
fn add_host(c: &Cluster, name: &str, labels: &str, cert_for: Option<&str>) -> AgentlessHost {
    add_agentless_host(c, name, labels, cert_for).unwrap()
}
use sha2::{Digest, Sha256};

/// How often polling loops look again.
const POLL: Duration = Duration::from_millis(100);

fn sha256(p: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(p).unwrap()).to_vec()
}

fn random_file(path: &Path, len: usize) {
    use rand::RngCore;
    let mut data = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut data);
    std::fs::write(path, data).unwrap();
}

/// Removes the listed files when dropped (the host is this machine).
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[test]
fn plain_openssh_tools_reach_an_agentless_host_through_the_relay() {
    let c = Cluster::start().unwrap();
    let host = add_host(&c, "ag1", "env=dev", None);
    let config = c.ssh_config().unwrap();
    let login = c.login().to_owned();

    // kg ls shows it; plain ssh runs a command as the login.
    assert!(c.node_names().unwrap().contains(&host.name));
    let o = plain_ssh(&c, &config, "ag1", "id -un");
    assert!(
        o.status.success(),
        "ssh via relay: {}\nsshd: {}",
        text(&o),
        host.sshd.log()
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), login);
    // The host saw the openssh-CA certificate, not the user's.
    let log = host.sshd.log();
    assert!(
        log.contains("Accepted certificate ID \"admin\""),
        "sshd log: {log}"
    );

    // A terminal: pty-req and shell/exec with a TTY are relayed.
    let o = run(
        Command::new(SSH)
            .env("KEYGATE_HOME", &c.home)
            .env_remove("SSH_AUTH_SOCK")
            .arg("-F")
            .arg(&config)
            .args(["-tt", "-o", "BatchMode=yes", "-l", &login])
            .arg(format!("ag1.{}", c.name))
            .arg("tty; stty size; exit 4"),
        "",
    );
    assert_eq!(o.status.code(), Some(4), "ssh -tt: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains("/dev/pts/"),
        "a real terminal on the host: {out:?}"
    );

    // kg ssh too, with the remote exit status.
    let o = c.ssh(&[&format!("{login}@ag1"), "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "kg ssh: {}", text(&o));

    // scp and rsync copy byte-exact both ways.
    let local = c.tmp.path().join("up.bin");
    random_file(&local, 5 * 1024 * 1024);
    let want = sha256(&local);
    let remote = format!("/tmp/kgt-agentless-{}.bin", std::process::id());
    let remote2 = format!("{remote}.rsync");
    let _cleanup = RemoveOnDrop(vec![PathBuf::from(&remote), PathBuf::from(&remote2)]);
    let target = format!("{login}@ag1.{}", c.name);
    let scp = |from: &str, to: &str| {
        run(
            Command::new("scp")
                .env("KEYGATE_HOME", &c.home)
                .env_remove("SSH_AUTH_SOCK")
                .arg("-F")
                .arg(&config)
                .args(["-o", "BatchMode=yes", from, to]),
            "",
        )
    };
    let o = scp(&local.to_string_lossy(), &format!("{target}:{remote}"));
    assert!(o.status.success(), "scp up: {}", text(&o));
    let back = c.tmp.path().join("back.bin");
    let o = scp(&format!("{target}:{remote}"), &back.to_string_lossy());
    assert!(o.status.success(), "scp down: {}", text(&o));
    assert_eq!(sha256(&back), want, "scp round trip is byte-exact");

    let ssh_cmd = format!("ssh -F {} -o BatchMode=yes", config.display());
    let rsync = |from: &str, to: &str| {
        run(
            Command::new("rsync")
                .env("KEYGATE_HOME", &c.home)
                .env_remove("SSH_AUTH_SOCK")
                .args(["-a", "-e", &ssh_cmd, from, to]),
            "",
        )
    };
    let o = rsync(&local.to_string_lossy(), &format!("{target}:{remote2}"));
    assert!(o.status.success(), "rsync up: {}", text(&o));
    let back2 = c.tmp.path().join("back-rsync.bin");
    let o = rsync(&format!("{target}:{remote2}"), &back2.to_string_lossy());
    assert!(o.status.success(), "rsync down: {}", text(&o));
    assert_eq!(sha256(&back2), want, "rsync round trip is byte-exact");

    // The user's own certificate is useless against the host directly:
    // its sshd trusts only the openssh CA.
    let (key, cert) = c.profile_key();
    let o = run(
        Command::new(SSH)
            .env_remove("SSH_AUTH_SOCK")
            .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "IdentitiesOnly=yes"])
            .arg("-o")
            .arg(format!("IdentityFile={}", key.display()))
            .arg("-o")
            .arg(format!("CertificateFile={}", cert.display()))
            .args([
                "-p",
                &host.sshd.port().to_string(),
                "-l",
                &login,
                "127.0.0.1",
                "true",
            ]),
        "",
    );
    assert_eq!(
        o.status.code(),
        Some(255),
        "direct login must fail: {}",
        text(&o)
    );
    assert!(
        text(&o).contains("Permission denied"),
        "direct login: {}",
        text(&o)
    );

    // The audit log has the relayed session with the real client address.
    let o = c
        .kgctl_ok(&[
            "audit",
            "search",
            "--type",
            "session.end",
            "--format",
            "json",
        ])
        .unwrap();
    let events: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let relayed = events
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["node"] == "ag1" && e["via"] == "openssh-relay" && e["user"] == "admin");
    assert!(relayed, "no relayed session.end event: {events}");
}

#[test]
fn relay_refuses_impostor_hosts_and_denied_logins() {
    let c = Cluster::start().unwrap();
    let config = c.ssh_config().unwrap();
    // A host whose certificate names another node.
    let _other = add_host(&c, "ag-other", "env=dev", None);
    let _liar = add_host(&c, "ag-liar", "env=dev", Some("ag-other"));
    let o = plain_ssh(&c, &config, "ag-liar", "true");
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    assert!(
        text(&o).contains("host certificate is for"),
        "impostor host: {}",
        text(&o)
    );

    // A host whose certificate comes from another CA.
    let port = free_port().unwrap();
    c.kgctl_ok(&[
        "nodes",
        "add",
        "--openssh",
        "--name",
        "ag-foreign",
        "--address",
        &format!("127.0.0.1:{port}"),
    ])
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("foreign_ca");
    keygen(&ca).unwrap();
    let key = dir.path().join("host");
    keygen(&key).unwrap();
    let o = run(
        Command::new(SSH_KEYGEN)
            .args(["-q", "-s"])
            .arg(&ca)
            .args(["-I", "foreign", "-h", "-n", "ag-foreign,127.0.0.1"])
            .arg(format!("{}.pub", key.display())),
        "",
    );
    assert!(o.status.success(), "{}", text(&o));
    let openssh_ca = c
        .kgctl_ok(&["auth", "export", "--type", "openssh"])
        .unwrap();
    let _foreign = Sshd::start(SshdConfig {
        trusted_user_ca_keys: vec![String::from_utf8_lossy(&openssh_ca.stdout).into_owned()],
        extra: vec![format!("HostCertificate {}-cert.pub", key.display())],
        host_key: Some(key.clone()),
        port: Some(port),
        ..SshdConfig::default()
    })
    .unwrap();
    let o = plain_ssh(&c, &config, "ag-foreign", "true");
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    assert!(
        text(&o).contains("host certificate was refused"),
        "foreign CA: {}",
        text(&o)
    );

    // Roles decide at the relay: root, denied by a role, is not in the
    // certificate and the relay says so.
    c.apply(
        "kind: role\nversion: v1\nmetadata: {name: no-root}\nspec:\n  deny:\n    logins: [root]\n",
    )
    .unwrap();
    c.set_admin(&["admin", "no-root"], &["root", c.login()])
        .unwrap();
    let o = run(
        Command::new(SSH)
            .env("KEYGATE_HOME", &c.home)
            .env_remove("SSH_AUTH_SOCK")
            .arg("-F")
            .arg(&config)
            .args(["-o", "BatchMode=yes", "-l", "root"])
            .arg(format!("ag-other.{}", c.name))
            .arg("true"),
        "",
    );
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    assert!(
        text(&o).contains("access denied: login \"root\" is not in your certificate"),
        "the denial says why: {}",
        text(&o)
    );
}

#[test]
fn lock_ends_a_relayed_session() {
    let c = Cluster::start().unwrap();
    let _host = add_host(&c, "ag2", "env=dev", None);
    let config = c.ssh_config().unwrap();
    let mut bg = KillOnDrop(
        Command::new(SSH)
            .env("KEYGATE_HOME", &c.home)
            .env_remove("SSH_AUTH_SOCK")
            .arg("-F")
            .arg(&config)
            .args(["-o", "BatchMode=yes", "-l", c.login()])
            .arg(format!("ag2.{}", c.name))
            .arg("echo started; sleep 61")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let login = c.login().to_owned();
    let running = wait_until(Duration::from_secs(10), POLL, || {
        keygate_e2e::processes_of(&login, "sleep 61")
            .ok()
            .filter(|p| !p.is_empty())
    });
    assert!(running.is_some(), "the relayed session never started");
    c.kgctl_ok(&["lock", "--user", "admin", "--message", "offboarded"])
        .unwrap();
    let watch = Stopwatch::start();
    let ended = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        bg.0.try_wait().ok().flatten()
    });
    let elapsed = watch.elapsed();
    assert!(ended.is_some(), "the relayed session survived the lock");
    eprintln!("lock → relayed session ended after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    let mut err = String::new();
    if let Some(mut e) = bg.0.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(err.contains("offboarded"), "the user is told why: {err:?}");
    // And new sessions are refused.
    let o = plain_ssh(&c, &config, "ag2", "true");
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
}

#[test]
fn krl_sync_installs_signed_krls_and_refuses_tampered_or_old_ones() {
    let c = Cluster::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let proxy = c.daemon.banner.proxy.clone();
    let pin = c.daemon.banner.ca_pin.clone();
    let online = [
        "--proxy",
        proxy.as_str(),
        "--ca-pin",
        pin.as_str(),
        "--once",
    ];

    // First sync: the CA keys come over TLS pinned to the CA pin.
    let o = krl_sync(dir.path(), &online);
    assert!(o.status.success(), "first sync: {}", text(&o));
    assert!(text(&o).contains("openssh CA keys written"), "{}", text(&o));
    let exported = c
        .kgctl_ok(&["auth", "export", "--type", "openssh"])
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("openssh_ca.pub"))
            .unwrap()
            .trim(),
        String::from_utf8_lossy(&exported.stdout).trim()
    );
    let old_krl = c.tmp.path().join("old.krl");
    let old_sig = c.tmp.path().join("old.krl.sig");
    std::fs::write(
        &old_krl,
        c.kgctl_ok(&["auth", "export", "--type", "openssh", "--format", "krl"])
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(
        &old_sig,
        c.kgctl_ok(&["auth", "export", "--type", "openssh", "--format", "krl-sig"])
            .unwrap()
            .stdout,
    )
    .unwrap();

    // A lock on admin: the next sync revokes the key id, as OpenSSH reads it.
    c.kgctl_ok(&["lock", "--user", "admin", "--message", "offboarded"])
        .unwrap();
    let o = krl_sync(dir.path(), &online);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1 revoked key ids"), "{}", text(&o));
    let installed = dir.path().join("keygate.krl");
    let listing = run(
        Command::new(SSH_KEYGEN)
            .args(["-Q", "-l", "-f"])
            .arg(&installed),
        "",
    );
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("id: admin"),
        "ssh-keygen -Q -l: {}",
        text(&listing)
    );
    let before = std::fs::read(&installed).unwrap();

    // Tampered (delivered by other means): refused, nothing replaced.
    let krl = c
        .kgctl_ok(&["auth", "export", "--type", "openssh", "--format", "krl"])
        .unwrap()
        .stdout;
    let sig = c
        .kgctl_ok(&["auth", "export", "--type", "openssh", "--format", "krl-sig"])
        .unwrap()
        .stdout;
    let (krl_path, sig_path) = (c.tmp.path().join("t.krl"), c.tmp.path().join("t.krl.sig"));
    let mut bad = krl.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    std::fs::write(&krl_path, &bad).unwrap();
    std::fs::write(&sig_path, &sig).unwrap();
    let offline = [
        "--krl-file",
        krl_path.to_str().unwrap(),
        "--sig-file",
        sig_path.to_str().unwrap(),
    ];
    let o = krl_sync(dir.path(), &offline);
    assert_eq!(o.status.code(), Some(1), "tampered KRL: {}", text(&o));
    assert!(
        text(&o).contains("signature does not verify"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        before,
        "installed KRL unchanged"
    );

    // The genuine one installs offline too.
    std::fs::write(&krl_path, &krl).unwrap();
    let o = krl_sync(dir.path(), &offline);
    assert!(o.status.success(), "genuine offline KRL: {}", text(&o));

    // An older signed KRL (a replay) is refused.
    let o = krl_sync(
        dir.path(),
        &[
            "--krl-file",
            old_krl.to_str().unwrap(),
            "--sig-file",
            old_sig.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "replayed old KRL: {}", text(&o));
    assert!(
        text(&o).contains("older than the installed"),
        "{}",
        text(&o)
    );
}

#[test]
fn ansible_reaches_a_keygate_node_and_an_agentless_host() {
    let ansible = keygate_testkit::ansible::Ansible::find().unwrap_or_else(|e| panic!("{e}"));
    let c = Cluster::start().unwrap();
    let _host = add_host(&c, "ag4", "env=dev", None);
    let ws = ansible.workspace().unwrap();
    let config = c.ssh_config().unwrap();
    let inventory = ws
        .write(
            "inventory.ini",
            &format!(
                "[all]\nn1.{cl}\nag4.{cl}\n\n[all:vars]\nansible_user={}\nansible_ssh_common_args='-F {}'\n",
                c.login(),
                config.display(),
                cl = c.name
            ),
        )
        .unwrap();
    let o = run(
        ws.command()
            .env("KEYGATE_HOME", &c.home)
            .arg("all")
            .arg("-i")
            .arg(&inventory)
            .args(["-m", "command", "-a", "id -un"]),
        "",
    );
    assert!(o.status.success(), "ansible: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    for host in ["n1", "ag4"] {
        assert!(
            out.contains(&format!(
                "{host}.{} | CHANGED | rc=0 >>\n{}",
                c.name,
                c.login()
            )),
            "{host}: {out}"
        );
    }
}
