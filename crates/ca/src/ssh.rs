//! OpenSSH certificates: issuing user and host certificates through a
//! [`Signer`], and checking user/host certificates the way a Keygate node or
//! client must (russh only checks signature and validity; CA trust, type,
//! principals and critical options are checked here).

use std::cell::RefCell;
use std::collections::BTreeMap;

use russh::keys::signature;
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::{self, Algorithm, Certificate, PublicKey};
use time::OffsetDateTime;

use crate::error::CaError;
use crate::signer::{KeyAlgorithm, Signer};

/// Extensions defined by OpenSSH itself: they are flags, so their value is
/// always empty. Anything else (`roles@keygate`…) carries the caller's value.
pub const STANDARD_EXTENSIONS: [&str; 5] = [
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];

/// Nonce length; OpenSSH itself uses 32 bytes.
const NONCE_LEN: usize = 32;

/// What to put in a user certificate. See ARCHITECTURE.md §2 for how auth
/// fills these in (key id = username, principals = logins, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCertRequest {
    /// The client's public key as an OpenSSH `authorized_keys` line.
    pub public_key: String,
    /// The username; shows up in sshd logs and KRLs.
    pub key_id: String,
    /// Allowed logins; must not be empty (empty means "any" to OpenSSH).
    pub principals: Vec<String>,
    /// Start of validity (auth uses now − 60 s for clock skew).
    pub valid_after: OffsetDateTime,
    /// End of validity; must be after `valid_after`.
    pub valid_before: OffsetDateTime,
    /// Serial number, usable in KRLs; see [`random_serial`].
    pub serial: u64,
    /// Extensions by name; standard ones must have empty values.
    pub extensions: BTreeMap<String, String>,
}

/// What to put in a host certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCertRequest {
    /// The host's public key as an OpenSSH public key line.
    pub public_key: String,
    /// Identifies the host in logs (node id).
    pub key_id: String,
    /// Names clients may reach the host by (node id, registered name, …).
    pub principals: Vec<String>,
    /// Start of validity.
    pub valid_after: OffsetDateTime,
    /// End of validity; must be after `valid_after`.
    pub valid_before: OffsetDateTime,
    /// Serial number.
    pub serial: u64,
    /// Extensions by name (`role@keygate`…).
    pub extensions: BTreeMap<String, String>,
}

/// The content of an SSH certificate that passed [`verify_user_cert`] or
/// [`verify_host_cert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSshCert {
    /// Key id (username for user certs).
    pub key_id: String,
    /// Valid principals (never empty).
    pub principals: Vec<String>,
    /// Serial number.
    pub serial: u64,
    /// Start of validity.
    pub valid_after: OffsetDateTime,
    /// End of validity (exclusive).
    pub valid_before: OffsetDateTime,
    /// Extensions by name.
    pub extensions: BTreeMap<String, String>,
    /// The certified key as an OpenSSH public key line.
    pub public_key: String,
}

/// The fields shared by user and host requests.
struct CertFields<'a> {
    /// User or host.
    cert_type: CertType,
    /// See [`UserCertRequest::public_key`].
    public_key: &'a str,
    /// See [`UserCertRequest::key_id`].
    key_id: &'a str,
    /// See [`UserCertRequest::principals`].
    principals: &'a [String],
    /// See [`UserCertRequest::valid_after`].
    valid_after: OffsetDateTime,
    /// See [`UserCertRequest::valid_before`].
    valid_before: OffsetDateTime,
    /// See [`UserCertRequest::serial`].
    serial: u64,
    /// See [`UserCertRequest::extensions`].
    extensions: &'a BTreeMap<String, String>,
}

/// A random non-zero certificate serial.
pub fn random_serial() -> u64 {
    // Zero reads as "no serial" in KRLs and logs, so never hand it out.
    rand::random::<u64>().max(1)
}

/// Signs a user certificate with `signer` (an Ed25519 key); returns the
/// OpenSSH certificate line.
pub fn sign_user_cert(signer: &dyn Signer, req: &UserCertRequest) -> Result<String, CaError> {
    sign_cert(
        signer,
        &CertFields {
            cert_type: CertType::User,
            public_key: &req.public_key,
            key_id: &req.key_id,
            principals: &req.principals,
            valid_after: req.valid_after,
            valid_before: req.valid_before,
            serial: req.serial,
            extensions: &req.extensions,
        },
    )
}

/// Signs a host certificate with `signer` (an Ed25519 key); returns the
/// OpenSSH certificate line.
pub fn sign_host_cert(signer: &dyn Signer, req: &HostCertRequest) -> Result<String, CaError> {
    sign_cert(
        signer,
        &CertFields {
            cert_type: CertType::Host,
            public_key: &req.public_key,
            key_id: &req.key_id,
            principals: &req.principals,
            valid_after: req.valid_after,
            valid_before: req.valid_before,
            serial: req.serial,
            extensions: &req.extensions,
        },
    )
}

fn sign_cert(signer: &dyn Signer, f: &CertFields<'_>) -> Result<String, CaError> {
    let subject = parse_openssh_public_key(f.public_key)?;
    if f.key_id.is_empty() {
        return Err(CaError::request("key_id", "must not be empty"));
    }
    if f.principals.is_empty() {
        // An empty list means "valid for every principal" to OpenSSH.
        return Err(CaError::request(
            "principals",
            "at least one principal is required",
        ));
    }
    if f.principals.iter().any(String::is_empty) {
        return Err(CaError::request(
            "principals",
            "principals must not be empty strings",
        ));
    }
    if f.valid_before <= f.valid_after {
        return Err(CaError::request(
            "valid_before",
            "must be later than valid_after",
        ));
    }
    let valid_after = to_unix(f.valid_after, "valid_after")?;
    let valid_before = to_unix(f.valid_before, "valid_before")?;
    for (name, value) in f.extensions {
        if name.is_empty() {
            return Err(CaError::request(
                "extensions",
                "extension names must not be empty",
            ));
        }
        if STANDARD_EXTENSIONS.contains(&name.as_str()) && !value.is_empty() {
            return Err(CaError::request(
                "extensions",
                format!("{name} is a flag extension and must have an empty value"),
            ));
        }
    }

    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|e| CaError::crypto("generate nonce", e))?;
    let ssh_err = |e: ssh_key::Error| CaError::crypto("build ssh certificate", e);
    let mut builder = Builder::new(nonce, subject.key_data().clone(), valid_after, valid_before)
        .map_err(ssh_err)?;
    builder.cert_type(f.cert_type).map_err(ssh_err)?;
    builder.key_id(f.key_id).map_err(ssh_err)?;
    builder.serial(f.serial).map_err(ssh_err)?;
    for principal in f.principals {
        builder
            .valid_principal(principal.as_str())
            .map_err(ssh_err)?;
    }
    // The BTreeMap (here and inside ssh-key) keeps names in the lexical
    // order OpenSSH requires.
    for (name, value) in f.extensions {
        builder
            .extension(name.as_str(), value.as_str())
            .map_err(ssh_err)?;
    }

    let ca = SshCaKey::new(signer)?;
    let cert = builder.sign(&ca);
    if let Some(err) = ca.failure.borrow_mut().take() {
        return Err(err);
    }
    cert.map_err(|e| CaError::crypto("sign ssh certificate", e))?
        .to_openssh()
        .map_err(|e| CaError::crypto("encode ssh certificate", e))
}

/// Checks a user certificate: signed by one of `trusted_ca_keys` (OpenSSH
/// public key lines), type user, at least one principal, no critical
/// options (we issue none, so any is a sign of a foreign cert), and valid at
/// `now`.
pub fn verify_user_cert(
    cert_line: &str,
    trusted_ca_keys: &[String],
    now: OffsetDateTime,
) -> Result<VerifiedSshCert, CaError> {
    verify_cert(cert_line, trusted_ca_keys, now, CertType::User)
}

/// Like [`verify_user_cert`] for host certificates; the caller still has to
/// check that the principals contain the exact host it meant to reach.
pub fn verify_host_cert(
    cert_line: &str,
    trusted_ca_keys: &[String],
    now: OffsetDateTime,
) -> Result<VerifiedSshCert, CaError> {
    verify_cert(cert_line, trusted_ca_keys, now, CertType::Host)
}

fn verify_cert(
    cert_line: &str,
    trusted_ca_keys: &[String],
    now: OffsetDateTime,
    expected: CertType,
) -> Result<VerifiedSshCert, CaError> {
    let cert = Certificate::from_openssh(cert_line.trim())
        .map_err(|e| CaError::malformed(format!("not an OpenSSH certificate: {e}")))?;
    if trusted_ca_keys.is_empty() {
        return Err(CaError::rejected("no trusted CA keys are configured"));
    }
    let mut trusted = Vec::with_capacity(trusted_ca_keys.len());
    for (i, line) in trusted_ca_keys.iter().enumerate() {
        let key = PublicKey::from_openssh(line.trim()).map_err(|e| {
            CaError::public_key(format!(
                "trusted CA key #{i} is not an OpenSSH public key: {e}"
            ))
        })?;
        trusted.push(key.key_data().clone());
    }
    // KeyData equality compares the key bytes, not comments.
    if !trusted.iter().any(|k| k == cert.signature_key()) {
        let fingerprint = cert.signature_key().fingerprint(ssh_key::HashAlg::Sha256);
        return Err(CaError::rejected(format!(
            "signed by an untrusted CA key ({fingerprint})"
        )));
    }
    cert.verify_signature()
        .map_err(|_| CaError::rejected("the CA signature does not verify"))?;
    if cert.cert_type() != expected {
        return Err(CaError::rejected(format!(
            "expected a {} certificate, got a {} certificate",
            type_name(expected),
            type_name(cert.cert_type())
        )));
    }
    if cert.valid_principals().is_empty() {
        return Err(CaError::rejected(
            "certificate has no principals (valid for everyone)",
        ));
    }
    if let Some(name) = cert.critical_options().keys().next() {
        return Err(CaError::rejected(format!(
            "unsupported critical option {name:?}"
        )));
    }
    let valid_after = from_unix(cert.valid_after())?;
    let valid_before = from_unix(cert.valid_before())?;
    // PROTOCOL.certkeys: valid after <= now < valid before.
    if now < valid_after {
        return Err(CaError::rejected(format!("not valid before {valid_after}")));
    }
    if now >= valid_before {
        return Err(CaError::rejected(format!("expired at {valid_before}")));
    }
    let public_key = PublicKey::from(cert.public_key().clone())
        .to_openssh()
        .map_err(|e| CaError::malformed(format!("certified key cannot be encoded: {e}")))?;
    Ok(VerifiedSshCert {
        key_id: cert.key_id().to_owned(),
        principals: cert.valid_principals().to_vec(),
        serial: cert.serial(),
        valid_after,
        valid_before,
        extensions: cert.extensions().0.clone(),
        public_key,
    })
}

/// Parses an OpenSSH public key line, with an error that says what was
/// expected.
pub(crate) fn parse_openssh_public_key(line: &str) -> Result<PublicKey, CaError> {
    PublicKey::from_openssh(line.trim()).map_err(|e| {
        CaError::public_key(format!(
            "expected an OpenSSH public key line like 'ssh-ed25519 AAAA… comment': {e}"
        ))
    })
}

fn type_name(t: CertType) -> &'static str {
    if t.is_user() { "user" } else { "host" }
}

fn to_unix(t: OffsetDateTime, field: &'static str) -> Result<u64, CaError> {
    u64::try_from(t.unix_timestamp())
        .map_err(|_| CaError::request(field, "must not be before 1970-01-01"))
}

fn from_unix(secs: u64) -> Result<OffsetDateTime, CaError> {
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| CaError::malformed(format!("validity bound {secs} is out of range")))
}

// === impl SshCaKey ===

/// Adapts a [`Signer`] to ssh-key's signing trait. ssh-key's error type
/// cannot carry our error, so the first failure is kept aside and returned
/// instead of ssh-key's generic one.
struct SshCaKey<'a> {
    /// The CA key.
    signer: &'a dyn Signer,
    /// Its public key in ssh-key's form (goes into the certificate).
    key_data: KeyData,
    /// The signer's own error, if signing failed.
    failure: RefCell<Option<CaError>>,
}

impl<'a> SshCaKey<'a> {
    fn new(signer: &'a dyn Signer) -> Result<Self, CaError> {
        let public = signer.public_key();
        if public.algorithm() != KeyAlgorithm::Ed25519 {
            return Err(CaError::crypto(
                "sign ssh certificate",
                "SSH CA keys must be Ed25519",
            ));
        }
        Ok(Self {
            signer,
            key_data: public.to_ssh_key_data()?,
            failure: RefCell::new(None),
        })
    }
}

impl signature::Signer<ssh_key::Signature> for SshCaKey<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<ssh_key::Signature, signature::Error> {
        let raw = self.signer.sign(msg).map_err(|e| {
            *self.failure.borrow_mut() = Some(e);
            signature::Error::new()
        })?;
        ssh_key::Signature::new(Algorithm::Ed25519, raw).map_err(|_| signature::Error::new())
    }
}

impl From<&SshCaKey<'_>> for KeyData {
    fn from(key: &SshCaKey<'_>) -> Self {
        key.key_data.clone()
    }
}

#[cfg(test)]
#[path = "ssh_tests.rs"]
mod tests;
