//! Streams through a live tunnel: data integrity, concurrency, limits,
//! routing by node id.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::*;
use keygate_tunnel::{Backoff, Limits, TunnelError, TunnelServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_streams_echo_one_mib_each_byte_exact() {
    let pki = Pki::new();
    let srv = start_server(TunnelServer::new(Limits::default()), pki.proxy_tls()).await;
    let node = run_client(
        client(
            srv.addr,
            pki.client_tls(pki.node("node-1")),
            Backoff::default(),
        ),
        echo,
    );
    wait_registered(&srv.server, "node-1", WAIT).await;
    wait_state(&node.client, WAIT, |s| s.is_connected()).await;
    assert_eq!(srv.server.connected(), vec!["node-1".to_owned()]);

    let mut tasks = JoinSet::new();
    for _ in 0..50 {
        let server = srv.server.clone();
        tasks.spawn(async move {
            let data = random_bytes(1024 * 1024);
            let back = echo_round_trip(&server, "node-1", &data).await;
            assert_eq!(back.len(), data.len());
            assert!(back == data, "echoed bytes differ");
        });
    }
    let all = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    });
    all.await.expect("50 streams did not finish in time");
}

#[tokio::test]
async fn the_node_can_speak_first_and_both_directions_carry_distinct_data() {
    let pki = Pki::new();
    let srv = start_server(TunnelServer::new(Limits::default()), pki.proxy_tls()).await;
    let from_node = random_bytes(300 * 1024);
    let node_data = from_node.clone();
    // Like an SSH server: speak first, then answer what the proxy sent
    // (reversed, so an echo bug cannot pass).
    let node = run_client(
        client(
            srv.addr,
            pki.client_tls(pki.node("node-1")),
            Backoff::default(),
        ),
        move |mut s| {
            let data = node_data.clone();
            async move {
                s.write_all(&data).await.unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.unwrap();
                got.reverse();
                s.write_all(&got).await.unwrap();
                s.shutdown().await.unwrap();
            }
        },
    );
    wait_registered(&srv.server, "node-1", WAIT).await;
    let mut s = srv.server.dial("node-1").await.unwrap();
    // The proxy reads before writing anything: the node must start anyway.
    let mut got = vec![0u8; from_node.len()];
    tokio::time::timeout(WAIT, s.read_exact(&mut got))
        .await
        .expect("the node never spoke: the stream was not announced")
        .unwrap();
    assert!(got == from_node);
    let to_node = random_bytes(200 * 1024);
    s.write_all(&to_node).await.unwrap();
    s.shutdown().await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let mut expected = to_node.clone();
    expected.reverse();
    assert!(answer == expected);
    drop(node);
}

#[tokio::test]
async fn dial_to_an_unknown_node_fails_at_once() {
    let pki = Pki::new();
    let srv = start_server(TunnelServer::new(Limits::default()), pki.proxy_tls()).await;
    let node = run_client(
        client(
            srv.addr,
            pki.client_tls(pki.node("node-1")),
            Backoff::default(),
        ),
        echo,
    );
    wait_registered(&srv.server, "node-1", WAIT).await;
    let r = tokio::time::timeout(Duration::from_millis(100), srv.server.dial("node-2"))
        .await
        .expect("dial to an unknown node should not wait");
    match r {
        Err(TunnelError::NotConnected(id)) => assert_eq!(id, "node-2"),
        other => panic!("expected NotConnected, got {other:?}"),
    }
    // A server with no tunnels at all.
    let empty = TunnelServer::new(Limits::default());
    assert!(matches!(
        empty.dial("node-1").await,
        Err(TunnelError::NotConnected(_))
    ));
    assert!(empty.connected().is_empty());
    drop(node);
}

#[tokio::test]
async fn streams_per_tunnel_are_limited_and_released_on_drop() {
    let pki = Pki::new();
    let limits = Limits {
        max_tunnels: 10,
        max_streams_per_tunnel: 2,
    };
    let srv = start_server(TunnelServer::new(limits), pki.proxy_tls()).await;
    let _node = run_client(
        client(
            srv.addr,
            pki.client_tls(pki.node("node-1")),
            Backoff::default(),
        ),
        echo,
    );
    wait_registered(&srv.server, "node-1", WAIT).await;
    let a = srv.server.dial("node-1").await.unwrap();
    let _b = srv.server.dial("node-1").await.unwrap();
    match srv.server.dial("node-1").await {
        Err(TunnelError::TooManyStreams { node_id, limit }) => {
            assert_eq!((node_id.as_str(), limit), ("node-1", 2));
        }
        other => panic!("expected TooManyStreams, got {other:?}"),
    }
    drop(a);
    // The freed slot is usable, and the tunnel survived the refusal.
    let data = random_bytes(64 * 1024);
    assert!(echo_round_trip(&srv.server, "node-1", &data).await == data);
    // Many short streams in a row never wedge the limit.
    for _ in 0..50 {
        assert!(echo_round_trip(&srv.server, "node-1", b"x").await == b"x");
    }
}

#[tokio::test]
async fn tunnels_are_limited_but_a_reconnect_replaces_its_own() {
    let pki = Pki::new();
    let limits = Limits {
        max_tunnels: 1,
        max_streams_per_tunnel: 8,
    };
    let srv = start_server(TunnelServer::new(limits), pki.proxy_tls()).await;
    // First holder of node-1 retries slowly once replaced.
    let slow = Backoff {
        initial: Duration::from_secs(60),
        max: Duration::from_secs(60),
    };
    let first = run_client(
        client(srv.addr, pki.client_tls(pki.node("node-1")), slow),
        |mut s| async move {
            let _ = s.write_all(b"first").await;
            let _ = s.shutdown().await;
        },
    );
    wait_registered(&srv.server, "node-1", WAIT).await;
    wait_state(&first.client, WAIT, |s| s.is_connected()).await;

    // A second node does not fit.
    let other = run_client(
        client(
            srv.addr,
            pki.client_tls(pki.node("node-2")),
            Backoff::default(),
        ),
        echo,
    );
    wait_state(&other.client, WAIT, |s| {
        matches!(
            s,
            keygate_tunnel::TunnelState::Disconnected {
                last_error: Some(_),
                ..
            }
        )
    })
    .await;
    assert_eq!(srv.server.connected(), vec!["node-1".to_owned()]);
    assert!(!other.client.state().borrow().is_connected());
    drop(other);

    // The same node again (a reconnect) replaces the first tunnel.
    let second = run_client(
        client(
            srv.addr,
            pki.client_tls(pki.node("node-1")),
            Backoff::default(),
        ),
        |mut s| async move {
            let _ = s.write_all(b"second").await;
            let _ = s.shutdown().await;
        },
    );
    wait_state(&second.client, WAIT, |s| s.is_connected()).await;
    wait_state(&first.client, WAIT, |s| !s.is_connected()).await;
    assert_eq!(srv.server.connected(), vec!["node-1".to_owned()]);
    let mut s = srv.server.dial("node-1").await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"second");
}

/// Regression: yamux subscribes to a new outbound stream's frames only on
/// the next poll of the session, so a stream opened on an idle tunnel sat
/// unannounced until the next keepalive (5 s) woke the driver.
#[tokio::test]
async fn streams_open_promptly_on_an_idle_tunnel() {
    let pki = Pki::new();
    let srv = start_server(TunnelServer::new(Limits::default()), pki.proxy_tls()).await;
    let _node = run_client(
        client(
            srv.addr,
            pki.client_tls(pki.node("node-1")),
            Backoff::default(),
        ),
        echo,
    );
    wait_registered(&srv.server, "node-1", WAIT).await;
    wait_state(&_node.client, WAIT, |s| s.is_connected()).await;
    let twenty = async {
        for i in 0..20u8 {
            assert_eq!(echo_round_trip(&srv.server, "node-1", &[i]).await, [i]);
        }
    };
    tokio::time::timeout(Duration::from_secs(3), twenty)
        .await
        .expect("round trips on an idle tunnel stalled");
}

#[tokio::test]
async fn handed_in_connections_are_served_and_shutdown_closes_them() {
    use std::sync::Arc;

    use keygate_tunnel::{TUNNEL_ALPN, node_id_from_cert};
    use tokio_rustls::TlsAcceptor;

    let pki = Pki::new();
    let server = TunnelServer::new(Limits::default());
    // The caller terminates TLS itself (as a shared, ALPN-routed port would).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = (*pki.proxy_tls()).clone();
    cfg.alpn_protocols = vec![TUNNEL_ALPN.to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let accepting = tokio::spawn({
        let server = server.clone();
        async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
                let node_id = node_id_from_cert(&leaf).unwrap();
                let server = server.clone();
                tokio::spawn(async move { server.handle_connection(tls, node_id).await });
            }
        }
    });
    let slow = Backoff {
        initial: Duration::from_secs(60),
        max: Duration::from_secs(60),
    };
    let node = run_client(client(addr, pki.client_tls(pki.node("node-9")), slow), echo);
    wait_registered(&server, "node-9", WAIT).await;
    assert!(echo_round_trip(&server, "node-9", b"handed in").await == b"handed in");

    server.shutdown();
    let mut rx = server.subscribe();
    tokio::time::timeout(WAIT, rx.wait_for(Vec::is_empty))
        .await
        .expect("shutdown left the tunnel registered")
        .unwrap();
    wait_state(&node.client, WAIT, |s| !s.is_connected()).await;
    assert!(matches!(
        server.dial("node-9").await,
        Err(TunnelError::NotConnected(_))
    ));
    accepting.abort();
}
