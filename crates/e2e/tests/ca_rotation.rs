#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! CA rotation end to end: the user, host and openssh CAs rotate (with a
//! grace period, phase by phase, and rolled back) while a Keygate node, the
//! proxy's relay, an agentless sshd and a `kg` profile keep working with no
//! manual step beyond `kg login` renewals and `krl-sync`'s periodic run.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use keygate_e2e::{Cluster, add_agentless_host, krl_sync, plain_ssh, run, text, wait_until};
use keygate_testkit::SSH;

/// How often polling loops look again.
const POLL: Duration = Duration::from_millis(100);

/// Plain `ssh` to `node` (a Keygate node) with exactly `key`/`cert` and a
/// known_hosts file of our choosing.
fn ssh_with(c: &Cluster, key: &Path, cert: &Path, known_hosts: &Path, node: &str) -> Output {
    run(
        Command::new(SSH)
            .env("KEYGATE_HOME", &c.home)
            .env_remove("SSH_AUTH_SOCK")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .arg("-o")
            .arg(format!("IdentityFile={}", key.display()))
            .arg("-o")
            .arg(format!("CertificateFile={}", cert.display()))
            .arg("-o")
            .arg(format!(
                "ProxyCommand={} proxy ssh --proxy {} %r@%h:%p",
                keygate_e2e::bin("kg").display(),
                c.daemon.banner.proxy
            ))
            .args(["-l", c.login(), node, "true"]),
        "",
    )
}

/// Polls `check` for up to 15 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let ok = wait_until(Duration::from_secs(15), POLL, || check().then_some(()));
    assert!(ok.is_some(), "{what} did not happen within 15 s");
}

#[test]
fn ca_rotation_needs_no_manual_steps_on_nodes_or_clients() {
    let c = Cluster::start().unwrap();
    let host = add_agentless_host(&c, "ag3", "env=dev", None).unwrap();
    let config = c.ssh_config().unwrap();
    let (key, cert) = c.profile_key();
    let known = c.home.join(&c.daemon.banner.proxy).join("known_hosts");
    let keep = |name: &str| {
        let k = c.tmp.path().join(name);
        std::fs::copy(&key, &k).unwrap();
        std::fs::copy(&cert, k.with_extension("cert")).unwrap();
        (k.clone(), k.with_extension("cert"))
    };
    let on_n2 = |k: &Path, crt: &Path| ssh_with(&c, k, crt, &known, "n2").status.success();
    let relayed = || plain_ssh(&c, &config, "ag3", "true").status.success();
    let rotate = |args: &[&str]| {
        let mut a = vec!["auth", "rotate"];
        a.extend_from_slice(args);
        c.kgctl_ok(&a).unwrap();
    };
    let (ka, ca) = keep("cert-a");
    assert!(on_n2(&ka, &ca) && relayed());

    // User CA, automatic: old certificates keep working in the grace
    // period; renewed ones (new key) work once n2 has heard of the key.
    rotate(&["--type", "user", "--grace-period", "1h"]);
    assert!(on_n2(&ka, &ca), "old certificate during the grace period");
    assert!(c.renew().status.success());
    let (kb, cb) = keep("cert-b");
    eventually("n2 trusting the new user CA key", || on_n2(&kb, &cb));
    assert!(relayed(), "the relay trusts the new key too");
    let status = c.kgctl_ok(&["status"]).unwrap();
    assert!(
        text(&status).contains("update_servers"),
        "{}",
        text(&status)
    );
    // Completing it: the old key is no longer trusted anywhere.
    rotate(&["--type", "user", "--manual", "--phase", "standby"]);
    eventually("n2 refusing the old certificate", || !on_n2(&ka, &ca));
    assert!(on_n2(&kb, &cb));

    // Rollback: a new key is abandoned, certificates from it stop working,
    // the previous key's certificates still work.
    rotate(&["--type", "user", "--manual", "--phase", "init"]);
    rotate(&["--type", "user", "--manual", "--phase", "update_clients"]);
    assert!(c.renew().status.success());
    let (kc, cc) = keep("cert-c");
    eventually("n2 trusting the third key", || on_n2(&kc, &cc));
    rotate(&["--type", "user", "--rollback"]);
    eventually("n2 refusing the abandoned key", || !on_n2(&kc, &cc));
    assert!(on_n2(&kb, &cb), "rollback restores the previous key");
    assert!(c.renew().status.success());
    assert!(relayed());

    // Host CA: nodes re-sign their host certificates by themselves; a
    // client that trusts only the new host CA key reaches n2.
    rotate(&["--type", "host", "--grace-period", "1h"]);
    let hosts = c.kgctl_ok(&["auth", "export", "--type", "host"]).unwrap();
    let first = String::from_utf8_lossy(&hosts.stdout)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let only_new = c.tmp.path().join("known_hosts_new");
    std::fs::write(&only_new, format!("{first}\n")).unwrap();
    assert!(c.renew().status.success());
    let (kd, cd) = keep("cert-d");
    eventually("n2 presenting a host certificate from the new key", || {
        ssh_with(&c, &kd, &cd, &only_new, "n2").status.success()
    });
    assert!(
        relayed(),
        "the relay presents a certificate the client trusts"
    );

    // openssh CA: the relay signs with the new key; the host learns it from
    // krl-sync (its periodic job), with no change to sshd_config.
    rotate(&["--type", "openssh", "--grace-period", "1h"]);
    let b = &c.daemon.banner;
    let o = krl_sync(
        host.dir.path(),
        &["--proxy", &b.proxy, "--ca-pin", &b.ca_pin, "--once"],
    );
    assert!(o.status.success(), "krl-sync: {}", text(&o));
    assert!(text(&o).contains("openssh CA keys written"), "{}", text(&o));
    assert!(
        relayed(),
        "relay → sshd with the new openssh key: {}",
        host.sshd.log()
    );
    let audit = c
        .kgctl_ok(&["audit", "search", "--type", "ca.rotate", "--format", "json"])
        .unwrap();
    let n = serde_json::from_slice::<serde_json::Value>(&audit.stdout)
        .unwrap()
        .as_array()
        .map_or(0, Vec::len);
    assert!(n >= 7, "every rotation step is audited ({n})");
}
