//! Keygate's benchmarks. Every number is reported next to a baseline
//! measured in the same run, because absolute rates on a shared 2-core
//! machine say little; ratios survive noisy neighbours much better.
//!
//! Owns: B4 (certificate issuance) — raw Ed25519 signing as the baseline,
//! in-process issuance (`CertAuthority::sign_user_ssh`,
//! `AuthServer::issue_user_certs`), `ssh-keygen -s` one process per
//! certificate, authenticated renewal through the proxy against a no-op
//! endpoint on the same server, and the cost of an argon2 password check.
//! The `b4` binary prints the table recorded in `BENCHMARKS.md`.
//! Also owns B1/B2/B3/B8 (server access, module `access`): throughput
//! (direct, and through the proxy or its SSH relay against `ssh -J`),
//! session latency and memory of the node agent against OpenSSH `sshd`,
//! through the real binaries; the `ssh` binary prints that table.
//! Also owns B5 (RBAC filtering, module `rbac`): `allowed_logins` plus one
//! `authorize` per node and login over a generated fleet, as `kg ls` and
//! `who-can` do, against one label comparison per node; the `b5` binary
//! prints that table.
//! Does not own: any production code path (it only calls public APIs), CI
//! gating on goals (a missed goal is reported, never an error).
#![forbid(unsafe_code)]

mod access;
mod api;
mod cpu;
mod error;
mod issue;
mod measure;
mod password;
mod rbac;
mod report;
mod run;
mod sshkeygen;

pub use access::{
    AccessPlan, AccessReport, Latency, Memory, Peers, RATE_ROUTES, RatePlan, Route, SessionMemory,
    SessionRate, SessionsReport, THROUGHPUT_ROUTES, Throughput, Transfers, percentile, route_rate,
    run_access, run_sessions,
};
pub use api::{ApiBench, ApiRates, totp_secret_from_uri};
pub use cpu::{CpuRates, SignBench};
pub use error::BenchError;
pub use issue::{IssueBench, IssueRates};
pub use measure::{Rate, cpu_per_op, median, paired_ratio, per_sec};
pub use password::{Argon2Cost, measure_argon2};
pub use rbac::{
    BASELINE_KEY, BASELINE_PASSES, BASELINE_VALUE, DecisionClass, Fleet, FleetNode, HeldRun,
    Listing, MAX_FILTER, MAX_RATIO, Phases, RbacPlan, RbacReport, USER, baseline_filter, phases,
    rbac_filter, roles_yaml, run_b5,
};
pub use report::{Goal, Report, Row};
pub use run::{Plan, run_b4};
pub use sshkeygen::SshKeygenBench;
