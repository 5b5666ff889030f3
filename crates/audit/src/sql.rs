//! `kgctl audit query`: SQL over the log, on read-only connections
//! (opened `SQLITE_OPEN_READONLY` and `query_only`, so no statement — not
//! `DELETE`, not `ATTACH` of a new file — can change anything), with the
//! search time limit and a row cap. Nothing is filtered by keyword: the
//! database refuses writes itself.
//!
//! Views (one per event type, named like the event with `.` → `_`, e.g.
//! `session_start`, `user_login`, `cert_create`; and `all_events`) expose
//! `seq, time, unix_ms, event, code, user, login, node, session_id,
//! remote_addr, success, error, actor, data` where `data` is the full
//! event JSON (`json_extract(data, '$.field')` reaches any other field).

use keygate_audit_model::EventType;
use sqlx::{Column, Row, TypeInfo, ValueRef};

use crate::query::query_error;
use crate::{AuditError, AuditLog};

/// Most rows one query returns.
pub const MAX_SQL_ROWS: usize = 10_000;

/// A query's answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SqlResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows (JSON values: null, integer, real, text; blobs as hex).
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Whether more rows existed than were returned.
    pub truncated: bool,
}

/// The columns every view has.
const VIEW_COLUMNS: &str = "seq, time, unix_ms, event, code, user, \
    json_extract(data, '$.login') AS login, \
    json_extract(data, '$.node') AS node, \
    json_extract(data, '$.session_id') AS session_id, \
    json_extract(data, '$.remote_addr') AS remote_addr, \
    json_extract(data, '$.success') AS success, \
    json_extract(data, '$.error') AS error, \
    json_extract(data, '$.actor.name') AS actor, \
    CAST(data AS TEXT) AS data";

/// `CREATE VIEW` statements for every event type (schema v3).
pub(crate) fn view_statements() -> Vec<String> {
    let mut names: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
    names.sort_unstable();
    names.dedup();
    let mut out = vec![format!(
        "CREATE VIEW IF NOT EXISTS all_events AS SELECT {VIEW_COLUMNS} FROM events"
    )];
    for name in names {
        // Event names are our own constants ([a-z_.]); checked anyway, as
        // they become identifiers.
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.')
        {
            continue;
        }
        out.push(format!(
            "CREATE VIEW IF NOT EXISTS {} AS SELECT {VIEW_COLUMNS} FROM events WHERE event = '{name}'",
            name.replace('.', "_")
        ));
    }
    out
}

fn cell(row: &sqlx::sqlite::SqliteRow, i: usize) -> serde_json::Value {
    let Ok(raw) = row.try_get_raw(i) else {
        return serde_json::Value::Null;
    };
    if raw.is_null() {
        return serde_json::Value::Null;
    }
    match raw.type_info().name() {
        "INTEGER" => row
            .try_get::<i64, _>(i)
            .map_or(serde_json::Value::Null, serde_json::Value::from),
        "REAL" => row
            .try_get::<f64, _>(i)
            .map_or(serde_json::Value::Null, serde_json::Value::from),
        "BLOB" => row
            .try_get::<Vec<u8>, _>(i)
            .map_or(serde_json::Value::Null, |b| {
                serde_json::Value::from(keygate_audit_model::hex(&b))
            }),
        _ => row
            .try_get::<String, _>(i)
            .map_or(serde_json::Value::Null, serde_json::Value::from),
    }
}

impl AuditLog {
    /// Runs `sql` on a read-only connection: at most `max_rows` rows (capped
    /// at [`MAX_SQL_ROWS`]) within the search time limit.
    pub async fn query_sql(&self, sql: &str, max_rows: usize) -> Result<SqlResult, AuditError> {
        use futures::TryStreamExt;
        let cap = max_rows.clamp(1, MAX_SQL_ROWS);
        let reader = self.reader();
        let mut conn = reader.acquire().await?;
        let deadline = reader.clock.monotonic().saturating_add(reader.timeout);
        let clock = reader.clock.clone();
        crate::query::set_progress_handler(&mut conn, move || clock.monotonic() < deadline).await?;
        let mut result = SqlResult {
            columns: Vec::new(),
            rows: Vec::new(),
            truncated: false,
        };
        let outcome = async {
            // The SQL is the auditor's own, run as is on a read-only
            // connection: the database, not a keyword filter, refuses
            // anything but reading.
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch(&mut *conn);
            while let Some(row) = rows.try_next().await? {
                if result.columns.is_empty() {
                    result.columns = row.columns().iter().map(|c| c.name().to_owned()).collect();
                }
                if result.rows.len() == cap {
                    result.truncated = true;
                    break;
                }
                result
                    .rows
                    .push((0..row.columns().len()).map(|i| cell(&row, i)).collect());
            }
            Ok::<(), sqlx::Error>(())
        }
        .await;
        crate::query::clear_progress_handler(&mut conn).await;
        outcome.map_err(|e| match query_error(e) {
            AuditError::Query(e) => AuditError::BadQuery(e.to_string()),
            other => other,
        })?;
        Ok(result)
    }
}
