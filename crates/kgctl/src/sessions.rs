//! `kgctl sessions ls|terminate`.

use clap::Subcommand;
use keygate_api::{Ack, ApiClient, PutResourceRequest, SessionSummary};
use keygate_client::output::{Format, out, structured, table};
use keygate_clock::Clock;
use keygate_types::{AnyResource, Kind, Lock, LockSpec, LockTarget, Resource};

use crate::Failure;

/// How long a terminate lock stays (it only ever matches one session).
const TERMINATE_LOCK_SECS: i64 = 3600;

#[derive(Subcommand)]
pub enum SessionsCmd {
    /// Live sessions on every node (as of their last heartbeat, ≤ 20 s old).
    #[command(after_help = "Example:\n  kgctl sessions ls --format json")]
    Ls,
    /// End a live session now; the user sees the message.
    #[command(
        after_help = "Example:\n  kgctl sessions terminate 5b7039d9-e725-4e98-9e10-623e4623c609 --message \"maintenance\""
    )]
    Terminate {
        /// Session id (from sessions ls).
        id: String,
        /// Shown to the user.
        #[arg(long, default_value = "terminated by an administrator")]
        message: String,
    },
}

pub async fn run(client: &ApiClient, cmd: &SessionsCmd, format: Format) -> Result<(), Failure> {
    match cmd {
        SessionsCmd::Ls => {
            let list: Vec<SessionSummary> = client.get("/v1/sessions").await?;
            if format != Format::Table {
                return structured(&list, format).map_err(Failure::usage);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.user.clone(),
                        s.login.clone(),
                        s.node.clone(),
                        s.remote.clone(),
                        s.started
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            out(&table(
                &["SESSION", "USER", "LOGIN", "NODE", "FROM", "STARTED"],
                &rows,
            ));
            Ok(())
        }
        SessionsCmd::Terminate { id, message } => {
            // A lock on exactly this session: nodes end it as soon as they
            // see the lock, through the same path as every other lock.
            let mut lock: Lock = Resource::new(
                Kind::Lock,
                format!(
                    "terminate-{}",
                    id.chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .take(64)
                        .collect::<String>()
                ),
                LockSpec {
                    target: LockTarget::Session(id.clone()),
                    message: Some(message.clone()),
                },
            );
            lock.metadata.expires = Some(
                keygate_clock::SystemClock::new().now()
                    + time::Duration::seconds(TERMINATE_LOCK_SECS),
            );
            let json = AnyResource::Lock(lock)
                .to_json()
                .map_err(|e| Failure::usage(e.to_string()))?;
            let _: Ack = client
                .post(
                    "/v1/resources",
                    &PutResourceRequest {
                        resource: json,
                        force: true,
                    },
                )
                .await?;
            out(&format!(
                "Session {id} will end within a second on its node.\n"
            ));
            Ok(())
        }
    }
}
