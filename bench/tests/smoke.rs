//! Runs every B4 measurement with tiny windows: the benchmark compiles,
//! its setup works (real cluster, login with TOTP, ssh-keygen) and it
//! produces a complete table. Numbers from this run mean nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use keygate_authn::Argon2Params;
use keygate_bench::{Plan, measure_argon2, run_b4};
use keygate_clock::SystemClock;

fn tiny() -> Plan {
    Plan {
        rounds: 2,
        cpu_window: Duration::from_millis(5),
        issue_window: Duration::from_millis(30),
        issue_callers: 4,
        sshkeygen_certs: 2,
        api_window: Duration::from_millis(50),
        api_tasks: 4,
        api_clients: 2,
        argon2_verifies: 1,
    }
}

#[test]
fn b4_runs_end_to_end_with_tiny_windows() {
    let mut steps = Vec::new();
    let report = run_b4(&tiny(), &mut |what: &str| steps.push(what.to_owned())).unwrap();
    assert_eq!(steps.len(), 5, "{steps:?}");

    for rates in [
        &report.cpu.raw,
        &report.cpu.sign,
        &report.issue.one_caller,
        &report.issue.many_callers,
        &report.api.ping,
        &report.api.renew,
    ] {
        assert_eq!(rates.len(), 2);
        assert!(
            rates.iter().all(|r| r.ops > 0 && r.per_sec() > 0.0),
            "{rates:?}"
        );
        assert!(rates.iter().all(|r| r.cpu.is_some()), "{rates:?}");
    }
    assert_eq!(report.ssh_keygen.ops, 2);
    assert_eq!(report.argon2.params, Argon2Params::OWASP);
    // Every issuance wrote its audit event (plus the admin's creation).
    assert!(report.audit.events > 2, "{:?}", report.audit);
    assert_eq!(report.audit.failed_batches, 0);

    let rows = report.rows();
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|r| r.cpu_per_op.is_some()), "{rows:?}");
    let with_goals: Vec<_> = rows.iter().filter(|r| r.goal.is_some()).collect();
    assert_eq!(with_goals.len(), 3);
    assert!(
        with_goals
            .iter()
            .all(|r| r.ratio.is_some_and(f64::is_finite))
    );

    let table = report.render();
    assert!(table.starts_with("| Measurement |"), "{table}");
    assert!(table.contains("/v1/certs/renew"), "{table}");
    assert!(table.contains("ssh-keygen"), "{table}");
}

#[test]
fn argon2_cost_is_measured_with_the_given_parameters() {
    let clock = SystemClock::shared();
    let cheap = Argon2Params::dangerous_cheap_for_tests();
    let cost = measure_argon2(&clock, cheap, 3).unwrap();
    assert_eq!(cost.params, cheap);
    assert_eq!(cost.samples, 3);
    assert!(cost.verifies_per_sec() > 0.0);
    // Parameters argon2 refuses are an error, not a number.
    let broken = Argon2Params {
        m_cost_kib: 1,
        t_cost: 0,
        p_cost: 0,
    };
    assert!(measure_argon2(&clock, broken, 1).is_err());
}
