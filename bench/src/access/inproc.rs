//! B4b with an in-process client: russh's client, certificate auth with
//! the `kg login` profile's key and certificate, on a tokio runtime in
//! this process. No `ssh` process starts per session, so the rate is
//! bounded by the two handshakes (client and server) sharing the cores,
//! not by `fork`/`exec` and OpenSSH's start-up. Through the proxy the
//! stream is `keygate_client::connect_node` — the same HTTPS upgrade
//! `kg proxy ssh` makes — with russh on top.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use keygate_client::{Home, Profile};
use russh::client;
use russh::keys::{Certificate, PrivateKey};
use tokio::io::{AsyncRead, AsyncWrite};

use super::client::Route;
use super::cluster::{LOGIN, NODE, Peers, RELAY_NODE, clock};
use super::rate::{RATE_ROUTES, RatePlan, SessionRate, Tally};
use crate::BenchError;

/// How long one session may take before it counts as failed (a stuck
/// session must not hold its worker past the end of the run).
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// The SSH port the proxy is asked for on the node (what `%p` is when
/// `ssh` gets no `-p`).
const NODE_PORT: u16 = 22;

/// Accepts any host key. The OpenSSH runs check the agent's host
/// certificate; here both servers are on loopback in the same run, and
/// skipping one signature check per session on both sides alike keeps
/// the comparison even.
struct AnyHost;

impl client::Handler for AnyHost {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// What every session needs: the client config and the identity.
struct Ident {
    /// Same cipher and key exchange as the OpenSSH runs.
    config: Arc<client::Config>,
    /// The admin's private key.
    key: Arc<PrivateKey>,
    /// Its SSH certificate from `kg login`.
    cert: Certificate,
    /// The profile, for the proxy's HTTPS upgrade.
    profile: Profile,
}

impl std::fmt::Debug for Ident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ident { key: <redacted>, .. }")
    }
}

impl Ident {
    fn load(peers: &Peers) -> Result<Self, BenchError> {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p)
                .map_err(|e| BenchError::setup(&format!("read {}", p.display()), e))
        };
        let key = PrivateKey::from_openssh(read(&peers.key)?)
            .map_err(|e| BenchError::setup("parse the profile's private key", e))?;
        let cert = Certificate::from_openssh(read(&peers.cert)?.trim())
            .map_err(|e| BenchError::setup("parse the profile's SSH certificate", e))?;
        let profile = Home::at(&peers.home)
            .load(&peers.proxy)
            .map_err(|e| BenchError::setup("load the kg profile", e))?;
        let mut config = client::Config::default();
        config.preferred.kex = std::borrow::Cow::Borrowed(&[russh::kex::CURVE25519]);
        config.preferred.cipher = std::borrow::Cow::Borrowed(&[russh::cipher::AES_256_GCM]);
        Ok(Self {
            config: Arc::new(config),
            key: Arc::new(key),
            cert,
            profile,
        })
    }
}

/// Handshake, certificate auth, `exec true`, wait for exit status 0 and
/// the channel's close, disconnect — over an already connected stream.
async fn ssh_over<S>(ident: &Ident, stream: S) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut handle = client::connect_stream(Arc::clone(&ident.config), stream, AnyHost)
        .await
        .map_err(|e| format!("SSH handshake: {e}"))?;
    let auth = handle
        .authenticate_openssh_cert(LOGIN, Arc::clone(&ident.key), ident.cert.clone())
        .await
        .map_err(|e| format!("authenticate: {e}"))?;
    if !auth.success() {
        return Err("the server rejected the certificate".into());
    }
    let mut ch = handle
        .channel_open_session()
        .await
        .map_err(|e| format!("open session: {e}"))?;
    ch.exec(true, "true")
        .await
        .map_err(|e| format!("exec: {e}"))?;
    let mut status = None;
    while let Some(msg) = ch.wait().await {
        match msg {
            russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            russh::ChannelMsg::Close => break,
            _ => {}
        }
    }
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    match status {
        Some(0) => Ok(()),
        other => Err(format!("`true` ended with exit status {other:?}")),
    }
}

/// Where sessions go: the ports, copied out of [`Peers`] so worker tasks
/// own what they use.
#[derive(Debug, Clone, Copy)]
struct Ports {
    /// The standalone node's own listener.
    node: u16,
    /// sshd's.
    sshd: u16,
}

/// One session over `route`.
async fn one_session(ports: Ports, ident: &Ident, route: Route) -> Result<(), String> {
    let direct = |port: u16| async move {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        Ok::<_, String>(tcp)
    };
    let run = async {
        match route {
            Route::AgentProxy | Route::RelayProxy => {
                // The same upgrade; the proxy relays for an agentless node.
                let node = if route == Route::RelayProxy {
                    RELAY_NODE
                } else {
                    NODE
                };
                let s = keygate_client::connect_node(&ident.profile, node, NODE_PORT)
                    .await
                    .map_err(|e| format!("proxy upgrade: {e}"))?;
                ssh_over(ident, s).await
            }
            Route::AgentDirect => ssh_over(ident, direct(ports.node).await?).await,
            Route::SshdDirect | Route::SshdJump => ssh_over(ident, direct(ports.sshd).await?).await,
        }
    };
    tokio::time::timeout(SESSION_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| Err(format!("no exit within {SESSION_TIMEOUT:?}")))
}

/// Loads `route` with `plan.workers` looping tasks for `plan.duration`;
/// each worker is its own task, so both runtime threads run sessions.
async fn load(ports: Ports, ident: &Arc<Ident>, route: Route, plan: RatePlan) -> SessionRate {
    let clock = clock();
    let tally = Arc::new(Tally::default());
    let start = clock.monotonic();
    let stop = start.saturating_add(plan.duration);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..plan.workers.max(1) {
        let (ident, tally, clock) = (Arc::clone(ident), Arc::clone(&tally), clock.clone());
        set.spawn(async move {
            while clock.monotonic() < stop {
                match one_session(ports, &ident, route).await {
                    Ok(()) => {
                        tally.completed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => tally.fail(format!("{route:?}: {e}")),
                }
            }
        });
    }
    while let Some(done) = set.join_next().await {
        if let Err(e) = done {
            tally.fail(format!("{route:?}: worker task ended: {e}"));
        }
    }
    tally.to_rate(route, clock.monotonic().saturating_sub(start))
}

/// B4b in process: each of [`RATE_ROUTES`] in turn after one untimed
/// session per route.
pub fn session_rates(peers: &Peers, plan: RatePlan) -> Result<Vec<SessionRate>, BenchError> {
    let ident = Arc::new(Ident::load(peers)?);
    let ports = Ports {
        node: peers.node_port,
        sshd: peers.sshd.port(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::setup("start a tokio runtime", e))?;
    rt.block_on(async {
        for route in RATE_ROUTES {
            one_session(ports, &ident, route)
                .await
                .map_err(|e| BenchError::Operation(format!("in-process {route:?}: {e}")))?;
        }
        let mut out = Vec::with_capacity(RATE_ROUTES.len());
        for route in RATE_ROUTES {
            out.push(super::rate::nonzero(
                load(ports, &ident, route, plan).await,
                plan,
            )?);
        }
        Ok(out)
    })
}
