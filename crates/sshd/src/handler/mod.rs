//! The russh handler of one connection: the control plane. It decides and
//! answers every request synchronously (russh keeps one reply flag per
//! channel, so replies must not be deferred) and hands running processes
//! and forwarded streams to tasks.

use std::collections::HashMap;
use std::sync::Arc;

use russh::keys::Certificate;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, Pty, Sig};

use crate::conn::{Authenticated, Conn};
use crate::error::SshdError;
use crate::events::SshEvent;
use crate::session::exec::Kind;
use crate::session::pty::WindowSize;
use crate::session::{ChannelSlot, forward, sftp};

mod login;

/// Session channels one connection may hold open.
const MAX_CHANNELS: usize = 32;
/// Logins longer than this are cut in events (they come from the network).
const MAX_LOGGED_LOGIN: usize = 128;

/// The handler russh drives for one connection.
pub(crate) struct ConnHandler {
    /// Shared with the supervisor and the channel tasks.
    conn: Arc<Conn>,
    /// Set once a certificate was accepted.
    auth: Option<Arc<Authenticated>>,
    /// Open session channels.
    channels: HashMap<ChannelId, ChannelSlot>,
}

impl ConnHandler {
    /// A handler for `conn`.
    pub(crate) fn new(conn: Arc<Conn>) -> Self {
        Self {
            conn,
            auth: None,
            channels: HashMap::new(),
        }
    }

    fn denied(&self, request: &str, reason: &str) {
        if let Some(auth) = &self.auth {
            self.conn.emit(SshEvent::RequestDenied {
                identity: auth.identity.clone(),
                request: clip(request),
                reason: reason.to_owned(),
            });
        }
    }

    /// Answers a channel request.
    fn reply(session: &mut Session, channel: ChannelId, ok: bool) -> Result<(), SshdError> {
        if ok {
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    fn start(
        &mut self,
        channel: ChannelId,
        kind: Kind,
        session: &mut Session,
    ) -> Result<(), SshdError> {
        self.conn.touch();
        let (Some(auth), Some(slot)) = (self.auth.as_ref(), self.channels.get_mut(&channel)) else {
            return Self::reply(session, channel, false);
        };
        match slot.start(&self.conn, auth, kind.clone(), session.handle()) {
            Ok(()) => Self::reply(session, channel, true),
            Err(e) => {
                let error = Some(e.to_string());
                let identity = auth.identity.clone();
                self.conn.emit(match kind {
                    Kind::Exec(cmd) => SshEvent::Exec {
                        identity,
                        command: String::from_utf8_lossy(&cmd).into_owned(),
                        exit_code: None,
                        signal: None,
                        error,
                    },
                    Kind::Sftp(_) => SshEvent::Sftp {
                        identity,
                        bytes_in: 0,
                        bytes_out: 0,
                        exit_code: None,
                        error,
                    },
                    Kind::Shell => SshEvent::RequestDenied {
                        identity,
                        request: "shell".into(),
                        reason: e.to_string(),
                    },
                });
                session.extended_data(channel, 1, format!("keygate: {e}\r\n"))?;
                Self::reply(session, channel, false)
            }
        }
    }
}

/// Cuts network-supplied names for logging.
fn clip(s: &str) -> String {
    s.chars().take(MAX_LOGGED_LOGIN).collect()
}

impl Drop for ConnHandler {
    fn drop(&mut self) {
        for (_, slot) in self.channels.drain() {
            slot.close();
        }
    }
}

impl russh::server::Handler for ConnHandler {
    type Error = SshdError;

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        self.note_login(user);
        Ok(Auth::reject())
    }

    async fn auth_password(&mut self, user: &str, _password: &str) -> Result<Auth, Self::Error> {
        self.note_login(user);
        Ok(Auth::reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        _offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // russh passes a certificate's inner key here, so keys and
        // certificates cannot be told apart yet: decide after the signature.
        self.note_login(user);
        Ok(Auth::Accept)
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        _key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        self.refuse(
            user,
            None,
            "a plain public key was offered; this node accepts only Keygate user certificates"
                .to_owned(),
        );
        Ok(Auth::reject())
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &Certificate,
    ) -> Result<Auth, Self::Error> {
        Ok(self.check_certificate(user, certificate).await)
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        self.on_authenticated();
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.conn.touch();
        if self.auth.is_none() || self.channels.len() >= MAX_CHANNELS {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        let id = channel.id();
        self.channels.insert(id, ChannelSlot::new(channel));
        Conn::lock(&self.conn.open_channels).insert(id);
        reply.accept().await;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.conn.touch();
        if let Some(auth) = &self.auth {
            let host = clip(host_to_connect);
            forward::direct_tcpip(&self.conn, auth, channel, &host, port_to_connect, reply).await;
        }
        Ok(())
    }

    async fn channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.denied("x11", "X11 forwarding is not supported");
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.denied(
            &format!("direct-streamlocal {socket_path}"),
            "Unix socket forwarding is not supported",
        );
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Conn::lock(&self.conn.open_channels).remove(&channel);
        if let Some(slot) = self.channels.remove(&channel) {
            slot.close();
        }
        Ok(())
    }

    async fn data(
        &mut self,
        _channel: ChannelId,
        _data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.conn.touch();
        Ok(())
    }

    async fn extended_data(
        &mut self,
        _channel: ChannelId,
        _code: u32,
        _data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.conn.touch();
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.conn.touch();
        let size = WindowSize::clamp(col_width, row_height, pix_width, pix_height);
        let result = match (self.auth.as_ref(), self.channels.get_mut(&channel)) {
            (Some(auth), Some(slot)) => slot.pty_request(auth, &self.conn, term, size, modes),
            _ => Err("no such session channel".to_owned()),
        };
        if let Err(reason) = &result {
            self.denied("pty-req", reason);
        }
        Self::reply(session, channel, result.is_ok())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.denied("x11-req", "X11 forwarding is not supported");
        Self::reply(session, channel, false)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        variable_name: &str,
        variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let ok = self
            .channels
            .get_mut(&channel)
            .is_some_and(|slot| slot.env_request(variable_name, variable_value));
        Self::reply(session, channel, ok)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, Kind::Shell, session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, Kind::Exec(data.to_vec()), session)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name != "sftp" {
            self.denied(&format!("subsystem {name}"), "unknown subsystem");
            return Self::reply(session, channel, false);
        }
        match sftp::find_sftp_server(&sftp::SFTP_SERVER_PATHS) {
            Ok(path) => self.start(channel, Kind::Sftp(path), session),
            Err(e) => {
                if let Some(auth) = &self.auth {
                    self.conn.emit(SshEvent::Sftp {
                        identity: auth.identity.clone(),
                        bytes_in: 0,
                        bytes_out: 0,
                        exit_code: None,
                        error: Some(e.to_string()),
                    });
                }
                session.extended_data(channel, 1, format!("keygate: {e}\r\n"))?;
                Self::reply(session, channel, false)
            }
        }
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.conn.touch();
        let size = WindowSize::clamp(col_width, row_height, pix_width, pix_height);
        let ok = self
            .channels
            .get(&channel)
            .is_some_and(|slot| slot.window_change(&self.conn, size));
        Self::reply(session, channel, ok)
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.conn.touch();
        if let Some(slot) = self.channels.get(&channel) {
            slot.signal(&signal);
        }
        Ok(())
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let (Some(auth), Some(slot)) = (self.auth.clone(), self.channels.get_mut(&channel)) else {
            return Ok(false);
        };
        let result = forward::agent_forwarding(&self.conn, &auth, &session.handle());
        let allowed = result.is_ok();
        if allowed {
            slot.set_agent();
        }
        self.conn.emit(SshEvent::AgentForward {
            identity: auth.identity.clone(),
            allowed,
            reason: result.err(),
        });
        Ok(allowed)
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.denied(
            &format!("tcpip-forward {}:{port}", clip(address)),
            "remote port forwarding is not supported",
        );
        Ok(false)
    }

    async fn streamlocal_forward(
        &mut self,
        socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.denied(
            &format!("streamlocal-forward {}", clip(socket_path)),
            "remote Unix socket forwarding is not supported",
        );
        Ok(false)
    }
}
