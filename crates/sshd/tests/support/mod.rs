//! A Keygate node SSH server on a loopback port, fixture CAs, certificates
//! and the real OpenSSH client, for the integration tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keygate_ca::{CaKind, CertAuthority, HostCertRequest, UserCertRequest};
use keygate_clock::{Clock, TestClock};
use keygate_sshd::{
    AuthRequest, Authorizer, ServerSettings, SessionEvents, SessionGrant, SshEvent, SshServer,
};
use keygate_testkit::ClientKey;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const NODE_NAME: &str = "node-1";
pub const NODE_ID: &str = "2f9b7c1e-node";

/// Records every event and all output.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<SshEvent>>,
    pub output: Mutex<Vec<u8>>,
    pub resizes: Mutex<Vec<(u32, u32)>>,
}

impl SessionEvents for Recorder {
    fn event(&self, ev: SshEvent) {
        self.events.lock().unwrap().push(ev);
    }
    fn output(&self, _session_id: &str, data: &[u8]) {
        self.output.lock().unwrap().extend_from_slice(data);
    }
    fn resize(&self, _session_id: &str, cols: u32, rows: u32) {
        self.resizes.lock().unwrap().push((cols, rows));
    }
}

impl Recorder {
    pub fn events(&self) -> Vec<SshEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) for an event matching `pred`.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&SshEvent) -> bool) -> SshEvent {
        let start = Instant::now();
        loop {
            if let Some(ev) = self.events().into_iter().find(|e| pred(e)) {
                return ev;
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!("no {what} event; got: {:#?}", self.events());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The reasons of all AuthFailed events so far.
    pub fn auth_failures(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                SshEvent::AuthFailed { reason, .. } => Some(reason),
                _ => None,
            })
            .collect()
    }
}

/// An authorizer whose decision the test sets.
pub struct TestAuthz {
    pub trusted: Vec<String>,
    pub decision: Mutex<Result<SessionGrant, String>>,
    pub requests: Mutex<Vec<AuthRequest>>,
}

#[async_trait::async_trait]
impl Authorizer for TestAuthz {
    fn trusted_user_ca_keys(&self) -> Vec<String> {
        self.trusted.clone()
    }
    async fn authorize(&self, req: &AuthRequest) -> Result<SessionGrant, String> {
        self.requests.lock().unwrap().push(req.clone());
        self.decision.lock().unwrap().clone()
    }
}

impl TestAuthz {
    pub fn set(&self, decision: Result<SessionGrant, String>) {
        *self.decision.lock().unwrap() = decision;
    }
}

/// How to start a node.
pub struct NodeOptions {
    /// Principals of the host certificate (None: no host certificate).
    pub host_cert_principals: Option<Vec<String>>,
    pub max_unauthenticated: usize,
    pub max_sessions: usize,
    pub auth_timeout: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            host_cert_principals: Some(vec![NODE_ID.into(), NODE_NAME.into()]),
            max_unauthenticated: 256,
            max_sessions: 1024,
            auth_timeout: Duration::from_secs(30),
        }
    }
}

/// A running node SSH server.
pub struct Node {
    pub port: u16,
    pub server: SshServer,
    pub events: Arc<Recorder>,
    pub authz: Arc<TestAuthz>,
    pub clock: TestClock,
    pub user_ca: CertAuthority,
    pub host_ca: CertAuthority,
    pub dir: tempfile::TempDir,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.task.abort();
    }
}

/// A grant allowing everything.
pub fn full_grant() -> SessionGrant {
    SessionGrant {
        port_forwarding: true,
        agent_forwarding: true,
        idle_timeout: None,
        disconnect_at: None,
    }
}

impl Node {
    pub async fn start() -> Node {
        Self::start_with(NodeOptions::default()).await
    }

    pub async fn start_with(opts: NodeOptions) -> Node {
        let clock = TestClock::starting_now();
        let now = clock.now();
        let user_ca = CertAuthority::generate(CaKind::User, "test", now).unwrap();
        let host_ca = CertAuthority::generate(CaKind::Host, "test", now).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let host = ClientKey::generate_named(dir.path(), "host_key").unwrap();
        let host_key = russh::keys::PrivateKey::from_openssh(
            std::fs::read_to_string(&host.private_key).unwrap(),
        )
        .unwrap();
        let mut settings = ServerSettings::new(host_key, NODE_NAME, NODE_ID);
        settings.max_unauthenticated = opts.max_unauthenticated;
        settings.auth_timeout = opts.auth_timeout;
        settings.max_sessions = opts.max_sessions;
        if let Some(principals) = opts.host_cert_principals {
            let line = host_ca
                .sign_host_ssh(&HostCertRequest {
                    public_key: host.public_line.clone(),
                    key_id: NODE_ID.into(),
                    principals,
                    valid_after: now - time::Duration::minutes(1),
                    valid_before: now + time::Duration::hours(1),
                    serial: 1,
                    extensions: BTreeMap::from([("role@keygate".into(), "node".into())]),
                })
                .unwrap();
            settings.host_cert = Some(russh::keys::Certificate::from_openssh(&line).unwrap());
        }
        let events = Arc::new(Recorder::default());
        let authz = Arc::new(TestAuthz {
            trusted: user_ca.trusted_ssh_keys(),
            decision: Mutex::new(Ok(full_grant())),
            requests: Mutex::new(Vec::new()),
        });
        let server = SshServer::new(settings, authz.clone(), events.clone(), clock.shared());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shutdown = CancellationToken::new();
        let task = {
            let (server, shutdown) = (server.clone(), shutdown.clone());
            tokio::spawn(async move { server.serve_tcp(listener, shutdown).await })
        };
        Node {
            port,
            server,
            events,
            authz,
            clock,
            user_ca,
            host_ca,
            dir,
            shutdown,
            task,
        }
    }

    /// A client key with a user certificate for `principals`, valid now
    /// for an hour, with the usual extensions.
    pub fn client(&self, name: &str, principals: &[&str]) -> Client {
        let now = self.clock.now();
        self.client_with(name, |req| {
            req.principals = principals.iter().map(|p| (*p).to_owned()).collect();
            req.valid_after = now - time::Duration::minutes(1);
            req.valid_before = now + time::Duration::hours(1);
        })
    }

    /// Like [`Self::client`], with the request adjusted by `tweak`.
    pub fn client_with(&self, name: &str, tweak: impl FnOnce(&mut UserCertRequest)) -> Client {
        let key = ClientKey::generate_named(self.dir.path(), name).unwrap();
        let now = self.clock.now();
        let mut req = UserCertRequest {
            public_key: key.public_line.clone(),
            key_id: "alice".into(),
            principals: vec![],
            valid_after: now - time::Duration::minutes(1),
            valid_before: now + time::Duration::hours(1),
            serial: 42,
            extensions: BTreeMap::from([
                ("permit-pty".into(), String::new()),
                ("permit-port-forwarding".into(), String::new()),
                ("permit-agent-forwarding".into(), String::new()),
                ("roles@keygate".into(), r#"["dev"]"#.into()),
            ]),
        };
        tweak(&mut req);
        let line = self.user_ca.sign_user_ssh(&req).unwrap();
        let cert = key.write_cert(&line).unwrap();
        Client { key, cert, line }
    }

    /// Stops accepting; live sessions are told the node is shutting down.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Logs in with russh's client (for requests OpenSSH never sends).
    pub async fn russh_client(
        &self,
        client: &Client,
        login: &str,
    ) -> (bool, russh::client::Handle<AnyHost>) {
        let private = russh::keys::PrivateKey::from_openssh(
            std::fs::read_to_string(&client.key.private_key).unwrap(),
        )
        .unwrap();
        let cert = russh::keys::Certificate::from_openssh(&client.line).unwrap();
        let config = Arc::new(russh::client::Config::default());
        let mut handle = russh::client::connect(config, ("127.0.0.1", self.port), AnyHost)
            .await
            .unwrap();
        let ok = handle
            .authenticate_openssh_cert(login, Arc::new(private), cert)
            .await
            .unwrap()
            .success();
        (ok, handle)
    }

    /// Runs `ssh login@127.0.0.1 command` with `client`'s certificate.
    pub async fn ssh(&self, client: &Client, login: &str, extra: &[&str], command: &str) -> Output {
        let mut cmd = ssh_command(self.port, client, extra);
        cmd.arg(format!("{login}@127.0.0.1")).arg(command);
        tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("ssh hung")
            .unwrap()
    }

    /// Asserts that a good login works (the server kept serving).
    pub async fn assert_still_serving(&self, client: &Client, login: &str) {
        let out = self.ssh(client, login, &[], "echo still-serving").await;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "still-serving",
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A client key and its certificate on disk.
pub struct Client {
    pub key: ClientKey,
    pub cert: PathBuf,
    /// The certificate as an OpenSSH line.
    pub line: String,
}

/// A russh client handler that accepts any host key.
pub struct AnyHost;

impl russh::client::Handler for AnyHost {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// The OpenSSH client, authenticating only with `client`'s key and
/// certificate, no config files, no agent, host key not checked unless
/// `extra` says otherwise.
pub fn ssh_command(port: u16, client: &Client, extra: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(keygate_testkit::SSH);
    cmd.args(["-F", "/dev/null", "-o", "BatchMode=yes"]);
    if !extra.iter().any(|a| a.starts_with("StrictHostKeyChecking")) {
        cmd.args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ]);
    }
    if !extra.iter().any(|a| a.starts_with("IdentityAgent")) {
        cmd.args(["-o", "IdentityAgent=none"]);
    }
    cmd.args(["-o", "IdentitiesOnly=yes"])
        .args([
            "-o",
            "PreferredAuthentications=publickey",
            "-o",
            "ConnectTimeout=10",
        ])
        .arg("-i")
        .arg(&client.key.private_key)
        .arg("-o")
        .arg(format!("CertificateFile={}", client.cert.display()))
        .args(["-p", &port.to_string()]);
    for e in extra {
        cmd.args(["-o", e]);
    }
    cmd.env_remove("SSH_AUTH_SOCK").kill_on_drop(true);
    cmd
}

/// Common `-o` options for sftp/scp (same authentication as [`ssh_command`]).
pub fn transfer_options(client: &Client) -> Vec<String> {
    vec![
        "-F".into(),
        "/dev/null".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=no".into(),
        "-o".into(),
        "UserKnownHostsFile=/dev/null".into(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        "IdentityAgent=none".into(),
        "-i".into(),
        client.key.private_key.display().to_string(),
        "-o".into(),
        format!("CertificateFile={}", client.cert.display()),
    ]
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Random bytes (no RNG crate needed: /dev/urandom).
pub fn random_file(path: &Path, len: usize) -> Vec<u8> {
    use std::io::Read;
    let mut data = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    std::fs::write(path, &data).unwrap();
    data
}
