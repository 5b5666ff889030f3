//! The B1/B3/B8 table, in Markdown, as recorded in `BENCHMARKS.md`.

use std::fmt::Write as _;

use super::AccessPlan;
use super::client::{CIPHER, Route};
use super::measure::{Latency, Throughput, percentile};
use super::memory::Memory;
use crate::{median, paired_ratio};

/// Idle agent RSS goal (B8), in KiB.
const IDLE_RSS_GOAL_KIB: u64 = 20 << 10;
/// B1 goal: agent throughput at least sshd's.
const THROUGHPUT_GOAL: f64 = 1.0;
/// B3 goal: direct agent latency at most this fraction of sshd's.
const LATENCY_GOAL: f64 = 0.25;

/// Memory of both servers with `sessions` held sessions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionMemory {
    /// Held sessions (0 = idle).
    pub sessions: usize,
    /// The standalone node's processes.
    pub agent: Memory,
    /// sshd's listener and per-connection processes.
    pub sshd: Memory,
}

/// Everything a server-access run measured.
#[derive(Debug, Clone)]
pub struct AccessReport {
    /// What was run.
    pub plan: AccessPlan,
    /// Cores available.
    pub cores: usize,
    /// 1-minute load average before and after.
    pub load_before: Option<f64>,
    /// 1-minute load average after.
    pub load_after: Option<f64>,
    /// B8, idle first.
    pub memory: Vec<SessionMemory>,
    /// B3, one entry per route.
    pub latency: Vec<Latency>,
    /// B1.
    pub throughput: Throughput,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

pub(super) fn route_name(r: Route) -> &'static str {
    match r {
        Route::AgentDirect => "agent direct",
        Route::SshdDirect => "sshd direct",
        Route::AgentProxy => "agent via proxy (`kg proxy ssh`)",
        Route::SshdJump => "sshd via sshd jump host (`-J`)",
    }
}

impl AccessReport {
    /// Median of `route`'s latencies, in seconds.
    fn latency_of(&self, route: Route, p: f64) -> f64 {
        self.latency
            .iter()
            .find(|l| l.route == route)
            .map_or(0.0, |l| percentile(&l.secs, p))
    }

    /// Paired per-run ratio `a / b` (median over runs).
    fn latency_ratio(&self, a: Route, b: Route) -> f64 {
        let secs = |r: Route| {
            self.latency
                .iter()
                .find(|l| l.route == r)
                .map(|l| l.secs.clone())
                .unwrap_or_default()
        };
        paired_ratio(&secs(a), &secs(b))
    }

    /// The Markdown section body.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let load = |l: Option<f64>| l.map_or("?".into(), |v| format!("{v:.2}"));
        let _ = writeln!(
            s,
            "{} cores, load average {} before / {} after; OpenSSH client and `sshd` from the \
             system, cipher `{CIPHER}`, key exchange `curve25519-sha256`, login `root`, one Ed25519 user certificate for both servers.\n",
            self.cores,
            load(self.load_before),
            load(self.load_after)
        );

        let t = &self.throughput;
        let (a, b) = (median(&t.agent), median(&t.sshd));
        let ratio = paired_ratio(&t.agent, &t.sshd);
        let _ = writeln!(
            s,
            "### B1 — `cat` of a {} MiB file ({} rounds, median)\n",
            t.bytes >> 20,
            t.agent.len()
        );
        s.push_str("| server | MB/s | ratio agent/sshd | goal |\n|---|---:|---:|---|\n");
        let _ = writeln!(s, "| sshd | {:.0} | | |", b / 1e6);
        let _ = writeln!(
            s,
            "| agent | {:.0} | {ratio:.2}× | ≥ {THROUGHPUT_GOAL:.1}× {} |\n",
            a / 1e6,
            verdict(ratio >= THROUGHPUT_GOAL)
        );

        let runs = self.latency.first().map_or(0, |l| l.secs.len());
        let _ = writeln!(
            s,
            "### B3 — connect + auth + `exec true` ({runs} runs per route, interleaved)\n"
        );
        s.push_str("| route | median ms | p90 ms | ratio vs OpenSSH (paired median) | goal |\n");
        s.push_str("|---|---:|---:|---:|---|\n");
        let direct = self.latency_ratio(Route::AgentDirect, Route::SshdDirect);
        let proxied = self.latency_ratio(Route::AgentProxy, Route::SshdJump);
        for (route, ratio, goal) in [
            (Route::SshdDirect, None, String::new()),
            (
                Route::AgentDirect,
                Some(direct),
                format!("≤ {LATENCY_GOAL}× {}", verdict(direct <= LATENCY_GOAL)),
            ),
            (Route::SshdJump, None, String::new()),
            (Route::AgentProxy, Some(proxied), "(reported)".into()),
        ] {
            let _ = writeln!(
                s,
                "| {} | {:.1} | {:.1} | {} | {goal} |",
                route_name(route),
                self.latency_of(route, 50.0) * 1e3,
                self.latency_of(route, 90.0) * 1e3,
                ratio.map_or(String::new(), |r| format!("{r:.2}×"))
            );
        }

        s.push_str("\n### B8 — memory (sum over the server's own processes)\n\n");
        s.push_str(
            "| sessions | agent RSS MiB | agent PSS MiB | agent PSS/session KiB | \
             sshd PSS MiB (procs) | sshd PSS/session KiB | ratio per session agent/sshd |\n",
        );
        s.push_str("|---:|---:|---:|---:|---:|---:|---:|\n");
        let idle = self.memory.first().copied();
        for m in &self.memory {
            let per = |now: Memory, idle: Option<Memory>| {
                let base = idle.map_or(0, |i| i.pss_kib);
                (m.sessions > 0)
                    .then(|| now.pss_kib.saturating_sub(base) as f64 / m.sessions as f64)
            };
            let pa = per(m.agent, idle.map(|i| i.agent));
            let ps = per(m.sshd, idle.map(|i| i.sshd));
            let fmt = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0}"));
            let ratio = match (pa, ps) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                _ => "–".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {:.1} | {:.1} | {} | {:.1} ({}) | {} | {ratio} |",
                m.sessions,
                mib(m.agent.rss_kib),
                mib(m.agent.pss_kib),
                fmt(pa),
                mib(m.sshd.pss_kib),
                m.sshd.processes,
                fmt(ps),
            );
        }
        if let Some(i) = idle {
            let _ = writeln!(
                s,
                "\nIdle agent RSS {:.1} MiB: goal ≤ {} MiB {}.",
                mib(i.agent.rss_kib),
                IDLE_RSS_GOAL_KIB >> 10,
                verdict(i.agent.rss_kib <= IDLE_RSS_GOAL_KIB)
            );
        }
        s
    }
}
