//! Signed audit exports and offline verification: `kgctl audit export
//! --signed`, `kgctl audit verify --bundle … --ca-key …` (needs only the
//! audit CA's public key, no cluster) and `kgctl audit checkpoints`.

use std::path::Path;

use keygate_api::ApiClient;
use keygate_audit_model::{
    BUNDLE_FORMAT, BundleLine, CHECKPOINT_NAMESPACE, SignedCheckpoint, check_bundle,
};
use keygate_client::output::{Format, out, structured};

use crate::Failure;

/// Largest bundle or checkpoint file read (the log's size bounds it; a
/// larger log needs a streaming check, which is future work).
const MAX_FILE: u64 = 2 << 30;

#[derive(serde::Deserialize)]
struct ExportPage {
    records: Vec<BundleLine>,
    #[serde(default)]
    next: Option<u64>,
}

#[derive(serde::Deserialize)]
struct Status {
    cluster: String,
}

fn line(v: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string(v)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| Failure::usage(format!("encoding the bundle: {e}")))
}

/// `kgctl audit export --signed`: signs the head now, then writes the
/// header, every record up to that checkpoint, and every checkpoint — so
/// the bundle has no unsigned tail.
pub async fn export(client: &ApiClient) -> Result<(), Failure> {
    let status: Status = client.get("/v1/status").await?;
    let head: Option<SignedCheckpoint> = client
        .post("/v1/audit/checkpoints", &serde_json::json!({}))
        .await?;
    let last = head.map_or(0, |c| c.checkpoint.seq);
    out(&line(&BundleLine::Header {
        format: BUNDLE_FORMAT,
        cluster: status.cluster,
    })?);
    let mut from = 1u64;
    loop {
        let page: ExportPage = client
            .get(&format!("/v1/audit/export?from={from}&limit=5000"))
            .await?;
        let mut done = false;
        for r in &page.records {
            if let BundleLine::Record { seq, .. } = r
                && *seq > last
            {
                done = true;
                break;
            }
            out(&line(r)?);
        }
        match page.next {
            Some(n) if n > from && !done => from = n,
            _ => break,
        }
    }
    let cps: Vec<SignedCheckpoint> = client.get("/v1/audit/checkpoints").await?;
    for cp in cps.into_iter().filter(|c| c.checkpoint.seq <= last) {
        out(&line(&BundleLine::Checkpoint(cp))?);
    }
    Ok(())
}

/// `kgctl audit checkpoints [--now]`: one JSON line per signed checkpoint.
pub async fn checkpoints(client: &ApiClient, now: bool) -> Result<(), Failure> {
    if now {
        let _: Option<SignedCheckpoint> = client
            .post("/v1/audit/checkpoints", &serde_json::json!({}))
            .await?;
    }
    let cps: Vec<SignedCheckpoint> = client.get("/v1/audit/checkpoints").await?;
    for cp in cps {
        out(&line(&cp)?);
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, Failure> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > MAX_FILE {
        return Err(Failure::usage(format!(
            "{} is larger than {MAX_FILE} bytes",
            path.display()
        )));
    }
    std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))
}

/// Checkpoints kept elsewhere: JSON lines as `kgctl audit checkpoints`
/// prints them (bundle lines of kind `checkpoint` are accepted too).
pub fn read_checkpoints(path: &Path) -> Result<Vec<SignedCheckpoint>, Failure> {
    read(path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(i, l)| match serde_json::from_str::<BundleLine>(l) {
            Ok(BundleLine::Checkpoint(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(_) => Some(serde_json::from_str::<SignedCheckpoint>(l).map_err(|e| {
                Failure::usage(format!(
                    "{}:{}: not a checkpoint: {e}",
                    path.display(),
                    i + 1
                ))
            })),
        })
        .collect()
}

/// `kgctl audit verify --bundle FILE --ca-key FILE`.
pub fn verify_bundle(bundle: &Path, ca_key: Option<&Path>, format: Format) -> Result<(), Failure> {
    let ca_key = ca_key.ok_or_else(|| {
        Failure::usage("--bundle needs --ca-key (kgctl auth export --type audit > audit-ca.pub)")
    })?;
    let keys: Vec<String> = read(ca_key)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches("@cert-authority * ").to_owned())
        .collect();
    if keys.is_empty() {
        return Err(Failure::usage(format!("{} holds no key", ca_key.display())));
    }
    let text = read(bundle)?;
    let report = check_bundle(&text, |cp| {
        keygate_ca::sshsig_verify(
            &cp.signature,
            &keys,
            CHECKPOINT_NAMESPACE,
            &cp.checkpoint.message(),
        )
        .is_ok()
    })
    .map_err(|e| Failure::usage(format!("{}: {e}", bundle.display())))?;
    if format != Format::Table {
        structured(&report, format).map_err(Failure::usage)?;
    } else {
        match &report.first_break {
            Some(b) => out(&format!("BROKEN: {b}\n")),
            None => out(&format!(
                "Hash chain verified: {} records; {} signed checkpoints.\n",
                report.records, report.signed_checkpoints
            )),
        }
        for s in &report.findings.diverged {
            out(&format!(
                "DIVERGED at record {s}: the records differ from what was signed\n"
            ));
        }
        for s in &report.findings.beyond_tail {
            out(&format!(
                "TRUNCATED: a checkpoint signed record {s}, missing from the bundle\n"
            ));
        }
        for s in &report.bad_signatures {
            out(&format!("BAD SIGNATURE on the checkpoint at record {s}\n"));
        }
        if report.findings.unsigned_tail > 0 {
            out(&format!(
                "UNSIGNED TAIL: the last {} records are not covered by a signed checkpoint\n",
                report.findings.unsigned_tail
            ));
        }
        if report.signed_checkpoints == 0 {
            out("NO SIGNED CHECKPOINT: nothing in the bundle is signed by this audit CA\n");
        }
    }
    if report.ok() {
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            message: "the bundle does not prove an untampered log".into(),
        })
    }
}
