//! Exporter settings as written in `keygate.yaml`, and their validation.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ExportError;

/// Longest exporter name (it names the cursor file).
pub const MAX_NAME_LEN: usize = 64;
/// Most events one delivery carries (syslog and stdout always use this).
pub const MAX_BATCH: usize = 500;
/// Events per webhook request unless configured.
pub const DEFAULT_WEBHOOK_BATCH: usize = 100;
/// RFC 5424 limits on APP-NAME and HOSTNAME.
const MAX_APP_NAME: usize = 48;
const MAX_HOSTNAME: usize = 255;

/// One exporter: where a copy of every audit event (and every signed
/// checkpoint) goes. `type` selects the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ExporterConfig {
    /// Syslog, RFC 5424 messages over TCP with RFC 6587 octet counting.
    Syslog(SyslogConfig),
    /// HTTPS POSTs of JSON batches signed with HMAC-SHA256.
    Webhook(WebhookConfig),
    /// One JSON line per event on standard output.
    Stdout(StdoutConfig),
}

/// Settings of a syslog exporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// Unique name; the cursor is kept in `<state_dir>/<name>.cursor`.
    pub name: String,
    /// The receiver, `host:port` (`[v6]:port` for IPv6 literals).
    pub addr: String,
    /// RFC 5424 APP-NAME.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// RFC 5424 HOSTNAME; this machine's host name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Speak TLS to the receiver (RFC 5425); plain TCP when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SyslogTls>,
}

/// TLS settings of a syslog exporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTls {
    /// PEM file of the CA(s) the receiver's certificate must chain to
    /// (the system bundle, e.g. `/etc/ssl/certs/ca-certificates.crt`, for
    /// a public CA).
    pub ca_file: PathBuf,
    /// The name the receiver's certificate must carry; the host of
    /// `addr` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// Settings of a webhook exporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Unique name; the cursor is kept in `<state_dir>/<name>.cursor`.
    pub name: String,
    /// Where batches are POSTed: `https://…` (plain `http://` only to a
    /// loopback host).
    pub url: String,
    /// File holding the HMAC-SHA256 key (trailing newline ignored; at
    /// least 16 bytes).
    pub secret_file: PathBuf,
    /// PEM file of the CA(s) to trust *instead of* the system roots, for
    /// a receiver with a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Most events per request (1..=500).
    #[serde(default = "default_batch")]
    pub batch: usize,
}

/// Settings of a stdout exporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    /// Unique name; the cursor is kept in `<state_dir>/<name>.cursor`.
    pub name: String,
}

/// What kind an exporter is (for status output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExporterKind {
    /// [`ExporterConfig::Syslog`].
    Syslog,
    /// [`ExporterConfig::Webhook`].
    Webhook,
    /// [`ExporterConfig::Stdout`].
    Stdout,
}

impl std::fmt::Display for ExporterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Syslog => "syslog",
            Self::Webhook => "webhook",
            Self::Stdout => "stdout",
        })
    }
}

fn default_app_name() -> String {
    "keygate".to_owned()
}

fn default_batch() -> usize {
    DEFAULT_WEBHOOK_BATCH
}

// === impl ExporterConfig ===

impl ExporterConfig {
    /// The exporter's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Syslog(c) => &c.name,
            Self::Webhook(c) => &c.name,
            Self::Stdout(c) => &c.name,
        }
    }

    /// The exporter's kind.
    pub fn kind(&self) -> ExporterKind {
        match self {
            Self::Syslog(_) => ExporterKind::Syslog,
            Self::Webhook(_) => ExporterKind::Webhook,
            Self::Stdout(_) => ExporterKind::Stdout,
        }
    }

    /// Checks one exporter's settings (files are read later, by
    /// [`ExportRunner::new`](crate::ExportRunner::new)).
    pub fn validate(&self) -> Result<(), ExportError> {
        let name = self.name();
        validate_name(name)?;
        match self {
            Self::Syslog(c) => {
                validate_addr(name, &c.addr)?;
                validate_header_field(name, "app_name", &c.app_name, MAX_APP_NAME)?;
                if let Some(h) = &c.hostname {
                    validate_header_field(name, "hostname", h, MAX_HOSTNAME)?;
                }
                if let Some(tls) = &c.tls {
                    if tls.ca_file.as_os_str().is_empty() {
                        return Err(ExportError::config(name, "tls.ca_file is empty"));
                    }
                    crate::tls::server_name(name, &c.addr, tls.server_name.as_deref())?;
                }
                Ok(())
            }
            Self::Webhook(c) => {
                validate_url(name, &c.url)?;
                if !(1..=MAX_BATCH).contains(&c.batch) {
                    return Err(ExportError::config(
                        name,
                        format!("batch is {}; it must be 1..={MAX_BATCH}", c.batch),
                    ));
                }
                if c.secret_file.as_os_str().is_empty() {
                    return Err(ExportError::config(name, "secret_file is empty"));
                }
                Ok(())
            }
            Self::Stdout(_) => Ok(()),
        }
    }
}

/// Checks every exporter and that their names are unique (each owns a
/// cursor file).
pub fn validate_all(configs: &[ExporterConfig]) -> Result<(), ExportError> {
    let mut seen = HashSet::new();
    for c in configs {
        c.validate()?;
        if !seen.insert(c.name()) {
            return Err(ExportError::config(
                c.name(),
                "two exporters have this name; names must be unique (each keeps its own cursor)",
            ));
        }
    }
    Ok(())
}

/// Names become file names: lowercase letters, digits, `-` and `_`.
fn validate_name(name: &str) -> Result<(), ExportError> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.len() > MAX_NAME_LEN || !first_ok || !name.chars().all(ok_char) {
        return Err(ExportError::config(
            name,
            format!(
                "the name must be 1..={MAX_NAME_LEN} lowercase letters, digits, '-' or '_', starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// `host:port`, with a non-zero port.
fn validate_addr(name: &str, addr: &str) -> Result<(), ExportError> {
    let bad = |why: &str| {
        ExportError::config(
            name,
            format!(
                "addr {addr:?} {why}; write host:port, e.g. siem.example.com:6514 or [::1]:514"
            ),
        )
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
    let port: u16 = port.parse().map_err(|_| bad("has no valid port"))?;
    if port == 0 {
        return Err(bad("has port 0"));
    }
    let host = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .ok_or_else(|| bad("has an unclosed '['"))?,
        None if host.contains(':') => return Err(bad("has an IPv6 address without brackets")),
        None => host,
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("has no valid host"));
    }
    Ok(())
}

/// RFC 5424 header fields: 1..=max printable US-ASCII characters, no
/// spaces.
fn validate_header_field(
    name: &str,
    field: &str,
    value: &str,
    max: usize,
) -> Result<(), ExportError> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(ExportError::config(
            name,
            format!(
                "{field} {value:?} must be 1..={max} printable ASCII characters without spaces"
            ),
        ));
    }
    Ok(())
}

/// `https://`, or `http://` to a loopback host (a receiver on the same
/// machine, e.g. a log shipper).
fn validate_url(name: &str, url: &str) -> Result<(), ExportError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| ExportError::config(name, format!("url {url:?} does not parse: {e}")))?;
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(ExportError::config(
            name,
            format!("url {url:?} has no host"),
        ));
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(ExportError::config(
            name,
            format!(
                "url {url:?} is plain http; use https:// (http is allowed only to a loopback host)"
            ),
        )),
        other => Err(ExportError::config(
            name,
            format!("url {url:?} has scheme {other:?}; use https://"),
        )),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
