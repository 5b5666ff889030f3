//! OpenSSH key revocation lists (KRLs, `PROTOCOL.krl`) for agentless
//! OpenSSH hosts: the model, the encoder and revocation queries. The strict
//! decoder lives in `krl_decode.rs`.
//!
//! Keygate emits **unsigned** KRLs only: OpenSSH ≥ 9.4 refuses KRLs with
//! signature sections, so a KRL is authenticated in transit by TLS and by a
//! detached SSHSIG over its bytes (see [`crate::sshsig_sign`] and
//! [`KRL_SIG_NAMESPACE`]). The encoding is canonical: one certificate
//! section per CA with one serial list (ascending) and one key-id list
//! (sorted bytewise, as OpenSSH's `strcmp` tree emits them), then one
//! SHA-256 fingerprint section (ascending, as the spec requires).

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::CaError;
use crate::ssh::parse_openssh_public_key;

/// The SSHSIG namespace Keygate signs KRLs in (`ssh-keygen -Y verify -n`).
pub const KRL_SIG_NAMESPACE: &str = "krl@keygate";

/// Largest KRL [`Krl::decode`] reads and [`Krl::encode`] writes.
pub const MAX_KRL_BYTES: usize = 16 << 20;
/// Most revocation entries (serials, key ids, fingerprints) one KRL may
/// carry; serial ranges and bitmaps count every serial they cover.
pub const MAX_KRL_ENTRIES: usize = 1 << 20;

/// `"SSHKRL\n\0"`, the first eight bytes of every KRL.
pub(crate) const KRL_MAGIC: &[u8; 8] = b"SSHKRL\n\0";
/// The only KRL format version defined.
pub(crate) const KRL_FORMAT_VERSION: u32 = 1;

/// Top-level section types (`PROTOCOL.krl` §1).
pub(crate) mod section {
    /// Revoked certificates of one CA (or of every CA).
    pub(crate) const CERTIFICATES: u8 = 1;
    /// Revoked plain keys, by their wire blob.
    pub(crate) const EXPLICIT_KEY: u8 = 2;
    /// Revoked plain keys, by SHA-1 of their wire blob.
    pub(crate) const FINGERPRINT_SHA1: u8 = 3;
    /// A KRL signature (refused; see the module docs).
    pub(crate) const SIGNATURE: u8 = 4;
    /// Revoked plain keys, by SHA-256 of their wire blob.
    pub(crate) const FINGERPRINT_SHA256: u8 = 5;
    /// A named extension, possibly critical.
    pub(crate) const EXTENSION: u8 = 255;
    /// Certificate sub-section: list of u64 serials.
    pub(crate) const CERT_SERIAL_LIST: u8 = 0x20;
    /// Certificate sub-section: inclusive serial range.
    pub(crate) const CERT_SERIAL_RANGE: u8 = 0x21;
    /// Certificate sub-section: offset plus bitmap (mpint) of serials.
    pub(crate) const CERT_SERIAL_BITMAP: u8 = 0x22;
    /// Certificate sub-section: list of key id strings.
    pub(crate) const CERT_KEY_ID: u8 = 0x23;
    /// Certificate sub-section: a named extension, possibly critical.
    pub(crate) const CERT_EXTENSION: u8 = 0x39;
}

/// The certificates of one CA that are revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KrlCaSection {
    /// The CA's OpenSSH public key line (`ssh-ed25519 AAAA…`; a comment is
    /// ignored). An empty string is OpenSSH's wildcard: the section applies
    /// to certificates of every CA (useful to revoke a key id everywhere).
    pub ca_public_key: String,
    /// Revoked serials (never 0: OpenSSH refuses a KRL revoking serial 0).
    pub serials: BTreeSet<u64>,
    /// Revoked key ids (Keygate: the username); never empty strings.
    pub key_ids: BTreeSet<String>,
}

/// An OpenSSH key revocation list, unsigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Krl {
    /// `krl_version`: increases each time the KRL changes, so hosts can tell
    /// a newer KRL from an older one.
    pub version: u64,
    /// `generated_date` (whole seconds; sub-second parts are dropped).
    pub generated_at: OffsetDateTime,
    /// Free-text comment shown by `ssh-keygen -Q -l` (no NUL bytes).
    pub comment: String,
    /// Revoked certificates, per CA.
    pub certificates: Vec<KrlCaSection>,
    /// Revoked plain (non-certificate) public keys, by SHA-256 of their SSH
    /// wire blob; see [`Krl::revoke_key`].
    pub revoked_keys_sha256: BTreeSet<[u8; 32]>,
}

// === impl Krl ===

impl Krl {
    /// An empty KRL.
    pub fn new(version: u64, generated_at: OffsetDateTime, comment: impl Into<String>) -> Self {
        Self {
            version,
            generated_at,
            comment: comment.into(),
            certificates: Vec::new(),
            revoked_keys_sha256: BTreeSet::new(),
        }
    }

    /// Revokes a plain public key (OpenSSH public key line) by adding its
    /// SHA-256 fingerprint.
    pub fn revoke_key(&mut self, public_key_line: &str) -> Result<(), CaError> {
        self.revoked_keys_sha256
            .insert(public_key_sha256(public_key_line)?);
        Ok(())
    }

    /// The KRL in OpenSSH's binary format, ready for sshd's
    /// `RevokedKeys` file. Sections revoking nothing are left out.
    pub fn encode(&self) -> Result<Vec<u8>, CaError> {
        let generated = u64::try_from(self.generated_at.unix_timestamp())
            .map_err(|_| CaError::request("generated_at", "must not be before 1970-01-01"))?;
        check_cstring("comment", &self.comment)?;
        let entries = self.entry_count();
        if entries > MAX_KRL_ENTRIES {
            return Err(CaError::request(
                "certificates",
                format!("{entries} revocations exceed the limit of {MAX_KRL_ENTRIES} per KRL"),
            ));
        }

        let mut out = Vec::new();
        out.extend_from_slice(KRL_MAGIC);
        out.extend_from_slice(&KRL_FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&generated.to_be_bytes());
        // No flags are defined.
        out.extend_from_slice(&0u64.to_be_bytes());
        put_string(&mut out, b"")?; // reserved
        put_string(&mut out, self.comment.as_bytes())?;

        for ca in &self.certificates {
            if let Some(body) = encode_ca_section(ca)? {
                out.push(section::CERTIFICATES);
                put_string(&mut out, &body)?;
            }
        }
        if !self.revoked_keys_sha256.is_empty() {
            let mut body = Vec::with_capacity(self.revoked_keys_sha256.len() * 36);
            // BTreeSet order over [u8; 32] is big-endian numeric order.
            for hash in &self.revoked_keys_sha256 {
                put_string(&mut body, hash)?;
            }
            out.push(section::FINGERPRINT_SHA256);
            put_string(&mut out, &body)?;
        }
        if out.len() > MAX_KRL_BYTES {
            return Err(CaError::request(
                "certificates",
                format!(
                    "the KRL would be {} bytes, over the limit of {MAX_KRL_BYTES}",
                    out.len()
                ),
            ));
        }
        Ok(out)
    }

    /// Whether a certificate with this issuing CA (OpenSSH public key line),
    /// serial and key id is revoked, as sshd decides it: by key id, by a
    /// non-zero serial, in the CA's own sections or wildcard ones, or
    /// because the CA key itself is revoked. An unparseable CA line only
    /// matches wildcard sections.
    pub fn is_cert_revoked(&self, ca_public_key_line: &str, serial: u64, key_id: &str) -> bool {
        let ca_blob = key_blob(ca_public_key_line).ok();
        if let Some(blob) = &ca_blob {
            let hash: [u8; 32] = Sha256::digest(blob).into();
            if self.revoked_keys_sha256.contains(&hash) {
                return true;
            }
        }
        self.certificates.iter().any(|section| {
            let applies = if section.ca_public_key.trim().is_empty() {
                true
            } else {
                ca_blob.is_some() && key_blob(&section.ca_public_key).ok() == ca_blob
            };
            // Serial 0 means "no serial" to OpenSSH and is never matched.
            applies
                && (section.key_ids.contains(key_id)
                    || (serial != 0 && section.serials.contains(&serial)))
        })
    }

    /// Whether a plain public key (OpenSSH public key line) is revoked.
    /// An unparseable line is not revoked.
    pub fn is_key_revoked(&self, public_key_line: &str) -> bool {
        public_key_sha256(public_key_line)
            .is_ok_and(|hash| self.revoked_keys_sha256.contains(&hash))
    }

    /// Serials, key ids and fingerprints in this KRL.
    fn entry_count(&self) -> usize {
        self.certificates
            .iter()
            .map(|c| c.serials.len().saturating_add(c.key_ids.len()))
            .fold(self.revoked_keys_sha256.len(), usize::saturating_add)
    }
}

/// The body of one certificate section, or `None` if it revokes nothing.
fn encode_ca_section(ca: &KrlCaSection) -> Result<Option<Vec<u8>>, CaError> {
    if ca.serials.is_empty() && ca.key_ids.is_empty() {
        return Ok(None);
    }
    let ca_blob = if ca.ca_public_key.trim().is_empty() {
        Vec::new()
    } else {
        key_blob(&ca.ca_public_key)?
    };
    let mut body = Vec::new();
    put_string(&mut body, &ca_blob)?;
    put_string(&mut body, b"")?; // reserved
    if !ca.serials.is_empty() {
        if ca.serials.contains(&0) {
            return Err(CaError::request(
                "serials",
                "serial 0 cannot be revoked (it means \"no serial\"; OpenSSH refuses such a KRL); revoke the key id instead",
            ));
        }
        let mut list = Vec::with_capacity(ca.serials.len() * 8);
        for serial in &ca.serials {
            list.extend_from_slice(&serial.to_be_bytes());
        }
        body.push(section::CERT_SERIAL_LIST);
        put_string(&mut body, &list)?;
    }
    if !ca.key_ids.is_empty() {
        let mut list = Vec::new();
        for key_id in &ca.key_ids {
            if key_id.is_empty() {
                return Err(CaError::request("key_ids", "key ids must not be empty"));
            }
            check_cstring("key_ids", key_id)?;
            put_string(&mut list, key_id.as_bytes())?;
        }
        body.push(section::CERT_KEY_ID);
        put_string(&mut body, &list)?;
    }
    Ok(Some(body))
}

/// The SSH wire blob of an OpenSSH public key line.
pub(crate) fn key_blob(line: &str) -> Result<Vec<u8>, CaError> {
    parse_openssh_public_key(line)?
        .to_bytes()
        .map_err(|e| CaError::crypto("encode ssh public key", e))
}

/// SHA-256 of a public key's wire blob: what a KRL fingerprint section
/// holds (and the raw bytes behind `ssh-keygen -l`'s `SHA256:` form).
pub(crate) fn public_key_sha256(public_key_line: &str) -> Result<[u8; 32], CaError> {
    Ok(Sha256::digest(key_blob(public_key_line)?).into())
}

/// OpenSSH reads these fields as C strings: no NUL bytes.
fn check_cstring(field: &'static str, value: &str) -> Result<(), CaError> {
    if value.contains('\0') {
        return Err(CaError::request(field, "must not contain NUL bytes"));
    }
    Ok(())
}

/// Appends an SSH `string` (u32 big-endian length, then the bytes).
fn put_string(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), CaError> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| CaError::request("certificates", "a KRL field exceeds 4 GiB"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
#[path = "krl_tests.rs"]
mod tests;
