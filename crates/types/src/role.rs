use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{LabelSelector, Resource, Ttl};

/// A role: allow and deny conditions plus options.
pub type Role = Resource<RoleSpec>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// Session and certificate options (combined across roles, strictest wins).
    #[serde(default)]
    pub options: RoleOptions,
    /// What the role grants.
    #[serde(default)]
    pub allow: RoleConditions,
    /// What the role forbids; evaluated first, any match denies.
    #[serde(default)]
    pub deny: RoleConditions,
}

/// Role options; `None` means "this role does not constrain it".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RoleOptions {
    /// Longest certificate TTL; shortest across roles wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_ttl: Option<Ttl>,
    /// Idle sessions are closed after this; shortest wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_idle_timeout: Option<Ttl>,
    /// Per-session MFA; any true wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_session_mfa: Option<bool>,
    /// Recording mode; strictest wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_session: Option<RecordSession>,
    /// Port forwarding; all roles must allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forwarding: Option<bool>,
    /// Agent forwarding; all roles must allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_forwarding: Option<bool>,
    /// Disconnect when the certificate expires; any true wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_expired_cert: Option<bool>,
    /// Concurrent session cap; lowest wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<u32>,
    /// Pin certificates to the client's source IP; any true wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_source_ip: Option<bool>,
    /// Lock enforcement mode; strictest wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockMode>,
}

/// `off | best_effort | strict`, ordered from least to most strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordSession {
    Off,
    BestEffort,
    Strict,
}

/// `best_effort | strict`, ordered from least to most strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockMode {
    BestEffort,
    Strict,
}

/// The body of `allow` and `deny`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RoleConditions {
    /// OS logins (templates like `{{internal.logins}}` allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logins: Vec<String>,
    /// Node label selector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_labels: LabelSelector,
    /// Node label expression (evaluated by the RBAC evaluator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_labels_expression: Option<String>,
    /// Kubernetes groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_groups: Vec<String>,
    /// Kubernetes users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_users: Vec<String>,
    /// Kubernetes resources and verbs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_resources: Vec<KubernetesResource>,
    /// Database label selector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub db_labels: LabelSelector,
    /// Database names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub db_names: Vec<String>,
    /// Database users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub db_users: Vec<String>,
    /// App label selector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub app_labels: LabelSelector,
    /// Access requests the holder may file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestConditions>,
    /// Access requests the holder may review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_requests: Option<ReviewConditions>,
    /// Admin API rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// A Kubernetes resource pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesResource {
    /// Resource kind (`pod`, `deployment`, …): exact, glob, `^regex$` or `*`.
    pub kind: String,
    /// Namespace pattern; empty matches only cluster-wide resources.
    #[serde(default)]
    pub namespace: String,
    /// Name pattern; empty matches only a request for the whole collection.
    #[serde(default)]
    pub name: String,
    /// Kubernetes verbs (`get`, `list`, `exec`, …) or `*`; at least one.
    #[serde(default)]
    pub verbs: Vec<String>,
}

/// What a role may request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RequestConditions {
    /// Roles that may be requested (exact, glob, `^regex$` or `*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Roles that may be requested for specific resources only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search_as_roles: Vec<String>,
    /// Requestable roles computed from the user's traits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_to_roles: Vec<ClaimMapping>,
    /// How many approvals (or denials) decide a request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
    /// Longest access a request may ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<Ttl>,
    /// A request must say why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_required: Option<bool>,
}

/// A claim → roles mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMapping {
    /// Trait (claim) name whose values are looked at.
    pub claim: String,
    /// Pattern a value must match: exact, glob, `*` or `^regex$`.
    pub value: String,
    /// Roles it yields; `$1`, `${name}` refer to the regex's groups.
    pub roles: Vec<String>,
}

/// An approval threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Approvals that approve the request.
    pub approve: u32,
    /// Denials that deny the request.
    pub deny: u32,
    /// Which reviews count (an expression over `request` and `reviewer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// What a role may review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReviewConditions {
    /// Requested roles this side covers (exact, glob, `^regex$` or `*`).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Predicate over `request` and `reviewer` that must hold as well.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<String>,
}

/// An admin API rule: verbs on resource kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Resource kinds (`user`, `role`, `event`, …) or `*`.
    pub resources: Vec<String>,
    /// Verbs (`list`, `read`, `create`, `update`, `delete`, …) or `*`.
    pub verbs: Vec<String>,
    /// Predicate over the resource (`resource.…`, `session.…`) and the
    /// caller (`user.…`); see `keygate-policy` for its meaning.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<String>,
}
