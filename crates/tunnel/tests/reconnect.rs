//! Losing the proxy: reconnecting after a restart, noticing a silent peer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use keygate_tunnel::{Backoff, Limits, TunnelError, TunnelServer, TunnelState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

async fn bind_again(addr: SocketAddr) -> TcpListener {
    // The old listener is gone, but give the kernel a moment if needed.
    for _ in 0..50 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not bind {addr} again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_reconnects_by_itself_after_a_proxy_restart() {
    let pki = Pki::new();
    let tls = pki.proxy_tls();
    let first = start_server(TunnelServer::new(Limits::default()), tls.clone()).await;
    let addr = first.addr;
    let node = run_client(
        client(addr, pki.client_tls(pki.node("node-1")), Backoff::default()),
        echo,
    );
    let mut states = node.client.state();
    wait_registered(&first.server, "node-1", WAIT).await;
    states.wait_for(TunnelState::is_connected).await.unwrap();
    assert!(echo_round_trip(&first.server, "node-1", b"before").await == b"before");

    // Kill the proxy: its listener and tunnels go away.
    first.stop.cancel();
    first.task.await.unwrap();
    assert!(first.server.connected().is_empty());
    let down = tokio::time::timeout(WAIT, states.wait_for(|s| !s.is_connected()))
        .await
        .expect("the node did not notice the proxy going away")
        .unwrap()
        .clone();
    assert!(
        matches!(
            down,
            TunnelState::Disconnected {
                last_error: Some(_),
                ..
            }
        ),
        "{down:?}"
    );
    assert!(matches!(
        first.server.dial("node-1").await,
        Err(TunnelError::NotConnected(_))
    ));

    // A new proxy on the same port: the node comes back without help.
    let second = serve_on(
        TunnelServer::new(Limits::default()),
        bind_again(addr).await,
        tls,
    );
    wait_registered(&second.server, "node-1", WAIT).await;
    tokio::time::timeout(WAIT, states.wait_for(TunnelState::is_connected))
        .await
        .expect("the node did not report Connected again")
        .unwrap();
    let data = random_bytes(256 * 1024);
    assert!(echo_round_trip(&second.server, "node-1", &data).await == data);

    // Shutting the client down leaves it Disconnected without an error.
    node.stop.cancel();
    let mut states = node.client.state();
    tokio::time::timeout(
        WAIT,
        states.wait_for(|s| {
            matches!(
                s,
                TunnelState::Disconnected {
                    last_error: None,
                    ..
                }
            )
        }),
    )
    .await
    .unwrap()
    .unwrap();
    wait_unregistered(&second.server, WAIT).await;
}

async fn wait_unregistered(server: &TunnelServer, within: Duration) {
    let mut rx = server.subscribe();
    tokio::time::timeout(within, rx.wait_for(Vec::is_empty))
        .await
        .expect("tunnel still registered")
        .unwrap();
}

/// A TCP relay between node and proxy that can be frozen: it then keeps
/// both sockets open but moves no more bytes, like a proxy host that
/// vanished from the network (no FIN, no RST).
async fn start_relay(target: SocketAddr, freeze: CancellationToken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(target).await else {
                continue;
            };
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            tokio::spawn(pump(ri, wo, freeze.clone()));
            tokio::spawn(pump(ro, wi, freeze.clone()));
        }
    });
    addr
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    freeze: CancellationToken,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            () = freeze.cancelled() => break,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    // Frozen: hold the sockets, move nothing, until the test ends.
    std::future::pending::<()>().await;
    drop((from, to));
}

#[tokio::test]
async fn a_silent_peer_is_noticed_by_both_sides() {
    let pki = Pki::new();
    let server = TunnelServer::new(Limits::default()).with_keepalive(fast_keepalive());
    let srv = start_server(server, pki.proxy_tls()).await;
    let freeze = CancellationToken::new();
    let relay = start_relay(srv.addr, freeze.clone()).await;
    let slow_retry = Backoff {
        initial: Duration::from_secs(30),
        max: Duration::from_secs(30),
    };
    let node = run_client(
        client(relay, pki.client_tls(pki.node("node-1")), slow_retry)
            .with_keepalive(fast_keepalive()),
        echo,
    );
    wait_registered(&srv.server, "node-1", WAIT).await;
    wait_state(&node.client, WAIT, |s| s.is_connected()).await;
    // Alive across several keepalive rounds.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(node.client.state().borrow().is_connected());
    assert_eq!(srv.server.connected(), vec!["node-1".to_owned()]);

    freeze.cancel();
    // interval + timeout = 800 ms; allow generous scheduling slack.
    let s = wait_state(&node.client, Duration::from_secs(4), |s| !s.is_connected()).await;
    assert!(format!("{s:?}").contains("keepalive"), "{s:?}");
    wait_unregistered(&srv.server, Duration::from_secs(4)).await;
}

#[test]
fn the_default_keepalive_notices_a_dead_peer_within_fifteen_seconds() {
    let ka = keygate_tunnel::Keepalive::default();
    assert!(ka.interval + ka.timeout <= Duration::from_secs(15));
    assert!(ka.interval < ka.timeout);
}
