#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
use keygate_audit_model::{
    Actor, ActorKind, AuditEvent, Checkpoint, EventType, SignedCheckpoint, Via, seal,
};
use time::macros::datetime;

use super::*;

fn header() -> Header {
    Header {
        hostname: "auth1.example".into(),
        app_name: "keygate".into(),
    }
}

#[test]
fn escapes_exactly_the_three_special_characters() {
    assert_eq!(escape_param_value(r#"a"b\c]d[e=f"#), r#"a\"b\\c\]d[e=f"#);
    assert_eq!(escape_param_value(""), "");
    assert_eq!(escape_param_value("ünï ✓"), "ünï ✓");
}

#[test]
fn severity_comes_from_the_code_suffix() {
    assert_eq!(severity_of("KG1000I"), 6);
    assert_eq!(severity_of("KG1001W"), 4);
    assert_eq!(severity_of("KG1002E"), 3);
    for odd in ["", "KG1000", "KG1000i", "KG1000X"] {
        assert_eq!(severity_of(odd), 5, "{odd:?}");
    }
}

#[test]
fn msgid_is_printable_ascii_and_at_most_32() {
    assert_eq!(msgid("user.login"), "user.login");
    assert_eq!(msgid("a b\tc\u{e9}"), "a_b_c_");
    assert_eq!(msgid(""), "-");
    assert_eq!(msgid(&"x".repeat(40)).len(), 32);
}

#[test]
fn timestamps_are_utc_with_microseconds() {
    assert_eq!(
        timestamp("2025-05-01T09:00:00.123456789Z"),
        "2025-05-01T09:00:00.123456Z"
    );
    assert_eq!(
        timestamp("2025-05-01T11:00:00+02:00"),
        "2025-05-01T09:00:00.000000Z"
    );
    for bad in [
        "",
        "yesterday",
        "2025-13-01T00:00:00Z",
        "2025-05-01 09:00:00",
    ] {
        assert_eq!(timestamp(bad), "-", "{bad:?}");
    }
}

#[test]
fn frames_by_octet_count_in_bytes() {
    let mut out = Vec::new();
    frame("é".as_bytes(), &mut out);
    frame(b"", &mut out);
    assert_eq!(out, "2 é0 ".as_bytes());
}

#[test]
fn an_event_becomes_a_complete_message() {
    let ev = AuditEvent::new(
        EventType::Exec,
        datetime!(2025-05-01 09:00:00.5 UTC),
        "0196-id",
    )
    .user("al\"ice")
    .login("root")
    .node("n1")
    .remote_addr("10.0.0.1:5555")
    .actor(Actor {
        name: "bot]x".into(),
        kind: ActorKind::Bot,
        via: Some(Via::Api),
    })
    .error(r"path C:\tmp")
    .with_field("command", "ls")
    .unwrap();
    let rec = seal([0; 32], 7, &ev).unwrap();
    let msg = String::from_utf8(event_message(&header(), &rec)).unwrap();
    let want_sd = format!(
        "[keygate@59571 seq=\"7\" id=\"0196-id\" event=\"exec\" code=\"{}\" user=\"al\\\"ice\" \
         login=\"root\" node=\"n1\" remote_addr=\"10.0.0.1:5555\" success=\"false\" \
         error=\"path C:\\\\tmp\" actor=\"bot\\]x\" actor_kind=\"bot\" actor_via=\"api\"]",
        ev.code
    );
    let pri = 32 + severity_of(&ev.code);
    let want = format!(
        "<{pri}>1 2025-05-01T09:00:00.500000Z auth1.example keygate - exec {want_sd} {}",
        String::from_utf8(rec.bytes.clone()).unwrap()
    );
    assert_eq!(msg, want);
}

#[test]
fn unreadable_bytes_still_make_a_wellformed_message() {
    let rec = ChainRecord {
        seq: 3,
        prev_hash: [0; 32],
        hash: [0; 32],
        bytes: b"not json".to_vec(),
    };
    let msg = String::from_utf8(event_message(&header(), &rec)).unwrap();
    assert_eq!(
        msg,
        "<37>1 - auth1.example keygate - - [keygate@59571 seq=\"3\"] not json"
    );
}

#[test]
fn a_checkpoint_message_carries_the_claim() {
    let cp = SignedCheckpoint {
        checkpoint: Checkpoint {
            cluster: "main".into(),
            seq: 1000,
            hash: "ab".repeat(32),
            time: datetime!(2025-05-01 09:01 UTC),
        },
        signature: "-----BEGIN SSH SIGNATURE-----\nx\n-----END SSH SIGNATURE-----".into(),
    };
    let msg = String::from_utf8(checkpoint_message(&header(), &cp)).unwrap();
    let prefix = format!(
        "<38>1 2025-05-01T09:01:00.000000Z auth1.example keygate - checkpoint \
         [keygate@59571 kind=\"checkpoint\" seq=\"1000\" hash=\"{}\" cluster=\"main\"] ",
        "ab".repeat(32)
    );
    assert!(msg.starts_with(&prefix), "{msg}");
    let json: serde_json::Value = serde_json::from_str(&msg[prefix.len()..]).unwrap();
    assert_eq!(json["signature"], cp.signature);
    assert_eq!(json["kind"], "checkpoint");
}
