//! `keygate.yaml`: what `keygate start --config` reads and `keygate
//! configure` prints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The daemon's configuration, after merging file and flags.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Config schema version (`v1`).
    #[serde(default = "v1")]
    pub version: String,
    /// Where state lives.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Name of a new cluster (ignored once created).
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// Auth service settings.
    #[serde(default)]
    pub auth: AuthSection,
    /// Proxy settings.
    #[serde(default)]
    pub proxy: ProxySection,
    /// Audit settings.
    #[serde(default)]
    pub audit: AuditSection,
}

/// `audit:` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Where events (and signed checkpoints) are sent, each exporter with
    /// its own persisted cursor (see docs/audit.md).
    #[serde(default)]
    pub exporters: Vec<keygate_audit_export::ExporterConfig>,
}

fn v1() -> String {
    "v1".into()
}

/// `auth:` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Internal API address (mTLS only).
    #[serde(default)]
    pub listen_addr: Option<SocketAddr>,
    /// Key-encryption key file; keep it off the database's disk/backups.
    #[serde(default)]
    pub kek_file: Option<PathBuf>,
}

/// `proxy:` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// HTTPS address.
    #[serde(default)]
    pub web_addr: Option<SocketAddr>,
    /// SSH address.
    #[serde(default)]
    pub ssh_addr: Option<SocketAddr>,
    /// Where nodes dial their reverse tunnels (mTLS).
    #[serde(default)]
    pub tunnel_addr: Option<SocketAddr>,
    /// Extra host names for the proxy's certificate (its public name).
    #[serde(default)]
    pub public_names: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: v1(),
            data_dir: None,
            cluster_name: None,
            auth: AuthSection::default(),
            audit: AuditSection::default(),
            proxy: ProxySection::default(),
        }
    }
}

impl Config {
    /// Reads and checks a config file; errors name file, line and field.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let cfg: Config = serde_saphyr::from_str(&text).map_err(|e| {
            let loc = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            format!(
                "{}{loc}: {}",
                path.display(),
                e.to_string().lines().next().unwrap_or("invalid")
            )
        })?;
        if cfg.version != "v1" {
            return Err(format!(
                "{}: unsupported config version {:?}; expected v1",
                path.display(),
                cfg.version
            ));
        }
        Ok(cfg)
    }
}

/// The commented sample `keygate configure` prints.
pub const SAMPLE: &str = r#"# keygate.yaml — configuration for `keygate start --config keygate.yaml`.
# Every field is optional; flags on the command line override the file.
version: v1

# Where the cluster keeps its state: keygate.db (users, roles, CAs),
# audit.db (the hash-chained audit log), the admin socket and a lock file.
data_dir: /var/lib/keygate

# Name of the cluster, set once when it is created.
cluster_name: example

auth:
  # Internal API; mTLS only (proxies, nodes, admin tools with certificates).
  listen_addr: 127.0.0.1:3025
  # Key-encryption key protecting CA keys and TOTP seeds at rest. Keep it
  # apart from the database (another disk, not in the same backups).
  kek_file: /etc/keygate/kek

proxy:
  # Public HTTPS entry: login, sign-up, /readyz and the API.
  web_addr: 127.0.0.1:3080
  # SSH entry for kg and OpenSSH.
  ssh_addr: 127.0.0.1:3023
  # Nodes dial out to this address and keep a reverse tunnel (mTLS), so
  # they need no inbound port.
  tunnel_addr: 127.0.0.1:3024
  # Names clients use to reach the proxy (added to its certificate).
  public_names: [localhost]

audit:
  # Every event (and signed checkpoint) goes to each exporter, at least
  # once, in order; each keeps its place in DATA_DIR/audit-export/.
  exporters: []
    # - {type: syslog, name: siem, addr: "siem.example.com:514"}
    # - {type: syslog, name: siem-tls, addr: "siem.example.com:6514", tls: {ca_file: /etc/ssl/certs/ca-certificates.crt}}
    # - {type: webhook, name: hook, url: "https://hooks.example.com/keygate", secret_file: /etc/keygate/hook.key}
    # - {type: stdout, name: out}
"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sample_parses() {
        let c: Config = serde_saphyr::from_str(SAMPLE).unwrap();
        assert_eq!(c.auth.listen_addr.unwrap().port(), 3025);
    }

    #[test]
    fn exporters_parse_and_bad_ones_are_named() {
        let c: Config = serde_saphyr::from_str(
            "audit:\n  exporters:\n    - {type: syslog, name: siem, addr: '127.0.0.1:514'}\n    - {type: stdout, name: out}\n",
        )
        .unwrap();
        assert_eq!(c.audit.exporters.len(), 2);
        let e = serde_saphyr::from_str::<Config>(
            "audit:\n  exporters:\n    - {type: carrier-pigeon, name: p}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("carrier-pigeon"), "{e}");
    }

    #[test]
    fn unknown_field_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.yaml");
        std::fs::write(&p, "version: v1\nproxy:\n  web_adr: 127.0.0.1:1\n").unwrap();
        let e = Config::load(&p).unwrap_err();
        assert!(e.contains("web_adr") && e.contains("k.yaml:"), "{e}");
    }
}
