//! RFC 5424 syslog messages for audit events and checkpoints, framed by
//! RFC 6587 octet counting. Pure: bytes out, no sockets.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [keygate@59571 …] MSG`,
//! facility `auth` (4), severity from the code's last letter, MSGID the
//! event name, the well-known fields repeated as structured data (so a
//! SIEM can filter without parsing JSON), MSG the exact stored event JSON.

use keygate_audit_model::{ChainRecord, SignedCheckpoint};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::batch::checkpoint_json;

/// The SD-ID of our structured-data element (`name@private-enterprise-number`).
pub const SD_ID: &str = "keygate@59571";
/// Facility `auth` (security/authorization messages).
const FACILITY_AUTH: u8 = 4;
/// Severities (RFC 5424 §6.2.1).
const SEV_ERROR: u8 = 3;
const SEV_WARNING: u8 = 4;
const SEV_NOTICE: u8 = 5;
const SEV_INFO: u8 = 6;
/// RFC 5424 limits on MSGID and PARAM-NAME.
const MAX_MSGID: usize = 32;
/// The RFC's NILVALUE.
const NIL: &str = "-";

/// The header fields that stay the same for every message.
#[derive(Debug, Clone)]
pub struct Header {
    /// HOSTNAME (validated printable ASCII, or `-`).
    pub hostname: String,
    /// APP-NAME (validated printable ASCII).
    pub app_name: String,
}

/// Event fields repeated as SD-PARAMs, in this order; `actor` is split
/// into `actor`, `actor_kind` and `actor_via`.
const SD_FIELDS: &[&str] = &[
    "id",
    "event",
    "code",
    "user",
    "login",
    "node",
    "session_id",
    "remote_addr",
    "cluster",
    "success",
    "error",
];

/// The syslog message (without framing) for one event record.
pub fn event_message(h: &Header, record: &ChainRecord) -> Vec<u8> {
    let obj: Map<String, Value> = serde_json::from_slice(&record.bytes).unwrap_or_default();
    let str_of = |k: &str| obj.get(k).and_then(Value::as_str);
    let severity = severity_of(str_of("code").unwrap_or(""));
    let timestamp = str_of("time").map_or_else(|| NIL.to_owned(), timestamp);
    let msgid = msgid(str_of("event").unwrap_or(""));
    let mut params = vec![("seq", record.seq.to_string())];
    for key in SD_FIELDS {
        if let Some(v) = obj.get(*key).and_then(scalar) {
            params.push((key, v));
        }
    }
    if let Some(Value::Object(actor)) = obj.get("actor") {
        for (key, name) in [
            ("actor", "name"),
            ("actor_kind", "kind"),
            ("actor_via", "via"),
        ] {
            if let Some(v) = actor.get(name).and_then(scalar) {
                params.push((key, v));
            }
        }
    }
    message(h, severity, &timestamp, &msgid, &params, &record.bytes)
}

/// The syslog message for a signed checkpoint: MSGID `checkpoint`, the
/// claim in structured data, the signed checkpoint JSON as MSG.
pub fn checkpoint_message(h: &Header, cp: &SignedCheckpoint) -> Vec<u8> {
    let c = &cp.checkpoint;
    let params = [
        ("kind", "checkpoint".to_owned()),
        ("seq", c.seq.to_string()),
        ("hash", c.hash.clone()),
        ("cluster", c.cluster.clone()),
    ];
    let ts = c
        .time
        .format(&Rfc3339)
        .map_or_else(|_| NIL.to_owned(), |t| timestamp(&t));
    message(
        h,
        SEV_INFO,
        &ts,
        "checkpoint",
        &params,
        &checkpoint_json(cp),
    )
}

/// Appends `LEN SP MSG` (RFC 6587 §3.4.1) to `out`.
pub fn frame(msg: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(msg.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(msg);
}

/// Escapes a PARAM-VALUE (RFC 5424 §6.3.3: `"`, `\` and `]`).
pub fn escape_param_value(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// Severity from the code's last letter: `I`nfo, `W`arning, `E`rror
/// (anything else is a notice, so it is not lost among the infos).
pub fn severity_of(code: &str) -> u8 {
    match code.chars().last() {
        Some('I') => SEV_INFO,
        Some('W') => SEV_WARNING,
        Some('E') => SEV_ERROR,
        _ => SEV_NOTICE,
    }
}

/// MSGID: 1..=32 printable ASCII characters; anything else becomes `_`.
pub fn msgid(event: &str) -> String {
    let id: String = event
        .chars()
        .take(MAX_MSGID)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if id.is_empty() { NIL.to_owned() } else { id }
}

/// An RFC 3339 time as RFC 5424 wants it: UTC, `T` and `Z` upper case, at
/// most 6 fractional digits. Unparseable times become NILVALUE.
pub fn timestamp(rfc3339: &str) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    OffsetDateTime::parse(rfc3339, &Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&fmt).ok())
        .unwrap_or_else(|| NIL.to_owned())
}

/// A JSON scalar as an SD value (objects, arrays and null are left to MSG).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Assembles one message.
fn message(
    h: &Header,
    severity: u8,
    timestamp: &str,
    msgid: &str,
    params: &[(&str, String)],
    msg: &[u8],
) -> Vec<u8> {
    let pri = FACILITY_AUTH * 8 + severity;
    let mut sd = format!("[{SD_ID}");
    for (name, value) in params {
        sd.push(' ');
        sd.push_str(name);
        sd.push_str("=\"");
        sd.push_str(&escape_param_value(value));
        sd.push('"');
    }
    sd.push(']');
    let mut out = format!(
        "<{pri}>1 {timestamp} {} {} - {msgid} {sd} ",
        h.hostname, h.app_name
    )
    .into_bytes();
    out.extend_from_slice(msg);
    out
}

#[cfg(test)]
#[path = "rfc5424_tests.rs"]
mod tests;
