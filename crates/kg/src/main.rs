//! `kg`: the user CLI. Thin: each subcommand is a function in its module.

mod login;
mod ssh;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keygate_client::output::Format;

#[derive(Parser)]
#[command(
    name = "kg",
    version,
    about = "Keygate user CLI: log in and get short-lived certificates."
)]
struct Cli {
    /// Verbose output to stderr.
    #[arg(long, global = true)]
    debug: bool,
    /// Output format: table, json or yaml.
    #[arg(long, global = true, default_value = "table")]
    format: Format,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Log in and get certificates (renews without a password while the current ones are valid).
    #[command(
        after_help = "Examples:\n  kg login --proxy localhost:3080 --user alice --ca-pin sha256:3f…\n  echo \"$PW\" | kg login --proxy localhost:3080 --user alice --password-stdin --otp 123456"
    )]
    Login(login::LoginArgs),
    /// Complete an invitation printed by `kgctl users add`.
    #[command(
        after_help = "Example:\n  kg signup --proxy localhost:3080 --token 8c1f… --ca-pin sha256:3f…"
    )]
    Signup(login::SignupArgs),
    /// Show the current identity.
    #[command(after_help = "Example:\n  kg status --format json")]
    Status,
    /// Forget the current identity (and remove its key from ssh-agent).
    Logout,
    /// List the nodes you may reach (optionally filtered by key=value labels).
    #[command(after_help = "Example:\n  kg ls env=prod")]
    Ls {
        /// key=value label filters.
        filters: Vec<String>,
    },
    /// Open a session on a node through the proxy (exit status of the remote command; 255 when kg fails).
    #[command(
        after_help = "Examples:\n  kg ssh web-1\n  kg ssh ubuntu@web-1 uptime\n  kg ssh env=prod -- systemctl is-active nginx"
    )]
    Ssh(ssh::SshArgs),
    /// Copy files to or from nodes ([login@]node:path on either side).
    #[command(after_help = "Example:\n  kg scp -r ./site web-1:/srv/")]
    Scp {
        /// Copy directories recursively.
        #[arg(short = 'r')]
        recursive: bool,
        /// Sources, then the destination.
        paths: Vec<String>,
    },
    /// Print an ssh_config block so plain ssh, scp and Ansible go through Keygate.
    #[command(after_help = "Example:\n  kg config >> ~/.ssh/config && ssh web-1.keygate")]
    Config,
    /// Internal: used as OpenSSH's ProxyCommand.
    #[command(subcommand)]
    Proxy(ProxyCmd),
}

#[derive(Subcommand)]
enum ProxyCmd {
    /// Carry an SSH connection to LOGIN@NODE:PORT through the proxy on stdin/stdout.
    Ssh {
        /// LOGIN@NODE:PORT (as OpenSSH's %r@%h:%p).
        target: String,
        /// Which profile's proxy.
        #[arg(long)]
        proxy: Option<String>,
    },
}

pub use keygate_client::Failure;

/// For commands whose exit status is a remote program's.
fn exit_with(r: Result<u8, Failure>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code),
        Err(f) => f.report("kg"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    keygate_tls::install_crypto_provider();
    let r = match cli.cmd {
        Cmd::Login(a) => login::login(a, cli.format).await,
        Cmd::Signup(a) => login::signup(a).await,
        Cmd::Status => status::status(cli.format),
        Cmd::Logout => status::logout(),
        Cmd::Ls { filters } => ssh::ls(&filters, cli.format).await,
        Cmd::Config => ssh::config(),
        Cmd::Proxy(ProxyCmd::Ssh { target, proxy }) => {
            let code = match ssh::proxy_ssh(&target, proxy).await {
                Ok(()) => 0,
                Err(f) => {
                    eprintln!("kg: {}", f.message);
                    i32::from(f.code)
                }
            };
            // Leave now: dropping the runtime would wait for tokio's stdin
            // reader, a blocking read only ssh's next write ends — and ssh,
            // waiting on us, may never write again (a cut connection then
            // hangs until ServerAliveInterval, or forever during key exchange).
            std::process::exit(code);
        }
        Cmd::Ssh(a) => return exit_with(ssh::ssh(a).await),
        Cmd::Scp { recursive, paths } => return exit_with(ssh::scp(recursive, &paths)),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report("kg"),
    }
}
