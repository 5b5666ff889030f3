#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;

use time::macros::datetime;

use super::*;
use crate::signer::{KeyAlgorithm, Signer, SoftwareSigner};

fn ed25519_line() -> String {
    SoftwareSigner::generate(KeyAlgorithm::Ed25519)
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap()
}

fn string(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

fn tagged(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend(string(body));
    out
}

/// A KRL header by hand.
fn header_with(version: u64, generated: u64, comment: &str) -> Vec<u8> {
    let mut out = b"SSHKRL\n\0".to_vec();
    out.extend(1u32.to_be_bytes());
    out.extend(version.to_be_bytes());
    out.extend(generated.to_be_bytes());
    out.extend(0u64.to_be_bytes());
    out.extend(string(b""));
    out.extend(string(comment.as_bytes()));
    out
}

/// Version 7, generated at 1000 s, comment "c".
fn header() -> Vec<u8> {
    header_with(7, 1000, "c")
}

/// A certificate section for `ca_line` with the given sub-sections.
fn cert_section(ca_line: &str, subsections: &[Vec<u8>]) -> Vec<u8> {
    let mut body = string(&key_blob(ca_line).unwrap());
    body.extend(string(b""));
    for sub in subsections {
        body.extend_from_slice(sub);
    }
    tagged(section::CERTIFICATES, &body)
}

fn krl_with(sections: &[Vec<u8>]) -> Vec<u8> {
    let mut out = header();
    for s in sections {
        out.extend_from_slice(s);
    }
    out
}

fn refused(bytes: &[u8], needle: &str) {
    match Krl::decode(bytes) {
        Err(CaError::MalformedKrl { reason }) => {
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!("expected MalformedKrl containing {needle:?}, got {other:?}"),
    }
}

fn sample() -> Krl {
    let mut krl = Krl::new(42, datetime!(2030-01-01 0:00 UTC), "keygate krl");
    krl.certificates.push(KrlCaSection {
        ca_public_key: ed25519_line(),
        serials: BTreeSet::from([3, 1, u64::MAX]),
        key_ids: BTreeSet::from(["bob".to_owned(), "alice".to_owned()]),
    });
    krl.certificates.push(KrlCaSection {
        ca_public_key: String::new(),
        serials: BTreeSet::new(),
        key_ids: BTreeSet::from(["mallory".to_owned()]),
    });
    krl.revoke_key(&ed25519_line()).unwrap();
    krl.revoke_key(&ed25519_line()).unwrap();
    krl
}

#[test]
fn encode_decode_round_trip() {
    let krl = sample();
    let bytes = krl.encode().unwrap();
    let decoded = Krl::decode(&bytes).unwrap();
    assert_eq!(decoded, krl);
    assert_eq!(decoded.encode().unwrap(), bytes, "encoding is canonical");
}

#[test]
fn encoding_matches_the_spec_layout() {
    let ca = ed25519_line();
    let mut krl = Krl::new(7, OffsetDateTime::from_unix_timestamp(1000).unwrap(), "c");
    krl.certificates.push(KrlCaSection {
        ca_public_key: format!("{ca} a comment"),
        serials: BTreeSet::from([9, 5]),
        key_ids: BTreeSet::from(["b".to_owned(), "a".to_owned()]),
    });
    krl.revoked_keys_sha256.insert([2; 32]);
    krl.revoked_keys_sha256.insert([1; 32]);
    let serials = [5u64.to_be_bytes(), 9u64.to_be_bytes()].concat();
    let ids = [string(b"a"), string(b"b")].concat();
    let hashes = [string(&[1; 32]), string(&[2; 32])].concat();
    let expected = krl_with(&[
        cert_section(
            &ca,
            &[
                tagged(section::CERT_SERIAL_LIST, &serials),
                tagged(section::CERT_KEY_ID, &ids),
            ],
        ),
        tagged(section::FINGERPRINT_SHA256, &hashes),
    ]);
    assert_eq!(krl.encode().unwrap(), expected);
}

#[test]
fn empty_sections_are_left_out_and_duplicate_cas_merge() {
    let ca = ed25519_line();
    let mut krl = Krl::new(1, datetime!(2030-01-01 0:00 UTC), "");
    krl.certificates.push(KrlCaSection {
        ca_public_key: ca.clone(),
        serials: BTreeSet::new(),
        key_ids: BTreeSet::new(),
    });
    assert_eq!(krl.encode().unwrap(), header_with(1, 1_893_456_000, ""));
    let twice = krl_with(&[
        cert_section(
            &ca,
            &[tagged(section::CERT_SERIAL_LIST, &1u64.to_be_bytes())],
        ),
        cert_section(&ca, &[tagged(section::CERT_KEY_ID, &string(b"x"))]),
        cert_section(&ca, &[]),
    ]);
    let decoded = Krl::decode(&twice).unwrap();
    assert_eq!(decoded.certificates.len(), 1);
    assert_eq!(decoded.certificates[0].serials, BTreeSet::from([1]));
    assert_eq!(
        decoded.certificates[0].key_ids,
        BTreeSet::from(["x".into()])
    );
}

#[test]
fn revocation_queries_follow_sshd() {
    let krl = sample();
    let ca = krl.certificates[0].ca_public_key.clone();
    let other = ed25519_line();
    assert!(krl.is_cert_revoked(&ca, 3, "carol"));
    assert!(krl.is_cert_revoked(&format!("{ca} with comment"), u64::MAX, "carol"));
    assert!(krl.is_cert_revoked(&ca, 2, "alice"));
    assert!(!krl.is_cert_revoked(&ca, 2, "carol"));
    assert!(!krl.is_cert_revoked(&ca, 0, "carol"));
    // Serials are per CA; the wildcard section's key ids apply to all.
    assert!(!krl.is_cert_revoked(&other, 3, "alice"));
    assert!(krl.is_cert_revoked(&other, 3, "mallory"));
    assert!(krl.is_cert_revoked("not a key", 0, "mallory"));
    assert!(!krl.is_cert_revoked("not a key", 3, "alice"));
    // Revoking the CA key revokes everything it signed.
    let mut revoked_ca = sample();
    revoked_ca.revoke_key(&other).unwrap();
    assert!(revoked_ca.is_cert_revoked(&other, 77, "anyone"));
    assert!(revoked_ca.is_key_revoked(&other));
    assert!(!krl.is_key_revoked(&other));
    assert!(!krl.is_key_revoked("garbage"));
}

#[test]
fn encoder_refuses_what_openssh_would_refuse() {
    let bad = |edit: &dyn Fn(&mut Krl), field: &str| {
        let mut krl = sample();
        edit(&mut krl);
        match krl.encode() {
            Err(CaError::InvalidRequest { field: f, .. }) => assert_eq!(f, field),
            Err(CaError::InvalidPublicKey { .. }) => assert_eq!("public key", field),
            other => panic!("expected a refusal of {field}, got {other:?}"),
        }
    };
    bad(&|k| _ = k.certificates[0].serials.insert(0), "serials");
    bad(
        &|k| _ = k.certificates[0].key_ids.insert(String::new()),
        "key_ids",
    );
    bad(
        &|k| _ = k.certificates[0].key_ids.insert("a\0b".into()),
        "key_ids",
    );
    bad(&|k| k.comment = "nul\0".into(), "comment");
    bad(
        &|k| k.generated_at = datetime!(1969-12-31 23:59 UTC),
        "generated_at",
    );
    bad(
        &|k| k.certificates[0].ca_public_key = "ssh-ed25519 !!".into(),
        "public key",
    );
    bad(
        &|k| k.certificates[0].serials = (1..=MAX_KRL_ENTRIES as u64).collect(),
        "certificates",
    );
    assert!(sample().revoke_key("nope").is_err());
}

#[test]
fn every_truncation_and_trailing_byte_is_refused() {
    let krl = sample();
    let bytes = krl.encode().unwrap();
    // The format has no section count: a cut between sections is a valid,
    // smaller KRL (one reason KRLs travel with a detached signature).
    let mut boundaries = vec![header_with(42, 1_893_456_000, "keygate krl").len()];
    let mut at = boundaries[0];
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        at += 5 + len;
        boundaries.push(at);
    }
    assert_eq!(boundaries.len(), 4, "three sections");
    for cut in 0..bytes.len() {
        match Krl::decode(&bytes[..cut]) {
            Ok(smaller) => {
                assert!(boundaries.contains(&cut), "prefix of {cut} bytes decoded");
                assert_ne!(smaller, krl, "a strict prefix revokes less");
            }
            Err(e) => assert!(!boundaries.contains(&cut), "{cut}: {e}"),
        }
    }
    for junk in [&[0u8][..], &[5], &[5, 0, 0, 0], &[0xff; 9]] {
        let mut longer = bytes.clone();
        longer.extend_from_slice(junk);
        assert!(Krl::decode(&longer).is_err(), "trailing {junk:?}");
    }
    refused(b"", "truncated magic");
    refused(&[0xAB; 64], "bad magic");
    refused(&vec![0; MAX_KRL_BYTES + 1], "over the limit");
}

#[test]
fn header_and_section_types_are_checked() {
    let mut v2 = header();
    v2[11] = 2;
    refused(&v2, "format version 2");
    let mut flags = header();
    flags[35] = 1;
    refused(&flags, "flags");
    let mut bad_comment = header();
    let last = bad_comment.len() - 1;
    bad_comment[last] = 0xff;
    refused(&bad_comment, "comment is not UTF-8");
    bad_comment[last] = 0;
    refused(&bad_comment, "NUL");
    // A signature section: byte 4, then key and signature strings.
    let mut signed = header();
    signed.push(section::SIGNATURE);
    signed.extend(string(&key_blob(&ed25519_line()).unwrap()));
    signed.extend(string(&[0; 64]));
    refused(&signed, "signature section");
    refused(&krl_with(&[tagged(9, b"")]), "unknown section type 9");
    refused(
        &krl_with(&[tagged(section::FINGERPRINT_SHA1, &string(&[0; 20]))]),
        "SHA-1",
    );
}

#[test]
fn extensions_are_ignored_unless_critical() {
    let ext = |critical: u8| [string(b"x@example.org"), vec![critical], string(b"v")].concat();
    let ca = ed25519_line();
    let fine = krl_with(&[
        tagged(section::EXTENSION, &ext(0)),
        cert_section(&ca, &[tagged(section::CERT_EXTENSION, &ext(0))]),
    ]);
    assert_eq!(Krl::decode(&fine).unwrap().certificates, vec![]);
    refused(
        &krl_with(&[tagged(section::EXTENSION, &ext(1))]),
        "critical section extension \"x@example.org\"",
    );
    refused(
        &krl_with(&[cert_section(
            &ca,
            &[tagged(section::CERT_EXTENSION, &ext(1))],
        )]),
        "critical certificate sub-section extension",
    );
    let mut trailing = ext(0);
    trailing.push(0);
    refused(
        &krl_with(&[tagged(section::EXTENSION, &trailing)]),
        "trailing bytes in section",
    );
}

#[test]
fn serial_ranges_and_bitmaps_expand() {
    let ca = ed25519_line();
    let range = [7u64.to_be_bytes(), 9u64.to_be_bytes()].concat();
    // ssh-keygen's encoding of serials 100, 102, 104: offset 100, mpint 0x15.
    let bitmap = [100u64.to_be_bytes().to_vec(), string(&[0x15])].concat();
    let high_bit = [8u64.to_be_bytes().to_vec(), string(&[0x00, 0x80, 0x01])].concat();
    let bytes = krl_with(&[cert_section(
        &ca,
        &[
            tagged(section::CERT_SERIAL_RANGE, &range),
            tagged(section::CERT_SERIAL_BITMAP, &bitmap),
            tagged(section::CERT_SERIAL_BITMAP, &high_bit),
        ],
    )]);
    let krl = Krl::decode(&bytes).unwrap();
    assert_eq!(
        krl.certificates[0].serials,
        BTreeSet::from([7, 8, 9, 23, 100, 102, 104])
    );
    assert_eq!(krl.version, 7);
    assert_eq!(krl.generated_at.unix_timestamp(), 1000);
    assert_eq!(krl.comment, "c");
}

#[test]
fn bad_serials_are_refused() {
    let ca = ed25519_line();
    let sub = |kind: u8, body: Vec<u8>| krl_with(&[cert_section(&ca, &[tagged(kind, &body)])]);
    let pair = |a: u64, b: u64| [a.to_be_bytes(), b.to_be_bytes()].concat();
    refused(
        &sub(section::CERT_SERIAL_LIST, 0u64.to_be_bytes().to_vec()),
        "serial 0",
    );
    refused(
        &sub(section::CERT_SERIAL_LIST, vec![0, 0, 1]),
        "truncated serial",
    );
    refused(&sub(section::CERT_SERIAL_RANGE, pair(9, 7)), "range 9-7");
    refused(&sub(section::CERT_SERIAL_RANGE, pair(0, 7)), "range 0-7");
    refused(
        &sub(section::CERT_SERIAL_RANGE, pair(1, u64::MAX)),
        "revocation entries",
    );
    let mut long_range = pair(1, 2);
    long_range.push(0);
    refused(
        &sub(section::CERT_SERIAL_RANGE, long_range),
        "trailing bytes in certificate sub-section",
    );
    let bitmap = |offset: u64, bits: &[u8]| [offset.to_be_bytes().to_vec(), string(bits)].concat();
    refused(
        &sub(section::CERT_SERIAL_BITMAP, bitmap(1, &[0x80])),
        "negative",
    );
    refused(
        &sub(section::CERT_SERIAL_BITMAP, bitmap(u64::MAX, &[0x02])),
        "wraps",
    );
    refused(
        &sub(section::CERT_SERIAL_BITMAP, bitmap(0, &[0x01])),
        "serial 0",
    );
    refused(
        &sub(section::CERT_SERIAL_BITMAP, bitmap(1, &[0; 2050])),
        "bitmap of 2050 bytes",
    );
    refused(&sub(0x2f, vec![]), "sub-section type 0x2f");
}

#[test]
fn bad_key_ids_and_fingerprints_are_refused() {
    let ca = ed25519_line();
    let ids =
        |body: Vec<u8>| krl_with(&[cert_section(&ca, &[tagged(section::CERT_KEY_ID, &body)])]);
    refused(&ids(vec![]), "no key id");
    refused(&ids(string(b"")), "empty key id");
    refused(&ids(string(b"a\0")), "NUL");
    refused(&ids(string(&[0xc3])), "not UTF-8");
    let fps = |hashes: &[&[u8]]| {
        let body: Vec<u8> = hashes.iter().flat_map(|h| string(h)).collect();
        krl_with(&[tagged(section::FINGERPRINT_SHA256, &body)])
    };
    refused(&fps(&[]), "no hash");
    refused(&fps(&[&[1; 31]]), "not 32 bytes");
    refused(&fps(&[&[2; 32], &[1; 32]]), "ascending");
    refused(&fps(&[&[1; 32], &[1; 32]]), "ascending");
    let mut bad_ca = string(b"ssh-ed25519");
    bad_ca.extend(string(b""));
    refused(
        &krl_with(&[tagged(
            section::CERTIFICATES,
            &[string(&bad_ca), string(b"")].concat(),
        )]),
        "ca_key",
    );
}

#[test]
fn explicit_keys_become_fingerprints() {
    let key = ed25519_line();
    let blob = key_blob(&key).unwrap();
    let krl = Krl::decode(&krl_with(&[tagged(section::EXPLICIT_KEY, &string(&blob))])).unwrap();
    assert!(krl.is_key_revoked(&key));
    assert_eq!(krl.revoked_keys_sha256.len(), 1);
    refused(
        &krl_with(&[tagged(section::EXPLICIT_KEY, &string(b"junk"))]),
        "not an SSH public key",
    );
    refused(
        &krl_with(&[tagged(section::EXPLICIT_KEY, b"")]),
        "lists no key",
    );
}

#[test]
fn signer_keys_line_up_with_blobs() {
    // The CA line we store is what ssh-key prints for the signer's key.
    let signer = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
    let line = signer.public_key().to_openssh().unwrap();
    let blob = key_blob(&line).unwrap();
    assert_eq!(&blob[blob.len() - 32..], signer.public_key().raw());
}
