//! `kgctl`: the admin CLI. Thin: flags here, one function per command in
//! the modules.

mod access;
mod apply;
mod audit;
mod audit_bundle;
mod auth;
mod connect;
mod nodes;
mod resources;
mod sessions;
mod tokens;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keygate_client::output::Format;

#[derive(Parser)]
#[command(name = "kgctl", version, about = "Keygate admin CLI.")]
pub struct Cli {
    /// Talk to the daemon on this host through DIR/admin.sock (run as the daemon's user or root).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Authenticate with an identity file from `kgctl auth sign`.
    #[arg(short = 'i', long = "identity", global = true)]
    identity: Option<PathBuf>,
    /// Output format: table, json or yaml (`auth export`: openssh or x509).
    #[arg(long, global = true, default_value = "table")]
    format: String,
    /// Verbose output.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Cluster name, CAs with fingerprints, CA pin, version.
    #[command(after_help = "Example:\n  kgctl --data-dir ~/.local/share/keygate status")]
    Status,
    /// Manage users.
    #[command(subcommand)]
    Users(users::UsersCmd),
    /// Print resources: KIND or KIND/NAME (user, role, token, lock, node, auth_preference).
    #[command(
        after_help = "Examples:\n  kgctl get roles\n  kgctl get role/access --format yaml > access.yaml"
    )]
    Get {
        /// KIND or KIND/NAME.
        target: String,
    },
    /// Create resources from a YAML/JSON file (`-` for stdin).
    #[command(after_help = "Example:\n  kgctl create -f roles.yaml --force")]
    Create {
        /// File with one or more `---`-separated resources.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Overwrite resources that exist.
        #[arg(long)]
        force: bool,
    },
    /// Delete a resource: KIND/NAME.
    #[command(after_help = "Example:\n  kgctl rm role/old-contractors")]
    Rm {
        /// KIND/NAME.
        target: String,
    },
    /// Certificate authorities and identities.
    #[command(subcommand)]
    Auth(auth::AuthCmd),
    /// Show what applying a directory (or file) of resources would change; exit 0 none, 1 pending, 2 error.
    #[command(after_help = "Example:\n  kgctl plan -f ./keygate-resources/")]
    Plan {
        /// Directory of .yaml/.yml/.json files, or one file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Also plan deleting resources of the same kinds that are not in the files.
        #[arg(long)]
        prune: bool,
    },
    /// Apply a directory (or file) of resources atomically: all or nothing.
    #[command(after_help = "Example:\n  kgctl apply -f ./keygate-resources/ --prune")]
    Apply {
        /// Directory of .yaml/.yml/.json files, or one file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Delete resources of the same kinds that are not in the files (built-in roles are kept).
        #[arg(long)]
        prune: bool,
    },
    /// List live sessions or terminate one.
    #[command(subcommand)]
    Sessions(sessions::SessionsCmd),
    /// Search the audit log or verify its hash chain.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Join tokens for nodes.
    #[command(subcommand)]
    Tokens(tokens::TokensCmd),
    /// Lock a user, role, login, node, MFA device, access request or certificate serial.
    #[command(
        after_help = "Examples:\n  kgctl lock --user mallory --message \"offboarded\"\n  kgctl lock --login root --ttl 1h"
    )]
    Lock(tokens::LockArgs),
    /// List or remove locks.
    #[command(subcommand)]
    Locks(tokens::LocksCmd),
    /// List nodes; register agentless OpenSSH hosts.
    #[command(subcommand)]
    Nodes(nodes::NodesCmd),
    /// Explain access decisions: why a user may or may not log in, who can reach a node, what a user can reach.
    #[command(subcommand)]
    Access(access::AccessCmd),
}

pub use keygate_client::Failure;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    keygate_tls::install_crypto_provider();
    let r = run(cli).await;
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report("kgctl"),
    }
}

/// The data format for commands that print tables, JSON or YAML.
fn data_format(cli: &Cli) -> Result<Format, Failure> {
    cli.format.parse().map_err(Failure::usage)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    // Offline: checking a signed bundle needs no cluster and no identity.
    if let Cmd::Audit(audit::AuditCmd::Verify {
        bundle: Some(bundle),
        ca_key,
        ..
    }) = &cli.cmd
    {
        return audit_bundle::verify_bundle(bundle, ca_key.as_deref(), data_format(&cli)?);
    }
    let client = connect::client(&cli)?;
    match &cli.cmd {
        Cmd::Status => auth::status(&client, data_format(&cli)?).await,
        Cmd::Users(c) => users::run(&client, c, data_format(&cli)?, &cli).await,
        Cmd::Get { target } => resources::get(&client, target, data_format(&cli)?).await,
        Cmd::Create { file, force } => resources::create(&client, file, *force).await,
        Cmd::Rm { target } => resources::rm(&client, target).await,
        Cmd::Auth(c) => auth::run(&client, &cli, c).await,
        Cmd::Plan { file, prune } => {
            apply::run(&client, file, *prune, true, data_format(&cli)?).await
        }
        Cmd::Apply { file, prune } => {
            apply::run(&client, file, *prune, false, data_format(&cli)?).await
        }
        Cmd::Sessions(c) => sessions::run(&client, c, data_format(&cli)?).await,
        Cmd::Audit(c) => audit::run(&client, c, data_format(&cli)?).await,
        Cmd::Tokens(c) => tokens::tokens(&client, c, data_format(&cli)?).await,
        Cmd::Lock(a) => tokens::lock(&client, a, data_format(&cli)?).await,
        Cmd::Locks(c) => tokens::locks(&client, c, data_format(&cli)?).await,
        Cmd::Nodes(c) => nodes::run(&client, c, data_format(&cli)?).await,
        Cmd::Access(c) => access::run(&client, c, data_format(&cli)?).await,
    }
}
