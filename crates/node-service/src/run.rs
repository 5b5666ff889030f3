//! Running a node: identity, policy cache, SSH server on the reverse
//! tunnel (and optionally a direct port), heartbeats, lock enforcement.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keygate_api::{Ack, Heartbeat};
use keygate_clock::SharedClock;
use keygate_sshd::{ServerSettings, SshServer};
use keygate_tunnel::{Backoff, TunnelClient};
use tokio_util::sync::CancellationToken;

use crate::decide::{CertFacts, decide};
use crate::glue::glue;
use crate::{EventUploader, IdentityStore, LoadedIdentity, NodeError, PolicyCache};

/// How often a node reports it is alive (its inventory entry expires after
/// 60 s without one).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(20);

/// Settings of one node.
#[derive(Clone)]
pub struct NodeConfig {
    /// Where the node keeps its key and certificates.
    pub data_dir: PathBuf,
    /// Proxy address (`host:port`, HTTPS).
    pub proxy: String,
    /// Join token (first start only).
    pub token: Option<String>,
    /// CA pin to check the proxy against at join.
    pub ca_pin: Option<String>,
    /// Name to register.
    pub node_name: String,
    /// Labels the node reports itself.
    pub self_labels: BTreeMap<String, String>,
    /// Also listen for direct SSH here.
    pub direct_addr: Option<SocketAddr>,
    /// Command labels: name → shell command whose trimmed output becomes
    /// the label's value at every heartbeat.
    pub cmd_labels: BTreeMap<String, String>,
    /// The clock.
    pub clock: SharedClock,
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("proxy", &self.proxy)
            .field("node_name", &self.node_name)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Loads the identity, or joins with the token.
pub async fn identity(
    cfg: &NodeConfig,
    direct: Option<String>,
) -> Result<LoadedIdentity, NodeError> {
    let store = IdentityStore::new(&cfg.data_dir);
    if let Some(id) = store.load()? {
        return Ok(id);
    }
    let token = cfg.token.as_deref().ok_or_else(|| {
        NodeError::Identity(
            "this node has not joined yet: pass --token-file (or KEYGATE_JOIN_TOKEN) and --ca-pin"
                .into(),
        )
    })?;
    let pin = cfg.ca_pin.as_deref().ok_or_else(|| {
        NodeError::Identity("joining needs --ca-pin sha256:… (kgctl tokens add prints it)".into())
    })?;
    let ca = keygate_client::fetch_ca(&cfg.proxy, Some(pin))
        .await
        .map_err(|e| NodeError::Identity(e.to_string()))?;
    let client = keygate_client::anonymous_client(&cfg.proxy, ca)
        .map_err(|e| NodeError::Identity(e.to_string()))?;
    store
        .join(
            &client,
            token,
            &cfg.node_name,
            direct,
            cfg.self_labels.clone(),
        )
        .await
}

/// A running node's handles.
pub struct RunningNode {
    /// The SSH server (registry, stats).
    pub ssh: SshServer,
    /// The node's id.
    pub node_id: String,
    /// The policy cache.
    pub cache: PolicyCache,
}

/// Starts every task of the node; they stop when `shutdown` is cancelled.
pub async fn start(cfg: NodeConfig, shutdown: CancellationToken) -> Result<RunningNode, NodeError> {
    let direct_listener = match cfg.direct_addr {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .map_err(|e| NodeError::Identity(format!("cannot listen on {a}: {e}")))?,
        ),
        None => None,
    };
    let direct = direct_listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.to_string());
    let id = identity(&cfg, direct.clone()).await?;
    let rotating = id.rotating_cert()?;
    let tls = id.tls_client(&rotating)?;
    let api = keygate_api::ApiClient::https(&cfg.proxy, tls.clone()).map_err(NodeError::Api)?;
    let cache = PolicyCache::default();
    if let Err(e) = cache.refresh(&api).await {
        tracing::warn!("no policy snapshot yet ({e}); refusing sessions until one arrives");
    }
    let uploader = EventUploader::default();
    let sessions_changed = Arc::new(tokio::sync::Notify::new());
    let (authz, events) = glue(
        cache.clone(),
        id.identity.node_id.clone(),
        cfg.self_labels.clone(),
        uploader.clone(),
        cfg.clock.clone(),
        sessions_changed.clone(),
    );
    let host_key = russh::keys::PrivateKey::from_openssh(
        id.key
            .to_openssh()
            .map_err(|e| NodeError::Identity(e.to_string()))?
            .as_bytes(),
    )
    .map_err(|e| NodeError::Identity(format!("host key: {e}")))?;
    let mut settings = ServerSettings::new(host_key, &id.identity.node_name, &id.identity.node_id);
    settings.host_cert = Some(
        russh::keys::Certificate::from_openssh(&id.identity.host_cert)
            .map_err(|e| NodeError::Identity(format!("host certificate: {e}")))?,
    );
    let ssh = SshServer::new(settings, authz, events, cfg.clock.clone());

    let c = cache.clone();
    let (a, s) = (api.clone(), shutdown.clone());
    tokio::spawn(async move { c.run(a, s).await });
    let (a, s) = (api.clone(), shutdown.clone());
    tokio::spawn(async move { uploader.run(a, s).await });
    spawn_heartbeats(
        api.clone(),
        direct,
        cfg.self_labels.clone(),
        cfg.cmd_labels.clone(),
        ssh.clone(),
        sessions_changed,
        shutdown.clone(),
    );
    spawn_renewal(
        api.clone(),
        IdentityStore::new(&cfg.data_dir),
        id.key
            .to_openssh()
            .map_err(|e| NodeError::Identity(e.to_string()))?
            .to_string(),
        id.identity.valid_before,
        rotating,
        ssh.clone(),
        (cache.subscribe(), signer_of(&id.identity.host_cert)),
        cfg.clock.clone(),
        shutdown.clone(),
    );
    spawn_lock_enforcer(
        ssh.clone(),
        cache.clone(),
        id.identity.node_id.clone(),
        cfg.self_labels.clone(),
        cfg.clock.clone(),
        shutdown.clone(),
    );

    if let Some(l) = direct_listener {
        let (srv, s) = (ssh.clone(), shutdown.clone());
        tokio::spawn(async move { srv.serve_tcp(l, s).await });
    }
    let tunnel_addr = id
        .identity
        .tunnel_addr
        .clone()
        .ok_or_else(|| NodeError::Identity("auth did not say where the tunnel is".into()))?;
    let server_name = cfg
        .proxy
        .rsplit_once(':')
        .map_or(cfg.proxy.as_str(), |(h, _)| h)
        .to_owned();
    let tunnel = TunnelClient::new(tunnel_addr, server_name, Arc::new(tls), Backoff::default())
        .with_clock(cfg.clock.clone());
    let proxy_addr: SocketAddr = tokio::net::lookup_host(&cfg.proxy)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let (srv, s) = (ssh.clone(), shutdown.clone());
    tokio::spawn(async move {
        tunnel
            .run(
                move |mut stream| {
                    let srv = srv.clone();
                    async move {
                        let remote = read_preamble(&mut stream).await.unwrap_or(proxy_addr);
                        srv.serve_stream(stream, remote).await
                    }
                },
                s,
            )
            .await;
    });
    Ok(RunningNode {
        ssh,
        node_id: id.identity.node_id,
        cache,
    })
}

/// Longest command-label value kept.
const MAX_CMD_LABEL: usize = 256;

/// Runs one command label (bounded in time and output).
async fn run_cmd_label(command: &str) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .kill_on_drop(true)
            .output(),
    )
    .await;
    match out {
        Ok(Ok(o)) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .trim()
            .chars()
            .take(MAX_CMD_LABEL)
            .collect(),
        Ok(Ok(o)) => format!("error: exit {}", o.status.code().unwrap_or(-1)),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "error: timed out".into(),
    }
}

fn spawn_heartbeats(
    api: keygate_api::ApiClient,
    addr: Option<String>,
    labels: BTreeMap<String, String>,
    cmd_labels: BTreeMap<String, String>,
    ssh: SshServer,
    sessions_changed: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let mut self_labels = labels.clone();
            for (name, cmd) in &cmd_labels {
                self_labels.insert(name.clone(), run_cmd_label(cmd).await);
            }
            let hb = Heartbeat {
                addr: addr.clone(),
                self_labels,
                version: env!("CARGO_PKG_VERSION").into(),
                sessions: ssh
                    .registry()
                    .list()
                    .into_iter()
                    .map(|s| keygate_api::SessionSummary {
                        id: s.id,
                        user: s.user,
                        login: s.login,
                        node: String::new(),
                        remote: s.remote.to_string(),
                        started: s.started,
                    })
                    .collect(),
            };
            let r: Result<Ack, _> = api.post("/v1/nodes/heartbeat", &hb).await;
            if let Err(e) = r {
                tracing::warn!("heartbeat failed: {e}");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                () = sessions_changed.notified() => {
                    // Let a burst of session changes settle into one report.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
}

/// Ends live sessions a new lock applies to, within moments of auth
/// reporting it.
fn spawn_lock_enforcer(
    ssh: SshServer,
    cache: PolicyCache,
    node_id: String,
    self_labels: BTreeMap<String, String>,
    clock: SharedClock,
    shutdown: CancellationToken,
) {
    let mut rx = cache.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                r = rx.changed() => if r.is_err() { return },
            }
            let snap = rx.borrow_and_update().clone();
            let now = clock.now();
            for s in ssh.registry().list() {
                let facts = CertFacts {
                    user: s.user.clone(),
                    roles: s.roles.clone(),
                    traits: BTreeMap::new(),
                    serial: s.serial,
                    valid_before: s.cert_valid_before,
                    session_id: Some(s.id.clone()),
                };
                if let Err(d) = decide(&snap, &node_id, &self_labels, &facts, &s.login, now)
                    && d.rule == "lock"
                {
                    let id = s.id.clone();
                    let n = ssh.registry().terminate_where(
                        |x| x.id == id,
                        &format!("keygate: session terminated: {}", d.reason),
                    );
                    tracing::info!(session = %s.id, user = %s.user, "terminated {n} session(s): {}", d.reason);
                }
            }
        }
    });
}

/// The proxy's first line on a tunnel stream: `KEYGATE-CLIENT ip:port\n`.
/// Read byte by byte (at most 80, within 5 s) so no SSH byte is consumed.
async fn read_preamble<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<SocketAddr> {
    use tokio::io::AsyncReadExt;
    let mut line = Vec::with_capacity(64);
    let read = async {
        while line.len() < 80 {
            let b = s.read_u8().await.ok()?;
            if b == b'\n' {
                return Some(());
            }
            line.push(b);
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()??;
    let text = std::str::from_utf8(&line).ok()?;
    text.strip_prefix(keygate_tunnel::CLIENT_PREAMBLE)?
        .trim()
        .parse()
        .ok()
}

/// Renew node certificates once less than this much validity is left.
const RENEW_BEFORE: Duration = Duration::from_secs(10 * 24 * 3600);
/// How often the renewal check runs.
const RENEW_CHECK_EVERY: Duration = Duration::from_secs(3600);

/// The CA key (`type base64`, no comment) that signed a host certificate.
fn signer_of(host_cert: &str) -> Option<String> {
    russh::keys::Certificate::from_openssh(host_cert)
        .ok()
        .and_then(|c| {
            russh::keys::PublicKey::from(c.signature_key().clone())
                .to_openssh()
                .ok()
        })
        .map(|l| key_only(&l))
}

/// An OpenSSH public key line without its comment.
fn key_only(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renews the node's certificates before they expire, and at once when the
/// host CA rotated (the snapshot names another signing key): the new X.509
/// certificate is used by every new TLS handshake (API and tunnel), the new
/// host certificate by every new SSH connection; nothing restarts.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename these
fn spawn_renewal(
    api: keygate_api::ApiClient,
    store: IdentityStore,
    key_openssh: String,
    mut valid_before: time::OffsetDateTime,
    rotating: keygate_tls::RotatingClientCert,
    ssh: SshServer,
    (mut snapshots, mut signed_by): (
        tokio::sync::watch::Receiver<std::sync::Arc<crate::Snapshot>>,
        Option<String>,
    ),
    clock: SharedClock,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let left = valid_before - clock.now();
            let expiring =
                left < time::Duration::try_from(RENEW_BEFORE).unwrap_or(time::Duration::ZERO);
            let signing = snapshots.borrow().host_ca_signing.as_deref().map(key_only);
            let rotated = signing.is_some() && signing != signed_by;
            if expiring || rotated {
                match renew_once(&api, &store, &key_openssh, &rotating, &ssh).await {
                    Ok((until, by)) => {
                        tracing::info!(rotated, "renewed node certificates until {until}");
                        valid_before = until;
                        signed_by = by;
                    }
                    Err(e) => tracing::warn!("renewing node certificates failed ({e}); will retry"),
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RENEW_CHECK_EVERY) => {}
                r = snapshots.changed() => if r.is_err() { return },
            }
        }
    });
}

async fn renew_once(
    api: &keygate_api::ApiClient,
    store: &IdentityStore,
    key_openssh: &str,
    rotating: &keygate_tls::RotatingClientCert,
    ssh: &SshServer,
) -> Result<(time::OffsetDateTime, Option<String>), NodeError> {
    let key = keygate_client::ClientKey::from_openssh(key_openssh)
        .map_err(|e| NodeError::Identity(e.to_string()))?;
    let body = serde_json::json!({
        "ssh_public_key": key.public_openssh().map_err(|e| NodeError::Identity(e.to_string()))?,
        "tls_spki_b64": crate::spki_b64(&key)?,
    });
    let identity: keygate_api::NodeIdentity = api.post("/v1/nodes/renew", &body).await?;
    store.save(&key, &identity)?;
    let loaded = LoadedIdentity { key, identity };
    let (chain, k) = loaded.tls_parts()?;
    rotating
        .replace(chain, &k)
        .map_err(|e| NodeError::Identity(e.to_string()))?;
    let cert = russh::keys::Certificate::from_openssh(&loaded.identity.host_cert)
        .map_err(|e| NodeError::Identity(format!("renewed host certificate: {e}")))?;
    ssh.replace_host_cert(cert);
    Ok((
        loaded.identity.valid_before,
        signer_of(&loaded.identity.host_cert),
    ))
}
