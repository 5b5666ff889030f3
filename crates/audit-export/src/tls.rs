//! TLS for syslog (RFC 5425 transport with RFC 6587 framing): the
//! receiver's certificate must chain to the configured CA file and name
//! the server. Pass the system bundle (e.g.
//! `/etc/ssl/certs/ca-certificates.crt`) for a receiver with a public CA.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::ExportError;

/// A connector trusting only the CAs in `ca_file`.
pub fn connector(exporter: &str, ca_file: &Path) -> Result<TlsConnector, ExportError> {
    let pem = std::fs::read(ca_file).map_err(|source| ExportError::File {
        exporter: exporter.to_owned(),
        path: ca_file.to_owned(),
        source,
    })?;
    let no_certs = || {
        ExportError::config(
            exporter,
            format!("tls.ca_file {} holds no PEM certificate", ca_file.display()),
        )
    };
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|_| no_certs())?;
    let mut roots = rustls::RootCertStore::empty();
    // A system bundle may hold a few certificates rustls cannot use; the
    // rest still count, and an unusable file is caught by the count.
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(no_certs());
    }
    // An explicit provider: no process-wide default needs installing.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ExportError::config(exporter, format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The name the receiver's certificate must carry: `server_name` if
/// given, else the host of `addr` (`host:port`, `[v6]:port`).
pub fn server_name(
    exporter: &str,
    addr: &str,
    server_name: Option<&str>,
) -> Result<ServerName<'static>, ExportError> {
    let host = match server_name {
        Some(n) => n,
        None => {
            let (host, _) = addr.rsplit_once(':').unwrap_or((addr, ""));
            host.trim_start_matches('[').trim_end_matches(']')
        }
    };
    ServerName::try_from(host.to_owned()).map_err(|_| {
        ExportError::config(
            exporter,
            format!("{host:?} is not a valid TLS server name (a DNS name or IP address)"),
        )
    })
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
    fn server_names_come_from_the_address_or_the_setting() {
        let n = |addr, name| server_name("s", addr, name).map(|n| n.to_str().into_owned());
        assert_eq!(
            n("siem.example.com:6514", None).unwrap(),
            "siem.example.com"
        );
        assert_eq!(n("[::1]:6514", None).unwrap(), "::1");
        assert_eq!(
            n("10.0.0.1:6514", Some("siem.internal")).unwrap(),
            "siem.internal"
        );
        let err = n("h:1", Some("bad name!")).unwrap_err().to_string();
        assert!(err.contains("not a valid TLS server name"), "{err}");
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        for bad in [
            "",
            "not pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            std::fs::write(&p, bad).unwrap();
            let err = connector("s", &p).err().unwrap().to_string();
            assert!(err.contains("no PEM certificate"), "{bad:?}: {err}");
        }
        let err = connector("s", &dir.path().join("missing")).err().unwrap();
        assert!(matches!(err, ExportError::File { .. }), "{err}");
    }
}
