//! The russh server handler of one relayed connection: authenticates the
//! user's certificate, asks the cluster, logs in to the host, and forwards
//! every channel request upstream, answering the client with the host's
//! answer.

use std::collections::HashMap;
use std::sync::Arc;

use russh::keys::Certificate;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, Disconnect, Pty, Sig};

use crate::authority::{OpenRequest, RelayEvent, RelaySession, UpstreamGrant};
use crate::bridge::{SessionBridge, UpRequest};
use crate::conn::Conn;
use crate::error::RelayError;
use crate::registry::LiveSession;
use crate::upstream;

/// Session channels one connection may hold open.
const MAX_CHANNELS: usize = 32;
/// Network-supplied strings are cut to this in events.
const MAX_LOGGED: usize = 256;

fn clip(s: &str) -> String {
    s.chars().take(MAX_LOGGED).collect()
}

/// The handler russh drives.
pub(crate) struct RelayHandler {
    /// Shared state.
    conn: Arc<Conn>,
    /// What the cluster allowed, once authenticated.
    grant: Option<UpstreamGrant>,
    /// The user's certificate, once authenticated.
    user_cert: Option<String>,
    /// Relayed session channels.
    channels: HashMap<ChannelId, SessionBridge>,
}

impl RelayHandler {
    pub(crate) fn new(conn: Arc<Conn>) -> Self {
        Self {
            conn,
            grant: None,
            user_cert: None,
            channels: HashMap::new(),
        }
    }

    /// Refuses a user who holds a valid certificate, telling them why in
    /// the disconnect message (ssh prints it).
    fn deny(&self, login: &str, message: String) {
        self.conn
            .refused(&format!("login {}", clip(login)), &message);
        if let Some(handle) = self.conn.handle.get().cloned() {
            tokio::spawn(async move {
                let _ = handle
                    .disconnect(
                        Disconnect::NoMoreAuthMethodsAvailable,
                        format!("keygate: access denied: {message}"),
                        "en".into(),
                    )
                    .await;
            });
        }
    }

    async fn authenticate(&mut self, login: &str, cert: &Certificate) -> Auth {
        let relay = self.conn.relay.clone();
        let now = relay.clock.now();
        let line = match cert.to_openssh() {
            Ok(l) => l,
            Err(e) => {
                self.conn
                    .refused("login", &format!("unreadable certificate: {e}"));
                return Auth::reject();
            }
        };
        let mut verified =
            keygate_ca::verify_user_cert(&line, &relay.authority.trusted_user_ca_keys(), now);
        if verified.is_err() {
            // Perhaps a key this relay has not heard of yet (a rotation).
            relay.authority.refresh_trust().await;
            verified =
                keygate_ca::verify_user_cert(&line, &relay.authority.trusted_user_ca_keys(), now);
        }
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                self.conn
                    .refused("login", &format!("certificate refused: {e}"));
                return Auth::reject();
            }
        };
        if !verified.principals.iter().any(|p| p == login) {
            self.deny(
                login,
                format!(
                    "login {login:?} is not in your certificate (principals: {})",
                    verified.principals.join(", ")
                ),
            );
            return Auth::reject();
        }
        let key = upstream::fresh_key();
        let public_key = match key.public_key().to_openssh() {
            Ok(p) => p,
            Err(e) => {
                self.deny(login, format!("internal error: {e}"));
                return Auth::reject();
            }
        };
        let req = OpenRequest {
            node: self.conn.node.clone(),
            login: login.to_owned(),
            user_cert: line.clone(),
            public_key,
            client: self.conn.client,
        };
        let grant = match relay.authority.open(&req).await {
            Ok(g) => g,
            Err(message) => {
                self.deny(login, message);
                return Auth::reject();
            }
        };
        let up = match upstream::connect(&grant, login, key, relay.clock.clone()).await {
            Ok(u) => u,
            Err(e) => {
                self.deny(login, e.to_string());
                return Auth::reject();
            }
        };
        let _ = self.conn.upstream.set(Arc::new(up));
        let _ = self.conn.idle_timeout.set(grant.idle_timeout);
        let _ = self.conn.disconnect_at.set(grant.disconnect_at);
        let _ = self.conn.session.set(RelaySession {
            session_id: grant.session_id.clone(),
            user: grant.user.clone(),
            login: login.to_owned(),
            node: self.conn.node.clone(),
            client: self.conn.client,
        });
        self.grant = Some(grant);
        self.user_cert = Some(line);
        Auth::Accept
    }

    /// Forwards a request that wants an answer, and answers the client.
    async fn relay_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
        what: &str,
        req: UpRequest,
    ) -> Result<bool, RelayError> {
        self.conn.touch();
        let ok = match self.channels.get(&channel) {
            Some(b) => b.ask(req).await,
            None => false,
        };
        if !ok {
            self.conn.refused(what, "the host refused the request");
        }
        reply(session, channel, ok)?;
        Ok(ok)
    }

    fn started(&self, channel: ChannelId, command: &str, accepted: bool) {
        if let Some(b) = self.channels.get(&channel) {
            b.set_command(command);
        }
        if let Some(session) = self.conn.session() {
            self.conn.emit(RelayEvent::Exec {
                session,
                command: command.chars().take(4096).collect(),
                accepted,
            });
        }
    }
}

fn reply(session: &mut Session, channel: ChannelId, ok: bool) -> Result<(), RelayError> {
    if ok {
        session.channel_success(channel)?;
    } else {
        session.channel_failure(channel)?;
    }
    Ok(())
}

impl russh::server::Handler for RelayHandler {
    type Error = RelayError;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        _offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // A certificate's inner key arrives here too: decide after the
        // signature, in `auth_openssh_certificate`.
        Ok(Auth::Accept)
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        _key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        self.conn.refused(
            "login",
            "a plain public key was offered; only Keygate user certificates are accepted",
        );
        Ok(Auth::reject())
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &Certificate,
    ) -> Result<Auth, Self::Error> {
        if self.grant.is_some() {
            return Ok(Auth::reject());
        }
        Ok(self.authenticate(user, certificate).await)
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        let (Some(session), Some(cert)) = (self.conn.session(), self.user_cert.clone()) else {
            return Ok(());
        };
        self.conn.relay.registry.insert(
            LiveSession {
                session: session.clone(),
                user_cert: cert,
                started: self.conn.relay.clock.now(),
            },
            self.conn.kill.clone(),
            self.conn.kill_reason.clone(),
        );
        self.conn.emit(RelayEvent::SessionStart { session });
        self.conn.touch();
        self.conn.authenticated.cancel();
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.conn.touch();
        let Some(up) = self.conn.upstream.get().cloned() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        if self.channels.len() >= MAX_CHANNELS {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        match up.handle.channel_open_session().await {
            Ok(host_side) => {
                let id = channel.id();
                let bridge = SessionBridge::start(&self.conn, channel, session.handle(), host_side);
                self.channels.insert(id, bridge);
                self.conn.channel_opened(id);
                reply.accept().await;
            }
            Err(e) => {
                self.conn
                    .refused("session channel", &format!("the host refused: {e}"));
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
            }
        }
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.conn.touch();
        let target = format!("{}:{port_to_connect}", clip(host_to_connect));
        let (Some(up), Some(grant), Some(session)) = (
            self.conn.upstream.get().cloned(),
            self.grant.as_ref(),
            self.conn.session(),
        ) else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let refuse = |reason: &str| RelayEvent::PortForward {
            session: session.clone(),
            target: target.clone(),
            allowed: false,
            reason: Some(reason.to_owned()),
        };
        if !grant.port_forwarding {
            self.conn
                .emit(refuse("none of your roles allows port forwarding"));
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        let opened = up
            .handle
            .channel_open_direct_tcpip(
                host_to_connect,
                port_to_connect,
                originator_address,
                originator_port,
            )
            .await;
        match opened {
            Ok(host_side) => {
                reply.accept().await;
                self.conn.emit(RelayEvent::PortForward {
                    session,
                    target,
                    allowed: true,
                    reason: None,
                });
                tokio::spawn(async move {
                    let mut a = channel.into_stream();
                    let mut b = host_side.into_stream();
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                });
            }
            Err(e) => {
                self.conn.emit(refuse(&format!("the host refused: {e}")));
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
            }
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        self.conn.channel_closed(channel);
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
        let req = UpRequest::Pty {
            term: term.to_owned(),
            cols: col_width,
            rows: row_height,
            pix_width,
            pix_height,
            modes: modes.to_vec(),
        };
        self.relay_request(channel, session, "pty-req", req).await?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        variable_name: &str,
        variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The host's AcceptEnv decides; clients send env without asking
        // for an answer, so none is waited for.
        let ok = match self.channels.get(&channel) {
            Some(b) => b
                .up()
                .set_env(false, variable_name, variable_value)
                .await
                .is_ok(),
            None => false,
        };
        reply(session, channel, ok)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let ok = self
            .relay_request(channel, session, "shell", UpRequest::Shell)
            .await?;
        self.started(channel, "shell", ok);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let shown = String::from_utf8_lossy(data).into_owned();
        let ok = self
            .relay_request(channel, session, "exec", UpRequest::Exec(data.to_vec()))
            .await?;
        self.started(channel, &shown, ok);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let req = UpRequest::Subsystem(name.to_owned());
        let ok = self
            .relay_request(channel, session, "subsystem", req)
            .await?;
        self.started(channel, &format!("subsystem:{}", clip(name)), ok);
        Ok(())
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
        let ok = match self.channels.get(&channel) {
            Some(b) => b
                .up()
                .window_change(col_width, row_height, pix_width, pix_height)
                .await
                .is_ok(),
            None => false,
        };
        reply(session, channel, ok)
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.conn.touch();
        if let Some(b) = self.channels.get(&channel) {
            let _ = b.up().signal(signal).await;
        }
        Ok(())
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.conn.refused(
            "agent forwarding",
            "agent forwarding is not relayed to agentless hosts",
        );
        Ok(false)
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
        self.conn
            .refused("x11-req", "X11 forwarding is not supported");
        reply(session, channel, false)
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.conn.refused(
            &format!("tcpip-forward {}:{port}", clip(address)),
            "remote port forwarding is not supported",
        );
        Ok(false)
    }
}
