//! Reading `ssh-keygen -L` output, so tests can assert what OpenSSH itself
//! sees in a certificate.

use std::time::Duration;

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::{Result, TestkitError};

/// How ssh-keygen prints times (`strftime("%Y-%m-%dT%H:%M:%S")`).
const TIME_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

/// A certificate as `ssh-keygen -L` describes it.
///
/// Times are as printed, in the time zone ssh-keygen ran in;
/// [`crate::ssh_keygen_l`] runs it with `TZ=UTC`, which the `*_utc`
/// accessors assume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertListing {
    /// The `Type:` value, e.g.
    /// `ssh-ed25519-cert-v01@openssh.com user certificate`.
    pub cert_type: String,
    /// The `Key ID:` value without its quotes.
    pub key_id: String,
    /// The serial number.
    pub serial: u64,
    /// Start of validity; `None` when unbounded.
    pub valid_from: Option<PrimitiveDateTime>,
    /// End of validity; `None` when unbounded ("forever").
    pub valid_to: Option<PrimitiveDateTime>,
    /// The listed principals (logins), in order.
    pub principals: Vec<String>,
    /// Critical option lines (`force-command …`, `source-address …`).
    pub critical_options: Vec<String>,
    /// Extension lines: the name, then a value for ours
    /// (`roles@keygate ["admin"]`).
    pub extensions: Vec<String>,
}

/// The multi-line sections of a listing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Not inside a list.
    None,
    /// After `Principals:`.
    Principals,
    /// After `Critical Options:`.
    Critical,
    /// After `Extensions:`.
    Extensions,
}

impl CertListing {
    /// Parses the output of `ssh-keygen -L -f CERT`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut cert_type = None;
        let mut key_id = None;
        let mut serial = None;
        let mut validity = None;
        let mut principals = Vec::new();
        let mut critical_options = Vec::new();
        let mut extensions = Vec::new();
        let mut section = Section::None;
        // Indentation of the current list heading; its items are deeper.
        let mut heading_indent = 0;

        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let indent = raw.len() - raw.trim_start().len();
            if section != Section::None && indent > heading_indent {
                let list = match section {
                    Section::Principals => &mut principals,
                    Section::Critical => &mut critical_options,
                    Section::Extensions => &mut extensions,
                    Section::None => continue,
                };
                list.push(line.to_owned());
                continue;
            }
            section = Section::None;
            heading_indent = indent;
            let Some((key, value)) = line.split_once(':') else {
                return Err(bad(format!("unexpected line {line:?}")));
            };
            let value = value.trim();
            match key {
                "Type" => cert_type = Some(value.to_owned()),
                "Key ID" => key_id = Some(unquote(value)?),
                "Serial" => {
                    serial = Some(
                        value
                            .parse::<u64>()
                            .map_err(|e| bad(format!("serial {value:?}: {e}")))?,
                    )
                }
                "Valid" => validity = Some(parse_validity(value)?),
                "Principals" => section = list_section(Section::Principals, value)?,
                "Critical Options" => section = list_section(Section::Critical, value)?,
                "Extensions" => section = list_section(Section::Extensions, value)?,
                // The first line names the file; the rest we do not need.
                _ => {}
            }
        }
        let cert_type =
            cert_type.ok_or_else(|| bad("no Type: line; is this a certificate?".into()))?;
        let (valid_from, valid_to) = validity.ok_or_else(|| bad("no Valid: line".into()))?;
        Ok(Self {
            cert_type,
            key_id: key_id.ok_or_else(|| bad("no Key ID: line".into()))?,
            serial: serial.ok_or_else(|| bad("no Serial: line".into()))?,
            valid_from,
            valid_to,
            principals,
            critical_options,
            extensions,
        })
    }

    /// Length of the validity window; `None` when either end is unbounded.
    pub fn validity(&self) -> Option<Duration> {
        let span = self.valid_to? - self.valid_from?;
        Duration::try_from(span).ok()
    }

    /// Start of validity read as UTC.
    pub fn valid_from_utc(&self) -> Option<OffsetDateTime> {
        self.valid_from.map(PrimitiveDateTime::assume_utc)
    }

    /// End of validity read as UTC.
    pub fn valid_to_utc(&self) -> Option<OffsetDateTime> {
        self.valid_to.map(PrimitiveDateTime::assume_utc)
    }

    /// Whether an extension of that name is present.
    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions
            .iter()
            .any(|e| e.split_whitespace().next() == Some(name))
    }
}

fn bad(reason: String) -> TestkitError {
    TestkitError::Listing { reason }
}

/// A list header is followed by items on later lines, or says `(none)`.
fn list_section(section: Section, rest: &str) -> Result<Section> {
    match rest {
        "" => Ok(section),
        "(none)" => Ok(Section::None),
        other => Err(bad(format!(
            "unexpected text {other:?} after a list heading"
        ))),
    }
}

/// `"admin"` → `admin`.
fn unquote(value: &str) -> Result<String> {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .map(str::to_owned)
        .ok_or_else(|| bad(format!("Key ID {value:?} is not quoted")))
}

/// The forms OpenSSH prints: `forever`, `from A to B`, `after A`,
/// `before B`.
fn parse_validity(value: &str) -> Result<(Option<PrimitiveDateTime>, Option<PrimitiveDateTime>)> {
    let words: Vec<&str> = value.split_whitespace().collect();
    match words.as_slice() {
        ["forever"] => Ok((None, None)),
        ["from", from, "to", to] => Ok((Some(parse_time(from)?), Some(parse_time(to)?))),
        ["after", from] => Ok((Some(parse_time(from)?), None)),
        ["before", to] => Ok((None, Some(parse_time(to)?))),
        _ => Err(bad(format!(
            "validity {value:?} is not one of: forever, from A to B, after A, before B"
        ))),
    }
}

fn parse_time(s: &str) -> Result<PrimitiveDateTime> {
    PrimitiveDateTime::parse(s, TIME_FORMAT).map_err(|e| bad(format!("time {s:?}: {e}")))
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

    const SAMPLE: &str = "/tmp/x/id_ed25519-cert.pub:
        Type: ssh-ed25519-cert-v01@openssh.com user certificate
        Public key: ED25519-CERT SHA256:4mVbTWdVd0pbVvBHTsm5sJ5rQ0f8pJQKcV2o6pQpPpo
        Signing CA: ED25519 SHA256:Zc3B1n0J0mCk8H7m8a6gqY0vJ3rXl7o3tN5qz6WQJ7Q (using ssh-ed25519)
        Key ID: \"admin\"
        Serial: 1234567890123
        Valid: from 2025-01-02T03:04:05 to 2025-01-02T04:05:05
        Principals: 
                kgt-1-0
                -keygate-internal
        Critical Options: (none)
        Extensions: 
                permit-pty
                roles@keygate [\"admin\"]
";

    #[test]
    fn parses_a_user_certificate() {
        let l = CertListing::parse(SAMPLE).unwrap();
        assert_eq!(
            l.cert_type,
            "ssh-ed25519-cert-v01@openssh.com user certificate"
        );
        assert_eq!(l.key_id, "admin");
        assert_eq!(l.serial, 1_234_567_890_123);
        assert_eq!(l.principals, ["kgt-1-0", "-keygate-internal"]);
        assert!(l.critical_options.is_empty());
        assert!(l.has_extension("permit-pty") && l.has_extension("roles@keygate"));
        assert!(!l.has_extension("permit-X11-forwarding"));
        assert_eq!(l.validity(), Some(Duration::from_secs(3660)));
        assert_eq!(l.valid_to_utc().unwrap().unix_timestamp(), 1_735_790_705);
    }

    #[test]
    fn parses_unbounded_validity() {
        for (text, from, to) in [
            ("forever", false, false),
            ("after 2025-01-02T03:04:05", true, false),
            ("before 2025-01-02T03:04:05", false, true),
        ] {
            let l = CertListing::parse(
                &SAMPLE.replace("from 2025-01-02T03:04:05 to 2025-01-02T04:05:05", text),
            )
            .unwrap();
            assert_eq!(
                (l.valid_from.is_some(), l.valid_to.is_some()),
                (from, to),
                "{text}"
            );
            assert_eq!(l.validity(), None);
        }
    }

    #[test]
    fn rejects_malformed_listings() {
        let cases = [
            ("", "Type"),
            ("just some words", "unexpected line"),
            ("ssh-keygen: not a certificate", "Type"),
            (
                &SAMPLE.replace(
                    "        Type: ssh-ed25519-cert-v01@openssh.com user certificate\n",
                    "",
                ),
                "Type",
            ),
            (&SAMPLE.replace("\"admin\"", "admin"), "not quoted"),
            (&SAMPLE.replace("1234567890123", "-1"), "serial"),
            (
                &SAMPLE.replace("to 2025-01-02T04:05:05", "until tomorrow"),
                "validity",
            ),
            (
                &SAMPLE.replace("2025-01-02T04:05:05", "2025-13-02T04:05:05"),
                "time",
            ),
            (
                &SAMPLE.replace(
                    "        Valid: from 2025-01-02T03:04:05 to 2025-01-02T04:05:05\n",
                    "",
                ),
                "Valid",
            ),
            (
                &SAMPLE.replace("Critical Options: (none)", "Critical Options: surprise"),
                "list heading",
            ),
        ];
        for (text, needle) in cases {
            let err = CertListing::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle:?} not in {err}");
        }
    }

    #[test]
    fn backwards_window_has_no_length() {
        let l = CertListing::parse(&SAMPLE.replace(
            "from 2025-01-02T03:04:05 to 2025-01-02T04:05:05",
            "from 2025-01-02T04:05:05 to 2025-01-02T03:04:05",
        ))
        .unwrap();
        assert_eq!(l.validity(), None);
    }
}
