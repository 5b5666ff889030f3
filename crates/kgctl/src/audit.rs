//! `kgctl audit search|verify`.

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
    #[command(after_help = "Example:\n  kgctl --data-dir /var/lib/keygate audit verify")]
    Verify,
}

#[derive(Deserialize, serde::Serialize)]
struct VerifyReport {
    intact: bool,
    records: u64,
    first_break: Option<u64>,
    reason: Option<String>,
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
        AuditCmd::Verify => {
            let r: VerifyReport = client
                .post("/v1/audit/verify", &serde_json::json!({}))
                .await?;
            if format != Format::Table {
                structured(&r, format).map_err(Failure::usage)?;
            } else if r.intact {
                out(&format!(
                    "Audit log intact: {} records, hash chain verified.\n",
                    r.records
                ));
            } else {
                out(&format!(
                    "Audit log BROKEN at record {}: {}. {} records before it verify.\n",
                    r.first_break.unwrap_or(0),
                    r.reason.clone().unwrap_or_default(),
                    r.records
                ));
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
