//! Authentication of one connection: the certificate checks, the OS login,
//! the authorizer, the session slot, and auditing every refusal.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use russh::Disconnect;
use russh::keys::Certificate;
use russh::server::Auth;

use super::{ConnHandler, clip};
use crate::auth::{self, AuthRequest};
use crate::conn::{Authenticated, Conn};
use crate::events::{ServerStats, SessionIdentity, SshEvent};
use crate::registry::SessionInfo;

impl ConnHandler {
    pub(super) fn note_login(&self, login: &str) {
        *Conn::lock(&self.conn.attempted_login) = Some(clip(login));
    }

    /// Audits a refused authentication.
    pub(super) fn refuse(&self, login: &str, user: Option<String>, reason: String) {
        ServerStats::bump(&self.conn.stats().auth_failures);
        self.conn.emit(SshEvent::AuthFailed {
            remote: self.conn.remote,
            user,
            login: clip(login),
            reason,
        });
    }

    /// Refuses a holder of a valid certificate and tells them why, as the
    /// disconnect reason (ssh prints it), since SSH has no other channel
    /// for it before authentication.
    fn deny(&self, login: &str, user: &str, message: String) {
        self.refuse(login, Some(user.to_owned()), message.clone());
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

    pub(super) async fn check_certificate(&mut self, login: &str, cert: &Certificate) -> Auth {
        self.note_login(login);
        self.conn.cert_checked.store(true, Ordering::Relaxed);
        let server = self.conn.server.clone();
        let now = server.clock.now();
        let trusted = server.authz.trusted_user_ca_keys();
        let verified = match auth::check_certificate(cert, login, &trusted, now) {
            Ok(v) => v,
            Err(refusal) => {
                self.refuse(login, refusal.user, refusal.reason);
                return Auth::reject();
            }
        };
        let user = match auth::lookup_login(login) {
            Ok(u) => u,
            Err(e) => {
                self.deny(login, &verified.key_id, e.to_string());
                return Auth::reject();
            }
        };
        let req = AuthRequest {
            cert: verified.clone(),
            login: login.to_owned(),
            remote: self.conn.remote,
        };
        let grant = match server.authz.authorize(&req).await {
            Ok(g) => g,
            Err(message) => {
                self.deny(login, &verified.key_id, message);
                return Auth::reject();
            }
        };
        let Ok(permit) = server.sessions.clone().try_acquire_owned() else {
            self.deny(
                login,
                &verified.key_id,
                "this node is at its session limit; try again later".to_owned(),
            );
            return Auth::reject();
        };
        *Conn::lock(&self.conn.session_permit) = Some(permit);
        let identity = SessionIdentity {
            session_id: self.conn.id.clone(),
            user: verified.key_id.clone(),
            login: login.to_owned(),
            node: server.node_name.clone(),
            remote: self.conn.remote,
        };
        self.auth = Some(Arc::new(Authenticated {
            identity,
            roles: auth::cert_roles(&verified),
            cert: verified,
            user,
            grant,
            started: now,
            started_mono: server.clock.monotonic(),
        }));
        Auth::Accept
    }

    /// Registers the session and wakes the supervisor.
    pub(super) fn on_authenticated(&self) {
        let Some(auth) = self.auth.clone() else {
            return;
        };
        let server = &self.conn.server;
        server.registry.insert(
            SessionInfo {
                id: self.conn.id.clone(),
                user: auth.identity.user.clone(),
                login: auth.identity.login.clone(),
                remote: self.conn.remote,
                started: auth.started,
                roles: auth.roles.clone(),
                serial: auth.cert.serial,
                cert_valid_before: auth.cert.valid_before,
            },
            self.conn.termination.clone(),
        );
        ServerStats::bump(&server.stats.sessions_started);
        self.conn.emit(SshEvent::SessionStart {
            identity: auth.identity.clone(),
            serial: auth.cert.serial,
            roles: auth.roles.clone(),
        });
        let _ = self.conn.session.set(auth);
        self.conn.touch();
        self.conn.authenticated.cancel();
    }
}
