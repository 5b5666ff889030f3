//! Admin operations. Each one authorizes the caller through the policy
//! engine first and audits what it changed, with the actor.

use std::time::Duration;

use keygate_api::{AddUserRequest, CaExport, CaInfo, SignRequest, SignupToken, StatusResponse};
use keygate_audit_model::EventType;
use keygate_ca::CaKind;
use keygate_types::{AnyResource, Kind, Resource, User, UserSpec};

use crate::audit::actor_of;
use crate::issue::IssueContext;
use crate::repo::{failures_key, local_auth_key};
use crate::{AuthError, AuthServer, Caller};

/// Default lifetime of sign-up tokens.
const SIGNUP_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Longest identity `kgctl auth sign` may issue.
const MAX_SIGN_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

impl AuthServer {
    /// `GET /v1/status`.
    pub async fn status(&self, caller: &Caller) -> Result<StatusResponse, AuthError> {
        if matches!(
            caller,
            Caller::Anonymous { .. } | Caller::Proxy { .. } | Caller::Node { .. }
        ) {
            return Err(AuthError::Unauthenticated(
                "status needs a Keygate identity: run kg login".into(),
            ));
        }
        let mut cas = Vec::new();
        for kind in [CaKind::User, CaKind::Host, CaKind::OpenSsh, CaKind::Audit] {
            if let Some(ca) = self.ca(kind) {
                let fps = ca
                    .trusted_ssh_keys()
                    .iter()
                    .filter_map(|k| keygate_ca::ssh_fingerprint(k).ok())
                    .collect();
                cas.push(CaInfo {
                    kind: kind.as_str().into(),
                    ssh_fingerprints: fps,
                    x509_pin: keygate_ca::ca_pin(ca.x509_cert_der()).unwrap_or_default(),
                    rotation: Some(ca.rotation().phase.as_str().into()),
                });
            }
        }
        let who = match caller {
            Caller::AdminSocket { os_user, .. } => format!("{os_user} (admin socket)"),
            Caller::User { name, .. } => name.clone(),
            _ => "anonymous".into(),
        };
        Ok(StatusResponse {
            cluster: self.cluster().into(),
            ca_pin: self.ca_pin(),
            version: env!("CARGO_PKG_VERSION").into(),
            cas,
            caller: who,
            proxy_addr: self.opts().proxy_addr.clone(),
        })
    }

    /// `GET /v1/ca/{kind}`: public material only.
    pub fn ca_export(&self, kind: &str) -> Result<CaExport, AuthError> {
        let k: CaKind = kind.parse().map_err(|_| {
            AuthError::BadRequest(format!("unknown CA type {kind:?}: use user, host or audit"))
        })?;
        let ca = self
            .ca(k)
            .ok_or_else(|| AuthError::NotFound(format!("this cluster has no {kind} CA yet")))?;
        Ok(CaExport {
            kind: kind.into(),
            ssh_public_keys: ca.trusted_ssh_keys(),
            x509_pem: ca.x509_cert_pem(),
        })
    }

    /// `GET /v1/resources/{kind}`.
    pub async fn list(
        &self,
        caller: &Caller,
        kind: Kind,
    ) -> Result<Vec<serde_json::Value>, AuthError> {
        let keep = self.admin_filter(caller, kind.as_str(), "list").await?;
        let items = self.repo().list_resources(kind).await?;
        let mut out = Vec::with_capacity(items.len());
        for r in &items {
            let json = r.to_json().map_err(AuthError::internal)?;
            if keep.matches(&json) {
                out.push(json);
            }
        }
        Ok(out)
    }

    /// `GET /v1/resources/{kind}/{name}`.
    pub async fn read(
        &self,
        caller: &Caller,
        kind: Kind,
        name: &str,
    ) -> Result<serde_json::Value, AuthError> {
        self.authorize_admin_kind(caller, kind.as_str(), "read")
            .await?;
        let r = self
            .repo()
            .get_resource(kind, name)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("{kind} {name:?} not found")))?;
        let json = r.to_json().map_err(AuthError::internal)?;
        self.authorize_item(caller, kind.as_str(), "read", &json)
            .await?;
        Ok(json)
    }

    /// `POST /v1/resources`: create, or overwrite with `force`.
    pub async fn put(
        &self,
        caller: &Caller,
        value: serde_json::Value,
        force: bool,
    ) -> Result<(), AuthError> {
        let r = AnyResource::from_json(value)?;
        let kind = r.kind();
        let existing = self.repo().get_resource(kind, r.name()).await?;
        let verb = if existing.is_some() {
            "update"
        } else {
            "create"
        };
        self.authorize_admin_kind(caller, kind.as_str(), verb)
            .await?;
        // `where` rules judge the item as it is and as it would become.
        if let Some(old) = &existing {
            let json = old.to_json().map_err(AuthError::internal)?;
            self.authorize_item(caller, kind.as_str(), verb, &json)
                .await?;
        }
        let new_json = r.to_json().map_err(AuthError::internal)?;
        self.authorize_item(caller, kind.as_str(), verb, &new_json)
            .await?;
        if existing.is_some() && !force {
            return Err(AuthError::Conflict(format!(
                "{kind} {:?} already exists; use --force to overwrite",
                r.name()
            )));
        }
        let r = match (r, &existing) {
            // Status is maintained by auth, never taken from input.
            (AnyResource::User(mut u), Some(AnyResource::User(old))) => {
                u.spec.status = old.spec.status.clone();
                AnyResource::User(u)
            }
            (AnyResource::User(mut u), None) => {
                u.spec.status = Default::default();
                AnyResource::User(u)
            }
            (AnyResource::Node(n), existing) => {
                AnyResource::Node(crate::openssh_admin::admin_node(n, existing.as_ref())?)
            }
            (other, _) => other,
        };
        let expect = existing
            .as_ref()
            .map(|e| e.metadata().revision.unwrap_or(0))
            .or(Some(0));
        self.repo().put_resource(&r, expect).await?;
        let changed = crate::apply::changed_fields(
            existing.as_ref().and_then(|e| e.to_json().ok()).as_ref(),
            r.to_json().ok().as_ref(),
        );
        self.audit_change(caller, kind, r.name(), verb, &changed)
            .await
    }

    /// `DELETE /v1/resources/{kind}/{name}`.
    pub async fn remove(&self, caller: &Caller, kind: Kind, name: &str) -> Result<(), AuthError> {
        self.authorize_admin_kind(caller, kind.as_str(), "delete")
            .await?;
        if let Some(old) = self.repo().get_resource(kind, name).await? {
            let json = old.to_json().map_err(AuthError::internal)?;
            self.authorize_item(caller, kind.as_str(), "delete", &json)
                .await?;
        }
        if !self.repo().delete_resource(kind, name).await? {
            return Err(AuthError::NotFound(format!("{kind} {name:?} not found")));
        }
        if kind == Kind::User {
            self.repo().backend.delete(&local_auth_key(name)).await?;
            self.repo().backend.delete(&failures_key(name)).await?;
            self.revoke_signup_tokens(name).await?;
        }
        self.audit_change(caller, kind, name, "delete", &[]).await
    }

    /// Deletes every sign-up token issued for `user`: after a reset or a
    /// removal, earlier invitations must stop working.
    async fn revoke_signup_tokens(&self, user: &str) -> Result<(), AuthError> {
        for r in self.repo().list_resources(Kind::Token).await? {
            if let AnyResource::Token(t) = r
                && t.spec.roles.iter().any(|role| role == "signup")
                && t.spec.user.as_ref().is_some_and(|u| u.as_str() == user)
            {
                self.repo().delete_resource(Kind::Token, t.name()).await?;
            }
        }
        Ok(())
    }

    /// Audits an admin change with the actor and the changed field paths.
    pub(crate) async fn audit_change(
        &self,
        caller: &Caller,
        kind: Kind,
        name: &str,
        verb: &str,
        changed: &[String],
    ) -> Result<(), AuthError> {
        let ty = match (kind, verb) {
            (Kind::User, "create") => EventType::UserCreate,
            (Kind::User, "update") => EventType::UserUpdate,
            (Kind::User, _) => EventType::UserDelete,
            (Kind::Role, "create") => EventType::RoleCreated,
            (Kind::Role, "update") => EventType::RoleUpdated,
            (Kind::Role, _) => EventType::RoleDeleted,
            (Kind::Lock, "delete") => EventType::LockDeleted,
            (Kind::Lock, _) => EventType::LockCreated,
            (_, "create") => EventType::ResourceCreated,
            (_, "update") => EventType::ResourceUpdated,
            _ => EventType::ResourceDeleted,
        };
        let ev = self
            .event(ty)
            .actor(actor_of(caller))
            .success(true)
            .field("kind", kind.as_str())
            .field("name", name)
            .field("verb", verb)
            .field("changed_fields", serde_json::json!(changed));
        let ev = if kind == Kind::User {
            ev.user(name)
        } else {
            ev
        };
        self.audit(ev).await
    }

    /// `POST /v1/users`: creates the user and returns a sign-up token.
    pub async fn add_user(
        &self,
        caller: &Caller,
        req: AddUserRequest,
    ) -> Result<SignupToken, AuthError> {
        self.authorize_admin(caller, "user", "create").await?;
        let mut roles = Vec::new();
        for r in &req.roles {
            if self.repo().get_role(r).await?.is_none() {
                return Err(AuthError::BadRequest(format!(
                    "role {r:?} does not exist; see kgctl get roles"
                )));
            }
            roles.push(r.parse()?);
        }
        let user: User = Resource::new(
            Kind::User,
            req.name.clone(),
            UserSpec {
                roles,
                traits: req.traits,
                ..UserSpec::default()
            },
        );
        let any = AnyResource::User(user);
        any.validate()?;
        let ttl = req
            .token_ttl_secs
            .map_or(SIGNUP_TOKEN_TTL, Duration::from_secs);
        // Refuse an unusable lifetime before anything is created.
        self.expiry(ttl)?;
        self.repo().put_resource(&any, Some(0)).await?;
        self.audit_change(caller, Kind::User, &req.name, "create", &[])
            .await?;
        self.create_signup_token(&req.name, ttl).await
    }

    /// `POST /v1/users/{name}/reset`: clears password, TOTP and lockout;
    /// returns a new sign-up token.
    pub async fn reset_user(&self, caller: &Caller, name: &str) -> Result<SignupToken, AuthError> {
        self.authorize_admin(caller, "user", "update").await?;
        let mut user = self
            .repo()
            .get_user(name)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("user {name:?} not found")))?;
        self.repo().backend.delete(&local_auth_key(name)).await?;
        self.repo().backend.delete(&failures_key(name)).await?;
        self.revoke_signup_tokens(name).await?;
        user.spec.status = Default::default();
        self.repo()
            .put_resource(&AnyResource::User(user), None)
            .await?;
        self.audit(
            self.event(EventType::UserPasswordChange)
                .user(name)
                .actor(actor_of(caller))
                .success(true)
                .field("method", "reset"),
        )
        .await?;
        self.create_signup_token(name, SIGNUP_TOKEN_TTL).await
    }

    /// `POST /v1/certs/sign`: an identity for a user or bot (admin only).
    pub async fn sign(
        &self,
        caller: &Caller,
        req: SignRequest,
    ) -> Result<keygate_api::CertsResponse, AuthError> {
        self.authorize_admin(caller, "certificate", "create")
            .await?;
        let ttl = Duration::from_secs(req.ttl_secs);
        if ttl > MAX_SIGN_TTL {
            return Err(AuthError::BadRequest("--ttl may be at most 365d".into()));
        }
        let ctx = IssueContext {
            remote: caller.remote(),
            actor: Some(actor_of(caller)),
            method: "admin",
            max_ttl: Some(MAX_SIGN_TTL),
        };
        self.issue_user_certs(&req.user, &req.public_key, Some(ttl), &ctx)
            .await
    }

    /// `POST /v1/certs/renew`: new certificates for the calling user, no
    /// password needed; roles and locks are re-checked.
    pub async fn renew(
        &self,
        caller: &Caller,
        public_key: &str,
        ttl: Option<Duration>,
    ) -> Result<keygate_api::CertsResponse, AuthError> {
        let Caller::User { name, remote, .. } = caller else {
            return Err(AuthError::Unauthenticated(
                "renewal needs a current certificate: run kg login".into(),
            ));
        };
        let ctx = IssueContext {
            remote: *remote,
            actor: None,
            method: "renewal",
            max_ttl: None,
        };
        self.issue_user_certs(name, public_key, ttl, &ctx).await
    }
}
