//! Checkpoints and exact records: storing signed checkpoints (through the
//! one writer), reading them back, reading records with their exact bytes
//! (for signed exports and exporters), and verifying the chain against
//! checkpoints in one streaming pass.

use futures::TryStreamExt;
use keygate_audit_model::{
    ChainRecord, ChainVerifier, Checkpoint, CheckpointFindings, CheckpointMatcher, SignedCheckpoint,
};
use sqlx::Row;
use tokio::sync::oneshot;

use crate::query::{Reader, chain_record_of, unix_ms};
use crate::writer::Command;
use crate::{AuditError, AuditLog};

/// Most records one `records` call returns.
pub const MAX_RECORDS_PER_CALL: usize = 10_000;

impl AuditLog {
    /// The last record's sequence number and hash (`0`, zeros when empty).
    pub async fn head(&self) -> Result<(u64, [u8; 32]), AuditError> {
        let mut conn = self.reader().acquire().await?;
        let row = sqlx::query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(AuditError::Query)?;
        let Some(row) = row else {
            return Ok((0, keygate_audit_model::GENESIS_PREV_HASH));
        };
        let seq: i64 = row.try_get("seq").map_err(AuditError::Query)?;
        let hash: Vec<u8> = row.try_get("hash").map_err(AuditError::Query)?;
        let seq = u64::try_from(seq).unwrap_or(0);
        let hash = <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| AuditError::Corrupt {
            seq,
            detail: "stored hash is not 32 bytes".into(),
        })?;
        Ok((seq, hash))
    }

    /// Stores a signed checkpoint durably (it does not enter the chain).
    pub async fn store_checkpoint(&self, cp: &SignedCheckpoint) -> Result<(), AuditError> {
        let data = serde_json::to_string(cp).map_err(|e| AuditError::Corrupt {
            seq: cp.checkpoint.seq,
            detail: format!("checkpoint does not encode: {e}"),
        })?;
        let (ack, answer) = oneshot::channel();
        self.sender()
            .send(Command::Checkpoint {
                seq: cp.checkpoint.seq,
                unix_ms: unix_ms(cp.checkpoint.time),
                data,
                ack,
            })
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }

    /// Every stored checkpoint, oldest first. Rows that do not parse are
    /// reported as corrupt rather than skipped.
    pub async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, AuditError> {
        let mut conn = self.reader().acquire().await?;
        let rows = sqlx::query("SELECT seq, data FROM checkpoints ORDER BY seq")
            .fetch_all(&mut *conn)
            .await
            .map_err(AuditError::Query)?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq").map_err(AuditError::Query)?;
                let data: String = row.try_get("data").map_err(AuditError::Query)?;
                serde_json::from_str(&data).map_err(|e| AuditError::Corrupt {
                    seq: u64::try_from(seq).unwrap_or(0),
                    detail: format!("stored checkpoint: {e}"),
                })
            })
            .collect()
    }

    /// Up to `limit` records from `from_seq` on, with their exact bytes.
    pub async fn records(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChainRecord>, AuditError> {
        let limit = i64::try_from(limit.min(MAX_RECORDS_PER_CALL)).unwrap_or(0);
        let from = i64::try_from(from_seq).unwrap_or(i64::MAX);
        let mut conn = self.reader().acquire().await?;
        let rows = sqlx::query(
            "SELECT seq, data, prev_hash, hash FROM events WHERE seq >= ? ORDER BY seq LIMIT ?",
        )
        .bind(from)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(AuditError::Query)?;
        let mut expected = ChainVerifier::resume(from_seq.saturating_sub(1), [0; 32]);
        rows.iter()
            .map(|row| {
                let r = chain_record_of(row, &expected)?;
                expected = ChainVerifier::resume(r.seq, r.hash);
                Ok(r)
            })
            .collect()
    }

    /// Recomputes the whole chain and compares it with `checkpoints` (the
    /// stored ones, or ones exported elsewhere). `Err(ChainBroken)` names
    /// the first bad record.
    pub async fn verify_against(
        &self,
        checkpoints: &[Checkpoint],
    ) -> Result<(u64, CheckpointFindings), AuditError> {
        let reader: &Reader = self.reader();
        let mut conn = reader.acquire().await?;
        let mut rows = sqlx::query("SELECT seq, data, prev_hash, hash FROM events ORDER BY seq")
            .fetch(&mut *conn);
        let mut chain = ChainVerifier::genesis();
        let mut matcher = CheckpointMatcher::new(checkpoints);
        while let Some(row) = rows.try_next().await.map_err(AuditError::Query)? {
            let record = chain_record_of(&row, &chain)?;
            chain.push(&record).map_err(AuditError::ChainBroken)?;
            matcher.push(&record);
        }
        Ok((chain.count(), matcher.finish()))
    }
}
