//! Which certificates may stand at either end of a tunnel.
//!
//! TLS has already checked that the peer's chain leads to the host CA; what
//! is left is the *role* in the Keygate extension (never the CN, which only
//! names the identity) and, for nodes, the node id.

use keygate_ca::{SystemRole, X509Identity, parse_x509_identity};
use rustls::pki_types::CertificateDer;

use crate::TunnelError;

/// Longest node id accepted from a certificate (a DNS label-ish name; the
/// bound keeps logs and registry keys sane).
const MAX_NODE_ID_LEN: usize = 253;

/// The node id bound into a node's client certificate (its common name),
/// after checking that the certificate carries the system role `node`.
/// `cert_der` is the leaf of a chain TLS has already verified.
pub fn node_id_from_cert(cert_der: &[u8]) -> Result<String, TunnelError> {
    let id = identity_with_role(cert_der, SystemRole::Node)?;
    let name = id.common_name;
    if name.is_empty() || name.len() > MAX_NODE_ID_LEN || name.chars().any(char::is_control) {
        return Err(TunnelError::PeerIdentity(format!(
            "node certificate names an unusable node id {name:?}"
        )));
    }
    Ok(name)
}

/// Checks that the proxy's server certificate carries the system role
/// `proxy`: nodes accept tunnel traffic only from proxies, not from any
/// other service holding a host-CA certificate.
pub fn require_proxy_cert(cert_der: &[u8]) -> Result<(), TunnelError> {
    identity_with_role(cert_der, SystemRole::Proxy).map(|_| ())
}

/// The leaf of a verified peer chain, or an error naming what is missing.
pub(crate) fn leaf<'a>(
    chain: Option<&'a [CertificateDer<'static>]>,
) -> Result<&'a [u8], TunnelError> {
    chain
        .and_then(<[CertificateDer<'static>]>::first)
        .map(AsRef::as_ref)
        .ok_or_else(|| {
            TunnelError::PeerIdentity(
                "the peer presented no certificate (is client authentication required?)".into(),
            )
        })
}

fn identity_with_role(cert_der: &[u8], want: SystemRole) -> Result<X509Identity, TunnelError> {
    let id = parse_x509_identity(cert_der)
        .map_err(|e| TunnelError::PeerIdentity(format!("not a Keygate certificate: {e}")))?;
    match id.system_role {
        Some(role) if role == want => Ok(id),
        Some(role) => Err(TunnelError::PeerIdentity(format!(
            "certificate for {:?} has system role {}, expected {}",
            id.common_name,
            role.as_str(),
            want.as_str()
        ))),
        None => Err(TunnelError::PeerIdentity(format!(
            "certificate for {:?} is a user certificate, expected system role {}",
            id.common_name,
            want.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]

    use keygate_ca::{CaKind, CertAuthority, ServiceKey, X509ServiceRequest};
    use keygate_clock::{Clock, SystemClock};

    use super::*;

    fn cert(cn: &str, role: SystemRole) -> Vec<u8> {
        let now = SystemClock::new().now();
        let ca = CertAuthority::generate(CaKind::Host, "test", now).unwrap();
        ca.sign_x509_service(&X509ServiceRequest {
            key: ServiceKey::GenerateP256,
            common_name: cn.into(),
            dns_names: vec![],
            ip_addresses: vec![],
            system_role: role,
            not_before: now,
            not_after: now + time::Duration::hours(1),
        })
        .unwrap()
        .cert_der
    }

    #[test]
    fn node_id_is_the_common_name_of_a_node_cert() {
        assert_eq!(
            node_id_from_cert(&cert("node-7", SystemRole::Node)).unwrap(),
            "node-7"
        );
    }

    #[test]
    fn other_roles_are_not_nodes() {
        for role in [SystemRole::Proxy, SystemRole::Auth, SystemRole::Bot] {
            let err = node_id_from_cert(&cert("node-7", role)).unwrap_err();
            assert!(
                matches!(&err, TunnelError::PeerIdentity(m) if m.contains(role.as_str())),
                "{err}"
            );
        }
    }

    #[test]
    fn proxy_check_accepts_only_proxies() {
        require_proxy_cert(&cert("proxy", SystemRole::Proxy)).unwrap();
        assert!(require_proxy_cert(&cert("proxy", SystemRole::Node)).is_err());
        assert!(require_proxy_cert(&cert("proxy", SystemRole::Auth)).is_err());
    }

    #[test]
    fn garbage_and_empty_input_is_refused() {
        assert!(matches!(
            node_id_from_cert(b""),
            Err(TunnelError::PeerIdentity(_))
        ));
        assert!(matches!(
            node_id_from_cert(b"\x30\x03\x02\x01\x00"),
            Err(TunnelError::PeerIdentity(_))
        ));
        assert!(require_proxy_cert(&[0xff; 64]).is_err());
        // A truncated real certificate.
        let good = cert("node-1", SystemRole::Node);
        assert!(node_id_from_cert(&good[..good.len() / 2]).is_err());
    }

    #[test]
    fn an_empty_chain_has_no_leaf() {
        assert!(leaf(None).is_err());
        assert!(leaf(Some(&[])).is_err());
    }
}
