//! The webhook sink: each batch is one `POST` of
//! `{"events":[…],"checkpoints":[…]}`, signed with HMAC-SHA256 over the
//! exact body; any 2xx answer acknowledges the batch.
//!
//! Headers: `Content-Type: application/json`,
//! `X-Keygate-Signature: sha256=<hex>`, and `X-Keygate-Batch:
//! <first>-<last>` (event seqs, so a receiver can drop a batch it already
//! has; a batch of checkpoints only carries `<cursor+1>-<cursor>`, an empty
//! range).

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ExportError;
use crate::batch::{Batch, checkpoint_json};
use crate::config::WebhookConfig;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Keygate-Signature";
/// Header carrying the batch's seq range.
pub const BATCH_HEADER: &str = "X-Keygate-Batch";
/// Shortest accepted HMAC key.
const MIN_SECRET: usize = 16;
/// Largest secret file read (a key, not a document).
const MAX_SECRET_FILE: u64 = 4096;
/// How long one request may take, end to end.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a refusal's body is quoted in the error.
const MAX_ERROR_BODY: usize = 200;

/// An HMAC key; never printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Reads a key file: its bytes minus trailing CR/LF, at least 16 bytes.
    pub fn read(exporter: &str, path: &Path) -> Result<Self, ExportError> {
        let file_err = |source| ExportError::File {
            exporter: exporter.to_owned(),
            path: path.to_owned(),
            source,
        };
        let len = std::fs::metadata(path).map_err(file_err)?.len();
        if len > MAX_SECRET_FILE {
            return Err(ExportError::config(
                exporter,
                format!(
                    "secret_file {} is {len} bytes; expected a key of at most {MAX_SECRET_FILE}",
                    path.display()
                ),
            ));
        }
        let mut key = std::fs::read(path).map_err(file_err)?;
        while key.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
            key.pop();
        }
        if key.len() < MIN_SECRET {
            return Err(ExportError::config(
                exporter,
                format!(
                    "secret_file {} holds {} bytes; use at least {MIN_SECRET} random bytes (e.g. openssl rand -hex 32)",
                    path.display(),
                    key.len()
                ),
            ));
        }
        Ok(Self(key))
    }

    /// A key from bytes.
    #[cfg(test)]
    pub fn from_bytes(key: Vec<u8>) -> Self {
        Self(key)
    }

    /// `sha256=<hex HMAC-SHA256(key, body)>`.
    pub fn sign(&self, body: &[u8]) -> String {
        // HMAC accepts keys of any length; the error arm cannot happen.
        match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(mut mac) => {
                mac.update(body);
                format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
            }
            Err(_) => String::new(),
        }
    }
}

/// Sends batches to one webhook.
#[derive(Debug)]
pub struct WebhookSink {
    /// The URL POSTed to.
    url: String,
    /// Signs every body.
    secret: Secret,
    /// Keeps connections (and TLS sessions) between batches.
    client: reqwest::Client,
}

impl WebhookSink {
    /// Reads the secret (and CA) files and builds the HTTPS client.
    pub fn new(cfg: &WebhookConfig) -> Result<Self, ExportError> {
        let secret = Secret::read(&cfg.name, &cfg.secret_file)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // A redirect is a misconfiguration to fix, not to follow.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).map_err(|source| ExportError::File {
                exporter: cfg.name.clone(),
                path: ca.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    ExportError::config(
                        &cfg.name,
                        format!("ca_file {} holds no PEM certificate", ca.display()),
                    )
                })?;
            builder = builder.tls_certs_only(certs);
        }
        let client = builder.build().map_err(|e| {
            ExportError::config(
                &cfg.name,
                format!("cannot build the HTTPS client: {}", chain(&e)),
            )
        })?;
        Ok(Self {
            url: cfg.url.clone(),
            secret,
            client,
        })
    }

    /// POSTs the batch; `Ok` only on a 2xx answer.
    pub async fn send(&mut self, batch: &Batch, cursor: u64) -> Result<(), ExportError> {
        let body = body(batch);
        let range = match batch.seq_range() {
            Some((first, last)) => format!("{first}-{last}"),
            None => format!("{}-{cursor}", cursor.saturating_add(1)),
        };
        let answer = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, self.secret.sign(&body))
            .header(BATCH_HEADER, range)
            .body(body)
            .send()
            .await
            .map_err(|e| ExportError::Http {
                url: self.url.clone(),
                reason: chain(&e),
            })?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let text = answer.text().await.unwrap_or_default();
        let mut cut = text.trim().chars().take(MAX_ERROR_BODY).collect::<String>();
        if cut.is_empty() {
            cut = status.canonical_reason().unwrap_or("no body").to_owned();
        }
        Err(ExportError::Rejected {
            url: self.url.clone(),
            status: status.as_u16(),
            body: cut,
        })
    }
}

/// `{"events":[<exact stored bytes>,…],"checkpoints":[…]}`; built by hand
/// so every event is exactly the stored JSON, never re-serialised.
pub fn body(batch: &Batch) -> Vec<u8> {
    let mut out = b"{\"events\":[".to_vec();
    for (i, r) in batch.records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&r.bytes);
    }
    out.extend_from_slice(b"],\"checkpoints\":[");
    for (i, c) in batch.checkpoints.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&checkpoint_json(c));
    }
    out.extend_from_slice(b"]}");
    out
}

/// An error and its causes on one line (reqwest's own message hides the
/// cause, e.g. "connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use keygate_audit_model::{AuditEvent, EventType, seal};
    use time::macros::datetime;

    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        let s = Secret::from_bytes(b"Jefe".to_vec());
        assert_eq!(
            s.sign(b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn secret_files_are_trimmed_and_must_be_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "0123456789abcdef\r\n").unwrap();
        let s = Secret::read("w", &p).unwrap();
        assert_eq!(
            s.sign(b"x"),
            Secret::from_bytes(b"0123456789abcdef".to_vec()).sign(b"x")
        );
        std::fs::write(&p, "short\n").unwrap();
        let err = Secret::read("w", &p).unwrap_err().to_string();
        assert!(err.contains("at least 16"), "{err}");
        std::fs::write(&p, vec![b'k'; 5000]).unwrap();
        assert!(Secret::read("w", &p).is_err());
        let err = Secret::read("w", &dir.path().join("none")).unwrap_err();
        assert!(matches!(err, ExportError::File { .. }), "{err}");
    }

    #[test]
    fn body_embeds_the_exact_bytes() {
        let ev = AuditEvent::new(EventType::Exec, datetime!(2030-01-01 0:00 UTC), "id");
        let r1 = seal([0; 32], 1, &ev).unwrap();
        let r2 = seal(r1.hash, 2, &ev).unwrap();
        let batch = Batch {
            records: vec![r1.clone(), r2.clone()],
            checkpoints: vec![],
        };
        let b = body(&batch);
        let want = format!(
            "{{\"events\":[{},{}],\"checkpoints\":[]}}",
            String::from_utf8(r1.bytes).unwrap(),
            String::from_utf8(r2.bytes).unwrap()
        );
        assert_eq!(String::from_utf8(b.clone()).unwrap(), want);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["events"][1]["seq"], 2);
        assert_eq!(
            body(&Batch::default()),
            b"{\"events\":[],\"checkpoints\":[]}"
        );
    }
}
