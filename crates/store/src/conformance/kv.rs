//! Cases for reads, writes, transactions and input validation.

use std::sync::Arc;

use super::{Fixture, delete_event, keys, next_event, put_event};
use crate::{
    Compare, KeyValue, MAX_KEY_BYTES, MAX_TXN_ITEMS, MAX_VALUE_BYTES, Op, StoreError, TxnResult,
    WatchEvent,
};

fn put_op(key: &str, value: &[u8]) -> Op {
    Op::Put {
        key: key.to_owned(),
        value: value.to_vec(),
        lease: None,
    }
}

/// Revisions start at 1 and grow by one per changing write; deletes of
/// absent keys change nothing; re-creating a key resets `create_revision`.
pub async fn put_get_delete_revisions(f: &Fixture) {
    let b = &f.backend;
    assert_eq!(b.current_revision().await.unwrap(), 0);
    assert_eq!(b.get("a").await.unwrap(), None);

    assert_eq!(b.put("a", b"1".to_vec(), None).await.unwrap(), 1);
    let expected = KeyValue {
        key: "a".into(),
        value: b"1".to_vec(),
        create_revision: 1,
        mod_revision: 1,
        lease: None,
    };
    assert_eq!(b.get("a").await.unwrap(), Some(expected));

    assert_eq!(b.put("a", b"2".to_vec(), None).await.unwrap(), 2);
    let kv = b.get("a").await.unwrap().unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.create_revision, kv.mod_revision),
        (&b"2"[..], 1, 2)
    );

    assert_eq!(b.put("b", Vec::new(), None).await.unwrap(), 3);
    assert_eq!(b.get("b").await.unwrap().unwrap().value, Vec::<u8>::new());

    assert_eq!(b.delete("a").await.unwrap(), Some(4));
    assert_eq!(b.get("a").await.unwrap(), None);
    assert_eq!(b.delete("a").await.unwrap(), None);
    assert_eq!(b.current_revision().await.unwrap(), 4);

    assert_eq!(b.put("a", b"3".to_vec(), None).await.unwrap(), 5);
    let kv = b.get("a").await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (5, 5));
}

/// `range` returns exactly the keys starting with the prefix, sorted by
/// key (byte order), including non-ASCII and boundary characters.
pub async fn range_is_sorted_and_respects_prefix_bounds(f: &Fixture) {
    let b = &f.backend;
    let all = [
        "b",
        "a/2",
        "a0",
        "a",
        "a/1/x",
        "a/\u{10FFFF}",
        "a/",
        "ä/x",
        "a/1",
        "a.",
        "ab",
    ];
    for k in all {
        b.put(k, k.as_bytes().to_vec(), None).await.unwrap();
    }
    let mut sorted = all.to_vec();
    sorted.sort_unstable();
    assert_eq!(keys(&b.range("").await.unwrap()), sorted);
    assert_eq!(
        keys(&b.range("a/").await.unwrap()),
        ["a/", "a/1", "a/1/x", "a/2", "a/\u{10FFFF}"]
    );
    assert_eq!(keys(&b.range("a/1").await.unwrap()), ["a/1", "a/1/x"]);
    assert_eq!(keys(&b.range("a0").await.unwrap()), ["a0"]);
    assert_eq!(keys(&b.range("ä").await.unwrap()), ["ä/x"]);
    assert!(b.range("zzz").await.unwrap().is_empty());
    let kvs = b.range("a/2").await.unwrap();
    assert_eq!(kvs.len(), 1);
    assert_eq!(kvs[0].value, b"a/2");
}

/// `range_at` reflects the revision of the snapshot it read.
pub async fn range_at_reports_its_revision(f: &Fixture) {
    let b = &f.backend;
    assert_eq!(b.range_at("").await.unwrap(), (Vec::new(), 0));
    b.put("x/1", b"1".to_vec(), None).await.unwrap();
    b.put("y/1", b"1".to_vec(), None).await.unwrap();
    let (kvs, rev) = b.range_at("x/").await.unwrap();
    assert_eq!(keys(&kvs), ["x/1"]);
    assert_eq!(rev, 2);
    assert_eq!(rev, b.current_revision().await.unwrap());
}

/// `delete_prefix` deletes every matching key at one revision, and nothing
/// (no revision) when none match.
pub async fn delete_prefix_uses_one_revision(f: &Fixture) {
    let b = &f.backend;
    for k in ["p/1", "p/2", "p/3", "p", "q/1"] {
        b.put(k, b"v".to_vec(), None).await.unwrap();
    }
    assert_eq!(b.delete_prefix("p/").await.unwrap(), 3);
    assert_eq!(b.current_revision().await.unwrap(), 6);
    assert_eq!(keys(&b.range("").await.unwrap()), ["p", "q/1"]);
    let mut w = b.watch("p/", 6).await.unwrap();
    for k in ["p/1", "p/2", "p/3"] {
        assert_eq!(next_event(&mut w).await, delete_event(k, 6));
    }
    assert_eq!(b.delete_prefix("p/").await.unwrap(), 0);
    assert_eq!(b.current_revision().await.unwrap(), 6);
}

/// All ops of a successful transaction share one new revision.
pub async fn txn_applies_all_ops_at_one_revision(f: &Fixture) {
    let b = &f.backend;
    b.put("t/x", b"x".to_vec(), None).await.unwrap();
    let result = b
        .txn(
            vec![
                Compare::ModRevision {
                    key: "t/x".into(),
                    equals: 1,
                },
                Compare::Absent { key: "t/y".into() },
            ],
            vec![
                put_op("t/y", b"y"),
                put_op("t/z", b"z"),
                Op::Delete { key: "t/x".into() },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        result,
        TxnResult {
            succeeded: true,
            revision: 2
        }
    );
    assert_eq!(b.current_revision().await.unwrap(), 2);
    assert_eq!(b.get("t/x").await.unwrap(), None);
    for k in ["t/y", "t/z"] {
        let kv = b.get(k).await.unwrap().unwrap();
        assert_eq!((kv.create_revision, kv.mod_revision), (2, 2));
    }
    let mut w = b.watch("t/", 2).await.unwrap();
    assert_eq!(next_event(&mut w).await, put_event("t/y", b"y", 2, 2));
    assert_eq!(next_event(&mut w).await, put_event("t/z", b"z", 2, 2));
    assert_eq!(next_event(&mut w).await, delete_event("t/x", 2));
}

/// A failed compare leaves every key and the revision unchanged.
pub async fn txn_conflict_changes_nothing(f: &Fixture) {
    let b = &f.backend;
    b.put("c/x", b"1".to_vec(), None).await.unwrap();
    b.put("c/x", b"2".to_vec(), None).await.unwrap();
    let before = b.range("").await.unwrap();
    let result = b
        .txn(
            vec![
                Compare::Exists { key: "c/x".into() },
                Compare::ModRevision {
                    key: "c/x".into(),
                    equals: 1,
                },
            ],
            vec![
                put_op("c/x", b"stale"),
                put_op("c/other", b"o"),
                Op::Delete {
                    key: "c/gone".into(),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        result,
        TxnResult {
            succeeded: false,
            revision: 2
        }
    );
    assert_eq!(b.range("").await.unwrap(), before);
    assert_eq!(b.current_revision().await.unwrap(), 2);
    // A later write follows on from revision 2: nothing was consumed.
    assert_eq!(b.put("c/next", Vec::new(), None).await.unwrap(), 3);
}

/// Each compare kind on present and absent keys.
pub async fn txn_compare_kinds(f: &Fixture) {
    let b = &f.backend;
    b.put("k/present", b"v".to_vec(), None).await.unwrap();
    let cases = [
        (
            Compare::Exists {
                key: "k/present".into(),
            },
            true,
        ),
        (
            Compare::Exists {
                key: "k/absent".into(),
            },
            false,
        ),
        (
            Compare::Absent {
                key: "k/absent".into(),
            },
            true,
        ),
        (
            Compare::Absent {
                key: "k/present".into(),
            },
            false,
        ),
        (
            Compare::ModRevision {
                key: "k/absent".into(),
                equals: 0,
            },
            true,
        ),
        (
            Compare::ModRevision {
                key: "k/present".into(),
                equals: 0,
            },
            false,
        ),
        (
            Compare::ModRevision {
                key: "k/present".into(),
                equals: 1,
            },
            true,
        ),
        (
            Compare::ModRevision {
                key: "k/present".into(),
                equals: 2,
            },
            false,
        ),
    ];
    for (compare, expected) in cases {
        let result = b.txn(vec![compare.clone()], Vec::new()).await.unwrap();
        assert_eq!(result.succeeded, expected, "{compare:?}");
        // An empty or failed transaction writes nothing.
        assert_eq!(result.revision, 1, "{compare:?}");
    }
    // Deleting only absent keys succeeds without a new revision.
    let result = b
        .txn(
            Vec::new(),
            vec![Op::Delete {
                key: "k/absent".into(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        result,
        TxnResult {
            succeeded: true,
            revision: 1
        }
    );
}

/// Racing compare-and-swaps on the same revision: exactly one wins.
pub async fn concurrent_txns_exactly_one_wins(f: &Fixture) {
    let b = &f.backend;
    b.put("race", b"start".to_vec(), None).await.unwrap();
    for round in 0..10 {
        let seen = b.get("race").await.unwrap().unwrap().mod_revision;
        let mut tasks = Vec::new();
        for contender in 0..4 {
            let b = Arc::clone(b);
            let value = format!("{round}-{contender}").into_bytes();
            tasks.push(tokio::spawn(async move {
                let compares = vec![Compare::ModRevision {
                    key: "race".into(),
                    equals: seen,
                }];
                let result = b.txn(compares, vec![put_op("race", &value)]).await.unwrap();
                (result.succeeded, value)
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            let (won, value) = task.await.unwrap();
            if won {
                winners.push(value);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        let kv = b.get("race").await.unwrap().unwrap();
        assert_eq!(kv.value, winners[0]);
        assert_eq!(kv.mod_revision, seen + 1);
    }
}

/// Empty and oversized keys, huge values and oversized transactions fail
/// with their own errors and change nothing.
pub async fn bad_input_is_rejected(f: &Fixture) {
    let b = &f.backend;
    assert!(matches!(
        b.put("", b"v".to_vec(), None).await,
        Err(StoreError::InvalidKey { .. })
    ));
    assert!(matches!(
        b.get("").await,
        Err(StoreError::InvalidKey { .. })
    ));
    assert!(matches!(
        b.delete("").await,
        Err(StoreError::InvalidKey { .. })
    ));
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    let err = b.put(&long, b"v".to_vec(), None).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidKey { .. }));
    assert!(err.to_string().contains("1024 bytes"), "{err}");
    assert!(matches!(
        b.range(&long).await,
        Err(StoreError::InvalidKey { .. })
    ));
    assert!(matches!(
        b.watch(&long, 0).await,
        Err(StoreError::InvalidKey { .. })
    ));

    let err = b
        .put("big", vec![0; MAX_VALUE_BYTES + 1], None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }));
    assert!(err.to_string().contains("limit"), "{err}");

    let too_many: Vec<Op> = (0..=MAX_TXN_ITEMS)
        .map(|i| put_op(&format!("t/{i}"), b""))
        .collect();
    assert!(matches!(
        b.txn(Vec::new(), too_many).await,
        Err(StoreError::TxnTooLarge { .. })
    ));
    let dup = vec![put_op("d", b"1"), Op::Delete { key: "d".into() }];
    assert!(matches!(
        b.txn(Vec::new(), dup).await,
        Err(StoreError::DuplicateKeyInTxn { .. })
    ));
    let bad_compare = vec![Compare::Exists { key: String::new() }];
    assert!(matches!(
        b.txn(bad_compare, Vec::new()).await,
        Err(StoreError::InvalidKey { .. })
    ));
    assert!(matches!(
        b.watch("", -1).await,
        Err(StoreError::InvalidRevision { .. })
    ));
    assert!(matches!(
        b.compact(1).await,
        Err(StoreError::InvalidRevision { .. })
    ));
    assert_eq!(b.current_revision().await.unwrap(), 0);

    // The limits themselves are accepted.
    let longest = "k".repeat(MAX_KEY_BYTES);
    assert_eq!(
        b.put(&longest, vec![7; MAX_VALUE_BYTES], None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        b.get(&longest).await.unwrap().unwrap().value.len(),
        MAX_VALUE_BYTES
    );
    let mut w = b.watch("", 1).await.unwrap();
    assert!(
        matches!(next_event(&mut w).await, WatchEvent::Put(kv) if kv.value.len() == MAX_VALUE_BYTES)
    );
}
