//! Helpers for end-to-end tests: find the built binaries, run a real
//! `keygate start` and read what it prints, compute TOTP codes.
//!
//! The binaries must be built first (`scripts/test` does
//! `cargo build --bins`); a missing one fails the test with that command.
//!
//! Beyond one daemon: [`Cluster`] is an all-in-one daemon plus a second,
//! tunnel-only node process, a logged-in `kg` profile and a throw-away OS
//! login; [`Tmux`] drives interactive sessions in a real terminal;
//! [`wait_until`] polls with a deadline (tests never sleep out a TTL).
#![forbid(unsafe_code)]
// A test-support crate: failing loudly is the point.
#![allow(clippy::expect_used)]

mod agentless;
mod cluster;
mod procs;
mod tmux;
mod wait;

pub use agentless::{AgentlessHost, add_agentless_host, keygen, krl_sync, plain_ssh};
pub use cluster::{Cluster, LOCAL_NODE, NodeAgent, REMOTE_NODE, text};
pub use procs::{KillOnDrop, processes_of};
pub use tmux::{Tmux, shell_quote};
pub use wait::{Stopwatch, wait_until};

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Path of a workspace binary next to the running test's target dir.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --bins` (scripts/test does) first",
        p.display()
    );
    p
}

/// What `keygate start` printed.
#[derive(Debug, Default, Clone)]
pub struct Banner {
    /// `host:port` clients use.
    pub proxy: String,
    /// `sha256:…`.
    pub ca_pin: String,
    /// One-time admin password (first start only).
    pub admin_password: Option<String>,
    /// Admin TOTP URI (first start only).
    pub admin_totp_uri: Option<String>,
    /// Every line, for assertions.
    pub lines: Vec<String>,
}

/// The loopback ports a daemon listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Public HTTPS (`--web-addr`).
    pub web: u16,
    /// Auth's internal mTLS API (`--auth-addr`).
    pub auth: u16,
    /// Reverse tunnels from nodes (`--tunnel-addr`).
    pub tunnel: u16,
}

impl Ports {
    /// Three ports nobody listens on yet.
    pub fn free() -> Result<Ports, String> {
        let port = || keygate_testkit::free_port().map_err(|e| e.to_string());
        Ok(Ports {
            web: port()?,
            auth: port()?,
            tunnel: port()?,
        })
    }
}

/// A running `keygate start` child, killed on drop.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// Its banner.
    pub banner: Banner,
    /// Its stderr log file.
    pub log: PathBuf,
    /// Where it listens (pass them to [`Daemon::start_on`] to restart it
    /// in place).
    pub ports: Ports,
}

impl Daemon {
    /// Starts `keygate start --data-dir DIR` on free loopback ports and
    /// waits for its banner.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Result<Daemon, String> {
        Daemon::start_on(data_dir, Ports::free()?, extra)
    }

    /// Starts `keygate start --data-dir DIR` on the given ports (a restart
    /// keeps the address clients and nodes know) and waits for its banner.
    pub fn start_on(data_dir: &Path, ports: Ports, extra: &[&str]) -> Result<Daemon, String> {
        let Ports { web, auth, tunnel } = ports;
        // One log per start, so a restart does not overwrite the first.
        let log = (0u32..)
            .map(|n| data_dir.with_extension(format!("{web}.{n}.log")))
            .find(|p| !p.exists())
            .unwrap_or_else(|| data_dir.with_extension(format!("{web}.log")));
        let err = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut child = Command::new(bin("keygate"))
            .arg("start")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--web-addr")
            .arg(format!("127.0.0.1:{web}"))
            .arg("--auth-addr")
            .arg(format!("127.0.0.1:{auth}"))
            .arg("--tunnel-addr")
            .arg(format!("127.0.0.1:{tunnel}"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run keygate: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut banner = Banner::default();
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| e.to_string())?;
            if let Some(v) = line.strip_prefix("CA pin: ") {
                banner.ca_pin = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("Web address: https://") {
                banner.proxy = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("Admin one-time password: ") {
                banner.admin_password = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("Admin TOTP: ") {
                banner.admin_totp_uri = Some(v.trim().to_owned());
            }
            let done = line.starts_with("Log in with:");
            banner.lines.push(line);
            if done {
                break;
            }
        }
        if banner.ca_pin.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "keygate did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        Ok(Daemon {
            child,
            banner,
            log,
            ports,
        })
    }

    /// Sends SIGTERM and waits (up to 10 s) for the exit status.
    pub fn terminate(&mut self) -> Option<i32> {
        // Never signal a pid already reaped: it may be another process's now.
        if let Ok(Some(st)) = self.child.try_wait() {
            return st.code();
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The current TOTP code for an `otpauth://` URI.
pub fn totp_now(uri: &str) -> String {
    use keygate_clock::Clock;
    let secret = uri
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("secret="))
        .and_then(|s| keygate_authn::TotpSecret::from_base32(s).ok());
    let Some(secret) = secret else {
        return String::new();
    };
    keygate_authn::totp_code_at(&secret, keygate_clock::SystemClock::new().now())
        .unwrap_or_default()
}

/// How long [`run`] lets a command take before killing it: a hung client
/// must fail its test, not stall the whole run.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a command with `stdin` text, returning its output (killed after
/// [`RUN_TIMEOUT`]; see [`run_for`]).
pub fn run(cmd: &mut Command, stdin: &str) -> Output {
    run_for(cmd, stdin, RUN_TIMEOUT)
}

/// Runs a command with `stdin` text, returning its output. After `timeout`
/// the command is killed (its status then shows the signal) and whatever it
/// printed so far is returned.
pub fn run_for(cmd: &mut Command, stdin: &str, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the command");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    // Read both pipes on threads, so a chatty command never blocks on a
    // full pipe and a grandchild keeping one open cannot block us.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = wait_until(timeout, Duration::from_millis(10), || {
        child.try_wait().ok().flatten()
    });
    let status = match status {
        Some(st) => st,
        None => {
            let _ = child.kill();
            child.wait().expect("wait for the killed command")
        }
    };
    // Output normally ends with the process; a lingering grandchild gets a
    // short grace, then the output so far is what there is.
    let collect = |rx: std::sync::mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default()
    };
    Output {
        status,
        stdout: collect(out),
        stderr: collect(err),
    }
}
