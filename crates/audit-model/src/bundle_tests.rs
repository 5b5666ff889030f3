#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use time::macros::datetime;

use super::*;
use crate::checkpoint::Checkpoint;
use crate::{AuditEvent, EventType, GENESIS_PREV_HASH, seal};

fn bundle(n: u64, checkpoint_at: &[u64]) -> (String, Vec<ChainRecord>) {
    let t = datetime!(2030-01-01 0:00 UTC);
    let mut prev = GENESIS_PREV_HASH;
    let mut lines = vec![
        serde_json::to_string(&BundleLine::Header {
            format: BUNDLE_FORMAT,
            cluster: "c".into(),
        })
        .unwrap(),
    ];
    let mut records = Vec::new();
    for seq in 1..=n {
        let r = seal(
            prev,
            seq,
            &AuditEvent::new(EventType::Exec, t, format!("e{seq}")),
        )
        .unwrap();
        prev = r.hash;
        lines.push(serde_json::to_string(&BundleLine::record(&r)).unwrap());
        records.push(r);
    }
    for seq in checkpoint_at {
        let r = &records[usize::try_from(*seq).unwrap() - 1];
        lines.push(
            serde_json::to_string(&BundleLine::Checkpoint(SignedCheckpoint {
                checkpoint: Checkpoint {
                    cluster: "c".into(),
                    seq: r.seq,
                    hash: hex(&r.hash),
                    time: t,
                },
                signature: "good".into(),
            }))
            .unwrap(),
        );
    }
    (lines.join("\n"), records)
}

fn sig(cp: &SignedCheckpoint) -> bool {
    cp.signature == "good"
}

#[test]
fn an_untouched_bundle_checks_out() {
    let (text, _) = bundle(5, &[3, 5]);
    let r = check_bundle(&text, sig).unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!((r.records, r.signed_checkpoints), (5, 2));
}

#[test]
fn tampering_is_named() {
    let (text, _) = bundle(5, &[5]);
    // An edited record.
    let edited = text.replacen("\\\"id\\\":\\\"e2\\\"", "\\\"id\\\":\\\"x2\\\"", 1);
    assert_ne!(edited, text);
    let r = check_bundle(&edited, sig).unwrap();
    assert_eq!(r.first_break.map(|b| b.seq), Some(2));
    assert!(!r.ok());
    // A removed tail: the checkpoint signs what is gone.
    let cut: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("\"seq\":5,\"data\""))
        .collect();
    let r = check_bundle(&cut.join("\n"), sig).unwrap();
    assert_eq!(r.findings.beyond_tail, vec![5]);
    assert!(!r.ok());
    // A forged signature.
    let forged = text.replace("\"signature\":\"good\"", "\"signature\":\"evil\"");
    let r = check_bundle(&forged, sig).unwrap();
    assert_eq!(r.bad_signatures, vec![5]);
    assert!(!r.ok());
    // Records after the last checkpoint are an unsigned tail.
    let (text, _) = bundle(5, &[3]);
    let r = check_bundle(&text, sig).unwrap();
    assert_eq!(r.findings.unsigned_tail, 2);
    assert!(!r.ok());
}

#[test]
fn malformed_bundles_are_refused_with_the_line() {
    for (text, line) in [
        ("", 1),
        (
            "{\"kind\":\"record\",\"seq\":1,\"data\":\"{}\",\"prev_hash\":\"00\",\"hash\":\"00\"}",
            1,
        ),
        ("{\"kind\":\"header\",\"format\":9,\"cluster\":\"c\"}", 1),
        (
            "{\"kind\":\"header\",\"format\":1,\"cluster\":\"c\"}\nnot json",
            2,
        ),
        (
            "{\"kind\":\"header\",\"format\":1,\"cluster\":\"c\"}\n{\"kind\":\"record\",\"seq\":1,\"data\":\"{}\",\"prev_hash\":\"zz\",\"hash\":\"00\"}",
            2,
        ),
        (
            "{\"kind\":\"header\",\"format\":1,\"cluster\":\"c\"}\n{\"kind\":\"header\",\"format\":1,\"cluster\":\"c\"}",
            2,
        ),
    ] {
        match check_bundle(text, sig) {
            Err(BundleError::Malformed { line: l, .. }) => assert_eq!(l, line, "{text}"),
            Ok(r) => panic!("accepted {text:?}: {r:?}"),
        }
    }
}
