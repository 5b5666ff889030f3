//! Runs B5 with a tiny fleet: the benchmark compiles, its generated roles
//! load, the filter it times makes the decisions `authorize` makes, and it
//! produces a complete table. Numbers from this run mean nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use keygate_bench::{Fleet, RbacPlan, baseline_filter, rbac_filter, run_b5};
use keygate_policy::{AccessContext, Action, Target, authorize};
use keygate_types::LabelValues;
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

#[test]
fn b5_runs_end_to_end_with_a_tiny_fleet() {
    let plan = RbacPlan::tiny();
    let mut steps = Vec::new();
    let report = run_b5(&plan, &mut |what: &str| steps.push(what.to_owned())).unwrap();
    // Setup, one step per round, one per identity's phases.
    assert_eq!(steps.len(), 1 + plan.rounds + plan.held.len(), "{steps:?}");
    assert_eq!(report.runs.len(), 2);
    assert!(report.prod_nodes > 0 && report.prod_nodes < plan.nodes);
    for run in &report.runs {
        assert_eq!(run.filter.len(), plan.rounds);
        assert_eq!(run.baseline.len(), plan.rounds);
        assert!(run.filter.iter().all(|d| !d.is_zero()), "{run:?}");
        // Some nodes are reachable and some are not.
        assert!(run.listed > 0 && run.listed < plan.nodes, "{run:?}");
        assert!(run.granted >= run.listed);
        // The breakdown covers exactly the filter's calls, and its permits
        // are the granted pairs.
        let p = &run.phases;
        assert_eq!(p.calls(), plan.nodes * p.logins_per_node);
        let permits = p.decisions.iter().find(|d| d.outcome == "permit").unwrap();
        assert_eq!(permits.calls, run.granted);
        assert!(run.ratio().is_finite() && run.ratio() > 0.0);
    }
    let table = report.render();
    for want in [
        "| 5 roles |",
        "| 12 roles |",
        "goal ≤ 2 ms",
        "`allowed_logins`",
        "permit",
    ] {
        assert!(table.contains(want), "{want} missing from\n{table}");
    }
}

#[test]
fn the_filter_keeps_exactly_the_nodes_authorize_allows() {
    let fleet = Fleet::generate(1_000, 10).unwrap();
    let id = fleet.identity(5);
    let listing = rbac_filter(&fleet, &id, now());
    let ctx = AccessContext {
        locks: &fleet.locks,
        ..AccessContext::default()
    };
    let mut listed = listing.iter();
    for node in &fleet.nodes {
        let target = Target::Node {
            name: &node.name,
            id: &node.id,
            labels: &node.labels,
        };
        let allowed: Vec<&str> = [
            "root",
            "ubuntu",
            "deploy",
            "alice",
            "alice-admin",
            "www-data",
            "readonly",
            "app",
            "ec2-user",
            "admin",
            "postgres",
            "nobody",
        ]
        .into_iter()
        .filter(|l| authorize(&id, target, Action::Login(l), &ctx, now()).is_ok())
        .collect();
        if allowed.is_empty() {
            continue;
        }
        let (n, logins) = listed.next().expect("an allowed node is listed");
        assert_eq!(n.name, node.name);
        let mut logins: Vec<&str> = logins.iter().map(String::as_str).collect();
        logins.sort_unstable();
        let mut allowed = allowed;
        allowed.sort_unstable();
        assert_eq!(logins, allowed, "{}: {:?}", node.name, node.labels);
    }
    assert!(listed.next().is_none());
    // The deny role among the five (`deny-prod-04`: prod db nodes of one
    // team) keeps such nodes out whatever the allow roles say.
    let deny = &fleet.roles[4];
    assert_eq!(deny.metadata.name, "deny-prod-04");
    let want = |key: &str| match &deny.spec.deny.node_labels[key] {
        LabelValues::One(v) => v.clone(),
        other => panic!("{other:?}"),
    };
    let (env, tier, team) = (want("env"), want("tier"), want("team"));
    let hit = |l: &keygate_types::Labels| l["env"] == env && l["tier"] == tier && l["team"] == team;
    assert!(
        fleet.nodes.iter().any(|n| hit(&n.labels)),
        "the fleet has such nodes"
    );
    assert!(listing.iter().all(|(n, _)| !hit(&n.labels)));
}

#[test]
fn the_baseline_keeps_prod_nodes_only() {
    let fleet = Fleet::generate(100, 1).unwrap();
    let kept = baseline_filter(&fleet);
    assert!(!kept.is_empty());
    assert!(kept.iter().all(|n| n.labels["env"] == "prod"));
    let prod = fleet
        .nodes
        .iter()
        .filter(|n| n.labels["env"] == "prod")
        .count();
    assert_eq!(kept.len(), prod);
}

#[test]
fn a_plan_holding_more_roles_than_it_generates_is_refused() {
    let plan = RbacPlan {
        held: vec![20],
        ..RbacPlan::tiny()
    };
    let err = run_b5(&plan, &mut |_: &str| {}).unwrap_err();
    assert!(err.to_string().contains("more roles"), "{err}");
}
