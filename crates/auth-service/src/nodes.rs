//! Nodes: join tokens, joining, heartbeats (inventory under a lease), the
//! policy snapshot and change feed nodes decide from, and what users see.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use keygate_api::{
    Heartbeat, JoinRequest, NodeIdentity, NodeInfo, NodeSnapshot, TokenRequest, TokenResponse,
    WatchResponse,
};
use keygate_audit_model::EventType;
use keygate_ca::{HostCertRequest, ServiceKey, SystemRole, X509ServiceRequest, random_serial};
use keygate_policy::{AccessContext, NodeFilter};
use keygate_store::{Compare, Op, WatchEvent};
use keygate_types::{AnyResource, Kind, Labels, Node, NodeSpec, Resource, Token, TokenSpec};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::audit::actor_of;
use crate::issue::pem;
use crate::login::token_name;
use crate::repo::resource_key;
use crate::{AuthError, AuthServer, Caller};

/// Default join-token lifetime.
const TOKEN_TTL: Duration = Duration::from_secs(30 * 60);
/// Node certificates live this long; nodes renew at two thirds.
const NODE_CERT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// A node missing heartbeats for this long disappears from the inventory.
pub const NODE_TTL: Duration = Duration::from_secs(60);
/// Most sessions one node may report.
const MAX_REPORTED_SESSIONS: usize = 4096;
/// Longest a watch call waits for a change.
const WATCH_WAIT: Duration = Duration::from_secs(25);

/// Durable record of a joined node (its inventory entry is leased).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Registration {
    /// Assigned id.
    id: String,
    /// Registered name.
    name: String,
    /// Authoritative labels (from the token or an admin).
    labels: Labels,
}

fn registration_key(id: &str) -> String {
    format!("/registry/node/{id}")
}

impl AuthServer {
    /// `POST /v1/tokens`.
    pub async fn create_token(
        &self,
        caller: &Caller,
        req: TokenRequest,
    ) -> Result<TokenResponse, AuthError> {
        self.authorize_admin(caller, "token", "create").await?;
        if req.kind != "node" {
            return Err(AuthError::BadRequest(format!(
                "unknown token type {:?}: use node",
                req.kind
            )));
        }
        for (k, v) in &req.labels {
            keygate_types::validate_name("label key", k)?;
            if v.len() > 256 {
                return Err(AuthError::BadRequest(format!(
                    "label {k}: value longer than 256 characters"
                )));
            }
        }
        let ttl = req.ttl_secs.map_or(TOKEN_TTL, Duration::from_secs);
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let secret = hex::encode(raw);
        let expires = self.expiry(ttl)?;
        let mut token: Token = Resource::new(
            Kind::Token,
            token_name(&secret),
            TokenSpec {
                roles: vec!["node".into()],
                labels: req.labels.clone(),
                reusable: req.reusable,
                user: None,
            },
        );
        token.metadata.expires = Some(expires);
        self.repo()
            .put_resource(&AnyResource::Token(token), Some(0))
            .await?;
        let ev = self
            .event(EventType::TokenCreate)
            .actor(actor_of(caller))
            .success(true)
            .field("token_type", "node")
            .field("ttl_secs", ttl.as_secs())
            .field("reusable", req.reusable)
            .field("labels", serde_json::json!(req.labels));
        self.audit(ev).await?;
        Ok(TokenResponse {
            token: secret,
            expires,
            ca_pin: self.ca_pin(),
            proxy_addr: self.opts().proxy_addr.clone(),
        })
    }

    /// `POST /v1/join`: validates the token, registers the node and issues
    /// its identity. The id and the name in the certificates are bound
    /// here, never taken on the node's word alone.
    pub async fn join(&self, req: JoinRequest, caller: &Caller) -> Result<NodeIdentity, AuthError> {
        let bad = || {
            AuthError::InvalidCredentials("the join token is invalid, used or expired; create one with kgctl tokens add --type node".into())
        };
        keygate_types::validate_name("node name", &req.node_name)?;
        let name = token_name(&req.token);
        let Some((AnyResource::Token(token), rev)) =
            self.repo().get_resource_rev(Kind::Token, &name).await?
        else {
            self.audit_join_failure(&req, caller, "unknown token")
                .await?;
            return Err(bad());
        };
        let now = self.clock().now();
        if token.metadata.expires.is_none_or(|e| e <= now)
            || !token.spec.roles.iter().any(|r| r == "node")
        {
            self.audit_join_failure(&req, caller, "expired or wrong-type token")
                .await?;
            return Err(bad());
        }
        // A live node of the same name keeps it: a rogue node cannot take
        // over another's name (and so its labels and sessions).
        if let Some(AnyResource::Node(existing)) =
            self.repo().get_resource(Kind::Node, &req.node_name).await?
        {
            self.audit_join_failure(&req, caller, "name in use").await?;
            return Err(AuthError::Conflict(format!(
                "a live node named {:?} exists (id {}); pick another --node-name",
                req.node_name, existing.spec.id
            )));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let reg = Registration {
            id: id.clone(),
            name: req.node_name.clone(),
            labels: token.spec.labels.clone(),
        };
        let reg_bytes = serde_json::to_vec(&reg).map_err(AuthError::internal)?;
        let mut ops = vec![Op::Put {
            key: registration_key(&id),
            value: reg_bytes,
            lease: None,
        }];
        let mut compares = vec![Compare::ModRevision {
            key: resource_key(Kind::Token, &name),
            equals: rev,
        }];
        if !token.spec.reusable {
            // Single use: consuming the token and registering are one
            // atomic step, so two nodes racing with it cannot both win.
            ops.push(Op::Delete {
                key: resource_key(Kind::Token, &name),
            });
        }
        compares.push(Compare::Absent {
            key: registration_key(&id),
        });
        if !self.repo().backend.txn(compares, ops).await?.succeeded {
            return Err(bad());
        }
        let identity = self.node_identity(&reg, &req.ssh_public_key, &req.tls_spki_b64)?;
        let ev = self
            .event(EventType::NodeJoin)
            .node(req.node_name.clone())
            .success(true)
            .field("node_id", id.clone())
            .field("labels", serde_json::json!(reg.labels));
        let ev = match caller.remote() {
            Some(r) => ev.remote_addr(r.to_string()),
            None => ev,
        };
        self.audit(ev).await?;
        self.heartbeat_for(
            &reg,
            Heartbeat {
                addr: req.addr,
                self_labels: req.self_labels,
                version: String::new(),
                sessions: Vec::new(),
            },
        )
        .await?;
        Ok(identity)
    }

    async fn audit_join_failure(
        &self,
        req: &JoinRequest,
        caller: &Caller,
        why: &str,
    ) -> Result<(), AuthError> {
        let ev = self
            .event(EventType::NodeJoin)
            .node(req.node_name.clone())
            .success(false)
            .error(why);
        let ev = match caller.remote() {
            Some(r) => ev.remote_addr(r.to_string()),
            None => ev,
        };
        self.audit(ev).await
    }

    fn node_identity(
        &self,
        reg: &Registration,
        ssh_public_key: &str,
        tls_spki_b64: &str,
    ) -> Result<NodeIdentity, AuthError> {
        let now = self.clock().now();
        let valid_before = now + NODE_CERT_TTL;
        let host_cert = self
            .host_ca()
            .sign_host_ssh(&HostCertRequest {
                public_key: ssh_public_key.trim().to_owned(),
                key_id: reg.id.clone(),
                // `name.cluster` is what `kg config`'s Host pattern makes ssh check.
                principals: vec![
                    reg.id.clone(),
                    reg.name.clone(),
                    format!("{}.{}", reg.name, self.cluster()),
                ],
                valid_after: now - Duration::from_secs(60),
                valid_before,
                serial: random_serial(),
                extensions: BTreeMap::from([("role@keygate".to_owned(), "node".to_owned())]),
            })
            .map_err(|e| match e {
                keygate_ca::CaError::InvalidPublicKey { reason } => {
                    AuthError::BadRequest(format!("ssh_public_key: {reason}"))
                }
                other => other.into(),
            })?;
        let spki = base64::engine::general_purpose::STANDARD
            .decode(tls_spki_b64)
            .map_err(|_| AuthError::BadRequest("tls_spki_b64 is not base64".into()))?;
        let cert = self
            .host_ca()
            .sign_x509_service(&X509ServiceRequest {
                key: ServiceKey::Spki(spki),
                common_name: reg.id.clone(),
                dns_names: vec![],
                ip_addresses: vec![],
                system_role: SystemRole::Node,
                not_before: now - Duration::from_secs(60),
                not_after: valid_before,
            })
            .map_err(|e| match e {
                keygate_ca::CaError::InvalidPublicKey { reason } => {
                    AuthError::BadRequest(format!("tls_spki_b64: {reason}"))
                }
                other => other.into(),
            })?;
        Ok(NodeIdentity {
            node_id: reg.id.clone(),
            node_name: reg.name.clone(),
            cluster: self.cluster().to_owned(),
            host_cert,
            x509_cert_pem: pem("CERTIFICATE", &cert.cert_der),
            host_ca_pem: self.host_ca().x509_cert_pem(),
            user_ca_ssh: self.user_ca().trusted_ssh_keys(),
            tunnel_addr: self.opts().tunnel_addr.clone(),
            valid_before,
        })
    }

    async fn registration(&self, caller: &Caller) -> Result<Registration, AuthError> {
        let Caller::Node { id, .. } = caller else {
            return Err(AuthError::Unauthenticated(
                "this endpoint is for nodes".into(),
            ));
        };
        self.repo()
            .get_json::<Registration>(&registration_key(id))
            .await?
            .map(|(r, _)| r)
            .ok_or_else(|| {
                AuthError::AccessDenied(format!(
                    "node {id} is not registered (removed?); join again"
                ))
            })
    }

    /// `POST /v1/nodes/renew`: fresh certificates for a node's (new) keys.
    pub async fn renew_node(
        &self,
        caller: &Caller,
        ssh_public_key: &str,
        tls_spki_b64: &str,
    ) -> Result<NodeIdentity, AuthError> {
        let reg = self.registration(caller).await?;
        self.node_identity(&reg, ssh_public_key, tls_spki_b64)
    }

    /// `POST /v1/nodes/heartbeat`.
    pub async fn heartbeat(&self, caller: &Caller, hb: Heartbeat) -> Result<(), AuthError> {
        let reg = self.registration(caller).await?;
        self.heartbeat_for(&reg, hb).await
    }

    async fn heartbeat_for(&self, reg: &Registration, hb: Heartbeat) -> Result<(), AuthError> {
        let mut node: Node = Resource::new(
            Kind::Node,
            reg.name.clone(),
            NodeSpec {
                id: reg.id.clone(),
                addr: hb.addr,
                sub_kind: "keygate".into(),
                self_labels: hb.self_labels,
            },
        );
        node.metadata.labels = reg.labels.clone();
        // Each heartbeat writes the entry under a fresh lease: if the node
        // stops, the entry expires and watchers see it go.
        let lease = self.repo().backend.grant_lease(NODE_TTL).await?;
        self.repo()
            .put_resource_leased(&AnyResource::Node(node), lease)
            .await?;
        // Live sessions go with the same lease: a silent node's sessions
        // disappear with it.
        let sessions: Vec<keygate_api::SessionSummary> = hb
            .sessions
            .into_iter()
            .take(MAX_REPORTED_SESSIONS)
            .map(|mut s| {
                s.node = reg.name.clone();
                s
            })
            .collect();
        let bytes = serde_json::to_vec(&sessions).map_err(AuthError::internal)?;
        self.repo()
            .backend
            .put(
                &format!("/inventory/sessions/{}", reg.name),
                bytes,
                Some(lease),
            )
            .await?;
        Ok(())
    }

    /// `GET /v1/nodes/snapshot`.
    pub async fn node_snapshot(&self, caller: &Caller) -> Result<NodeSnapshot, AuthError> {
        let reg = self.registration(caller).await?;
        // The snapshot is at least as new as `revision`; a change after it
        // shows up in the next watch (at worst one extra refresh).
        let revision = self.repo().backend.current_revision().await?;
        let roles = self.repo().list_resources(Kind::Role).await?;
        let locks = self.repo().list_resources(Kind::Lock).await?;
        let to_json = |v: Vec<AnyResource>| -> Result<Vec<serde_json::Value>, AuthError> {
            v.iter()
                .map(|r| r.to_json().map_err(AuthError::internal))
                .collect()
        };
        Ok(NodeSnapshot {
            revision,
            roles: to_json(roles)?,
            locks: to_json(locks)?,
            user_ca_ssh: self.user_ca().trusted_ssh_keys(),
            labels: reg.labels,
            node_name: reg.name,
            host_ca_signing: Some(self.host_ca().ssh_public_key()),
        })
    }

    /// `GET /v1/nodes/watch?from=REV`: returns as soon as a role or lock
    /// changed after `from`, or after a bounded wait.
    pub async fn node_watch(&self, caller: &Caller, from: i64) -> Result<WatchResponse, AuthError> {
        self.registration(caller).await?;
        self.policy_watch(from).await
    }

    /// Waits until a role or lock changes after `from` (or a bounded time
    /// passes): what nodes and the relay re-check live sessions on.
    pub(crate) async fn policy_watch(&self, from: i64) -> Result<WatchResponse, AuthError> {
        // From the root: roles and locks live under /resources/, CA keys
        // (rotations) under /secrets/ca/. Only keys are looked at.
        let mut watch = self
            .repo()
            .backend
            .watch("/", from.saturating_add(1))
            .await?;
        let deadline = tokio::time::sleep(WATCH_WAIT);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => {
                    return Ok(WatchResponse { revision: self.repo().backend.current_revision().await?, changed: false });
                }
                ev = watch.next() => match ev {
                    None | Some(WatchEvent::Compacted { .. }) => {
                        return Ok(WatchResponse { revision: self.repo().backend.current_revision().await?, changed: true });
                    }
                    Some(e) => {
                        let relevant = e.key().is_some_and(|k| k.starts_with("/resources/role/") || k.starts_with("/resources/lock/") || k.starts_with("/secrets/ca/"));
                        if relevant {
                            return Ok(WatchResponse { revision: e.revision(), changed: true });
                        }
                    }
                },
            }
        }
    }

    /// `GET /v1/nodes`: the nodes the caller may log in to, with the logins.
    pub async fn list_nodes(&self, caller: &Caller) -> Result<Vec<NodeInfo>, AuthError> {
        let keep = self.admin_filter(caller, "node", "list").await?;
        let identity = match caller {
            Caller::User { name, .. } => {
                let user = self
                    .repo()
                    .get_user(name)
                    .await?
                    .ok_or_else(|| AuthError::AccessDenied("user gone".into()))?;
                Some(self.identity_of(&user).await?)
            }
            _ => None,
        };
        let locks = self.repo().locks().await?;
        let now = self.clock().now();
        let ctx = AccessContext {
            locks: &locks,
            ..AccessContext::default()
        };
        // Compiled once for the listing: the same answers as `authorize`
        // per (node, login), without redoing per node what depends only on
        // the identity, nor phrasing refusals nobody reads.
        let filter = identity.as_ref().map(|id| NodeFilter::new(id, &ctx, now));
        let mut out = Vec::new();
        for r in self.repo().list_resources(Kind::Node).await? {
            if !keep.matches(&r.to_json().map_err(AuthError::internal)?) {
                continue;
            }
            let AnyResource::Node(n) = r else { continue };
            let mut labels = n.spec.self_labels.clone();
            labels.extend(n.metadata.labels.clone());
            let logins = match &filter {
                Some(f) => f.logins(&n.metadata.name, &n.spec.id, &labels),
                None => vec![],
            };
            if identity.is_some() && logins.is_empty() {
                continue;
            }
            out.push(NodeInfo {
                name: n.metadata.name.clone(),
                id: n.spec.id.clone(),
                labels,
                addr: n.spec.addr.clone(),
                logins,
                sub_kind: n.spec.sub_kind.clone(),
            });
        }
        Ok(out)
    }
}

/// Most events one node may send in one call.
pub(crate) const MAX_EVENTS_PER_CALL: usize = 1000;

/// Event types a node may report; everything else is refused, so a
/// compromised node cannot forge admin or login events.
pub(crate) const NODE_EVENTS: &[&str] = &[
    "session.start",
    "session.end",
    "exec",
    "scp",
    "port_forward",
    "auth.failed",
];

impl AuthServer {
    /// `POST /v1/nodes/events`: audit events from a node. Auth stamps the
    /// node name and cluster from the sender's registration, whatever the
    /// node wrote there.
    pub async fn node_events(
        &self,
        caller: &Caller,
        events: Vec<keygate_audit_model::AuditEvent>,
    ) -> Result<usize, AuthError> {
        let reg = self.registration(caller).await?;
        if events.len() > MAX_EVENTS_PER_CALL {
            return Err(AuthError::BadRequest(format!(
                "at most {MAX_EVENTS_PER_CALL} events per call"
            )));
        }
        let mut n = 0;
        for mut ev in events {
            if !NODE_EVENTS.contains(&ev.event.as_str()) {
                return Err(AuthError::BadRequest(format!(
                    "nodes may not report {:?} events",
                    ev.event
                )));
            }
            ev.node = Some(reg.name.clone());
            ev.cluster = Some(self.cluster().to_owned());
            ev.fields
                .insert("node_id".into(), serde_json::Value::from(reg.id.clone()));
            ev.validate()
                .map_err(|e| AuthError::BadRequest(e.to_string()))?;
            self.audit(ev).await?;
            n += 1;
        }
        Ok(n)
    }
}

impl AuthServer {
    /// `GET /v1/sessions`: live sessions reported by nodes (refreshed at
    /// every heartbeat, so up to 20 s old).
    pub async fn list_sessions(
        &self,
        caller: &Caller,
    ) -> Result<Vec<keygate_api::SessionSummary>, AuthError> {
        let keep = self.admin_filter(caller, "session", "list").await?;
        let mut out = Vec::new();
        for kv in self.repo().backend.range("/inventory/sessions/").await? {
            if let Ok(list) = serde_json::from_slice::<Vec<keygate_api::SessionSummary>>(&kv.value)
            {
                out.extend(
                    list.into_iter()
                        .filter(|s| serde_json::to_value(s).is_ok_and(|v| keep.matches(&v))),
                );
            }
        }
        out.sort_by_key(|s| s.started);
        Ok(out)
    }
}
