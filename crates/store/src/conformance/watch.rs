//! Cases for watches: live delivery, resumption, compaction, slow
//! consumers and the list-then-watch hand-over.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Fixture, delete_event, next_event, put_event};
use crate::{Op, WATCH_BUFFER, WatchEvent};

/// A live watch sees exactly the writes under its prefix, in order.
pub async fn watch_delivers_live_events(f: &Fixture) {
    let b = &f.backend;
    b.put("w/old", b"0".to_vec(), None).await.unwrap();
    let mut w = b.watch("w/", 0).await.unwrap();
    let mut all = b.watch("", 0).await.unwrap();
    b.put("w/a", b"1".to_vec(), None).await.unwrap();
    b.put("other", b"2".to_vec(), None).await.unwrap();
    b.put("w/a", b"3".to_vec(), None).await.unwrap();
    b.delete("w/a").await.unwrap();
    assert_eq!(next_event(&mut w).await, put_event("w/a", b"1", 2, 2));
    assert_eq!(next_event(&mut w).await, put_event("w/a", b"3", 2, 4));
    assert_eq!(next_event(&mut w).await, delete_event("w/a", 5));
    let revisions: Vec<i64> = [
        next_event(&mut all).await,
        next_event(&mut all).await,
        next_event(&mut all).await,
        next_event(&mut all).await,
    ]
    .iter()
    .map(WatchEvent::revision)
    .collect();
    assert_eq!(revisions, [2, 3, 4, 5]);
}

/// Resuming from an older revision replays exactly the events from there
/// on, in order, then continues live without repeating any.
pub async fn watch_resume_replays_missed_events_exactly(f: &Fixture) {
    let b = &f.backend;
    for i in 1..=5 {
        b.put(&format!("w/{i}"), vec![i], None).await.unwrap();
        b.put("noise", vec![i], None).await.unwrap();
    }
    b.delete("w/2").await.unwrap(); // revision 11
    // A consumer that saw up to revision 4 resumes from 5.
    let mut w = b.watch("w/", 5).await.unwrap();
    assert_eq!(next_event(&mut w).await, put_event("w/3", &[3], 5, 5));
    assert_eq!(next_event(&mut w).await, put_event("w/4", &[4], 7, 7));
    assert_eq!(next_event(&mut w).await, put_event("w/5", &[5], 9, 9));
    assert_eq!(next_event(&mut w).await, delete_event("w/2", 11));
    b.put("w/6", vec![6], None).await.unwrap();
    assert_eq!(next_event(&mut w).await, put_event("w/6", &[6], 12, 12));

    // Starting beyond the current revision skips the writes before it.
    let mut ahead = b.watch("w/", 14).await.unwrap();
    b.put("w/7", vec![7], None).await.unwrap(); // 13: before the start
    b.put("w/8", vec![8], None).await.unwrap(); // 14
    assert_eq!(next_event(&mut ahead).await, put_event("w/8", &[8], 14, 14));
}

/// Resuming at or below the compacted revision yields `Compacted` and ends;
/// just above it replays normally. Compaction keeps current data.
pub async fn watch_from_compacted_revision_yields_compacted(f: &Fixture) {
    let b = &f.backend;
    for k in ["c/a", "c/b", "c/c"] {
        b.put(k, b"v".to_vec(), None).await.unwrap();
    }
    b.compact(2).await.unwrap();
    for from in [1, 2] {
        let mut w = b.watch("c/", from).await.unwrap();
        assert_eq!(
            next_event(&mut w).await,
            WatchEvent::Compacted {
                compact_revision: 2
            }
        );
        assert_eq!(w.next().await, None);
    }
    let mut w = b.watch("c/", 3).await.unwrap();
    assert_eq!(next_event(&mut w).await, put_event("c/c", b"v", 3, 3));
    b.compact(1).await.unwrap(); // older than the last compaction: no-op
    assert!(b.compact(4).await.is_err()); // beyond the current revision
    assert_eq!(b.range("c/").await.unwrap().len(), 3);
    b.put("c/d", b"v".to_vec(), None).await.unwrap();
    assert_eq!(next_event(&mut w).await, put_event("c/d", b"v", 4, 4));
    b.compact(4).await.unwrap();
    let mut w = b.watch("c/", 4).await.unwrap();
    assert_eq!(
        next_event(&mut w).await,
        WatchEvent::Compacted {
            compact_revision: 4
        }
    );
}

/// A watcher that stops reading is cut off: it gets what was queued (in
/// order), then `Compacted`, then the end; other watchers are unaffected.
pub async fn slow_watcher_is_cut_off_with_compacted(f: &Fixture) {
    let b = &f.backend;
    let mut slow = b.watch("lag/", 0).await.unwrap();
    let total = WATCH_BUFFER + 100;
    let mut written = 0;
    while written < total {
        let n = (total - written).min(500);
        let ops = (written..written + n)
            .map(|i| Op::Put {
                key: format!("lag/{i:05}"),
                value: Vec::new(),
                lease: None,
            })
            .collect();
        assert!(b.txn(Vec::new(), ops).await.unwrap().succeeded);
        written += n;
    }
    let mut delivered = 0;
    let mut last = 0;
    let compact_revision = loop {
        match next_event(&mut slow).await {
            WatchEvent::Put(kv) => {
                assert!(kv.mod_revision >= last);
                assert_eq!(kv.key, format!("lag/{delivered:05}"));
                last = kv.mod_revision;
                delivered += 1;
            }
            WatchEvent::Compacted { compact_revision } => break compact_revision,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(delivered <= WATCH_BUFFER && delivered > 0, "{delivered}");
    assert!(compact_revision >= 1 && compact_revision < b.current_revision().await.unwrap());
    assert_eq!(slow.next().await, None);
    // A fresh watch works.
    let mut w = b.watch("lag/", 0).await.unwrap();
    b.delete("lag/00000").await.unwrap();
    assert!(matches!(
        next_event(&mut w).await,
        WatchEvent::Delete { .. }
    ));
}

/// List with `range_at`, watch from the revision after it, while another
/// task writes: applying the events to the list reproduces the final state,
/// each change exactly once.
pub async fn list_then_watch_has_no_gap_or_duplicate(f: &Fixture) {
    let b = &f.backend;
    const N: u32 = 150;
    let (watching_tx, watching) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let b = Arc::clone(b);
        tokio::spawn(async move {
            for i in 0..N {
                b.put(&format!("lw/{}", i % 40), i.to_be_bytes().to_vec(), None)
                    .await
                    .unwrap();
                if i % 7 == 0 {
                    b.delete(&format!("lw/{}", (i + 3) % 40)).await.unwrap();
                }
                tokio::task::yield_now().await;
            }
            // The end marker must come after the watch started, or a fast
            // backend finishes before the list and nothing ends the loop.
            watching.await.unwrap();
            b.put("lw/done", Vec::new(), None).await.unwrap();
        })
    };
    // Start listing somewhere in the middle of the writes.
    while b.current_revision().await.unwrap() < 20 {
        tokio::task::yield_now().await;
    }
    let (list, at) = b.range_at("lw/").await.unwrap();
    let mut w = b.watch("lw/", at + 1).await.unwrap();
    watching_tx.send(()).unwrap();
    let mut state: BTreeMap<String, Vec<u8>> =
        list.into_iter().map(|kv| (kv.key, kv.value)).collect();
    let mut last = at;
    loop {
        let event = next_event(&mut w).await;
        assert!(
            event.revision() > last,
            "revision {} after {last}: gap or duplicate",
            event.revision()
        );
        last = event.revision();
        match event {
            WatchEvent::Put(kv) if kv.key == "lw/done" => break,
            WatchEvent::Put(kv) => {
                state.insert(kv.key, kv.value);
            }
            WatchEvent::Delete { key, .. } => {
                assert!(
                    state.remove(&key).is_some(),
                    "delete of {key} not in the list"
                );
            }
            WatchEvent::Compacted { .. } => panic!("unexpected Compacted"),
        }
    }
    writer.await.unwrap();
    let mut final_state: BTreeMap<String, Vec<u8>> = b
        .range("lw/")
        .await
        .unwrap()
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    final_state.remove("lw/done");
    assert_eq!(state, final_state);
}
