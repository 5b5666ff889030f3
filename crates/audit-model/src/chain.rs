//! The hash chain over stored events.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{AuditEvent, AuditModelError};

/// `prev_hash` of the first record.
pub const GENESIS_PREV_HASH: [u8; 32] = [0; 32];
/// Sequence number of the first record.
pub const FIRST_SEQ: u64 = 1;
/// Largest stored event accepted, written or read (1 MiB). Keeps one
/// runaway event from bloating the log and bounds what a parser must eat.
pub const MAX_STORED_BYTES: usize = 1 << 20;

/// One stored record as the chain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRecord {
    /// Position in the log, starting at [`FIRST_SEQ`], no gaps.
    pub seq: u64,
    /// The previous record's hash ([`GENESIS_PREV_HASH`] for the first).
    pub prev_hash: [u8; 32],
    /// `SHA-256(prev_hash ‖ bytes)`.
    pub hash: [u8; 32],
    /// The exact stored JSON, including `"seq"`.
    pub bytes: Vec<u8>,
}

/// A stored event decoded: its sequence number and the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Position in the log.
    pub seq: u64,
    /// The event, without `seq`.
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// Borrowing twin of [`StoredEvent`] for encoding without a clone.
#[derive(Serialize)]
struct StoredRef<'a> {
    /// Written first so a reader sees the position at a glance.
    seq: u64,
    /// The event's own fields, flattened beside `seq`.
    #[serde(flatten)]
    event: &'a AuditEvent,
}

/// The exact bytes stored for `event` at `seq`: its JSON object with `"seq"`
/// as the first key. Fails for reserved extra fields, unencodable times and
/// events larger than [`MAX_STORED_BYTES`].
pub fn stored_bytes(event: &AuditEvent, seq: u64) -> Result<Vec<u8>, AuditModelError> {
    event.validate()?;
    let bytes = serde_json::to_vec(&StoredRef { seq, event }).map_err(AuditModelError::Encode)?;
    if bytes.len() > MAX_STORED_BYTES {
        return Err(AuditModelError::TooLarge {
            size: bytes.len(),
            max: MAX_STORED_BYTES,
        });
    }
    Ok(bytes)
}

/// Decode stored bytes. Never panics on any input (fuzz target).
pub fn parse_stored(bytes: &[u8]) -> Result<StoredEvent, AuditModelError> {
    if bytes.len() > MAX_STORED_BYTES {
        return Err(AuditModelError::TooLarge {
            size: bytes.len(),
            max: MAX_STORED_BYTES,
        });
    }
    let stored: StoredEvent = serde_json::from_slice(bytes).map_err(AuditModelError::Decode)?;
    Ok(stored)
}

/// `SHA-256(prev_hash ‖ bytes)`.
pub fn chain_hash(prev_hash: &[u8; 32], bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(bytes);
    h.finalize().into()
}

/// Build the record for `event` at `seq` after a record whose hash is
/// `prev_hash`.
pub fn seal(
    prev_hash: [u8; 32],
    seq: u64,
    event: &AuditEvent,
) -> Result<ChainRecord, AuditModelError> {
    let bytes = stored_bytes(event, seq)?;
    let hash = chain_hash(&prev_hash, &bytes);
    Ok(ChainRecord {
        seq,
        prev_hash,
        hash,
        bytes,
    })
}

// === impl ChainBreak ===

/// Where and how the chain is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error(
    "audit log chain broken at seq {seq}: {kind}; the log was altered or damaged, compare it with exported checkpoints and restore from backup"
)]
pub struct ChainBreak {
    /// The sequence number of the first record that does not fit.
    pub seq: u64,
    /// What is wrong with it.
    pub kind: ChainBreakKind,
}

/// What is wrong with the first bad record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum ChainBreakKind {
    /// The stored hash does not match `SHA-256(prev_hash ‖ bytes)`: the
    /// bytes or the hash were edited.
    #[error("stored hash does not match the record's bytes")]
    BadHash,
    /// `prev_hash` is not the previous record's hash: a record was
    /// replaced with a re-hashed one, or records were reordered.
    #[error("prev_hash does not link to the previous record")]
    BadPrevLink,
    /// The sequence number is not the next one: records were deleted or
    /// inserted.
    #[error("sequence jumps (expected {expected})")]
    Gap {
        /// The sequence number that should have come next.
        expected: u64,
    },
    /// The `seq` inside the bytes differs from the record's position.
    #[error("the seq inside the event differs from its position")]
    SeqInBytesMismatch,
    /// The bytes hash correctly but are not a valid event.
    #[error("the event bytes do not parse")]
    Unparseable,
}

// === impl ChainVerifier ===

/// Incremental verifier: feed records in order with [`push`](Self::push).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainVerifier {
    /// The sequence number the next record must have.
    next_seq: u64,
    /// The hash the next record's `prev_hash` must equal.
    prev_hash: [u8; 32],
    /// Records accepted so far.
    count: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::genesis()
    }
}

impl ChainVerifier {
    /// Verify from the first record.
    pub const fn genesis() -> Self {
        Self {
            next_seq: FIRST_SEQ,
            prev_hash: GENESIS_PREV_HASH,
            count: 0,
        }
    }

    /// Verify from a trusted point, e.g. a signed checkpoint `(seq, hash)`:
    /// the next record must be `seq + 1` linking to `hash`.
    pub const fn resume(seq: u64, hash: [u8; 32]) -> Self {
        Self {
            next_seq: seq.saturating_add(1),
            prev_hash: hash,
            count: 0,
        }
    }

    /// Check the next record.
    pub fn push(&mut self, record: &ChainRecord) -> Result<(), ChainBreak> {
        let fail = |kind| {
            Err(ChainBreak {
                seq: record.seq,
                kind,
            })
        };
        if record.seq != self.next_seq {
            return fail(ChainBreakKind::Gap {
                expected: self.next_seq,
            });
        }
        if record.prev_hash != self.prev_hash {
            return fail(ChainBreakKind::BadPrevLink);
        }
        if chain_hash(&record.prev_hash, &record.bytes) != record.hash {
            return fail(ChainBreakKind::BadHash);
        }
        match parse_stored(&record.bytes) {
            Err(_) => return fail(ChainBreakKind::Unparseable),
            Ok(stored) if stored.seq != record.seq => {
                return fail(ChainBreakKind::SeqInBytesMismatch);
            }
            Ok(_) => {}
        }
        self.prev_hash = record.hash;
        self.next_seq = self.next_seq.saturating_add(1);
        self.count = self.count.saturating_add(1);
        Ok(())
    }

    /// Records accepted so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The hash of the last accepted record (the head of the chain).
    pub fn head_hash(&self) -> [u8; 32] {
        self.prev_hash
    }

    /// The sequence number the next record must have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

/// Verify a whole log from its first record; returns the number of records.
/// A truncated tail is invisible here — only signed checkpoints catch it.
pub fn verify_chain(records: impl IntoIterator<Item = ChainRecord>) -> Result<u64, ChainBreak> {
    let mut v = ChainVerifier::genesis();
    for record in records {
        v.push(&record)?;
    }
    Ok(v.count())
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
