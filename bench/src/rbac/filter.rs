//! What B5 times: the RBAC work behind `kg ls` (`AuthServer::list_nodes`)
//! and `kgctl access who-can|what-can` (`Snapshot::grants`), and the
//! baseline loop; plus the per-phase breakdown used to say where the time
//! goes.

use std::collections::BTreeMap;
use std::time::Duration;

use keygate_clock::SharedClock;
use keygate_policy::{
    AccessContext, Action, Identity, NodeFilter, Target, allowed_logins, authorize,
};
use time::OffsetDateTime;

use super::fleet::{Fleet, FleetNode};

/// The nodes a listing keeps, each with the logins the user may use there.
pub type Listing<'a> = Vec<(&'a FleetNode, Vec<String>)>;

/// The subject, exactly as the auth service does it for every node: the
/// logins a certificate would carry (`allowed_logins`, recomputed per
/// node as both callers do), each checked with `authorize` against the
/// node and the locks in force; a node with no allowed login is dropped.
pub fn rbac_filter<'a>(fleet: &'a Fleet, id: &Identity, now: OffsetDateTime) -> Listing<'a> {
    let ctx = AccessContext {
        locks: &fleet.locks,
        ..AccessContext::default()
    };
    let mut out = Vec::new();
    for node in &fleet.nodes {
        let logins: Vec<String> = allowed_logins(id)
            .into_iter()
            .filter(|login| {
                let target = Target::Node {
                    name: &node.name,
                    id: &node.id,
                    labels: &node.labels,
                };
                authorize(id, target, Action::Login(login), &ctx, now).is_ok()
            })
            .collect();
        if !logins.is_empty() {
            out.push((node, logins));
        }
    }
    out
}

/// What `list_nodes` and `Snapshot::grants` do now: one
/// [`NodeFilter`] for the listing (logins, templates, selectors and locks
/// compiled once), then its logins for each node. Same answers as
/// [`rbac_filter`].
pub fn node_filter_pass<'a>(fleet: &'a Fleet, id: &Identity, now: OffsetDateTime) -> Listing<'a> {
    let ctx = AccessContext {
        locks: &fleet.locks,
        ..AccessContext::default()
    };
    let filter = NodeFilter::new(id, &ctx, now);
    fleet
        .nodes
        .iter()
        .filter_map(|node| {
            let logins = filter.logins(&node.name, &node.id, &node.labels);
            (!logins.is_empty()).then_some((node, logins))
        })
        .collect()
}

/// The label the baseline compares.
pub const BASELINE_KEY: &str = "env";
/// The value it looks for.
pub const BASELINE_VALUE: &str = "prod";

/// The baseline: the same nodes, one label comparison each, keeping the
/// matches (a listing filtered by `env=prod` with no RBAC).
pub fn baseline_filter(fleet: &Fleet) -> Vec<&FleetNode> {
    fleet
        .nodes
        .iter()
        .filter(|n| n.labels.get(BASELINE_KEY).map(String::as_str) == Some(BASELINE_VALUE))
        .collect()
}

/// Runs `f` once and returns how long it took and what it returned.
pub(crate) fn timed<T>(clock: &SharedClock, f: impl FnOnce() -> T) -> (Duration, T) {
    let start = clock.monotonic();
    let out = std::hint::black_box(f());
    (clock.monotonic().saturating_sub(start), out)
}

/// Where one identity's filter spends its time: `allowed_logins` alone,
/// then every `authorize` call of the filter grouped by its outcome and
/// re-run group by group.
#[derive(Debug, Clone, PartialEq)]
pub struct Phases {
    /// `allowed_logins(id)` once per node, as the filter calls it.
    pub allowed_logins: Duration,
    /// Logins it returns (the same for every node).
    pub logins_per_node: usize,
    /// `authorize` calls by outcome, most frequent first.
    pub decisions: Vec<DecisionClass>,
}

/// `authorize` calls that ended the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionClass {
    /// `permit` or the denial's rule (`no allow rule matched`,
    /// `deny.node_labels`, `lock`, …).
    pub outcome: String,
    /// How many of the filter's calls ended so.
    pub calls: usize,
    /// The time those calls took, re-run back to back.
    pub elapsed: Duration,
}

impl DecisionClass {
    /// Average time of one call.
    pub fn per_call(&self) -> Duration {
        u32::try_from(self.calls)
            .ok()
            .filter(|n| *n > 0)
            .map_or(Duration::ZERO, |n| self.elapsed / n)
    }
}

impl Phases {
    /// `authorize` calls of one filter pass.
    pub fn calls(&self) -> usize {
        self.decisions.iter().map(|d| d.calls).sum()
    }

    /// Time of every `authorize` call of one pass.
    pub fn authorize_time(&self) -> Duration {
        self.decisions.iter().map(|d| d.elapsed).sum()
    }
}

/// Measures [`Phases`] for `id` (one pass of each part; the caches are
/// warm because the filter ran before).
pub fn phases(clock: &SharedClock, fleet: &Fleet, id: &Identity, now: OffsetDateTime) -> Phases {
    let (allowed_time, per_node) = timed(clock, || {
        fleet
            .nodes
            .iter()
            .map(|_| allowed_logins(id))
            .collect::<Vec<_>>()
    });
    let logins = allowed_logins(id);
    let ctx = AccessContext {
        locks: &fleet.locks,
        ..AccessContext::default()
    };
    let decide = |node: &FleetNode, login: &str| {
        let target = Target::Node {
            name: &node.name,
            id: &node.id,
            labels: &node.labels,
        };
        authorize(id, target, Action::Login(login), &ctx, now)
    };
    // Group the filter's calls by outcome, then time each group on its own.
    let mut groups: BTreeMap<String, Vec<(&FleetNode, &str)>> = BTreeMap::new();
    for node in &fleet.nodes {
        for login in &logins {
            let outcome = match decide(node, login) {
                Ok(_) => "permit".to_owned(),
                Err(d) => d.rule,
            };
            groups.entry(outcome).or_default().push((node, login));
        }
    }
    let mut decisions: Vec<DecisionClass> = groups
        .into_iter()
        .map(|(outcome, calls)| {
            let (elapsed, _) = timed(clock, || {
                calls
                    .iter()
                    .map(|(node, login)| decide(node, login).is_ok())
                    .filter(|ok| *ok)
                    .count()
            });
            DecisionClass {
                outcome,
                calls: calls.len(),
                elapsed,
            }
        })
        .collect();
    decisions.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.outcome.cmp(&b.outcome)));
    drop(std::hint::black_box(per_node));
    Phases {
        allowed_logins: allowed_time,
        logins_per_node: logins.len(),
        decisions,
    }
}
