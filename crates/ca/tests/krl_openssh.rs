//! KRL conformance with OpenSSH: `ssh-keygen -Q` checks certificates and
//! keys against KRLs we encode, and we decode KRLs `ssh-keygen -k` writes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use keygate_ca::{
    CaError, KeyAlgorithm, Krl, KrlCaSection, Signer, SoftwareSigner, UserCertRequest,
    sign_user_cert,
};
use support::{keygen, keygen_ok, new_key, read, write};
use time::macros::datetime;

/// Signs a copy of `user.pub` as `name-cert.pub` with the ssh-keygen CA
/// `ca`; `serial` None leaves ssh-keygen's default serial, 0.
fn keygen_cert(dir: &Path, ca: &str, name: &str, key_id: &str, serial: Option<u64>) -> String {
    std::fs::copy(dir.join("user.pub"), dir.join(format!("{name}.pub"))).unwrap();
    let serial = serial.map(|s| s.to_string());
    let mut args = vec!["-q", "-s", ca, "-I", key_id, "-n", "someone"];
    if let Some(serial) = &serial {
        args.extend(["-z", serial.as_str()]);
    }
    let file = format!("{name}.pub");
    args.push(&file);
    keygen_ok(dir, &args);
    format!("{name}-cert.pub")
}

/// What `ssh-keygen -Q` says about `file`: true for REVOKED (exit 1),
/// false for ok (exit 0); anything else fails the test.
fn keygen_says_revoked(dir: &Path, krl: &str, file: &str) -> bool {
    let out = keygen(dir, &["-Q", "-f", krl, file], b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    match out.status.code() {
        Some(1) if stdout.contains(": REVOKED") => true,
        Some(0) if stdout.contains(": ok") => false,
        _ => panic!(
            "ssh-keygen -Q {file}: {:?}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn ssh_keygen_honours_our_krl() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ca = new_key(dir, "ca");
    new_key(dir, "other_ca");
    let dead_ca = new_key(dir, "dead_ca");
    new_key(dir, "user");
    let revoked_plain = new_key(dir, "revoked_plain");
    new_key(dir, "fine_plain");

    // A CA of our own, signing through the crate's Signer.
    let our_ca = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
    let our_ca_line = our_ca.public_key().to_openssh().unwrap();
    let our_cert = sign_user_cert(
        &our_ca,
        &UserCertRequest {
            public_key: read(dir, "user.pub"),
            key_id: "erin".into(),
            principals: vec!["erin".into()],
            valid_after: datetime!(2030-01-01 0:00 UTC),
            valid_before: datetime!(2030-01-02 0:00 UTC),
            serial: 11,
            extensions: BTreeMap::new(),
        },
    )
    .unwrap();
    write(dir, "ours-cert.pub", &our_cert);

    let mut krl = Krl::new(42, datetime!(2030-01-01 0:00 UTC), "keygate test krl");
    krl.certificates.push(KrlCaSection {
        ca_public_key: ca.clone(),
        serials: BTreeSet::from([5, 1_000_000_007]),
        key_ids: BTreeSet::from(["bob".into()]),
    });
    krl.certificates.push(KrlCaSection {
        ca_public_key: our_ca_line.clone(),
        serials: BTreeSet::from([11]),
        key_ids: BTreeSet::new(),
    });
    krl.certificates.push(KrlCaSection {
        ca_public_key: String::new(),
        serials: BTreeSet::new(),
        key_ids: BTreeSet::from(["mallory".into()]),
    });
    krl.revoke_key(&revoked_plain).unwrap();
    krl.revoke_key(&dead_ca).unwrap();
    write(dir, "our.krl", krl.encode().unwrap());

    // (file, issuing CA line, serial, key id, revoked?)
    let other_ca = read(dir, "other_ca.pub");
    let cases = [
        ("ca", "by_serial", "alice", Some(5), true),
        ("ca", "big_serial", "alice", Some(1_000_000_007), true),
        ("ca", "by_id", "bob", Some(6), true),
        ("ca", "fine", "carol", Some(7), false),
        ("ca", "no_serial", "dave", None, false),
        ("other_ca", "other_serial", "alice", Some(5), false),
        ("other_ca", "other_id", "bob", Some(6), false),
        ("other_ca", "wildcard_id", "mallory", Some(9), true),
        ("dead_ca", "dead_ca_cert", "zed", Some(3), true),
    ];
    for (signer, name, key_id, serial, revoked) in cases {
        let cert = keygen_cert(dir, signer, name, key_id, serial);
        assert_eq!(
            keygen_says_revoked(dir, "our.krl", &cert),
            revoked,
            "ssh-keygen on {name}"
        );
        let ca_line = match signer {
            "ca" => &ca,
            "other_ca" => &other_ca,
            _ => &dead_ca,
        };
        assert_eq!(
            krl.is_cert_revoked(ca_line, serial.unwrap_or(0), key_id),
            revoked,
            "our view of {name}"
        );
    }
    assert!(keygen_says_revoked(dir, "our.krl", "ours-cert.pub"));
    assert!(krl.is_cert_revoked(&our_ca_line, 11, "erin"));
    assert!(keygen_says_revoked(dir, "our.krl", "revoked_plain.pub"));
    assert!(!keygen_says_revoked(dir, "our.krl", "fine_plain.pub"));
    assert!(!keygen_says_revoked(dir, "our.krl", "user.pub"));

    // ssh-keygen reads back the header and the lists we wrote.
    let listing = keygen_ok(dir, &["-Q", "-l", "-f", "our.krl"]);
    for needle in [
        "# KRL version 42",
        "keygate test krl",
        "serial: 5",
        "serial: 1000000007",
        "id: bob",
        "id: mallory",
        "# Wildcard CA",
    ] {
        assert!(listing.contains(needle), "{needle:?} not in:\n{listing}");
    }
}

#[test]
fn we_decode_krls_made_by_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ca = new_key(dir, "ca");
    new_key(dir, "user");
    let by_hash = new_key(dir, "by_hash");
    let by_blob = new_key(dir, "by_blob");
    let by_sha256 = new_key(dir, "by_sha256");
    let fingerprint = keygen_ok(dir, &["-l", "-E", "sha256", "-f", "by_hash.pub"]);
    let fingerprint = fingerprint.split_whitespace().nth(1).unwrap().to_owned();
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    // Single serials, a range and a sparse run (ssh-keygen picks lists,
    // ranges and bitmaps), key ids, and plain keys three ways.
    write(
        dir,
        "spec",
        format!(
            "serial: 5\nserial: 7-9\nserial: 100\nserial: 102\nserial: 104\n\
             serial: 18446744073709551615\nid: bob\nid: alice\n# a comment\n\
             hash: {fingerprint}\nkey: {by_blob}\nsha256: {by_sha256}\n"
        ),
    );
    keygen_ok(
        dir,
        &["-k", "-f", "theirs.krl", "-s", "ca.pub", "-z", "42", "spec"],
    );
    let krl = Krl::decode(&std::fs::read(dir.join("theirs.krl")).unwrap()).unwrap();

    assert_eq!(krl.version, 42);
    assert_eq!(krl.certificates.len(), 1);
    let section = &krl.certificates[0];
    let ca_key_only: String = ca.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(section.ca_public_key, ca_key_only);
    assert_eq!(
        section.serials,
        BTreeSet::from([5, 7, 8, 9, 100, 102, 104, u64::MAX])
    );
    assert_eq!(
        section.key_ids,
        BTreeSet::from(["alice".to_owned(), "bob".to_owned()])
    );
    assert_eq!(krl.revoked_keys_sha256.len(), 3);
    for key in [&by_hash, &by_blob, &by_sha256] {
        assert!(krl.is_key_revoked(key), "{key}");
    }
    assert!(krl.is_cert_revoked(&ca, 8, "carol"));
    assert!(!krl.is_cert_revoked(&ca, 6, "carol"));

    // Re-encoded by us, it still revokes the same certificates for OpenSSH.
    write(dir, "again.krl", krl.encode().unwrap());
    assert_eq!(
        Krl::decode(&std::fs::read(dir.join("again.krl")).unwrap()).unwrap(),
        krl
    );
    for (name, serial, key_id, revoked) in [
        ("in_range", 8, "carol", true),
        ("in_bitmap", 102, "carol", true),
        ("gap", 103, "carol", false),
        ("by_id", 6, "alice", true),
    ] {
        let cert = keygen_cert(dir, "ca", name, key_id, Some(serial));
        assert_eq!(
            keygen_says_revoked(dir, "theirs.krl", &cert),
            revoked,
            "{name}"
        );
        assert_eq!(
            keygen_says_revoked(dir, "again.krl", &cert),
            revoked,
            "{name}"
        );
    }
}

#[test]
fn wildcard_and_sha1_krls_from_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let other = new_key(dir, "other");
    write(dir, "ids", "id: mallory\n");
    keygen_ok(dir, &["-k", "-f", "wild.krl", "-s", "none", "ids"]);
    let krl = Krl::decode(&std::fs::read(dir.join("wild.krl")).unwrap()).unwrap();
    assert_eq!(krl.certificates.len(), 1);
    assert_eq!(krl.certificates[0].ca_public_key, "");
    assert!(krl.is_cert_revoked(&other, 1, "mallory"));

    // SHA-1 fingerprints have no place in our model: refused, not dropped.
    write(dir, "sha1", format!("sha1: {other}\n"));
    keygen_ok(dir, &["-k", "-f", "sha1.krl", "sha1"]);
    match Krl::decode(&std::fs::read(dir.join("sha1.krl")).unwrap()) {
        Err(CaError::MalformedKrl { reason }) => assert!(reason.contains("SHA-1"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn ssh_keygen_rejects_what_our_decoder_rejects() {
    // Garbage and trailing bytes: both sides refuse (ssh-keygen exits 255).
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ca = new_key(dir, "ca");
    let mut krl = Krl::new(1, datetime!(2030-01-01 0:00 UTC), "");
    krl.certificates.push(KrlCaSection {
        ca_public_key: ca,
        serials: BTreeSet::from([5]),
        key_ids: BTreeSet::new(),
    });
    let good = krl.encode().unwrap();
    let mut trailing = good.clone();
    trailing.push(section_type_sha256());
    let truncated = &good[..good.len() - 3];
    for (name, bytes) in [
        ("garbage.krl", &b"SSHKRL\n\0garbage"[..]),
        ("trailing.krl", &trailing),
        ("truncated.krl", truncated),
    ] {
        assert!(Krl::decode(bytes).is_err(), "{name}");
        write(dir, name, bytes);
        let out = keygen(dir, &["-Q", "-f", name, "ca.pub"], b"");
        assert!(!out.status.success(), "ssh-keygen accepted {name}");
        assert_ne!(out.status.code(), Some(1), "{name} is not a revocation");
    }
}

/// `KRL_SECTION_FINGERPRINT_SHA256`, as a lone trailing byte.
fn section_type_sha256() -> u8 {
    5
}
