//! Admin side of agentless OpenSSH hosts: registering them (`kgctl nodes
//! add --openssh`) and signing their sshd's host key (`kgctl auth sign
//! --host`), so clients and the relay can tell the host from an impostor.

use std::collections::BTreeMap;
use std::time::Duration;

use keygate_api::{HostSignRequest, HostSignResponse};
use keygate_audit_model::EventType;
use keygate_ca::{HostCertRequest, random_serial};
use keygate_types::{AnyResource, Node};

use crate::audit::actor_of;
use crate::openssh::OPENSSH_SUB_KIND;
use crate::{AuthError, AuthServer, Caller};

/// Default lifetime of an agentless host's certificate.
const HOST_CERT_DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest lifetime `kgctl auth sign --host` may ask for.
const HOST_CERT_MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

impl AuthServer {
    /// `POST /v1/certs/host`: a host certificate for an agentless node's
    /// own sshd key, naming the node (id, name, name.cluster, address host).
    pub async fn sign_host(
        &self,
        caller: &Caller,
        req: HostSignRequest,
    ) -> Result<HostSignResponse, AuthError> {
        self.authorize_admin(caller, "host_cert", "create").await?;
        let node = self.agentless_node(&req.node).await?;
        let ttl = match req.ttl_secs {
            None | Some(0) => HOST_CERT_DEFAULT_TTL,
            Some(s) => Duration::from_secs(s).min(HOST_CERT_MAX_TTL),
        };
        let now = self.clock().now();
        let valid_before = now + ttl;
        let mut principals = self.host_names(&node);
        if let Some(h) = node
            .spec
            .addr
            .as_deref()
            .and_then(crate::openssh::addr_host)
        {
            principals.push(h);
        }
        let serial = random_serial();
        let cert = self
            .host_ca()
            .sign_host_ssh(&HostCertRequest {
                public_key: req.public_key.trim().to_owned(),
                key_id: node.spec.id.clone(),
                principals: principals.clone(),
                valid_after: now - Duration::from_secs(60),
                valid_before,
                serial,
                extensions: BTreeMap::from([("role@keygate".to_owned(), "node".to_owned())]),
            })
            .map_err(crate::openssh::bad_key)?;
        let ev = self
            .event(EventType::CertCreate)
            .actor(actor_of(caller))
            .node(node.metadata.name.clone())
            .success(true)
            .field("cert_type", "host")
            .field("serial", serial.to_string())
            .field("principals", serde_json::json!(principals))
            .field("ttl_secs", ttl.as_secs());
        self.audit(ev).await?;
        Ok(HostSignResponse {
            cert,
            principals,
            valid_before: valid_before.unix_timestamp(),
        })
    }
}

/// Checks an admin-written agentless node: it needs a `host:port`, and its
/// id is auth's to assign and keep. (Keygate nodes join with a token.)
pub(crate) fn admin_node(mut n: Node, existing: Option<&AnyResource>) -> Result<Node, AuthError> {
    if n.spec.sub_kind != OPENSSH_SUB_KIND {
        // Inventory entries of Keygate nodes are written by heartbeats; an
        // admin edit is overwritten by the next one.
        return Ok(n);
    }
    let addr = n.spec.addr.as_deref().unwrap_or_default();
    let port_ok = addr
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0));
    if !port_ok {
        return Err(AuthError::BadRequest(format!(
            "node {:?}: addr must be host:port of its sshd (got {addr:?})",
            n.metadata.name
        )));
    }
    n.spec.id = match existing {
        Some(AnyResource::Node(old)) if old.spec.sub_kind == OPENSSH_SUB_KIND => {
            old.spec.id.clone()
        }
        Some(_) => {
            return Err(AuthError::Conflict(format!(
                "node {:?} is a Keygate node that joined with a token; remove it first",
                n.metadata.name
            )));
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    Ok(n)
}
