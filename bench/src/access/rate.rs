//! B4b — new sessions per second under concurrent load: `workers`
//! threads each loop `ssh … true` (connect + auth + exec, one OpenSSH
//! client process per session) for a fixed time over one route, then the
//! next route. Every session's cost includes the client process's own
//! start-up and its half of the handshake, on the same two cores as the
//! server, so the rate measured here is a floor for the server's, not
//! its ceiling.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::{Route, command};
use super::cluster::{Peers, clock};
use crate::BenchError;

/// The routes B4b compares, in the order they run.
pub const RATE_ROUTES: [Route; 3] = [Route::AgentProxy, Route::AgentDirect, Route::SshdDirect];

/// How hard and how long B4b pushes each route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePlan {
    /// Concurrent workers, each running one session at a time.
    pub workers: usize,
    /// How long each route is loaded.
    pub duration: Duration,
}

impl RatePlan {
    /// The recorded benchmark: 16 workers, 10 s per route.
    pub fn full() -> Self {
        Self {
            workers: 16,
            duration: Duration::from_secs(10),
        }
    }

    /// A smoke run: 16 workers, 2 s per route.
    pub fn quick() -> Self {
        Self {
            workers: 16,
            duration: Duration::from_secs(2),
        }
    }

    /// The smallest plan the smoke test runs.
    pub fn tiny() -> Self {
        Self {
            workers: 2,
            duration: Duration::from_millis(500),
        }
    }
}

/// What one route sustained.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRate {
    /// The route.
    pub route: Route,
    /// Sessions that exited 0.
    pub completed: u64,
    /// Sessions whose `ssh` failed (non-zero exit or could not start).
    pub failures: u64,
    /// Wall time from the first start to the last worker's end, seconds
    /// (longer than the plan by the sessions still running at the end).
    pub secs: f64,
    /// The first failure's message, if any, to say why.
    pub first_error: Option<String>,
}

impl SessionRate {
    /// Completed sessions per second.
    pub fn per_sec(&self) -> f64 {
        self.completed as f64 / self.secs.max(1e-9)
    }
}

/// Counters the workers of one route share.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Sessions that exited 0.
    pub(super) completed: AtomicU64,
    /// Sessions that did not.
    failures: AtomicU64,
    /// The first failure's message.
    first_error: Mutex<Option<String>>,
}

impl Tally {
    /// Counts a failed session, keeping the first message.
    pub(super) fn fail(&self, msg: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(msg);
        }
    }

    /// The route's result after `elapsed` of load.
    pub(super) fn to_rate(&self, route: Route, elapsed: Duration) -> SessionRate {
        SessionRate {
            route,
            completed: self.completed.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            secs: elapsed.as_secs_f64(),
            first_error: self.first_error.lock().ok().and_then(|f| f.clone()),
        }
    }
}

/// `rate`, unless not one session succeeded: then the run is broken, not
/// slow, and the first failure says why.
pub(super) fn nonzero(rate: SessionRate, plan: RatePlan) -> Result<SessionRate, BenchError> {
    if rate.completed > 0 {
        return Ok(rate);
    }
    Err(BenchError::Operation(format!(
        "B4b: no session over {:?} succeeded in {:?}: {}",
        rate.route,
        plan.duration,
        rate.first_error.as_deref().unwrap_or("no session finished")
    )))
}

/// One session over `route`: `Ok` when `ssh … true` exited 0.
fn one_session(peers: &Peers, route: Route) -> Result<(), String> {
    let o = command(peers, route, "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("run ssh: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ssh via {route:?} exited with {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// Loads `route` with `plan.workers` looping workers for `plan.duration`.
fn load(peers: &Peers, route: Route, plan: RatePlan) -> SessionRate {
    let clock = clock();
    let tally = Arc::new(Tally::default());
    let start = clock.monotonic();
    let stop = start.saturating_add(plan.duration);
    std::thread::scope(|s| {
        for _ in 0..plan.workers.max(1) {
            let (tally, clock) = (Arc::clone(&tally), clock.clone());
            s.spawn(move || {
                while clock.monotonic() < stop {
                    match one_session(peers, route) {
                        Ok(()) => {
                            tally.completed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => tally.fail(e),
                    }
                }
            });
        }
    });
    tally.to_rate(route, clock.monotonic().saturating_sub(start))
}

/// B4b: each of [`RATE_ROUTES`] in turn, after one untimed session per
/// route (host keys, page cache). Failures are counted, not fatal; a route
/// where no session at all succeeded is an error.
pub fn session_rates(peers: &Peers, plan: RatePlan) -> Result<Vec<SessionRate>, BenchError> {
    for route in RATE_ROUTES {
        one_session(peers, route).map_err(BenchError::Operation)?;
    }
    let mut out = Vec::with_capacity(RATE_ROUTES.len());
    for route in RATE_ROUTES {
        out.push(nonzero(load(peers, route, plan), plan)?);
    }
    Ok(out)
}

/// Everything a B4b run measured.
#[derive(Debug, Clone)]
pub struct SessionsReport {
    /// What was run.
    pub plan: RatePlan,
    /// Cores available.
    pub cores: usize,
    /// 1-minute load average before.
    pub load_before: Option<f64>,
    /// 1-minute load average after.
    pub load_after: Option<f64>,
    /// In-process russh client, one entry per route in [`RATE_ROUTES`]
    /// order (measured first; the goal is judged on this).
    pub in_process: Vec<SessionRate>,
    /// One `ssh` process per session, same order.
    pub spawned: Vec<SessionRate>,
}

/// B4b goal: new sessions per second through the proxy on two cores.
const RATE_GOAL: f64 = 1000.0;

/// Sessions per second over `route` in `rates` (0 if not measured).
pub fn route_rate(rates: &[SessionRate], route: Route) -> f64 {
    rates
        .iter()
        .find(|r| r.route == route)
        .map_or(0.0, SessionRate::per_sec)
}

/// One client's table: a row per route, ratios against sshd's row.
fn table(s: &mut String, rates: &[SessionRate]) {
    use std::fmt::Write as _;
    s.push_str("| route | sessions | failures | seconds | sessions/s | ratio vs sshd | goal |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---|\n");
    let sshd = route_rate(rates, Route::SshdDirect);
    for r in rates {
        let ratio = if r.route == Route::SshdDirect || sshd <= 0.0 {
            String::new()
        } else {
            format!("{:.2}×", r.per_sec() / sshd)
        };
        let goal = if r.route == Route::AgentProxy {
            let met = r.per_sec() >= RATE_GOAL;
            format!(
                "≥ {RATE_GOAL:.0}/s {}",
                if met { "met" } else { "**missed**" }
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {:.1} | {ratio} | {goal} |",
            super::report::route_name(r.route),
            r.completed,
            r.failures,
            r.secs,
            r.per_sec(),
        );
    }
    for r in rates.iter().filter(|r| r.failures > 0) {
        let _ = writeln!(
            s,
            "\nFirst failure via {}: {}",
            super::report::route_name(r.route),
            r.first_error.as_deref().unwrap_or("?")
        );
    }
}

impl SessionsReport {
    /// The Markdown section body.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let load = |l: Option<f64>| l.map_or("?".into(), |v| format!("{v:.2}"));
        let _ = writeln!(
            s,
            "{} cores, load average {} before / {} after; {} concurrent workers, {:.0} s per \
             route, each looping connect + certificate auth + `exec true` + close; cipher `{}`, \
             key exchange `curve25519-sha256`, login `root`.\n",
            self.cores,
            load(self.load_before),
            load(self.load_after),
            self.plan.workers,
            self.plan.duration.as_secs_f64(),
            super::client::CIPHER,
        );
        s.push_str("### In-process client (russh, one tokio runtime in the bench process)\n\n");
        table(&mut s, &self.in_process);
        s.push_str("\n### One OpenSSH `ssh` process per session\n\n");
        table(&mut s, &self.spawned);
        s
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
    fn rate_is_completed_over_wall_time_and_never_divides_by_zero() {
        let r = SessionRate {
            route: Route::SshdDirect,
            completed: 50,
            failures: 3,
            secs: 2.0,
            first_error: None,
        };
        assert_eq!(r.per_sec(), 25.0);
        let zero = SessionRate { secs: 0.0, ..r };
        assert!(zero.per_sec().is_finite());
    }

    #[test]
    fn the_first_failure_is_kept_and_every_failure_counted() {
        let t = Tally::default();
        t.fail("first".into());
        t.fail("second".into());
        assert_eq!(t.failures.load(Ordering::Relaxed), 2);
        assert_eq!(t.first_error.lock().unwrap().as_deref(), Some("first"));
    }

    #[test]
    fn plans_shrink_from_full_to_tiny() {
        assert_eq!(RatePlan::full().workers, 16);
        assert!(RatePlan::quick().duration < RatePlan::full().duration);
        assert!(RatePlan::tiny().duration < RatePlan::quick().duration);
    }
}
