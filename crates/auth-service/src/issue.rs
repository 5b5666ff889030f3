//! Certificate issuance: the only place user certificates are made.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use keygate_api::CertsResponse;
use keygate_audit_model::{Actor, EventType};
use keygate_ca::{
    ServiceKey, SystemRole, UserCertRequest, X509ServiceRequest, X509UserRequest, random_serial,
};
use keygate_policy::{
    AccessContext, Action, Identity, Permit, Target, allowed_logins, authorize, combine_options,
};
use keygate_types::User;

use crate::{AuthError, AuthServer};

/// Principal every user certificate carries, so that the list is never
/// empty (OpenSSH treats an empty list as "any login"). No OS account can
/// have this name: login names may not start with '-'.
pub const INTERNAL_PRINCIPAL: &str = "-keygate-internal";
/// Certificates are backdated by this much to absorb clock skew.
const BACKDATE: Duration = Duration::from_secs(60);
/// Shortest certificate lifetime.
const MIN_TTL: Duration = Duration::from_secs(60);

/// Facts about an issuance request, for policy and the audit log.
#[derive(Debug, Clone, Default)]
pub struct IssueContext {
    /// Client address.
    pub remote: Option<IpAddr>,
    /// Who asked, when not the user (e.g. an admin's `kgctl auth sign`).
    pub actor: Option<Actor>,
    /// How the user proved who they are (`password`, `password+totp`,
    /// `renewal`, `admin`).
    pub method: &'static str,
    /// Cluster cap on the lifetime for this issuance (None: the default
    /// user cap, `AuthOptions::max_user_cert_ttl`).
    pub max_ttl: Option<Duration>,
}

/// A TLS identity for one of our own listeners or clients.
pub struct ServiceIdentity {
    /// Certificate chain, leaf first then the host CA (so clients that pin
    /// the CA can find it).
    pub chain_der: Vec<Vec<u8>>,
    /// PKCS#8 private key (DER).
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for ServiceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceIdentity { key: <redacted> }")
    }
}

impl AuthServer {
    /// The policy view of a user: roles resolved from the store now (not
    /// from any certificate), so role changes apply at once.
    /// An expired user has no roles (so nothing is allowed) and expired
    /// roles grant nothing.
    pub(crate) async fn identity_of(&self, user: &User) -> Result<Identity, AuthError> {
        let now = self.clock().now();
        let live = |e: Option<time::OffsetDateTime>| e.is_none_or(|e| e > now);
        let roles = if live(user.metadata.expires) {
            self.repo()
                .roles_of(user)
                .await?
                .into_iter()
                .filter(|r| live(r.metadata.expires))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Identity {
            user: user.metadata.name.clone(),
            roles,
            traits: user.spec.traits.clone(),
        })
    }

    /// Issues SSH + X.509 certificates for `user_name` on `public_key`.
    pub async fn issue_user_certs(
        &self,
        user_name: &str,
        public_key: &str,
        requested_ttl: Option<Duration>,
        ctx: &IssueContext,
    ) -> Result<CertsResponse, AuthError> {
        let user =
            self.repo().get_user(user_name).await?.ok_or_else(|| {
                AuthError::AccessDenied(format!("user {user_name:?} does not exist"))
            })?;
        let identity = self.identity_of(&user).await?;
        let locks = self.repo().locks().await?;
        let now = self.clock().now();
        let permit = authorize(
            &identity,
            Target::Certificate,
            Action::Issue,
            &AccessContext {
                locks: &locks,
                ..AccessContext::default()
            },
            now,
        );
        let permit = match permit {
            Ok(p) => p,
            Err(denial) => {
                let ev = self
                    .event(EventType::AuthFailed)
                    .user(user_name)
                    .error(denial.reason.clone())
                    .field("rule", serde_json::Value::from(denial.rule.clone()));
                self.audit(ev).await?;
                return Err(denial.into());
            }
        };
        self.sign_for(&permit, &identity, public_key, requested_ttl, ctx)
            .await
    }

    async fn sign_for(
        &self,
        _permit: &Permit,
        identity: &Identity,
        public_key: &str,
        requested_ttl: Option<Duration>,
        ctx: &IssueContext,
    ) -> Result<CertsResponse, AuthError> {
        let options = combine_options(&identity.roles);
        let wanted = requested_ttl.unwrap_or(self.opts().default_cert_ttl);
        if wanted < MIN_TTL {
            return Err(AuthError::BadRequest(
                "certificate TTL must be at least 1m".into(),
            ));
        }
        // Roles cap the lifetime; so does the cluster, even when no role
        // does (admins issuing bot identities get a longer cap).
        let cluster_cap = ctx.max_ttl.unwrap_or(self.opts().max_user_cert_ttl);
        let ttl = options
            .max_session_ttl
            .map_or(wanted, |max| wanted.min(max))
            .min(cluster_cap);
        // Rounding up to the minimum would outlive what a role allows.
        if ttl < MIN_TTL {
            return Err(AuthError::AccessDenied(format!(
                "your roles' max_session_ttl ({}s) is below the 1m minimum certificate lifetime; ask an admin to raise it",
                ttl.as_secs()
            )));
        }
        // Certificates carry whole seconds; so does what we report.
        let now = self
            .clock()
            .now()
            .replace_nanosecond(0)
            .unwrap_or(self.clock().now());
        let valid_after = now - BACKDATE;
        let valid_before = time::Duration::try_from(ttl)
            .ok()
            .and_then(|d| now.checked_add(d))
            .ok_or_else(|| {
                AuthError::BadRequest(format!("a lifetime of {}s is out of range", ttl.as_secs()))
            })?;
        let mut principals = allowed_logins(identity);
        principals.push(INTERNAL_PRINCIPAL.to_owned());
        let roles: Vec<String> = identity
            .roles
            .iter()
            .map(|r| r.metadata.name.clone())
            .collect();
        let mut extensions = BTreeMap::from([("permit-pty".to_owned(), String::new())]);
        if options.port_forwarding {
            extensions.insert("permit-port-forwarding".into(), String::new());
        }
        if options.agent_forwarding {
            extensions.insert("permit-agent-forwarding".into(), String::new());
        }
        extensions.insert(
            "roles@keygate".into(),
            serde_json::to_string(&roles).map_err(AuthError::internal)?,
        );
        extensions.insert(
            "traits@keygate".into(),
            serde_json::to_string(&identity.traits).map_err(AuthError::internal)?,
        );
        let serial = random_serial();
        let ssh_cert = self
            .user_ca()
            .sign_user_ssh(&UserCertRequest {
                public_key: public_key.trim().to_owned(),
                key_id: identity.user.clone(),
                principals: principals.clone(),
                valid_after,
                valid_before,
                serial,
                extensions,
            })
            .map_err(|e| match e {
                keygate_ca::CaError::InvalidPublicKey { reason } => {
                    AuthError::BadRequest(format!("public key: {reason}"))
                }
                other => other.into(),
            })?;
        let x509 = self.user_ca().sign_x509_user(&X509UserRequest {
            public_key_openssh: public_key.trim().to_owned(),
            common_name: identity.user.clone(),
            roles: roles.clone(),
            traits: identity.traits.clone(),
            not_before: valid_after,
            not_after: valid_before,
            serial,
        })?;
        let mut ev = self
            .event(EventType::CertCreate)
            .user(identity.user.clone())
            .success(true)
            .field("serial", serial.to_string())
            .field("principals", serde_json::json!(principals))
            .field("roles", serde_json::json!(roles))
            .field("ttl_secs", ttl.as_secs())
            .field("cert_type", "user")
            .field("method", ctx.method);
        if let Some(r) = ctx.remote {
            ev = ev.remote_addr(r.to_string());
        }
        if let Some(a) = &ctx.actor {
            ev = ev.actor(a.clone());
        }
        self.audit(ev).await?;
        Ok(CertsResponse {
            user: identity.user.clone(),
            cluster: self.cluster().to_owned(),
            ssh_cert,
            x509_cert_pem: pem("CERTIFICATE", &x509),
            host_ca_pem: self.host_ca().x509_cert_pem(),
            host_ca_ssh: self.host_ca().trusted_ssh_keys(),
            user_ca_ssh: self.user_ca().trusted_ssh_keys(),
            principals,
            roles,
            serial,
            valid_before,
        })
    }

    /// A TLS identity for one of this cluster's services, signed by the
    /// host CA (used by the in-process proxy and auth listeners).
    pub fn issue_service_identity(
        &self,
        role: SystemRole,
        dns_names: Vec<String>,
        ips: Vec<IpAddr>,
        ttl: Duration,
    ) -> Result<ServiceIdentity, AuthError> {
        let now = self.clock().now();
        let cert = self.host_ca().sign_x509_service(&X509ServiceRequest {
            key: ServiceKey::GenerateP256,
            common_name: format!("{}.{}", role.as_str(), self.cluster()),
            dns_names,
            ip_addresses: ips,
            system_role: role,
            not_before: now - BACKDATE,
            not_after: self.expiry(ttl)?,
        })?;
        let key_der = cert
            .private_key_pkcs8
            .as_ref()
            .map(|k| k.to_vec())
            .ok_or_else(|| AuthError::Internal("service key was not generated".into()))?;
        Ok(ServiceIdentity {
            chain_der: vec![
                cert.cert_der.clone(),
                self.host_ca().x509_cert_der().to_vec(),
            ],
            key_der,
        })
    }
}

impl AuthServer {
    /// `now + ttl`, refusing lifetimes past the representable range.
    pub(crate) fn expiry(&self, ttl: Duration) -> Result<time::OffsetDateTime, AuthError> {
        time::Duration::try_from(ttl)
            .ok()
            .and_then(|d| self.clock().now().checked_add(d))
            .ok_or_else(|| {
                AuthError::BadRequest(format!("a lifetime of {}s is out of range", ttl.as_secs()))
            })
    }
}

/// PEM-encodes DER.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
