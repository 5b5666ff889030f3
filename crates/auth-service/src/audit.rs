//! Building and writing audit events from the auth service.

use keygate_audit_model::{Actor, ActorKind, AuditEvent, EventType, Via, event_id};
use rand::RngCore;

use crate::{AuthError, AuthServer, Caller};

impl AuthServer {
    /// A new event stamped with the clock and this cluster.
    pub(crate) fn event(&self, ty: EventType) -> AuditEvent {
        let now = self.clock().now();
        let mut random = [0u8; 10];
        rand::thread_rng().fill_bytes(&mut random);
        AuditEvent::new(ty, now, event_id(now, &random)).cluster(self.cluster())
    }

    /// Writes an event durably. Audited operations fail when this fails
    /// (fail closed): an action that cannot be recorded does not happen.
    pub(crate) async fn audit(&self, event: AuditEvent) -> Result<(), AuthError> {
        self.audit_log()
            .emit(event)
            .await
            .map(|_| ())
            .map_err(|e| AuthError::Audit(e.to_string()))
    }
}

/// The `actor` of an admin change.
pub(crate) fn actor_of(caller: &Caller) -> Actor {
    match caller {
        Caller::AdminSocket { os_user, .. } => Actor {
            name: format!("{os_user} (admin socket)"),
            kind: ActorKind::Human,
            via: Some(Via::Cli),
        },
        Caller::User { name, bot, .. } => Actor {
            name: name.clone(),
            kind: if *bot {
                ActorKind::Bot
            } else {
                ActorKind::Human
            },
            via: Some(Via::Cli),
        },
        Caller::Node { id, .. } => Actor {
            name: format!("node:{id}"),
            kind: ActorKind::System,
            via: None,
        },
        Caller::Proxy { .. } | Caller::Anonymous { .. } => Actor {
            name: "anonymous".into(),
            kind: ActorKind::Human,
            via: Some(Via::Api),
        },
    }
}
