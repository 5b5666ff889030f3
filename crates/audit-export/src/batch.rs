//! One delivery: a run of consecutive records and the checkpoints they
//! complete, in the order receivers see them.

use keygate_audit_model::{ChainRecord, SignedCheckpoint};

/// What one send carries.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Consecutive records, oldest first (may be empty when only a new
    /// checkpoint is due).
    pub records: Vec<ChainRecord>,
    /// Checkpoints not delivered before whose records are all delivered by
    /// the end of this batch, oldest first.
    pub checkpoints: Vec<SignedCheckpoint>,
}

/// One message of a batch.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// An event: its record with the exact stored bytes.
    Event(&'a ChainRecord),
    /// A signed checkpoint.
    Checkpoint(&'a SignedCheckpoint),
}

impl Batch {
    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.checkpoints.is_empty()
    }

    /// `(first, last)` event seq, if the batch has events.
    pub fn seq_range(&self) -> Option<(u64, u64)> {
        Some((self.records.first()?.seq, self.records.last()?.seq))
    }

    /// Events and checkpoints in delivery order: each checkpoint right
    /// after the record it covers, so a receiver never sees a checkpoint
    /// before the events it vouches for.
    pub fn items(&self) -> Vec<Item<'_>> {
        let mut out = Vec::with_capacity(self.records.len() + self.checkpoints.len());
        let mut cps = self.checkpoints.iter().peekable();
        // Checkpoints for records delivered in earlier batches come first.
        let first = self.records.first().map_or(u64::MAX, |r| r.seq);
        while let Some(cp) = cps.next_if(|c| c.checkpoint.seq < first) {
            out.push(Item::Checkpoint(cp));
        }
        for r in &self.records {
            out.push(Item::Event(r));
            while let Some(cp) = cps.next_if(|c| c.checkpoint.seq <= r.seq) {
                out.push(Item::Checkpoint(cp));
            }
        }
        out.extend(cps.map(Item::Checkpoint));
        out
    }
}

/// The JSON every exporter sends for a checkpoint: the signed checkpoint
/// with `"kind":"checkpoint"` first, so line-oriented consumers can tell it
/// from an event (which has `"event"` and no `"kind"`).
pub fn checkpoint_json(cp: &SignedCheckpoint) -> Vec<u8> {
    let mut obj = serde_json::Map::new();
    obj.insert("kind".into(), "checkpoint".into());
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(cp) {
        obj.extend(fields);
    }
    serde_json::to_vec(&obj).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use keygate_audit_model::{AuditEvent, Checkpoint, EventType, seal};
    use time::macros::datetime;

    use super::*;

    fn record(seq: u64) -> ChainRecord {
        let ev = AuditEvent::new(EventType::Exec, datetime!(2030-01-01 0:00 UTC), "id");
        seal([0; 32], seq, &ev).unwrap()
    }

    fn cp(seq: u64) -> SignedCheckpoint {
        SignedCheckpoint {
            checkpoint: Checkpoint {
                cluster: "c".into(),
                seq,
                hash: "ab".into(),
                time: datetime!(2030-01-01 0:00 UTC),
            },
            signature: "sig".into(),
        }
    }

    fn order(b: &Batch) -> Vec<String> {
        b.items()
            .iter()
            .map(|i| match i {
                Item::Event(r) => format!("e{}", r.seq),
                Item::Checkpoint(c) => format!("c{}", c.checkpoint.seq),
            })
            .collect()
    }

    #[test]
    fn checkpoints_follow_the_record_they_cover() {
        let b = Batch {
            records: (5..=8).map(record).collect(),
            checkpoints: vec![cp(3), cp(6), cp(8)],
        };
        assert_eq!(order(&b), ["c3", "e5", "e6", "c6", "e7", "e8", "c8"]);
        assert_eq!(b.seq_range(), Some((5, 8)));
        let only = Batch {
            records: vec![],
            checkpoints: vec![cp(3)],
        };
        assert_eq!(order(&only), ["c3"]);
        assert_eq!(only.seq_range(), None);
        assert!(!only.is_empty() && Batch::default().is_empty());
    }

    #[test]
    fn checkpoint_json_is_tagged_and_complete() {
        let v: serde_json::Value = serde_json::from_slice(&checkpoint_json(&cp(7))).unwrap();
        assert_eq!(v["kind"], "checkpoint");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["hash"], "ab");
        assert_eq!(v["signature"], "sig");
        assert_eq!(v["cluster"], "c");
        assert_eq!(v["time"], "2030-01-01T00:00:00Z");
    }
}
