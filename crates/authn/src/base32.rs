//! RFC 4648 base32 (alphabet `A–Z2–7`), as used by `otpauth://` URIs and
//! authenticator apps.

use crate::AuthnError;

/// The RFC 4648 base32 alphabet.
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Encode without `=` padding (the Key URI format omits it).
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            push_symbol(&mut out, (buffer >> bits) & 0x1f);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        push_symbol(&mut out, (buffer << (5 - bits)) & 0x1f);
    }
    out
}

fn push_symbol(out: &mut String, index: u32) {
    let symbol = usize::try_from(index)
        .ok()
        .and_then(|i| ALPHABET.get(i))
        .copied()
        .unwrap_or(b'A');
    out.push(char::from(symbol));
}

/// Decode, case-insensitively, ignoring spaces (apps show secrets in groups)
/// and trailing `=` padding. Refuses other characters, impossible lengths
/// and non-zero leftover bits (a non-canonical encoding).
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, AuthnError> {
    let trimmed = text.trim_end_matches('=');
    if trimmed.contains('=') {
        return Err(AuthnError::InvalidBase32(
            "'=' may only appear as trailing padding",
        ));
    }
    let mut out = Vec::with_capacity(trimmed.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    let mut symbols: usize = 0;
    for c in trimmed.bytes() {
        if c == b' ' {
            continue;
        }
        let value = symbol_value(c).ok_or(AuthnError::InvalidBase32(
            "only letters A-Z and digits 2-7 are allowed",
        ))?;
        symbols += 1;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).unwrap_or(0));
        }
        buffer &= (1 << bits) - 1;
    }
    // 8 symbols carry 5 bytes; a group may end after 2, 4, 5 or 7 symbols.
    if matches!(symbols % 8, 1 | 3 | 6) {
        return Err(AuthnError::InvalidBase32("impossible length (truncated?)"));
    }
    if buffer != 0 {
        return Err(AuthnError::InvalidBase32(
            "non-zero trailing bits (not canonical)",
        ));
    }
    Ok(out)
}

fn symbol_value(c: u8) -> Option<u32> {
    match c.to_ascii_uppercase() {
        u @ b'A'..=b'Z' => Some(u32::from(u - b'A')),
        d @ b'2'..=b'7' => Some(u32::from(d - b'2') + 26),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;

    /// RFC 4648 §10 test vectors (padding stripped).
    const VECTORS: &[(&str, &str)] = &[
        ("", ""),
        ("f", "MY"),
        ("fo", "MZXQ"),
        ("foo", "MZXW6"),
        ("foob", "MZXW6YQ"),
        ("fooba", "MZXW6YTB"),
        ("foobar", "MZXW6YTBOI"),
    ];

    #[test]
    fn rfc4648_vectors() {
        for (plain, encoded) in VECTORS {
            assert_eq!(encode(plain.as_bytes()), *encoded);
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn decode_accepts_padding_lowercase_and_spaces() {
        assert_eq!(decode("MZXW6YQ=").unwrap(), b"foob");
        assert_eq!(decode("mzxw 6ytb oi======").unwrap(), b"foobar");
    }

    #[test]
    fn round_trip_all_lengths() {
        let data: Vec<u8> = (0..=255u8).collect();
        for n in 0..40 {
            assert_eq!(decode(&encode(&data[..n])).unwrap(), &data[..n]);
        }
    }

    #[test]
    fn decode_rejects_garbage() {
        for bad in [
            "M", "MZX", "MZXW6Y", "MZ=XQ", "MZ0Q", "MZ1Q", "MZ8Q", "MZ-Q", "MZXQé", "MZ",
        ] {
            assert!(decode(bad).is_err(), "{bad:?} decoded");
        }
        // "MZ" is non-canonical only if trailing bits are set: "MY" is canonical.
        assert!(decode("MY").is_ok());
    }
}
