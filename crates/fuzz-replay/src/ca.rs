//! Targets for `keygate-ca`: X.509 identities, SSH certificate checks,
//! sealed blobs, SSH fingerprints and KRLs.

use keygate_ca::{
    KRL_SIG_NAMESPACE, Kek, Krl, Sealed, ca_pin, parse_x509_identity, ssh_fingerprint,
    sshsig_verify, verify_host_cert, verify_pin, verify_user_cert,
};
use time::OffsetDateTime;

use crate::input;
use crate::invariant::{check, check_eq, must};

/// `now` when an input leaves it blank: 2030-01-01T00:00:00Z, inside the
/// validity of the generated seed certificates.
const DEFAULT_NOW: i64 = 1_893_456_000;
/// Most trusted CA keys one input may list.
const MAX_TRUSTED_KEYS: usize = 16;
/// Revoked serials and key ids per CA section checked by `ca_krl_decode`.
const MAX_KRL_LOOKUPS: usize = 16;
/// The fixed KEK the `ca_kek_open` seeds were sealed with: bytes 0, 1, …, 31.
pub const FUZZ_KEK: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
/// The purpose the `ca_kek_open` seeds were sealed for.
pub const FUZZ_AAD: &[u8] = b"ca/user/ssh";

/// `parse_x509_identity` on arbitrary DER. A certificate it reads also has
/// a CA pin that it matches, and a canonical hex serial.
pub fn ca_x509_identity(data: &[u8]) {
    let Ok(identity) = parse_x509_identity(data) else {
        return;
    };
    let serial = identity.serial_hex.as_str();
    check(
        !serial.is_empty()
            && serial
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && (serial == "0" || !serial.starts_with('0')),
        "serial is lowercase hex without leading zeros",
        &serial,
    );
    let pin = must(ca_pin(data), "pin of a certificate that parsed");
    check(
        verify_pin(data, &pin),
        "a certificate matches its own pin",
        &pin,
    );
}

/// `verify_user_cert` / `verify_host_cert` on arbitrary certificate lines.
///
/// Input format (lines): `now` as Unix seconds (blank: 2030-01-01), the
/// certificate line, then trusted CA public key lines.
pub fn ca_ssh_cert(data: &[u8]) {
    let Some(text) = input::text(data) else {
        return;
    };
    let (now_line, rest) = input::first_line(text);
    let Some(now) = input::number_or(now_line, DEFAULT_NOW)
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
    else {
        return;
    };
    let (cert, keys) = input::first_line(rest);
    let trusted: Vec<String> = keys
        .lines()
        .take(MAX_TRUSTED_KEYS)
        .map(str::to_owned)
        .collect();
    let user = verify_user_cert(cert, &trusted, now);
    let host = verify_host_cert(cert, &trusted, now);
    check(
        user.is_err() || host.is_err(),
        "a certificate is a user or a host certificate, never both",
        &cert,
    );
    for verified in [user, host].into_iter().flatten() {
        check(
            !verified.principals.is_empty(),
            "a verified certificate names principals",
            &verified,
        );
        check(
            verified.valid_after <= now && now < verified.valid_before,
            "a verified certificate is valid now",
            &(verified.valid_after, now, verified.valid_before),
        );
        must(
            ssh_fingerprint(&verified.public_key),
            "fingerprint of the certified key",
        );
    }
}

/// `Kek::open` on an arbitrary `Sealed` JSON blob, with a fixed KEK. What
/// opens re-seals and re-opens to the same bytes, and never opens for
/// another purpose.
pub fn ca_kek_open(data: &[u8]) {
    let Ok(sealed) = serde_json::from_slice::<Sealed>(data) else {
        return;
    };
    let kek = must(Kek::from_bytes(&FUZZ_KEK), "the fixed KEK");
    let Ok(plain) = kek.open(&sealed, FUZZ_AAD) else {
        return;
    };
    check(
        kek.open(&sealed, b"ca/host/ssh").is_err(),
        "a blob opens only for its own purpose",
        &sealed,
    );
    let resealed = must(kek.seal(&plain, FUZZ_AAD), "re-sealing");
    let reopened = must(kek.open(&resealed, FUZZ_AAD), "opening a fresh seal");
    check_eq(
        &reopened.as_slice(),
        &plain.as_slice(),
        "seal/open round trip",
    );
}

/// `ssh_fingerprint` on an arbitrary public key line: a fingerprint is
/// `SHA256:` plus 43 base64 characters and ignores surrounding blanks.
pub fn ca_ssh_fingerprint(data: &[u8]) {
    let Some(text) = input::text(data) else {
        return;
    };
    let Ok(fp) = ssh_fingerprint(text) else {
        return;
    };
    check(
        fp.len() == "SHA256:".len() + 43 && fp.starts_with("SHA256:"),
        "fingerprint format",
        &fp,
    );
    let padded = must(
        ssh_fingerprint(&format!("  {text}\n")),
        "fingerprint of the same line with blanks",
    );
    check_eq(&padded, &fp, "blanks do not change the fingerprint");
}

/// `Krl::decode` on arbitrary bytes (the whole input is the KRL). A KRL
/// that decodes re-encodes canonically (encoding the re-decoded value gives
/// the same bytes) to the same value, and every serial and key id it lists
/// is reported revoked for its CA.
pub fn ca_krl_decode(data: &[u8]) {
    let Ok(krl) = Krl::decode(data) else {
        return;
    };
    let bytes = must(krl.encode(), "re-encoding a decoded KRL");
    let again = must(Krl::decode(&bytes), "decoding our own encoding");
    check_eq(&again, &krl, "decode/encode round trip");
    check_eq(
        &must(again.encode(), "encoding the re-decoded KRL"),
        &bytes,
        "canonical encoding",
    );
    for ca in &krl.certificates {
        for serial in ca.serials.iter().take(MAX_KRL_LOOKUPS) {
            check(
                *serial != 0 && krl.is_cert_revoked(&ca.ca_public_key, *serial, ""),
                "a listed serial is revoked",
                &(&ca.ca_public_key, serial),
            );
        }
        for key_id in ca.key_ids.iter().take(MAX_KRL_LOOKUPS) {
            check(
                krl.is_cert_revoked(&ca.ca_public_key, 0, key_id),
                "a listed key id is revoked",
                &(&ca.ca_public_key, key_id),
            );
        }
    }
}

/// The message the `ca_sshsig_verify` seeds sign.
pub const FUZZ_SIGNED_MESSAGE: &[u8] = b"keygate fuzz message\n";

/// `sshsig_verify` (what `krl-sync` runs on signatures from the network).
/// Input: first line a trusted public key (OpenSSH line), the rest an
/// armored SSH signature over [`FUZZ_SIGNED_MESSAGE`] in the namespace
/// `krl@keygate`. A signature that verifies must fail for any other
/// message or namespace, and for an empty key list.
pub fn ca_sshsig_verify(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (key, sig) = text.split_once('\n').unwrap_or((&text, ""));
    let trusted = [key.trim().to_owned()];
    if sshsig_verify(sig, &trusted, KRL_SIG_NAMESPACE, FUZZ_SIGNED_MESSAGE).is_err() {
        return;
    }
    check(
        sshsig_verify(sig, &trusted, KRL_SIG_NAMESPACE, b"another message").is_err(),
        "a signature verifies one message only",
        &key,
    );
    check(
        sshsig_verify(sig, &trusted, "file", FUZZ_SIGNED_MESSAGE).is_err(),
        "a signature verifies in its namespace only",
        &key,
    );
    check(
        sshsig_verify(sig, &[], KRL_SIG_NAMESPACE, FUZZ_SIGNED_MESSAGE).is_err(),
        "no trusted key, no verification",
        &key,
    );
}
