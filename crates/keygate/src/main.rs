//! `keygate`: the daemon binary. Thin: parses flags, calls the library.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keygate::config::{Config, SAMPLE};
use keygate::{StartOptions, start};

#[derive(Parser)]
#[command(
    name = "keygate",
    version,
    about = "Keygate: identity-aware access with short-lived certificates."
)]
struct Cli {
    /// Verbose logs to stderr.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up
enum Cmd {
    /// Start the daemon (with no config: an all-in-one cluster on localhost).
    #[command(
        after_help = "Example:\n  keygate start --data-dir /tmp/kg\n  kg login --proxy localhost:3080 --user admin --ca-pin sha256:…"
    )]
    Start(StartArgs),
    /// Keep an agentless host's sshd RevokedKeys (KRL) and TrustedUserCAKeys current.
    #[command(
        name = "krl-sync",
        after_help = "Examples:\n  keygate krl-sync --proxy proxy.example.com:3080 --ca-pin sha256:… --once\n  keygate krl-sync --proxy proxy.example.com:3080 --ca-pin sha256:… --interval 60s \\\n      --metrics-file /var/lib/node_exporter/keygate_krl.prom\n  keygate krl-sync --krl-file keygate.krl --sig-file keygate.krl.sig   # delivered by other means\n\nsshd_config:\n  TrustedUserCAKeys /etc/ssh/keygate_openssh_ca.pub\n  RevokedKeys /etc/ssh/keygate.krl"
    )]
    KrlSync(KrlSyncArgs),
    /// Print a commented sample keygate.yaml.
    Configure,
    /// Print version and build information.
    Version,
}

#[derive(clap::Args)]
struct KrlSyncArgs {
    /// Proxy address (host:port).
    #[arg(long)]
    proxy: Option<String>,
    /// The cluster's CA pin (kgctl status).
    #[arg(long)]
    ca_pin: Option<String>,
    /// Install this KRL (obtained by other means) instead of fetching one.
    #[arg(long, requires = "sig_file")]
    krl_file: Option<PathBuf>,
    /// Its detached signature (SSHSIG).
    #[arg(long, requires = "krl_file")]
    sig_file: Option<PathBuf>,
    /// sshd's RevokedKeys file.
    #[arg(long, default_value = "/etc/ssh/keygate.krl")]
    out: PathBuf,
    /// sshd's TrustedUserCAKeys file (openssh CA keys; the signature is checked with them).
    #[arg(long, default_value = "/etc/ssh/keygate_openssh_ca.pub")]
    ca_file: PathBuf,
    /// Write Prometheus gauges (version, generation and sync times) to this file.
    #[arg(long)]
    metrics_file: Option<PathBuf>,
    /// Sync once and exit (exit 1 if the KRL was refused or unreachable); implied by --krl-file.
    #[arg(long)]
    once: bool,
    /// Time between syncs when not --once.
    #[arg(long, default_value = "60s")]
    interval: String,
    /// Accept a KRL older than the installed one.
    #[arg(long)]
    allow_rollback: bool,
}

#[derive(clap::Args)]
struct StartArgs {
    /// Configuration file (keygate.yaml); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// State directory [default: ~/.local/share/keygate].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Services to run; only the all-in-one set (auth,proxy) exists so far.
    #[arg(long, value_delimiter = ',', default_value = "auth,proxy,node")]
    roles: Vec<String>,
    /// Public HTTPS address.
    #[arg(long)]
    web_addr: Option<SocketAddr>,
    /// SSH address.
    #[arg(long)]
    ssh_addr: Option<SocketAddr>,
    /// Auth's internal address (mTLS).
    #[arg(long)]
    auth_addr: Option<SocketAddr>,
    /// Where nodes dial their reverse tunnels.
    #[arg(long)]
    tunnel_addr: Option<SocketAddr>,
    /// Name of a new cluster.
    #[arg(long)]
    cluster_name: Option<String>,
    /// Read the first admin's password from this file instead of generating one.
    #[arg(long)]
    admin_password_file: Option<PathBuf>,
    /// This node's name [default: the host name].
    #[arg(long)]
    node_name: Option<String>,
    /// Labels this node reports: k=v,k=v.
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Node only: the proxy to join and connect through (HOST:PORT).
    #[arg(long)]
    proxy: Option<String>,
    /// Node only: file holding the join token (or set KEYGATE_JOIN_TOKEN; never on the command line).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Node only: the cluster's CA pin (sha256:…), printed by kgctl tokens add.
    #[arg(long)]
    ca_pin: Option<String>,
    /// Node only: also accept SSH directly on this address.
    #[arg(long)]
    listen_addr: Option<SocketAddr>,
    /// Command label, refreshed at every heartbeat: NAME=COMMAND (repeatable), e.g. --cmd-label 'kernel=uname -r'.
    #[arg(long = "cmd-label")]
    cmd_labels: Vec<String>,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn parse_labels(v: &[String]) -> Result<std::collections::BTreeMap<String, String>, String> {
    v.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("--labels {kv:?}: write key=value"))
        })
        .collect()
}

fn parse_cmd_labels(v: &[String]) -> Result<std::collections::BTreeMap<String, String>, String> {
    v.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, c)| (k.trim().to_owned(), c.to_owned()))
                .ok_or_else(|| format!("--cmd-label {kv:?}: write NAME=COMMAND"))
        })
        .collect()
}

async fn wait_for_signal(token: tokio_util::sync::CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    token.cancel();
}

/// `keygate krl-sync`.
async fn run_krl_sync(a: KrlSyncArgs) -> ExitCode {
    use keygate::krl_sync::{KrlSyncOptions, sync_once};
    let interval = match a.interval.parse::<keygate_types::Ttl>() {
        Ok(t) => std::time::Duration::from_secs(t.as_secs().max(1)),
        Err(e) => return fail(format!("--interval: {e}")),
    };
    // A KRL delivered as files is installed once.
    let once = a.once || a.krl_file.is_some();
    let opts = KrlSyncOptions {
        proxy: a.proxy,
        ca_pin: a.ca_pin,
        krl_file: a.krl_file,
        sig_file: a.sig_file,
        out: a.out,
        ca_file: a.ca_file,
        metrics_file: a.metrics_file,
        allow_rollback: a.allow_rollback,
    };
    let clock = keygate_clock::SystemClock::shared();
    loop {
        match sync_once(&opts, clock.now()).await {
            Ok(r) => {
                let _ = writeln!(
                    std::io::stdout(),
                    "KRL version {} installed in {} (generated {} s ago): {} revoked key ids, {} serials{}",
                    r.version,
                    opts.out.display(),
                    r.age_secs,
                    r.key_ids,
                    r.serials,
                    if r.ca_file_updated {
                        format!("; openssh CA keys written to {}", opts.ca_file.display())
                    } else {
                        String::new()
                    }
                );
                let _ = std::io::stdout().flush();
                if once {
                    return ExitCode::SUCCESS;
                }
            }
            Err(e) if once => {
                eprintln!("keygate krl-sync: {e}");
                return ExitCode::from(1);
            }
            Err(e) => tracing::warn!("krl-sync: {e}; keeping the installed KRL"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// `keygate start --roles node …`: join (once) and serve as a node.
async fn run_node(a: StartArgs) -> ExitCode {
    let labels = match parse_labels(&a.labels) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let Some(proxy) = a.proxy.clone() else {
        return fail("a node needs --proxy HOST:PORT (see kgctl tokens add)");
    };
    let token = match (&a.token_file, std::env::var("KEYGATE_JOIN_TOKEN").ok()) {
        (Some(p), _) => match std::fs::read_to_string(p) {
            Ok(t) => Some(t.trim().to_owned()),
            Err(e) => return fail(format!("cannot read --token-file {}: {e}", p.display())),
        },
        (None, env) => env,
    };
    let data_dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| default_data_dir().join("node"));
    let cfg = keygate_node_service::NodeConfig {
        data_dir,
        proxy: proxy.clone(),
        token,
        ca_pin: a.ca_pin.clone(),
        node_name: a.node_name.clone().unwrap_or_else(host_name),
        self_labels: labels,
        direct_addr: a.listen_addr,
        cmd_labels: match parse_cmd_labels(&a.cmd_labels) {
            Ok(c) => c,
            Err(e) => return fail(e),
        },
        clock: keygate_clock::SystemClock::shared(),
    };
    let token = tokio_util::sync::CancellationToken::new();
    let node = match keygate_node_service::start(cfg.clone(), token.clone()).await {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    let _ = writeln!(
        std::io::stdout(),
        "Node {:?} (id {}) is serving through {proxy}.",
        cfg.node_name,
        node.node_id
    );
    let _ = std::io::stdout().flush();
    wait_for_signal(token.clone()).await;
    // Give sessions a moment to hear they are ending.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    ExitCode::SUCCESS
}

fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.get(2) == Some(&uid.to_string().as_str()))
                    .then(|| f.first().map(|s| (*s).to_owned()))
                    .flatten()
            })
        })
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into())
}

fn default_data_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/keygate"),
        None => PathBuf::from("/var/lib/keygate"),
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("keygate: {msg}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = if cli.debug { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    keygate_tls::install_crypto_provider();
    match cli.cmd {
        Cmd::KrlSync(a) => run_krl_sync(a).await,
        Cmd::Configure => {
            let _ = std::io::stdout().write_all(SAMPLE.as_bytes());
            ExitCode::SUCCESS
        }
        Cmd::Version => {
            let _ = writeln!(std::io::stdout(), "keygate {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Cmd::Start(a) => run_start(a).await,
    }
}

async fn run_start(a: StartArgs) -> ExitCode {
    if a.roles
        .iter()
        .any(|r| !["auth", "proxy", "node"].contains(&r.as_str()))
    {
        return fail(format!(
            "unknown role in --roles {:?}: use auth, proxy, node",
            a.roles
        ));
    }
    let has = |r: &str| a.roles.iter().any(|x| x == r);
    if has("node") && !has("auth") && !has("proxy") {
        return run_node(a).await;
    }
    if !(has("auth") && has("proxy")) {
        return fail(
            "running auth or proxy alone is not supported yet: use --roles auth,proxy[,node] or --roles node",
        );
    }
    let labels = match parse_labels(&a.labels) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let cmd_labels = match parse_cmd_labels(&a.cmd_labels) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let local_node = has("node").then(|| keygate::LocalNode {
        name: a.node_name.clone().unwrap_or_else(host_name),
        labels,
        cmd_labels,
    });
    let mut cfg = match &a.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => return fail(e),
        },
        None => Config::default(),
    };
    cfg.data_dir = a
        .data_dir
        .or(cfg.data_dir)
        .or_else(|| Some(default_data_dir()));
    cfg.cluster_name = a.cluster_name.or(cfg.cluster_name);
    cfg.auth.listen_addr = a.auth_addr.or(cfg.auth.listen_addr);
    cfg.proxy.web_addr = a.web_addr.or(cfg.proxy.web_addr);
    cfg.proxy.ssh_addr = a.ssh_addr.or(cfg.proxy.ssh_addr);
    cfg.proxy.tunnel_addr = a.tunnel_addr.or(cfg.proxy.tunnel_addr);
    let admin_password = match &a.admin_password_file {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(s) => {
                let pw = s.trim_end_matches(['\n', '\r']).to_owned();
                if let Err(e) =
                    keygate_authn::check_password_policy(&keygate_authn::Password::new(pw.clone()))
                {
                    return fail(format!("--admin-password-file {}: {e}", p.display()));
                }
                Some(pw)
            }
            Err(e) => {
                return fail(format!(
                    "cannot read --admin-password-file {}: {e}",
                    p.display()
                ));
            }
        },
        None => None,
    };
    let login = os_user();
    let opts = StartOptions {
        config: cfg,
        admin_login: login.clone(),
        admin_password,
        clock: keygate_clock::SystemClock::shared(),
        argon2: keygate_authn::Argon2Params::OWASP,
        local_node,
    };
    let mut running = match start(opts).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut out = String::new();
    out.push_str(&format!(
        "Keygate cluster {:?} is running.\n",
        running.cluster
    ));
    out.push_str(&format!(
        "Web address: https://{}\n",
        keygate_proxy_service::advertised(running.web_addr)
    ));
    out.push_str(&format!("SSH address: {}\n", running.ssh_addr));
    out.push_str(&format!("Auth address: {}\n", running.auth_addr));
    out.push_str(&format!("Tunnel address: {}\n", running.tunnel_addr));
    out.push_str(&format!("CA pin: {}\n", running.ca_pin));
    out.push_str(&format!("Data dir: {}\n", running.data_dir.display()));
    if let Some(pw) = &running.first.admin_password {
        out.push_str(&format!(
            "Admin user: admin (logins: {login})\nAdmin one-time password: {pw}\n"
        ));
    }
    if let Some(uri) = &running.first.admin_totp_uri {
        out.push_str(&format!(
            "Admin TOTP: {uri}\n  (add it to an authenticator app now; it is shown only once. kg login asks for its code with --otp)\n"
        ));
    }
    out.push_str(&format!(
        "Log in with:\n  kg login --proxy {} --user admin --ca-pin {} --otp CODE\n",
        keygate_proxy_service::advertised(running.web_addr),
        running.ca_pin
    ));
    if login != "root" {
        out.push_str(&format!(
            "Note: keygate is not running as root, so sessions can only open as {login}.\n"
        ));
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    let _ = std::io::stdout().flush();
    tokio::spawn(wait_for_signal(running.shutdown_token()));
    let clean = running.wait().await;
    running.stop().await;
    if clean {
        ExitCode::SUCCESS
    } else {
        fail("a service stopped unexpectedly; see the log above")
    }
}
