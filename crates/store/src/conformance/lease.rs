//! Cases for leases, driven by the fixture's test clock (never by sleeping).

use std::time::Duration;

use super::{Fixture, delete_event, keys, next_event, put_event};
use crate::{Compare, KeyValue, Op, StoreError, WatchEvent};

const TTL: Duration = Duration::from_secs(10);

/// Once the clock passes a lease's deadline its keys are absent to every
/// read at once; `expire_leases` then deletes them with `Delete` events.
pub async fn expired_lease_hides_keys_then_expire_deletes_them(f: &Fixture) {
    let b = &f.backend;
    let lease = b.grant_lease(TTL).await.unwrap();
    assert_eq!(
        b.put("l/leased", b"v".to_vec(), Some(lease)).await.unwrap(),
        1
    );
    assert_eq!(b.put("l/plain", b"v".to_vec(), None).await.unwrap(), 2);
    assert_eq!(b.get("l/leased").await.unwrap().unwrap().lease, Some(lease));
    let mut w = b.watch("l/", 0).await.unwrap();

    f.clock.advance(Duration::from_secs(9));
    assert!(b.get("l/leased").await.unwrap().is_some());
    assert_eq!(b.expire_leases().await.unwrap(), 0);

    f.clock.advance(Duration::from_secs(2));
    assert_eq!(b.get("l/leased").await.unwrap(), None);
    assert_eq!(keys(&b.range("l/").await.unwrap()), ["l/plain"]);
    assert_eq!(keys(&b.range_at("").await.unwrap().0), ["l/plain"]);

    assert_eq!(b.expire_leases().await.unwrap(), 1);
    assert_eq!(next_event(&mut w).await, delete_event("l/leased", 3));
    assert_eq!(b.current_revision().await.unwrap(), 3);
    assert_eq!(b.expire_leases().await.unwrap(), 0);
    assert!(matches!(b.keep_alive(lease).await, Err(StoreError::LeaseNotFound(id)) if id == lease));
    // The next write's event follows directly: no stray events in between.
    b.put("l/after", b"v".to_vec(), None).await.unwrap();
    assert_eq!(next_event(&mut w).await, put_event("l/after", b"v", 4, 4));
}

/// `keep_alive` pushes the deadline to now + TTL; after expiry it fails with
/// `LeaseNotFound`, even before `expire_leases` ran.
pub async fn keep_alive_extends_and_fails_after_expiry(f: &Fixture) {
    let b = &f.backend;
    let lease = b.grant_lease(TTL).await.unwrap();
    b.put("k", b"v".to_vec(), Some(lease)).await.unwrap();
    f.clock.advance(Duration::from_secs(6));
    b.keep_alive(lease).await.unwrap();
    f.clock.advance(Duration::from_secs(6));
    // 12 s after grant, 6 s after the keep-alive: still alive.
    assert!(b.get("k").await.unwrap().is_some());
    assert_eq!(b.expire_leases().await.unwrap(), 0);
    f.clock.advance(Duration::from_secs(5));
    assert_eq!(b.get("k").await.unwrap(), None);
    assert!(matches!(b.keep_alive(lease).await, Err(StoreError::LeaseNotFound(id)) if id == lease));
    assert_eq!(b.get("k").await.unwrap(), None);
    assert!(b.range("").await.unwrap().is_empty());
    assert!(matches!(
        b.keep_alive(lease + 1000).await,
        Err(StoreError::LeaseNotFound(_))
    ));
}

/// Revoking deletes the lease's keys at one revision, leaves others alone,
/// and a second revoke fails.
pub async fn revoke_lease_deletes_its_keys(f: &Fixture) {
    let b = &f.backend;
    let lease = b.grant_lease(TTL).await.unwrap();
    let other = b.grant_lease(TTL).await.unwrap();
    assert_ne!(lease, other);
    b.put("r/a", b"1".to_vec(), Some(lease)).await.unwrap();
    b.put("r/b", b"2".to_vec(), Some(lease)).await.unwrap();
    b.put("r/c", b"3".to_vec(), None).await.unwrap();
    b.put("r/d", b"4".to_vec(), Some(other)).await.unwrap();
    let mut w = b.watch("r/", 0).await.unwrap();
    b.revoke_lease(lease).await.unwrap();
    assert_eq!(next_event(&mut w).await, delete_event("r/a", 5));
    assert_eq!(next_event(&mut w).await, delete_event("r/b", 5));
    assert_eq!(keys(&b.range("r/").await.unwrap()), ["r/c", "r/d"]);
    assert!(matches!(
        b.revoke_lease(lease).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert!(matches!(
        b.keep_alive(lease).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    // A lease without keys revokes without a revision.
    let empty = b.grant_lease(TTL).await.unwrap();
    b.revoke_lease(empty).await.unwrap();
    assert_eq!(b.current_revision().await.unwrap(), 5);
}

/// Writing with an unknown, revoked or expired lease fails and writes
/// nothing; a TTL of zero is refused.
pub async fn put_with_missing_lease_fails(f: &Fixture) {
    let b = &f.backend;
    assert!(matches!(
        b.put("x", b"v".to_vec(), Some(424_242)).await,
        Err(StoreError::LeaseNotFound(424_242))
    ));
    let ops = vec![
        Op::Put {
            key: "y".into(),
            value: b"v".to_vec(),
            lease: None,
        },
        Op::Put {
            key: "x".into(),
            value: b"v".to_vec(),
            lease: Some(424_242),
        },
    ];
    assert!(matches!(
        b.txn(Vec::new(), ops).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert!(b.range("").await.unwrap().is_empty());
    assert_eq!(b.current_revision().await.unwrap(), 0);

    let lease = b.grant_lease(TTL).await.unwrap();
    f.clock.advance(TTL);
    // The deadline is exclusive: at exactly grant + TTL the lease is gone.
    assert!(matches!(
        b.put("x", b"v".to_vec(), Some(lease)).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert!(matches!(
        b.grant_lease(Duration::ZERO).await,
        Err(StoreError::InvalidTtl { .. })
    ));
    assert_eq!(b.current_revision().await.unwrap(), 0);
}

/// A key whose lease expired is absent to transactions too: `Absent` holds
/// and a new put re-creates it (after the expiry's own `Delete`).
pub async fn expired_key_is_absent_to_writes(f: &Fixture) {
    let b = &f.backend;
    let lease = b.grant_lease(Duration::from_secs(5)).await.unwrap();
    b.put("e/k", b"old".to_vec(), Some(lease)).await.unwrap();
    f.clock.advance(Duration::from_secs(6));
    let result = b
        .txn(
            vec![
                Compare::Absent { key: "e/k".into() },
                Compare::ModRevision {
                    key: "e/k".into(),
                    equals: 0,
                },
            ],
            vec![Op::Put {
                key: "e/k".into(),
                value: b"new".to_vec(),
                lease: None,
            }],
        )
        .await
        .unwrap();
    assert!(result.succeeded);
    let kv = b.get("e/k").await.unwrap().unwrap();
    let expected = KeyValue {
        key: "e/k".into(),
        value: b"new".to_vec(),
        create_revision: result.revision,
        mod_revision: result.revision,
        lease: None,
    };
    assert_eq!(kv, expected);
    // The write already expired the lease.
    assert_eq!(b.expire_leases().await.unwrap(), 0);
    let mut w = b.watch("e/", 1).await.unwrap();
    assert!(matches!(next_event(&mut w).await, WatchEvent::Put(kv) if kv.lease == Some(lease)));
    assert_eq!(next_event(&mut w).await, delete_event("e/k", 2));
    assert_eq!(next_event(&mut w).await, WatchEvent::Put(expected));
    assert_eq!(result.revision, 3);
}
