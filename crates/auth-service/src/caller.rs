//! Who is calling: derived from the connection (mTLS certificate or admin
//! socket credentials), never from anything the caller merely claims.

use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use http::HeaderMap;
use keygate_api::{FORWARDED_CERT_HEADER, FORWARDED_FOR_HEADER};
use keygate_ca::{CaKind, SystemRole, X509Identity, parse_x509_identity, verify_issued_by};
use keygate_tls::{ConnInfo, UnixPeer};

use crate::{AuthError, AuthServer};

/// The authenticated caller of an API request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A local admin on the auth host, over the admin Unix socket.
    AdminSocket {
        /// OS user name of the peer.
        os_user: String,
        /// Its uid.
        uid: u32,
    },
    /// A user or bot holding a certificate from the user CA.
    User {
        /// User name (certificate CN).
        name: String,
        /// Whether it is a bot identity.
        bot: bool,
        /// Client address.
        remote: Option<IpAddr>,
    },
    /// A node (agent), by the id auth bound into its certificate at join.
    Node {
        /// Node id (certificate CN).
        id: String,
        /// Its address.
        remote: Option<IpAddr>,
    },
    /// A proxy: acting for an unauthenticated client it forwards, or
    /// (`internal`) on its own account, e.g. the agentless-host relay.
    Proxy {
        /// The client's address as the proxy saw it.
        remote: Option<IpAddr>,
        /// The proxy's own call (marked by the proxy, which never passes
        /// client headers through, and never also forwarding a client).
        internal: bool,
    },
    /// Nobody in particular.
    Anonymous {
        /// Client address.
        remote: Option<IpAddr>,
    },
}

impl Caller {
    /// The client's address, for rate limiting and the audit log.
    pub fn remote(&self) -> Option<IpAddr> {
        match self {
            Caller::User { remote, .. }
            | Caller::Node { remote, .. }
            | Caller::Proxy { remote, .. }
            | Caller::Anonymous { remote } => *remote,
            Caller::AdminSocket { .. } => None,
        }
    }
}

fn os_user_name(uid: u32) -> String {
    // /etc/passwd lookup without libc: good enough for a display name.
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let _pw = f.next()?;
                (f.next()? == uid.to_string()).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

impl AuthServer {
    /// Resolves the caller of one request.
    pub fn resolve_caller(
        &self,
        conn: Option<&ConnInfo>,
        unix: Option<&UnixPeer>,
        headers: &HeaderMap,
    ) -> Result<Caller, AuthError> {
        if let Some(peer) = unix {
            return Ok(Caller::AdminSocket {
                os_user: os_user_name(peer.uid),
                uid: peer.uid,
            });
        }
        let Some(conn) = conn else {
            return Ok(Caller::Anonymous { remote: None });
        };
        let remote = Some(conn.remote.ip());
        let Some(leaf) = conn.peer_certs.as_ref().and_then(|c| c.first()) else {
            return Ok(Caller::Anonymous { remote });
        };
        let now = self.clock().now();
        let id = parse_x509_identity(leaf)
            .map_err(|e| AuthError::Unauthenticated(format!("unusable client certificate: {e}")))?;
        match id.system_role {
            Some(SystemRole::Proxy) => {
                // System identities come only from the host CA.
                self.verified(leaf, CaKind::Host, now)
                    .map_err(|e| AuthError::Unauthenticated(format!("proxy certificate: {e}")))?;
                let fwd_remote = headers
                    .get(FORWARDED_FOR_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| {
                        s.parse::<SocketAddr>()
                            .ok()
                            .map(|a| a.ip())
                            .or_else(|| s.parse::<IpAddr>().ok())
                    });
                match headers
                    .get(FORWARDED_CERT_HEADER)
                    .and_then(|v| v.to_str().ok())
                {
                    Some(b64) => {
                        let der = base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .map_err(|_| {
                                AuthError::Unauthenticated("malformed forwarded certificate".into())
                            })?;
                        self.forwarded_caller(&der, fwd_remote)
                    }
                    None => Ok(Caller::Proxy {
                        remote: fwd_remote,
                        internal: fwd_remote.is_none()
                            && headers.contains_key(keygate_api::PROXY_INTERNAL_HEADER),
                    }),
                }
            }
            Some(SystemRole::Node) => {
                self.verified(leaf, CaKind::Host, now)
                    .map_err(|e| AuthError::Unauthenticated(format!("node certificate: {e}")))?;
                Ok(Caller::Node {
                    id: id.common_name,
                    remote,
                })
            }
            Some(SystemRole::Bot) | None => self.user_caller(leaf, remote),
            Some(other) => Err(AuthError::AccessDenied(format!(
                "a {} identity cannot call this API",
                other.as_str()
            ))),
        }
    }

    /// The caller behind a certificate the proxy verified and forwarded:
    /// a user, bot or node — never another proxy or auth. Re-verified here
    /// against the right CA, since it did not pass through our TLS stack.
    fn forwarded_caller(&self, der: &[u8], remote: Option<IpAddr>) -> Result<Caller, AuthError> {
        let id = parse_x509_identity(der).map_err(|e| {
            AuthError::Unauthenticated(format!("unusable forwarded certificate: {e}"))
        })?;
        match id.system_role {
            Some(SystemRole::Node) => {
                self.verified(der, CaKind::Host, self.clock().now())
                    .map_err(|e| AuthError::Unauthenticated(format!("node certificate: {e}")))?;
                Ok(Caller::Node {
                    id: id.common_name,
                    remote,
                })
            }
            Some(SystemRole::Bot) | None => self.user_caller(der, remote),
            Some(other) => Err(AuthError::AccessDenied(format!(
                "a forwarded {} certificate is not accepted",
                other.as_str()
            ))),
        }
    }

    /// A user (or bot) caller from a certificate, which must come from the
    /// user CA and be valid now. Re-checked here even when a TLS stack
    /// already did, because forwarded certificates bypass that stack.
    fn user_caller(&self, der: &[u8], remote: Option<IpAddr>) -> Result<Caller, AuthError> {
        let id = self
            .verified(der, CaKind::User, self.clock().now())
            .map_err(|e| {
                AuthError::Unauthenticated(format!("client certificate refused: {e}; run kg login"))
            })?;
        Ok(Caller::User {
            name: id.common_name,
            bot: id.system_role == Some(SystemRole::Bot),
            remote,
        })
    }
}

/// Most verified certificates remembered (the table starts over when full).
const MAX_VERIFIED: usize = 4096;

/// Certificates that already passed `verify_issued_by`, so steady traffic
/// (renewals, node heartbeats, forwarded calls) skips the signature checks.
/// Keyed by the SHA-256 of the DER and the CA; validity is still checked on
/// every use.
#[derive(Default)]
pub(crate) struct VerifiedCerts {
    /// (digest, CA) → identity.
    map: std::sync::Mutex<std::collections::HashMap<([u8; 32], CaKind), X509Identity>>,
}

impl AuthServer {
    /// Verifies that `der` was issued by the CA of `kind` and is valid at
    /// `now`, and returns its identity (cached after the first success).
    pub(crate) fn verified(
        &self,
        der: &[u8],
        kind: CaKind,
        now: time::OffsetDateTime,
    ) -> Result<X509Identity, String> {
        use sha2::{Digest, Sha256};
        let key: ([u8; 32], CaKind) = (Sha256::digest(der).into(), kind);
        let cache = &self.verified_certs().map;
        if let Some(id) = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            && now < id.not_after
        {
            return Ok(id.clone());
        }
        let ca = self
            .ca(kind)
            .ok_or_else(|| format!("no {} CA", kind.as_str()))?;
        verify_issued_by(der, ca.x509_cert_der(), now).map_err(|e| e.to_string())?;
        let id = parse_x509_identity(der).map_err(|e| e.to_string())?;
        let mut map = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_VERIFIED {
            map.clear();
        }
        map.insert(key, id.clone());
        Ok(id)
    }
}
