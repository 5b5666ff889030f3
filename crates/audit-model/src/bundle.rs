//! The signed export bundle (`kgctl audit export --signed`): JSON lines
//! carrying every record's exact bytes and hashes plus the signed
//! checkpoints, checkable offline with only the audit CA's public key
//! (`kgctl audit verify --bundle`).
//!
//! ```text
//! {"kind":"header","format":1,"cluster":"c"}
//! {"kind":"record","seq":1,"data":"{\"seq\":1,…}","prev_hash":"00…","hash":"ab…"}
//! {"kind":"checkpoint","cluster":"c","seq":1,"hash":"ab…","time":"…","signature":"-----BEGIN SSH SIGNATURE-----…"}
//! ```

use serde::{Deserialize, Serialize};

use crate::chain::{ChainBreak, ChainRecord, ChainVerifier, MAX_STORED_BYTES};
use crate::checkpoint::{CheckpointFindings, CheckpointMatcher, SignedCheckpoint, hex};

/// Bundle format version.
pub const BUNDLE_FORMAT: u32 = 1;
/// Longest line accepted (a record's bytes, escaped, plus hashes).
const MAX_LINE: usize = 4 * MAX_STORED_BYTES;

/// One line of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BundleLine {
    /// First line.
    Header {
        /// [`BUNDLE_FORMAT`].
        format: u32,
        /// Cluster name.
        cluster: String,
    },
    /// A record, exactly as stored.
    Record {
        /// Position.
        seq: u64,
        /// The exact stored bytes (UTF-8 JSON).
        data: String,
        /// Previous hash, hex.
        prev_hash: String,
        /// Hash, hex.
        hash: String,
    },
    /// A signed checkpoint.
    Checkpoint(SignedCheckpoint),
}

impl BundleLine {
    /// The line for `record`.
    pub fn record(r: &ChainRecord) -> Self {
        Self::Record {
            seq: r.seq,
            data: String::from_utf8_lossy(&r.bytes).into_owned(),
            prev_hash: hex(&r.prev_hash),
            hash: hex(&r.hash),
        }
    }
}

/// What checking a bundle found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleReport {
    /// Records whose chain recomputed.
    pub records: u64,
    /// Checkpoints whose signature verified.
    pub signed_checkpoints: u64,
    /// Checkpoints whose signature did not verify, by seq.
    pub bad_signatures: Vec<u64>,
    /// The first broken link, if any.
    pub first_break: Option<ChainBreak>,
    /// Chain vs (good) checkpoints.
    pub findings: CheckpointFindings,
}

impl BundleReport {
    /// Whether the bundle proves an untampered log up to its last record.
    pub fn ok(&self) -> bool {
        self.first_break.is_none()
            && self.bad_signatures.is_empty()
            && self.findings.consistent()
            && self.signed_checkpoints > 0
            && self.findings.unsigned_tail == 0
    }
}

/// Why a bundle could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// A line is not a bundle line.
    #[error("line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let pair = s.get(i * 2..i * 2 + 2)?;
        *o = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// Reads and checks a bundle. `signature_ok` checks one checkpoint's
/// signature against the audit CA key(s) the caller trusts.
pub fn check_bundle(
    text: &str,
    signature_ok: impl Fn(&SignedCheckpoint) -> bool,
) -> Result<BundleReport, BundleError> {
    let mut chain = ChainVerifier::genesis();
    let mut first_break = None;
    let mut good = Vec::new();
    let mut bad_signatures = Vec::new();
    let mut records = Vec::new();
    let mut header = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > MAX_LINE {
            return Err(BundleError::Malformed {
                line: n,
                reason: format!("longer than {MAX_LINE} bytes"),
            });
        }
        let parsed: BundleLine =
            serde_json::from_str(line).map_err(|e| BundleError::Malformed {
                line: n,
                reason: e.to_string(),
            })?;
        match parsed {
            BundleLine::Header { format, .. } => {
                if header || n != 1 || format != BUNDLE_FORMAT {
                    return Err(BundleError::Malformed {
                        line: n,
                        reason: format!("one header first, format {BUNDLE_FORMAT}"),
                    });
                }
                header = true;
            }
            BundleLine::Record {
                seq,
                data,
                prev_hash,
                hash,
            } => {
                let (Some(prev_hash), Some(hash)) = (unhex32(&prev_hash), unhex32(&hash)) else {
                    return Err(BundleError::Malformed {
                        line: n,
                        reason: "hashes must be 64 hex digits".into(),
                    });
                };
                records.push(ChainRecord {
                    seq,
                    prev_hash,
                    hash,
                    bytes: data.into_bytes(),
                });
            }
            BundleLine::Checkpoint(cp) => {
                if signature_ok(&cp) {
                    good.push(cp.checkpoint);
                } else {
                    bad_signatures.push(cp.checkpoint.seq);
                }
            }
        }
    }
    if !header {
        return Err(BundleError::Malformed {
            line: 1,
            reason: "no header: not a keygate audit bundle".into(),
        });
    }
    let mut matcher = CheckpointMatcher::new(&good);
    for r in &records {
        if first_break.is_none() {
            match chain.push(r) {
                Ok(()) => matcher.push(r),
                Err(b) => first_break = Some(b),
            }
        }
    }
    Ok(BundleReport {
        records: chain.count(),
        signed_checkpoints: good.len() as u64,
        bad_signatures,
        first_break,
        findings: matcher.finish(),
    })
}

#[cfg(test)]
#[path = "bundle_tests.rs"]
mod tests;
