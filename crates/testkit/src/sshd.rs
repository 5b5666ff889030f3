//! A private OpenSSH server on a loopback port, trusting the CA keys a
//! test gives it.

use std::fmt::Write as _;
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{describe, require_root, require_tool, run_ok};
use crate::ssh_client::SSH_KEYGEN;
use crate::{Result, TestkitError, free_port};

/// The OpenSSH server binary.
pub const SSHD: &str = "/usr/sbin/sshd";
/// Privilege-separation directory sshd insists on.
const PRIVSEP_DIR: &str = "/run/sshd";
/// How often, and how many times, to check whether sshd listens (10 s).
const POLL: Duration = Duration::from_millis(100);
const POLLS: u32 = 100;
/// Attempts with a fresh port when another process took ours first.
const BIND_ATTEMPTS: u32 = 3;
/// Lines of log quoted in errors.
const LOG_TAIL_LINES: usize = 40;

/// What a test wants from its sshd beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct SshdConfig {
    /// Public keys (OpenSSH lines) of CAs whose user certificates sshd
    /// accepts (`TrustedUserCAKeys`).
    pub trusted_user_ca_keys: Vec<String>,
    /// Extra `sshd_config` lines, appended after the defaults. sshd keeps
    /// the *first* value of a keyword, so these add settings (or `Match`
    /// blocks) rather than override the defaults.
    pub extra: Vec<String>,
    /// Use this host key (private key file; its `.pub` beside it) instead
    /// of a fresh one, e.g. to give sshd a host certificate made for it.
    pub host_key: Option<PathBuf>,
    /// Listen on this port instead of a free one picked at start.
    pub port: Option<u16>,
    /// Read `TrustedUserCAKeys` from this file (kept current by someone
    /// else, e.g. `keygate krl-sync`) instead of one written from
    /// `trusted_user_ca_keys`.
    pub trusted_user_ca_file: Option<PathBuf>,
}

/// A running `sshd -D` with its own host key and config, killed on drop.
///
/// Defaults: listens on 127.0.0.1 only, public-key authentication only,
/// no `authorized_keys` (so certificates from a trusted CA are the only
/// way in), no PAM, `StrictModes no`, `LogLevel VERBOSE`. Needs root and
/// OpenSSH installed; otherwise `start` fails (it never skips).
#[derive(Debug)]
pub struct Sshd {
    /// The server process (`-D`: it does not daemonize, so this is it).
    child: Child,
    /// Where it listens on 127.0.0.1.
    port: u16,
    /// sshd's stderr (`-e`).
    log_path: PathBuf,
    /// Config, host key, CA file, pid file and log; removed on drop.
    _dir: TempDir,
}

impl Sshd {
    /// Writes a private config and starts sshd, returning once its port
    /// accepts TCP connections.
    pub fn start(config: SshdConfig) -> Result<Self> {
        if !Path::new(SSHD).exists() {
            return Err(TestkitError::SshdMissing);
        }
        require_tool(SSH_KEYGEN, "openssh-client")?;
        require_root("running sshd")?;
        ensure_privsep_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("keygate-sshd-")
            .tempdir()
            .map_err(TestkitError::io("create a directory for sshd"))?;
        let host_key = match &config.host_key {
            Some(k) => k.clone(),
            None => {
                let k = dir.path().join("ssh_host_ed25519_key");
                run_ok(
                    Command::new(SSH_KEYGEN)
                        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                        .arg(&k),
                )?;
                k
            }
        };
        let ca_file = match &config.trusted_user_ca_file {
            Some(f) => f.clone(),
            None => dir.path().join("trusted_user_ca_keys"),
        };
        let mut cas = config
            .trusted_user_ca_keys
            .iter()
            .map(|k| k.trim())
            .collect::<Vec<_>>()
            .join("\n");
        cas.push('\n');
        if config.trusted_user_ca_file.is_none() {
            std::fs::write(&ca_file, cas)
                .map_err(TestkitError::io(format!("write {}", ca_file.display())))?;
        }

        let mut last_err = None;
        for attempt in 1..=BIND_ATTEMPTS {
            let port = match config.port {
                Some(p) => p,
                None => free_port()?,
            };
            let log_path = dir.path().join(format!("sshd-{attempt}.log"));
            let config_path = dir.path().join("sshd_config");
            let text = render_config(
                port,
                &host_key,
                &ca_file,
                &dir.path().join("sshd.pid"),
                &config.extra,
            );
            std::fs::write(&config_path, text)
                .map_err(TestkitError::io(format!("write {}", config_path.display())))?;
            match launch(&config_path, &log_path, port) {
                Ok(child) => {
                    return Ok(Self {
                        child,
                        port,
                        log_path,
                        _dir: dir,
                    });
                }
                // Someone else bound the port between free_port and sshd.
                Err(e @ TestkitError::SshdStart { .. })
                    if e.to_string().contains("Bind to port") =>
                {
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| TestkitError::SshdStart {
            reason: "no attempt was made".into(),
            log_tail: String::new(),
        }))
    }

    /// The port sshd listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Process id of the listening sshd.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything sshd logged so far (`LogLevel VERBOSE`): why a login was
    /// accepted or refused.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Only the listener we started: per-connection children exit with
        // their connections.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// sshd refuses to start without its privilege-separation directory,
/// which a container that never ran the sshd service lacks.
fn ensure_privsep_dir() -> Result<()> {
    std::fs::create_dir_all(PRIVSEP_DIR).map_err(TestkitError::io(format!("create {PRIVSEP_DIR}")))
}

/// The full `sshd_config`.
fn render_config(
    port: u16,
    host_key: &Path,
    ca_file: &Path,
    pid_file: &Path,
    extra: &[String],
) -> String {
    let mut s = String::new();
    // Port before ListenAddress: older sshd versions bind a ListenAddress
    // to the ports declared before it.
    let _ = writeln!(s, "Port {port}");
    s.push_str("ListenAddress 127.0.0.1\n");
    let _ = writeln!(s, "HostKey {}", host_key.display());
    let _ = writeln!(s, "PidFile {}", pid_file.display());
    let _ = writeln!(s, "TrustedUserCAKeys {}", ca_file.display());
    s.push_str(
        "UsePAM no\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PubkeyAuthentication yes\n\
         AuthorizedKeysFile none\n\
         LogLevel VERBOSE\n\
         StrictModes no\n",
    );
    for line in extra {
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// Starts sshd and waits until it says it listens on `port` and the port
/// accepts TCP.
fn launch(config: &Path, log_path: &Path, port: u16) -> Result<Child> {
    let log = File::create(log_path)
        .map_err(TestkitError::io(format!("create {}", log_path.display())))?;
    let log_out = log
        .try_clone()
        .map_err(TestkitError::io("duplicate the sshd log handle"))?;
    let mut cmd = Command::new(SSHD);
    cmd.args(["-D", "-e", "-f"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log_out)
        .stderr(log);
    let line = describe(&cmd);
    let mut child = cmd
        .spawn()
        .map_err(TestkitError::io(format!("start `{line}`")))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..POLLS {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(TestkitError::SshdStart {
                    reason: format!("`{line}` exited ({status})"),
                    log_tail: tail(log_path),
                });
            }
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestkitError::io("check whether sshd is running")(e));
            }
        }
        // Our own sshd's word that it listens, not just an open port: if
        // another process took the port, sshd fails to bind while a connect
        // to that other process would succeed.
        if listening(log_path, port) && TcpStream::connect_timeout(&addr, POLL).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(POLL);
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(TestkitError::SshdStart {
        reason: format!("`{line}` did not listen on {addr} within 10 s"),
        log_tail: tail(log_path),
    })
}

/// Whether sshd logged that it listens on 127.0.0.1:`port`.
fn listening(log_path: &Path, port: u16) -> bool {
    let want = format!("Server listening on 127.0.0.1 port {port}.");
    std::fs::read(log_path).is_ok_and(|b| String::from_utf8_lossy(&b).contains(&want))
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .skip(lines.len().saturating_sub(LOG_TAIL_LINES))
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;
    use crate::{ClientKey, OsUser, ssh_exec};

    /// Signs `key` for `principal` with a fresh CA made by ssh-keygen (so
    /// the kit is tested without Keygate); returns the cert path and the
    /// CA public key line.
    fn sign(dir: &Path, key: &ClientKey, principal: &str) -> (PathBuf, String) {
        let ca = ClientKey::generate_named(dir, "ca").unwrap();
        run_ok(
            Command::new(SSH_KEYGEN)
                .args(["-q", "-s"])
                .arg(&ca.private_key)
                .args(["-I", "kit-test", "-n", principal, "-V", "-1m:+10m"])
                .arg(&key.public_key),
        )
        .unwrap();
        let cert = key.cert_path();
        assert!(cert.exists());
        (cert, ca.public_line)
    }

    #[test]
    fn config_has_the_required_defaults_and_extras_last() {
        let text = render_config(
            2222,
            Path::new("/k"),
            Path::new("/ca"),
            Path::new("/pid"),
            &["MaxAuthTries 2".into()],
        );
        for want in [
            "Port 2222",
            "ListenAddress 127.0.0.1",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "AuthorizedKeysFile none",
            "TrustedUserCAKeys /ca",
            "PidFile /pid",
            "LogLevel VERBOSE",
            "StrictModes no",
        ] {
            assert!(
                text.lines().any(|l| l == want),
                "missing {want:?} in\n{text}"
            );
        }
        assert_eq!(text.lines().last(), Some("MaxAuthTries 2"));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let t = tail(&path);
        assert!(t.starts_with("line 60\n") && t.ends_with("line 99"), "{t}");
        assert_eq!(tail(&dir.path().join("missing")), "");
    }

    #[test]
    fn a_bad_config_fails_with_the_log() {
        let err = Sshd::start(SshdConfig {
            extra: vec!["NoSuchKeyword yes".into()],
            ..SshdConfig::default()
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, TestkitError::SshdStart { .. }), "{msg}");
        assert!(msg.contains("NoSuchKeyword"), "{msg}");
    }

    #[test]
    fn certificate_login_works_and_is_logged() {
        let user = OsUser::create().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = ClientKey::generate(dir.path()).unwrap();
        let (cert, ca_line) = sign(dir.path(), &key, user.name());
        let sshd = Sshd::start(SshdConfig {
            trusted_user_ca_keys: vec![ca_line],
            ..SshdConfig::default()
        })
        .unwrap();
        let out = ssh_exec(sshd.port(), user.name(), &key.private_key, &cert, "id -un").unwrap();
        assert!(
            out.status.success(),
            "ssh failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            sshd.log()
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), user.name());
        assert!(sshd.log().contains("Accepted publickey"), "{}", sshd.log());
    }

    #[test]
    fn untrusted_ca_is_refused() {
        let user = OsUser::create().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = ClientKey::generate(dir.path()).unwrap();
        let (cert, _) = sign(dir.path(), &key, user.name());
        let other = ClientKey::generate_named(dir.path(), "other-ca").unwrap();
        let sshd = Sshd::start(SshdConfig {
            trusted_user_ca_keys: vec![other.public_line],
            ..SshdConfig::default()
        })
        .unwrap();
        let out = ssh_exec(sshd.port(), user.name(), &key.private_key, &cert, "id -un").unwrap();
        assert_eq!(out.status.code(), Some(255), "{}", sshd.log());
        assert!(out.stdout.is_empty());
    }

    #[test]
    fn sshd_stops_on_drop() {
        let sshd = Sshd::start(SshdConfig::default()).unwrap();
        let proc_dir = PathBuf::from(format!("/proc/{}", sshd.pid()));
        assert!(proc_dir.exists());
        drop(sshd);
        // Killed and reaped: no process, not even a zombie. (Probing the
        // port instead would race with parallel tests reusing it.)
        assert!(!proc_dir.exists());
    }
}
