//! Who may hold a tunnel: the node id comes from the certificate, and only
//! node certificates from the host CA get in; nodes only talk to proxies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use keygate_ca::SystemRole;
use keygate_tls::rustls::ClientConfig;
use keygate_tunnel::{Backoff, Limits, TunnelError, TunnelServer, TunnelState};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_node_id_is_the_certificate_common_name() {
    let pki = Pki::new();
    let srv = start_server(TunnelServer::new(Limits::default()), pki.proxy_tls()).await;
    let _node = run_client(
        client(
            srv.addr,
            pki.client_tls(pki.node("web-42")),
            Backoff::default(),
        ),
        echo,
    );
    wait_registered(&srv.server, "web-42", WAIT).await;
    assert_eq!(srv.server.connected(), vec!["web-42".to_owned()]);
    assert!(echo_round_trip(&srv.server, "web-42", b"hi").await == b"hi");
    assert!(matches!(
        srv.server.dial("node-1").await,
        Err(TunnelError::NotConnected(_))
    ));
}

/// Runs a client with `tls` against a fresh server until the client has
/// failed at least twice, then checks that nothing was ever registered and
/// the client never reported itself connected.
async fn assert_refused(pki: &Pki, tls: Arc<ClientConfig>) -> String {
    let srv = start_server(TunnelServer::new(Limits::default()), pki.proxy_tls()).await;
    let mut registry = srv.server.subscribe();
    let fast = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(50),
    };
    let node = run_client(client(srv.addr, tls, fast), echo);
    let mut state = node.client.state();
    let mut failures = 0;
    let mut last = String::new();
    while failures < 2 {
        tokio::time::timeout(WAIT, state.changed())
            .await
            .expect("the client never reported a failure")
            .unwrap();
        match &*state.borrow_and_update() {
            TunnelState::Connected { .. } => panic!("a refused client reported Connected"),
            TunnelState::Disconnected {
                last_error: Some(e),
                ..
            } => {
                failures += 1;
                last = e.clone();
            }
            TunnelState::Disconnected { .. } => {}
        }
    }
    assert!(
        !registry.has_changed().unwrap(),
        "registry changed: {:?}",
        *registry.borrow_and_update()
    );
    assert!(srv.server.connected().is_empty());
    assert!(matches!(
        srv.server.dial("node-1").await,
        Err(TunnelError::NotConnected(_))
    ));
    last
}

#[tokio::test]
async fn a_user_certificate_is_refused_even_from_the_host_ca() {
    let pki = Pki::new();
    assert_refused(&pki, pki.client_tls(pki.user_signed_by_host("node-1"))).await;
}

#[tokio::test]
async fn other_system_roles_are_refused() {
    let pki = Pki::new();
    for role in [SystemRole::Proxy, SystemRole::Auth, SystemRole::Bot] {
        let creds = pki.service(&pki.host, "node-1", role, false);
        assert_refused(&pki, pki.client_tls(creds)).await;
    }
}

#[tokio::test]
async fn a_node_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let creds = pki.service(&pki.foreign, "node-1", SystemRole::Node, false);
    assert_refused(&pki, pki.client_tls(creds)).await;
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let pki = Pki::new();
    let tls = Arc::new(keygate_tls::client_config(&[pki.host_ca()], None).unwrap());
    assert_refused(&pki, tls).await;
}

#[tokio::test]
async fn a_node_refuses_a_server_that_is_not_a_proxy() {
    let pki = Pki::new();
    // A host-CA certificate valid for localhost, but for role node.
    let impostor = pki.server_tls(pki.service(&pki.host, "evil", SystemRole::Node, true));
    let srv = start_server(TunnelServer::new(Limits::default()), impostor).await;
    let node = run_client(
        client(
            srv.addr,
            pki.client_tls(pki.node("node-1")),
            Backoff::default(),
        ),
        echo,
    );
    let s = wait_state(&node.client, WAIT, |s| {
        matches!(
            s,
            TunnelState::Disconnected {
                last_error: Some(_),
                ..
            }
        )
    })
    .await;
    let TunnelState::Disconnected {
        last_error: Some(e),
        ..
    } = s
    else {
        unreachable!()
    };
    assert!(e.contains("system role node"), "{e}");
    // The node sent nothing over the impostor's connection: no tunnel.
    assert!(srv.server.connected().is_empty());
}

#[tokio::test]
async fn a_node_refuses_a_server_from_another_ca() {
    let pki = Pki::new();
    let foreign = pki.service(&pki.foreign, "proxy", SystemRole::Proxy, true);
    let srv = start_server(
        TunnelServer::new(Limits::default()),
        pki.server_tls(foreign),
    )
    .await;
    let node = run_client(
        client(
            srv.addr,
            pki.client_tls(pki.node("node-1")),
            Backoff::default(),
        ),
        echo,
    );
    let s = wait_state(&node.client, WAIT, |s| {
        matches!(
            s,
            TunnelState::Disconnected {
                last_error: Some(_),
                ..
            }
        )
    })
    .await;
    assert!(format!("{s:?}").contains("TLS handshake"), "{s:?}");
    assert!(srv.server.connected().is_empty());
}
