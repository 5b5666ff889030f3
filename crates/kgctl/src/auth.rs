use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use clap::Subcommand;
use keygate_api::{ApiClient, CaExport, CertsResponse, SignRequest, StatusResponse};
use keygate_client::output::{Format, out, structured, table};
use keygate_client::{ClientKey, IdentityFile};

use crate::{Cli, Failure};

#[derive(Subcommand)]
pub enum AuthCmd {
    /// Print a CA's public keys (`--format openssh` default, or `x509`).
    #[command(
        after_help = "Examples:\n  kgctl auth export --type user > /etc/ssh/keygate_user_ca.pub   # for TrustedUserCAKeys\n  kgctl auth export --type host >> ~/.ssh/known_hosts             # @cert-authority line\n  kgctl auth export --type host --format x509 > ca.pem\n  kgctl auth export --type openssh --format krl > keygate.krl          # RevokedKeys\n  kgctl auth export --type openssh --format krl-sig > keygate.krl.sig # its SSHSIG"
    )]
    Export {
        /// user, host or audit.
        #[arg(long = "type")]
        ca_type: String,
    },
    /// Rotate a CA's SSH key: at once with a grace period, or phase by phase.
    #[command(
        after_help = "Examples:\n  kgctl auth rotate --type user --grace-period 30h   # new key signs now; old certificates work 30 h more\n  kgctl auth rotate --type host --manual --phase init\n  kgctl auth rotate --type host --manual --phase update_clients\n  kgctl auth rotate --type host --manual --phase update_servers\n  kgctl auth rotate --type host --manual --phase standby   # the old key is no longer trusted\n  kgctl auth rotate --type openssh --rollback\n\nNodes, agentless hosts (keygate krl-sync) and clients (kg login) pick up the new keys by themselves. See docs/ca-rotation.md."
    )]
    Rotate {
        /// user, host or openssh.
        #[arg(long = "type")]
        ca_type: String,
        /// How long certificates signed by the old key stay valid [default: 30h].
        #[arg(long, conflicts_with_all = ["manual", "rollback"])]
        grace_period: Option<String>,
        /// Move the rotation yourself, one --phase at a time.
        #[arg(long, requires = "phase")]
        manual: bool,
        /// init, update_clients, update_servers or standby (with --manual).
        #[arg(long, requires = "manual")]
        phase: Option<String>,
        /// Abandon the rotation in progress and go back to the old key.
        #[arg(long, conflicts_with_all = ["manual", "phase"])]
        rollback: bool,
    },
    /// Issue an identity file (key + certificates + CA + proxy) for a user or bot,
    /// or (--host) a host certificate for an agentless node's sshd key.
    #[command(
        after_help = "Examples:\n  kgctl auth sign --user ci-bot --ttl 8h --out ci-bot.identity\n  kgctl -i ci-bot.identity get roles\n  kgctl auth sign --host db-1 --key /etc/ssh/ssh_host_ed25519_key.pub --out /etc/ssh/ssh_host_ed25519_key-cert.pub"
    )]
    Sign {
        /// Whose identity.
        #[arg(long, conflicts_with = "host", required_unless_present = "host")]
        user: Option<String>,
        /// Agentless node whose sshd host key to certify (with --key).
        #[arg(long, requires = "key")]
        host: Option<String>,
        /// The host's public key file (with --host).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Lifetime, e.g. 8h [default: 12h for users, 720h for hosts].
        #[arg(long)]
        ttl: Option<String>,
        /// Output file (written 0600).
        #[arg(long)]
        out: PathBuf,
        /// Proxy address recorded in the file [default: current profile's, else localhost:3080].
        #[arg(long)]
        proxy: Option<String>,
    },
}

/// `kgctl status`.
pub async fn status(client: &ApiClient, format: Format) -> Result<(), Failure> {
    let s: StatusResponse = client.get("/v1/status").await?;
    if format != Format::Table {
        return structured(&s, format).map_err(Failure::usage);
    }
    let rows: Vec<Vec<String>> = s
        .cas
        .iter()
        .map(|c| {
            vec![
                c.kind.clone(),
                c.ssh_fingerprints.join(" "),
                c.x509_pin.clone(),
                c.rotation.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    out(&format!(
        "Cluster: {}\nVersion: {}\nCA pin:  {}\nCaller:  {}\n\n{}",
        s.cluster,
        s.version,
        s.ca_pin,
        s.caller,
        table(&["CA", "SSH FINGERPRINT", "X.509 PIN", "ROTATION"], &rows)
    ));
    Ok(())
}

fn ttl_secs(s: &str) -> Result<u64, Failure> {
    s.parse::<keygate_types::Ttl>()
        .map(|t| t.as_secs())
        .map_err(|e| Failure::usage(format!("--ttl: {e}")))
}

pub async fn run(client: &ApiClient, cli: &Cli, cmd: &AuthCmd) -> Result<(), Failure> {
    match cmd {
        AuthCmd::Export { ca_type } if cli.format == "krl" || cli.format == "krl-sig" => {
            if ca_type != "openssh" && ca_type != "user" {
                return Err(Failure::usage(
                    "the KRL covers the openssh and user CAs: use --type openssh",
                ));
            }
            let b: keygate_api::KrlBundle = client.get("/v1/krl").await?;
            if cli.format == "krl-sig" {
                // One armored block per trusted key; krl-sync accepts the
                // file if any of them verifies.
                out(&b.signatures.concat());
                return Ok(());
            }
            let bytes = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                b.krl.as_bytes(),
            )
            .map_err(|e| Failure::usage(format!("the cluster sent a malformed KRL: {e}")))?;
            std::io::Write::write_all(&mut std::io::stdout(), &bytes)
                .map_err(|e| Failure::usage(format!("writing the KRL: {e}")))?;
            Ok(())
        }
        AuthCmd::Export { ca_type } => {
            let ca: CaExport = client.get(&format!("/v1/ca/{ca_type}")).await?;
            let text = match cli.format.as_str() {
                "x509" => ca.x509_pem,
                "openssh" | "table" => {
                    let prefix = if ca_type == "host" {
                        "@cert-authority * "
                    } else {
                        ""
                    };
                    ca.ssh_public_keys
                        .iter()
                        .map(|k| format!("{prefix}{}\n", k.trim()))
                        .collect()
                }
                other => {
                    return Err(Failure::usage(format!(
                        "--format {other:?}: auth export prints openssh, x509, krl or krl-sig"
                    )));
                }
            };
            out(&text);
            Ok(())
        }
        AuthCmd::Rotate {
            ca_type,
            grace_period,
            phase,
            rollback,
            ..
        } => {
            let req = keygate_api::RotateRequest {
                grace_secs: grace_period.as_deref().map(ttl_secs).transpose()?,
                phase: phase.clone(),
                rollback: *rollback,
            };
            let s: keygate_api::RotationStatus = client
                .post(&format!("/v1/ca/{ca_type}/rotate"), &req)
                .await?;
            let format: Format = cli.format.parse().map_err(Failure::usage)?;
            if format != Format::Table {
                return structured(&s, format).map_err(Failure::usage);
            }
            let until = s
                .grace_ends
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .map(|t| format!(", completes at {t}"))
                .unwrap_or_default();
            out(&format!(
                "{} CA: phase {} ({}{until})\nSigning: {}\nTrusted: {}\n",
                s.kind,
                s.phase,
                s.mode,
                s.signing,
                s.trusted.join(", ")
            ));
            Ok(())
        }
        AuthCmd::Sign {
            host: Some(host),
            key: Some(key),
            ttl,
            out: path,
            ..
        } => sign_host(client, host, key, ttl.as_deref(), path).await,
        AuthCmd::Sign {
            user,
            ttl,
            out: path,
            proxy,
            ..
        } => {
            let user = user
                .clone()
                .ok_or_else(|| Failure::usage("pass --user NAME (or --host NODE --key FILE)"))?;
            let key = ClientKey::generate();
            let req = SignRequest {
                user: user.clone(),
                public_key: key.public_openssh()?,
                ttl_secs: ttl_secs(ttl.as_deref().unwrap_or("12h"))?,
            };
            let certs: CertsResponse = client.post("/v1/certs/sign", &req).await?;
            let status: StatusResponse = client.get("/v1/status").await?;
            let proxy = proxy
                .clone()
                .or(status.proxy_addr)
                .unwrap_or_else(|| crate::connect::proxy_hint(cli));
            let text = IdentityFile::render(&proxy, &key, &certs)?;
            let _ = std::fs::remove_file(path);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
            f.write_all(text.as_bytes())
                .map_err(|e| Failure::usage(format!("writing {}: {e}", path.display())))?;
            out(&format!(
                "Wrote identity for {:?} to {} (valid until {}).\n",
                certs.user,
                path.display(),
                certs
                    .valid_before
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            ));
            Ok(())
        }
    }
}

/// `kgctl auth sign --host`: writes the certificate next to the key
/// (world-readable, like sshd's other public files).
async fn sign_host(
    client: &ApiClient,
    host: &str,
    key: &std::path::Path,
    ttl: Option<&str>,
    path: &std::path::Path,
) -> Result<(), Failure> {
    let public_key = std::fs::read_to_string(key)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", key.display())))?;
    let req = keygate_api::HostSignRequest {
        node: host.to_owned(),
        public_key: public_key.trim().to_owned(),
        ttl_secs: ttl.map(ttl_secs).transpose()?,
    };
    let resp: keygate_api::HostSignResponse = client.post("/v1/certs/host", &req).await?;
    std::fs::write(path, format!("{}\n", resp.cert.trim()))
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
    out(&format!(
        "Wrote the host certificate for {host:?} ({}) to {}.\nsshd_config: HostCertificate {}\n",
        resp.principals.join(", "),
        path.display(),
        path.display()
    ));
    Ok(())
}
