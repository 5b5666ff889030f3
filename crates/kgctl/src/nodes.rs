//! `kgctl nodes`: list nodes, and register agentless OpenSSH hosts.

use keygate_api::{Ack, ApiClient, PutResourceRequest};
use keygate_client::output::{Format, out};

use crate::Failure;

#[derive(clap::Subcommand)]
pub enum NodesCmd {
    /// List registered nodes.
    Ls,
    /// Register an agentless OpenSSH host (reached through the proxy's relay).
    #[command(
        after_help = "Example:\n  kgctl nodes add --openssh --name db-1 --address 10.0.0.12:22 --labels env=prod,team=data\n\nThen set up the host's sshd (see docs/agentless.md):\n  kgctl auth export --type openssh > /etc/ssh/keygate_openssh_ca.pub\n  kgctl auth sign --host db-1 --key /etc/ssh/ssh_host_ed25519_key.pub --out /etc/ssh/ssh_host_ed25519_key-cert.pub"
    )]
    Add {
        /// The host runs OpenSSH's sshd, not a Keygate agent (required:
        /// Keygate agents join with a token instead).
        #[arg(long)]
        openssh: bool,
        /// Node name users will type (`kg ssh login@NAME`).
        #[arg(long)]
        name: String,
        /// Where its sshd listens, host:port.
        #[arg(long)]
        address: String,
        /// Labels, k=v[,k=v…] (authoritative; roles match on them).
        #[arg(long, value_delimiter = ',')]
        labels: Vec<String>,
        /// Replace an existing registration of the same name.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(client: &ApiClient, cmd: &NodesCmd, format: Format) -> Result<(), Failure> {
    match cmd {
        NodesCmd::Ls => crate::resources::get(client, "node", format).await,
        NodesCmd::Add {
            openssh,
            name,
            address,
            labels,
            force,
        } => {
            if !openssh {
                return Err(Failure::usage(
                    "only agentless hosts are added by hand: pass --openssh (Keygate agents join with a token from kgctl tokens add)",
                ));
            }
            let mut map = serde_json::Map::new();
            for l in labels {
                let (k, v) = l
                    .split_once('=')
                    .ok_or_else(|| Failure::usage(format!("--labels {l:?}: write key=value")))?;
                map.insert(k.trim().to_owned(), serde_json::Value::from(v.trim()));
            }
            let resource = serde_json::json!({
                "kind": "node",
                "version": "v1",
                "metadata": {"name": name, "labels": map},
                "spec": {"addr": address, "sub_kind": "openssh"},
            });
            let _: Ack = client
                .post(
                    "/v1/resources",
                    &PutResourceRequest {
                        resource,
                        force: *force,
                    },
                )
                .await?;
            out(&format!(
                "Registered agentless node {name:?} at {address}.\nOn the host, make sshd trust the openssh CA and present a host certificate:\n  kgctl auth export --type openssh > /etc/ssh/keygate_openssh_ca.pub\n  kgctl auth sign --host {name} --key /etc/ssh/ssh_host_ed25519_key.pub --out /etc/ssh/ssh_host_ed25519_key-cert.pub\nand add to sshd_config:\n  TrustedUserCAKeys /etc/ssh/keygate_openssh_ca.pub\n  HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub\n  RevokedKeys /etc/ssh/keygate.krl   # kept fresh by keygate krl-sync\n"
            ));
            Ok(())
        }
    }
}
