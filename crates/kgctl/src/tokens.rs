//! `kgctl tokens add`, `kgctl lock`, `kgctl locks ls|rm`.

use std::collections::BTreeMap;

use clap::Subcommand;
use keygate_api::{Ack, ApiClient, PutResourceRequest, TokenRequest, TokenResponse};
use keygate_client::output::{Format, out, structured};
use keygate_types::{AnyResource, Kind, Lock, LockSpec, LockTarget, Resource};

use crate::{Failure, resources};

#[derive(Subcommand)]
pub enum TokensCmd {
    /// Create a join token and print the join command.
    #[command(
        after_help = "Example:\n  kgctl tokens add --type node --ttl 30m --labels env=dev,team=web"
    )]
    Add {
        /// What joins with it: node.
        #[arg(long = "type", default_value = "node")]
        kind: String,
        /// Lifetime, e.g. 30m.
        #[arg(long, default_value = "30m")]
        ttl: String,
        /// Labels for the joining node (authoritative): k=v,k=v.
        #[arg(long, value_delimiter = ',')]
        labels: Vec<String>,
        /// Allow more than one node to join with it.
        #[arg(long)]
        reusable: bool,
    },
}

#[derive(clap::Args)]
pub struct LockArgs {
    /// Lock a user.
    #[arg(long, group = "target")]
    user: Option<String>,
    /// Lock everyone holding a role.
    #[arg(long, group = "target")]
    role: Option<String>,
    /// Lock an OS login everywhere.
    #[arg(long, group = "target")]
    login: Option<String>,
    /// Lock a node (by name or id).
    #[arg(long, group = "target")]
    node: Option<String>,
    /// Lock an MFA device.
    #[arg(long, group = "target")]
    mfa_device: Option<String>,
    /// Lock an access request.
    #[arg(long, group = "target")]
    access_request: Option<String>,
    /// Lock one certificate serial.
    #[arg(long, group = "target")]
    serial: Option<String>,
    /// How long the lock lasts (default: until removed).
    #[arg(long)]
    ttl: Option<String>,
    /// Shown to whoever is locked out.
    #[arg(long)]
    message: Option<String>,
}

#[derive(Subcommand)]
pub enum LocksCmd {
    /// List locks.
    Ls,
    /// Remove a lock.
    Rm {
        /// Lock name.
        name: String,
    },
}

fn labels(v: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    v.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| Failure::usage(format!("--labels {kv:?}: write key=value")))
        })
        .collect()
}

fn ttl_secs(s: &str) -> Result<u64, Failure> {
    s.parse::<keygate_types::Ttl>()
        .map(|t| t.as_secs())
        .map_err(|e| Failure::usage(format!("--ttl: {e}")))
}

pub async fn tokens(client: &ApiClient, cmd: &TokensCmd, format: Format) -> Result<(), Failure> {
    let TokensCmd::Add {
        kind,
        ttl,
        labels: l,
        reusable,
    } = cmd;
    let req = TokenRequest {
        kind: kind.clone(),
        ttl_secs: Some(ttl_secs(ttl)?),
        labels: labels(l)?,
        reusable: *reusable,
    };
    let t: TokenResponse = client.post("/v1/tokens", &req).await?;
    let expires = t
        .expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let proxy = t.proxy_addr.clone().unwrap_or_else(|| "PROXY:3080".into());
    match format {
        Format::Table => out(&format!(
            "Join token created; it works {}until {expires}. On the new node run:\n\n  echo {} > /etc/keygate/join-token && chmod 600 /etc/keygate/join-token\n  keygate start --roles node --proxy {proxy} --token-file /etc/keygate/join-token --ca-pin {}\n",
            if *reusable { "for any number of nodes " } else { "once, " },
            t.token,
            t.ca_pin
        )),
        f => structured(&serde_json::json!({"token": t.token, "ca_pin": t.ca_pin, "expires": expires, "proxy": proxy}), f)
            .map_err(Failure::usage)?,
    }
    Ok(())
}

fn random_name() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut b);
    format!(
        "lock-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

pub async fn lock(client: &ApiClient, a: &LockArgs, format: Format) -> Result<(), Failure> {
    let target = match (
        &a.user,
        &a.role,
        &a.login,
        &a.node,
        &a.mfa_device,
        &a.access_request,
        &a.serial,
    ) {
        (Some(v), ..) => LockTarget::User(v.clone()),
        (_, Some(v), ..) => LockTarget::Role(v.clone()),
        (_, _, Some(v), ..) => LockTarget::Login(v.clone()),
        (_, _, _, Some(v), ..) => LockTarget::Node(v.clone()),
        (_, _, _, _, Some(v), ..) => LockTarget::MfaDevice(v.clone()),
        (_, _, _, _, _, Some(v), _) => LockTarget::AccessRequest(v.clone()),
        (.., Some(v)) => LockTarget::Serial(v.clone()),
        _ => {
            return Err(Failure::usage(
                "say what to lock: --user, --role, --login, --node, --mfa-device, --access-request or --serial",
            ));
        }
    };
    let mut lock: Lock = Resource::new(
        Kind::Lock,
        random_name(),
        LockSpec {
            target,
            message: a.message.clone(),
        },
    );
    if let Some(t) = &a.ttl {
        use keygate_clock::Clock;
        let secs = ttl_secs(t)?;
        lock.metadata.expires = Some(
            keygate_clock::SystemClock::new().now()
                + time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)),
        );
    }
    let json = AnyResource::Lock(lock.clone())
        .to_json()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let _: Ack = client
        .post(
            "/v1/resources",
            &PutResourceRequest {
                resource: json.clone(),
                force: false,
            },
        )
        .await?;
    match format {
        Format::Table => out(&format!(
            "Created lock {} on {}.\n",
            lock.metadata.name, lock.spec.target
        )),
        f => structured(&json, f).map_err(Failure::usage)?,
    }
    Ok(())
}

pub async fn locks(client: &ApiClient, cmd: &LocksCmd, format: Format) -> Result<(), Failure> {
    match cmd {
        LocksCmd::Ls => resources::get(client, "lock", format).await,
        LocksCmd::Rm { name } => resources::rm(client, &format!("lock/{name}")).await,
    }
}
