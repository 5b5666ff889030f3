//! The peers the server-access benchmarks compare: the real `keygate`
//! binaries (an all-in-one daemon plus a standalone node process that
//! also listens directly), a `kg` profile logged in as the first admin,
//! an OpenSSH `sshd` that trusts the same user CA, so one certificate
//! opens both, and a second `sshd` registered as an agentless node that
//! trusts only the openssh CA, reached through the proxy's SSH relay.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use keygate_clock::{SharedClock, SystemClock};
use keygate_testkit::{ClientKey, SSH_KEYGEN, Sshd, SshdConfig, free_port};
use tempfile::TempDir;

use super::client::{CIPHER, KEX_ALGORITHM};
use crate::BenchError;

/// The standalone node's name (and its host certificate's principal).
pub const NODE: &str = "n2";
/// The agentless node's name (and its host certificate's principal).
pub const RELAY_NODE: &str = "ag1";
/// The login every session uses: the admin's login when keygate runs as
/// root, and a login sshd accepts a certificate for.
pub const LOGIN: &str = "root";
/// How long the daemon or the node may take to come up.
const STARTUP: Duration = Duration::from_secs(30);

/// Path of a workspace binary: next to the running executable (a `bin`
/// target), or one level up (a test in `deps/`).
pub(crate) fn workspace_bin(name: &str) -> Result<PathBuf, BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::setup("find this executable", e))?;
    let mut dirs = exe.ancestors().skip(1).take(2);
    dirs.find_map(|d| Some(d.join(name)).filter(|p| p.is_file()))
        .ok_or_else(|| {
            BenchError::Setup(format!(
                "{name} is not built next to {}: run `cargo build --release -p keygate -p kg -p kgctl` \
                 (or without --release for the tests) first",
                exe.display()
            ))
        })
}

/// A child process, killed and reaped on drop.
#[derive(Debug)]
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Everything running for the benchmarks. Field order is drop order:
/// processes stop before the directory goes.
#[derive(Debug)]
pub struct Peers {
    /// The standalone node process (`--roles node`).
    node: Killed,
    /// The all-in-one daemon (auth + proxy + its own node).
    daemon: Killed,
    /// OpenSSH's server trusting Keygate's user CA.
    pub sshd: Sshd,
    /// The agentless node [`RELAY_NODE`]: an sshd trusting only the
    /// openssh CA, with a host certificate for that name.
    pub relay_sshd: Sshd,
    /// Port the standalone node accepts SSH on directly.
    pub node_port: u16,
    /// The proxy's `host:port`.
    pub proxy: String,
    /// `KEYGATE_HOME` of the logged-in `kg` profile.
    pub home: PathBuf,
    /// The admin's private key.
    pub key: PathBuf,
    /// The admin's SSH certificate.
    pub cert: PathBuf,
    /// The profile's `known_hosts` (trusts the host CA).
    pub known_hosts: PathBuf,
    /// Key of the jump hop through sshd (see [`jump_identity`]).
    pub jump_key: PathBuf,
    /// Its certificate.
    pub jump_cert: PathBuf,
    /// `kg`, for `kg proxy ssh`.
    pub kg: PathBuf,
    /// Scratch space (big file, logs); removed last.
    pub dir: TempDir,
}

/// What the daemon printed on first start.
#[derive(Debug, Default)]
struct Banner {
    /// `host:port` of the proxy.
    proxy: String,
    /// `sha256:…` pin of the cluster CA.
    ca_pin: String,
    /// One-time admin password.
    password: String,
    /// Admin TOTP `otpauth://` URI.
    totp_uri: String,
}

impl Peers {
    /// Starts the daemon, the standalone node and sshd, and logs in.
    pub fn start() -> Result<Self, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("keygate-bench-ssh-")
            .tempdir()
            .map_err(|e| BenchError::setup("create a temp dir", e))?;
        let keygate = workspace_bin("keygate")?;
        let kg = workspace_bin("kg")?;
        let kgctl = workspace_bin("kgctl")?;
        let data = dir.path().join("data");
        let (daemon, banner) = start_daemon(&keygate, &data, dir.path())?;
        let home = dir.path().join("home");
        login(&kg, &home, &banner)?;

        let token = run_ok(
            Command::new(&kgctl)
                .arg("--data-dir")
                .arg(&data)
                .args(["tokens", "add", "--format", "json"]),
            "kgctl tokens add",
        )?;
        let token: serde_json::Value = serde_json::from_slice(&token.stdout)
            .map_err(|e| BenchError::setup("parse kgctl tokens add", e))?;
        let token = token
            .get("token")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| BenchError::Setup("kgctl tokens add printed no token".into()))?;
        let node_port = free_port().map_err(|e| BenchError::setup("pick a port", e))?;
        let node = start_node(&keygate, dir.path(), &banner, token, node_port)?;

        let ca = run_ok(
            Command::new(&kgctl)
                .arg("--data-dir")
                .arg(&data)
                .args(["auth", "export", "--type", "user"]),
            "kgctl auth export --type user",
        )?;
        let user_ca = String::from_utf8_lossy(&ca.stdout).trim().to_owned();
        let (jump, jump_ca) = jump_identity(dir.path())?;
        let sshd = Sshd::start(SshdConfig {
            trusted_user_ca_keys: vec![user_ca, jump_ca],
            // Many sessions start at once in B8; sshd's default drops
            // unauthenticated connections beyond 10.
            extra: sshd_limits(),
            ..SshdConfig::default()
        })
        .map_err(|e| BenchError::setup("start sshd", e))?;
        let relay_sshd = start_agentless(&kgctl, &data, dir.path())?;

        let profile = home.join(&banner.proxy);
        Ok(Self {
            node: Killed(node),
            daemon: Killed(daemon),
            sshd,
            relay_sshd,
            node_port,
            proxy: banner.proxy,
            key: profile.join("keys").join("admin"),
            cert: profile.join("keys").join("admin-cert.pub"),
            known_hosts: profile.join("known_hosts"),
            jump_cert: jump.cert_path(),
            jump_key: jump.private_key,
            home,
            kg,
            dir,
        })
    }

    /// Process id of the standalone node.
    pub fn node_pid(&self) -> u32 {
        self.node.0.id()
    }

    /// Process id of the all-in-one daemon.
    pub fn daemon_pid(&self) -> u32 {
        self.daemon.0.id()
    }
}

/// Connection limits both sshd peers get, so bursts of sessions are not
/// dropped (sshd's default refuses unauthenticated connections beyond 10).
fn sshd_limits() -> Vec<String> {
    vec!["MaxStartups 512".into(), "MaxSessions 512".into()]
}

/// Registers [`RELAY_NODE`] as an agentless node and starts its sshd as
/// docs/agentless.md sets one up: `TrustedUserCAKeys` = the openssh CA,
/// a host key with a certificate from `kgctl auth sign --host`, plus the
/// bench's pinned cipher and key exchange. The relay logs in with a
/// 1-minute openssh-CA certificate for [`LOGIN`], so this sshd accepts
/// the bench's sessions as the other one does. No KRL: an empty one
/// changes nothing per byte, and the relay's hop is what is measured.
fn start_agentless(kgctl: &Path, data: &Path, dir: &Path) -> Result<Sshd, BenchError> {
    let kgctl = |args: &[&str], what: &str| {
        run_ok(
            Command::new(kgctl).arg("--data-dir").arg(data).args(args),
            what,
        )
    };
    let port = free_port().map_err(|e| BenchError::setup("pick a port", e))?;
    let address = format!("127.0.0.1:{port}");
    kgctl(
        &[
            "nodes",
            "add",
            "--openssh",
            "--name",
            RELAY_NODE,
            "--address",
            &address,
        ],
        "kgctl nodes add --openssh",
    )?;
    let host = ClientKey::generate_named(dir, "agentless-host")
        .map_err(|e| BenchError::setup("make the agentless host key", e))?;
    let cert = host.cert_path();
    kgctl(
        &[
            "auth",
            "sign",
            "--host",
            RELAY_NODE,
            "--key",
            &host.public_key.to_string_lossy(),
            "--out",
            &cert.to_string_lossy(),
        ],
        "kgctl auth sign --host",
    )?;
    let ca = kgctl(
        &["auth", "export", "--type", "openssh"],
        "kgctl auth export --type openssh",
    )?;
    let openssh_ca: Vec<String> = String::from_utf8_lossy(&ca.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if openssh_ca.is_empty() {
        return Err(BenchError::Setup(
            "kgctl auth export --type openssh printed no CA key".into(),
        ));
    }
    let mut extra = sshd_limits();
    extra.push(format!("HostCertificate {}", cert.display()));
    // The relay's own client would pick chacha20-poly1305 (russh's first
    // choice); the hop it opens gets the cipher and key exchange every
    // other hop of every route uses, so routes differ only in who relays.
    extra.push(format!("Ciphers {CIPHER}"));
    extra.push(format!("KexAlgorithms {KEX_ALGORITHM}"));
    Sshd::start(SshdConfig {
        trusted_user_ca_keys: openssh_ca,
        extra,
        host_key: Some(host.private_key),
        port: Some(port),
        ..SshdConfig::default()
    })
    .map_err(|e| BenchError::setup("start the agentless node's sshd", e))
}

/// A key and certificate for the jump hop through sshd, signed by a CA of
/// its own with every `permit-*` extension: `-W` needs port forwarding,
/// which Keygate's certificate carries only when a role allows it. The
/// handshake costs the same (Ed25519 key, Ed25519 CA). Returns the key
/// and the CA's public line.
fn jump_identity(dir: &Path) -> Result<(ClientKey, String), BenchError> {
    let ca = ClientKey::generate_named(dir, "jump-ca")
        .map_err(|e| BenchError::setup("make the jump CA", e))?;
    let key = ClientKey::generate_named(dir, "jump")
        .map_err(|e| BenchError::setup("make the jump key", e))?;
    run_ok(
        Command::new(SSH_KEYGEN)
            .args(["-q", "-s"])
            .arg(&ca.private_key)
            .args(["-I", "bench-jump", "-n", LOGIN, "-V", "-5m:+1d"])
            .arg(&key.public_key),
        "ssh-keygen -s (jump certificate)",
    )?;
    Ok((key, ca.public_line))
}

/// Runs a command to completion, failing with its output on a non-zero
/// exit.
pub(crate) fn run_ok(cmd: &mut Command, what: &str) -> Result<Output, BenchError> {
    let o = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BenchError::setup(what, e))?;
    if o.status.success() {
        Ok(o)
    } else {
        Err(BenchError::Setup(format!(
            "{what} exited with {}: {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )))
    }
}

/// `keygate start` on free loopback ports; returns once it printed its
/// banner.
fn start_daemon(keygate: &Path, data: &Path, dir: &Path) -> Result<(Child, Banner), BenchError> {
    let port = || free_port().map_err(|e| BenchError::setup("pick a port", e));
    let log = std::fs::File::create(dir.join("daemon.log"))
        .map_err(|e| BenchError::setup("create daemon.log", e))?;
    let mut child = Command::new(keygate)
        .arg("start")
        .arg("--data-dir")
        .arg(data)
        .arg("--web-addr")
        .arg(format!("127.0.0.1:{}", port()?))
        .arg("--auth-addr")
        .arg(format!("127.0.0.1:{}", port()?))
        .arg("--tunnel-addr")
        .arg(format!("127.0.0.1:{}", port()?))
        .args(["--node-name", "n1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| BenchError::setup("run keygate start", e))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(BenchError::Setup("keygate start has no stdout".into()));
    };
    let mut b = Banner::default();
    // The banner ends with "Log in with:"; a daemon that dies closes the
    // pipe, which ends the loop too.
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(v) = line.strip_prefix("CA pin: ") {
            v.trim().clone_into(&mut b.ca_pin);
        } else if let Some(v) = line.strip_prefix("Web address: https://") {
            v.trim().clone_into(&mut b.proxy);
        } else if let Some(v) = line.strip_prefix("Admin one-time password: ") {
            v.trim().clone_into(&mut b.password);
        } else if let Some(v) = line.strip_prefix("Admin TOTP: ") {
            v.trim().clone_into(&mut b.totp_uri);
        }
        if line.starts_with("Log in with:") {
            break;
        }
    }
    if b.ca_pin.is_empty() || b.password.is_empty() || b.totp_uri.is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(BenchError::Setup(format!(
            "keygate start printed no complete first-start banner; see {}",
            dir.join("daemon.log").display()
        )));
    }
    Ok((child, b))
}

/// `kg login` as the first admin with password + TOTP.
fn login(kg: &Path, home: &Path, b: &Banner) -> Result<(), BenchError> {
    let secret = crate::totp_secret_from_uri(&b.totp_uri)
        .map_err(|e| BenchError::setup("read the admin TOTP URI", e))?;
    let clock = SystemClock::new();
    let code = keygate_authn::totp_code_at(&secret, keygate_clock::Clock::now(&clock))
        .map_err(|e| BenchError::setup("compute a TOTP code", e))?;
    let mut child = Command::new(kg)
        .env("KEYGATE_HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .args(["login", "--proxy", &b.proxy, "--user", "admin"])
        .args(["--password-stdin", "--ca-pin", &b.ca_pin, "--otp", &code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BenchError::setup("run kg login", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{}", b.password).map_err(|e| BenchError::setup("kg login stdin", e))?;
    }
    let o = child
        .wait_with_output()
        .map_err(|e| BenchError::setup("wait for kg login", e))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(BenchError::Setup(format!(
            "kg login: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )))
    }
}

/// `keygate start --roles node` joining with `token` (from a 0600 file),
/// also listening on `port`; returns once it says it is serving.
fn start_node(
    keygate: &Path,
    dir: &Path,
    b: &Banner,
    token: &str,
    port: u16,
) -> Result<Child, BenchError> {
    let token_file = dir.join("join-token");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&token_file)
        .map_err(|e| BenchError::setup("write the join token", e))?;
    writeln!(f, "{token}").map_err(|e| BenchError::setup("write the join token", e))?;
    let log = std::fs::File::create(dir.join("node.log"))
        .map_err(|e| BenchError::setup("create node.log", e))?;
    let mut child = Command::new(keygate)
        .args([
            "start",
            "--roles",
            "node",
            "--proxy",
            &b.proxy,
            "--token-file",
        ])
        .arg(&token_file)
        .args(["--ca-pin", &b.ca_pin, "--node-name", NODE])
        .arg("--listen-addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.join("node-data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| BenchError::setup("run keygate start --roles node", e))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(BenchError::Setup("the node has no stdout".into()));
    };
    // Read on a thread so a silent node cannot hang the benchmark; the
    // thread keeps draining stdout afterwards.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("is serving") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(STARTUP).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(BenchError::Setup(format!(
            "node {NODE} did not say it is serving within {STARTUP:?}; see {}",
            dir.join("node.log").display()
        )));
    }
    Ok(child)
}

/// The wall clock and monotonic clock the benchmarks time with.
pub(crate) fn clock() -> SharedClock {
    SystemClock::shared()
}
