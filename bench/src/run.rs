//! What a B4 run measures, in which order, and for how long.

use std::time::Duration;

use keygate_authn::Argon2Params;
use keygate_clock::{SharedClock, SystemClock};

use crate::report::Report;
use crate::{ApiBench, BenchError, IssueBench, SignBench, SshKeygenBench, measure_argon2};

/// How long and how hard each part of B4 runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Interleaved baseline/subject rounds per comparison (medians are
    /// reported).
    pub rounds: usize,
    /// Length of one round of single-thread signing.
    pub cpu_window: Duration,
    /// Length of one round of in-process `issue_user_certs`.
    pub issue_window: Duration,
    /// Concurrent callers in the second `issue_user_certs` line.
    pub issue_callers: usize,
    /// Certificates signed by `ssh-keygen -s` (one process each).
    pub sshkeygen_certs: usize,
    /// Length of one round of API load.
    pub api_window: Duration,
    /// Concurrent request tasks against the API.
    pub api_tasks: usize,
    /// Independent API clients (HTTP/2 connections) the tasks share.
    pub api_clients: usize,
    /// argon2 verifications timed.
    pub argon2_verifies: usize,
}

impl Plan {
    /// The recorded benchmark: about 35 s on two cores.
    pub fn full() -> Self {
        Self {
            rounds: 3,
            cpu_window: Duration::from_secs(1),
            issue_window: Duration::from_secs(1),
            issue_callers: 32,
            sshkeygen_certs: 50,
            api_window: Duration::from_secs(3),
            api_tasks: 32,
            api_clients: 2,
            argon2_verifies: 20,
        }
    }

    /// A smoke run (a few seconds): every path runs, numbers are rough.
    pub fn quick() -> Self {
        Self {
            rounds: 1,
            cpu_window: Duration::from_millis(100),
            issue_window: Duration::from_millis(200),
            issue_callers: 32,
            sshkeygen_certs: 5,
            api_window: Duration::from_millis(300),
            api_tasks: 32,
            api_clients: 2,
            argon2_verifies: 2,
        }
    }
}

/// Runs B4 and returns its report. Builds its own tokio runtime for the
/// in-process server parts, so it must not be called from inside one.
/// `progress` is told what is being measured next.
pub fn run_b4(plan: &Plan, progress: &mut dyn FnMut(&str)) -> Result<Report, BenchError> {
    let clock: SharedClock = SystemClock::shared();
    let load_before = load_average();

    progress("raw Ed25519 vs CertAuthority::sign_user_ssh (1 thread)");
    let sign = SignBench::new(clock.clone())?;
    let cpu = sign.compare(plan.rounds, plan.cpu_window)?;

    progress("ssh-keygen -s, one process per certificate");
    let ssh_keygen = SshKeygenBench::new(clock.clone())?.measure(plan.sshkeygen_certs)?;

    progress("argon2id verification with the OWASP parameters (1 thread)");
    let argon2 = measure_argon2(&clock, Argon2Params::OWASP, plan.argon2_verifies)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::setup("start the tokio runtime", e))?;
    let (issue, audit, api) = runtime.block_on(async {
        progress("AuthServer::issue_user_certs in process (1 and many callers)");
        let bench = IssueBench::open(clock.clone()).await?;
        let issue = bench
            .compare(plan.rounds, plan.issue_window, plan.issue_callers)
            .await;
        let audit = bench.close().await?;
        let issue = issue?;

        progress("API through the proxy: GET /v1/ping vs POST /v1/certs/renew");
        let bench = ApiBench::start(clock.clone(), plan.api_clients).await?;
        let api = bench
            .compare(plan.rounds, plan.api_window, plan.api_tasks)
            .await;
        bench.stop().await;
        Ok::<_, BenchError>((issue, audit, api?))
    })?;

    Ok(Report {
        plan: plan.clone(),
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        load_before,
        load_after: load_average(),
        cpu,
        ssh_keygen,
        argon2,
        issue,
        audit,
        api,
    })
}

/// The 1-minute load average (Linux), to show how busy the machine was.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
