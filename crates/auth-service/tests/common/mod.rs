//! Shared harness for the auth-service integration tests: one in-process
//! `AuthServer` per test on the in-memory backend, a real (SQLite) audit
//! log in a temporary directory and a test clock that only moves when a
//! test moves it.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code, unused_macros)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use keygate_api::{AddUserRequest, CertsResponse, LoginRequest, SignupRequest};
use keygate_audit::{AuditLog, AuditOptions, SearchFilter};
use keygate_audit_model::AuditEvent;
use keygate_auth_service::{AuthError, AuthOptions, AuthServer, Caller, IssueContext};
use keygate_authn::{Argon2Params, TotpSecret, totp_code_at};
use keygate_clock::{Clock, TestClock};
use serde_json::{Value, json};
use tempfile::TempDir;
use time::OffsetDateTime;

/// The first admin's password in every test cluster.
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
/// The OS login the first admin's `logins` trait carries.
pub const ADMIN_LOGIN: &str = "kgt-admin";
/// A password that satisfies the policy, for invited users.
pub const USER_PASSWORD: &str = "tr0ub4dor&3-but-longer";
/// One TOTP step.
pub const STEP: Duration = Duration::from_secs(30);

/// An auth service under test and what the test needs to drive it.
pub struct Cluster {
    /// The service under test.
    pub auth: AuthServer,
    /// Its clock; `advance` instead of sleeping.
    pub clock: TestClock,
    /// A second handle on the service's audit log, for assertions.
    pub audit: AuditLog,
    /// The first admin's enrolled TOTP device.
    pub admin_totp: TotpSecret,
    /// Holds the audit database; removed at the end.
    pub dir: TempDir,
}

/// A cluster with cheap password hashing (every test but the timing one).
pub async fn cluster() -> Cluster {
    cluster_with(Argon2Params::dangerous_cheap_for_tests()).await
}

/// A cluster whose passwords are hashed with `argon2`.
pub async fn cluster_with(argon2: Argon2Params) -> Cluster {
    let clock = TestClock::starting_now();
    let dir = tempfile::tempdir().unwrap();
    let backend: keygate_store::SharedBackend =
        Arc::new(keygate_store::MemoryBackend::new(clock.shared()));
    let audit = AuditLog::open(
        &dir.path().join("audit.db"),
        clock.shared(),
        AuditOptions::default(),
    )
    .await
    .unwrap();
    let kek = keygate_ca::Kek::generate().unwrap();
    let mut opts = AuthOptions::new("test-cluster", ADMIN_LOGIN);
    opts.admin_password = Some(ADMIN_PASSWORD.to_owned());
    opts.argon2 = argon2;
    let (auth, first) = AuthServer::open(backend, audit.clone(), clock.shared(), kek, opts)
        .await
        .unwrap();
    assert!(first.created);
    assert!(
        first.admin_password.is_none(),
        "a given password is not echoed"
    );
    let uri = first
        .admin_totp_uri
        .expect("second_factor defaults to otp, so the admin gets a TOTP device");
    Cluster {
        auth,
        clock,
        audit,
        admin_totp: secret_from_uri(&uri),
        dir,
    }
}

/// The TOTP secret inside an `otpauth://` URI.
pub fn secret_from_uri(uri: &str) -> TotpSecret {
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let query = uri.split_once('?').expect("URI has a query").1;
    let b32 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("secret="))
        .expect("URI has a secret parameter");
    TotpSecret::from_base32(b32).unwrap()
}

/// A fresh client public key line.
pub fn pubkey() -> String {
    keygate_client::ClientKey::generate()
        .public_openssh()
        .unwrap()
}

/// The admin socket caller (the daemon's own OS user).
pub fn admin_socket() -> Caller {
    Caller::AdminSocket {
        os_user: "keygate".into(),
        uid: 1000,
    }
}

/// What `actor.name` says for [`admin_socket`].
pub const ADMIN_SOCKET_ACTOR: &str = "keygate (admin socket)";

/// A certificate-holding user caller.
pub fn user(name: &str) -> Caller {
    Caller::User {
        name: name.into(),
        bot: false,
        remote: None,
    }
}

/// A login request.
pub fn login_req(user: &str, password: &str, otp: Option<String>) -> LoginRequest {
    LoginRequest {
        user: user.into(),
        password: password.into(),
        otp,
        public_key: pubkey(),
        ttl_secs: None,
    }
}

/// A documentation-range address (RFC 5737).
pub fn ip(last: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, last])
}

/// A role resource as the API receives it.
pub fn role_json(name: &str, logins: &[&str], options: Value) -> Value {
    json!({
        "kind": "role",
        "version": "v1",
        "metadata": {"name": name},
        "spec": {
            "options": options,
            "allow": {"logins": logins, "node_labels": {"*": "*"}},
        },
    })
}

/// A lock on one user.
pub fn user_lock_json(
    name: &str,
    user: &str,
    message: &str,
    expires: Option<OffsetDateTime>,
) -> Value {
    let mut metadata = json!({"name": name});
    if let Some(e) = expires {
        metadata["expires"] = json!(
            e.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        );
    }
    json!({
        "kind": "lock",
        "version": "v1",
        "metadata": metadata,
        "spec": {"target": {"user": user}, "message": message},
    })
}

/// Asserts that `$result` failed with `AuthError::$variant` and yields its
/// message.
macro_rules! assert_err {
    ($result:expr, $variant:ident) => {{
        match $result {
            Err(keygate_auth_service::AuthError::$variant(msg)) => msg,
            Err(other) => panic!("expected {}, got {other:?}", stringify!($variant)),
            Ok(_) => panic!("expected {}, got Ok", stringify!($variant)),
        }
    }};
}

impl Cluster {
    /// Now, by the cluster's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Moves to the next TOTP step (each code works once per step) and
    /// returns the code the admin's authenticator shows there.
    pub fn next_admin_code(&self) -> String {
        self.next_code(&self.admin_totp)
    }

    /// Like [`next_admin_code`](Self::next_admin_code) for any device.
    pub fn next_code(&self, secret: &TotpSecret) -> String {
        self.clock.advance(STEP);
        self.code(secret)
    }

    /// The code `secret` shows now, without moving the clock.
    pub fn code(&self, secret: &TotpSecret) -> String {
        totp_code_at(secret, self.now()).unwrap()
    }

    /// A six-digit code that is valid in none of the accepted steps.
    pub fn wrong_code(&self, secret: &TotpSecret) -> String {
        let valid: Vec<String> = [-30i64, 0, 30]
            .iter()
            .map(|d| totp_code_at(secret, self.now() + time::Duration::seconds(*d)).unwrap())
            .collect();
        (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .find(|c| !valid.contains(c))
            .unwrap()
    }

    /// Logs the admin in with password and a fresh code.
    pub async fn admin_login(&self) -> Result<CertsResponse, AuthError> {
        let code = self.next_admin_code();
        self.auth
            .login(login_req("admin", ADMIN_PASSWORD, Some(code)), None)
            .await
    }

    /// Invites `name` with `roles` and `logins`, returning the token.
    pub async fn invite(&self, name: &str, roles: &[&str], logins: &[&str]) -> String {
        let traits = BTreeMap::from([(
            "logins".to_owned(),
            logins.iter().map(|l| (*l).to_owned()).collect(),
        )]);
        let token = self
            .auth
            .add_user(
                &admin_socket(),
                AddUserRequest {
                    name: name.into(),
                    roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                    traits,
                    token_ttl_secs: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(token.user, name);
        token.token
    }

    /// Invites `name` and completes the sign-up with [`USER_PASSWORD`];
    /// returns the user's TOTP device.
    pub async fn signed_up_user(&self, name: &str, roles: &[&str], logins: &[&str]) -> TotpSecret {
        let token = self.invite(name, roles, logins).await;
        let resp = self
            .auth
            .signup(SignupRequest {
                token,
                password: USER_PASSWORD.into(),
            })
            .await
            .unwrap();
        secret_from_uri(&resp.totp_uri.expect("TOTP is required by default"))
    }

    /// Certificates for `user` without a login (what the admin API and the
    /// tests of issuance use).
    pub async fn issue(
        &self,
        user: &str,
        ttl: Option<Duration>,
    ) -> Result<CertsResponse, AuthError> {
        let ctx = IssueContext {
            method: "test",
            ..IssueContext::default()
        };
        self.auth.issue_user_certs(user, &pubkey(), ttl, &ctx).await
    }

    /// Audit events named `event` (about `user`, when given), newest first.
    pub async fn events(&self, event: &str, user: Option<&str>) -> Vec<AuditEvent> {
        self.audit
            .search(&SearchFilter {
                event: Some(event.into()),
                user: user.map(str::to_owned),
                limit: 1000,
                ..SearchFilter::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.event)
            .collect()
    }

    /// The newest event named `event` about `user`; fails if there is none.
    pub async fn last_event(&self, event: &str, user: Option<&str>) -> AuditEvent {
        self.events(event, user)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {event} event for {user:?}"))
    }
}

/// An extra field of an event.
pub fn field<'a>(ev: &'a AuditEvent, key: &str) -> &'a Value {
    ev.fields
        .get(key)
        .unwrap_or_else(|| panic!("event {} has no field {key}: {ev:?}", ev.event))
}

/// Asserts the standard shape of a refused login event.
pub fn assert_failed_login(ev: &AuditEvent, user: &str, reason: &str) {
    assert_eq!(ev.event, "user.login");
    assert_eq!(ev.code, "KG1000W");
    assert_eq!(ev.success, Some(false));
    assert_eq!(ev.user.as_deref(), Some(user));
    assert_eq!(ev.error.as_deref(), Some(reason), "{ev:?}");
}
