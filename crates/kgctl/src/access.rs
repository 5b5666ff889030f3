//! `kgctl access explain|who-can|what-can`: why a user may or may not log
//! in to a node, and who can reach what. The auth service computes the
//! answers with the policy engine; this module only asks and prints.

use clap::Subcommand;
use keygate_api::{ApiClient, ExplainRequest, ExplainResponse, WhatCanEntry, WhoCanEntry};
use keygate_client::output::{Format, out, structured, table};
use time::format_description::well_known::Rfc3339;

use crate::Failure;

#[derive(Subcommand)]
pub enum AccessCmd {
    /// Why may (or may not) a user log in to a node: every lock, deny and
    /// allow check in evaluation order, then the verdict. Exit 0 allowed, 1 denied.
    #[command(
        after_help = "Examples:\n  kgctl access explain --user alice --node web-1 --login root\n  kgctl access explain --user alice --node web-1 --login root --format json"
    )]
    Explain {
        /// User name.
        #[arg(long)]
        user: String,
        /// Node name or id.
        #[arg(long)]
        node: String,
        /// OS login.
        #[arg(long)]
        login: String,
    },
    /// Every user who can log in to a node: login, granting role and rule, and until when.
    #[command(
        after_help = "Examples:\n  kgctl access who-can --node web-1\n  kgctl access who-can --node web-1 --login root"
    )]
    WhoCan {
        /// Node name or id.
        #[arg(long)]
        node: String,
        /// Only this OS login.
        #[arg(long)]
        login: Option<String>,
    },
    /// Every node a user can log in to, with the logins.
    #[command(after_help = "Example:\n  kgctl access what-can --user alice")]
    WhatCan {
        /// User name.
        #[arg(long)]
        user: String,
    },
}

pub async fn run(client: &ApiClient, cmd: &AccessCmd, format: Format) -> Result<(), Failure> {
    match cmd {
        AccessCmd::Explain { user, node, login } => {
            let req = ExplainRequest {
                user: user.clone(),
                node: node.clone(),
                login: login.clone(),
            };
            let e: ExplainResponse = client.post("/v1/access/explain", &req).await?;
            match format {
                Format::Table => out(&render_explain(&e)),
                f => structured(&e, f).map_err(Failure::usage)?,
            }
            // The trace is the answer; "denied" is said by the exit code
            // alone, not repeated as an error line.
            if e.allowed {
                Ok(())
            } else {
                Err(Failure::silent(1))
            }
        }
        AccessCmd::WhoCan { node, login } => {
            let mut path = format!("/v1/access/who-can?node={}", query_escape(node));
            if let Some(l) = login {
                path.push_str(&format!("&login={}", query_escape(l)));
            }
            let entries: Vec<WhoCanEntry> = client.get(&path).await?;
            match format {
                Format::Table => out(&render_who_can(&entries)),
                f => structured(&entries, f).map_err(Failure::usage)?,
            }
            Ok(())
        }
        AccessCmd::WhatCan { user } => {
            let path = format!("/v1/access/what-can?user={}", query_escape(user));
            let entries: Vec<WhatCanEntry> = client.get(&path).await?;
            match format {
                Format::Table => out(&render_what_can(&entries)),
                f => structured(&entries, f).map_err(Failure::usage)?,
            }
            Ok(())
        }
    }
}

/// Percent-encodes a query value: everything but RFC 3986 unreserved
/// characters, so names with `&`, `=`, `#` or spaces arrive intact.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The trace line by line, then the verdict naming role and rule.
pub fn render_explain(e: &ExplainResponse) -> String {
    let labels: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut s = format!(
        "User:   {}\nNode:   {} (id {})\nLabels: {}\nLogin:  {}\nRoles:  {}\n\nChecks, in evaluation order (* decided):\n",
        e.user,
        e.node,
        e.node_id,
        if labels.is_empty() {
            "-".into()
        } else {
            labels.join(", ")
        },
        e.login,
        if e.roles.is_empty() {
            "-".into()
        } else {
            e.roles.join(", ")
        },
    );
    if e.steps.is_empty() {
        s.push_str("  (none: the user holds no role and no lock applies)\n");
    }
    for (i, step) in e.steps.iter().enumerate() {
        let mark = if e.decided_by == Some(i) { '*' } else { ' ' };
        s.push_str(&format!("{mark} {:>2}. {}\n", i + 1, step.detail));
    }
    // An allowed reason already names the role and rule.
    let verdict = match (e.allowed, &e.role, e.rule.as_str()) {
        (true, _, _) => "ALLOWED:".to_owned(),
        (false, Some(role), rule) => format!("DENIED by role {role}, rule {rule}:"),
        (false, None, "lock") => "DENIED by a lock:".to_owned(),
        (false, None, rule) => format!("DENIED ({rule}):"),
    };
    s.push_str(&format!("\n{verdict} {}\n", e.reason));
    s
}

fn until(t: Option<time::OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".into())
}

pub fn render_who_can(entries: &[WhoCanEntry]) -> String {
    if entries.is_empty() {
        return "Nobody can log in to this node.\n".into();
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.user.clone(),
                e.login.clone(),
                e.role.clone(),
                e.rule.clone(),
                until(e.until),
            ]
        })
        .collect();
    table(&["USER", "LOGIN", "ROLE", "RULE", "UNTIL"], &rows)
}

pub fn render_what_can(entries: &[WhatCanEntry]) -> String {
    if entries.is_empty() {
        return "This user cannot log in to any node.\n".into();
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| vec![e.node.clone(), e.id.clone(), e.logins.join(",")])
        .collect();
    table(&["NODE", "ID", "LOGINS"], &rows)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;
    use keygate_api::ExplainStep;

    fn step(phase: &str, name: &str, rule: Option<&str>, detail: &str) -> ExplainStep {
        ExplainStep {
            phase: phase.into(),
            name: name.into(),
            matched: rule.is_some(),
            rule: rule.map(str::to_owned),
            logins: vec![],
            login_matched: None,
            node_labels_matched: None,
            failed_label: None,
            detail: detail.into(),
        }
    }

    fn denied() -> ExplainResponse {
        ExplainResponse {
            user: "bob".into(),
            node: "node-11".into(),
            node_id: "n11".into(),
            labels: [("env", "prod"), ("team", "db")]
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            login: "root".into(),
            roles: vec!["db-admin".into(), "no-prod-db".into()],
            allowed: false,
            role: Some("no-prod-db".into()),
            rule: "deny.node_labels".into(),
            reason: "node \"node-11\" is denied by role \"no-prod-db\" (deny.node_labels)".into(),
            steps: vec![
                step(
                    "deny",
                    "db-admin",
                    None,
                    "role \"db-admin\" deny: … => no match",
                ),
                step(
                    "deny",
                    "no-prod-db",
                    Some("deny.node_labels"),
                    "role \"no-prod-db\" deny: … => DENY (deny.node_labels)",
                ),
            ],
            decided_by: Some(1),
        }
    }

    #[test]
    fn explain_prints_the_trace_and_a_verdict_naming_role_and_rule() {
        let text = render_explain(&denied());
        assert!(text.contains("Labels: env=prod, team=db\n"), "{text}");
        assert!(
            text.contains("   1. role \"db-admin\" deny: … => no match\n"),
            "{text}"
        );
        assert!(
            text.contains("*  2. role \"no-prod-db\" deny: … => DENY (deny.node_labels)\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "DENIED by role no-prod-db, rule deny.node_labels: node \"node-11\" is denied by role \"no-prod-db\" (deny.node_labels)\n"
            ),
            "{text}"
        );

        let mut e = denied();
        e.role = None;
        e.rule = "no allow rule matched".into();
        e.reason = "no role of \"bob\" allows …".into();
        e.decided_by = None;
        e.steps.clear();
        let text = render_explain(&e);
        assert!(text.contains("(none: the user holds no role"), "{text}");
        assert!(
            text.ends_with("DENIED (no allow rule matched): no role of \"bob\" allows …\n"),
            "{text}"
        );

        let mut e = denied();
        e.allowed = true;
        e.role = Some("db-admin".into());
        e.rule = "allow.logins+allow.node_labels".into();
        e.reason = "role \"db-admin\" allows login \"root\"".into();
        assert!(render_explain(&e).ends_with("ALLOWED: role \"db-admin\" allows login \"root\"\n"));
        e.allowed = false;
        e.role = None;
        e.rule = "lock".into();
        e.reason = "locked by maint: maintenance".into();
        assert!(render_explain(&e).ends_with("DENIED by a lock: locked by maint: maintenance\n"));
    }

    #[test]
    fn who_can_and_what_can_tables() {
        let until_ = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let text = render_who_can(&[
            WhoCanEntry {
                user: "alice".into(),
                login: "alice".into(),
                role: "dev-access".into(),
                rule: "allow.logins+allow.node_labels".into(),
                until: None,
            },
            WhoCanEntry {
                user: "carol".into(),
                login: "postgres".into(),
                role: "db-admin".into(),
                rule: "allow.logins+allow.node_labels".into(),
                until: Some(until_),
            },
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("USER"));
        assert!(lines[2].ends_with("  -"), "{text}");
        assert!(lines[3].ends_with("2027-01-15T08:00:00Z"), "{text}");
        assert_eq!(render_who_can(&[]), "Nobody can log in to this node.\n");

        let text = render_what_can(&[WhatCanEntry {
            node: "node-12".into(),
            id: "n12".into(),
            logins: vec!["carol".into(), "postgres".into()],
        }]);
        assert!(text.lines().nth(2).unwrap().ends_with("carol,postgres"));
        assert_eq!(
            render_what_can(&[]),
            "This user cannot log in to any node.\n"
        );
    }

    #[test]
    fn flags_are_required() {
        use clap::Parser;
        let ok = crate::Cli::try_parse_from([
            "kgctl", "access", "explain", "--user", "a", "--node", "n", "--login", "root",
        ]);
        assert!(ok.is_ok());
        for bad in [
            &["kgctl", "access", "explain", "--user", "a", "--node", "n"][..],
            &["kgctl", "access", "who-can"][..],
            &["kgctl", "access", "what-can"][..],
            &["kgctl", "access", "why"][..],
        ] {
            assert!(crate::Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        assert!(
            crate::Cli::try_parse_from([
                "kgctl", "access", "who-can", "--node", "n", "--login", "root"
            ])
            .is_ok()
        );
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("node-01.example_x~"), "node-01.example_x~");
        assert_eq!(query_escape("a b&c=d#e/f"), "a%20b%26c%3Dd%23e%2Ff");
        assert_eq!(query_escape("é"), "%C3%A9");
        assert_eq!(query_escape(""), "");
    }
}
