//! All-in-one start-up and shutdown.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keygate_audit::{AuditLog, AuditOptions};
use keygate_auth_service::{AuthOptions, AuthServer, FirstStart, ServiceIdentity};
use keygate_ca::{CaKind, SystemRole};
use keygate_clock::SharedClock;
use keygate_store::{DataDirLock, SqliteBackend};
use keygate_tls::{CertificateDer, ClientAuth, PrivateKeyDer};
use thiserror::Error;
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Lifetime of the in-process services' TLS certificates (re-issued at
/// every start).
const SERVICE_CERT_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why the daemon could not start. Each message says what to do.
#[derive(Debug, Error)]
pub enum StartError {
    /// Data directory problems (permissions, lock held by another process).
    #[error("{0}")]
    DataDir(String),
    /// A listener could not bind.
    #[error(
        "cannot listen on {addr}: {reason}; is another keygate running? pick another address with the flag"
    )]
    Bind {
        /// Address.
        addr: String,
        /// OS error.
        reason: String,
    },
    /// The store, audit log or auth state could not be opened.
    #[error("{0}")]
    State(String),
}

/// Inputs of [`start`].
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Merged configuration.
    pub config: Config,
    /// OS login for the first admin.
    pub admin_login: String,
    /// First admin's password (else one is generated and printed once).
    pub admin_password: Option<String>,
    /// The clock.
    pub clock: SharedClock,
    /// Password hashing cost (tests lower it).
    pub argon2: keygate_authn::Argon2Params,
    /// Register this host as a node (the all-in-one default).
    pub local_node: Option<LocalNode>,
}

/// The all-in-one's own node.
#[derive(Debug, Clone)]
pub struct LocalNode {
    /// Its name (default: the host name).
    pub name: String,
    /// Labels it reports.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Command labels (name → shell command).
    pub cmd_labels: std::collections::BTreeMap<String, String>,
}

/// A started cluster.
pub struct Running {
    /// Public HTTPS address as bound.
    pub web_addr: SocketAddr,
    /// Auth's internal address as bound.
    pub auth_addr: SocketAddr,
    /// SSH address clients are told (served by the server-access work).
    pub ssh_addr: SocketAddr,
    /// Reverse-tunnel address as bound.
    pub tunnel_addr: SocketAddr,
    /// This host as a node, when registered.
    pub node: Option<keygate_node_service::RunningNode>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Host CA pin.
    pub ca_pin: String,
    /// Cluster name.
    pub cluster: String,
    /// First-start facts (one-time admin password).
    pub first: FirstStart,
    /// The auth service, for in-process callers (tests, benchmarks).
    pub auth: AuthServer,
    /// Stops every task.
    shutdown: CancellationToken,
    /// Serving tasks.
    tasks: JoinSet<()>,
    /// Audit log, closed last so every event is on disk.
    audit: AuditLog,
    /// Held for the process lifetime.
    _lock: DataDirLock,
}

impl Running {
    /// A token that stops the cluster when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the cluster is stopped. Returns false when a service
    /// stopped on its own (a failure) rather than by the shutdown token.
    pub async fn wait(&mut self) -> bool {
        tokio::select! {
            () = self.shutdown.cancelled() => true,
            _ = self.tasks.join_next() => {
                // A task also ends when shutdown was asked for: only an
                // unrequested end is a failure.
                let requested = self.shutdown.is_cancelled();
                self.shutdown.cancel();
                requested
            }
        }
    }

    /// Orderly stop: stop accepting, drain requests, flush the audit log.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Err(e) = self.audit.close().await {
            tracing::error!("closing the audit log: {e}");
        }
    }
}

fn state_err(what: &str) -> impl Fn(String) -> StartError + '_ {
    move |e| StartError::State(format!("{what}: {e}"))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|e| StartError::Bind {
        addr: addr.to_string(),
        reason: e.to_string(),
    })
}

fn make_data_dir(dir: &Path) -> Result<(), StartError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StartError::DataDir(format!("cannot create data dir {}: {e}", dir.display())))
}

fn tls_parts(id: &ServiceIdentity) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let chain = id
        .chain_der
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(id.key_der.clone().into());
    (chain, key)
}

/// Starts auth and proxy in this process.
pub async fn start(opts: StartOptions) -> Result<Running, StartError> {
    keygate_tls::install_crypto_provider();
    let cfg = &opts.config;
    let data_dir = cfg
        .data_dir
        .clone()
        .ok_or_else(|| StartError::DataDir("no data dir given".into()))?;
    make_data_dir(&data_dir)?;
    let lock = DataDirLock::acquire(&data_dir).map_err(|e| StartError::DataDir(e.to_string()))?;
    let kek_path = cfg
        .auth
        .kek_file
        .clone()
        .unwrap_or_else(|| data_dir.join("kek"));
    let kek = keygate_auth_service::load_or_create_kek(&kek_path)
        .map_err(|e| StartError::State(e.to_string()))?;
    let backend = SqliteBackend::open(&data_dir.join("keygate.db"), opts.clock.clone())
        .await
        .map_err(|e| state_err("opening keygate.db")(e.to_string()))?;
    let audit = AuditLog::open(
        &data_dir.join("audit.db"),
        opts.clock.clone(),
        AuditOptions::default(),
    )
    .await
    .map_err(|e| state_err("opening audit.db")(e.to_string()))?;
    let mut auth_opts = AuthOptions::new(
        cfg.cluster_name.clone().unwrap_or_else(|| "keygate".into()),
        opts.admin_login.clone(),
    );
    auth_opts.admin_password = opts.admin_password.clone();
    auth_opts.argon2 = opts.argon2;
    let exporters = if cfg.audit.exporters.is_empty() {
        None
    } else {
        let runner = keygate_audit_export::ExportRunner::new(
            audit.clone(),
            data_dir.join("audit-export"),
            cfg.audit.exporters.clone(),
            opts.clock.clone(),
        )
        .map_err(|e| StartError::State(format!("audit exporters: {e}")))?;
        let handle = runner.status_handle();
        auth_opts.exporters = Some(keygate_auth_service::ExporterStatusSource(
            std::sync::Arc::new(move || {
                handle
                    .status()
                    .iter()
                    .filter_map(|s| serde_json::to_value(s).ok())
                    .collect()
            }),
        ));
        Some(runner)
    };
    let auth_listener = bind(
        cfg.auth
            .listen_addr
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 3025))),
    )
    .await?;
    let web_listener = bind(
        cfg.proxy
            .web_addr
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 3080))),
    )
    .await?;
    let tunnel_listener = bind(
        cfg.proxy
            .tunnel_addr
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 3024))),
    )
    .await?;
    let tunnel_addr = tunnel_listener
        .local_addr()
        .map_err(|e| state_err("tunnel listener")(e.to_string()))?;
    let auth_addr = auth_listener
        .local_addr()
        .map_err(|e| state_err("auth listener")(e.to_string()))?;
    let web_addr = web_listener
        .local_addr()
        .map_err(|e| state_err("web listener")(e.to_string()))?;
    auth_opts.proxy_addr = Some(keygate_proxy_service::advertised(web_addr));
    auth_opts.tunnel_addr = Some(keygate_proxy_service::advertised(tunnel_addr));
    let (auth, first) = AuthServer::open(
        Arc::new(backend),
        audit.clone(),
        opts.clock.clone(),
        kek,
        auth_opts,
    )
    .await
    .map_err(|e| state_err("starting auth")(e.to_string()))?;

    let ssh_addr = cfg
        .proxy
        .ssh_addr
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 3023)));

    let ca_der = |k: CaKind| {
        auth.ca(k)
            .map(|c| CertificateDer::from(c.x509_cert_der().to_vec()))
    };
    let (user_ca, host_ca) = match (ca_der(CaKind::User), ca_der(CaKind::Host)) {
        (Some(u), Some(h)) => (u, h),
        _ => {
            return Err(StartError::State(
                "certificate authorities are missing".into(),
            ));
        }
    };
    let ips = |a: SocketAddr| -> Vec<IpAddr> {
        if a.ip().is_unspecified() {
            vec![]
        } else {
            vec![a.ip()]
        }
    };
    let auth_id = auth
        .issue_service_identity(
            SystemRole::Auth,
            vec!["localhost".into()],
            ips(auth_addr),
            SERVICE_CERT_TTL,
        )
        .map_err(|e| state_err("auth certificate")(e.to_string()))?;
    let mut names = vec!["localhost".to_owned()];
    names.extend(cfg.proxy.public_names.iter().cloned());
    names.dedup();
    let proxy_id = auth
        .issue_service_identity(SystemRole::Proxy, names, ips(web_addr), SERVICE_CERT_TTL)
        .map_err(|e| state_err("proxy certificate")(e.to_string()))?;
    let (auth_chain, auth_key) = tls_parts(&auth_id);
    let auth_tls = keygate_tls::server_config(
        auth_chain,
        auth_key,
        ClientAuth::Required(vec![user_ca.clone(), host_ca.clone()]),
    )
    .map_err(|e| state_err("auth TLS")(e.to_string()))?;
    let (proxy_chain, proxy_key) = tls_parts(&proxy_id);
    let public_tls = keygate_tls::server_config(
        proxy_chain.clone(),
        proxy_key.clone_key(),
        ClientAuth::Optional(vec![user_ca, host_ca.clone()]),
    )
    .map_err(|e| state_err("proxy TLS")(e.to_string()))?;
    // Only nodes (host-CA certificates with the node role) hold tunnels.
    let tunnel_tls = keygate_tls::server_config(
        proxy_chain.clone(),
        proxy_key.clone_key(),
        ClientAuth::Required(vec![host_ca.clone()]),
    )
    .map_err(|e| state_err("tunnel TLS")(e.to_string()))?;
    let to_auth_tls = keygate_tls::client_config(&[host_ca], Some((proxy_chain, proxy_key)))
        .map_err(|e| state_err("proxy-to-auth TLS")(e.to_string()))?;

    let sock_path = data_dir.join("admin.sock");
    let _ = std::fs::remove_file(&sock_path);
    let admin_listener = UnixListener::bind(&sock_path).map_err(|e| {
        StartError::DataDir(format!(
            "cannot create admin socket {}: {e}",
            sock_path.display()
        ))
    })?;
    std::fs::set_permissions(&sock_path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StartError::DataDir(format!("cannot protect {}: {e}", sock_path.display())))?;
    let owner = std::fs::metadata(&data_dir).map(|m| m.uid()).unwrap_or(0);

    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let tunnels = keygate_tunnel::TunnelServer::new(keygate_tunnel::Limits::default());
    let s = shutdown.clone();
    let t = tunnels.clone();
    tasks.spawn(async move { t.serve(tunnel_listener, tunnel_tls, s).await });
    let s = shutdown.clone();
    let router = keygate_auth_service::internal_router(auth.clone());
    tasks.spawn(async move {
        if let Err(e) = keygate_tls::serve_tls(auth_listener, auth_tls, router, s).await {
            tracing::error!("auth listener: {e}");
        }
    });
    let s = shutdown.clone();
    let router = keygate_auth_service::admin_router(auth.clone());
    tasks.spawn(async move {
        if let Err(e) = keygate_tls::serve_unix(admin_listener, vec![owner, 0], router, s).await {
            tracing::error!("admin socket: {e}");
        }
    });
    let proxy_cfg = keygate_proxy_service::ProxyConfig {
        auth_addr: keygate_proxy_service::advertised(auth_addr),
        auth_tls: to_auth_tls,
        public_tls,
        tunnels: Some(Arc::new(tunnels.clone())),
        clock: opts.clock.clone(),
    };
    let s = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = keygate_proxy_service::run(proxy_cfg, web_listener, s).await {
            tracing::error!("proxy: {e}");
        }
    });
    if let Some(runner) = exporters {
        let s = shutdown.clone();
        tasks.spawn(async move { runner.run(s).await });
    }
    let s = shutdown.clone();
    let sweeper = auth.clone();
    tasks.spawn(async move {
        // Leases (heartbeats, temporary records) expire by the clock;
        // sweeping turns them into delete events for watchers.
        loop {
            tokio::select! {
                () = s.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(1)) => sweeper.sweep().await,
            }
        }
    });
    let node = match &opts.local_node {
        Some(n) => Some(
            start_local_node(
                &auth,
                &data_dir,
                web_addr,
                n,
                opts.clock.clone(),
                shutdown.clone(),
            )
            .await?,
        ),
        None => None,
    };
    Ok(Running {
        node,
        web_addr,
        auth_addr,
        ssh_addr,
        tunnel_addr,
        data_dir,
        ca_pin: auth.ca_pin(),
        cluster: auth.cluster().to_owned(),
        first,
        auth,
        shutdown,
        tasks,
        audit,
        _lock: lock,
    })
}

/// Registers and runs this host as a node, through the local proxy like any
/// other node (so the all-in-one exercises the real join and tunnel paths).
async fn start_local_node(
    auth: &AuthServer,
    data_dir: &Path,
    web_addr: SocketAddr,
    n: &LocalNode,
    clock: SharedClock,
    shutdown: CancellationToken,
) -> Result<keygate_node_service::RunningNode, StartError> {
    let node_dir = data_dir.join("node");
    let store = keygate_node_service::IdentityStore::new(&node_dir);
    let joined = store
        .load()
        .map_err(|e| StartError::State(e.to_string()))?
        .is_some();
    let token = if joined {
        None
    } else {
        let caller = keygate_auth_service::Caller::AdminSocket {
            os_user: "keygate".into(),
            uid: 0,
        };
        let req = keygate_api::TokenRequest {
            kind: "node".into(),
            ttl_secs: Some(300),
            labels: Default::default(),
            reusable: false,
        };
        let t = auth
            .create_token(&caller, req)
            .await
            .map_err(|e| state_err("local node token")(e.to_string()))?;
        Some(t.token)
    };
    let cfg = keygate_node_service::NodeConfig {
        data_dir: node_dir,
        proxy: keygate_proxy_service::advertised(web_addr),
        token,
        ca_pin: Some(auth.ca_pin()),
        node_name: n.name.clone(),
        self_labels: n.labels.clone(),
        direct_addr: None,
        cmd_labels: n.cmd_labels.clone(),
        clock,
    };
    keygate_node_service::start(cfg, shutdown)
        .await
        .map_err(|e| state_err("local node")(e.to_string()))
}
