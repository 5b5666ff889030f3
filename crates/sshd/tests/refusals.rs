//! Every bad credential is refused, audited with its reason, and the
//! server keeps serving; the host certificate is checked by real clients.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use keygate_ca::{CaKind, CertAuthority, HostCertRequest, UserCertRequest};
use keygate_clock::Clock;
use keygate_sshd::{AUTH_REJECTION_TIME, SshEvent};
use keygate_testkit::{ClientKey, OsUser};
use support::{Client, Node, NodeOptions, full_grant, stderr};

/// Runs a login that must be refused; returns ssh's stderr.
async fn refused(node: &Node, client: &Client, login: &str) -> String {
    let out = node.ssh(client, login, &[], "true").await;
    assert_eq!(
        out.status.code(),
        Some(255),
        "not refused: {}",
        stderr(&out)
    );
    stderr(&out)
}

async fn failure_with(node: &Node, needle: &str) -> SshEvent {
    node.events
        .wait_for(
            needle,
            |e| matches!(e, SshEvent::AuthFailed { reason, .. } if reason.contains(needle)),
        )
        .await
}

/// Logs in with russh's client and `cert_line`; returns whether accepted.
async fn russh_client_login(node: &Node, key: &ClientKey, cert_line: &str, login: &str) -> bool {
    let client = Client {
        key: key.clone(),
        cert: key.cert_path(),
        line: cert_line.to_owned(),
    };
    node.russh_client(&client, login).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_certificates_are_refused_audited_and_the_server_keeps_serving() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let good = node.client("good", &[login]);

    // 1. Signed by another CA.
    let other_ca = CertAuthority::generate(CaKind::User, "other", node.clock.now()).unwrap();
    let key = ClientKey::generate_named(node.dir.path(), "foreign").unwrap();
    let now = node.clock.now();
    let line = other_ca
        .sign_user_ssh(&UserCertRequest {
            public_key: key.public_line.clone(),
            key_id: "mallory".into(),
            principals: vec![login.to_owned()],
            valid_after: now - time::Duration::minutes(1),
            valid_before: now + time::Duration::hours(1),
            serial: 1,
            extensions: BTreeMap::new(),
        })
        .unwrap();
    let cert = key.write_cert(&line).unwrap();
    refused(&node, &Client { key, cert, line }, login).await;
    let ev = failure_with(&node, "untrusted CA").await;
    // The claimed identity of an unverified certificate is not believed.
    assert!(matches!(ev, SshEvent::AuthFailed { user: None, .. }));
    node.assert_still_serving(&good, login).await;

    // 2. A host certificate (signed by the trusted user CA) as user cert.
    let key = ClientKey::generate_named(node.dir.path(), "hostish").unwrap();
    let line = keygate_ca::sign_host_cert(
        node.user_ca.ssh_signer(),
        &HostCertRequest {
            public_key: key.public_line.clone(),
            key_id: "host".into(),
            principals: vec![login.to_owned()],
            valid_after: now - time::Duration::minutes(1),
            valid_before: now + time::Duration::hours(1),
            serial: 2,
            extensions: BTreeMap::new(),
        },
    )
    .unwrap();
    // OpenSSH's client will not even offer a host certificate as a user
    // identity, so a client that does is played by russh's.
    let accepted = russh_client_login(&node, &key, &line, login).await;
    assert!(!accepted);
    failure_with(&node, "expected a user certificate, got a host certificate").await;
    node.assert_still_serving(&good, login).await;

    // 3a. Expired by real time: the SSH layer refuses it before our
    // checks, and the connection is still audited as such.
    let expired = node.client_with("expired", |r| {
        r.principals = vec![login.to_owned()];
        r.valid_after = now - time::Duration::hours(2);
        r.valid_before = now - time::Duration::hours(1);
    });
    refused(&node, &expired, login).await;
    failure_with(&node, "expired, not yet valid").await;
    // 3b. Not yet valid.
    let future = node.client_with("future", |r| {
        r.principals = vec![login.to_owned()];
        r.valid_after = now + time::Duration::hours(1);
        r.valid_before = now + time::Duration::hours(2);
    });
    refused(&node, &future, login).await;
    node.assert_still_serving(&good, login).await;

    // 4. The login is not a principal.
    let other_login = node.client("wrong-login", &["someone-else"]);
    refused(&node, &other_login, login).await;
    let ev = failure_with(&node, "is not a principal").await;
    assert!(matches!(ev, SshEvent::AuthFailed { user: Some(u), .. } if u == "alice"));

    // 5. A plain key without a certificate.
    let plain = ClientKey::generate_named(node.dir.path(), "plain").unwrap();
    let no_cert = Client {
        cert: node.dir.path().join("nonexistent-cert.pub"),
        key: plain,
        line: String::new(),
    };
    refused(&node, &no_cert, login).await;
    failure_with(&node, "plain public key").await;

    // 6. A principal that is no OS user here.
    let ghost = node.client("ghost", &["kgt-no-such-user"]);
    let err = refused(&node, &ghost, "kgt-no-such-user").await;
    failure_with(&node, "does not exist on this node").await;
    assert!(err.contains("does not exist on this node"), "{err}");

    // 7. The authorizer says no: the user sees why.
    node.authz
        .set(Err("access to node-1 denied by role dev: locked".into()));
    let err = refused(&node, &good, login).await;
    assert!(
        err.contains("keygate: access denied: access to node-1 denied by role dev: locked"),
        "{err}"
    );
    failure_with(&node, "denied by role dev").await;
    node.authz.set(Ok(full_grant()));
    node.assert_still_serving(&good, login).await;

    assert!(
        node.server.stats().auth_failures >= 7,
        "{:?}",
        node.server.stats()
    );
    assert!(node.server.registry().is_empty() || node.server.registry().len() <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiry_is_judged_by_the_node_clock() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    // Valid by real time, but the node's clock says two hours later.
    let client = node.client("alice", &[login]);
    node.clock.advance(Duration::from_secs(2 * 3600));
    refused(&node, &client, login).await;
    failure_with(&node, "expired at").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_rejection_waits_the_rejection_time() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let good = node.client("alice", &[login]);
    let wrong_login = node.client("bob", &["nobody-here"]);
    // Warm up (key generation, first connection).
    node.assert_still_serving(&good, login).await;
    let time = |c: &'static str| {
        let client = if c == "principal" {
            &wrong_login
        } else {
            &good
        };
        let node = &node;
        async move {
            if c == "authz" {
                node.authz.set(Err("no".into()));
            }
            let t = Instant::now();
            let out = node.ssh(client, login, &[], "true").await;
            node.authz.set(Ok(full_grant()));
            assert_eq!(out.status.code(), Some(255));
            t.elapsed()
        }
    };
    let by_principal = time("principal").await;
    let by_authz = time("authz").await;
    // Every refused attempt waits at least the rejection time.
    assert!(by_principal >= AUTH_REJECTION_TIME, "{by_principal:?}");
    assert!(by_authz >= AUTH_REJECTION_TIME, "{by_authz:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_verify_the_host_certificate() {
    let node = Node::start().await;
    let user = OsUser::create().unwrap();
    let login = user.name();
    let client = node.client("alice", &[login]);
    let known_hosts = node.dir.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("@cert-authority * {}\n", node.host_ca.ssh_public_key()),
    )
    .unwrap();
    let strict = [
        "StrictHostKeyChecking=yes".to_owned(),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        format!("HostKeyAlias={}", support::NODE_NAME),
    ];
    let strict: Vec<&str> = strict.iter().map(String::as_str).collect();
    let out = node
        .ssh(&client, login, &strict, "echo via-host-cert")
        .await;
    assert_eq!(
        support::stdout(&out).trim(),
        "via-host-cert",
        "{}",
        stderr(&out)
    );

    // A node whose host certificate names another host is refused.
    let impostor = Node::start_with(NodeOptions {
        host_cert_principals: Some(vec!["other-node".into()]),
        ..NodeOptions::default()
    })
    .await;
    let client = impostor.client("alice", &[login]);
    let known_hosts = impostor.dir.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("@cert-authority * {}\n", impostor.host_ca.ssh_public_key()),
    )
    .unwrap();
    let strict = [
        "StrictHostKeyChecking=yes".to_owned(),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        format!("HostKeyAlias={}", support::NODE_NAME),
    ];
    let strict: Vec<&str> = strict.iter().map(String::as_str).collect();
    let out = impostor.ssh(&client, login, &strict, "true").await;
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("Host key verification failed"),
        "{}",
        stderr(&out)
    );
}
