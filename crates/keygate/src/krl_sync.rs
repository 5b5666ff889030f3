//! `keygate krl-sync`: keeps an agentless host's `RevokedKeys` file (and
//! its `TrustedUserCAKeys` file) current. Fetches the cluster's KRL over
//! TLS pinned to the CA pin, or takes one delivered by other means
//! (`--krl-file` + `--sig-file`), checks the detached SSHSIG against the
//! openssh CA keys the host already trusts, refuses anything older than
//! what is installed, and replaces the file atomically (sshd reads it at
//! every login, so no reload is needed).

use std::path::{Path, PathBuf};

use base64::Engine;
use keygate_api::{ApiClient, KrlBundle};
use keygate_ca::{KRL_SIG_NAMESPACE, Krl};
use time::OffsetDateTime;

/// What to sync from and to.
#[derive(Debug, Clone)]
pub struct KrlSyncOptions {
    /// Proxy `host:port` (online mode).
    pub proxy: Option<String>,
    /// CA pin the proxy must match (online mode).
    pub ca_pin: Option<String>,
    /// A KRL delivered by other means (offline mode, with `sig_file`).
    pub krl_file: Option<PathBuf>,
    /// Its detached signature.
    pub sig_file: Option<PathBuf>,
    /// sshd's `RevokedKeys` file.
    pub out: PathBuf,
    /// sshd's `TrustedUserCAKeys` file: the keys the signature must verify
    /// with; written on first sync and when the CA rotates.
    pub ca_file: PathBuf,
    /// Prometheus textfile to write (`keygate_krl_*` gauges).
    pub metrics_file: Option<PathBuf>,
    /// Accept a KRL older than the installed one.
    pub allow_rollback: bool,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Installed version.
    pub version: u64,
    /// When auth generated it.
    pub generated_at: OffsetDateTime,
    /// Seconds between generation and now.
    pub age_secs: i64,
    /// Distinct revoked key ids (over all CAs).
    pub key_ids: usize,
    /// Distinct revoked serials (over all CAs).
    pub serials: usize,
    /// Whether the CA keys file was (re)written.
    pub ca_file_updated: bool,
}

/// Why a sync was refused; the installed files are left as they were.
#[derive(Debug, thiserror::Error)]
pub enum KrlSyncError {
    /// Flags.
    #[error("{0}")]
    Usage(String),
    /// Fetching failed.
    #[error("cannot fetch the KRL: {0}")]
    Fetch(String),
    /// The signature, format or version is wrong.
    #[error("refusing the KRL: {0}")]
    Rejected(String),
    /// Files could not be read or written.
    #[error("{0}")]
    Io(String),
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> KrlSyncError {
    move |e| KrlSyncError::Io(format!("{what}: {e}"))
}

/// Keys (OpenSSH lines) in a `TrustedUserCAKeys` file.
fn read_keys(path: &Path) -> Result<Option<Vec<String>>, KrlSyncError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(KrlSyncError::Io(format!("read {}: {e}", path.display()))),
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory,
/// fsync, rename), world-readable like sshd's other public files.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), KrlSyncError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "krl".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(io(format!("create {}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("replace {}", path.display())))
}

/// Fetches the signed KRL from the proxy, over TLS pinned to `pin`.
async fn fetch(proxy: &str, pin: &str) -> Result<KrlBundle, KrlSyncError> {
    let (cfg, _) = keygate_tls::pinned_client_config(Some(pin))
        .map_err(|e| KrlSyncError::Fetch(e.to_string()))?;
    let client = ApiClient::https(proxy, cfg).map_err(|e| KrlSyncError::Fetch(e.to_string()))?;
    client
        .get("/v1/krl")
        .await
        .map_err(|e| KrlSyncError::Fetch(e.to_string()))
}

/// The `-----BEGIN SSH SIGNATURE-----` blocks of `text`.
fn armored_blocks(text: &str) -> Vec<String> {
    const END: &str = "-----END SSH SIGNATURE-----";
    text.split_inclusive(END)
        .filter(|b| b.contains(END))
        .map(|b| b.trim().to_owned())
        .collect()
}

/// One sync.
pub async fn sync_once(
    opts: &KrlSyncOptions,
    now: OffsetDateTime,
) -> Result<SyncReport, KrlSyncError> {
    let (bytes, signature, offered_keys) = match (&opts.krl_file, &opts.sig_file, &opts.proxy) {
        (Some(k), Some(s), _) => (
            std::fs::read(k).map_err(io(format!("read {}", k.display())))?,
            std::fs::read_to_string(s).map_err(io(format!("read {}", s.display())))?,
            None,
        ),
        (Some(_), None, _) | (None, Some(_), _) => {
            return Err(KrlSyncError::Usage(
                "--krl-file and --sig-file go together".into(),
            ));
        }
        (None, None, Some(proxy)) => {
            let pin = opts.ca_pin.as_deref().ok_or_else(|| {
                KrlSyncError::Usage("--ca-pin is required with --proxy (see kgctl status)".into())
            })?;
            let b = fetch(proxy, pin).await?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b.krl.as_bytes())
                .map_err(|e| KrlSyncError::Rejected(format!("not base64: {e}")))?;
            (bytes, b.signatures.concat(), Some(b.openssh_ca_keys))
        }
        (None, None, None) => {
            return Err(KrlSyncError::Usage(
                "give --proxy and --ca-pin, or --krl-file and --sig-file".into(),
            ));
        }
    };
    install(opts, &bytes, &signature, offered_keys.as_deref(), now)
}

/// Verifies and installs one KRL.
pub fn install(
    opts: &KrlSyncOptions,
    bytes: &[u8],
    signature: &str,
    offered_keys: Option<&[String]>,
    now: OffsetDateTime,
) -> Result<SyncReport, KrlSyncError> {
    // The keys the host already trusts; on the very first online sync, the
    // keys that came over TLS pinned to the CA pin.
    let trusted = match (read_keys(&opts.ca_file)?, offered_keys) {
        (Some(k), _) if !k.is_empty() => k,
        (_, Some(offered)) => offered.to_vec(),
        _ => {
            return Err(KrlSyncError::Usage(format!(
                "{} holds no openssh CA keys to check the signature with: kgctl auth export --type openssh > {}",
                opts.ca_file.display(),
                opts.ca_file.display()
            )));
        }
    };
    // One armored signature per trusted key of the cluster (several during
    // a rotation): one that verifies with a key this host trusts suffices.
    let mut last = None;
    let verified =
        armored_blocks(signature).into_iter().any(|sig| {
            match keygate_ca::sshsig_verify(&sig, &trusted, KRL_SIG_NAMESPACE, bytes) {
                Ok(()) => true,
                Err(e) => {
                    last = Some(e.to_string());
                    false
                }
            }
        });
    if !verified {
        return Err(KrlSyncError::Rejected(format!(
            "its signature does not verify with the openssh CA keys in {} ({}); the installed KRL is unchanged",
            opts.ca_file.display(),
            last.unwrap_or_else(|| "no signature found".into())
        )));
    }
    let krl = Krl::decode(bytes).map_err(|e| KrlSyncError::Rejected(e.to_string()))?;
    if let Ok(old) = std::fs::read(&opts.out)
        && let Ok(old) = Krl::decode(&old)
        && old.version > krl.version
        && !opts.allow_rollback
    {
        return Err(KrlSyncError::Rejected(format!(
            "version {} is older than the installed {} (a replayed KRL?); pass --allow-rollback to install it anyway",
            krl.version, old.version
        )));
    }
    replace(&opts.out, bytes)?;
    let mut ca_file_updated = false;
    if let Some(offered) = offered_keys
        && read_keys(&opts.ca_file)?.as_deref() != Some(offered)
    {
        let mut text = offered.join("\n");
        text.push('\n');
        replace(&opts.ca_file, text.as_bytes())?;
        ca_file_updated = true;
    }
    let report = SyncReport {
        version: krl.version,
        generated_at: krl.generated_at,
        age_secs: (now - krl.generated_at).whole_seconds().max(0),
        key_ids: krl
            .certificates
            .iter()
            .flat_map(|c| c.key_ids.iter())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        serials: krl
            .certificates
            .iter()
            .flat_map(|c| c.serials.iter())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        ca_file_updated,
    };
    if let Some(m) = &opts.metrics_file {
        let text = format!(
            "# HELP keygate_krl_version Version of the installed KRL.\n# TYPE keygate_krl_version gauge\nkeygate_krl_version {}\n# HELP keygate_krl_generated_timestamp_seconds When auth generated the installed KRL.\n# TYPE keygate_krl_generated_timestamp_seconds gauge\nkeygate_krl_generated_timestamp_seconds {}\n# HELP keygate_krl_sync_timestamp_seconds Last successful sync.\n# TYPE keygate_krl_sync_timestamp_seconds gauge\nkeygate_krl_sync_timestamp_seconds {}\n",
            report.version,
            report.generated_at.unix_timestamp(),
            now.unix_timestamp()
        );
        replace(m, text.as_bytes())?;
    }
    Ok(report)
}
