use std::collections::BTreeMap;

use clap::Subcommand;
use keygate_api::{AddUserRequest, ApiClient, SignupToken, StatusResponse};
use keygate_client::output::{Format, out, structured};

use crate::{Cli, Failure, connect, resources};

#[derive(Subcommand)]
pub enum UsersCmd {
    /// Invite a user; prints a one-time sign-up token.
    #[command(
        after_help = "Example:\n  kgctl users add alice --roles access --logins alice,ubuntu"
    )]
    Add {
        /// User name.
        name: String,
        /// Roles, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// OS logins (the `logins` trait), comma separated.
        #[arg(long, value_delimiter = ',')]
        logins: Vec<String>,
        /// Other traits: k=v,k=v (repeat a key for several values).
        #[arg(long, value_delimiter = ',')]
        traits: Vec<String>,
    },
    /// List users.
    Ls,
    /// Show one user.
    Get {
        /// User name.
        name: String,
    },
    /// Delete a user.
    Rm {
        /// User name.
        name: String,
    },
    /// Clear a user's password, TOTP and lockout; prints a new sign-up token.
    Reset {
        /// User name.
        name: String,
    },
}

fn parse_traits(
    logins: &[String],
    traits: &[String],
) -> Result<BTreeMap<String, Vec<String>>, Failure> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if !logins.is_empty() {
        out.insert("logins".into(), logins.to_vec());
    }
    for t in traits {
        let (k, v) = t
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--traits {t:?}: write key=value")))?;
        out.entry(k.trim().to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    Ok(out)
}

async fn print_token(
    client: &ApiClient,
    t: &SignupToken,
    format: Format,
    cli: &Cli,
    verb: &str,
) -> Result<(), Failure> {
    let status: StatusResponse = client.get("/v1/status").await?;
    let proxy = status
        .proxy_addr
        .clone()
        .unwrap_or_else(|| connect::proxy_hint(cli));
    match format {
        Format::Table => out(&format!(
            "User {:?} {verb}. The sign-up token below works once, until {}.\nShare it over a private channel:\n\n  kg signup --proxy {proxy} --token {} --ca-pin {}\n",
            t.user,
            t.expires.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            t.token,
            status.ca_pin
        )),
        f => structured(
            &serde_json::json!({
                "user": t.user, "token": t.token, "ca_pin": status.ca_pin,
                "expires": t.expires.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            }),
            f,
        )
        .map_err(Failure::usage)?,
    }
    Ok(())
}

pub async fn run(
    client: &ApiClient,
    cmd: &UsersCmd,
    format: Format,
    cli: &Cli,
) -> Result<(), Failure> {
    match cmd {
        UsersCmd::Add {
            name,
            roles,
            logins,
            traits,
        } => {
            let req = AddUserRequest {
                name: name.clone(),
                roles: roles.clone(),
                traits: parse_traits(logins, traits)?,
                token_ttl_secs: None,
            };
            let t: SignupToken = client.post("/v1/users", &req).await?;
            print_token(client, &t, format, cli, "created").await
        }
        UsersCmd::Reset { name } => {
            let t: SignupToken = client
                .post(&format!("/v1/users/{name}/reset"), &serde_json::json!({}))
                .await?;
            print_token(client, &t, format, cli, "reset").await
        }
        UsersCmd::Ls => resources::get(client, "user", format).await,
        UsersCmd::Get { name } => resources::get(client, &format!("user/{name}"), format).await,
        UsersCmd::Rm { name } => resources::rm(client, &format!("user/{name}")).await,
    }
}
