//! Running a session channel's process (shell, command or sftp-server) as
//! the login user and moving its bytes.
//!
//! Data plane only: the russh handler decides and replies to requests; the
//! tasks here pump client input into the process, process output to the
//! client (through the recording tap), and report how it ended.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelWriteHalf, Sig};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::conn::{Authenticated, Conn};
use crate::error::{Result, SshdError};
use crate::events::SshEvent;
use crate::session::env::{self, EnvContext};
use crate::session::pty::{self, PtyMaster, PtyRequest};
use crate::session::pump::{PtyReader, Tap, boxed, pump_input, pump_output, pump_pty_input};
use crate::spawn;

/// After a hang-up, how long processes get before SIGKILL.
const HANGUP_GRACE: Duration = Duration::from_secs(2);
/// After a PTY shell exits, how long to drain output still buffered (a
/// background job holding the terminal must not keep the channel open).
const PTY_DRAIN: Duration = Duration::from_millis(500);

/// What a channel runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The login shell.
    Shell,
    /// `$SHELL -c command`.
    Exec(Vec<u8>),
    /// The sftp subsystem, at this path.
    Sftp(PathBuf),
}

/// Everything needed to start a channel's process.
pub(crate) struct StartSpec<'a> {
    /// The connection.
    pub conn: &'a Arc<Conn>,
    /// Who is logged in.
    pub auth: &'a Arc<Authenticated>,
    /// The channel.
    pub channel: Channel<Msg>,
    /// What to run.
    pub kind: Kind,
    /// The PTY request, if any (ignored for sftp).
    pub pty: Option<&'a PtyRequest>,
    /// Client variables.
    pub client_env: &'a [(String, String)],
    /// The forwarded agent's socket.
    pub agent_socket: Option<&'a Path>,
    /// russh's handle (for exit-signal).
    pub handle: Handle,
}

/// A started process, as the handler keeps it for later requests.
pub(crate) struct Running {
    /// The PTY master, for `window-change`.
    pub master: Option<Arc<PtyMaster>>,
    /// The process group (the child is a session leader), for `signal`.
    pub pgid: Option<Pid>,
    /// Cancelled to hang the process up (channel closed).
    pub hangup: CancellationToken,
}

/// Spawns the process and the tasks that drive it.
pub(crate) fn start(spec: StartSpec<'_>) -> Result<Running> {
    let user = &spec.auth.user;
    let (program, arg0, args): (PathBuf, String, Vec<&OsStr>) = match &spec.kind {
        Kind::Shell => (
            user.shell.clone(),
            format!("-{}", base_name(&user.shell)),
            vec![],
        ),
        Kind::Exec(cmd) => (
            user.shell.clone(),
            base_name(&user.shell),
            vec![OsStr::new("-c"), OsStr::from_bytes(cmd)],
        ),
        Kind::Sftp(path) => (path.clone(), "sftp-server".to_owned(), vec![]),
    };
    let pty_req = match spec.kind {
        Kind::Sftp(_) => None,
        _ => spec.pty,
    };
    let owner = user.switch.then_some((user.uid, user.gid));
    let pair = pty_req.map(|r| pty::open(r, owner)).transpose()?;
    let environment = env::build(&EnvContext {
        user,
        session_id: &spec.conn.id,
        remote: spec.conn.remote,
        local: spec.conn.local,
        tty: pty_req
            .zip(pair.as_ref())
            .map(|(r, p)| (r.term.as_str(), p.tty_name.as_str())),
        client: spec.client_env,
        agent_socket: spec.agent_socket,
    });
    let mut cmd = Command::new(&program);
    cmd.arg0(&arg0)
        .args(&args)
        .env_clear()
        .envs(environment)
        .current_dir(if user.home.is_dir() {
            user.home.as_path()
        } else {
            Path::new("/")
        })
        .kill_on_drop(false);
    let hangup = spec.conn.closed.child_token();
    let ctx = Driver {
        conn: spec.conn.clone(),
        auth: spec.auth.clone(),
        id: spec.channel.id(),
        handle: spec.handle,
        kind: spec.kind.clone(),
        hangup: hangup.clone(),
        pgid: None,
    };
    let what = format!("start {} as {}", program.display(), user.name);
    match pair {
        Some(pair) => {
            let stdin = pair
                .slave
                .try_clone()
                .map_err(SshdError::io("dup the PTY"))?;
            let stdout = pair
                .slave
                .try_clone()
                .map_err(SshdError::io("dup the PTY"))?;
            cmd.stdin(Stdio::from(stdin))
                .stdout(Stdio::from(stdout))
                .stderr(Stdio::from(pair.slave));
            spawn::run_as(&mut cmd, user, true);
            let child = cmd.spawn().map_err(SshdError::io(what))?;
            // The parent's copies of the slave must be closed, or reading
            // the master never sees the end of the session.
            drop(cmd);
            let master = Arc::new(pair.master);
            let pgid = child_pgid(&child);
            tokio::spawn(Driver { pgid, ..ctx }.drive_pty(child, spec.channel, master.clone()));
            Ok(Running {
                master: Some(master),
                pgid,
                hangup,
            })
        }
        None => {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            spawn::run_as(&mut cmd, user, false);
            let child = cmd.spawn().map_err(SshdError::io(what))?;
            let pgid = child_pgid(&child);
            tokio::spawn(Driver { pgid, ..ctx }.drive_pipes(child, spec.channel));
            Ok(Running {
                master: None,
                pgid,
                hangup,
            })
        }
    }
}

fn base_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "sh".to_owned(), |n| n.to_string_lossy().into_owned())
}

fn child_pgid(child: &Child) -> Option<Pid> {
    child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw)
}

/// Delivers a signal to a process group, ignoring groups already gone.
pub(crate) fn signal_group(pgid: Option<Pid>, sig: Signal) {
    if let Some(pgid) = pgid {
        let _gone = killpg(pgid, sig);
    }
}

/// Maps an SSH signal name to a signal (RFC 4254 §6.10 names, without SIG).
pub(crate) fn signal_from_ssh(sig: &Sig) -> Option<Signal> {
    Some(match sig {
        Sig::ABRT => Signal::SIGABRT,
        Sig::ALRM => Signal::SIGALRM,
        Sig::FPE => Signal::SIGFPE,
        Sig::HUP => Signal::SIGHUP,
        Sig::ILL => Signal::SIGILL,
        Sig::INT => Signal::SIGINT,
        Sig::KILL => Signal::SIGKILL,
        Sig::PIPE => Signal::SIGPIPE,
        Sig::QUIT => Signal::SIGQUIT,
        Sig::SEGV => Signal::SIGSEGV,
        Sig::TERM => Signal::SIGTERM,
        Sig::USR1 => Signal::SIGUSR1,
        Sig::Custom(name) => format!("SIG{name}").parse().ok()?,
    })
}

/// Maps a signal number to its SSH name.
fn ssh_signal(signo: i32) -> Sig {
    match Signal::try_from(signo) {
        Ok(Signal::SIGABRT) => Sig::ABRT,
        Ok(Signal::SIGALRM) => Sig::ALRM,
        Ok(Signal::SIGFPE) => Sig::FPE,
        Ok(Signal::SIGHUP) => Sig::HUP,
        Ok(Signal::SIGILL) => Sig::ILL,
        Ok(Signal::SIGINT) => Sig::INT,
        Ok(Signal::SIGKILL) => Sig::KILL,
        Ok(Signal::SIGPIPE) => Sig::PIPE,
        Ok(Signal::SIGQUIT) => Sig::QUIT,
        Ok(Signal::SIGSEGV) => Sig::SEGV,
        Ok(Signal::SIGTERM) => Sig::TERM,
        Ok(Signal::SIGUSR1) => Sig::USR1,
        Ok(other) => Sig::Custom(other.as_str().trim_start_matches("SIG").to_owned()),
        Err(_) => Sig::Custom(format!("{signo}")),
    }
}

/// Drives one channel's process until it ends or is hung up.
struct Driver {
    /// The connection.
    conn: Arc<Conn>,
    /// Who.
    auth: Arc<Authenticated>,
    /// The channel.
    id: russh::ChannelId,
    /// russh's handle.
    handle: Handle,
    /// What runs.
    kind: Kind,
    /// Cancelled when the channel closes or the connection ends.
    hangup: CancellationToken,
    /// The process group.
    pgid: Option<Pid>,
}

impl Driver {
    async fn drive_pipes(self, mut child: Child, channel: Channel<Msg>) {
        let (read_half, write_half) = channel.split();
        let write_half = Arc::new(write_half);
        let bytes_in = Arc::new(AtomicU64::new(0));
        let bytes_out = Arc::new(AtomicU64::new(0));
        let input = tokio::spawn(pump_input(read_half, child.stdin.take(), bytes_in.clone()));
        let mut outputs = Vec::new();
        for (reader, ext) in [
            (child.stdout.take().map(boxed), None),
            (child.stderr.take().map(boxed), Some(1)),
        ] {
            if let Some(reader) = reader {
                outputs.push(tokio::spawn(pump_output(
                    reader,
                    write_half.clone(),
                    ext,
                    self.tap(),
                    bytes_out.clone(),
                )));
            }
        }
        let status = tokio::select! {
            // Pipes are drained first: a command's output must reach the
            // client before its exit status.
            status = async {
                for out in outputs.iter_mut() {
                    let _ = out.await;
                }
                child.wait().await
            } => Some(status),
            () = self.hangup.cancelled() => None,
        };
        let status = match status {
            Some(status) => status.ok(),
            None => {
                for out in &outputs {
                    out.abort();
                }
                self.hang_up(&mut child).await
            }
        };
        input.abort();
        self.finish(status, &write_half, &bytes_in, &bytes_out)
            .await;
    }

    async fn drive_pty(self, mut child: Child, channel: Channel<Msg>, master: Arc<PtyMaster>) {
        let (read_half, write_half) = channel.split();
        let write_half = Arc::new(write_half);
        let bytes_in = Arc::new(AtomicU64::new(0));
        let bytes_out = Arc::new(AtomicU64::new(0));
        let input = tokio::spawn(pump_pty_input(read_half, master.clone(), bytes_in.clone()));
        let mut output = tokio::spawn(pump_output(
            PtyReader(master),
            write_half.clone(),
            None,
            self.tap(),
            bytes_out.clone(),
        ));
        let status = tokio::select! {
            status = child.wait() => Some(status),
            () = self.hangup.cancelled() => None,
        };
        let status = match status {
            Some(status) => {
                // Drain what the shell wrote before exiting.
                tokio::select! {
                    _ = &mut output => {}
                    () = tokio::time::sleep(PTY_DRAIN) => output.abort(),
                    () = self.hangup.cancelled() => output.abort(),
                }
                status.ok()
            }
            None => {
                output.abort();
                self.hang_up(&mut child).await
            }
        };
        input.abort();
        self.finish(status, &write_half, &bytes_in, &bytes_out)
            .await;
    }

    /// SIGHUP to the process group, SIGKILL after a grace period.
    async fn hang_up(&self, child: &mut Child) -> Option<ExitStatus> {
        signal_group(self.pgid, Signal::SIGHUP);
        signal_group(self.pgid, Signal::SIGCONT);
        match tokio::time::timeout(HANGUP_GRACE, child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                signal_group(self.pgid, Signal::SIGKILL);
                child.wait().await.ok()
            }
        }
    }

    /// Reports the end to the client (unless hung up) and to the audit tap.
    async fn finish(
        &self,
        status: Option<ExitStatus>,
        write_half: &ChannelWriteHalf<Msg>,
        bytes_in: &AtomicU64,
        bytes_out: &AtomicU64,
    ) {
        let code = status.and_then(|s| s.code());
        let signal = status.and_then(|s| s.signal());
        if !self.hangup.is_cancelled() {
            let _ = write_half.eof().await;
            if let Some(code) = code {
                let _ = write_half
                    .exit_status(u32::try_from(code).unwrap_or(255))
                    .await;
            } else if let Some(signo) = signal {
                let core = status.is_some_and(|s| s.core_dumped());
                let _ = self
                    .handle
                    .exit_signal_request(
                        self.id,
                        ssh_signal(signo),
                        core,
                        String::new(),
                        "en".into(),
                    )
                    .await;
            }
            let _ = write_half.close().await;
        }
        let identity = self.auth.identity.clone();
        let signal = signal.map(|s| match ssh_signal(s) {
            Sig::Custom(name) => name,
            other => format!("{other:?}"),
        });
        match &self.kind {
            Kind::Shell => {}
            Kind::Exec(cmd) => self.conn.emit(SshEvent::Exec {
                identity,
                command: String::from_utf8_lossy(cmd).into_owned(),
                exit_code: code,
                signal,
                error: None,
            }),
            Kind::Sftp(_) => self.conn.emit(SshEvent::Sftp {
                identity,
                bytes_in: bytes_in.load(Ordering::Relaxed),
                bytes_out: bytes_out.load(Ordering::Relaxed),
                exit_code: code,
                error: None,
            }),
        }
    }

    fn tap(&self) -> Tap {
        Tap {
            conn: self.conn.clone(),
            record: !matches!(self.kind, Kind::Sftp(_)),
        }
    }
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

    #[test]
    fn signal_names_round_trip() {
        for (sig, signo) in [
            (Sig::INT, 2),
            (Sig::TERM, 15),
            (Sig::KILL, 9),
            (Sig::USR1, 10),
        ] {
            assert_eq!(signal_from_ssh(&sig), Signal::try_from(signo).ok());
            assert_eq!(format!("{:?}", ssh_signal(signo)), format!("{sig:?}"));
        }
        assert!(matches!(ssh_signal(12), Sig::Custom(n) if n == "USR2"));
        assert_eq!(
            signal_from_ssh(&Sig::Custom("USR2".into())),
            Some(Signal::SIGUSR2)
        );
        assert_eq!(signal_from_ssh(&Sig::Custom("NOPE".into())), None);
        assert!(matches!(ssh_signal(9999), Sig::Custom(n) if n == "9999"));
    }

    #[test]
    fn login_shells_get_a_dash() {
        assert_eq!(base_name(Path::new("/bin/bash")), "bash");
        assert_eq!(base_name(Path::new("/")), "sh");
    }
}
