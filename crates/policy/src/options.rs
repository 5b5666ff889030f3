use std::time::Duration;

use keygate_types::{LockMode, RecordSession, Role};

/// Options in force for a user, combined across all their roles.
///
/// | option | rule |
/// |---|---|
/// | `max_session_ttl`, `client_idle_timeout` | shortest wins |
/// | `require_session_mfa`, `disconnect_expired_cert`, `pin_source_ip` | any true wins |
/// | `port_forwarding`, `agent_forwarding` | every role must allow (unset = deny) |
/// | `record_session`, `lock` | strictest wins |
/// | `max_sessions` | lowest wins |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveOptions {
    /// Longest certificate lifetime any role allows (None: no role caps it).
    pub max_session_ttl: Option<Duration>,
    /// Idle timeout for sessions.
    pub client_idle_timeout: Option<Duration>,
    /// Per-session MFA needed.
    pub require_session_mfa: bool,
    /// Recording mode.
    pub record_session: RecordSession,
    /// Port forwarding allowed.
    pub port_forwarding: bool,
    /// Agent forwarding allowed.
    pub agent_forwarding: bool,
    /// End sessions when the cert expires.
    pub disconnect_expired_cert: bool,
    /// Concurrent session cap.
    pub max_sessions: Option<u32>,
    /// Pin certificates to the source IP.
    pub pin_source_ip: bool,
    /// Lock enforcement mode.
    pub lock: LockMode,
}

fn min_opt<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Combines options across roles with the rules in [`EffectiveOptions`].
/// With no roles at all everything is at its most restrictive.
pub fn combine_options<'a>(roles: impl IntoIterator<Item = &'a Role>) -> EffectiveOptions {
    let mut out = EffectiveOptions {
        max_session_ttl: None,
        client_idle_timeout: None,
        require_session_mfa: false,
        record_session: RecordSession::BestEffort,
        port_forwarding: true,
        agent_forwarding: true,
        disconnect_expired_cert: false,
        max_sessions: None,
        pin_source_ip: false,
        lock: LockMode::BestEffort,
    };
    let mut any = false;
    for role in roles {
        any = true;
        let o = &role.spec.options;
        out.max_session_ttl = min_opt(
            out.max_session_ttl,
            o.max_session_ttl.map(|t| t.as_duration()),
        );
        out.client_idle_timeout = min_opt(
            out.client_idle_timeout,
            o.client_idle_timeout.map(|t| t.as_duration()),
        );
        out.require_session_mfa |= o.require_session_mfa.unwrap_or(false);
        if let Some(r) = o.record_session {
            out.record_session = out.record_session.max(r);
        }
        out.port_forwarding &= o.port_forwarding.unwrap_or(false);
        out.agent_forwarding &= o.agent_forwarding.unwrap_or(false);
        out.disconnect_expired_cert |= o.disconnect_expired_cert.unwrap_or(false);
        out.max_sessions = min_opt(out.max_sessions, o.max_sessions);
        out.pin_source_ip |= o.pin_source_ip.unwrap_or(false);
        if let Some(l) = o.lock {
            out.lock = out.lock.max(l);
        }
    }
    if !any {
        out.port_forwarding = false;
        out.agent_forwarding = false;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use keygate_types::{Kind, Resource, RoleSpec};

    fn role(yaml_opts: impl FnOnce(&mut keygate_types::RoleOptions)) -> Role {
        let mut spec = RoleSpec::default();
        yaml_opts(&mut spec.options);
        Resource::new(Kind::Role, "r", spec)
    }

    #[test]
    fn strictest_wins() {
        let a = role(|o| {
            o.max_session_ttl = Some("8h".parse().unwrap());
            o.port_forwarding = Some(true);
            o.record_session = Some(RecordSession::Strict);
        });
        let b = role(|o| {
            o.max_session_ttl = Some("1h".parse().unwrap());
            o.require_session_mfa = Some(true);
            o.max_sessions = Some(3);
        });
        let e = combine_options([&a, &b]);
        assert_eq!(e.max_session_ttl, Some(Duration::from_secs(3600)));
        assert!(e.require_session_mfa);
        assert!(!e.port_forwarding, "b does not allow port forwarding");
        assert_eq!(e.record_session, RecordSession::Strict);
        assert_eq!(e.max_sessions, Some(3));
        let only_a = combine_options([&a]);
        assert!(only_a.port_forwarding);
        assert!(!combine_options([]).port_forwarding);
    }
}
