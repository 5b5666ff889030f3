//! Conformance against the real tools: OpenSSH's `ssh-keygen` is the oracle
//! for SSH certificates, `openssl` for X.509 ones.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use keygate_ca::{
    CaKind, CertAuthority, HostCertRequest, KeyAlgorithm, ServiceKey, Signer, SoftwareSigner,
    SystemRole, UserCertRequest, X509ServiceRequest, X509UserRequest, ssh_fingerprint,
    verify_issued_by, verify_user_cert,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2030-06-01 12:00 UTC);

fn tool(name: &str, install_hint: &str) -> PathBuf {
    let candidates = [format!("/usr/bin/{name}"), format!("/bin/{name}")];
    for c in candidates {
        if Path::new(&c).exists() {
            return PathBuf::from(c);
        }
    }
    panic!("{name} not found: {install_hint}");
}

fn ssh_keygen() -> PathBuf {
    tool(
        "ssh-keygen",
        "install openssh-client (apt-get install openssh-client)",
    )
}

fn openssl() -> PathBuf {
    tool("openssl", "install openssl (apt-get install openssl)")
}

/// Runs a tool with TZ=UTC (ssh-keygen prints and parses local time) and
/// returns stdout, failing the test with stderr on a non-zero exit.
fn run(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_owned()
}

fn client_key() -> SoftwareSigner {
    SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap()
}

#[test]
fn ssh_keygen_reads_our_user_certificate() {
    let keygen = ssh_keygen();
    let dir = tempfile::tempdir().unwrap();
    let ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let client = client_key().public_key().to_openssh().unwrap();

    let mut extensions = BTreeMap::new();
    extensions.insert(
        "roles@keygate".to_owned(),
        r#"["access","editor"]"#.to_owned(),
    );
    extensions.insert(
        "traits@keygate".to_owned(),
        r#"{"logins":["alice"]}"#.to_owned(),
    );
    for flag in [
        "permit-pty",
        "permit-port-forwarding",
        "permit-agent-forwarding",
        "permit-X11-forwarding",
    ] {
        extensions.insert(flag.to_owned(), String::new());
    }
    let req = UserCertRequest {
        public_key: client.clone(),
        key_id: "alice".to_owned(),
        principals: vec!["alice".to_owned(), "root".to_owned()],
        valid_after: NOW - Duration::seconds(60),
        valid_before: NOW + Duration::hours(12),
        serial: 0x1234_5678_9abc_def0,
        extensions,
    };
    let cert = ca.sign_user_ssh(&req).unwrap();
    write(dir.path(), "id_ed25519.pub", format!("{client}\n"));
    let cert_path = write(dir.path(), "id_ed25519-cert.pub", format!("{cert}\n"));

    // ssh-keygen parses the certificate, checking the CA signature on load.
    let out = run(&keygen, &["-L", "-f", &cert_path]);
    assert!(
        out.contains("Type: ssh-ed25519-cert-v01@openssh.com user certificate"),
        "{out}"
    );
    assert!(out.contains("Key ID: \"alice\""), "{out}");
    assert!(
        out.contains(&format!("Serial: {}", 0x1234_5678_9abc_def0_u64)),
        "{out}"
    );
    assert!(
        out.contains("Valid: from 2030-06-01T11:59:00 to 2030-06-02T00:00:00"),
        "{out}"
    );
    let ca_fp = ssh_fingerprint(&ca.ssh_public_key()).unwrap();
    assert!(
        out.contains(&format!("Signing CA: ED25519 {ca_fp}")),
        "{out}"
    );
    let principals = out
        .split("Principals:")
        .nth(1)
        .unwrap()
        .split("Critical Options:")
        .next()
        .unwrap();
    let principals: Vec<&str> = principals.split_whitespace().collect();
    assert_eq!(principals, ["alice", "root"]);
    assert!(out.contains("Critical Options: (none)"), "{out}");
    let extensions = out.split("Extensions:").nth(1).unwrap();
    for flag in [
        "permit-pty",
        "permit-port-forwarding",
        "permit-agent-forwarding",
        "permit-X11-forwarding",
    ] {
        assert!(
            extensions.lines().any(|l| l.trim() == flag),
            "{flag} missing in {out}"
        );
    }
    assert!(extensions.contains("roles@keygate"), "{out}");
    assert!(extensions.contains("traits@keygate"), "{out}");

    // Our fingerprint format is ssh-keygen's.
    let ca_pub = write(dir.path(), "ca.pub", format!("{}\n", ca.ssh_public_key()));
    let listed = run(&keygen, &["-l", "-f", &ca_pub]);
    assert!(listed.contains(&ca_fp), "{listed} vs {ca_fp}");
}

#[test]
fn ssh_keygen_reads_our_host_certificate() {
    let keygen = ssh_keygen();
    let dir = tempfile::tempdir().unwrap();
    let ca = CertAuthority::generate(CaKind::Host, "example", NOW).unwrap();
    let mut extensions = BTreeMap::new();
    extensions.insert("role@keygate".to_owned(), "node".to_owned());
    let req = HostCertRequest {
        public_key: client_key().public_key().to_openssh().unwrap(),
        key_id: "node-1".to_owned(),
        principals: vec!["node-1".to_owned(), "web01".to_owned()],
        valid_after: NOW,
        valid_before: NOW + Duration::days(1),
        serial: 99,
        extensions,
    };
    let cert = ca.sign_host_ssh(&req).unwrap();
    let path = write(dir.path(), "host-cert.pub", format!("{cert}\n"));
    let out = run(&keygen, &["-L", "-f", &path]);
    assert!(
        out.contains("Type: ssh-ed25519-cert-v01@openssh.com host certificate"),
        "{out}"
    );
    assert!(out.contains("Key ID: \"node-1\""), "{out}");
    assert!(out.contains("Serial: 99"), "{out}");
    assert!(out.contains("node-1") && out.contains("web01"), "{out}");
}

#[test]
fn we_verify_certificates_made_by_ssh_keygen() {
    let keygen = ssh_keygen();
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca");
    let ca_path = ca_path.to_str().unwrap();
    run(
        &keygen,
        &[
            "-q", "-t", "ed25519", "-N", "", "-C", "test-ca", "-f", ca_path,
        ],
    );
    let client = client_key().public_key().to_openssh().unwrap();
    let client_path = write(dir.path(), "client.pub", format!("{client}\n"));
    run(
        &keygen,
        &[
            "-q",
            "-s",
            ca_path,
            "-I",
            "bob",
            "-n",
            "bob,deploy",
            "-z",
            "77",
            "-V",
            "20300601000000:20300602000000",
            &client_path,
        ],
    );
    let cert = std::fs::read_to_string(dir.path().join("client-cert.pub")).unwrap();
    let ca_pub = std::fs::read_to_string(format!("{ca_path}.pub")).unwrap();

    let got = verify_user_cert(&cert, std::slice::from_ref(&ca_pub), NOW).unwrap();
    assert_eq!(got.key_id, "bob");
    assert_eq!(got.principals, ["bob", "deploy"]);
    assert_eq!(got.serial, 77);
    assert_eq!(got.valid_after, datetime!(2030-06-01 0:00 UTC));
    assert_eq!(got.valid_before, datetime!(2030-06-02 0:00 UTC));
    // ssh-keygen's default extensions, values empty.
    assert_eq!(
        got.extensions.get("permit-pty").map(String::as_str),
        Some("")
    );

    assert!(
        verify_user_cert(
            &cert,
            std::slice::from_ref(&ca_pub),
            datetime!(2030-06-02 0:00 UTC)
        )
        .is_err()
    );
    let ours = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    assert!(verify_user_cert(&cert, &[ours.ssh_public_key()], NOW).is_err());

    // A cert with a critical option (force-command) is refused: we never
    // issue them, so one is foreign.
    run(
        &keygen,
        &[
            "-q",
            "-s",
            ca_path,
            "-I",
            "bob",
            "-n",
            "bob",
            "-O",
            "force-command=/bin/true",
            "-V",
            "20300601000000:20300602000000",
            &client_path,
        ],
    );
    let cert = std::fs::read_to_string(dir.path().join("client-cert.pub")).unwrap();
    let err = verify_user_cert(&cert, &[ca_pub], NOW).unwrap_err();
    assert!(err.to_string().contains("critical option"), "{err}");
}

#[test]
fn openssl_accepts_our_x509_chain() {
    let openssl = openssl();
    let dir = tempfile::tempdir().unwrap();
    let user_ca = CertAuthority::generate(CaKind::User, "example", NOW).unwrap();
    let host_ca = CertAuthority::generate(CaKind::Host, "example", NOW).unwrap();
    let client = client_key();

    let mut traits = BTreeMap::new();
    traits.insert("logins".to_owned(), vec!["alice".to_owned()]);
    let user_der = user_ca
        .sign_x509_user(&X509UserRequest {
            public_key_openssh: client.public_key().to_openssh().unwrap(),
            common_name: "alice".to_owned(),
            roles: vec!["access".to_owned()],
            traits,
            not_before: NOW - Duration::seconds(60),
            not_after: NOW + Duration::hours(12),
            serial: 31337,
        })
        .unwrap();
    let service = host_ca
        .sign_x509_service(&X509ServiceRequest {
            key: ServiceKey::GenerateP256,
            common_name: "proxy-1".to_owned(),
            dns_names: vec!["proxy.example.com".to_owned()],
            ip_addresses: vec!["127.0.0.1".parse().unwrap()],
            system_role: SystemRole::Proxy,
            not_before: NOW,
            not_after: NOW + Duration::days(30),
        })
        .unwrap();
    verify_issued_by(&user_der, user_ca.x509_cert_der(), NOW).unwrap();
    verify_issued_by(&service.cert_der, host_ca.x509_cert_der(), NOW).unwrap();

    let user_ca_pem = write(dir.path(), "user-ca.pem", user_ca.x509_cert_pem());
    let host_ca_pem = write(dir.path(), "host-ca.pem", host_ca.x509_cert_pem());
    let user_der_path = write(dir.path(), "alice.der", &user_der);
    let service_pem = write(dir.path(), "proxy.pem", service.cert_pem());
    let service_key = write(
        dir.path(),
        "proxy.key",
        service.private_key_pem().unwrap().as_bytes(),
    );

    let ca_text = run(&openssl, &["x509", "-in", &user_ca_pem, "-noout", "-text"]);
    assert!(ca_text.contains("CA:TRUE, pathlen:0"), "{ca_text}");
    assert!(ca_text.contains("Certificate Sign"), "{ca_text}");
    assert!(
        ca_text.contains("CN = Keygate user CA example"),
        "{ca_text}"
    );

    let user_text = run(
        &openssl,
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            &user_der_path,
            "-noout",
            "-text",
        ],
    );
    assert!(user_text.contains("CA:FALSE"), "{user_text}");
    assert!(
        user_text.contains("TLS Web Client Authentication"),
        "{user_text}"
    );
    assert!(
        !user_text.contains("TLS Web Server Authentication"),
        "{user_text}"
    );
    assert!(user_text.contains("ED25519"), "{user_text}");
    assert!(user_text.contains("1.3.6.1.4.1.59571.1.1"), "{user_text}");
    assert!(user_text.contains("Subject: CN = alice"), "{user_text}");

    let svc_text = run(&openssl, &["x509", "-in", &service_pem, "-noout", "-text"]);
    assert!(
        svc_text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{svc_text}"
    );
    assert!(
        svc_text.contains("DNS:proxy.example.com, IP Address:127.0.0.1"),
        "{svc_text}"
    );

    // Full chain validation by OpenSSL at our simulated time.
    let at = NOW.unix_timestamp().to_string();
    let user_pem = write(
        dir.path(),
        "alice.pem",
        run(&openssl, &["x509", "-inform", "DER", "-in", &user_der_path]),
    );
    let ok = run(
        &openssl,
        &[
            "verify",
            "-attime",
            &at,
            "-purpose",
            "sslclient",
            "-CAfile",
            &user_ca_pem,
            &user_pem,
        ],
    );
    assert!(ok.contains(": OK"), "{ok}");
    let ok = run(
        &openssl,
        &[
            "verify",
            "-attime",
            &at,
            "-purpose",
            "sslserver",
            "-CAfile",
            &host_ca_pem,
            &service_pem,
        ],
    );
    assert!(ok.contains(": OK"), "{ok}");
    // Wrong CA: openssl refuses.
    let refused = Command::new(&openssl)
        .args(["verify", "-attime", &at, "-CAfile", &host_ca_pem, &user_pem])
        .output()
        .unwrap();
    assert!(!refused.status.success());

    // The generated private key is the certificate's key.
    let cert_pub = run(
        &openssl,
        &["x509", "-in", &service_pem, "-noout", "-pubkey"],
    );
    let key_pub = run(&openssl, &["pkey", "-in", &service_key, "-pubout"]);
    assert_eq!(cert_pub, key_pub);
}
