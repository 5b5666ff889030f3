//! The two traits the SSH server needs, implemented for a node: access
//! decisions over the policy snapshot, and audit events to auth.

use std::collections::BTreeMap;
use std::sync::Arc;

use keygate_audit_model::{AuditEvent, EventType, event_id};
use keygate_clock::SharedClock;
use keygate_sshd::{
    AuthRequest, Authorizer, SessionEvents, SessionGrant, SessionIdentity, SshEvent,
};
use rand::RngCore;

use crate::decide::{CertFacts, decide};
use crate::{EventUploader, PolicyCache};

/// Decides with the local snapshot.
pub struct NodeAuthorizer {
    /// Policy snapshot.
    pub cache: PolicyCache,
    /// This node's id.
    pub node_id: String,
    /// Labels the node reports itself.
    pub self_labels: BTreeMap<String, String>,
    /// The clock.
    pub clock: SharedClock,
}

#[async_trait::async_trait]
impl Authorizer for NodeAuthorizer {
    fn trusted_user_ca_keys(&self) -> Vec<String> {
        self.cache.current().user_ca_ssh.clone()
    }

    async fn authorize(&self, req: &AuthRequest) -> Result<SessionGrant, String> {
        let c = &req.cert;
        let facts = CertFacts::from_extensions(&c.key_id, c.serial, c.valid_before, &c.extensions);
        let snap = self.cache.current();
        let g = decide(
            &snap,
            &self.node_id,
            &self.self_labels,
            &facts,
            &req.login,
            self.clock.now(),
        )
        .map_err(|d| d.reason)?;
        Ok(SessionGrant {
            port_forwarding: g.port_forwarding,
            agent_forwarding: g.agent_forwarding,
            idle_timeout: g.idle_timeout,
            disconnect_at: g.disconnect_at,
        })
    }
}

/// Turns server events into audit events queued for auth.
pub struct NodeEvents {
    /// Outgoing queue.
    pub uploader: EventUploader,
    /// The clock.
    pub clock: SharedClock,
    /// Rung when a session starts or ends, so the next heartbeat (which
    /// reports live sessions) goes out at once.
    pub sessions_changed: Arc<tokio::sync::Notify>,
}

impl NodeEvents {
    fn base(&self, ty: EventType, who: Option<&SessionIdentity>) -> AuditEvent {
        let now = self.clock.now();
        let mut r = [0u8; 10];
        rand::thread_rng().fill_bytes(&mut r);
        let ev = AuditEvent::new(ty, now, event_id(now, &r));
        match who {
            Some(w) => ev
                .user(w.user.clone())
                .login(w.login.clone())
                .session_id(w.session_id.clone())
                .remote_addr(w.remote.to_string()),
            None => ev,
        }
    }
}

impl SessionEvents for NodeEvents {
    fn event(&self, ev: SshEvent) {
        if matches!(
            ev,
            SshEvent::SessionStart { .. } | SshEvent::SessionEnd { .. }
        ) {
            self.sessions_changed.notify_one();
        }
        let out = match ev {
            SshEvent::AuthFailed {
                remote,
                user,
                login,
                reason,
            } => {
                let e = self
                    .base(EventType::AuthFailed, None)
                    .login(login)
                    .remote_addr(remote.to_string())
                    .error(reason);
                Some(match user {
                    Some(u) => e.user(u),
                    None => e,
                })
            }
            SshEvent::SessionStart {
                identity,
                serial,
                roles,
            } => Some(
                self.base(EventType::SessionStart, Some(&identity))
                    .field("serial", serial.to_string())
                    .field("roles", serde_json::json!(roles)),
            ),
            SshEvent::SessionEnd {
                identity,
                duration,
                bytes_in,
                bytes_out,
                reason,
            } => Some(
                self.base(EventType::SessionEnd, Some(&identity))
                    .field(
                        "duration_ms",
                        u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                    )
                    .field("bytes_in", bytes_in)
                    .field("bytes_out", bytes_out)
                    .field("reason", format!("{reason:?}")),
            ),
            SshEvent::Exec {
                identity,
                command,
                exit_code,
                signal,
                error,
            } => {
                let e = self
                    .base(EventType::Exec, Some(&identity))
                    .field("command", command)
                    .field("exit_code", serde_json::json!(exit_code));
                let e = match signal {
                    Some(s) => e.field("signal", s),
                    None => e,
                };
                Some(match error {
                    Some(err) => e.success(false).error(err),
                    None => e,
                })
            }
            SshEvent::Sftp {
                identity,
                bytes_in,
                bytes_out,
                exit_code,
                error,
            } => {
                let e = self
                    .base(EventType::Scp, Some(&identity))
                    .field("protocol", "sftp")
                    .field("bytes_in", bytes_in)
                    .field("bytes_out", bytes_out)
                    .field("exit_code", serde_json::json!(exit_code));
                Some(match error {
                    Some(err) => e.success(false).error(err),
                    None => e,
                })
            }
            SshEvent::PortForward {
                identity,
                host,
                port,
                allowed,
                reason,
            } => {
                let e = self
                    .base(EventType::PortForward, Some(&identity))
                    .field("host", host)
                    .field("port", port)
                    .success(allowed);
                Some(match reason {
                    Some(r) => e.error(r),
                    None => e,
                })
            }
            // Connection-level refusals are counted in stats; shells,
            // agent requests and other denials are covered by session
            // events for now.
            _ => None,
        };
        if let Some(e) = out {
            self.uploader.push(e);
        }
    }
}

/// Shared handles for the glue.
pub fn glue(
    cache: PolicyCache,
    node_id: String,
    self_labels: BTreeMap<String, String>,
    uploader: EventUploader,
    clock: SharedClock,
    sessions_changed: Arc<tokio::sync::Notify>,
) -> (Arc<NodeAuthorizer>, Arc<NodeEvents>) {
    (
        Arc::new(NodeAuthorizer {
            cache,
            node_id,
            self_labels,
            clock: clock.clone(),
        }),
        Arc::new(NodeEvents {
            uploader,
            clock,
            sessions_changed,
        }),
    )
}
