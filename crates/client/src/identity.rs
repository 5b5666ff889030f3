//! The identity file of `kgctl auth sign`: one text file holding the
//! private key, the SSH certificate, the X.509 certificate, the host CA and
//! the proxy address. `kgctl -i FILE` and plug-ins read it; for plain
//! OpenSSH split out the key block and the certificate line (see
//! docs/quickstart.md).

use keygate_api::{ApiClient, CertsResponse};

use crate::{ClientError, ClientKey};

/// Largest identity file read.
const MAX_LEN: usize = 256 * 1024;

/// A parsed identity file.
pub struct IdentityFile {
    /// Proxy address.
    pub proxy: String,
    /// The key.
    pub key: ClientKey,
    /// OpenSSH certificate line.
    pub ssh_cert: String,
    /// X.509 certificate (PEM).
    pub x509_pem: String,
    /// Host CA certificate (PEM).
    pub host_ca_pem: String,
    /// Host CA SSH keys.
    pub host_ca_ssh: Vec<String>,
}

impl std::fmt::Debug for IdentityFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityFile")
            .field("proxy", &self.proxy)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl IdentityFile {
    /// Renders the file (the caller writes it 0600).
    pub fn render(
        proxy: &str,
        key: &ClientKey,
        certs: &CertsResponse,
    ) -> Result<String, ClientError> {
        let mut out = format!(
            "# Keygate identity file for {:?} on cluster {:?}, valid until {}.\n# Keep it secret: it is a credential.\n# proxy: {proxy}\n",
            certs.user, certs.cluster, certs.valid_before
        );
        out.push_str(&key.to_openssh()?);
        out.push_str(certs.ssh_cert.trim());
        out.push('\n');
        out.push_str("# x509\n");
        out.push_str(&certs.x509_cert_pem);
        out.push_str("# host-ca\n");
        out.push_str(&certs.host_ca_pem);
        for k in &certs.host_ca_ssh {
            out.push_str(&format!("@cert-authority * {}\n", k.trim()));
        }
        Ok(out)
    }

    /// An API client authenticated by this identity.
    pub fn client(&self) -> Result<ApiClient, ClientError> {
        crate::trust::client_with(
            &self.proxy,
            self.host_ca_pem.as_bytes(),
            self.x509_pem.as_bytes(),
            &self.key.pkcs8_der(),
        )
    }
}

fn block<'a>(text: &'a str, begin: &str, end: &str, after: &str) -> Option<&'a str> {
    let from = text.find(after)? + after.len();
    let rest = text.get(from..)?;
    let start = rest.find(begin)?;
    let stop = rest.get(start..)?.find(end)? + start + end.len();
    rest.get(start..stop)
}

/// Parses an identity file; errors name what is missing.
pub fn parse_identity_file(text: &str) -> Result<IdentityFile, ClientError> {
    let bad = |what: &str| {
        ClientError::Material(format!(
            "not a Keygate identity file: {what} is missing; create one with kgctl auth sign"
        ))
    };
    if text.len() > MAX_LEN {
        return Err(ClientError::Material(
            "identity file larger than 256 KiB".into(),
        ));
    }
    let proxy = text
        .lines()
        .find_map(|l| l.strip_prefix("# proxy: "))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("the proxy line"))?;
    let key_text = block(
        text,
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "-----END OPENSSH PRIVATE KEY-----",
        "",
    )
    .ok_or_else(|| bad("the private key"))?;
    let key = ClientKey::from_openssh(&format!("{key_text}\n"))?;
    let ssh_cert = text
        .lines()
        .find(|l| l.starts_with("ssh-") && l.contains("-cert-v01@openssh.com"))
        .map(str::to_owned)
        .ok_or_else(|| bad("the SSH certificate"))?;
    let x509 = block(
        text,
        "-----BEGIN CERTIFICATE-----",
        "-----END CERTIFICATE-----",
        "# x509\n",
    )
    .ok_or_else(|| bad("the X.509 certificate"))?;
    let ca = block(
        text,
        "-----BEGIN CERTIFICATE-----",
        "-----END CERTIFICATE-----",
        "# host-ca\n",
    )
    .ok_or_else(|| bad("the host CA"))?;
    let host_ca_ssh = text
        .lines()
        .filter_map(|l| l.strip_prefix("@cert-authority * "))
        .map(str::to_owned)
        .collect();
    Ok(IdentityFile {
        proxy,
        key,
        ssh_cert,
        x509_pem: format!("{x509}\n"),
        host_ca_pem: format!("{ca}\n"),
        host_ca_ssh,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for (text, needle) in [
            ("", "proxy"),
            ("# proxy: x:1\n", "private key"),
            (
                "# proxy: x:1\n-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
                "OpenSSH private key",
            ),
        ] {
            let e = parse_identity_file(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
