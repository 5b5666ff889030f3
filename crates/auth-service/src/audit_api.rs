//! Reading the audit log through the API: search and chain verification.
//! Both need `list`/`read` on `event` (the built-in `auditor` role).

use keygate_audit::SearchFilter;
use keygate_audit_model::StoredEvent;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{AuthError, AuthServer, Caller};

/// Query of `GET /v1/audit/events`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Event name, e.g. `user.login`.
    #[serde(default, rename = "type")]
    pub event: Option<String>,
    /// User the events are about.
    #[serde(default)]
    pub user: Option<String>,
    /// Only at or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// Only before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// At most this many (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Result of `POST /v1/audit/verify`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether the whole chain recomputes.
    pub intact: bool,
    /// Records checked (up to the break).
    pub records: u64,
    /// The first broken record, when not intact.
    #[serde(default)]
    pub first_break: Option<u64>,
    /// What is wrong with it.
    #[serde(default)]
    pub reason: Option<String>,
}

impl AuthServer {
    /// `GET /v1/audit/events`, newest first.
    pub async fn audit_search(
        &self,
        caller: &Caller,
        q: AuditQuery,
    ) -> Result<Vec<StoredEvent>, AuthError> {
        self.authorize_admin(caller, "event", "list").await?;
        let filter = SearchFilter {
            event: q.event,
            user: q.user,
            since: q.since,
            until: q.until,
            limit: q.limit.unwrap_or(100).min(keygate_audit::MAX_QUERY_LIMIT),
        };
        self.audit_log()
            .search(&filter)
            .await
            .map_err(|e| AuthError::Internal(format!("audit search: {e}")))
    }

    /// `POST /v1/audit/verify`: recomputes the hash chain.
    pub async fn audit_verify(&self, caller: &Caller) -> Result<VerifyReport, AuthError> {
        self.authorize_admin(caller, "event", "read").await?;
        match self.audit_log().verify().await {
            Ok(n) => Ok(VerifyReport {
                intact: true,
                records: n,
                first_break: None,
                reason: None,
            }),
            Err(e) => match e.chain_break() {
                Some(b) => Ok(VerifyReport {
                    intact: false,
                    records: b.seq.saturating_sub(1),
                    first_break: Some(b.seq),
                    reason: Some(b.kind.to_string()),
                }),
                None => Err(AuthError::Internal(format!("audit verify: {e}"))),
            },
        }
    }
}
