//! Profiles under `KEYGATE_HOME` (default `~/.keygate`): one directory per
//! proxy, holding the key (0600), certificates, the host CA and a
//! `known_hosts` with `@cert-authority` lines.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use keygate_api::CertsResponse;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{ClientError, ClientKey};

/// The root of all profiles.
#[derive(Debug, Clone)]
pub struct Home {
    /// `KEYGATE_HOME`.
    root: PathBuf,
}

/// What a `kg login` left behind, as `kg status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// Proxy address (`host:port`).
    pub proxy: String,
    /// Logged-in user.
    pub user: String,
    /// Cluster name.
    pub cluster: String,
    /// Host CA pin.
    pub ca_pin: String,
    /// Roles at issuance.
    pub roles: Vec<String>,
    /// Logins in the certificate.
    pub logins: Vec<String>,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    /// The profile directory (not stored).
    #[serde(skip)]
    pub dir: PathBuf,
}

fn io(what: &str, p: &Path, e: std::io::Error) -> ClientError {
    ClientError::Io(format!("cannot {what} {}: {e}", p.display()))
}

/// Writes a file atomically (temp + rename) with the given mode.
pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), ClientError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io("write", &tmp, e))?;
    f.write_all(contents).map_err(|e| io("write", &tmp, e))?;
    f.sync_all().map_err(|e| io("sync", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("replace", path, e))
}

/// Writes a secret file (mode 0600) atomically.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), ClientError> {
    write_file(path, contents, 0o600)
}

impl Home {
    /// `KEYGATE_HOME`, else `~/.keygate`.
    pub fn from_env() -> Self {
        let root = std::env::var_os("KEYGATE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/"))
                    .join(".keygate")
            });
        Self { root }
    }

    /// A home at an explicit path.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory of one proxy's profile.
    pub fn profile_dir(&self, proxy: &str) -> PathBuf {
        self.root.join(proxy.replace('/', "_"))
    }

    /// Stores a login's results and makes it the current profile.
    pub fn save(
        &self,
        proxy: &str,
        ca_pin: &str,
        key: &ClientKey,
        certs: &CertsResponse,
    ) -> Result<Profile, ClientError> {
        let dir = self.profile_dir(proxy);
        let keys = dir.join("keys");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&keys)
            .map_err(|e| io("create", &keys, e))?;
        let user = &certs.user;
        write_file(&keys.join(user), key.to_openssh()?.as_bytes(), 0o600)?;
        write_file(
            &keys.join(format!("{user}.pub")),
            format!("{}\n", key.public_openssh()?).as_bytes(),
            0o644,
        )?;
        write_file(
            &keys.join(format!("{user}-cert.pub")),
            format!("{}\n", certs.ssh_cert.trim()).as_bytes(),
            0o644,
        )?;
        write_file(
            &keys.join(format!("{user}-x509.pem")),
            certs.x509_cert_pem.as_bytes(),
            0o644,
        )?;
        write_file(&dir.join("ca.pem"), certs.host_ca_pem.as_bytes(), 0o644)?;
        let known: String = certs
            .host_ca_ssh
            .iter()
            .map(|k| format!("@cert-authority * {}\n", k.trim()))
            .collect();
        write_file(&dir.join("known_hosts"), known.as_bytes(), 0o644)?;
        let logins = certs
            .principals
            .iter()
            .filter(|p| !p.starts_with('-'))
            .cloned()
            .collect();
        let profile = Profile {
            proxy: proxy.to_owned(),
            user: user.clone(),
            cluster: certs.cluster.clone(),
            ca_pin: ca_pin.to_owned(),
            roles: certs.roles.clone(),
            logins,
            valid_until: certs.valid_before,
            dir: dir.clone(),
        };
        let json =
            serde_json::to_vec_pretty(&profile).map_err(|e| ClientError::Io(e.to_string()))?;
        write_file(&dir.join("profile.json"), &json, 0o600)?;
        write_file(&self.root.join("current"), proxy.as_bytes(), 0o600)?;
        Ok(profile)
    }

    /// The profile `kg login` last wrote.
    pub fn current(&self) -> Result<Profile, ClientError> {
        let proxy = std::fs::read_to_string(self.root.join("current")).map_err(|_| {
            ClientError::Profile("not logged in: run kg login --proxy HOST:PORT".into())
        })?;
        self.load(proxy.trim())
    }

    /// One proxy's profile.
    pub fn load(&self, proxy: &str) -> Result<Profile, ClientError> {
        let dir = self.profile_dir(proxy);
        let text = std::fs::read(dir.join("profile.json")).map_err(|_| {
            ClientError::Profile(format!(
                "no profile for {proxy}: run kg login --proxy {proxy}"
            ))
        })?;
        let mut p: Profile = serde_json::from_slice(&text).map_err(|e| {
            ClientError::Profile(format!(
                "profile for {proxy} is damaged ({e}): run kg logout and kg login"
            ))
        })?;
        p.dir = dir;
        Ok(p)
    }

    /// Forgets the current profile (and its key). Returns it, if any.
    pub fn logout(&self) -> Result<Option<Profile>, ClientError> {
        let Ok(p) = self.current() else {
            return Ok(None);
        };
        std::fs::remove_dir_all(&p.dir).map_err(|e| io("remove", &p.dir, e))?;
        let _ = std::fs::remove_file(self.root.join("current"));
        Ok(Some(p))
    }
}

impl Profile {
    /// Private key path.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("keys").join(&self.user)
    }

    /// OpenSSH certificate path.
    pub fn cert_path(&self) -> PathBuf {
        self.dir
            .join("keys")
            .join(format!("{}-cert.pub", self.user))
    }

    /// X.509 certificate path.
    pub fn x509_path(&self) -> PathBuf {
        self.dir
            .join("keys")
            .join(format!("{}-x509.pem", self.user))
    }

    /// Host CA certificate path.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// known_hosts path.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// Whether the certificate is still valid at `now`.
    pub fn is_valid(&self, now: OffsetDateTime) -> bool {
        self.valid_until > now
    }

    /// The private key.
    pub fn key(&self) -> Result<ClientKey, ClientError> {
        let p = self.key_path();
        let text =
            zeroize::Zeroizing::new(std::fs::read_to_string(&p).map_err(|e| io("read", &p, e))?);
        ClientKey::from_openssh(&text)
    }
}
