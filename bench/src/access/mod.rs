//! B1, B2, B3, B4b and B8 — server access, Keygate's node agent (and the
//! proxy's SSH relay to an agentless sshd) against OpenSSH `sshd`, all
//! driven by the same OpenSSH client with the same key, certificate and
//! cipher (see `client`). Everything runs as real processes: the
//! `keygate`/`kg`/`kgctl` binaries built next to this one and the
//! system's `sshd` and `ssh`.

mod client;
mod cluster;
mod inproc;
mod measure;
mod memory;
mod rate;
mod report;

pub use client::Route;
pub use cluster::Peers;
pub use measure::{Latency, THROUGHPUT_ROUTES, Throughput, Transfers, percentile};
pub use memory::Memory;
pub use rate::{RATE_ROUTES, RatePlan, SessionRate, SessionsReport, route_rate};
pub use report::{AccessReport, SessionMemory};

use crate::BenchError;

/// How much each part of the server-access run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPlan {
    /// Size of the file `cat` streams in B1 and B2, in bytes.
    pub file_bytes: u64,
    /// Rounds of B1/B2 transfers, each over every route in turn (medians
    /// are reported).
    pub transfer_rounds: usize,
    /// Timed `exec true` sessions per route in B3.
    pub latency_runs: usize,
    /// Concurrent held sessions measured in B8.
    pub session_counts: Vec<usize>,
}

impl AccessPlan {
    /// The recorded benchmark (a few minutes on two cores).
    pub fn full() -> Self {
        Self {
            file_bytes: 2 << 30,
            transfer_rounds: 3,
            latency_runs: 30,
            session_counts: vec![1, 8, 128],
        }
    }

    /// A smoke run: every path runs once or twice, numbers are rough.
    pub fn quick() -> Self {
        Self {
            file_bytes: 64 << 20,
            transfer_rounds: 1,
            latency_runs: 5,
            session_counts: vec![1, 8],
        }
    }

    /// The smallest plan the smoke test runs.
    pub fn tiny() -> Self {
        Self {
            file_bytes: 1 << 20,
            transfer_rounds: 1,
            latency_runs: 2,
            session_counts: vec![2],
        }
    }
}

/// Starts the peers, runs B8, B3 and B1/B2 in that order (memory first,
/// so "idle" means no session has run yet), and returns the report.
pub fn run_access(
    plan: &AccessPlan,
    progress: &mut dyn FnMut(&str),
) -> Result<AccessReport, BenchError> {
    let load_before = crate::run::load_average();
    progress("starting keygate (all-in-one + standalone node), sshd, agentless sshd, kg login");
    let peers = Peers::start()?;

    progress("B8: idle memory and held sessions");
    let memory = measure::sessions(&peers, &plan.session_counts, progress)?;

    progress("B3: connect + auth + exec true");
    let latency = measure::latency(&peers, plan.latency_runs)?;

    progress("B1/B2: cat of a large file (direct, via proxy, via ssh -J, via relay)");
    let throughput = measure::throughput(&peers, plan.file_bytes, plan.transfer_rounds)?;

    Ok(AccessReport {
        plan: plan.clone(),
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        load_before,
        load_after: crate::run::load_average(),
        memory,
        latency,
        throughput,
    })
}

/// Starts the peers and runs B4b (new sessions per second under
/// concurrent load) over the proxy, the agent directly and sshd.
pub fn run_sessions(
    plan: RatePlan,
    progress: &mut dyn FnMut(&str),
) -> Result<SessionsReport, BenchError> {
    let load_before = crate::run::load_average();
    progress("starting keygate (all-in-one + standalone node), sshd, agentless sshd, kg login");
    let peers = Peers::start()?;
    progress("B4b: sessions/s, in-process russh client (proxy, agent, sshd)");
    let in_process = inproc::session_rates(&peers, plan)?;
    progress("B4b: sessions/s, one ssh process per session (proxy, agent, sshd)");
    let spawned = rate::session_rates(&peers, plan)?;
    Ok(SessionsReport {
        plan,
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        load_before,
        load_after: crate::run::load_average(),
        in_process,
        spawned,
    })
}
