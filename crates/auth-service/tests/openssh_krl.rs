//! The KRL against the real OpenSSH: an agentless host's sshd trusting only
//! the openssh CA accepts the relay's per-session certificate, and refuses
//! it once a lock on the user (or on the user certificate's serial) is in
//! the KRL given to `RevokedKeys`; `ssh-keygen -Q` agrees; the detached
//! signature verifies with the openssh CA and fails on a tampered KRL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use common::{admin_socket, cluster};
use keygate_api::{KrlBundle, OpenSshSessionRequest};
use keygate_auth_service::{Caller, IssueContext};
use keygate_ca::{KRL_SIG_NAMESPACE, Krl};
use keygate_testkit::{ClientKey, OsUser, SSH_KEYGEN, Sshd, SshdConfig, ssh_exec};
use serde_json::json;

fn relay() -> Caller {
    Caller::Proxy {
        remote: None,
        internal: true,
    }
}

fn krl_bytes(b: &KrlBundle) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(&b.krl)
        .unwrap()
}

/// `ssh-keygen -Q -f KRL CERT`: true when OpenSSH says revoked.
fn revoked_by_openssh(krl: &Path, cert: &Path) -> bool {
    let o = Command::new(SSH_KEYGEN)
        .arg("-Q")
        .arg("-f")
        .arg(krl)
        .arg(cert)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    match o.status.code() {
        Some(0) => false,
        Some(1) if out.contains("REVOKED") => true,
        other => panic!("ssh-keygen -Q: {other:?} {out}"),
    }
}

#[tokio::test]
async fn krl_makes_agentless_sshd_refuse_locked_users_and_serials() {
    let os = OsUser::create().unwrap();
    let c = cluster().await;
    let socket = admin_socket();
    c.auth
        .put(
            &socket,
            json!({"kind": "node", "version": "v1", "metadata": {"name": "ag"},
                   "spec": {"addr": "127.0.0.1:22", "sub_kind": "openssh"}}),
            false,
        )
        .await
        .unwrap();
    c.auth
        .put(
            &socket,
            json!({"kind": "user", "version": "v1", "metadata": {"name": "alice"},
                   "spec": {"roles": ["access"], "traits": {"logins": [os.name()]}}}),
            false,
        )
        .await
        .unwrap();
    // Alice's own certificate, and the relay's per-session certificate.
    let user_key = ClientKey::generate_named(c.dir.path(), "alice").unwrap();
    let ctx = IssueContext {
        method: "test",
        ..IssueContext::default()
    };
    let certs = c
        .auth
        .issue_user_certs("alice", &user_key.public_line, None, &ctx)
        .await
        .unwrap();
    let user_cert = user_key.write_cert(&certs.ssh_cert).unwrap();
    let relay_key = ClientKey::generate_named(c.dir.path(), "relay").unwrap();
    let grant = c
        .auth
        .openssh_session(
            &relay(),
            OpenSshSessionRequest {
                node: "ag".into(),
                login: os.name().into(),
                user_cert: certs.ssh_cert.clone(),
                public_key: relay_key.public_line.clone(),
                client_addr: "127.0.0.1:5555".into(),
            },
        )
        .await
        .unwrap();
    let relay_cert = relay_key.write_cert(&grant.cert).unwrap();

    // The host: trusts only the openssh CA, revokes what the KRL says.
    let bundle = c.auth.krl_bundle().await.unwrap();
    let krl_path = c.dir.path().join("keygate.krl");
    std::fs::write(&krl_path, krl_bytes(&bundle)).unwrap();
    let sshd = Sshd::start(SshdConfig {
        trusted_user_ca_keys: bundle.openssh_ca_keys.clone(),
        extra: vec![format!("RevokedKeys {}", krl_path.display())],
        ..SshdConfig::default()
    })
    .unwrap();
    let login =
        |cert: &Path, key: &Path| ssh_exec(sshd.port(), os.name(), key, cert, "id -un").unwrap();
    let o = login(&relay_cert, &relay_key.private_key);
    assert!(
        o.status.success(),
        "relay certificate: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        sshd.log()
    );
    // The user's own certificate is useless here.
    let o = login(&user_cert, &user_key.private_key);
    assert_eq!(
        o.status.code(),
        Some(255),
        "user certificate must be refused"
    );
    assert!(!revoked_by_openssh(&krl_path, &relay_cert));

    // A lock on alice: her key id is revoked under the openssh CA.
    c.auth
        .put(
            &socket,
            common::user_lock_json("l1", "alice", "offboarded", None),
            false,
        )
        .await
        .unwrap();
    let bundle = c.auth.krl_bundle().await.unwrap();
    std::fs::write(&krl_path, krl_bytes(&bundle)).unwrap();
    assert!(revoked_by_openssh(&krl_path, &relay_cert));
    let o = login(&relay_cert, &relay_key.private_key);
    assert_eq!(o.status.code(), Some(255), "locked user must be refused");
    assert!(sshd.log().contains("revoked"), "{}", sshd.log());

    // The lock goes; a lock on the user certificate's serial revokes the
    // relay's certificate too (it carries the same serial).
    c.auth
        .remove(&socket, keygate_types::Kind::Lock, "l1")
        .await
        .unwrap();
    let bundle = c.auth.krl_bundle().await.unwrap();
    std::fs::write(&krl_path, krl_bytes(&bundle)).unwrap();
    assert!(!revoked_by_openssh(&krl_path, &relay_cert));
    assert!(login(&relay_cert, &relay_key.private_key).status.success());
    c.auth
        .put(
            &socket,
            json!({"kind": "lock", "version": "v1", "metadata": {"name": "l2"},
                   "spec": {"target": {"serial": certs.serial.to_string()}}}),
            false,
        )
        .await
        .unwrap();
    let bundle = c.auth.krl_bundle().await.unwrap();
    let bytes = krl_bytes(&bundle);
    std::fs::write(&krl_path, &bytes).unwrap();
    assert!(revoked_by_openssh(&krl_path, &relay_cert));
    assert_eq!(
        login(&relay_cert, &relay_key.private_key).status.code(),
        Some(255)
    );

    // The detached signature: good with the openssh CA, bad when tampered.
    keygate_ca::sshsig_verify(
        &bundle.signatures[0],
        &bundle.openssh_ca_keys,
        KRL_SIG_NAMESPACE,
        &bytes,
    )
    .unwrap();
    let mut tampered = bytes.clone();
    if let Some(b) = tampered.last_mut() {
        *b ^= 1;
    }
    assert!(
        keygate_ca::sshsig_verify(
            &bundle.signatures[0],
            &bundle.openssh_ca_keys,
            KRL_SIG_NAMESPACE,
            &tampered
        )
        .is_err()
    );
    // Versions only grow.
    let decoded = Krl::decode(&bytes).unwrap();
    assert_eq!(decoded.version, bundle.version);
    assert!(decoded.is_cert_revoked(&bundle.openssh_ca_keys[0], certs.serial, "bob"));
}

#[tokio::test]
async fn role_locks_expand_to_users_and_relay_needs_internal_proxy() {
    let c = cluster().await;
    let socket = admin_socket();
    for (name, role) in [("carol", "auditor"), ("dave", "access")] {
        c.auth
            .put(
                &socket,
                json!({"kind": "user", "version": "v1", "metadata": {"name": name},
                       "spec": {"roles": [role]}}),
                false,
            )
            .await
            .unwrap();
    }
    c.auth
        .put(
            &socket,
            json!({"kind": "lock", "version": "v1", "metadata": {"name": "r"},
                   "spec": {"target": {"role": "auditor"}}}),
            false,
        )
        .await
        .unwrap();
    let krl = c.auth.krl().await.unwrap();
    let section = krl.certificates.first().unwrap();
    assert!(section.key_ids.contains("carol"), "{:?}", section.key_ids);
    assert!(!section.key_ids.contains("dave"), "{:?}", section.key_ids);

    // Anyone but the proxy on its own account is refused the relay API.
    let req = OpenSshSessionRequest {
        node: "ag".into(),
        login: "root".into(),
        user_cert: String::new(),
        public_key: String::new(),
        client_addr: "127.0.0.1:1".into(),
    };
    for caller in [
        Caller::Proxy {
            remote: None,
            internal: false,
        },
        common::user("admin"),
        socket.clone(),
    ] {
        let r = c.auth.openssh_session(&caller, req.clone()).await;
        assert!(
            matches!(r, Err(keygate_auth_service::AuthError::AccessDenied(_))),
            "{caller:?}: {r:?}"
        );
    }
}
