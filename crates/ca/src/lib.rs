//! Keygate's certificate authorities (L0: pure, no I/O, time passed in).
//!
//! Owns: the key-encryption key and sealed blobs ([`Kek`], [`Sealed`]); the
//! [`Signer`] trait all CA keys sit behind and its in-memory implementation;
//! one CA's keys and certificate ([`CertAuthority`]) and its stored form
//! ([`StoredCa`]); the SSH certificate templates (user, host) and their
//! verification; the X.509 templates (CA, user, service) with the Keygate
//! identity extension and its parser; CA pins and SSH fingerprints; OpenSSH
//! KRLs (encode, strict decode) and SSHSIG detached signatures; the CA
//! rotation state machine over [`StoredCa`].
//!
//! Does not own: deciding *what* goes into a certificate (TTL, principals,
//! roles — auth computes those with the policy crate), storing anything
//! (the store crate keeps [`StoredCa`] as JSON, the caller writes the KEK
//! file), TLS.
#![forbid(unsafe_code)]

mod authority;
mod error;
mod identity;
mod kek;
mod krl;
mod krl_decode;
mod pin;
mod rotation;
mod signer;
mod ssh;
mod sshsig;
mod x509;

pub use authority::{CaKind, CertAuthority, StoredCa, StoredKeySet};
pub use error::CaError;
pub use identity::{KEYGATE_IDENTITY_OID, X509Identity, parse_x509_identity};
pub use kek::{KEK_LEN, Kek, Sealed};
pub use krl::{KRL_SIG_NAMESPACE, Krl, KrlCaSection, MAX_KRL_BYTES, MAX_KRL_ENTRIES};
pub use pin::{ca_pin, ssh_fingerprint, verify_pin};
pub use rotation::{RotationMode, RotationPhase, RotationRequest, RotationState};
pub use signer::{KeyAlgorithm, Signer, SignerPublicKey, SoftwareSigner};
pub use ssh::{
    HostCertRequest, STANDARD_EXTENSIONS, UserCertRequest, VerifiedSshCert, random_serial,
    sign_host_cert, sign_user_cert, verify_host_cert, verify_user_cert,
};
pub use sshsig::{sshsig_sign, sshsig_verify};
pub use x509::{
    ServiceCert, ServiceKey, SystemRole, X509ServiceRequest, X509UserRequest, sign_service_x509,
    sign_user_x509, verify_issued_by,
};
