//! Shared fixtures: a host CA and certificates, servers and clients on
//! loopback ports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use keygate_ca::{
    CaKind, CertAuthority, KeyAlgorithm, ServiceKey, Signer, SoftwareSigner, SystemRole,
    X509ServiceRequest, X509UserRequest, sign_user_x509,
};
use keygate_clock::{Clock, OffsetDateTime, SystemClock};
use keygate_tls::rustls::{ClientConfig, ServerConfig};
use keygate_tls::{CertificateDer, ClientAuth, PrivateKeyDer};
use keygate_tunnel::{Backoff, Keepalive, TunnelClient, TunnelServer, TunnelState, TunnelStream};
use rustls::pki_types::PrivatePkcs8KeyDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A certificate chain and its key.
pub type Creds = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The cluster's host CA plus an unrelated CA.
pub struct Pki {
    pub host: CertAuthority,
    pub foreign: CertAuthority,
    pub now: OffsetDateTime,
}

impl Pki {
    pub fn new() -> Self {
        keygate_tls::install_crypto_provider();
        // Real time: rustls judges validity against the system clock.
        let now = SystemClock::new().now();
        Self {
            host: CertAuthority::generate(CaKind::Host, "test", now).unwrap(),
            foreign: CertAuthority::generate(CaKind::Host, "other", now).unwrap(),
            now,
        }
    }

    pub fn host_ca(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.host.x509_cert_der().to_vec())
    }

    /// A service certificate from `ca`.
    pub fn service(&self, ca: &CertAuthority, cn: &str, role: SystemRole, local: bool) -> Creds {
        let cert = ca
            .sign_x509_service(&X509ServiceRequest {
                key: ServiceKey::GenerateP256,
                common_name: cn.into(),
                dns_names: if local {
                    vec!["localhost".into()]
                } else {
                    vec![]
                },
                ip_addresses: if local {
                    vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
                } else {
                    vec![]
                },
                system_role: role,
                not_before: self.now - time::Duration::minutes(1),
                not_after: self.now + time::Duration::hours(1),
            })
            .unwrap();
        let key = cert.private_key_pkcs8.as_ref().unwrap().to_vec();
        (
            vec![CertificateDer::from(cert.cert_der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
    }

    /// A node's client certificate (host CA, role node).
    pub fn node(&self, cn: &str) -> Creds {
        self.service(&self.host, cn, SystemRole::Node, false)
    }

    /// A user certificate (no system role) that nevertheless chains to the
    /// host CA, so that only the role check can refuse it.
    pub fn user_signed_by_host(&self, cn: &str) -> Creds {
        let key = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
        let der = sign_user_x509(
            self.host.x509_signer(),
            self.host.x509_cert_der(),
            &X509UserRequest {
                public_key_openssh: key.public_key().to_openssh().unwrap(),
                common_name: cn.into(),
                roles: vec!["access".into()],
                traits: Default::default(),
                not_before: self.now - time::Duration::minutes(1),
                not_after: self.now + time::Duration::hours(1),
                serial: 7,
            },
        )
        .unwrap();
        (
            vec![CertificateDer::from(der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec())),
        )
    }

    /// The proxy's tunnel listener config: proxy cert for localhost,
    /// client certificates from the host CA required.
    pub fn proxy_tls(&self) -> Arc<ServerConfig> {
        self.server_tls(self.service(&self.host, "proxy", SystemRole::Proxy, true))
    }

    pub fn server_tls(&self, (chain, key): Creds) -> Arc<ServerConfig> {
        keygate_tls::server_config(chain, key, ClientAuth::Required(vec![self.host_ca()])).unwrap()
    }

    /// A client config trusting the host CA and presenting `creds`.
    pub fn client_tls(&self, creds: Creds) -> Arc<ClientConfig> {
        Arc::new(keygate_tls::client_config(&[self.host_ca()], Some(creds)).unwrap())
    }
}

/// Fast keepalive for tests that wait for a dead peer to be noticed.
pub fn fast_keepalive() -> Keepalive {
    Keepalive {
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(600),
    }
}

/// A running `serve` on a loopback port.
pub struct RunningServer {
    pub server: TunnelServer,
    pub addr: SocketAddr,
    pub stop: CancellationToken,
    pub task: JoinHandle<()>,
}

pub async fn start_server(server: TunnelServer, tls: Arc<ServerConfig>) -> RunningServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_on(server, listener, tls)
}

pub fn serve_on(
    server: TunnelServer,
    listener: TcpListener,
    tls: Arc<ServerConfig>,
) -> RunningServer {
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let server = server.clone();
        let stop = stop.clone();
        async move { server.serve(listener, tls, stop).await }
    });
    RunningServer {
        server,
        addr,
        stop,
        task,
    }
}

/// A running `TunnelClient::run`.
pub struct RunningClient {
    pub client: Arc<TunnelClient>,
    pub stop: CancellationToken,
    pub task: JoinHandle<()>,
}

impl Drop for RunningClient {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn client(addr: SocketAddr, tls: Arc<ClientConfig>, backoff: Backoff) -> TunnelClient {
    TunnelClient::new(addr.to_string(), "localhost".into(), tls, backoff)
}

pub fn run_client<F, Fut>(client: TunnelClient, handler: F) -> RunningClient
where
    F: Fn(TunnelStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let client = Arc::new(client);
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let client = client.clone();
        let stop = stop.clone();
        async move { client.run(handler, stop).await }
    });
    RunningClient { client, stop, task }
}

/// The node-side handler of most tests: echo until EOF, then half-close.
pub async fn echo(stream: TunnelStream) {
    let (mut r, mut w) = tokio::io::split(stream);
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
}

/// Waits until the server lists `node`.
pub async fn wait_registered(server: &TunnelServer, node: &str, within: Duration) {
    let mut rx = server.subscribe();
    tokio::time::timeout(within, rx.wait_for(|v| v.iter().any(|n| n == node)))
        .await
        .unwrap_or_else(|_| panic!("{node} not registered within {within:?}"))
        .unwrap();
}

/// Waits until the client's state satisfies `f`.
pub async fn wait_state(
    client: &TunnelClient,
    within: Duration,
    f: impl Fn(&TunnelState) -> bool,
) -> TunnelState {
    let mut rx = client.state();
    let s = tokio::time::timeout(within, rx.wait_for(|s| f(s)))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "state not reached within {within:?}: {:?}",
                *client.state().borrow()
            )
        })
        .unwrap();
    s.clone()
}

/// Writes `data` to a fresh stream to `node` and reads the echo back.
pub async fn echo_round_trip(server: &TunnelServer, node: &str, data: &[u8]) -> Vec<u8> {
    let stream = server.dial(node).await.unwrap();
    let (mut r, mut w) = tokio::io::split(stream);
    let write = async {
        w.write_all(data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let read = async {
        let mut back = Vec::with_capacity(data.len());
        r.read_to_end(&mut back).await.unwrap();
        back
    };
    let ((), back) = tokio::join!(write, read);
    back
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut v = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut v);
    v
}
