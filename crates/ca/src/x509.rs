//! X.509 certificate templates: the self-signed CA certificate, user client
//! certificates (for the same Ed25519 key as the user's SSH certificate) and
//! service certificates for TLS listeners and system identities.
//!
//! rcgen builds and encodes; all signing goes through [`Signer`].

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
    SigningKey,
};
use russh::keys::ssh_key::public::KeyData;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

use crate::error::CaError;
use crate::identity::{KEYGATE_IDENTITY_OID, KeygateExtension};
use crate::signer::{KeyAlgorithm, Signer, SignerPublicKey, SoftwareSigner};
use crate::ssh::{parse_openssh_public_key, random_serial};

/// How long a CA certificate is valid.
const CA_VALIDITY_YEARS: i32 = 10;

/// The system identity a service certificate stands for. Told apart by
/// this value in the Keygate extension (and the issuing CA), never by CN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemRole {
    /// The auth service.
    Auth,
    /// A proxy.
    Proxy,
    /// A node (agent).
    Node,
    /// A bot (machine identity).
    Bot,
}

/// What to put in a user's X.509 client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509UserRequest {
    /// The user's Ed25519 key as an OpenSSH public key line: the same key as
    /// in the SSH certificate, so one key file serves SSH and mTLS.
    pub public_key_openssh: String,
    /// The username.
    pub common_name: String,
    /// Role names, carried in the Keygate extension.
    pub roles: Vec<String>,
    /// Traits after expansion, carried in the Keygate extension.
    pub traits: std::collections::BTreeMap<String, Vec<String>>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity (same as the SSH certificate's).
    pub not_after: OffsetDateTime,
    /// Serial number (the SSH certificate's, so both show up together).
    pub serial: u64,
}

/// Where a service certificate's key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceKey {
    /// The service already has a key: its DER SubjectPublicKeyInfo.
    Spki(Vec<u8>),
    /// Generate a fresh P-256 key; its private key is returned with the cert.
    GenerateP256,
}

/// What to put in a service certificate (TLS listeners, system identities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509ServiceRequest {
    /// The key to certify.
    pub key: ServiceKey,
    /// Identity name (node id, proxy host name…); informative only.
    pub common_name: String,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// Which system identity this is (in the Keygate extension).
    pub system_role: SystemRole,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// An issued service certificate.
pub struct ServiceCert {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its serial number.
    pub serial: u64,
    /// The generated private key (PKCS#8 DER) when [`ServiceKey::GenerateP256`]
    /// was asked for.
    pub private_key_pkcs8: Option<Zeroizing<Vec<u8>>>,
}

// === impl SystemRole ===

impl SystemRole {
    /// The lowercase name used in the extension and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Proxy => "proxy",
            Self::Node => "node",
            Self::Bot => "bot",
        }
    }
}

// === impl ServiceCert ===

impl ServiceCert {
    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.cert_der)
    }

    /// The generated private key as PKCS#8 PEM (`PRIVATE KEY`), if any.
    pub fn private_key_pem(&self) -> Option<Zeroizing<String>> {
        self.private_key_pkcs8
            .as_ref()
            .map(|der| Zeroizing::new(pem_encode("PRIVATE KEY", der)))
    }
}

impl std::fmt::Debug for ServiceCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCert")
            .field("serial", &self.serial)
            .field("cert_der_len", &self.cert_der.len())
            .field(
                "private_key_pkcs8",
                &self.private_key_pkcs8.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

// === templates ===

/// Builds the self-signed CA certificate for `signer`'s key.
pub(crate) fn build_ca_cert(
    signer: &dyn Signer,
    common_name: &str,
    now: OffsetDateTime,
) -> Result<Vec<u8>, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Keygate");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.not_before = now;
    // Same date ten years on; a 29 February start falls back to 3653 days.
    params.not_after = now
        .replace_year(now.year() + CA_VALIDITY_YEARS)
        .ok()
        .or_else(|| now.checked_add(Duration::days(3653)))
        .ok_or_else(|| CaError::request("now", "ten years later is out of range"))?;
    params.serial_number = Some(serial_number(random_serial()));
    // pathlen 0: a Keygate CA signs leaf certificates only.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = RcgenKey::new(signer);
    params
        .self_signed(&key)
        .map(|c| c.der().to_vec())
        .map_err(rcgen_err("self-sign CA certificate"))
}

/// Signs a user client certificate for the Ed25519 key in `req`.
pub fn sign_user_x509(
    signer: &dyn Signer,
    ca_cert_der: &[u8],
    req: &X509UserRequest,
) -> Result<Vec<u8>, CaError> {
    let subject = parse_openssh_public_key(&req.public_key_openssh)?;
    let KeyData::Ed25519(ed) = subject.key_data() else {
        return Err(CaError::public_key(format!(
            "X.509 client certificates need an Ed25519 key, got {}",
            subject.algorithm()
        )));
    };
    let subject = SignerPublicKey::new(KeyAlgorithm::Ed25519, ed.0.to_vec())?;
    let mut params = leaf_params(&req.common_name, req.not_before, req.not_after, req.serial)?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let ext = KeygateExtension {
        roles: req.roles.clone(),
        traits: req.traits.clone(),
        system_role: None,
    };
    params.custom_extensions = vec![identity_extension(&ext)?];
    issue(signer, ca_cert_der, &params, &RawKey(&subject))
}

/// Signs a service certificate (serverAuth + clientAuth) carrying
/// `req.system_role`.
pub fn sign_service_x509(
    signer: &dyn Signer,
    ca_cert_der: &[u8],
    req: &X509ServiceRequest,
) -> Result<ServiceCert, CaError> {
    let serial = random_serial();
    let mut params = leaf_params(&req.common_name, req.not_before, req.not_after, serial)?;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    for name in &req.dns_names {
        let ia5 = Ia5String::try_from(name.as_str()).map_err(|_| {
            CaError::request("dns_names", format!("{name:?} is not an ASCII DNS name"))
        })?;
        params.subject_alt_names.push(SanType::DnsName(ia5));
    }
    params
        .subject_alt_names
        .extend(req.ip_addresses.iter().copied().map(SanType::IpAddress));
    let ext = KeygateExtension {
        roles: Vec::new(),
        traits: Default::default(),
        system_role: Some(req.system_role),
    };
    params.custom_extensions = vec![identity_extension(&ext)?];

    let (cert_der, private_key_pkcs8) = match &req.key {
        ServiceKey::Spki(spki) => {
            let key = rcgen::SubjectPublicKeyInfo::from_der(spki).map_err(|e| {
                CaError::public_key(format!("not a supported SubjectPublicKeyInfo: {e}"))
            })?;
            (issue(signer, ca_cert_der, &params, &key)?, None)
        }
        ServiceKey::GenerateP256 => {
            let fresh = SoftwareSigner::generate(KeyAlgorithm::EcdsaP256)?;
            let public = fresh.public_key();
            let der = issue(signer, ca_cert_der, &params, &RawKey(&public))?;
            (der, Some(Zeroizing::new(fresh.pkcs8_der().to_vec())))
        }
    };
    Ok(ServiceCert {
        cert_der,
        serial,
        private_key_pkcs8,
    })
}

/// Checks that `cert_der` was signed by the CA certificate `ca_cert_der` and
/// is within its validity window at `now`. (TLS stacks do this themselves;
/// this is for code paths that handle certificates outside TLS.)
pub fn verify_issued_by(
    cert_der: &[u8],
    ca_cert_der: &[u8],
    now: OffsetDateTime,
) -> Result<(), CaError> {
    let cert = parse_cert(cert_der)?;
    let ca = parse_cert(ca_cert_der)?;
    if cert.issuer() != ca.subject() {
        return Err(CaError::rejected(
            "issuer name does not match the CA certificate",
        ));
    }
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|e| CaError::rejected(format!("CA signature does not verify: {e}")))?;
    let validity = cert.validity();
    if now < validity.not_before.to_datetime() {
        return Err(CaError::rejected(format!(
            "not valid before {}",
            validity.not_before.to_datetime()
        )));
    }
    if now > validity.not_after.to_datetime() {
        return Err(CaError::rejected(format!(
            "expired at {}",
            validity.not_after.to_datetime()
        )));
    }
    Ok(())
}

fn leaf_params(
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    serial: u64,
) -> Result<CertificateParams, CaError> {
    if common_name.is_empty() {
        return Err(CaError::request("common_name", "must not be empty"));
    }
    if not_after <= not_before {
        return Err(CaError::request(
            "not_after",
            "must be later than not_before",
        ));
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(serial_number(serial));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn issue(
    signer: &dyn Signer,
    ca_cert_der: &[u8],
    params: &CertificateParams,
    subject: &impl PublicKeyData,
) -> Result<Vec<u8>, CaError> {
    let issuer = Issuer::from_ca_cert_der(&ca_cert_der.into(), RcgenKey::new(signer))
        .map_err(rcgen_err("load CA certificate"))?;
    params
        .signed_by(subject, &issuer)
        .map(|c| c.der().to_vec())
        .map_err(rcgen_err("sign X.509 certificate"))
}

fn identity_extension(ext: &KeygateExtension) -> Result<CustomExtension, CaError> {
    Ok(CustomExtension::from_oid_content(
        &KEYGATE_IDENTITY_OID,
        ext.to_der()?,
    ))
}

fn serial_number(serial: u64) -> SerialNumber {
    SerialNumber::from_slice(&serial.to_be_bytes())
}

fn rcgen_err(operation: &'static str) -> impl Fn(rcgen::Error) -> CaError {
    move |e| CaError::crypto(operation, e)
}

// === DER / PEM helpers ===

/// Parses one DER certificate, refusing trailing bytes.
pub(crate) fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, CaError> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| CaError::malformed(format!("not a DER X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(CaError::malformed(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }
    Ok(cert)
}

/// PEM-encodes DER with 64-character lines.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decodes a PEM `CERTIFICATE` block to DER.
pub(crate) fn pem_decode_cert(pem: &str) -> Result<Vec<u8>, CaError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| CaError::corrupt(format!("CA certificate is not PEM: {e}")))?;
    if block.label != "CERTIFICATE" {
        return Err(CaError::corrupt(format!(
            "expected a CERTIFICATE PEM block, found {:?}",
            block.label
        )));
    }
    Ok(block.contents)
}

// === impl RcgenKey / RawKey ===

/// Adapts a [`Signer`] to rcgen's signing trait.
struct RcgenKey<'a> {
    /// The CA key.
    signer: &'a dyn Signer,
    /// Its public key, cached because rcgen borrows it.
    public: SignerPublicKey,
}

impl<'a> RcgenKey<'a> {
    fn new(signer: &'a dyn Signer) -> Self {
        Self {
            signer,
            public: signer.public_key(),
        }
    }
}

impl PublicKeyData for RcgenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.public.raw()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        rcgen_algorithm(self.public.algorithm())
    }
}

impl SigningKey for RcgenKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.signer
            .sign(msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// A subject public key known by its raw bytes.
struct RawKey<'a>(&'a SignerPublicKey);

impl PublicKeyData for RawKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.raw()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        rcgen_algorithm(self.0.algorithm())
    }
}

fn rcgen_algorithm(alg: KeyAlgorithm) -> &'static rcgen::SignatureAlgorithm {
    match alg {
        KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
    }
}

#[cfg(test)]
#[path = "x509_tests.rs"]
mod tests;
