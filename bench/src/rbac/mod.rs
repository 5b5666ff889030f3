//! B5 — RBAC filtering: the policy work `kg ls` and `kgctl access
//! who-can|what-can` do for a large fleet (every node × every login the
//! user's certificate would carry, one `authorize` each), against a plain
//! loop doing one label comparison per node, in the same run.

mod filter;
mod fleet;
mod report;

use std::time::Duration;

use keygate_clock::{SharedClock, SystemClock};

pub use filter::{
    BASELINE_KEY, BASELINE_VALUE, DecisionClass, Listing, Phases, baseline_filter,
    node_filter_pass, phases, rbac_filter,
};
pub use fleet::{Fleet, FleetNode, USER, roles_yaml};
pub use report::{MAX_FILTER, MAX_RATIO, RbacReport};

use crate::BenchError;
use crate::measure::median;
use crate::run::load_average;
use filter::timed;

/// How big the fleet is and how often it is filtered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RbacPlan {
    /// Nodes generated.
    pub nodes: usize,
    /// Roles generated.
    pub roles: usize,
    /// One identity per entry, holding that many of the roles (the first
    /// ones).
    pub held: Vec<usize>,
    /// Timed rounds; each round times the baseline then the filter, for
    /// every identity in turn. Medians are reported.
    pub rounds: usize,
}

impl RbacPlan {
    /// The recorded benchmark: 10,000 nodes, 50 roles, a user holding 5
    /// of them and one holding all 50.
    pub fn full() -> Self {
        Self {
            nodes: 10_000,
            roles: 50,
            held: vec![5, 50],
            rounds: 7,
        }
    }

    /// A smoke run: same shape, a tenth of the nodes, one round.
    pub fn quick() -> Self {
        Self {
            nodes: 1_000,
            rounds: 1,
            ..Self::full()
        }
    }

    /// The smallest plan the smoke test runs.
    pub fn tiny() -> Self {
        Self {
            nodes: 200,
            roles: 12,
            held: vec![5, 12],
            rounds: 2,
        }
    }
}

/// One identity's measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldRun {
    /// Roles the identity holds.
    pub held: usize,
    /// Baseline per round: the median of [`BASELINE_PASSES`] passes timed
    /// just before the filter pass.
    pub baseline: Vec<Duration>,
    /// Filter pass per round: `allowed_logins` + `authorize` per login,
    /// as the callers did before `NodeFilter`.
    pub filter: Vec<Duration>,
    /// [`node_filter_pass`] per round, timed right after the baseline:
    /// what `list_nodes` and who-can/what-can do now.
    pub node_filter: Vec<Duration>,
    /// Nodes the filter keeps.
    pub listed: usize,
    /// Node × login pairs it grants.
    pub granted: usize,
    /// Where a filter pass spends its time.
    pub phases: Phases,
}

/// Back-to-back baseline passes per round; the round's baseline is their
/// median. One pass takes well under a millisecond, so a single reading is
/// at the mercy of one interrupt; and the first pass after a filter pass
/// finds the labels partly evicted from the caches (about 3× slower), which
/// would flatter the ratio.
pub const BASELINE_PASSES: usize = 5;

/// One round's baseline: the median of [`BASELINE_PASSES`] passes, and the
/// nodes the last one kept.
fn baseline_round(clock: &SharedClock, fleet: &Fleet) -> (Duration, usize) {
    let mut kept = 0;
    let times: Vec<f64> = (0..BASELINE_PASSES)
        .map(|_| {
            let (took, n) = timed(clock, || baseline_filter(fleet).len());
            kept = n;
            took.as_secs_f64()
        })
        .collect();
    (Duration::from_secs_f64(median(&times)), kept)
}

/// Runs B5 and returns its report. `progress` is told what is measured
/// next.
pub fn run_b5(plan: &RbacPlan, progress: &mut dyn FnMut(&str)) -> Result<RbacReport, BenchError> {
    if plan.held.iter().any(|h| *h > plan.roles) {
        return Err(BenchError::Setup(format!(
            "the plan gives an identity more roles ({:?}) than it generates ({}); lower --held or raise --roles",
            plan.held, plan.roles
        )));
    }
    let clock: SharedClock = SystemClock::shared();
    let load_before = load_average();
    progress("generating the fleet and loading the roles");
    let fleet = Fleet::generate(plan.nodes, plan.roles)?;
    // One decision time for the whole listing, as `list_nodes` reads it.
    let now = clock.now();
    let identities: Vec<_> = plan.held.iter().map(|h| fleet.identity(*h)).collect();

    // Untimed warm-up: fills the policy crate's regex, template and
    // expression caches, as a long-running auth server has them.
    let prod_nodes = baseline_filter(&fleet).len();
    let mut runs: Vec<HeldRun> = identities
        .iter()
        .zip(&plan.held)
        .map(|(id, held)| {
            let listing = rbac_filter(&fleet, id, now);
            if node_filter_pass(&fleet, id, now) != listing {
                return Err(BenchError::Operation(format!(
                    "NodeFilter and authorize disagree for the identity with {held} roles: a bug in keygate-policy's NodeFilter"
                )));
            }
            Ok(HeldRun {
                held: *held,
                baseline: Vec::with_capacity(plan.rounds),
                filter: Vec::with_capacity(plan.rounds),
                node_filter: Vec::with_capacity(plan.rounds),
                listed: listing.len(),
                granted: listing.iter().map(|(_, l)| l.len()).sum(),
                phases: Phases {
                    allowed_logins: Duration::ZERO,
                    logins_per_node: 0,
                    decisions: Vec::new(),
                },
            })
        })
        .collect::<Result<_, BenchError>>()?;

    for round in 0..plan.rounds.max(1) {
        progress(&format!("round {} of {}", round + 1, plan.rounds.max(1)));
        for (run, id) in runs.iter_mut().zip(&identities) {
            let (base, kept) = baseline_round(&clock, &fleet);
            let (fast, fast_listing) = timed(&clock, || node_filter_pass(&fleet, id, now));
            let (took, listing) = timed(&clock, || rbac_filter(&fleet, id, now));
            if kept != prod_nodes || listing.len() != run.listed || fast_listing.len() != run.listed
            {
                return Err(BenchError::Operation(format!(
                    "a filter pass kept {} nodes and the baseline {kept}, where the first pass kept {} and {prod_nodes}: the decision is not deterministic",
                    listing.len(),
                    run.listed
                )));
            }
            run.baseline.push(base);
            run.filter.push(took);
            run.node_filter.push(fast);
        }
    }

    for (run, id) in runs.iter_mut().zip(&identities) {
        progress(&format!("phases for the identity with {} roles", run.held));
        run.phases = phases(&clock, &fleet, id, now);
    }

    Ok(RbacReport {
        plan: plan.clone(),
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        load_before,
        load_after: load_average(),
        locks: fleet.locks.len(),
        prod_nodes,
        runs,
    })
}
