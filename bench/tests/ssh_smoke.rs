//! Runs B1/B2/B3/B8 with the tiniest plan against the real binaries
//! (built in this profile), OpenSSH's sshd and ssh: the setup works
//! (daemon, standalone node, TOTP login, sshd trusting Keygate's user CA,
//! an agentless sshd behind the proxy's relay), every route opens a
//! session, and the table is complete. Numbers from this
//! run mean nothing. Needs root, like the e2e tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use keygate_bench::{AccessPlan, Route, THROUGHPUT_ROUTES, run_access};

#[test]
fn server_access_runs_end_to_end_with_a_tiny_plan() {
    let plan = AccessPlan::tiny();
    let mut steps = Vec::new();
    let report = run_access(&plan, &mut |what: &str| steps.push(what.to_owned())).unwrap();
    assert!(steps.len() >= 4, "{steps:?}");

    // B1/B2: every route ran once and every byte arrived (`throughput`
    // fails on a short transfer).
    assert_eq!(report.throughput.bytes, 1 << 20);
    let routes: Vec<Route> = report.throughput.routes.iter().map(|t| t.route).collect();
    assert_eq!(routes, THROUGHPUT_ROUTES);
    for t in &report.throughput.routes {
        assert_eq!(t.rates.len(), 1, "{t:?}");
        assert!(t.rates.iter().all(|r| *r > 0.0), "{t:?}");
    }

    // B3: four routes, each timed twice, every time positive.
    let routes: Vec<Route> = report.latency.iter().map(|l| l.route).collect();
    assert_eq!(
        routes,
        [
            Route::AgentDirect,
            Route::SshdDirect,
            Route::AgentProxy,
            Route::SshdJump
        ]
    );
    assert!(
        report
            .latency
            .iter()
            .all(|l| l.secs.len() == 2 && l.secs.iter().all(|s| *s > 0.0))
    );

    // B8: idle, then two held sessions; both servers were found and held
    // more memory with sessions than without.
    assert_eq!(report.memory.len(), 2);
    let (idle, held) = (report.memory[0], report.memory[1]);
    assert_eq!((idle.sessions, held.sessions), (0, 2));
    assert!(idle.agent.rss_kib > 0 && idle.sshd.pss_kib > 0, "{idle:?}");
    assert!(
        held.sshd.processes > idle.sshd.processes,
        "{held:?} vs {idle:?}"
    );

    let table = report.render();
    for want in [
        "### B1",
        "### B2",
        "B2 agent/ssh -J",
        "B2b relay/ssh -J",
        "### B3",
        "### B8",
        "sshd via sshd jump host",
        "Idle agent RSS",
    ] {
        assert!(table.contains(want), "{want} missing from\n{table}");
    }
}
