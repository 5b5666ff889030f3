//! A private rsyslog receiver on a loopback port: syslog over TCP in,
//! one line per message out, for exporters to be tested against the real
//! thing.
//!
//! Every message that arrives over TCP is written to [`Rsyslog::output`]
//! as `MSGID|STRUCTURED-DATA|MSG` (rsyslog's own RFC 5424 parse of it), so a
//! test sees exactly what a SIEM behind rsyslog would.

use std::fmt::Write as _;
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{describe, require_tool, run_ok};
use crate::{Result, TestkitError, free_port};

/// The rsyslog daemon.
pub const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
/// `kill`, to stop rsyslogd gracefully (SIGTERM makes it drain its queue
/// into the output file first; `Child::kill` would lose queued messages).
const KILL: &str = "/bin/kill";
/// How often, and how many times, to check whether rsyslogd listens (10 s).
const POLL: Duration = Duration::from_millis(50);
const POLLS: u32 = 200;
/// Attempts with a fresh port when another process took ours first.
const BIND_ATTEMPTS: u32 = 3;
/// What rsyslogd logs when its listener cannot bind (it keeps running).
const BIND_FAILED: &str = "Could not create tcp listener";

/// What a test wants from its rsyslog beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct RsyslogConfig {
    /// Listen on this port instead of a free one (e.g. to come back on the
    /// same port after [`Rsyslog::stop`]).
    pub port: Option<u16>,
    /// Append received messages to this file instead of one in the
    /// launcher's own directory, which is removed with the launcher (so
    /// this is how one file outlives a restart).
    pub output: Option<PathBuf>,
    /// Accept TLS instead of plain TCP (rsyslog's OpenSSL driver, clients
    /// not asked for certificates).
    pub tls: Option<RsyslogTls>,
}

/// The server side of TLS: PEM files.
#[derive(Debug, Clone)]
pub struct RsyslogTls {
    /// The server's certificate (chain).
    pub cert_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
    /// A CA certificate (rsyslog's driver insists on one).
    pub ca_file: PathBuf,
}

/// A running `rsyslogd -n` with its own config, work directory and pid
/// file (never the system's), stopped on drop.
#[derive(Debug)]
pub struct Rsyslog {
    /// The daemon (`-n`: it does not fork, so this is it).
    child: Option<Child>,
    /// Where it listens on 127.0.0.1.
    port: u16,
    /// Where received messages go, one line each.
    output: PathBuf,
    /// rsyslogd's own stderr (config errors, bind failures).
    log_path: PathBuf,
    /// Config, work directory, pid file and log; removed on drop.
    _dir: TempDir,
}

impl Rsyslog {
    /// Starts rsyslogd with the defaults and returns once its port accepts
    /// TCP connections.
    pub fn start() -> Result<Self> {
        Self::start_with(RsyslogConfig::default())
    }

    /// Starts rsyslogd as `config` says and returns once it listens.
    /// Fails (never skips) when rsyslog is not installed.
    pub fn start_with(config: RsyslogConfig) -> Result<Self> {
        require_tool(RSYSLOGD, "rsyslog")?;
        require_tool(KILL, "procps")?;
        if config.tls.is_some() {
            require_ossl_driver()?;
        }
        let dir = tempfile::Builder::new()
            .prefix("keygate-rsyslog-")
            .tempdir()
            .map_err(TestkitError::io("create a directory for rsyslogd"))?;
        let output = config
            .output
            .clone()
            .unwrap_or_else(|| dir.path().join("received.log"));
        let mut last_err = None;
        for attempt in 1..=BIND_ATTEMPTS {
            let port = match config.port {
                Some(p) => p,
                None => free_port()?,
            };
            let conf = dir.path().join(format!("rsyslog-{attempt}.conf"));
            let work = dir.path().join(format!("work-{attempt}"));
            std::fs::create_dir_all(&work)
                .map_err(TestkitError::io(format!("create {}", work.display())))?;
            std::fs::write(
                &conf,
                render_config(port, &work, &output, config.tls.as_ref()),
            )
            .map_err(TestkitError::io(format!("write {}", conf.display())))?;
            let log_path = dir.path().join(format!("rsyslogd-{attempt}.log"));
            let pid_file = dir.path().join(format!("rsyslogd-{attempt}.pid"));
            match launch(&conf, &pid_file, &log_path, port) {
                Ok(child) => {
                    return Ok(Self {
                        child: Some(child),
                        port,
                        output,
                        log_path,
                        _dir: dir,
                    });
                }
                // Another process bound the port between free_port and us;
                // a fixed port is the caller's to retry.
                Err(e) if config.port.is_none() && e.to_string().contains(BIND_FAILED) => {
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| start_failed("no attempt was made", String::new())))
    }

    /// The port rsyslogd listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, as an exporter's address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file received messages are written to.
    pub fn output(&self) -> &Path {
        &self.output
    }

    /// Every line received so far (`MSGID|STRUCTURED-DATA|MSG`).
    pub fn lines(&self) -> Vec<String> {
        read_lines(&self.output)
    }

    /// Waits until at least `n` lines were received, or fails after
    /// `timeout` saying how many arrived.
    pub fn wait_for_lines(&self, n: usize, timeout: Duration) -> Result<Vec<String>> {
        wait_for_lines(&self.output, n, timeout)
    }

    /// What rsyslogd wrote to stderr (config errors, bind failures).
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Stops rsyslogd gracefully (SIGTERM, so messages it accepted reach
    /// the output file) and waits for it to exit.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    /// SIGTERM, wait up to 10 s, then SIGKILL.
    fn shutdown(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let term = run_ok(
            Command::new(KILL)
                .arg("-TERM")
                .arg(child.id().to_string())
                .stderr(Stdio::piped()),
        );
        // Counted polls rather than a deadline: only the clock crate reads
        // the time.
        for _ in 0..POLLS {
            match child.try_wait() {
                Ok(Some(_)) => return term.map(|_| ()),
                Ok(None) => std::thread::sleep(POLL),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(TestkitError::io("wait for rsyslogd to exit")(e));
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(start_failed(
            "rsyslogd ignored SIGTERM for 10 s",
            self.log(),
        ))
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Lines of `path` (none if it does not exist yet).
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read(path)
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `path` has at least `n` lines, or fails after `timeout`.
pub fn wait_for_lines(path: &Path, n: usize, timeout: Duration) -> Result<Vec<String>> {
    let polls = timeout.as_millis() / POLL.as_millis().max(1);
    for _ in 0..polls {
        if read_lines(path).len() >= n {
            break;
        }
        std::thread::sleep(POLL);
    }
    let lines = read_lines(path);
    if lines.len() >= n {
        return Ok(lines);
    }
    Err(TestkitError::CommandFailed {
        command: format!("wait for {n} lines in {}", path.display()),
        status: format!("timed out after {timeout:?}"),
        stderr: format!("{} lines arrived:\n{}", lines.len(), lines.join("\n")),
    })
}

/// The full rsyslog config: TCP in (octet counting and LF framing are
/// both on by default), only TCP messages out, nothing of the system's.
fn render_config(port: u16, work: &Path, output: &Path, tls: Option<&RsyslogTls>) -> String {
    let mut s = String::new();
    // Large messages: events may be up to 1 MiB, and a truncated message
    // would look like an exporter bug.
    let _ = write!(
        s,
        "global(workDirectory=\"{}\" maxMessageSize=\"2m\"",
        work.display()
    );
    match tls {
        None => s.push_str(")\nmodule(load=\"imtcp\")\n"),
        Some(t) => {
            let _ = writeln!(
                s,
                " DefaultNetstreamDriver=\"ossl\" DefaultNetstreamDriverCAFile=\"{}\" \
                 DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\")",
                t.ca_file.display(),
                t.cert_file.display(),
                t.key_file.display()
            );
            // Mode 1: TLS only; anon: clients show no certificate.
            s.push_str(
                "module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" \
                 StreamDriver.AuthMode=\"anon\")\n",
            );
        }
    }
    s.push_str(
        "template(name=\"kgline\" type=\"string\" \
         string=\"%msgid%|%structured-data%|%msg%\\n\")\n",
    );
    let _ = writeln!(
        s,
        "input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\")"
    );
    // Only what arrived over TCP: rsyslogd's own status messages would
    // otherwise land in the same file.
    let _ = writeln!(
        s,
        "if $inputname == \"imtcp\" then {{\n  action(type=\"omfile\" file=\"{}\" template=\"kgline\")\n}}",
        output.display()
    );
    s
}

/// rsyslog's OpenSSL network driver, a separate Debian package.
fn require_ossl_driver() -> Result<()> {
    let found = std::fs::read_dir("/usr/lib")
        .map(|dirs| {
            dirs.flatten()
                .any(|d| d.path().join("rsyslog/lmnsd_ossl.so").exists())
        })
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(TestkitError::ToolMissing {
            path: "/usr/lib/<arch>/rsyslog/lmnsd_ossl.so".into(),
            package: "rsyslog-openssl",
        })
    }
}

/// Starts rsyslogd and waits until *it* (not another process) listens on
/// `port`.
fn launch(conf: &Path, pid_file: &Path, log_path: &Path, port: u16) -> Result<Child> {
    let log = File::create(log_path)
        .map_err(TestkitError::io(format!("create {}", log_path.display())))?;
    let log_out = log
        .try_clone()
        .map_err(TestkitError::io("duplicate the rsyslogd log handle"))?;
    let mut cmd = Command::new(RSYSLOGD);
    cmd.arg("-n")
        .arg("-f")
        .arg(conf)
        .arg("-i")
        .arg(pid_file)
        .stdin(Stdio::null())
        .stdout(log_out)
        .stderr(log);
    let line = describe(&cmd);
    let mut child = cmd
        .spawn()
        .map_err(TestkitError::io(format!("start `{line}`")))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let read_log = || {
        std::fs::read(log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    for _ in 0..POLLS {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(start_failed(
                    &format!("`{line}` exited ({status})"),
                    read_log(),
                ));
            }
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestkitError::io("check whether rsyslogd is running")(e));
            }
        }
        let log = read_log();
        if log.contains(BIND_FAILED) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(start_failed(
                &format!("`{line}` could not bind {addr}"),
                log,
            ));
        }
        // rsyslogd keeps running when its listener fails, and another
        // process on the port would accept our probe: require that the
        // listening socket is one of rsyslogd's own.
        if owns_listener(child.id(), port) && TcpStream::connect_timeout(&addr, POLL).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(POLL);
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(start_failed(
        &format!("`{line}` did not listen on {addr} within 10 s"),
        read_log(),
    ))
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port`
/// (its inode in `/proc/net/tcp` is among `/proc/PID/fd`).
fn owns_listener(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let local = format!("0100007F:{port:04X}");
    // Columns: sl local rem st tx:rx tr:when retrnsmt uid timeout inode.
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            match (cols.get(1), cols.get(3), cols.get(9)) {
                (Some(l), Some(&"0A"), Some(inode)) if *l == local => {
                    Some(format!("socket:[{inode}]"))
                }
                _ => None,
            }
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}

/// The error for an rsyslogd that did not come up (or go down).
fn start_failed(reason: &str, log: String) -> TestkitError {
    TestkitError::CommandFailed {
        command: RSYSLOGD.to_owned(),
        status: reason.to_owned(),
        stderr: log.trim().to_owned(),
    }
}

#[cfg(test)]
#[path = "rsyslog_tests.rs"]
mod tests;
