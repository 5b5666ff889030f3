//! Reading the audit log through the API: search and chain verification.
//! Both need `list`/`read` on `event` (the built-in `auditor` role).

use keygate_audit::SearchFilter;
use keygate_audit_model::{BundleLine, SignedCheckpoint, StoredEvent};
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

/// Body of `POST /v1/audit/verify` (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Checkpoints kept elsewhere (a SIEM) to compare the log with, besides
    /// the stored ones.
    #[serde(default)]
    pub checkpoints: Vec<SignedCheckpoint>,
}

/// Result of `POST /v1/audit/verify`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether the chain recomputes and agrees with every checkpoint.
    pub intact: bool,
    /// Records checked (up to the break).
    pub records: u64,
    /// The first broken record, when the chain does not recompute.
    #[serde(default)]
    pub first_break: Option<u64>,
    /// What is wrong with it.
    #[serde(default)]
    pub reason: Option<String>,
    /// Checkpoints (stored and given) whose hash matched.
    #[serde(default)]
    pub checkpoints_matched: u64,
    /// Checkpoints the chain contradicts (rewritten after signing).
    #[serde(default)]
    pub diverged: Vec<u64>,
    /// Checkpoints past the end of the log (the tail was cut).
    #[serde(default)]
    pub beyond_tail: Vec<u64>,
    /// Checkpoints whose signature does not verify with the audit CA.
    #[serde(default)]
    pub bad_signatures: Vec<u64>,
    /// Records after the last checkpoint (not covered by a signature yet).
    #[serde(default)]
    pub unsigned_tail: u64,
}

/// Longest SQL accepted.
const MAX_SQL_BYTES: usize = 16 * 1024;

/// Body of `POST /v1/audit/query`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// The SQL (SQLite dialect; views in docs/audit.md).
    pub sql: String,
    /// Most rows returned (default 1000, at most 10000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /v1/audit/export?from=SEQ&limit=N`: records with exact bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportPage {
    /// Bundle lines (records).
    pub records: Vec<BundleLine>,
    /// Where the next page starts, if there is one.
    #[serde(default)]
    pub next: Option<u64>,
}

impl AuthServer {
    /// `GET /v1/audit/events`, newest first.
    pub async fn audit_search(
        &self,
        caller: &Caller,
        q: AuditQuery,
    ) -> Result<Vec<StoredEvent>, AuthError> {
        let keep = self.admin_filter(caller, "event", "list").await?;
        let filter = SearchFilter {
            event: q.event,
            user: q.user,
            since: q.since,
            until: q.until,
            limit: q.limit.unwrap_or(100).min(keygate_audit::MAX_QUERY_LIMIT),
        };
        let found = self
            .audit_log()
            .search(&filter)
            .await
            .map_err(|e| AuthError::Internal(format!("audit search: {e}")))?;
        // Rules with a `where` see only the events they match.
        Ok(found
            .into_iter()
            .filter(|e| serde_json::to_value(e).is_ok_and(|v| keep.matches(&v)))
            .collect())
    }

    /// `POST /v1/audit/verify`: recomputes the hash chain and compares it
    /// with the stored checkpoints and any given ones, whose signatures
    /// must verify with the audit CA.
    pub async fn audit_verify(
        &self,
        caller: &Caller,
        req: VerifyRequest,
    ) -> Result<VerifyReport, AuthError> {
        self.authorize_admin(caller, "event", "read").await?;
        let stored = self
            .audit_log()
            .checkpoints()
            .await
            .map_err(|e| AuthError::Internal(format!("reading checkpoints: {e}")))?;
        let mut good = Vec::new();
        let mut bad_signatures = Vec::new();
        for cp in stored.iter().chain(req.checkpoints.iter()) {
            if self.checkpoint_signature_ok(cp) {
                good.push(cp.checkpoint.clone());
            } else {
                bad_signatures.push(cp.checkpoint.seq);
            }
        }
        match self.audit_log().verify_against(&good).await {
            Ok((n, f)) => Ok(VerifyReport {
                intact: f.consistent() && bad_signatures.is_empty(),
                records: n,
                first_break: None,
                reason: None,
                checkpoints_matched: f.matched,
                diverged: f.diverged,
                beyond_tail: f.beyond_tail,
                bad_signatures,
                unsigned_tail: f.unsigned_tail,
            }),
            Err(e) => match e.chain_break() {
                Some(b) => Ok(VerifyReport {
                    intact: false,
                    records: b.seq.saturating_sub(1),
                    first_break: Some(b.seq),
                    reason: Some(b.kind.to_string()),
                    checkpoints_matched: 0,
                    diverged: Vec::new(),
                    beyond_tail: Vec::new(),
                    bad_signatures,
                    unsigned_tail: 0,
                }),
                None => Err(AuthError::Internal(format!("audit verify: {e}"))),
            },
        }
    }

    /// `GET /v1/audit/export`.
    pub async fn audit_export(
        &self,
        caller: &Caller,
        from: u64,
        limit: usize,
    ) -> Result<ExportPage, AuthError> {
        self.authorize_admin(caller, "event", "read").await?;
        let limit = limit.clamp(1, keygate_audit::MAX_RECORDS_PER_CALL);
        let records = self
            .audit_log()
            .records(from.max(1), limit)
            .await
            .map_err(|e| AuthError::Internal(format!("audit export: {e}")))?;
        let next = (records.len() == limit)
            .then(|| records.last().map(|r| r.seq + 1))
            .flatten();
        Ok(ExportPage {
            records: records.iter().map(BundleLine::record).collect(),
            next,
        })
    }

    /// `POST /v1/audit/checkpoints`: sign the head now (before an export,
    /// or to cover the tail at once). Returns the newest checkpoint.
    pub async fn audit_checkpoint_now(
        &self,
        caller: &Caller,
    ) -> Result<Option<SignedCheckpoint>, AuthError> {
        self.authorize_admin(caller, "event", "read").await?;
        if let Some(cp) = self.checkpoint_now().await? {
            return Ok(Some(cp));
        }
        Ok(self.audit_checkpoints(caller).await?.pop())
    }

    /// `POST /v1/audit/query`: SQL over the log's views, on read-only
    /// connections (the database refuses writes), time-limited, capped.
    pub async fn audit_query(
        &self,
        caller: &Caller,
        req: QueryRequest,
    ) -> Result<keygate_audit::SqlResult, AuthError> {
        self.authorize_admin(caller, "event", "read").await?;
        if req.sql.len() > MAX_SQL_BYTES {
            return Err(AuthError::BadRequest(format!(
                "queries are limited to {MAX_SQL_BYTES} bytes"
            )));
        }
        self.audit_log()
            .query_sql(&req.sql, req.limit.unwrap_or(1000))
            .await
            .map_err(|e| match e {
                keygate_audit::AuditError::BadQuery(_)
                | keygate_audit::AuditError::QueryTimeout => AuthError::BadRequest(e.to_string()),
                other => AuthError::Internal(format!("audit query: {other}")),
            })
    }

    /// `GET /v1/audit/exporters`: each exporter's cursor, lag and last error.
    pub async fn audit_exporters(
        &self,
        caller: &Caller,
    ) -> Result<Vec<serde_json::Value>, AuthError> {
        self.authorize_admin(caller, "event", "read").await?;
        Ok(self
            .opts()
            .exporters
            .as_ref()
            .map(|source| (source.0)())
            .unwrap_or_default())
    }

    /// `GET /v1/audit/checkpoints`.
    pub async fn audit_checkpoints(
        &self,
        caller: &Caller,
    ) -> Result<Vec<SignedCheckpoint>, AuthError> {
        self.authorize_admin(caller, "event", "read").await?;
        self.audit_log()
            .checkpoints()
            .await
            .map_err(|e| AuthError::Internal(format!("reading checkpoints: {e}")))
    }
}
