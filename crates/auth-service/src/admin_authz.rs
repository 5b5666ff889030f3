//! The one gate for admin verbs. Roles decide per kind and, with a rule
//! `where`, per item: `authorize_admin` is for operations on a kind as a
//! whole and refuses a grant that holds only for some items;
//! `authorize_item` judges one stored or proposed item; `admin_filter`
//! keeps the items of a listing the caller may see. Every denial is
//! audited.

use keygate_audit_model::EventType;
use keygate_policy::{AccessContext, Action, Identity, Permit, Target, authorize};
use keygate_types::Lock;

use crate::audit::actor_of;
use crate::{AuthError, AuthServer, Caller};

/// The rule name of a kind-level grant that holds only for some items.
const CONDITIONAL: &str = "allow.rules.where";

/// Keeps the items of a listing the caller's rules allow.
pub(crate) struct AdminFilter {
    /// Whose access.
    identity: Identity,
    /// Kind listed.
    kind: String,
    /// Verb (`list`).
    verb: String,
}

impl AdminFilter {
    /// Whether the caller may see `item` (a resource or event as JSON).
    pub(crate) fn matches(&self, item: &serde_json::Value) -> bool {
        keygate_policy::rule_filter(&self.identity, &self.kind, &self.verb).matches(item)
    }
}

impl AuthServer {
    /// The caller as the policy engine sees it, with the locks in force.
    async fn admin_identity(&self, caller: &Caller) -> Result<(Identity, Vec<Lock>), AuthError> {
        // The admin socket is the break-glass path of the auth host's own
        // operator: locks (e.g. on role admin) must not lock it out too.
        let locks = match caller {
            Caller::AdminSocket { .. } => Vec::new(),
            _ => self.repo().locks().await?,
        };
        let identity = match caller {
            // The admin socket is only reachable by the daemon's own OS user
            // (or root): it acts with the built-in admin role, which cannot
            // be edited away from under it.
            Caller::AdminSocket { .. } => Identity {
                user: "system:admin-socket".into(),
                roles: keygate_types::builtin_roles()
                    .into_iter()
                    .filter(|r| r.name() == "admin")
                    .collect(),
                traits: Default::default(),
            },
            Caller::User { name, .. } => {
                let user = self.repo().get_user(name).await?.ok_or_else(|| {
                    AuthError::AccessDenied(format!("user {name:?} no longer exists"))
                })?;
                self.identity_of(&user).await?
            }
            Caller::Node { .. } | Caller::Proxy { .. } | Caller::Anonymous { .. } => {
                return Err(AuthError::Unauthenticated(
                    "this needs a Keygate identity: run kg login, or kgctl --data-dir on the auth host".into(),
                ));
            }
        };
        Ok((identity, locks))
    }

    /// Decides and audits a denial.
    async fn decide(
        &self,
        caller: &Caller,
        identity: &Identity,
        locks: &[Lock],
        target: Target<'_>,
        kind: &str,
        verb: &str,
    ) -> Result<Permit, AuthError> {
        let ctx = AccessContext {
            locks,
            ..AccessContext::default()
        };
        match authorize(
            identity,
            target,
            Action::Verb(verb),
            &ctx,
            self.clock().now(),
        ) {
            Ok(p) => Ok(p),
            Err(d) => {
                // Every denial is a decision worth recording.
                let ev = self
                    .event(EventType::AuthFailed)
                    .user(identity.user.clone())
                    .actor(actor_of(caller))
                    .error(d.reason.clone())
                    .field("kind", kind)
                    .field("verb", verb)
                    .field("rule", d.rule.clone())
                    .field("role", d.role.clone().unwrap_or_default());
                self.audit(ev).await?;
                Err(AuthError::AccessDenied(format!(
                    "{} (role {}, rule {})",
                    d.reason,
                    d.role.unwrap_or_else(|| "-".into()),
                    d.rule
                )))
            }
        }
    }

    /// The gate for operations on a kind as a whole: the caller's current
    /// roles (re-read from the store on every call) must allow `verb` on
    /// `kind` for every item — a grant with a `where` is not enough.
    pub async fn authorize_admin(
        &self,
        caller: &Caller,
        kind: &str,
        verb: &str,
    ) -> Result<Permit, AuthError> {
        let (identity, locks) = self.admin_identity(caller).await?;
        let permit = self
            .decide(caller, &identity, &locks, Target::Kind(kind), kind, verb)
            .await?;
        if permit.rule() == CONDITIONAL {
            let reason = format!(
                "your roles allow {verb} on {kind} only for items matching a where condition (role {}); this operation needs it for all",
                permit.role()
            );
            let ev = self
                .event(EventType::AuthFailed)
                .user(identity.user)
                .actor(actor_of(caller))
                .error(reason.clone())
                .field("kind", kind)
                .field("verb", verb)
                .field("rule", CONDITIONAL);
            self.audit(ev).await?;
            return Err(AuthError::AccessDenied(reason));
        }
        Ok(permit)
    }

    /// The kind-level check only (locks, deny rules, some allow rule);
    /// callers must then check items with [`Self::authorize_item`] or
    /// [`Self::admin_filter`].
    pub(crate) async fn authorize_admin_kind(
        &self,
        caller: &Caller,
        kind: &str,
        verb: &str,
    ) -> Result<Permit, AuthError> {
        let (identity, locks) = self.admin_identity(caller).await?;
        self.decide(caller, &identity, &locks, Target::Kind(kind), kind, verb)
            .await
    }

    /// `verb` on one item of `kind` (its JSON), `where` rules included.
    pub(crate) async fn authorize_item(
        &self,
        caller: &Caller,
        kind: &str,
        verb: &str,
        item: &serde_json::Value,
    ) -> Result<Permit, AuthError> {
        let (identity, locks) = self.admin_identity(caller).await?;
        self.decide(
            caller,
            &identity,
            &locks,
            Target::Resource { kind, item },
            kind,
            verb,
        )
        .await
    }

    /// The kind-level check, then a filter for the items of a listing.
    pub(crate) async fn admin_filter(
        &self,
        caller: &Caller,
        kind: &str,
        verb: &str,
    ) -> Result<AdminFilter, AuthError> {
        let (identity, locks) = self.admin_identity(caller).await?;
        self.decide(caller, &identity, &locks, Target::Kind(kind), kind, verb)
            .await?;
        Ok(AdminFilter {
            identity,
            kind: kind.to_owned(),
            verb: verb.to_owned(),
        })
    }
}
