//! The SQLite schema, its version check, the `meta` counters and decoding
//! rows into our types.

use std::path::Path;

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::{KeyValue, Revision, StoreError, WatchEvent};

/// Schema version this build writes and understands.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// `meta` row holding the latest revision.
pub(super) const REVISION: &str = "revision";
/// `meta` row holding the compacted revision.
pub(super) const COMPACTED: &str = "compacted";
const VERSION: &str = "schema_version";

/// `history.kind` of a put.
pub(super) const KIND_PUT: i64 = 0;
/// `history.kind` of a delete.
pub(super) const KIND_DELETE: i64 = 1;

// STRICT tables so a bug that binds the wrong type fails loudly instead of
// being stored. `leases.id` is AUTOINCREMENT so ids are never reused: a
// stale holder of an old id must not keep a new lease alive.
const DDL: &str = "
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0), ('schema_version', 1);

CREATE TABLE IF NOT EXISTS leases (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    deadline_ms INTEGER NOT NULL,
    ttl_ms      INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS leases_by_deadline ON leases (deadline_ms);

CREATE TABLE IF NOT EXISTS kv (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev    INTEGER NOT NULL,
    lease      INTEGER REFERENCES leases (id)
) STRICT;
CREATE INDEX IF NOT EXISTS kv_by_lease ON kv (lease) WHERE lease IS NOT NULL;

CREATE TABLE IF NOT EXISTS history (
    rev        INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    key        TEXT NOT NULL,
    kind       INTEGER NOT NULL,
    value      BLOB,
    create_rev INTEGER,
    lease      INTEGER,
    PRIMARY KEY (rev, seq)
) STRICT;
";

/// Create the schema if needed and refuse a database from a newer build.
pub(super) async fn migrate(conn: &mut SqliteConnection, path: &Path) -> Result<(), StoreError> {
    sqlx::raw_sql(DDL).execute(&mut *conn).await?;
    let found = meta_get(conn, VERSION).await?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

pub(super) async fn meta_get(conn: &mut SqliteConnection, name: &str) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT value FROM meta WHERE name = ?1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => Ok(row.try_get("value")?),
        None => Err(StoreError::Corrupt(format!("meta row {name:?} is missing"))),
    }
}

pub(super) async fn meta_set(
    conn: &mut SqliteConnection,
    name: &str,
    value: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE meta SET value = ?2 WHERE name = ?1")
        .bind(name)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Decode a row with columns `key, value, create_rev, mod_rev, lease`.
pub(super) fn kv_from_row(row: &SqliteRow) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key: row.try_get("key")?,
        value: row.try_get("value")?,
        create_revision: row.try_get("create_rev")?,
        mod_revision: row.try_get("mod_rev")?,
        lease: row.try_get("lease")?,
    })
}

/// Decode a `history` row.
pub(super) fn event_from_row(row: &SqliteRow) -> Result<WatchEvent, StoreError> {
    let revision: Revision = row.try_get("rev")?;
    let key: String = row.try_get("key")?;
    match row.try_get::<i64, _>("kind")? {
        KIND_PUT => {
            let value: Option<Vec<u8>> = row.try_get("value")?;
            let create_revision: Option<Revision> = row.try_get("create_rev")?;
            let (Some(value), Some(create_revision)) = (value, create_revision) else {
                return Err(StoreError::Corrupt(format!(
                    "history put of {key:?} at {revision} lacks its value"
                )));
            };
            Ok(WatchEvent::Put(KeyValue {
                key,
                value,
                create_revision,
                mod_revision: revision,
                lease: row.try_get("lease")?,
            }))
        }
        KIND_DELETE => Ok(WatchEvent::Delete { key, revision }),
        other => Err(StoreError::Corrupt(format!(
            "history row at {revision} has unknown kind {other}"
        ))),
    }
}
