//! `kgctl audit search|verify|export|checkpoints`.

use clap::Subcommand;
use keygate_api::ApiClient;
use keygate_client::output::{Format, out, structured, table};
use keygate_client::query_escape;
use keygate_clock::Clock;
use serde::Deserialize;

use crate::Failure;

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Search events, newest first.
    #[command(
        after_help = "Examples:\n  kgctl audit search --type user.login --since 24h\n  kgctl audit search --user alice --limit 20 --format json"
    )]
    Search {
        /// Event type, e.g. user.login, cert.create, session.start.
        #[arg(long = "type")]
        event: Option<String>,
        /// Events about this user.
        #[arg(long)]
        user: Option<String>,
        /// How far back (e.g. 24h) or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Up to this RFC 3339 time (or this long ago, e.g. 1h).
        #[arg(long)]
        until: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Recompute the hash chain; exit 0 when intact, 1 when broken (naming the first break).
    /// Recompute the hash chain and compare it with signed checkpoints
    /// (stored ones, ones kept elsewhere, or a signed bundle offline).
    #[command(
        after_help = "Examples:\n  kgctl --data-dir /var/lib/keygate audit verify\n  kgctl audit verify --checkpoints siem-checkpoints.jsonl   # checkpoints kept off the host\n  kgctl audit verify --bundle bundle.jsonl --ca-key audit-ca.pub  # offline, no cluster needed\n\nExit 0 when the log verifies, 1 when it does not."
    )]
    Verify {
        /// JSON lines of signed checkpoints kept elsewhere (kgctl audit checkpoints).
        #[arg(long, conflicts_with = "bundle")]
        checkpoints: Option<std::path::PathBuf>,
        /// Check a bundle from `kgctl audit export --signed` offline.
        #[arg(long, requires = "ca_key")]
        bundle: Option<std::path::PathBuf>,
        /// The audit CA's public key(s) (kgctl auth export --type audit), for --bundle.
        #[arg(long)]
        ca_key: Option<std::path::PathBuf>,
    },
    /// Run SQL over the log's views (read-only; SQLite dialect).
    #[command(
        after_help = "Examples:\n  kgctl audit query \"SELECT user, count(*) AS sessions FROM session_start GROUP BY user\"\n  kgctl audit query \"SELECT time, user, login, node FROM session_start WHERE login = 'root'\" --format json\n\nViews: all_events and one per event type (session_start, user_login, cert_create, auth_failed, …) with\nseq, time, unix_ms, event, code, user, login, node, session_id, remote_addr, success, error, actor, data.\nAny other field: json_extract(data, '$.field'). See docs/audit.md."
    )]
    Query {
        /// The SQL.
        sql: String,
        /// Most rows returned.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Show each audit exporter's cursor, lag and last error.
    #[command(after_help = "Example:\n  kgctl audit exporters --format json")]
    Exporters,
    /// Write the whole log as a self-verifying bundle (JSON lines).
    #[command(
        after_help = "Example:\n  kgctl audit export --signed > bundle.jsonl\n  kgctl audit verify --bundle bundle.jsonl --ca-key audit-ca.pub"
    )]
    Export {
        /// Include the exact record bytes and signed checkpoints (required: the only format so far).
        #[arg(long, required = true)]
        signed: bool,
    },
    /// Print the signed checkpoints as JSON lines (to keep off the host);
    /// with --now, sign the current head first.
    #[command(
        after_help = "Examples:\n  kgctl audit checkpoints >> /mnt/worm/keygate-checkpoints.jsonl\n  kgctl audit checkpoints --now    # sign the head now, e.g. before an export"
    )]
    Checkpoints {
        /// Sign a checkpoint of the current head first.
        #[arg(long)]
        now: bool,
    },
}

#[derive(Deserialize, serde::Serialize)]
struct VerifyReport {
    intact: bool,
    records: u64,
    first_break: Option<u64>,
    reason: Option<String>,
    #[serde(default)]
    checkpoints_matched: u64,
    #[serde(default)]
    diverged: Vec<u64>,
    #[serde(default)]
    beyond_tail: Vec<u64>,
    #[serde(default)]
    bad_signatures: Vec<u64>,
    #[serde(default)]
    unsigned_tail: u64,
}

fn when(s: &str) -> Result<String, Failure> {
    use time::format_description::well_known::Rfc3339;
    if time::OffsetDateTime::parse(s, &Rfc3339).is_ok() {
        return Ok(s.to_owned());
    }
    let ago = s.parse::<keygate_types::Ttl>().map_err(|_| {
        Failure::usage(format!(
            "{s:?}: give a duration like 24h or an RFC 3339 time"
        ))
    })?;
    let t = keygate_clock::SystemClock::new().now() - ago.as_duration();
    t.format(&Rfc3339)
        .map_err(|e| Failure::usage(e.to_string()))
}

pub async fn run(client: &ApiClient, cmd: &AuditCmd, format: Format) -> Result<(), Failure> {
    match cmd {
        AuditCmd::Search {
            event,
            user,
            since,
            until,
            limit,
        } => {
            let mut q = vec![format!("limit={limit}")];
            if let Some(e) = event {
                q.push(format!("type={}", query_escape(e)));
            }
            if let Some(u) = user {
                q.push(format!("user={}", query_escape(u)));
            }
            if let Some(s) = since {
                q.push(format!("since={}", query_escape(&when(s)?)));
            }
            if let Some(u) = until {
                q.push(format!("until={}", query_escape(&when(u)?)));
            }
            let events: Vec<serde_json::Value> = client
                .get(&format!("/v1/audit/events?{}", q.join("&")))
                .await?;
            if format != Format::Table {
                return structured(&events, format).map_err(Failure::usage);
            }
            let s = |v: &serde_json::Value, k: &str| {
                v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned()
            };
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|e| {
                    let ok = match e.get("success").and_then(|x| x.as_bool()) {
                        Some(true) => "ok",
                        Some(false) => "FAIL",
                        None => "",
                    };
                    vec![
                        e.get("seq").map(|x| x.to_string()).unwrap_or_default(),
                        s(e, "time"),
                        s(e, "event"),
                        s(e, "user"),
                        s(e, "login"),
                        s(e, "node"),
                        ok.to_owned(),
                        s(e, "error"),
                    ]
                })
                .collect();
            out(&table(
                &[
                    "SEQ", "TIME", "EVENT", "USER", "LOGIN", "NODE", "RESULT", "ERROR",
                ],
                &rows,
            ));
            Ok(())
        }
        AuditCmd::Export { .. } => crate::audit_bundle::export(client).await,
        AuditCmd::Exporters => {
            let list: Vec<serde_json::Value> = client.get("/v1/audit/exporters").await?;
            if format != Format::Table {
                return structured(&list, format).map_err(Failure::usage);
            }
            let f = |v: &serde_json::Value, k: &str| match v.get(k) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|e| {
                    [
                        "name",
                        "kind",
                        "cursor",
                        "head",
                        "lag_events",
                        "last_success",
                        "last_error",
                    ]
                    .iter()
                    .map(|k| f(e, k))
                    .collect()
                })
                .collect();
            out(&table(
                &[
                    "NAME",
                    "KIND",
                    "CURSOR",
                    "HEAD",
                    "LAG",
                    "LAST SUCCESS",
                    "LAST ERROR",
                ],
                &rows,
            ));
            Ok(())
        }
        AuditCmd::Query { sql, limit } => {
            #[derive(Deserialize, serde::Serialize)]
            struct SqlResult {
                columns: Vec<String>,
                rows: Vec<Vec<serde_json::Value>>,
                truncated: bool,
            }
            let r: SqlResult = client
                .post(
                    "/v1/audit/query",
                    &serde_json::json!({"sql": sql, "limit": limit}),
                )
                .await?;
            if format != Format::Table {
                return structured(&r, format).map_err(Failure::usage);
            }
            let rows: Vec<Vec<String>> = r
                .rows
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|v| match v {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Null => String::new(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .collect();
            let headers: Vec<&str> = r.columns.iter().map(String::as_str).collect();
            out(&table(&headers, &rows));
            if r.truncated {
                out(&format!("(only the first {limit} rows; raise --limit)\n"));
            }
            Ok(())
        }
        AuditCmd::Checkpoints { now } => crate::audit_bundle::checkpoints(client, *now).await,
        AuditCmd::Verify {
            bundle: Some(bundle),
            ca_key,
            ..
        } => crate::audit_bundle::verify_bundle(bundle, ca_key.as_deref(), format),
        AuditCmd::Verify { checkpoints, .. } => {
            let given = match checkpoints {
                Some(p) => crate::audit_bundle::read_checkpoints(p)?,
                None => Vec::new(),
            };
            let r: VerifyReport = client
                .post(
                    "/v1/audit/verify",
                    &serde_json::json!({ "checkpoints": given }),
                )
                .await?;
            if format != Format::Table {
                structured(&r, format).map_err(Failure::usage)?;
            } else if let Some(b) = r.first_break {
                out(&format!(
                    "Audit log BROKEN at record {b}: {}. {} records before it verify.\n",
                    r.reason.clone().unwrap_or_default(),
                    r.records
                ));
            } else {
                out(&format!(
                    "Hash chain verified: {} records; {} checkpoints match.\n",
                    r.records, r.checkpoints_matched
                ));
                for s in &r.diverged {
                    out(&format!(
                        "DIVERGED: the log differs from the checkpoint signed at record {s} (rewritten after it was signed)\n"
                    ));
                }
                for s in &r.beyond_tail {
                    out(&format!(
                        "TRUNCATED: a checkpoint signed record {s}, which is no longer in the log\n"
                    ));
                }
                for s in &r.bad_signatures {
                    out(&format!(
                        "BAD SIGNATURE: the checkpoint at record {s} is not signed by the audit CA\n"
                    ));
                }
                if r.unsigned_tail > 0 {
                    out(&format!(
                        "Unsigned tail: the last {} records are not covered by a checkpoint yet.\n",
                        r.unsigned_tail
                    ));
                }
            }
            if r.intact {
                Ok(())
            } else {
                Err(Failure {
                    code: 1,
                    message: "the audit log does not verify".into(),
                })
            }
        }
    }
}
