//! The generated fleet B5 filters: nodes with realistic label sets, roles
//! written as YAML the way users write them (exact values, globs, `^regex$`,
//! `{{internal.…}}` trait templates, deny rules) and loaded with
//! `keygate_types::load_documents`, a few locks, and the user's traits.
//!
//! Everything is deterministic (a fixed-seed generator), so two runs filter
//! the same fleet and the numbers can be compared.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use keygate_policy::Identity;
use keygate_types::{AnyResource, Labels, Lock, Role, load_documents};

use crate::BenchError;

/// Environments, with how many nodes in 20 carry each.
const ENVS: [(&str, u64); 4] = [("prod", 8), ("staging", 5), ("dev", 4), ("qa", 3)];
/// Owning teams.
const TEAMS: [&str; 8] = [
    "payments", "search", "db", "web", "ml", "infra", "billing", "identity",
];
/// Cloud regions.
const REGIONS: [&str; 6] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-south-1",
    "ap-northeast-1",
];
/// Kernel releases.
const KERNELS: [&str; 6] = [
    "5.4.0-150",
    "5.10.0-28",
    "6.1.0-18",
    "6.1.0-21",
    "6.8.0-45",
    "6.12.0-1",
];
/// Workload tiers.
const TIERS: [&str; 5] = ["web", "api", "db", "batch", "cache"];
/// Operating systems.
const OSES: [&str; 3] = ["debian-12", "ubuntu-22.04", "ubuntu-24.04"];

/// Kernel patterns used by the regex roles (distinct, so the regex cache
/// holds several).
const KERNEL_REGEXES: [&str; 5] = [
    r"^6\.1\.0-[0-9]+$",
    r"^6\.(8|12)\..*$",
    r"^5\.10\.0-[0-9]+$",
    r"^(5\.10|6\.1)\..*$",
    r"^6\.[0-9]+\.0-(1|18|45)$",
];

/// The user every identity is for.
pub const USER: &str = "alice";

/// One node as `kg ls` sees it after merging self and authoritative labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetNode {
    /// Registered name.
    pub name: String,
    /// Id assigned at join.
    pub id: String,
    /// Merged labels.
    pub labels: Labels,
}

/// Nodes, roles and locks, generated once per run.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Every node, in listing order.
    pub nodes: Vec<FleetNode>,
    /// Every role, in the order identities take them (the first five are
    /// a mix of every kind of rule, deny included).
    pub roles: Vec<Role>,
    /// Locks in force: none of them matches the user, so every decision
    /// pays for checking them, as in production.
    pub locks: Vec<Lock>,
    /// The user's traits (templates in the roles expand against them).
    pub traits: BTreeMap<String, Vec<String>>,
}

impl Fleet {
    /// `nodes` nodes and `roles` roles (the YAML is generated, then loaded
    /// like a user's file would be).
    pub fn generate(nodes: usize, roles: usize) -> Result<Self, BenchError> {
        let mut rng = SplitMix(0x6b65_7967_6174_6535);
        let nodes = (0..nodes).map(|i| node(i, &mut rng)).collect();
        let roles = load_roles(&roles_yaml(roles))?;
        let locks = load_locks(LOCKS_YAML)?;
        let traits = BTreeMap::from([
            (
                "logins".to_owned(),
                vec![USER.to_owned(), format!("{USER}-admin")],
            ),
            (
                "teams".to_owned(),
                vec!["payments".to_owned(), "search".to_owned()],
            ),
            ("email".to_owned(), vec![format!("{USER}@example.com")]),
        ]);
        Ok(Self {
            nodes,
            roles,
            locks,
            traits,
        })
    }

    /// The user holding the first `held` roles.
    pub fn identity(&self, held: usize) -> Identity {
        Identity {
            user: USER.to_owned(),
            roles: self.roles.iter().take(held).cloned().collect(),
            traits: self.traits.clone(),
        }
    }
}

/// Node `i`: name, id and 7 labels drawn from the tables above.
fn node(i: usize, rng: &mut SplitMix) -> FleetNode {
    let env_roll = rng.below(20);
    let mut acc = 0;
    let mut env = "prod";
    for (name, weight) in ENVS {
        acc += weight;
        if env_roll < acc {
            env = name;
            break;
        }
    }
    let arch = if rng.below(5) == 0 { "arm64" } else { "amd64" };
    let labels: Labels = [
        ("env", env),
        ("team", rng.pick(&TEAMS)),
        ("region", rng.pick(&REGIONS)),
        ("kernel", rng.pick(&KERNELS)),
        ("tier", rng.pick(&TIERS)),
        ("arch", arch),
        ("os", rng.pick(&OSES)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    FleetNode {
        name: format!("node-{i:05}"),
        id: format!("{:016x}-{i:05}", rng.next()),
        labels,
    }
}

/// The YAML of `count` roles. Role `i` is of kind `i % 10`; its team and
/// regex vary with `i`, so no two roles are the same.
pub fn roles_yaml(count: usize) -> String {
    let mut out = String::new();
    for i in 0..count {
        let team = TEAMS.get((i + i / 10) % TEAMS.len()).unwrap_or(&"web");
        let tier = TIERS.get((i / 10) % TIERS.len()).unwrap_or(&"web");
        let re = KERNEL_REGEXES
            .get((i / 10) % KERNEL_REGEXES.len())
            .unwrap_or(&"^6\\..*$");
        let (kind, spec) = match i % 10 {
            0 => (
                "exact",
                format!(
                    "allow:\n    logins: [ubuntu, '{{{{internal.logins}}}}']\n    node_labels: {{env: staging, team: {team}}}"
                ),
            ),
            1 => (
                "glob",
                format!(
                    "allow:\n    logins: [deploy, www-data]\n    node_labels: {{region: 'us-*', tier: {tier}}}"
                ),
            ),
            2 => (
                "regex",
                format!(
                    "allow:\n    logins: [root]\n    node_labels: {{kernel: '{re}', env: [dev, qa]}}"
                ),
            ),
            3 => (
                "teams",
                "allow:\n    logins: ['{{internal.logins}}']\n    node_labels: {team: '{{internal.teams}}', env: [dev, staging, qa]}".to_owned(),
            ),
            4 => (
                "deny-prod",
                format!("deny:\n    node_labels: {{env: prod, tier: db, team: {team}}}"),
            ),
            5 => (
                "prod-ro",
                format!(
                    "allow:\n    logins: [readonly, app]\n    node_labels: {{env: prod, region: [eu-west-1, eu-central-1], team: {team}}}"
                ),
            ),
            6 => (
                "arm",
                "allow:\n    logins: [ec2-user]\n    node_labels: {region: 'eu-*', arch: arm64}"
                    .to_owned(),
            ),
            7 => (
                "team-kernel",
                format!(
                    "allow:\n    logins: ['{{{{internal.logins}}}}', admin]\n    node_labels: {{team: '{{{{internal.teams}}}}', kernel: '{re}'}}"
                ),
            ),
            8 => (
                "db",
                "allow:\n    logins: [postgres]\n    node_labels: {tier: db, env: '*'}".to_owned(),
            ),
            _ => (
                "deny-old",
                "deny:\n    logins: [www-data]\n    node_labels: {kernel: '^5\\.4\\..*$'}".to_owned(),
            ),
        };
        let _ = write!(
            out,
            "---\nkind: role\nversion: v1\nmetadata: {{name: {kind}-{i:02}}}\nspec:\n  {spec}\n"
        );
    }
    out
}

fn load_roles(yaml: &str) -> Result<Vec<Role>, BenchError> {
    let docs = load_documents("b5-roles.yaml", yaml)
        .map_err(|e| BenchError::setup("load the generated roles", e))?;
    docs.into_iter()
        .map(|d| match d.resource {
            AnyResource::Role(r) => Ok(r),
            other => Err(BenchError::Setup(format!(
                "the generated roles hold a {} document",
                other.kind()
            ))),
        })
        .collect()
}

/// Locks that do not concern the user, one of them expired.
const LOCKS_YAML: &str = "\
kind: lock
version: v1
metadata: {name: offboard-bob}
spec: {target: {user: bob}, message: offboarded}
---
kind: lock
version: v1
metadata: {name: freeze-contractors}
spec: {target: {role: contractor}}
---
kind: lock
version: v1
metadata: {name: quarantine}
spec: {target: {node: node-99999}, message: incident 42}
---
kind: lock
version: v1
metadata: {name: old, expires: '2001-01-01T00:00:00Z'}
spec: {target: {user: alice}}
";

fn load_locks(yaml: &str) -> Result<Vec<Lock>, BenchError> {
    let docs = load_documents("b5-locks.yaml", yaml)
        .map_err(|e| BenchError::setup("load the generated locks", e))?;
    docs.into_iter()
        .map(|d| match d.resource {
            AnyResource::Lock(l) => Ok(l),
            other => Err(BenchError::Setup(format!(
                "the generated locks hold a {} document",
                other.kind()
            ))),
        })
        .collect()
}

/// SplitMix64: a tiny deterministic generator, so the fleet is the same in
/// every run without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough below `n` (n > 0) for picking labels.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick(&mut self, from: &[&'static str]) -> &'static str {
        let i = usize::try_from(self.below(from.len() as u64)).unwrap_or(0);
        from.get(i).copied().unwrap_or("")
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

    use super::*;

    #[test]
    fn fleet_is_deterministic_and_labelled() {
        let a = Fleet::generate(300, 20).unwrap();
        let b = Fleet::generate(300, 20).unwrap();
        assert_eq!(a.nodes, b.nodes);
        assert_eq!(a.nodes.len(), 300);
        assert!(a.nodes.iter().all(|n| n.labels.len() == 7));
        let prod = a.nodes.iter().filter(|n| n.labels["env"] == "prod").count();
        // 8 in 20 are prod: 120 expected.
        assert!((80..160).contains(&prod), "{prod}");
        assert_eq!(a.locks.len(), 4);
        assert_eq!(a.identity(5).roles.len(), 5);
    }

    #[test]
    fn roles_cover_every_kind_of_rule() {
        let fleet = Fleet::generate(1, 50).unwrap();
        assert_eq!(fleet.roles.len(), 50);
        let names: Vec<&str> = fleet
            .roles
            .iter()
            .map(|r| r.metadata.name.as_str())
            .collect();
        assert_eq!(
            &names[..5],
            &[
                "exact-00",
                "glob-01",
                "regex-02",
                "teams-03",
                "deny-prod-04"
            ]
        );
        let allow = |i: usize| &fleet.roles[i].spec.allow;
        assert_eq!(allow(0).logins, ["ubuntu", "{{internal.logins}}"]);
        assert!(allow(1).node_labels.contains_key("region"));
        assert!(!fleet.roles[4].spec.deny.node_labels.is_empty());
        assert_eq!(fleet.roles[9].spec.deny.logins, ["www-data"]);
        // Every regex role got a distinct pattern per decade.
        let yaml = roles_yaml(50);
        for re in KERNEL_REGEXES {
            assert!(yaml.contains(re), "{re} missing");
        }
    }

    #[test]
    fn a_broken_document_is_an_error() {
        assert!(
            load_roles("kind: role\nversion: v1\nmetadata: {name: x}\nspec: {bogus: 1}\n").is_err()
        );
        assert!(load_roles(LOCKS_YAML).is_err());
        assert!(load_locks(&roles_yaml(1)).is_err());
    }
}
