//! Acceptance tests against the real OpenSSH: certificates issued by the
//! auth service are judged by `/usr/sbin/sshd` and read by `ssh-keygen`,
//! not by our own parser. Needs root and openssh-server (the test kit fails
//! with instructions when either is missing; nothing is skipped).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::Duration;

use keygate_api::CertsResponse;
use keygate_auth_service::{AuthOptions, AuthServer, Caller, IssueContext};
use keygate_ca::CaKind;
use keygate_clock::{Clock, SystemClock, TestClock};
use keygate_testkit::{CertListing, ClientKey, OsUser, Sshd, SshdConfig, ssh_exec, ssh_keygen_l};
use serde_json::json;
use tempfile::TempDir;

const HOUR: Duration = Duration::from_secs(3600);
/// Certificates start this long before issuance (clock-skew allowance).
const BACKDATE: Duration = Duration::from_secs(60);

/// An auth service on an in-memory backend, with its files in `dir`.
struct Cluster {
    /// The service under test.
    auth: AuthServer,
    /// Its clock, so tests can compute expected validity.
    clock: TestClock,
    /// Audit database and client key files; removed at the end.
    dir: TempDir,
}

async fn cluster(admin_login: &str, clock: TestClock) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let backend: keygate_store::SharedBackend =
        Arc::new(keygate_store::MemoryBackend::new(clock.shared()));
    let audit = keygate_audit::AuditLog::open(
        &dir.path().join("audit.db"),
        clock.shared(),
        keygate_audit::AuditOptions::default(),
    )
    .await
    .unwrap();
    let kek = keygate_ca::Kek::generate().unwrap();
    let mut opts = AuthOptions::new("test-cluster", admin_login);
    opts.argon2 = keygate_authn::Argon2Params::dangerous_cheap_for_tests();
    let (auth, _first) = AuthServer::open(backend, audit, clock.shared(), kek, opts)
        .await
        .unwrap();
    Cluster { auth, clock, dir }
}

impl Cluster {
    /// A fresh client key and a certificate for `user` written beside it.
    async fn issue(
        &self,
        user: &str,
        ttl: Duration,
    ) -> (ClientKey, std::path::PathBuf, CertsResponse) {
        let key = ClientKey::generate_named(self.dir.path(), &format!("id_{user}")).unwrap();
        let ctx = IssueContext {
            method: "test",
            ..Default::default()
        };
        let certs = self
            .auth
            .issue_user_certs(user, &key.public_line, Some(ttl), &ctx)
            .await
            .unwrap();
        let cert_path = key.write_cert(&certs.ssh_cert).unwrap();
        (key, cert_path, certs)
    }

    /// An sshd trusting this cluster's user CA.
    fn sshd(&self) -> Sshd {
        let ca = self.auth.ca(CaKind::User).unwrap().ssh_public_key();
        Sshd::start(SshdConfig {
            trusted_user_ca_keys: vec![ca],
            ..SshdConfig::default()
        })
        .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn cert_accepted_for_listed_login() {
    let user = OsUser::create().unwrap();
    let c = cluster(user.name(), TestClock::starting_now()).await;
    let (key, cert, certs) = c.issue("admin", HOUR).await;
    assert!(
        certs.principals.iter().any(|p| p == user.name()),
        "{:?}",
        certs.principals
    );
    // The CA key the response tells clients to trust is the one sshd trusts.
    assert_eq!(
        certs.user_ca_ssh,
        vec![c.auth.ca(CaKind::User).unwrap().ssh_public_key()]
    );
    let sshd = c.sshd();

    let out = ssh_exec(sshd.port(), user.name(), &key.private_key, &cert, "id -un").unwrap();

    assert!(
        out.status.success(),
        "ssh failed: {}\n--- sshd log ---\n{}",
        text(&out.stderr),
        sshd.log()
    );
    assert_eq!(text(&out.stdout), format!("{}\n", user.name()));
    let log = sshd.log();
    assert!(
        log.contains(&format!("Accepted publickey for {}", user.name())),
        "{log}"
    );
    assert!(
        log.contains("ID admin"),
        "sshd should log the certificate's key ID: {log}"
    );
}

#[tokio::test]
async fn cert_refused_for_unlisted_login() {
    let listed = OsUser::create().unwrap();
    let unlisted = OsUser::create().unwrap();
    let c = cluster(listed.name(), TestClock::starting_now()).await;
    let (key, cert, certs) = c.issue("admin", HOUR).await;
    assert!(!certs.principals.iter().any(|p| p == unlisted.name()));
    let sshd = c.sshd();

    let out = ssh_exec(
        sshd.port(),
        unlisted.name(),
        &key.private_key,
        &cert,
        "id -un",
    )
    .unwrap();

    assert_eq!(
        out.status.code(),
        Some(255),
        "ssh should be refused; stdout: {}",
        text(&out.stdout)
    );
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
    let log = sshd.log();
    assert!(log.contains("name is not a listed principal"), "{log}");
    assert!(!log.contains("Accepted publickey"), "{log}");
}

#[tokio::test]
async fn expired_cert_refused() {
    let user = OsUser::create().unwrap();
    // Issued "two hours ago" for one hour: expired by the real time sshd
    // judges by, with no sleeping.
    let clock = TestClock::at(SystemClock::new().now() - 2 * HOUR);
    let c = cluster(user.name(), clock).await;
    let (key, cert, certs) = c.issue("admin", HOUR).await;
    assert!(certs.valid_before < SystemClock::new().now());
    let sshd = c.sshd();

    let out = ssh_exec(sshd.port(), user.name(), &key.private_key, &cert, "id -un").unwrap();

    assert_eq!(
        out.status.code(),
        Some(255),
        "expired cert accepted: {}",
        text(&out.stdout)
    );
    assert!(out.stdout.is_empty());
    let log = sshd.log();
    assert!(log.contains("Certificate invalid: expired"), "{log}");
    assert!(!log.contains("Accepted publickey"), "{log}");
}

#[tokio::test]
async fn ssh_keygen_shows_identity() {
    let login = "kgt-listing";
    let c = cluster(login, TestClock::starting_now()).await;
    let (_key, cert, certs) = c.issue("admin", HOUR).await;

    let out = ssh_keygen_l(&cert).unwrap();
    let listing = CertListing::parse(&out).unwrap();

    assert!(out.contains("Key ID: \"admin\""), "{out}");
    assert!(
        out.contains("Type: ssh-ed25519-cert-v01@openssh.com user certificate"),
        "{out}"
    );
    assert_eq!(listing.key_id, "admin");
    assert_eq!(
        listing.cert_type,
        "ssh-ed25519-cert-v01@openssh.com user certificate"
    );
    assert!(listing.principals.iter().any(|p| p == login), "{out}");
    assert_eq!(listing.principals, certs.principals);
    assert_eq!(listing.serial, certs.serial);
    assert!(listing.has_extension("permit-pty"), "{out}");
    assert!(listing.has_extension("roles@keygate"), "{out}");

    let window = listing.validity().expect("bounded validity");
    assert!(
        window <= HOUR + BACKDATE,
        "window {window:?} exceeds TTL + backdating\n{out}"
    );
    assert!(
        window >= HOUR,
        "window {window:?} shorter than the TTL asked for\n{out}"
    );
    let issued = c.clock.now();
    assert_eq!(
        listing.valid_from_utc().unwrap().unix_timestamp(),
        (issued - BACKDATE).unix_timestamp()
    );
    assert_eq!(
        listing.valid_to_utc().unwrap().unix_timestamp(),
        certs.valid_before.unix_timestamp()
    );
}

#[tokio::test]
async fn max_session_ttl_caps_certificates() {
    let user = OsUser::create().unwrap();
    let c = cluster("kgt-unused-admin", TestClock::starting_now()).await;
    let admin = Caller::AdminSocket {
        os_user: "root".into(),
        uid: 0,
    };
    let role = json!({
        "kind": "role",
        "version": "v1",
        "metadata": { "name": "short-sessions" },
        "spec": { "options": { "max_session_ttl": "1h" } }
    });
    c.auth.put(&admin, role, false).await.unwrap();
    let bob = json!({
        "kind": "user",
        "version": "v1",
        "metadata": { "name": "bob" },
        "spec": { "roles": ["short-sessions", "access"], "traits": { "logins": [user.name()] } }
    });
    c.auth.put(&admin, bob, false).await.unwrap();

    let (key, cert, certs) = c.issue("bob", 12 * HOUR).await;

    let issued = c.clock.now();
    assert!(
        certs.valid_before - issued <= HOUR,
        "valid_before {} is past the 1h cap",
        certs.valid_before
    );
    let out = ssh_keygen_l(&cert).unwrap();
    let listing = CertListing::parse(&out).unwrap();
    assert_eq!(listing.key_id, "bob");
    let window = listing.validity().expect("bounded validity");
    assert!(
        window <= HOUR + BACKDATE,
        "window {window:?} ignores max_session_ttl 1h\n{out}"
    );
    // The capped certificate still works where its roles allow.
    let sshd = c.sshd();
    let ssh = ssh_exec(sshd.port(), user.name(), &key.private_key, &cert, "id -un").unwrap();
    assert!(
        ssh.status.success(),
        "ssh failed: {}\n--- sshd log ---\n{}",
        text(&ssh.stderr),
        sshd.log()
    );
    assert_eq!(text(&ssh.stdout), format!("{}\n", user.name()));
}
