#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The README quickstart, automated: start, login, status — with the real
//! binaries, plus the failure paths a user meets first.

use std::process::Command;

use keygate_e2e::{Daemon, bin, run, totp_now};

fn kg(home: &std::path::Path) -> Command {
    let mut c = Command::new(bin("kg"));
    c.env("KEYGATE_HOME", home).env_remove("SSH_AUTH_SOCK");
    c
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn quickstart_start_login_status() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let home = tmp.path().join("home");
    let mut d = Daemon::start(&data, &[]).unwrap();
    let b = d.banner.clone();
    assert!(
        b.ca_pin.starts_with("sha256:") && b.ca_pin.len() == 71,
        "{:?}",
        b.lines
    );
    assert!(b.proxy.starts_with("localhost:"), "{:?}", b.lines);
    let password = b
        .admin_password
        .clone()
        .expect("first start prints the admin password");
    let uri = b
        .admin_totp_uri
        .clone()
        .expect("first start prints the admin TOTP URI");

    // A wrong CA pin is refused before anything is sent (exit 1).
    let bad_pin = format!("sha256:{}", "0".repeat(64));
    let o = run(
        kg(&home).args([
            "login",
            "--proxy",
            &b.proxy,
            "--user",
            "admin",
            "--password-stdin",
            "--ca-pin",
            &bad_pin,
        ]),
        "x\n",
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("does not match"), "{}", text(&o));

    // Wrong password: exit 1, generic message.
    let o = run(
        kg(&home).args([
            "login",
            "--proxy",
            &b.proxy,
            "--user",
            "admin",
            "--password-stdin",
            "--ca-pin",
            &b.ca_pin,
            "--otp",
            "000000",
        ]),
        "not-the-password\n",
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("invalid username or password"),
        "{}",
        text(&o)
    );

    // Not logged in yet: status says so with exit 1.
    let o = run(kg(&home).arg("status"), "");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // The real login.
    let o = run(
        kg(&home).args([
            "login",
            "--proxy",
            &b.proxy,
            "--user",
            "admin",
            "--password-stdin",
            "--ca-pin",
            &b.ca_pin,
            "--otp",
            &totp_now(&uri),
        ]),
        &format!("{password}\n"),
    );
    assert!(o.status.success(), "{}", text(&o));

    let o = run(kg(&home).args(["status", "--format", "json"]), "");
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["user"], "admin");
    assert_eq!(v["expired"], false);
    assert_eq!(v["ca_pin"], b.ca_pin.as_str());
    assert!(v["roles"].as_array().unwrap().iter().any(|r| r == "admin"));
    assert!(
        !v["logins"].as_array().unwrap().is_empty(),
        "admin gets the OS user as login: {v}"
    );

    // The stored certificate is a real OpenSSH user certificate.
    let cert = home.join(&b.proxy).join("keys").join("admin-cert.pub");
    let listing = keygate_testkit::ssh_keygen_l(&cert).unwrap();
    assert!(listing.contains("Key ID: \"admin\""), "{listing}");
    assert!(listing.contains("user certificate"), "{listing}");

    // Renewal without a password over mTLS.
    let o = run(kg(&home).args(["login", "--format", "json"]), "");
    assert!(o.status.success(), "{}", text(&o));

    // kgctl through the kg profile, and through the admin socket.
    let o = run(
        Command::new(bin("kgctl"))
            .env("KEYGATE_HOME", &home)
            .args(["status", "--format", "json"]),
        "",
    );
    assert!(o.status.success(), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["ca_pin"], b.ca_pin.as_str());
    assert_eq!(s["caller"], "admin");
    let o = run(
        Command::new(bin("kgctl"))
            .arg("--data-dir")
            .arg(&data)
            .arg("status"),
        "",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("(admin socket)"), "{}", text(&o));

    // The audit log has the failed and the successful login, and verifies.
    let o = run(
        Command::new(bin("kgctl"))
            .arg("--data-dir")
            .arg(&data)
            .args([
                "audit",
                "search",
                "--type",
                "user.login",
                "--format",
                "json",
            ]),
        "",
    );
    assert!(o.status.success(), "{}", text(&o));
    let events: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["user"] == "admin" && e["success"] == true),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["user"] == "admin" && e["success"] == false && e["code"] == "KG1000W"),
        "{events:?}"
    );
    let o = run(
        Command::new(bin("kgctl"))
            .arg("--data-dir")
            .arg(&data)
            .args(["audit", "verify"]),
        "",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Hash chain verified"), "{}", text(&o));

    // A second daemon on the same data dir is refused clearly.
    let second = Daemon::start(&data, &[]);
    let err = second.err().expect("second daemon must not start");
    assert!(err.contains("in use"), "{err}");

    // Clean shutdown on SIGTERM, then a restart keeps the cluster.
    assert_eq!(d.terminate(), Some(0));
    let d2 = Daemon::start(&data, &[]).unwrap();
    assert_eq!(d2.banner.ca_pin, b.ca_pin, "CAs persist across restarts");
    assert!(
        d2.banner.admin_password.is_none(),
        "the password is shown only once"
    );

    // Logout forgets the identity.
    let o = run(kg(&home).arg("logout"), "");
    assert!(o.status.success(), "{}", text(&o));
    let o = run(kg(&home).arg("status"), "");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn kill_dash_nine_then_restart_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut d = Daemon::start(&data, &[]).unwrap();
    let pin = d.banner.ca_pin.clone();
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    // Stale lock file and admin socket must not block the next start.
    let d2 = Daemon::start(&data, &[]).unwrap();
    assert_eq!(d2.banner.ca_pin, pin);
    let o = run(
        Command::new(bin("kgctl"))
            .arg("--data-dir")
            .arg(&data)
            .args(["get", "users"]),
        "",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("admin"), "{}", text(&o));
}

#[test]
fn configure_prints_a_sample_that_starts() {
    let o = run(Command::new(bin("keygate")).arg("configure"), "");
    assert!(o.status.success());
    let sample = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        sample.contains("version: v1") && sample.contains("kek_file"),
        "{sample}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("keygate.yaml");
    std::fs::write(&cfg, "version: v1\nproxy:\n  web_adr: 127.0.0.1:1\n").unwrap();
    let o = run(
        Command::new(bin("keygate"))
            .args(["start", "--config"])
            .arg(&cfg),
        "",
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("web_adr"), "{}", text(&o));
}
