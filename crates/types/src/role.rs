use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{LabelSelector, LabelValues, Resource, Ttl, TypesError, resource::Kind};

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
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub verbs: Vec<String>,
}

/// What a role may request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RequestConditions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search_as_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_to_roles: Vec<ClaimMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<Ttl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_required: Option<bool>,
}

/// A claim → roles mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMapping {
    pub claim: String,
    pub value: String,
    pub roles: Vec<String>,
}

/// An approval threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub approve: u32,
    pub deny: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// What a role may review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReviewConditions {
    #[serde(default)]
    pub roles: Vec<String>,
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
    /// Optional predicate (RBAC evaluator).
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<String>,
}

impl RoleSpec {
    /// Semantic checks: well-formed logins/templates, label patterns and
    /// label expressions (parsed and type-checked, errors name the column).
    pub fn validate(&self) -> Result<(), TypesError> {
        for (side, c) in [("allow", &self.allow), ("deny", &self.deny)] {
            for (i, l) in c.logins.iter().enumerate() {
                check_login_or_template(&format!("spec.{side}.logins[{i}]"), l)?;
            }
            for (k, vals) in &c.node_labels {
                for v in vals.iter() {
                    check_label_pattern(&format!("spec.{side}.node_labels.{k}"), v)?;
                }
            }
            if let Some(src) = &c.node_labels_expression {
                crate::Expr::parse(src).map_err(|e| {
                    TypesError::invalid(
                        format!("spec.{side}.node_labels_expression"),
                        e.to_string(),
                    )
                })?;
            }
            for (i, r) in c.rules.iter().enumerate() {
                if r.where_.is_some() {
                    return Err(TypesError::invalid(
                        format!("spec.{side}.rules[{i}].where"),
                        "rule predicates are not supported by this version yet; remove `where`",
                    ));
                }
                if r.resources.is_empty() || r.verbs.is_empty() {
                    return Err(TypesError::invalid(
                        format!("spec.{side}.rules[{i}]"),
                        "a rule needs at least one resource and one verb",
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_login_or_template(field: &str, s: &str) -> Result<(), TypesError> {
    if s.contains("{{") {
        if !(s.starts_with("{{") && s.ends_with("}}")) || s.len() > 256 {
            return Err(TypesError::invalid(
                field,
                format!(
                    "{s:?}: a template must be the whole value, e.g. '{{{{internal.logins}}}}'"
                ),
            ));
        }
        return Ok(());
    }
    if s == "*" {
        return Ok(());
    }
    s.parse::<crate::Login>()
        .map(|_| ())
        .map_err(|e| TypesError::invalid(field, e.to_string()))
}

fn check_label_pattern(field: &str, v: &str) -> Result<(), TypesError> {
    if v.len() > 1024 {
        return Err(TypesError::invalid(
            field,
            "pattern longer than 1024 characters",
        ));
    }
    if v.starts_with('^') && v.ends_with('$') {
        regex::RegexBuilder::new(v)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| TypesError::invalid(field, format!("invalid regular expression: {e}")))?;
    }
    Ok(())
}

fn wildcard() -> LabelSelector {
    BTreeMap::from([("*".to_owned(), LabelValues::One("*".to_owned()))])
}

fn rule(resources: &[&str], verbs: &[&str]) -> Rule {
    Rule {
        resources: resources.iter().map(|s| (*s).to_owned()).collect(),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        where_: None,
    }
}

/// The roles every cluster has: `admin` (every admin verb; logins from
/// traits), `access` (logins from traits on all nodes), `auditor` (read the
/// audit log and recordings), `editor` (manage resources, no logins).
pub fn builtin_roles() -> Vec<Role> {
    let traits_logins = vec!["{{internal.logins}}".to_owned()];
    let mut admin = Resource::new(
        Kind::Role,
        "admin",
        RoleSpec {
            allow: RoleConditions {
                logins: traits_logins.clone(),
                node_labels: wildcard(),
                rules: vec![rule(&["*"], &["*"])],
                ..RoleConditions::default()
            },
            ..RoleSpec::default()
        },
    );
    admin.metadata.description =
        Some("Full control of the cluster; logins from the user's traits.".into());
    let mut access = Resource::new(
        Kind::Role,
        "access",
        RoleSpec {
            allow: RoleConditions {
                logins: traits_logins,
                node_labels: wildcard(),
                rules: vec![rule(&["node"], &["list", "read"])],
                ..RoleConditions::default()
            },
            ..RoleSpec::default()
        },
    );
    access.metadata.description =
        Some("Log in to every node with the logins in the user's traits.".into());
    let mut auditor = Resource::new(
        Kind::Role,
        "auditor",
        RoleSpec {
            allow: RoleConditions {
                rules: vec![rule(&["event", "session"], &["list", "read"])],
                ..RoleConditions::default()
            },
            ..RoleSpec::default()
        },
    );
    auditor.metadata.description = Some("Read the audit log and session recordings.".into());
    let mut editor = Resource::new(
        Kind::Role,
        "editor",
        RoleSpec {
            allow: RoleConditions {
                rules: vec![rule(
                    &[
                        "user",
                        "role",
                        "lock",
                        "token",
                        "node",
                        "auth_preference",
                        "access",
                        "certificate",
                    ],
                    &["*"],
                )],
                ..RoleConditions::default()
            },
            ..RoleSpec::default()
        },
    );
    editor.metadata.description =
        Some("Manage users, roles, locks, tokens and nodes; no logins, no audit log.".into());
    vec![admin, access, auditor, editor]
}
