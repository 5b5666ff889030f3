//! Signed checkpoints: every so often auth signs `(seq, hash)` of the
//! chain's head with the audit CA and also hands the checkpoint to the
//! exporters. A chain that was edited, cut short or rewritten and re-hashed
//! no longer matches a checkpoint signed before — and one kept outside the
//! host (a SIEM) catches even a host root who re-signs.
//!
//! This module is pure: the signature itself (SSHSIG by the audit CA's SSH
//! key) is made and checked by the callers, over [`Checkpoint::message`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::chain::{ChainRecord, ChainVerifier};

/// SSHSIG namespace of checkpoint signatures.
pub const CHECKPOINT_NAMESPACE: &str = "audit-checkpoint@keygate";

/// What a checkpoint asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Cluster name.
    pub cluster: String,
    /// Sequence number of the record it covers.
    pub seq: u64,
    /// That record's chain hash, lowercase hex.
    pub hash: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
}

impl Checkpoint {
    /// The exact bytes signed: a fixed, line-based form so the signature
    /// never depends on a JSON encoder.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "keygate-audit-checkpoint v1\ncluster {}\nseq {}\nhash {}\ntime {}\n",
            self.cluster,
            self.seq,
            self.hash,
            self.time.unix_timestamp()
        )
        .into_bytes()
    }
}

/// A checkpoint with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    /// The claim.
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
    /// Armored SSHSIG over [`Checkpoint::message`] in
    /// [`CHECKPOINT_NAMESPACE`].
    pub signature: String,
}

/// What comparing a chain with checkpoints found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointFindings {
    /// Checkpoints whose hash equals the chain's at their seq.
    pub matched: u64,
    /// Checkpoints whose hash differs from the chain's at their seq (the
    /// chain was rewritten after they were signed), by seq.
    pub diverged: Vec<u64>,
    /// Checkpoints past the end of the chain (records were removed from
    /// the tail), by seq.
    pub beyond_tail: Vec<u64>,
    /// Records after the last checkpoint (not yet covered by a signature).
    pub unsigned_tail: u64,
}

impl CheckpointFindings {
    /// Whether nothing contradicts the checkpoints.
    pub fn consistent(&self) -> bool {
        self.diverged.is_empty() && self.beyond_tail.is_empty()
    }
}

/// Follows a chain record by record and compares it with checkpoints.
/// Feed every record through [`ChainVerifier`] first (it owns the chain
/// rules); this only looks at the hashes at checkpointed positions.
#[derive(Debug, Clone)]
pub struct CheckpointMatcher {
    /// Expected hash by seq, lowercase hex.
    expected: std::collections::BTreeMap<u64, String>,
    /// Findings so far.
    findings: CheckpointFindings,
    /// Highest seq seen.
    last_seq: u64,
}

impl CheckpointMatcher {
    /// A matcher for these checkpoints (duplicates by seq: the last wins;
    /// a conflicting duplicate shows up as a divergence of one of them).
    pub fn new<'a>(checkpoints: impl IntoIterator<Item = &'a Checkpoint>) -> Self {
        let mut expected = std::collections::BTreeMap::new();
        let mut findings = CheckpointFindings::default();
        for c in checkpoints {
            if let Some(old) = expected.insert(c.seq, c.hash.to_ascii_lowercase())
                && old != c.hash.to_ascii_lowercase()
            {
                findings.diverged.push(c.seq);
            }
        }
        Self {
            expected,
            findings,
            last_seq: 0,
        }
    }

    /// Looks at one record (in order).
    pub fn push(&mut self, record: &ChainRecord) {
        self.last_seq = record.seq;
        if let Some(want) = self.expected.get(&record.seq) {
            if *want == hex(&record.hash) {
                self.findings.matched += 1;
            } else {
                self.findings.diverged.push(record.seq);
            }
        }
    }

    /// The findings once every record was pushed.
    pub fn finish(mut self) -> CheckpointFindings {
        let last = self.last_seq;
        self.findings.beyond_tail = self.expected.range(last + 1..).map(|(s, _)| *s).collect();
        let covered = self
            .expected
            .range(..=last)
            .next_back()
            .map_or(0, |(s, _)| *s);
        self.findings.unsigned_tail = last.saturating_sub(covered);
        self.findings.diverged.sort_unstable();
        self.findings.diverged.dedup();
        self.findings
    }
}

/// Lowercase hex of a hash.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Verifies a chain given as records and compares it with checkpoints in
/// one pass: `Err` is the first broken link, else the findings.
pub fn verify_with_checkpoints<'a>(
    records: impl IntoIterator<Item = ChainRecord>,
    checkpoints: impl IntoIterator<Item = &'a Checkpoint>,
) -> Result<(u64, CheckpointFindings), crate::ChainBreak> {
    let mut chain = ChainVerifier::genesis();
    let mut matcher = CheckpointMatcher::new(checkpoints);
    for r in records {
        chain.push(&r)?;
        matcher.push(&r);
    }
    Ok((chain.count(), matcher.finish()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::{AuditEvent, EventType, seal};
    use time::macros::datetime;

    const T: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

    fn chain(n: u64) -> Vec<ChainRecord> {
        let mut prev = crate::GENESIS_PREV_HASH;
        (1..=n)
            .map(|seq| {
                let ev = AuditEvent::new(EventType::Exec, T, format!("id-{seq}"));
                let r = seal(prev, seq, &ev).unwrap();
                prev = r.hash;
                r
            })
            .collect()
    }

    fn cp(r: &ChainRecord) -> Checkpoint {
        Checkpoint {
            cluster: "c".into(),
            seq: r.seq,
            hash: hex(&r.hash),
            time: T,
        }
    }

    #[test]
    fn matches_diverges_truncates_and_counts_the_unsigned_tail() {
        let rs = chain(10);
        let cps = vec![cp(&rs[2]), cp(&rs[6])];
        let (n, f) = verify_with_checkpoints(rs.clone(), &cps).unwrap();
        assert_eq!((n, f.matched, f.unsigned_tail), (10, 2, 3));
        assert!(f.consistent());

        // Rewritten and re-hashed from record 5 on: the chain itself is
        // valid again, the checkpoint at 7 is not.
        let mut prev = rs[3].hash;
        let mut forged = rs[..4].to_vec();
        for seq in 5..=10u64 {
            let ev = AuditEvent::new(EventType::Exec, T, format!("forged-{seq}"));
            let r = seal(prev, seq, &ev).unwrap();
            prev = r.hash;
            forged.push(r);
        }
        let (_, f) = verify_with_checkpoints(forged, &cps).unwrap();
        assert_eq!(f.diverged, vec![7]);
        assert!(!f.consistent());

        // Cut after record 5: the checkpoint at 7 signs what is gone.
        let (_, f) = verify_with_checkpoints(rs[..5].to_vec(), &cps).unwrap();
        assert_eq!(f.beyond_tail, vec![7]);
        assert_eq!(f.unsigned_tail, 2);

        // Conflicting duplicate checkpoints.
        let mut other = cp(&rs[2]);
        other.hash = "00".repeat(32);
        let (_, f) = verify_with_checkpoints(rs, &[cps[0].clone(), other]).unwrap();
        assert!(!f.consistent());
    }

    #[test]
    fn the_signed_message_binds_every_field() {
        let a = Checkpoint {
            cluster: "c".into(),
            seq: 1,
            hash: "ab".into(),
            time: T,
        };
        let mut b = a.clone();
        b.seq = 2;
        assert_ne!(a.message(), b.message());
        let mut c = a.clone();
        c.cluster = "d".into();
        assert_ne!(a.message(), c.message());
        let json = serde_json::to_string(&SignedCheckpoint {
            checkpoint: a.clone(),
            signature: "sig".into(),
        })
        .unwrap();
        let back: SignedCheckpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(back.checkpoint, a);
    }
}
