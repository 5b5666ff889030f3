//! The strict, bounded KRL decoder: reads what `ssh-keygen -k` and
//! [`Krl::encode`] write, and refuses everything it cannot represent
//! faithfully rather than dropping a revocation.
//!
//! Accepted beyond our own encoding: several sections per CA (merged),
//! serial ranges and bitmaps (expanded, within [`MAX_KRL_ENTRIES`]),
//! explicit-key sections (turned into SHA-256 fingerprints, which revoke the
//! same keys), non-critical extensions (ignored). Refused: signature
//! sections, SHA-1 fingerprint sections, critical extensions, unknown
//! section types, header flags, serial 0 (OpenSSH refuses it too), trailing
//! bytes at any level, non-UTF-8 or NUL-containing strings, and unsorted
//! fingerprint sections (the spec requires numeric order).

use std::collections::BTreeSet;

use russh::keys::PublicKey;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::CaError;
use crate::krl::{
    KRL_FORMAT_VERSION, KRL_MAGIC, Krl, KrlCaSection, MAX_KRL_BYTES, MAX_KRL_ENTRIES, key_blob,
    section,
};

/// Longest serial bitmap OpenSSH reads: a 16384-bit mpint plus its sign
/// byte (`SSHBUF_MAX_BIGNUM`).
const MAX_BITMAP_BYTES: usize = 2049;

fn malformed(reason: impl Into<String>) -> CaError {
    CaError::MalformedKrl {
        reason: reason.into(),
    }
}

// === impl Krl ===

impl Krl {
    /// Parses an OpenSSH KRL, strictly and within fixed bounds (see the
    /// module docs for what is refused). Never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Krl, CaError> {
        if bytes.len() > MAX_KRL_BYTES {
            return Err(malformed(format!(
                "{} bytes is over the limit of {MAX_KRL_BYTES}",
                bytes.len()
            )));
        }
        let mut r = Reader::new(bytes);
        if r.bytes(KRL_MAGIC.len(), "magic")? != KRL_MAGIC {
            return Err(malformed("not an OpenSSH KRL (bad magic)"));
        }
        let format = r.u32("format version")?;
        if format != KRL_FORMAT_VERSION {
            return Err(malformed(format!("unsupported format version {format}")));
        }
        let version = r.u64("krl_version")?;
        let generated = r.u64("generated_date")?;
        let flags = r.u64("flags")?;
        if flags != 0 {
            return Err(malformed(format!("unknown header flags {flags:#x}")));
        }
        r.string("reserved")?; // ignored, as the spec says
        let comment = r.cstring("comment")?.to_owned();
        let generated_at = i64::try_from(generated)
            .ok()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .ok_or_else(|| malformed(format!("generated_date {generated} is out of range")))?;

        let mut krl = Krl::new(version, generated_at, comment);
        let mut budget = Budget {
            left: MAX_KRL_ENTRIES,
        };
        while !r.is_empty() {
            let kind = r.u8("section type")?;
            if kind == section::SIGNATURE {
                return Err(malformed(
                    "the KRL has a signature section, which OpenSSH >= 9.4 refuses; \
                     Keygate KRLs are unsigned and authenticated by a detached SSHSIG",
                ));
            }
            let mut body = Reader::new(r.string("section")?);
            match kind {
                section::CERTIFICATES => decode_certificates(&mut body, &mut krl, &mut budget)?,
                section::EXPLICIT_KEY => decode_explicit_keys(&mut body, &mut krl, &mut budget)?,
                section::FINGERPRINT_SHA256 => {
                    decode_fingerprints(&mut body, &mut krl, &mut budget)?;
                }
                section::FINGERPRINT_SHA1 => {
                    return Err(malformed(
                        "SHA-1 fingerprint sections are not supported; revoke keys by SHA-256 \
                         ('hash:' lines for ssh-keygen -k)",
                    ));
                }
                section::EXTENSION => decode_extension(&mut body, "section")?,
                other => return Err(malformed(format!("unknown section type {other}"))),
            }
            body.finish("section")?;
        }
        krl.certificates
            .retain(|ca| !ca.serials.is_empty() || !ca.key_ids.is_empty());
        Ok(krl)
    }
}

/// One `KRL_SECTION_CERTIFICATES`, merged into the section of its CA.
fn decode_certificates(
    body: &mut Reader<'_>,
    krl: &mut Krl,
    budget: &mut Budget,
) -> Result<(), CaError> {
    let ca_blob = body.string("ca_key")?;
    body.string("certificate section reserved")?;
    let ca_line = if ca_blob.is_empty() {
        String::new()
    } else {
        canonical_ca_line(ca_blob)?
    };
    let index = match krl
        .certificates
        .iter()
        .position(|ca| ca.ca_public_key == ca_line)
    {
        Some(index) => index,
        None => {
            krl.certificates.push(KrlCaSection {
                ca_public_key: ca_line,
                serials: BTreeSet::new(),
                key_ids: BTreeSet::new(),
            });
            krl.certificates.len().saturating_sub(1)
        }
    };
    let ca = krl
        .certificates
        .get_mut(index)
        .ok_or_else(|| malformed("internal: certificate section vanished"))?;

    while !body.is_empty() {
        let kind = body.u8("certificate sub-section type")?;
        let mut sub = Reader::new(body.string("certificate sub-section")?);
        match kind {
            section::CERT_SERIAL_LIST => {
                while !sub.is_empty() {
                    revoke_serial(&mut ca.serials, sub.u64("serial")?, budget)?;
                }
            }
            section::CERT_SERIAL_RANGE => {
                let lo = sub.u64("serial_min")?;
                let hi = sub.u64("serial_max")?;
                if lo == 0 || lo > hi {
                    return Err(malformed(format!("invalid serial range {lo}-{hi}")));
                }
                budget.spend((hi - lo).saturating_add(1))?;
                ca.serials.extend(lo..=hi);
            }
            section::CERT_SERIAL_BITMAP => {
                let offset = sub.u64("serial_offset")?;
                let bitmap = sub.string("revoked_keys_bitmap")?;
                decode_bitmap(offset, bitmap, &mut ca.serials, budget)?;
            }
            section::CERT_KEY_ID => {
                if sub.is_empty() {
                    return Err(malformed("key id sub-section lists no key id"));
                }
                while !sub.is_empty() {
                    let key_id = sub.cstring("key_id")?;
                    if key_id.is_empty() {
                        return Err(malformed("empty key id"));
                    }
                    budget.spend(1)?;
                    ca.key_ids.insert(key_id.to_owned());
                }
            }
            section::CERT_EXTENSION => decode_extension(&mut sub, "certificate sub-section")?,
            other => {
                return Err(malformed(format!(
                    "unknown certificate sub-section type {other:#04x}"
                )));
            }
        }
        sub.finish("certificate sub-section")?;
    }
    Ok(())
}

/// The OpenSSH line of a CA key blob; refused unless encoding the line gives
/// the same blob back, so that re-encoding a decoded KRL changes nothing.
fn canonical_ca_line(blob: &[u8]) -> Result<String, CaError> {
    let line = PublicKey::from_bytes(blob)
        .and_then(|key| key.to_openssh())
        .map_err(|e| malformed(format!("ca_key is not an SSH public key: {e}")))?;
    match key_blob(&line) {
        Ok(again) if again == blob => Ok(line),
        _ => Err(malformed("ca_key has a non-canonical encoding")),
    }
}

/// A serial bitmap: bit N (counting from the least significant bit of the
/// big-endian mpint) revokes serial `offset + N`.
fn decode_bitmap(
    offset: u64,
    bitmap: &[u8],
    serials: &mut BTreeSet<u64>,
    budget: &mut Budget,
) -> Result<(), CaError> {
    if bitmap.len() > MAX_BITMAP_BYTES {
        return Err(malformed(format!(
            "serial bitmap of {} bytes is over OpenSSH's limit of {MAX_BITMAP_BYTES}",
            bitmap.len()
        )));
    }
    if bitmap.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(malformed("serial bitmap is a negative mpint"));
    }
    for (index, byte) in bitmap.iter().rev().enumerate() {
        for bit in 0..8u8 {
            if byte & (1 << bit) == 0 {
                continue;
            }
            // index < MAX_BITMAP_BYTES, so this never overflows.
            let n = u64::try_from(index)
                .ok()
                .and_then(|i| i.checked_mul(8))
                .and_then(|i| i.checked_add(u64::from(bit)));
            let serial = n
                .and_then(|n| offset.checked_add(n))
                .ok_or_else(|| malformed("serial bitmap wraps past 2^64"))?;
            revoke_serial(serials, serial, budget)?;
        }
    }
    Ok(())
}

fn revoke_serial(
    serials: &mut BTreeSet<u64>,
    serial: u64,
    budget: &mut Budget,
) -> Result<(), CaError> {
    if serial == 0 {
        return Err(malformed("revokes serial 0, which OpenSSH refuses"));
    }
    budget.spend(1)?;
    serials.insert(serial);
    Ok(())
}

/// `KRL_SECTION_EXPLICIT_KEY`: plain key blobs, kept as their SHA-256
/// (sshd compares the blob; the hash of the blob revokes exactly the same
/// keys).
fn decode_explicit_keys(
    body: &mut Reader<'_>,
    krl: &mut Krl,
    budget: &mut Budget,
) -> Result<(), CaError> {
    if body.is_empty() {
        return Err(malformed("explicit key section lists no key"));
    }
    while !body.is_empty() {
        let blob = body.string("public_key_blob")?;
        PublicKey::from_bytes(blob)
            .map_err(|e| malformed(format!("revoked key is not an SSH public key: {e}")))?;
        budget.spend(1)?;
        krl.revoked_keys_sha256.insert(Sha256::digest(blob).into());
    }
    Ok(())
}

/// `KRL_SECTION_FINGERPRINT_SHA256`: 32-byte hashes in ascending order.
fn decode_fingerprints(
    body: &mut Reader<'_>,
    krl: &mut Krl,
    budget: &mut Budget,
) -> Result<(), CaError> {
    if body.is_empty() {
        return Err(malformed("SHA-256 fingerprint section lists no hash"));
    }
    let mut previous: Option<[u8; 32]> = None;
    while !body.is_empty() {
        let hash: [u8; 32] = body
            .string("public_key_hash")?
            .try_into()
            .map_err(|_| malformed("a SHA-256 fingerprint is not 32 bytes"))?;
        if previous.is_some_and(|p| p >= hash) {
            return Err(malformed(
                "SHA-256 fingerprints are not in ascending order, as PROTOCOL.krl requires",
            ));
        }
        previous = Some(hash);
        budget.spend(1)?;
        krl.revoked_keys_sha256.insert(hash);
    }
    Ok(())
}

/// An extension (section or certificate sub-section): name, critical flag,
/// contents. None is supported, so a critical one is refused.
fn decode_extension(body: &mut Reader<'_>, level: &str) -> Result<(), CaError> {
    let name = body.cstring("extension name")?;
    let critical = body.u8("extension is_critical")?;
    body.string("extension contents")?;
    if critical != 0 {
        return Err(malformed(format!(
            "unsupported critical {level} extension {name:?}"
        )));
    }
    Ok(())
}

// === impl Budget ===

/// How many more revocation entries the decoder will materialise.
struct Budget {
    /// Entries left before the KRL is refused as too large.
    left: usize,
}

impl Budget {
    fn spend(&mut self, n: u64) -> Result<(), CaError> {
        let rest = usize::try_from(n)
            .ok()
            .and_then(|n| self.left.checked_sub(n))
            .ok_or_else(|| malformed(format!("more than {MAX_KRL_ENTRIES} revocation entries")))?;
        self.left = rest;
        Ok(())
    }
}

// === impl Reader ===

/// A cursor over SSH wire data whose every read is bounds-checked.
struct Reader<'a> {
    /// The bytes not read yet.
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Self { rest }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Fails unless everything was read.
    fn finish(&self, what: &str) -> Result<(), CaError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(malformed(format!(
                "{} unexpected trailing bytes in {what}",
                self.rest.len()
            )))
        }
    }

    fn bytes(&mut self, n: usize, field: &str) -> Result<&'a [u8], CaError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or_else(|| malformed(format!("truncated {field}")))?;
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], CaError> {
        self.bytes(N, field)?
            .try_into()
            .map_err(|_| malformed(format!("truncated {field}")))
    }

    fn u8(&mut self, field: &str) -> Result<u8, CaError> {
        let [byte] = self.array::<1>(field)?;
        Ok(byte)
    }

    fn u32(&mut self, field: &str) -> Result<u32, CaError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &str) -> Result<u64, CaError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// An SSH `string`: u32 length, then that many bytes.
    fn string(&mut self, field: &str) -> Result<&'a [u8], CaError> {
        let len = usize::try_from(self.u32(field)?)
            .map_err(|_| malformed(format!("{field} is too long")))?;
        self.bytes(len, field)
    }

    /// A string OpenSSH reads as a C string, which we also require to be
    /// UTF-8.
    fn cstring(&mut self, field: &str) -> Result<&'a str, CaError> {
        let text = std::str::from_utf8(self.string(field)?)
            .map_err(|_| malformed(format!("{field} is not UTF-8")))?;
        if text.contains('\0') {
            return Err(malformed(format!("{field} contains a NUL byte")));
        }
        Ok(text)
    }
}
