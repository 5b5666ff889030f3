//! Who may log in: certificate checks, the [`Authorizer`] hook and the OS
//! account behind a login.

use std::ffi::CString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use keygate_ca::VerifiedSshCert;
use nix::unistd::{Gid, Uid, User};
use russh::keys::Certificate;
use time::OffsetDateTime;

use crate::error::{Result, SshdError};

/// The certificate extension holding the user's roles (a JSON array).
pub const ROLES_EXTENSION: &str = "roles@keygate";
/// OpenSSH's flag extensions that gate features, checked in addition to the
/// [`SessionGrant`] (both must allow).
pub(crate) const PERMIT_PTY: &str = "permit-pty";
pub(crate) const PERMIT_PORT_FORWARDING: &str = "permit-port-forwarding";
pub(crate) const PERMIT_AGENT_FORWARDING: &str = "permit-agent-forwarding";

/// Decides whether a verified certificate may open a session as `login`.
/// The node service implements it with `keygate-policy`.
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync + 'static {
    /// The user-CA public keys (OpenSSH lines) currently trusted (active and,
    /// during rotation, next).
    fn trusted_user_ca_keys(&self) -> Vec<String>;

    /// Called after this crate verified the certificate (CA, type user,
    /// validity, no critical options, login ∈ principals) and found the OS
    /// login. `Err` carries the denial message shown to the user and
    /// audited.
    async fn authorize(&self, req: &AuthRequest) -> Result<SessionGrant, String>;
}

/// What [`Authorizer::authorize`] decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The verified certificate.
    pub cert: VerifiedSshCert,
    /// The OS login asked for (one of the certificate's principals).
    pub login: String,
    /// The client's address as this server sees it.
    pub remote: SocketAddr,
}

/// What an authorized session may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionGrant {
    /// Local port forwarding (`ssh -L`) allowed by the roles (the
    /// certificate must also carry `permit-port-forwarding`).
    pub port_forwarding: bool,
    /// Agent forwarding (`ssh -A`) allowed by the roles (the certificate must
    /// also carry `permit-agent-forwarding`).
    pub agent_forwarding: bool,
    /// Close the session after this long without client activity
    /// (`client_idle_timeout`).
    pub idle_timeout: Option<Duration>,
    /// Close the session at this time (the certificate's expiry when
    /// `disconnect_expired_cert` is set).
    pub disconnect_at: Option<OffsetDateTime>,
}

/// A certificate that was refused, with what can be said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The key id, only once the certificate verified.
    pub user: Option<String>,
    /// Why (for the audit log; never shown to unauthenticated clients).
    pub reason: String,
}

/// Verifies an offered certificate for `login`: trusted CA, user type,
/// validity at `now`, no critical options, and `login` among the principals.
pub(crate) fn check_certificate(
    cert: &Certificate,
    login: &str,
    trusted_ca_keys: &[String],
    now: OffsetDateTime,
) -> Result<VerifiedSshCert, Refusal> {
    let line = cert.to_openssh().map_err(|e| Refusal {
        user: None,
        reason: format!("certificate could not be re-encoded: {e}"),
    })?;
    let verified =
        keygate_ca::verify_user_cert(&line, trusted_ca_keys, now).map_err(|e| Refusal {
            user: None,
            reason: format!("certificate refused: {e}"),
        })?;
    if !verified.principals.iter().any(|p| p == login) {
        return Err(Refusal {
            reason: format!(
                "login {login:?} is not a principal of the certificate (principals: {})",
                verified.principals.join(", ")
            ),
            user: Some(verified.key_id),
        });
    }
    Ok(verified)
}

/// The roles named by the certificate's `roles@keygate` extension (empty if
/// absent or not a JSON array of strings).
pub(crate) fn cert_roles(cert: &VerifiedSshCert) -> Vec<String> {
    cert.extensions
        .get(ROLES_EXTENSION)
        .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
        .unwrap_or_default()
}

/// Whether the certificate carries a flag extension.
pub(crate) fn cert_permits(cert: &VerifiedSshCert, extension: &str) -> bool {
    cert.extensions.contains_key(extension)
}

/// The OS account a session runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginUser {
    /// The login name.
    pub name: String,
    /// Its uid.
    pub uid: Uid,
    /// Its primary gid.
    pub gid: Gid,
    /// All its groups, looked up before any fork (the lookup is not safe to
    /// run between fork and exec).
    pub groups: Vec<Gid>,
    /// Its home directory.
    pub home: PathBuf,
    /// Its login shell (`/bin/sh` when the passwd entry has none).
    pub shell: PathBuf,
    /// Whether spawning must switch to this user (the daemon is root); an
    /// unprivileged daemon only serves its own user and switches nothing.
    pub switch: bool,
}

/// Finds `login` in the host's user database and checks that this daemon
/// can run processes as it.
pub(crate) fn lookup_login(login: &str) -> Result<LoginUser> {
    let no_such = || SshdError::NoSuchLogin {
        login: login.to_owned(),
    };
    let c_login = CString::new(login).map_err(|_| no_such())?;
    let user = User::from_name(login)
        .map_err(|source| SshdError::UserLookup {
            login: login.to_owned(),
            source,
        })?
        .ok_or_else(no_such)?;
    let euid = Uid::effective();
    let switch = if euid.is_root() {
        true
    } else if euid == user.uid {
        false
    } else {
        let daemon_user = User::from_uid(euid)
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {euid}"), |u| u.name);
        return Err(SshdError::Unprivileged {
            login: login.to_owned(),
            daemon_user,
        });
    };
    let groups = if switch {
        nix::unistd::getgrouplist(&c_login, user.gid).map_err(|source| SshdError::UserLookup {
            login: login.to_owned(),
            source,
        })?
    } else {
        Vec::new()
    };
    let shell = if user.shell.as_os_str().is_empty() {
        PathBuf::from("/bin/sh")
    } else {
        user.shell
    };
    Ok(LoginUser {
        name: user.name,
        uid: user.uid,
        gid: user.gid,
        groups,
        home: user.dir,
        shell,
        switch,
    })
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use std::collections::BTreeMap;

    use super::*;

    fn cert_with(ext: &[(&str, &str)]) -> VerifiedSshCert {
        VerifiedSshCert {
            key_id: "alice".into(),
            principals: vec!["alice".into()],
            serial: 1,
            valid_after: OffsetDateTime::UNIX_EPOCH,
            valid_before: OffsetDateTime::UNIX_EPOCH,
            extensions: ext
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            public_key: String::new(),
        }
    }

    #[test]
    fn roles_come_from_the_extension() {
        assert_eq!(
            cert_roles(&cert_with(&[(ROLES_EXTENSION, r#"["dev","ops"]"#)])),
            vec!["dev".to_owned(), "ops".to_owned()]
        );
    }

    #[test]
    fn malformed_or_missing_roles_are_empty() {
        for bad in ["", "dev", "{\"a\":1}", "[1,2]", "[\"x\""] {
            assert!(
                cert_roles(&cert_with(&[(ROLES_EXTENSION, bad)])).is_empty(),
                "{bad}"
            );
        }
        assert!(cert_roles(&cert_with(&[])).is_empty());
    }

    #[test]
    fn flag_extensions_are_checked_by_name() {
        let c = cert_with(&[(PERMIT_PTY, "")]);
        assert!(cert_permits(&c, PERMIT_PTY));
        assert!(!cert_permits(&c, PERMIT_PORT_FORWARDING));
    }

    #[test]
    fn unknown_and_malformed_logins_are_refused() {
        for login in ["kgt-no-such-user-here", "a\0b", ""] {
            let err = lookup_login(login).unwrap_err();
            assert!(
                matches!(err, SshdError::NoSuchLogin { .. }),
                "{login:?}: {err}"
            );
        }
    }

    #[test]
    fn root_is_found_with_its_groups() {
        let root = lookup_login("root").unwrap();
        assert_eq!(root.uid, Uid::from_raw(0));
        if Uid::effective().is_root() {
            assert!(root.switch);
            assert!(root.groups.contains(&Gid::from_raw(0)));
        }
    }
}
