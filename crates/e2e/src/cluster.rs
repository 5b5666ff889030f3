//! A small real cluster for server-access tests: the all-in-one daemon
//! (auth + proxy + node `n1`, labels `env=dev`), a second node process `n2`
//! (`env=prod`) that joined with a token and is reachable only through its
//! reverse tunnel, a throw-away OS login, and a `kg` profile logged in as
//! `admin` with that login.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use keygate_testkit::OsUser;
use tempfile::TempDir;

use crate::tmux::shell_quote;
use crate::{Daemon, bin, run, totp_now, wait_until};

/// Name and labels of the node inside the all-in-one daemon.
pub const LOCAL_NODE: (&str, &str) = ("n1", "env=dev");
/// Name and labels of the separate, tunnel-only node.
pub const REMOTE_NODE: (&str, &str) = ("n2", "env=prod");
/// How long a node may take to join and show up in `kg ls`.
const NODE_READY: Duration = Duration::from_secs(15);
/// How long a process gets to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(5);

/// stdout then stderr of a finished command, for assertions and messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Sends SIGTERM and waits up to `grace` for the exit; kills after that.
/// The exit code, if it exited by itself.
fn stop(child: &mut Child, grace: Duration) -> Option<i32> {
    if let Ok(Some(st)) = child.try_wait() {
        return st.code();
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let code = wait_until(grace, Duration::from_millis(50), || {
        child.try_wait().ok().flatten()
    });
    match code {
        Some(st) => st.code(),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

/// Reads `out` line by line on a thread until `done` matches a line or
/// `timeout` passes; the thread keeps draining the pipe afterwards so the
/// child never blocks on a full pipe.
fn read_until(
    out: impl Read + Send + 'static,
    timeout: Duration,
    done: fn(&str) -> bool,
) -> Result<Vec<String>, Vec<String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let found = wait_until(timeout, Duration::from_millis(20), || {
        while let Ok(line) = rx.try_recv() {
            let hit = done(&line);
            seen.push(line);
            if hit {
                return Some(());
            }
        }
        None
    });
    match found {
        Some(()) => Ok(seen),
        None => Err(seen),
    }
}

/// A `keygate start --roles node` process, stopped on drop.
pub struct NodeAgent {
    /// The process.
    pub child: Child,
    /// Its stderr log.
    pub log: PathBuf,
    /// The node name it registered.
    pub name: String,
}

impl NodeAgent {
    /// Joins `proxy` with a single-use token (written to a 0600 file, never
    /// on the command line) and waits until the node says it is serving.
    pub fn join(
        dir: &Path,
        proxy: &str,
        token: &str,
        ca_pin: &str,
        name: &str,
        labels: &str,
    ) -> Result<NodeAgent, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let token_file = dir.join("join-token");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&token_file)
            .map_err(|e| format!("{}: {e}", token_file.display()))?;
        writeln!(f, "{token}").map_err(|e| e.to_string())?;
        let log = dir.join("node.log");
        let err = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut child = Command::new(bin("keygate"))
            .args(["start", "--roles", "node", "--proxy", proxy, "--token-file"])
            .arg(&token_file)
            .args(["--ca-pin", ca_pin, "--node-name", name, "--labels", labels])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run keygate: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let ready = read_until(stdout, NODE_READY, |l| l.contains("is serving"));
        let node = NodeAgent {
            child,
            log,
            name: name.to_owned(),
        };
        match ready {
            Ok(_) => Ok(node),
            Err(lines) => Err(format!(
                "node {name} did not start within {NODE_READY:?}: {lines:?}\n{}",
                std::fs::read_to_string(&node.log).unwrap_or_default()
            )),
        }
    }

    /// SIGTERM, then the exit code (killed after a grace period: `None`).
    pub fn terminate(&mut self) -> Option<i32> {
        stop(&mut self.child, GRACE)
    }
}

impl Drop for NodeAgent {
    fn drop(&mut self) {
        // Gracefully, so its sessions end before their OS user is deleted.
        stop(&mut self.child, GRACE);
    }
}

/// The two-node cluster. Field order is drop order: processes stop before
/// the OS user and the directories go.
pub struct Cluster {
    /// Node `n2`, its own process, reachable only through its tunnel.
    pub remote: NodeAgent,
    /// The all-in-one daemon (auth, proxy, node `n1`).
    pub daemon: Daemon,
    /// The OS login sessions run as (`kgt-…`).
    pub user: OsUser,
    /// `KEYGATE_HOME` of the `kg` profile.
    pub home: PathBuf,
    /// The daemon's data dir (for `kgctl --data-dir`).
    pub data: PathBuf,
    /// The cluster name (`kg status`).
    pub name: String,
    /// Holds every file of the test; removed last.
    pub tmp: TempDir,
}

impl Cluster {
    /// Starts the daemon and the second node, creates the OS login, logs
    /// `admin` in with password + TOTP, gives admin the login, and waits
    /// until `kg ls` shows both nodes.
    pub fn start() -> Result<Cluster, String> {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data = tmp.path().join("data");
        let home = tmp.path().join("home");
        let daemon = Daemon::start(&data, &Self::daemon_args())?;
        let b = daemon.banner.clone();
        let (Some(password), Some(uri)) = (b.admin_password, b.admin_totp_uri) else {
            return Err(format!(
                "first start printed no admin credentials: {:?}",
                b.lines
            ));
        };
        let user = OsUser::create().map_err(|e| e.to_string())?;
        let kg = |home: &Path| {
            let mut c = Command::new(bin("kg"));
            c.env("KEYGATE_HOME", home).env_remove("SSH_AUTH_SOCK");
            c
        };
        let o = run(
            kg(&home).args([
                "login",
                "--proxy",
                &b.proxy,
                "--user",
                "admin",
                "--password-stdin",
                "--ca-pin",
                &b.ca_pin,
                "--otp",
                &totp_now(&uri),
            ]),
            &format!("{password}\n"),
        );
        if !o.status.success() {
            return Err(format!("kg login: {}", text(&o)));
        }
        let o = run(
            Command::new(bin("kgctl"))
                .arg("--data-dir")
                .arg(&data)
                .args(["tokens", "add", "--format", "json"]),
            "",
        );
        let t: serde_json::Value = serde_json::from_slice(&o.stdout)
            .map_err(|e| format!("kgctl tokens add: {e}: {}", text(&o)))?;
        let field = |k: &str| {
            t.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or(format!("no {k} in {t}"))
        };
        let remote = NodeAgent::join(
            &tmp.path().join(REMOTE_NODE.0),
            &field("proxy")?,
            &field("token")?,
            &field("ca_pin")?,
            REMOTE_NODE.0,
            REMOTE_NODE.1,
        )?;
        let mut cluster = Cluster {
            remote,
            daemon,
            user,
            home,
            data,
            name: String::new(),
            tmp,
        };
        let status = cluster.kg_json(&["status"])?;
        cluster.name = status
            .get("cluster")
            .and_then(serde_json::Value::as_str)
            .ok_or(format!("kg status names no cluster: {status}"))?
            .to_owned();
        let login = cluster.login().to_owned();
        cluster.set_admin(&["admin"], &["root", &login])?;
        let want = [LOCAL_NODE.0, REMOTE_NODE.0];
        wait_until(NODE_READY, Duration::from_millis(200), || {
            let names = cluster.node_names().ok()?;
            want.iter()
                .all(|n| names.iter().any(|x| x == n))
                .then_some(())
        })
        .ok_or_else(|| {
            format!(
                "kg ls did not show {want:?} within {NODE_READY:?}: {:?}",
                cluster.node_names()
            )
        })?;
        Ok(cluster)
    }

    /// The daemon's flags besides data dir and ports.
    fn daemon_args() -> [&'static str; 4] {
        ["--node-name", LOCAL_NODE.0, "--labels", LOCAL_NODE.1]
    }

    /// The OS login sessions run as.
    pub fn login(&self) -> &str {
        self.user.name()
    }

    /// `kg` with this cluster's profile and no ssh-agent.
    pub fn kg(&self) -> Command {
        let mut c = Command::new(bin("kg"));
        c.env("KEYGATE_HOME", &self.home)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
        c
    }

    /// `kgctl --data-dir D` (the admin socket).
    pub fn kgctl(&self) -> Command {
        let mut c = Command::new(bin("kgctl"));
        c.arg("--data-dir").arg(&self.data).stdin(Stdio::null());
        c
    }

    /// Runs `kg ARGS --format json` and parses its stdout.
    pub fn kg_json(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let o = run(self.kg().args(args).args(["--format", "json"]), "");
        if !o.status.success() {
            return Err(format!("kg {}: {}", args.join(" "), text(&o)));
        }
        serde_json::from_slice(&o.stdout).map_err(|e| format!("kg {}: {e}", args.join(" ")))
    }

    /// Runs `kgctl --data-dir D ARGS`, failing on a non-zero exit.
    pub fn kgctl_ok(&self, args: &[&str]) -> Result<Output, String> {
        let o = run(self.kgctl().args(args), "");
        if o.status.success() {
            Ok(o)
        } else {
            Err(format!("kgctl {}: {}", args.join(" "), text(&o)))
        }
    }

    /// `kg ARGS` to completion (stdin closed).
    pub fn run_kg(&self, args: &[&str]) -> Output {
        run(self.kg().args(args), "")
    }

    /// `kg ssh ARGS` to completion (stdin closed).
    pub fn ssh(&self, args: &[&str]) -> Output {
        run(self.kg().arg("ssh").args(args), "")
    }

    /// Names `kg ls` shows.
    pub fn node_names(&self) -> Result<Vec<String>, String> {
        let v = self.kg_json(&["ls"])?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Writes `yaml` to a file and applies it with `kgctl create --force`.
    pub fn apply(&self, yaml: &str) -> Result<(), String> {
        let f = tempfile::Builder::new()
            .suffix(".yaml")
            .tempfile_in(self.tmp.path())
            .map_err(|e| e.to_string())?;
        std::fs::write(f.path(), yaml).map_err(|e| e.to_string())?;
        let path = f.path().to_string_lossy().into_owned();
        self.kgctl_ok(&["create", "-f", &path, "--force"])
            .map(|_| ())
    }

    /// Replaces admin's roles and `logins` trait, then renews the
    /// certificate (`kg login` without a password) so it carries them.
    pub fn set_admin(&self, roles: &[&str], logins: &[&str]) -> Result<(), String> {
        let o = self.kgctl_ok(&["get", "user/admin", "--format", "json"])?;
        let mut user: serde_json::Value =
            serde_json::from_slice(&o.stdout).map_err(|e| format!("user/admin: {e}"))?;
        let spec = user
            .get_mut("spec")
            .and_then(serde_json::Value::as_object_mut)
            .ok_or("user/admin has no spec")?;
        spec.insert("roles".into(), serde_json::json!(roles));
        spec.entry("traits")
            .or_insert_with(|| serde_json::json!({}))
            .as_object_mut()
            .ok_or("user/admin's traits are not a map")?
            .insert("logins".into(), serde_json::json!(logins));
        self.apply(&user.to_string())?;
        let o = self.renew();
        if o.status.success() {
            Ok(())
        } else {
            Err(format!("kg login (renewal): {}", text(&o)))
        }
    }

    /// `kg login` renewal (mTLS with the current certificate).
    pub fn renew(&self) -> Output {
        run(self.kg().arg("login"), "")
    }

    /// Writes `kg config`'s ssh_config block to a file and returns its path.
    pub fn ssh_config(&self) -> Result<PathBuf, String> {
        let o = run(self.kg().arg("config"), "");
        if !o.status.success() {
            return Err(format!("kg config: {}", text(&o)));
        }
        let path = self.tmp.path().join("ssh_config");
        std::fs::write(&path, &o.stdout).map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// Plain OpenSSH `ssh LOGIN@NODE CMD` through `kg proxy ssh`, trusting
    /// the cluster's host CA, authenticating with exactly `key` and `cert`
    /// (no config file, no agent, no prompts).
    pub fn openssh_with(
        &self,
        key: &Path,
        cert: &Path,
        login: &str,
        node: &str,
        cmd: &str,
    ) -> Output {
        let proxy = &self.daemon.banner.proxy;
        let opts = [
            "BatchMode=yes".to_owned(),
            format!(
                "ProxyCommand={} proxy ssh --proxy {proxy} %r@%h:%p",
                shell_quote(&bin("kg").to_string_lossy())
            ),
            format!(
                "UserKnownHostsFile={}",
                self.home.join(proxy).join("known_hosts").display()
            ),
            "GlobalKnownHostsFile=/dev/null".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            "IdentitiesOnly=yes".to_owned(),
            format!("IdentityFile={}", key.display()),
            format!("CertificateFile={}", cert.display()),
        ];
        let mut ssh = Command::new(keygate_testkit::SSH);
        ssh.env("KEYGATE_HOME", &self.home)
            .env_remove("SSH_AUTH_SOCK")
            .args(["-F", "/dev/null"]);
        for o in &opts {
            ssh.arg("-o").arg(o);
        }
        run(ssh.args(["-l", login, node, cmd]), "")
    }

    /// The profile's private key and SSH certificate (what `kg ssh` uses).
    pub fn profile_key(&self) -> (PathBuf, PathBuf) {
        let keys = self.home.join(&self.daemon.banner.proxy).join("keys");
        (keys.join("admin"), keys.join("admin-cert.pub"))
    }

    /// A shell command line running `kg ARGS` with this profile (for tmux).
    pub fn kg_shell(&self, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        format!(
            "export KEYGATE_HOME={}; unset SSH_AUTH_SOCK; {} {}",
            shell_quote(&self.home.to_string_lossy()),
            shell_quote(&bin("kg").to_string_lossy()),
            args.join(" ")
        )
    }

    /// Stops the all-in-one daemon (SIGTERM) and starts it again on the
    /// same data dir and ports; node `n2` keeps running meanwhile.
    pub fn restart_daemon(&mut self) -> Result<(), String> {
        self.stop_daemon()?;
        self.start_daemon()
    }

    /// Stops the all-in-one daemon with SIGTERM and waits for a clean exit.
    pub fn stop_daemon(&mut self) -> Result<(), String> {
        match self.daemon.terminate() {
            Some(0) => Ok(()),
            other => Err(format!(
                "the daemon did not exit cleanly on SIGTERM ({other:?}): {}",
                std::fs::read_to_string(&self.daemon.log).unwrap_or_default()
            )),
        }
    }

    /// Starts the daemon again (after [`Cluster::stop_daemon`]) on the same
    /// data dir and ports.
    pub fn start_daemon(&mut self) -> Result<(), String> {
        let ports = self.daemon.ports;
        self.daemon = Daemon::start_on(&self.data, ports, &Self::daemon_args())?;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.remote.terminate();
        self.daemon.terminate();
    }
}
