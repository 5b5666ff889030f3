//! Opening a raw byte stream to a node through the proxy: an HTTPS request
//! with the user's client certificate that the proxy upgrades into a
//! spliced connection to the node (over the node's reverse tunnel). The
//! SSH session inside is end to end between the client and the node.

use std::sync::Arc;

use keygate_tls::{CertificateDer, PemObject, PrivateKeyDer, rustls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::{ClientError, Profile};

/// Largest HTTP response head accepted before the upgrade.
const MAX_HEAD: usize = 16 * 1024;

/// Percent-encodes a query value.
pub fn query_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Connects to `node` (name or id) through the profile's proxy.
pub async fn connect_node(
    profile: &Profile,
    node: &str,
    port: u16,
) -> Result<TlsStream<TcpStream>, ClientError> {
    let ca_pem = std::fs::read(profile.ca_path()).map_err(|e| {
        ClientError::Profile(format!(
            "{}: {e}; run kg login",
            profile.ca_path().display()
        ))
    })?;
    let cert_pem = std::fs::read(profile.x509_path()).map_err(|e| {
        ClientError::Profile(format!(
            "{}: {e}; run kg login",
            profile.x509_path().display()
        ))
    })?;
    let ca = CertificateDer::from_pem_slice(&ca_pem)
        .map_err(|e| ClientError::Material(format!("host CA: {e}")))?;
    let cert = CertificateDer::from_pem_slice(&cert_pem)
        .map_err(|e| ClientError::Material(format!("certificate: {e}")))?;
    let key = PrivateKeyDer::Pkcs8(profile.key()?.pkcs8_der().to_vec().into());
    let mut cfg = keygate_tls::client_config(&[ca], Some((vec![cert], key)))
        .map_err(|e| ClientError::Material(e.to_string()))?;
    // The upgrade is an HTTP/1.1 mechanism.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let host = profile
        .proxy
        .rsplit_once(':')
        .map_or(profile.proxy.as_str(), |(h, _)| h)
        .to_owned();
    let server_name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| ClientError::Material(format!("proxy host {host:?}: {e}")))?;
    let tcp = TcpStream::connect(&profile.proxy)
        .await
        .map_err(|e| ClientError::Io(format!("cannot reach the proxy {}: {e}", profile.proxy)))?;
    let _ = tcp.set_nodelay(true);
    let mut tls = TlsConnector::from(Arc::new(cfg))
        .connect(server_name, tcp)
        .await
        .map_err(|e| {
            ClientError::Io(format!(
                "TLS with the proxy {} failed: {e}; run kg login",
                profile.proxy
            ))
        })?;
    let req = format!(
        "GET /v1/connect?node={}&port={port} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: keygate-ssh\r\n\r\n",
        query_escape(node),
        profile.proxy
    );
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| ClientError::Io(format!("proxy: {e}")))?;
    // Read the response head byte by byte: nothing after it may be
    // consumed, it belongs to the SSH stream.
    let mut head = Vec::with_capacity(512);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(ClientError::Io(
                "the proxy sent an oversized response".into(),
            ));
        }
        let b = tls
            .read_u8()
            .await
            .map_err(|e| ClientError::Io(format!("proxy closed the connection: {e}")))?;
        head.push(b);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status == "101" {
        return Ok(tls);
    }
    // Error bodies are JSON {error, message}; read what is there.
    let mut body = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tls.read(&mut body))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    let text = String::from_utf8_lossy(body.get(..n).unwrap_or(&[])).to_string();
    let message = serde_json::from_str::<keygate_api::ErrorBody>(text.trim())
        .map(|b| b.message)
        .unwrap_or(text);
    let code = if matches!(status, "401" | "403" | "404") {
        "denied"
    } else {
        "error"
    };
    Err(ClientError::Connect {
        denied: code == "denied",
        message: format!("cannot reach node {node:?}: {}", message.trim()),
    })
}
