//! The Keygate identity extension in X.509 certificates, and reading a
//! certificate back into an [`X509Identity`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::CaError;
use crate::x509::{SystemRole, parse_cert};

/// OID of the Keygate identity extension: 1.3.6.1.4.1.59571.1.1
/// (iso.org.dod.internet.private.enterprise.59571 = Keygate, .1 = X.509
/// extensions, .1 = identity).
///
/// The private-enterprise number is Keygate's placeholder arc until an IANA
/// PEN is registered; changing it means old certificates stop being read,
/// which is acceptable for certificates that live hours.
///
/// The extension value is a DER OCTET STRING holding UTF-8 JSON
/// `{"roles":[…],"traits":{…},"system_role":null|"auth"|"proxy"|"node"|"bot"}`.
/// It is not critical: foreign TLS stacks may ignore it, Keygate never does.
pub const KEYGATE_IDENTITY_OID: [u64; 9] = [1, 3, 6, 1, 4, 1, 59571, 1, 1];

/// Upper bound on the JSON we are willing to decode from a certificate.
const MAX_EXTENSION_JSON: usize = 64 * 1024;

/// DER tag of an OCTET STRING.
const TAG_OCTET_STRING: u8 = 0x04;

/// The identity read back from a Keygate X.509 certificate. It says what
/// the certificate *claims*; whether it chains to a trusted CA is checked by
/// the TLS layer (or [`crate::verify_issued_by`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509Identity {
    /// Subject CN: the username or the service's identity name.
    pub common_name: String,
    /// Set for system identities (service certificates), `None` for users.
    pub system_role: Option<SystemRole>,
    /// Role names (users).
    pub roles: Vec<String>,
    /// Traits (users).
    pub traits: BTreeMap<String, Vec<String>>,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Serial number, lowercase hex without leading zeros (equals
    /// `format!("{serial:x}")` of the u64 it was issued with).
    pub serial_hex: String,
}

/// The JSON payload of the Keygate extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeygateExtension {
    /// Role names; empty for system identities.
    #[serde(default)]
    pub(crate) roles: Vec<String>,
    /// Traits; empty for system identities.
    #[serde(default)]
    pub(crate) traits: BTreeMap<String, Vec<String>>,
    /// The system role; `null` for users.
    #[serde(default)]
    pub(crate) system_role: Option<SystemRole>,
}

impl KeygateExtension {
    /// The extension value: DER OCTET STRING wrapping the JSON.
    pub(crate) fn to_der(&self) -> Result<Vec<u8>, CaError> {
        let json = serde_json::to_vec(self)
            .map_err(|e| CaError::crypto("encode identity extension", e))?;
        if json.len() > MAX_EXTENSION_JSON {
            return Err(CaError::request(
                "roles/traits",
                format!(
                    "identity extension would be {} bytes, limit {MAX_EXTENSION_JSON}",
                    json.len()
                ),
            ));
        }
        let mut der = vec![TAG_OCTET_STRING];
        push_der_length(&mut der, json.len());
        der.extend_from_slice(&json);
        Ok(der)
    }

    /// Decodes the extension value written by [`Self::to_der`].
    pub(crate) fn from_der(der: &[u8]) -> Result<Self, CaError> {
        let json = read_octet_string(der)?;
        if json.len() > MAX_EXTENSION_JSON {
            return Err(CaError::malformed(
                "Keygate identity extension is too large",
            ));
        }
        serde_json::from_slice(json).map_err(|e| {
            CaError::malformed(format!("Keygate identity extension is not valid JSON: {e}"))
        })
    }
}

/// Reads the identity out of a Keygate-issued certificate (user or service).
/// Certificates without exactly one Keygate extension are refused.
pub fn parse_x509_identity(cert_der: &[u8]) -> Result<X509Identity, CaError> {
    let cert = parse_cert(cert_der)?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .ok_or_else(|| CaError::malformed("certificate subject has no common name"))?
        .as_str()
        .map_err(|e| CaError::malformed(format!("common name is not a string: {e}")))?
        .to_owned();

    let oid = oid_string();
    let mut found = cert
        .extensions()
        .iter()
        .filter(|ext| ext.oid.to_id_string() == oid);
    let ext = found
        .next()
        .ok_or_else(|| CaError::malformed("certificate has no Keygate identity extension"))?;
    if found.next().is_some() {
        return Err(CaError::malformed(
            "certificate has more than one Keygate identity extension",
        ));
    }
    let payload = KeygateExtension::from_der(ext.value)?;

    Ok(X509Identity {
        common_name,
        system_role: payload.system_role,
        roles: payload.roles,
        traits: payload.traits,
        not_after: cert.validity().not_after.to_datetime(),
        serial_hex: format!("{:x}", cert.tbs_certificate.serial),
    })
}

fn oid_string() -> String {
    KEYGATE_IDENTITY_OID
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// DER definite length: short form below 128, else 0x80|n + n big-endian bytes.
fn push_der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Fits in 7 bits, so the cast cannot truncate.
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let significant: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    // At most size_of::<usize>() (8) bytes, so this fits in 7 bits.
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(&significant);
}

/// Strictly reads one DER OCTET STRING filling all of `der`.
fn read_octet_string(der: &[u8]) -> Result<&[u8], CaError> {
    let bad = |why: &str| CaError::malformed(format!("Keygate identity extension: {why}"));
    let (&tag, rest) = der.split_first().ok_or_else(|| bad("empty value"))?;
    if tag != TAG_OCTET_STRING {
        return Err(bad("value is not an OCTET STRING"));
    }
    let (&first, rest) = rest.split_first().ok_or_else(|| bad("missing length"))?;
    let (len, body) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(bad("unsupported length encoding"));
        }
        let (len_bytes, body) = rest
            .split_at_checked(n)
            .ok_or_else(|| bad("truncated length"))?;
        if len_bytes.first() == Some(&0) {
            return Err(bad("non-minimal length"));
        }
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return Err(bad("non-minimal length"));
        }
        (len, body)
    };
    if body.len() != len {
        return Err(bad("length does not match the content"));
    }
    Ok(body)
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

    #[test]
    fn oid_string_is_dotted() {
        assert_eq!(oid_string(), "1.3.6.1.4.1.59571.1.1");
    }

    #[test]
    fn extension_round_trip_short_and_long() {
        let mut traits = BTreeMap::new();
        traits.insert(
            "logins".to_owned(),
            vec!["root".to_owned(), "alice".to_owned()],
        );
        let short = KeygateExtension {
            roles: vec!["a".into()],
            traits,
            system_role: None,
        };
        let der = short.to_der().unwrap();
        assert_eq!(der[0], 0x04);
        assert!(der[1] < 0x80);
        assert_eq!(KeygateExtension::from_der(&der).unwrap(), short);

        let long = KeygateExtension {
            roles: (0..200).map(|i| format!("role-{i}")).collect(),
            traits: BTreeMap::new(),
            system_role: Some(SystemRole::Proxy),
        };
        let der = long.to_der().unwrap();
        assert_eq!(der[1], 0x82, "two-byte long-form length");
        assert_eq!(KeygateExtension::from_der(&der).unwrap(), long);
    }

    #[test]
    fn extension_json_shape() {
        let ext = KeygateExtension {
            roles: vec![],
            traits: BTreeMap::new(),
            system_role: Some(SystemRole::Proxy),
        };
        let der = ext.to_der().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&der[2..]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"roles": [], "traits": {}, "system_role": "proxy"})
        );
    }

    #[test]
    fn extension_decoder_rejects_garbage() {
        let cases: &[&[u8]] = &[
            b"",
            &[0x04],
            &[0x0c, 0x02, b'{', b'}'],
            &[0x04, 0x03, b'{', b'}'],
            &[0x04, 0x01, b'{', b'}'],
            &[0x04, 0x81, 0x02, b'{', b'}'],
            &[0x04, 0x82, 0x00],
            &[0x04, 0x80],
            &[0x04, 0x89, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            &[0x04, 0x02, 0xff, 0xfe],
            &[0x04, 0x04, b'n', b'u', b'l', b'l'],
            &[
                0x04, 0x0f, b'{', b'"', b'r', b'o', b'l', b'e', b's', b'"', b':', b'1', b'}', 0, 0,
                0, 0,
            ],
        ];
        for case in cases {
            assert!(
                matches!(
                    KeygateExtension::from_der(case),
                    Err(CaError::MalformedCertificate { .. })
                ),
                "{case:?}"
            );
        }
    }

    #[test]
    fn unknown_system_role_is_rejected() {
        let json = br#"{"system_role":"root"}"#;
        let mut der = vec![0x04, json.len() as u8];
        der.extend_from_slice(json);
        assert!(KeygateExtension::from_der(&der).is_err());
    }

    #[test]
    fn parse_identity_rejects_garbage() {
        for case in [
            &b""[..],
            b"garbage",
            &[0x30, 0x82, 0xff, 0xff],
            &[0x30, 0x00],
        ] {
            assert!(matches!(
                parse_x509_identity(case),
                Err(CaError::MalformedCertificate { .. })
            ));
        }
    }
}
