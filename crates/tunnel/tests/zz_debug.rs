#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod common;
use std::time::{Duration, Instant};
use common::*;
use keygate_tunnel::{Backoff, Limits, TunnelServer};

#[tokio::test]
async fn debug_timing() {
    let pki = Pki::new();
    let limits = Limits { max_tunnels: 10, max_streams_per_tunnel: 2 };
    let srv = start_server(TunnelServer::new(limits), pki.proxy_tls()).await;
    let _node = run_client(client(srv.addr, pki.client_tls(pki.node("node-1")), Backoff::default()), echo);
    wait_registered(&srv.server, "node-1", Duration::from_secs(10)).await;
    let t = Instant::now();
    let a = srv.server.dial("node-1").await.unwrap();
    eprintln!("dial a {:?}", t.elapsed());
    let _b = srv.server.dial("node-1").await.unwrap();
    eprintln!("dial b {:?}", t.elapsed());
    drop(a);
    let data = random_bytes(64 * 1024);
    assert!(echo_round_trip(&srv.server, "node-1", &data).await == data);
    eprintln!("64k {:?}", t.elapsed());
    for i in 0..5 {
        assert!(echo_round_trip(&srv.server, "node-1", b"x").await == b"x");
        eprintln!("x{i} {:?}", t.elapsed());
    }
}
