//! [`CertAuthority`]: one CA's active keys, what each kind may sign, and how
//! a CA is persisted ([`StoredCa`], private keys sealed with the KEK).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::CaError;
use crate::kek::{Kek, Sealed};
use crate::rotation::RotationState;
use crate::signer::{KeyAlgorithm, Signer, SoftwareSigner};
use crate::ssh::{HostCertRequest, UserCertRequest, parse_openssh_public_key};
use crate::x509::{
    ServiceCert, X509ServiceRequest, X509UserRequest, parse_cert, pem_decode_cert, pem_encode,
};

/// The certificate authorities of a cluster (ARCHITECTURE.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaKind {
    /// User SSH and X.509 certificates.
    User,
    /// SSH host certificates and X.509 certificates of every TLS listener.
    Host,
    /// Per-session certificates for agentless OpenSSH hosts; never given to users.
    OpenSsh,
    /// Database access.
    Db,
    /// Application access tokens.
    Jwt,
    /// Audit checkpoints.
    Audit,
}

/// One CA's active signing keys and its self-signed X.509 certificate.
pub struct CertAuthority {
    /// Which CA this is.
    kind: CaKind,
    /// Cluster name, part of the certificate's CN.
    cluster: String,
    /// Ed25519 key signing SSH certificates.
    ssh: SoftwareSigner,
    /// P-256 key signing X.509 certificates.
    x509: SoftwareSigner,
    /// The self-signed CA certificate for `x509`, DER.
    x509_cert_der: Vec<u8>,
    /// `ssh`'s public key as an OpenSSH line, cached.
    ssh_public: String,
    /// Other SSH keys still or already trusted during a rotation.
    other_trusted_ssh: Vec<String>,
    /// Their signers (to sign what verifiers that know only one of the
    /// keys must accept, e.g. the KRL during a rotation).
    other_ssh: Vec<SoftwareSigner>,
    /// The rotation state it was loaded with.
    rotation: RotationState,
}

/// A CA as stored in the database. Public parts are clear text; private
/// keys are [`Sealed`] with the KEK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCa {
    /// Which CA this is.
    pub kind: CaKind,
    /// Cluster name.
    pub cluster: String,
    /// The keys currently signing.
    pub active: StoredKeySet,
    /// The incoming keys during a rotation (trusted, not yet signing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<StoredKeySet>,
    /// The outgoing keys during a rotation (trusted, no longer signing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<StoredKeySet>,
    /// Where a rotation stands.
    #[serde(default, skip_serializing_if = "RotationState::is_standby")]
    pub rotation: RotationState,
}

/// One generation of a CA's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKeySet {
    /// SSH CA public key, OpenSSH line.
    pub ssh_public: String,
    /// X.509 CA certificate, PEM.
    pub x509_cert_pem: String,
    /// Ed25519 SSH private key (PKCS#8 DER), sealed for `ca/<kind>/ssh`.
    pub ssh_private: Sealed,
    /// P-256 X.509 private key (PKCS#8 DER), sealed for `ca/<kind>/x509`.
    pub x509_private: Sealed,
}

// === impl CaKind ===

impl CaKind {
    /// Every kind, in a fixed order.
    pub const ALL: [CaKind; 6] = [
        Self::User,
        Self::Host,
        Self::OpenSsh,
        Self::Db,
        Self::Jwt,
        Self::Audit,
    ];

    /// The lowercase name ("user", "host", "openssh", "db", "jwt", "audit").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Host => "host",
            Self::OpenSsh => "openssh",
            Self::Db => "db",
            Self::Jwt => "jwt",
            Self::Audit => "audit",
        }
    }

    fn aad(self, part: &str) -> Vec<u8> {
        format!("ca/{}/{part}", self.as_str()).into_bytes()
    }
}

impl fmt::Display for CaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CaKind {
    type Err = CaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                CaError::request(
                    "kind",
                    format!(
                        "unknown CA kind {s:?}: expected one of user, host, openssh, db, jwt, audit"
                    ),
                )
            })
    }
}

// === impl CertAuthority ===

impl CertAuthority {
    /// Creates a CA with fresh keys; its X.509 certificate is valid for ten
    /// years from `now`.
    pub fn generate(
        kind: CaKind,
        cluster_name: &str,
        now: OffsetDateTime,
    ) -> Result<Self, CaError> {
        if cluster_name.trim().is_empty() {
            return Err(CaError::request("cluster_name", "must not be empty"));
        }
        let ssh = SoftwareSigner::generate(KeyAlgorithm::Ed25519)?;
        let x509 = SoftwareSigner::generate(KeyAlgorithm::EcdsaP256)?;
        let common_name = format!("Keygate {} CA {cluster_name}", kind.as_str());
        let x509_cert_der = crate::x509::build_ca_cert(&x509, &common_name, now)?;
        let ssh_public = ssh.public_key().to_openssh()?;
        Ok(Self {
            kind,
            cluster: cluster_name.to_owned(),
            ssh,
            x509,
            x509_cert_der,
            ssh_public,
            other_trusted_ssh: Vec::new(),
            other_ssh: Vec::new(),
            rotation: RotationState::default(),
        })
    }

    /// Which CA this is.
    pub fn kind(&self) -> CaKind {
        self.kind
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Every SSH public key of this CA that verifiers should trust (for
    /// `TrustedUserCAKeys`, `@cert-authority` lines…), active first.
    pub fn trusted_ssh_keys(&self) -> Vec<String> {
        std::iter::once(self.ssh_public_key())
            .chain(self.other_trusted_ssh.iter().cloned())
            .collect()
    }

    /// The rotation state this CA was loaded with.
    pub fn rotation(&self) -> &RotationState {
        &self.rotation
    }

    /// The active SSH public key as an OpenSSH line.
    pub fn ssh_public_key(&self) -> String {
        self.ssh_public.clone()
    }

    /// The X.509 CA certificate, DER.
    pub fn x509_cert_der(&self) -> &[u8] {
        &self.x509_cert_der
    }

    /// The X.509 CA certificate, PEM.
    pub fn x509_cert_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.x509_cert_der)
    }

    /// The SSH signing key (Ed25519).
    pub fn ssh_signer(&self) -> &dyn Signer {
        &self.ssh
    }

    /// Every trusted SSH key's signer, the active one first.
    pub fn all_ssh_signers(&self) -> Vec<&dyn Signer> {
        std::iter::once(&self.ssh as &dyn Signer)
            .chain(self.other_ssh.iter().map(|s| s as &dyn Signer))
            .collect()
    }

    /// The X.509 signing key (P-256).
    pub fn x509_signer(&self) -> &dyn Signer {
        &self.x509
    }

    /// Signs a user SSH certificate (user and openssh CAs only).
    pub fn sign_user_ssh(&self, req: &UserCertRequest) -> Result<String, CaError> {
        self.require(&[CaKind::User, CaKind::OpenSsh], "user SSH certificates")?;
        crate::ssh::sign_user_cert(&self.ssh, req)
    }

    /// Signs a host SSH certificate (host CA only).
    pub fn sign_host_ssh(&self, req: &HostCertRequest) -> Result<String, CaError> {
        self.require(&[CaKind::Host], "host SSH certificates")?;
        crate::ssh::sign_host_cert(&self.ssh, req)
    }

    /// Signs a user X.509 client certificate, DER (user and db CAs only).
    pub fn sign_x509_user(&self, req: &X509UserRequest) -> Result<Vec<u8>, CaError> {
        self.require(&[CaKind::User, CaKind::Db], "user X.509 certificates")?;
        crate::x509::sign_user_x509(&self.x509, &self.x509_cert_der, req)
    }

    /// Signs a service X.509 certificate (host CA only).
    pub fn sign_x509_service(&self, req: &X509ServiceRequest) -> Result<ServiceCert, CaError> {
        self.require(&[CaKind::Host], "service X.509 certificates")?;
        crate::x509::sign_service_x509(&self.x509, &self.x509_cert_der, req)
    }

    /// Seals the private keys with `kek` for storage.
    pub fn to_stored(&self, kek: &Kek) -> Result<StoredCa, CaError> {
        Ok(StoredCa {
            kind: self.kind,
            cluster: self.cluster.clone(),
            active: StoredKeySet {
                ssh_public: self.ssh_public.clone(),
                x509_cert_pem: self.x509_cert_pem(),
                ssh_private: kek.seal(self.ssh.pkcs8_der(), &self.kind.aad("ssh"))?,
                x509_private: kek.seal(self.x509.pkcs8_der(), &self.kind.aad("x509"))?,
            },
            next: None,
            previous: None,
            rotation: RotationState::default(),
        })
    }

    /// Loads the active keys of a stored CA, checking that each private key
    /// matches the public key stored beside it.
    pub fn from_stored(stored: &StoredCa, kek: &Kek) -> Result<Self, CaError> {
        let set = &stored.active;
        let kind = stored.kind;
        let ssh_der = kek.open(&set.ssh_private, &kind.aad("ssh"))?;
        let ssh = SoftwareSigner::from_pkcs8(KeyAlgorithm::Ed25519, &ssh_der)?;
        let x509_der = kek.open(&set.x509_private, &kind.aad("x509"))?;
        let x509 = SoftwareSigner::from_pkcs8(KeyAlgorithm::EcdsaP256, &x509_der)?;

        let stored_ssh = parse_openssh_public_key(&set.ssh_public)
            .map_err(|e| CaError::corrupt(format!("stored SSH public key: {e}")))?;
        if stored_ssh.key_data() != &ssh.public_key().to_ssh_key_data()? {
            return Err(CaError::corrupt(format!(
                "the {kind} CA's SSH private key does not match its stored public key"
            )));
        }
        let x509_cert_der = pem_decode_cert(&set.x509_cert_pem)?;
        let cert = parse_cert(&x509_cert_der)
            .map_err(|e| CaError::corrupt(format!("stored CA certificate: {e}")))?;
        if cert.tbs_certificate.subject_pki.raw != x509.public_key().spki_der().as_slice() {
            return Err(CaError::corrupt(format!(
                "the {kind} CA's X.509 private key does not match its certificate"
            )));
        }
        let ssh_public = ssh.public_key().to_openssh()?;
        let mut other_trusted_ssh = Vec::new();
        let mut other_ssh = Vec::new();
        for set in stored.next.iter().chain(stored.previous.iter()) {
            let der = kek.open(&set.ssh_private, &kind.aad("ssh"))?;
            let signer = SoftwareSigner::from_pkcs8(KeyAlgorithm::Ed25519, &der)?;
            other_trusted_ssh.push(signer.public_key().to_openssh()?);
            other_ssh.push(signer);
        }
        Ok(Self {
            kind,
            cluster: stored.cluster.clone(),
            ssh,
            x509,
            x509_cert_der,
            ssh_public,
            other_trusted_ssh,
            other_ssh,
            rotation: stored.rotation.clone(),
        })
    }

    fn require(&self, allowed: &[CaKind], what: &str) -> Result<(), CaError> {
        if allowed.contains(&self.kind) {
            return Ok(());
        }
        let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
        Err(CaError::request(
            "ca",
            format!(
                "the {} CA does not sign {what}; use the {} CA",
                self.kind,
                names.join(" or ")
            ),
        ))
    }
}

impl fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuthority")
            .field("kind", &self.kind)
            .field("cluster", &self.cluster)
            .field("ssh_public", &self.ssh_public)
            .field("private_keys", &"<redacted>")
            .finish()
    }
}

// === impl StoredCa ===

impl StoredCa {
    /// SSH CA keys to trust: the active one and, during a rotation, the
    /// next or the previous one.
    pub fn trusted_ssh_public_keys(&self) -> Vec<String> {
        std::iter::once(&self.active)
            .chain(self.next.as_ref())
            .chain(self.previous.as_ref())
            .map(|set| set.ssh_public.clone())
            .collect()
    }

    /// A new key set for a rotation: a fresh SSH key sealed with `kek`,
    /// and the active X.509 CA unchanged (its key is what clients pin).
    pub fn fresh_ssh_key_set(&self, kek: &Kek) -> Result<StoredKeySet, CaError> {
        let ssh = SoftwareSigner::generate(KeyAlgorithm::Ed25519)?;
        Ok(StoredKeySet {
            ssh_public: ssh.public_key().to_openssh()?,
            x509_cert_pem: self.active.x509_cert_pem.clone(),
            ssh_private: kek.seal(ssh.pkcs8_der(), &self.kind.aad("ssh"))?,
            x509_private: self.active.x509_private.clone(),
        })
    }

    /// X.509 CA certificates (PEM) to trust: active and, if any, next.
    pub fn trusted_x509_certs_pem(&self) -> Vec<String> {
        std::iter::once(&self.active)
            .chain(self.next.as_ref())
            .map(|set| set.x509_cert_pem.clone())
            .collect()
    }
}

#[cfg(test)]
#[path = "authority_tests.rs"]
mod tests;
