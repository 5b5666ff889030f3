//! Runs B4b with the tiniest plan against the real binaries (built in
//! this profile), OpenSSH's sshd and ssh: every route, with both the
//! in-process russh client and the `ssh` process, completes sessions, and
//! the table is complete. Numbers from this run mean nothing. Needs root,
//! like the e2e tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use keygate_bench::{RATE_ROUTES, RatePlan, run_sessions};

#[test]
fn session_rates_run_end_to_end_with_a_tiny_plan() {
    let report = run_sessions(RatePlan::tiny(), &mut |_: &str| {}).unwrap();
    for rates in [&report.in_process, &report.spawned] {
        let routes: Vec<_> = rates.iter().map(|r| r.route).collect();
        assert_eq!(routes, RATE_ROUTES);
        for r in rates {
            assert!(r.completed > 0 && r.per_sec() > 0.0, "{r:?}");
            assert_eq!(r.failures, 0, "{r:?}");
        }
    }
    let table = report.render();
    for want in [
        "In-process client",
        "One OpenSSH `ssh` process",
        "sshd direct",
        "goal",
    ] {
        assert!(table.contains(want), "{want} missing from\n{table}");
    }
}
