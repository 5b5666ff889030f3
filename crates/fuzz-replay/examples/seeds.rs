//! Writes the seed files that need real keys, signatures or hashes (the
//! `gen-*` files under `fuzz/corpus/`). Hand-written seeds sit beside them.
//!
//! Run from anywhere: `cargo run -p keygate-fuzz-replay --example seeds`.
//! Keys are random, so every run rewrites these files with new bytes; run it
//! only when a format changes. Certificates are valid around the targets'
//! default `now` (2030-01-01T00:00:00Z).

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use keygate_authn::{Argon2Params, Password, hash_password_with};
use keygate_ca::{
    CaKind, CertAuthority, HostCertRequest, Kek, KeyAlgorithm, ServiceKey, Signer, SoftwareSigner,
    SystemRole, UserCertRequest, X509ServiceRequest, X509UserRequest,
};
use keygate_fuzz_replay::{FUZZ_AAD, FUZZ_KEK};
use time::macros::datetime;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn write(target: &str, name: &str, bytes: impl AsRef<[u8]>) -> Result<()> {
    let dir = corpus(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)?;
    eprintln!("wrote {target}/{name}");
    Ok(())
}

fn main() -> Result<()> {
    let now = datetime!(2030-01-01 0:00 UTC);
    let start = datetime!(2029-12-31 23:00 UTC);
    let end = datetime!(2030-01-01 12:00 UTC);
    let user_ca = CertAuthority::generate(CaKind::User, "example", start)?;
    let host_ca = CertAuthority::generate(CaKind::Host, "example", start)?;
    let other_ca = CertAuthority::generate(CaKind::User, "other", start)?;
    let user_key = SoftwareSigner::generate(KeyAlgorithm::Ed25519)?
        .public_key()
        .to_openssh()?;

    // --- X.509 identities ---
    let user_x509 = user_ca.sign_x509_user(&X509UserRequest {
        public_key_openssh: user_key.clone(),
        common_name: "alice".to_owned(),
        roles: vec!["access".to_owned(), "auditor".to_owned()],
        traits: BTreeMap::from([("logins".to_owned(), vec!["alice".to_owned()])]),
        not_before: start,
        not_after: end,
        serial: 0x00ab_cdef,
    })?;
    write("ca_x509_identity", "gen-user.der", &user_x509)?;
    let service = host_ca.sign_x509_service(&X509ServiceRequest {
        key: ServiceKey::GenerateP256,
        common_name: "proxy.example".to_owned(),
        dns_names: vec!["proxy.example".to_owned()],
        ip_addresses: vec!["127.0.0.1".parse()?],
        system_role: SystemRole::Proxy,
        not_before: start,
        not_after: end,
    })?;
    write("ca_x509_identity", "gen-service.der", &service.cert_der)?;
    write(
        "ca_x509_identity",
        "gen-ca-no-extension.der",
        host_ca.x509_cert_der(),
    )?;

    // --- SSH certificates: now / certificate / trusted keys ---
    let user_cert = user_ca.sign_user_ssh(&UserCertRequest {
        public_key: user_key.clone(),
        key_id: "alice".to_owned(),
        principals: vec!["alice".to_owned(), "ubuntu".to_owned()],
        valid_after: start,
        valid_before: end,
        serial: 42,
        extensions: BTreeMap::from([
            ("permit-pty".to_owned(), String::new()),
            ("roles@keygate".to_owned(), r#"["access"]"#.to_owned()),
        ]),
    })?;
    let host_cert = host_ca.sign_host_ssh(&HostCertRequest {
        public_key: user_key.clone(),
        key_id: "node-1".to_owned(),
        principals: vec!["node-1".to_owned()],
        valid_after: start,
        valid_before: end,
        serial: 7,
        extensions: BTreeMap::from([("role@keygate".to_owned(), "node".to_owned())]),
    })?;
    let user_ca_key = user_ca.ssh_public_key();
    let host_ca_key = host_ca.ssh_public_key();
    let other_key = other_ca.ssh_public_key();
    let ssh = [
        (
            "gen-user-valid.txt",
            format!("\n{user_cert}\n{user_ca_key}\n"),
        ),
        (
            "gen-user-two-cas.txt",
            format!(
                "{}\n{user_cert}\n{other_key}\n{user_ca_key}\n",
                now.unix_timestamp()
            ),
        ),
        (
            "gen-user-expired.txt",
            format!("1900000000\n{user_cert}\n{user_ca_key}\n"),
        ),
        (
            "gen-user-not-yet.txt",
            format!("1800000000\n{user_cert}\n{user_ca_key}\n"),
        ),
        (
            "gen-user-untrusted.txt",
            format!("\n{user_cert}\n{other_key}\n"),
        ),
        ("gen-user-no-cas.txt", format!("\n{user_cert}\n")),
        (
            "gen-host-valid.txt",
            format!("\n{host_cert}\n{host_ca_key}\n"),
        ),
        (
            "gen-plain-key.txt",
            format!("\n{user_key}\n{user_ca_key}\n"),
        ),
    ];
    for (name, text) in ssh {
        write("ca_ssh_cert", name, text)?;
    }
    write(
        "ca_ssh_fingerprint",
        "gen-ed25519.pub",
        format!("{user_ca_key}\n"),
    )?;
    write(
        "ca_ssh_fingerprint",
        "gen-cert.txt",
        format!("{user_cert}\n"),
    )?;

    // --- sealed blobs under the fixed fuzz KEK ---
    let kek = Kek::from_bytes(&FUZZ_KEK)?;
    let blobs = [
        (
            "gen-valid.json",
            kek.seal(b"a CA private key would be here", FUZZ_AAD)?,
        ),
        ("gen-empty-plaintext.json", kek.seal(b"", FUZZ_AAD)?),
        (
            "gen-other-purpose.json",
            kek.seal(b"x509 key", b"ca/user/x509")?,
        ),
        (
            "gen-other-kek.json",
            Kek::generate()?.seal(b"a CA private key would be here", FUZZ_AAD)?,
        ),
    ];
    for (name, sealed) in blobs {
        write("ca_kek_open", name, serde_json::to_vec(&sealed)?)?;
    }

    // --- password hashes: PHC line, then the password ---
    let password = "correct horse battery staple";
    let cheap = hash_password_with(
        &Password::new(password),
        Argon2Params::dangerous_cheap_for_tests(),
    )?;
    write(
        "authn_password",
        "gen-cheap-match.txt",
        format!("{cheap}\n{password}"),
    )?;
    write(
        "authn_password",
        "gen-cheap-wrong.txt",
        format!("{cheap}\nTr0ub4dor&3"),
    )?;
    let owasp = hash_password_with(&Password::new(password), Argon2Params::OWASP)?;
    write(
        "authn_password",
        "gen-owasp-over-budget.txt",
        format!("{owasp}\n{password}"),
    )?;
    Ok(())
}
