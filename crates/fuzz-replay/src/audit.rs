//! Targets for `keygate-audit-model`: decoding stored events and verifying
//! the hash chain over arbitrary records.

use keygate_audit_model::{
    ChainBreak, ChainBreakKind, ChainRecord, ChainVerifier, GENESIS_PREV_HASH, chain_hash,
    parse_stored, seal, stored_bytes, verify_chain,
};

use serde_json::Value;

use crate::invariant::{check, check_eq, fail, must};

/// Most records one input may describe; keeps one run fast.
const MAX_RECORDS: usize = 64;

/// `parse_stored` on arbitrary bytes. An accepted event re-encodes to bytes
/// that decode to the same event, and seals into a record the chain
/// verifier accepts at its position.
pub fn audit_parse_stored(data: &[u8]) {
    let Ok(stored) = parse_stored(data) else {
        return;
    };
    // Re-encoding may legitimately fail (e.g. grown past the size limit);
    // what it produces must decode to the same event.
    let Ok(bytes) = stored_bytes(&stored.event, stored.seq) else {
        return;
    };
    let mut again = must(parse_stored(&bytes), "decoding re-encoded event");
    // serde_json (without its `float_roundtrip` feature) may read a float
    // one ULP off, so extra fields are compared with that tolerance; every
    // other field must match exactly. The chain is unaffected: it hashes
    // the stored bytes and never re-encodes.
    let mut expected = stored.clone();
    let (got_fields, want_fields) = (
        std::mem::take(&mut again.event.fields),
        std::mem::take(&mut expected.event.fields),
    );
    check_eq(&again, &expected, "stored event round trip");
    check(
        json_close(&Value::Object(got_fields), &Value::Object(want_fields)),
        "extra fields round trip",
        &stored.event.fields,
    );

    let Some(prev_seq) = stored.seq.checked_sub(1) else {
        return;
    };
    let prev_hash = chain_hash(&GENESIS_PREV_HASH, data);
    let record = must(
        seal(prev_hash, stored.seq, &stored.event),
        "sealing a decoded event",
    );
    let mut verifier = ChainVerifier::resume(prev_seq, prev_hash);
    must(verifier.push(&record), "verifying a freshly sealed record");
    check_eq(&verifier.head_hash(), &record.hash, "head after one record");
}

/// `verify_chain` over records built from the input.
///
/// Input format (lines): if the first line starts with `#`, it holds
/// tampering operations `<op><n>` separated by spaces, `n` being a 1-based
/// record number: `h` replaces record n's hash, `p` its prev_hash, `s` bumps
/// its seq, `b` appends a space to its bytes after sealing, `d` drops it.
/// Every other line is one record's stored bytes; records are sealed
/// honestly in order (seq = position) before tampering.
pub fn audit_verify_chain(data: &[u8]) {
    // A final newline ends the last line; it does not start an empty record.
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    let mut lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let ops = if lines.first().is_some_and(|l| l.starts_with(b"#")) {
        lines.remove(0)
    } else {
        b""
    };
    let mut records = Vec::new();
    let mut prev_hash = GENESIS_PREV_HASH;
    for (i, bytes) in lines.iter().take(MAX_RECORDS).enumerate() {
        let seq = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
        let hash = chain_hash(&prev_hash, bytes);
        records.push(Record {
            chain: ChainRecord {
                seq,
                prev_hash,
                hash,
                bytes: bytes.to_vec(),
            },
            mutated: false,
            dropped: false,
        });
        prev_hash = hash;
    }
    let tampered = apply_ops(ops, &mut records);
    let expect_break = must_break(&records);
    let chain: Vec<ChainRecord> = records
        .into_iter()
        .filter(|r| !r.dropped)
        .map(|r| r.chain)
        .collect();

    let result = verify_chain(chain.clone());
    let (accepted, incremental) = push_all(ChainVerifier::genesis(), &chain);
    check_eq(&incremental, &result, "verify_chain equals ChainVerifier");
    match result {
        Ok(count) => {
            check_eq(&count, &(chain.len() as u64), "every record counted");
            check(!expect_break, "a tampered chain is refused", &chain.len());
        }
        Err(brk) => {
            let prefix = chain.get(..accepted).unwrap_or_default().to_vec();
            check_eq(
                &verify_chain(prefix),
                &Ok(accepted as u64),
                "the records before a break verify",
            );
            check(
                chain.get(accepted).map(|r| r.seq) == Some(brk.seq),
                "the break names the failing record",
                &brk,
            );
        }
    }
    if !tampered {
        check_eq(
            &result,
            &honest_verdict(&chain),
            "an honest chain fails only on bad bytes",
        );
        resume_agrees(&chain, &result);
    }
}

/// One record being built, with what tampering did to it.
struct Record {
    /// The record as the verifier sees it.
    chain: ChainRecord,
    /// Whether an operation changed its seq, hashes or bytes.
    mutated: bool,
    /// Whether it is left out of the chain.
    dropped: bool,
}

/// Applies the `#` line's operations; returns whether any applied.
fn apply_ops(ops: &[u8], records: &mut [Record]) -> bool {
    let ops = String::from_utf8_lossy(ops.get(1..).unwrap_or_default()).into_owned();
    let mut any = false;
    for token in ops.split_whitespace() {
        let mut chars = token.chars();
        let Some(op) = chars.next() else { continue };
        let Some(n) = chars
            .as_str()
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
        else {
            continue;
        };
        let Some(r) = records.get_mut(n) else {
            continue;
        };
        let c = &mut r.chain;
        match op {
            'h' => c.hash = chain_hash(&c.hash, b"tampered"),
            'p' => c.prev_hash = chain_hash(&c.prev_hash, b"tampered"),
            's' => c.seq = c.seq.saturating_add(1),
            'b' => c.bytes.push(b' '),
            'd' => {
                r.dropped = true;
                any = true;
                continue;
            }
            _ => continue,
        }
        r.mutated = true;
        any = true;
    }
    any
}

/// Whether tampering guarantees a break: a surviving record was changed,
/// or a dropped record is followed by a surviving one.
fn must_break(records: &[Record]) -> bool {
    let mut dropped_before = false;
    for r in records {
        if r.dropped {
            dropped_before = true;
        } else if r.mutated || dropped_before {
            return true;
        }
    }
    false
}

/// Pushes records until one fails: (records accepted, overall result).
fn push_all(mut v: ChainVerifier, chain: &[ChainRecord]) -> (usize, Result<u64, ChainBreak>) {
    for (i, record) in chain.iter().enumerate() {
        if let Err(brk) = v.push(record) {
            return (i, Err(brk));
        }
    }
    (chain.len(), Ok(v.count()))
}

/// The verdict for an untampered chain, computed from the bytes alone.
fn honest_verdict(chain: &[ChainRecord]) -> Result<u64, ChainBreak> {
    for r in chain {
        let kind = match parse_stored(&r.bytes) {
            Err(_) => ChainBreakKind::Unparseable,
            Ok(stored) if stored.seq != r.seq => ChainBreakKind::SeqInBytesMismatch,
            Ok(_) => continue,
        };
        return Err(ChainBreak { seq: r.seq, kind });
    }
    Ok(chain.len() as u64)
}

/// Resuming from any record of a valid chain verifies the rest.
fn resume_agrees(chain: &[ChainRecord], result: &Result<u64, ChainBreak>) {
    let Ok(total) = result else { return };
    // First, middle and last record: enough to cover resuming, cheap enough
    // to run on every input.
    let mut starts = vec![0, chain.len() / 2, chain.len().saturating_sub(1)];
    starts.dedup();
    for k in starts {
        let Some(from) = chain.get(k) else { continue };
        let rest = chain.get(k + 1..).unwrap_or_default();
        let (_, resumed) = push_all(ChainVerifier::resume(from.seq, from.hash), rest);
        match resumed {
            Ok(n) => check_eq(&(n + k as u64 + 1), total, "resumed count"),
            Err(brk) => fail("resuming inside a valid chain", &brk),
        }
    }
}

/// JSON equality where two floats within a few ULP count as equal.
fn json_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || matches!((x.as_f64(), y.as_f64()), (Some(x), Some(y))
                    if (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs()))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_close(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

/// `check_bundle` (what `kgctl audit verify --bundle` runs on a file from
/// anywhere) on arbitrary text, with checkpoints "signed" when their
/// signature is the word `good`. Never panics; a bundle it calls ok has a
/// clean chain, at least one good checkpoint, no contradiction and no
/// unsigned tail; and checking the same text twice gives the same report.
pub fn audit_bundle(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let sig = |cp: &keygate_audit_model::SignedCheckpoint| cp.signature == "good";
    let Ok(report) = keygate_audit_model::check_bundle(&text, sig) else {
        return;
    };
    if report.ok() {
        check(
            report.first_break.is_none()
                && report.signed_checkpoints > 0
                && report.findings.consistent()
                && report.findings.unsigned_tail == 0,
            "an ok bundle is clean and fully signed",
            &report,
        );
    }
    let again = keygate_audit_model::check_bundle(&text, sig).ok();
    check_eq(&again, &Some(report), "checking is deterministic");
}
