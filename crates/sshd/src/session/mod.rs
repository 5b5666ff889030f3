//! Session channels: what a client asked for on each channel (PTY, env,
//! agent) until it starts a shell, command or subsystem, and the running
//! process after that.

pub(crate) mod env;
pub(crate) mod exec;
pub(crate) mod forward;
pub(crate) mod pty;
pub(crate) mod pump;
pub(crate) mod sftp;

use std::sync::Arc;

use russh::server::{Handle, Msg};
use russh::{Channel, Pty, Sig};

use crate::auth::{PERMIT_PTY, cert_permits};
use crate::conn::{Authenticated, Conn};
use crate::error::SshdError;
use crate::events::SshEvent;
use exec::{Kind, Running, StartSpec};
use pty::{PtyRequest, WindowSize};

/// Longest `TERM` accepted.
const MAX_TERM_LEN: usize = 64;

/// One session channel as the handler keeps it.
pub(crate) struct ChannelSlot {
    /// The channel until a process takes it over.
    channel: Option<Channel<Msg>>,
    /// The PTY asked for, if any.
    pty: Option<PtyRequest>,
    /// Variables the client set (filtered).
    env: Vec<(String, String)>,
    /// Whether this channel asked for agent forwarding (and got it).
    agent: bool,
    /// The process, once started.
    running: Option<Running>,
}

impl ChannelSlot {
    /// A freshly opened channel.
    pub(crate) fn new(channel: Channel<Msg>) -> Self {
        Self {
            channel: Some(channel),
            pty: None,
            env: Vec::new(),
            agent: false,
            running: None,
        }
    }

    /// `pty-req`: remembered for the shell/command; refused without the
    /// certificate's `permit-pty`, twice, or after the process started.
    pub(crate) fn pty_request(
        &mut self,
        auth: &Authenticated,
        conn: &Conn,
        term: &str,
        size: WindowSize,
        modes: &[(Pty, u32)],
    ) -> Result<(), String> {
        if !cert_permits(&auth.cert, PERMIT_PTY) {
            return Err("the certificate lacks permit-pty".to_owned());
        }
        if self.pty.is_some() || self.running.is_some() {
            return Err("a PTY was already requested on this channel".to_owned());
        }
        let term = if term.is_empty()
            || term.len() > MAX_TERM_LEN
            || !term.bytes().all(|b| b.is_ascii_graphic())
        {
            "xterm".to_owned()
        } else {
            term.to_owned()
        };
        conn.server
            .events
            .resize(&conn.id, u32::from(size.cols), u32::from(size.rows));
        self.pty = Some(PtyRequest {
            term,
            size,
            modes: modes.to_vec(),
        });
        Ok(())
    }

    /// `env`: accepted only for the safe list, before the process starts.
    pub(crate) fn env_request(&mut self, name: &str, value: &str) -> bool {
        if self.running.is_some()
            || self.env.len() >= env::MAX_CLIENT_VARS
            || !env::client_var_allowed(name, value)
        {
            return false;
        }
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
        true
    }

    /// Agent forwarding was granted for this channel.
    pub(crate) fn set_agent(&mut self) {
        self.agent = true;
    }

    /// `shell`, `exec` or `subsystem sftp`: starts the process.
    pub(crate) fn start(
        &mut self,
        conn: &Arc<Conn>,
        auth: &Arc<Authenticated>,
        kind: Kind,
        handle: Handle,
    ) -> Result<(), SshdError> {
        let Some(channel) = self.channel.take() else {
            return Err(SshdError::Io {
                what: "start a second program on one channel".to_owned(),
                source: std::io::ErrorKind::AlreadyExists.into(),
            });
        };
        let agent = if self.agent {
            Conn::lock(&conn.agent_socket).clone()
        } else {
            None
        };
        let tty = self.pty.is_some() && !matches!(kind, Kind::Sftp(_));
        let running = exec::start(StartSpec {
            conn,
            auth,
            channel,
            kind: kind.clone(),
            pty: self.pty.as_ref(),
            client_env: &self.env,
            agent_socket: agent.as_deref(),
            handle,
        })?;
        self.running = Some(running);
        if kind == Kind::Shell {
            conn.emit(SshEvent::Shell {
                identity: auth.identity.clone(),
                tty,
            });
        }
        Ok(())
    }

    /// `window-change`: resizes the PTY (false without one).
    pub(crate) fn window_change(&self, conn: &Conn, size: WindowSize) -> bool {
        let Some(master) = self.running.as_ref().and_then(|r| r.master.as_ref()) else {
            return false;
        };
        conn.server
            .events
            .resize(&conn.id, u32::from(size.cols), u32::from(size.rows));
        master.resize(size).is_ok()
    }

    /// `signal`: delivered to the process group.
    pub(crate) fn signal(&self, sig: &Sig) {
        if let (Some(running), Some(sig)) = (self.running.as_ref(), exec::signal_from_ssh(sig)) {
            exec::signal_group(running.pgid, sig);
        }
    }

    /// The channel closed: hang the process up.
    pub(crate) fn close(self) {
        if let Some(running) = self.running {
            running.hangup.cancel();
        }
    }
}
