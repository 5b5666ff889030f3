//! Agentless OpenSSH hosts (ARCHITECTURE.md §6): the host's sshd trusts
//! only the openssh CA, and the proxy's relay terminates the user's SSH
//! connection. Auth gives the relay a host certificate to present for the
//! node's names, and per session decides (the same login decision a
//! Keygate node makes) and mints a 1-minute openssh-CA certificate for
//! exactly that login, so no certificate a user holds is ever accepted by
//! such a host.

use std::collections::BTreeMap;
use std::time::Duration;

use keygate_api::{
    OpenSshHostCert, OpenSshHostCertRequest, OpenSshSessionGrant, OpenSshSessionRequest,
};
use keygate_audit_model::EventType;
use keygate_ca::{CaKind, HostCertRequest, UserCertRequest, random_serial};
use keygate_policy::{CertFacts, SessionHost, decide_login};
use keygate_types::{AnyResource, Kind, Node};

use crate::{AuthError, AuthServer, Caller};

/// Lifetime of the relay's host certificate for one node; the proxy asks
/// again well before it ends.
const RELAY_HOST_CERT_TTL: Duration = Duration::from_secs(3600);
/// Lifetime of the per-session upstream certificate: only long enough to
/// authenticate, the session then lives on the connection.
const UPSTREAM_CERT_TTL: Duration = Duration::from_secs(60);
/// Backdating for clock skew between auth and the host.
const SKEW: Duration = Duration::from_secs(60);
/// The sub-kind of agentless nodes.
pub const OPENSSH_SUB_KIND: &str = "openssh";

impl AuthServer {
    fn require_proxy(caller: &Caller) -> Result<(), AuthError> {
        match caller {
            Caller::Proxy { internal: true, .. } => Ok(()),
            _ => Err(AuthError::AccessDenied(
                "only the proxy may ask for agentless session certificates".into(),
            )),
        }
    }

    /// The agentless node called `name_or_id`.
    pub(crate) async fn agentless_node(&self, name_or_id: &str) -> Result<Node, AuthError> {
        for r in self.repo().list_resources(Kind::Node).await? {
            if let AnyResource::Node(n) = r
                && n.spec.sub_kind == OPENSSH_SUB_KIND
                && (n.metadata.name == name_or_id || n.spec.id == name_or_id)
            {
                return Ok(n);
            }
        }
        Err(AuthError::NotFound(format!(
            "no agentless node {name_or_id:?}: register it with kgctl nodes add --openssh"
        )))
    }

    /// Names a client may use for `node` (what `kg config` makes ssh check).
    pub(crate) fn host_names(&self, node: &Node) -> Vec<String> {
        vec![
            node.spec.id.clone(),
            node.metadata.name.clone(),
            format!("{}.{}", node.metadata.name, self.cluster()),
        ]
    }

    /// `POST /v1/openssh/host-cert`.
    pub async fn openssh_host_cert(
        &self,
        caller: &Caller,
        req: OpenSshHostCertRequest,
    ) -> Result<OpenSshHostCert, AuthError> {
        Self::require_proxy(caller)?;
        let node = self.agentless_node(&req.node).await?;
        let now = self.clock().now();
        let valid_before = now + RELAY_HOST_CERT_TTL;
        let cert = self
            .host_ca()
            .sign_host_ssh(&HostCertRequest {
                public_key: req.public_key.trim().to_owned(),
                key_id: format!("relay:{}", node.spec.id),
                principals: self.host_names(&node),
                valid_after: now - SKEW,
                valid_before,
                serial: random_serial(),
                extensions: BTreeMap::from([("role@keygate".to_owned(), "proxy".to_owned())]),
            })
            .map_err(bad_key)?;
        Ok(OpenSshHostCert {
            cert,
            valid_before: valid_before.unix_timestamp(),
        })
    }

    /// `POST /v1/openssh/session`: decides, audits, and certifies the
    /// relay's upstream key for exactly this user and login.
    pub async fn openssh_session(
        &self,
        caller: &Caller,
        req: OpenSshSessionRequest,
    ) -> Result<OpenSshSessionGrant, AuthError> {
        Self::require_proxy(caller)?;
        let node = self.agentless_node(&req.node).await?;
        let now = self.clock().now();
        let denied = |user: Option<String>, reason: String| {
            let mut ev = self
                .event(EventType::AuthFailed)
                .node(node.metadata.name.clone())
                .login(req.login.clone())
                .remote_addr(req.client_addr.clone())
                .error(reason.clone())
                .field("via", "openssh-relay");
            if let Some(u) = user {
                ev = ev.user(u);
            }
            (ev, reason)
        };
        let user_ca_keys = self.user_ca().trusted_ssh_keys();
        let cert = match keygate_ca::verify_user_cert(&req.user_cert, &user_ca_keys, now) {
            Ok(c) => c,
            Err(e) => {
                let (ev, reason) = denied(None, format!("certificate refused: {e}"));
                self.audit(ev).await?;
                return Err(AuthError::AccessDenied(reason));
            }
        };
        if !cert.principals.iter().any(|p| p == &req.login) {
            let (ev, reason) = denied(
                Some(cert.key_id.clone()),
                format!(
                    "login {:?} is not in your certificate (principals: {}); run kg login again if your roles changed",
                    req.login,
                    cert.principals.join(", ")
                ),
            );
            self.audit(ev).await?;
            return Err(AuthError::AccessDenied(reason));
        }
        let facts = CertFacts::from_extensions(
            &cert.key_id,
            cert.serial,
            cert.valid_before,
            &cert.extensions,
        );
        let roles = self.roles_by_name().await?;
        let locks = self.repo().locks().await?;
        let mut labels = node.spec.self_labels.clone();
        labels.extend(node.metadata.labels.clone());
        let host = SessionHost {
            name: &node.metadata.name,
            id: &node.spec.id,
            labels: &labels,
        };
        let grant = match decide_login(&roles, &locks, host, &facts, &req.login, now) {
            Ok(g) => g,
            Err(d) => {
                let (ev, reason) = denied(Some(cert.key_id.clone()), d.to_string());
                self.audit(
                    ev.field("rule", d.rule.clone())
                        .field("role", d.role.clone().unwrap_or_default()),
                )
                .await?;
                return Err(AuthError::AccessDenied(reason));
            }
        };
        let session_id = uuid::Uuid::new_v4().to_string();
        // The user's own serial, so a lock on that certificate's serial
        // revokes (in the KRL) every upstream certificate minted from it.
        let serial = cert.serial;
        let mut extensions = BTreeMap::from([("permit-pty".to_owned(), String::new())]);
        if grant.port_forwarding {
            extensions.insert("permit-port-forwarding".into(), String::new());
        }
        let upstream_cert = self
            .ca(CaKind::OpenSsh)
            .ok_or_else(|| AuthError::Internal("the openssh CA is missing".into()))?
            .sign_user_ssh(&UserCertRequest {
                public_key: req.public_key.trim().to_owned(),
                // The user's name, so KRL key-id entries for a user cover
                // these certificates too.
                key_id: cert.key_id.clone(),
                principals: vec![req.login.clone()],
                valid_after: now - SKEW,
                valid_before: now + UPSTREAM_CERT_TTL,
                serial,
                extensions,
            })
            .map_err(bad_key)?;
        let ev = self
            .event(EventType::CertCreate)
            .user(cert.key_id.clone())
            .success(true)
            .node(node.metadata.name.clone())
            .login(req.login.clone())
            .session_id(session_id.clone())
            .remote_addr(req.client_addr.clone())
            .field("cert_type", "openssh")
            .field("serial", serial.to_string())
            .field("ttl_secs", UPSTREAM_CERT_TTL.as_secs())
            .field("allowed_by", grant.allowed_by.clone());
        self.audit(ev).await?;
        let addr = node.spec.addr.clone().ok_or_else(|| {
            AuthError::BadRequest(format!(
                "agentless node {:?} has no address: kgctl nodes add --openssh --address host:22",
                node.metadata.name
            ))
        })?;
        // The node's id or name, never just its address: hosts behind one
        // address (or a reused one) must not pass for each other.
        let host_principals = self.host_names(&node);
        Ok(OpenSshSessionGrant {
            session_id,
            user: cert.key_id,
            cert: upstream_cert,
            addr,
            host_ca_keys: self.host_ca().trusted_ssh_keys(),
            host_principals,
            port_forwarding: grant.port_forwarding,
            idle_timeout_secs: grant.idle_timeout.map(|d| d.as_secs()),
            disconnect_at: grant.disconnect_at.map(|t| t.unix_timestamp()),
            allowed_by: grant.allowed_by,
        })
    }

    /// Every role by name.
    pub(crate) async fn roles_by_name(
        &self,
    ) -> Result<BTreeMap<String, keygate_types::Role>, AuthError> {
        let mut out = BTreeMap::new();
        for r in self.repo().list_resources(Kind::Role).await? {
            if let AnyResource::Role(r) = r {
                out.insert(r.metadata.name.clone(), r);
            }
        }
        Ok(out)
    }
}

/// The host part of `host:port` (IPv6 in brackets).
pub(crate) fn addr_host(addr: &str) -> Option<String> {
    let (host, _port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| host.to_owned())
}

pub(crate) fn bad_key(e: keygate_ca::CaError) -> AuthError {
    match e {
        keygate_ca::CaError::InvalidPublicKey { reason } => {
            AuthError::BadRequest(format!("public_key: {reason}"))
        }
        other => other.into(),
    }
}

impl AuthServer {
    /// `GET /v1/openssh/watch?from=REV` (proxy only).
    pub async fn openssh_watch(
        &self,
        caller: &Caller,
        from: i64,
    ) -> Result<keygate_api::WatchResponse, AuthError> {
        Self::require_proxy(caller)?;
        self.policy_watch(from).await
    }

    /// `POST /v1/openssh/recheck` (proxy only): which live relayed sessions
    /// are no longer allowed (a lock, a role change, an expired
    /// certificate), with the reason shown to their users.
    pub async fn openssh_recheck(
        &self,
        caller: &Caller,
        live: Vec<keygate_api::OpenSshLiveSession>,
    ) -> Result<Vec<keygate_api::OpenSshRevoked>, AuthError> {
        Self::require_proxy(caller)?;
        let now = self.clock().now();
        let roles = self.roles_by_name().await?;
        let locks = self.repo().locks().await?;
        let nodes: Vec<Node> = self
            .repo()
            .list_resources(Kind::Node)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                AnyResource::Node(n) if n.spec.sub_kind == OPENSSH_SUB_KIND => Some(n),
                _ => None,
            })
            .collect();
        let user_ca_keys = self.user_ca().trusted_ssh_keys();
        let mut out = Vec::new();
        for s in live {
            let verdict = match nodes
                .iter()
                .find(|n| n.metadata.name == s.node || n.spec.id == s.node)
            {
                None => Err("the node was removed".to_owned()),
                Some(node) => {
                    match keygate_ca::verify_user_cert(&s.user_cert, &user_ca_keys, now) {
                        Err(e) => Err(format!("certificate no longer valid: {e}")),
                        Ok(cert) => {
                            let mut facts = CertFacts::from_extensions(
                                &cert.key_id,
                                cert.serial,
                                cert.valid_before,
                                &cert.extensions,
                            );
                            facts.session_id = Some(s.session_id.clone());
                            let mut labels = node.spec.self_labels.clone();
                            labels.extend(node.metadata.labels.clone());
                            let host = SessionHost {
                                name: &node.metadata.name,
                                id: &node.spec.id,
                                labels: &labels,
                            };
                            decide_login(&roles, &locks, host, &facts, &s.login, now)
                                .map(|_| ())
                                .map_err(|d| d.to_string())
                        }
                    }
                }
            };
            if let Err(reason) = verdict {
                out.push(keygate_api::OpenSshRevoked {
                    session_id: s.session_id,
                    reason,
                });
            }
        }
        Ok(out)
    }

    /// `POST /v1/openssh/events` (proxy only): audit events of relayed
    /// sessions; only session event types, only for agentless nodes.
    pub async fn openssh_events(
        &self,
        caller: &Caller,
        events: Vec<keygate_audit_model::AuditEvent>,
    ) -> Result<usize, AuthError> {
        Self::require_proxy(caller)?;
        if events.len() > crate::nodes::MAX_EVENTS_PER_CALL {
            return Err(AuthError::BadRequest(format!(
                "at most {} events per call",
                crate::nodes::MAX_EVENTS_PER_CALL
            )));
        }
        // One node lookup per distinct node in the batch, not per event.
        let mut nodes: std::collections::HashMap<String, Node> = std::collections::HashMap::new();
        let mut n = 0;
        for mut ev in events {
            if !crate::nodes::NODE_EVENTS.contains(&ev.event.as_str()) {
                return Err(AuthError::BadRequest(format!(
                    "the relay may not report {:?} events",
                    ev.event
                )));
            }
            let node_name = ev.node.clone().unwrap_or_default();
            let node = match nodes.get(&node_name) {
                Some(n) => n.clone(),
                None => {
                    let found = self.agentless_node(&node_name).await?;
                    nodes.insert(node_name, found.clone());
                    found
                }
            };
            ev.node = Some(node.metadata.name.clone());
            ev.cluster = Some(self.cluster().to_owned());
            ev.fields
                .insert("node_id".into(), serde_json::Value::from(node.spec.id));
            ev.fields
                .insert("via".into(), serde_json::Value::from("openssh-relay"));
            ev.validate()
                .map_err(|e| AuthError::BadRequest(e.to_string()))?;
            self.audit(ev).await?;
            n += 1;
        }
        Ok(n)
    }
}
