//! First start and every start: the cluster name, the CAs, built-in roles,
//! the default auth preference and the first admin.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use keygate_audit::AuditLog;
use keygate_audit_model::{Actor, ActorKind, EventType};
use keygate_authn::{Argon2Params, Password, hash_password_with};
use keygate_ca::{CaKind, CertAuthority, Kek, StoredCa};
use keygate_clock::SharedClock;
use keygate_store::SharedBackend;
use keygate_types::{
    AnyResource, AuthPreference, AuthPreferenceSpec, Kind, Resource, User, UserSpec,
};
use rand::Rng;

use crate::login::LocalAuth;
use crate::ratelimit::FailureLimiter;
use crate::repo::{CLUSTER_NAME_KEY, Repo, ca_key, local_auth_key};
use crate::server::Inner;
use crate::{AuthError, AuthServer};

/// Password hashes computed at once; more logins wait their turn.
const MAX_CONCURRENT_HASHES: usize = 4;

/// Settings of the auth service.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// Cluster name used on first start (ignored afterwards).
    pub cluster_name: String,
    /// OS login given to the first admin's `logins` trait.
    pub admin_login: String,
    /// First admin's password; generated (and returned once) when None.
    pub admin_password: Option<String>,
    /// Password hashing cost.
    pub argon2: Argon2Params,
    /// Certificate lifetime when the client asks for none.
    pub default_cert_ttl: Duration,
    /// Longest user certificate, whatever the roles say (30 h: a working
    /// day with slack, so a stolen certificate dies by tomorrow).
    pub max_user_cert_ttl: Duration,
    /// The proxy's public address (for hints in `kgctl` output).
    pub proxy_addr: Option<String>,
    /// Where nodes dial their reverse tunnel.
    pub tunnel_addr: Option<String>,
    /// Status of the audit exporters running beside auth
    /// (`kgctl audit exporters`).
    pub exporters: Option<ExporterStatusSource>,
}

/// Reads the audit exporters' status (as JSON objects) when asked.
#[derive(Clone)]
pub struct ExporterStatusSource(
    pub std::sync::Arc<dyn Fn() -> Vec<serde_json::Value> + Send + Sync>,
);

impl std::fmt::Debug for ExporterStatusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExporterStatusSource")
    }
}

impl AuthOptions {
    pub fn new(cluster_name: impl Into<String>, admin_login: impl Into<String>) -> Self {
        Self {
            cluster_name: cluster_name.into(),
            admin_login: admin_login.into(),
            admin_password: None,
            argon2: Argon2Params::OWASP,
            default_cert_ttl: Duration::from_secs(12 * 3600),
            max_user_cert_ttl: Duration::from_secs(30 * 3600),
            proxy_addr: None,
            tunnel_addr: None,
            exporters: None,
        }
    }
}

/// What only the very first start produces.
#[derive(Default)]
pub struct FirstStart {
    /// The generated one-time admin password (None when given or not the
    /// first start).
    pub admin_password: Option<String>,
    /// The admin's TOTP enrolment (`otpauth://` URI) when the cluster
    /// requires a second factor. Shown once.
    pub admin_totp_uri: Option<String>,
    /// Whether this start created the cluster.
    pub created: bool,
}

impl std::fmt::Debug for FirstStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstStart")
            .field("admin_password", &"<redacted>")
            .field("admin_totp_uri", &"<redacted>")
            .field("created", &self.created)
            .finish()
    }
}

/// Reads the key-encryption key from `path`, creating it (mode 0600) on
/// first start. A key readable by group or others is refused.
pub fn load_or_create_kek(path: &Path) -> Result<Kek, AuthError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(path)
                .map_err(AuthError::internal)?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(AuthError::Internal(format!(
                    "key-encryption key {} is readable by other users (mode {:o}); run: chmod 600 {}",
                    path.display(),
                    mode & 0o777,
                    path.display()
                )));
            }
            Kek::from_bytes(&bytes)
                .map_err(|e| AuthError::Internal(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let kek = Kek::generate()?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| {
                    AuthError::Internal(format!("cannot create {}: {e}", path.display()))
                })?;
            f.write_all(kek.to_bytes().as_ref())
                .map_err(AuthError::internal)?;
            f.sync_all().map_err(AuthError::internal)?;
            Ok(kek)
        }
        Err(e) => Err(AuthError::Internal(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..24)
        .map(|_| {
            char::from(
                ALPHABET
                    .get(rng.gen_range(0..ALPHABET.len()))
                    .copied()
                    .unwrap_or(b'x'),
            )
        })
        .collect()
}

async fn load_or_create_ca(
    repo: &Repo,
    kek: &Kek,
    kind: CaKind,
    cluster: &str,
    clock: &SharedClock,
) -> Result<CertAuthority, AuthError> {
    let key = ca_key(kind.as_str());
    if let Some((stored, _)) = repo.get_json::<StoredCa>(&key).await? {
        return CertAuthority::from_stored(&stored, kek).map_err(|e| {
            AuthError::Internal(format!(
                "cannot open the {} CA: {e}; is the key-encryption key the one this cluster was created with?",
                kind.as_str()
            ))
        });
    }
    let ca = CertAuthority::generate(kind, cluster, clock.now())?;
    if !repo.cas_json(&key, 0, &ca.to_stored(kek)?).await? {
        return Err(AuthError::Conflict(format!(
            "the {} CA was created concurrently; restart",
            kind.as_str()
        )));
    }
    tracing::info!(kind = kind.as_str(), "created certificate authority");
    Ok(ca)
}

impl AuthServer {
    /// Opens (and on first start creates) the cluster state.
    pub async fn open(
        backend: SharedBackend,
        audit: AuditLog,
        clock: SharedClock,
        kek: Kek,
        opts: AuthOptions,
    ) -> Result<(AuthServer, FirstStart), AuthError> {
        let repo = Repo::new(backend);
        let mut first = FirstStart::default();
        let cluster = match repo.get_json::<String>(CLUSTER_NAME_KEY).await? {
            Some((name, _)) => name,
            None => {
                keygate_types::validate_name("cluster name", &opts.cluster_name)?;
                repo.cas_json(CLUSTER_NAME_KEY, 0, &opts.cluster_name)
                    .await?;
                first.created = true;
                opts.cluster_name.clone()
            }
        };
        let user_ca = load_or_create_ca(&repo, &kek, CaKind::User, &cluster, &clock).await?;
        let host_ca = load_or_create_ca(&repo, &kek, CaKind::Host, &cluster, &clock).await?;
        let audit_ca = load_or_create_ca(&repo, &kek, CaKind::Audit, &cluster, &clock).await?;
        // For agentless OpenSSH hosts: the proxy's per-session certificates
        // (never given to users).
        let openssh_ca = load_or_create_ca(&repo, &kek, CaKind::OpenSsh, &cluster, &clock).await?;
        let server = AuthServer::from_inner(Inner {
            repo,
            audit,
            clock,
            kek,
            cluster,
            user_ca: crate::server::CaSlot::new(user_ca),
            host_ca: crate::server::CaSlot::new(host_ca),
            audit_ca: crate::server::CaSlot::new(audit_ca),
            openssh_ca: crate::server::CaSlot::new(openssh_ca),
            limiter: FailureLimiter::default(),
            unknown_users: FailureLimiter::default(),
            last_compaction: std::sync::atomic::AtomicU64::new(0),
            checkpoint_seq: std::sync::atomic::AtomicU64::new(0),
            checkpoint_at: std::sync::atomic::AtomicU64::new(0),
            checkpoint_events: std::sync::atomic::AtomicU64::new(0),
            verified: Default::default(),
            hash_permits: tokio::sync::Semaphore::new(MAX_CONCURRENT_HASHES),
            opts,
        });
        server.ensure_defaults().await?;
        if first.created {
            let (password, totp_uri) = server.create_first_admin().await?;
            first.admin_password = password;
            first.admin_totp_uri = totp_uri;
        }
        Ok((server, first))
    }

    /// Built-in roles and the auth preference exist on every start (an
    /// admin's edits to them are kept).
    async fn ensure_defaults(&self) -> Result<(), AuthError> {
        for role in keygate_types::builtin_roles() {
            if self.repo().get_role(role.name()).await?.is_none() {
                let _ = self
                    .repo()
                    .put_resource(&AnyResource::Role(role), Some(0))
                    .await;
            }
        }
        if self
            .repo()
            .get_resource(Kind::AuthPreference, "cluster")
            .await?
            .is_none()
        {
            let pref: AuthPreference = Resource::new(
                Kind::AuthPreference,
                "cluster",
                AuthPreferenceSpec::default(),
            );
            let _ = self
                .repo()
                .put_resource(&AnyResource::AuthPreference(pref), Some(0))
                .await;
        }
        Ok(())
    }

    /// Creates `admin` with a password and, when the cluster requires a
    /// second factor, an enrolled TOTP device (the URI is shown once).
    async fn create_first_admin(&self) -> Result<(Option<String>, Option<String>), AuthError> {
        let opts = self.opts();
        let (password, generated) = match &opts.admin_password {
            Some(p) => (p.clone(), false),
            None => (generate_password(), true),
        };
        let mut user: User = Resource::new(
            Kind::User,
            "admin",
            UserSpec {
                roles: vec!["admin".parse()?],
                traits: [("logins".to_owned(), vec![opts.admin_login.clone()])]
                    .into_iter()
                    .collect(),
                ..UserSpec::default()
            },
        );
        user.spec.status.has_password = true;
        let hash = hash_password_with(&Password::new(password.clone()), opts.argon2)
            .map_err(AuthError::internal)?;
        let pref = self.auth_preference().await?;
        let (totp, uri) = if pref.second_factor_wants_totp() {
            let (stored, uri) = self.new_totp("admin")?;
            (Some(stored), Some(uri))
        } else {
            (None, None)
        };
        user.spec.status.has_totp = totp.is_some();
        self.repo()
            .put_resource(&AnyResource::User(user), Some(0))
            .await?;
        let auth = LocalAuth {
            password_hash: Some(hash),
            totp,
        };
        self.repo()
            .put_json(&local_auth_key("admin"), &auth)
            .await?;
        let actor = Actor {
            name: "keygate".into(),
            kind: ActorKind::System,
            via: None,
        };
        self.audit(
            self.event(EventType::UserCreate)
                .user("admin")
                .actor(actor)
                .success(true),
        )
        .await?;
        Ok((generated.then_some(password), uri))
    }
}
