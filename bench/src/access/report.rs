//! The B1/B2/B3/B8 tables, in Markdown, as recorded in `BENCHMARKS.md`.

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
/// B2 goal: agent throughput through the proxy at least that of sshd
/// through an sshd jump host (`ssh -J`).
const JUMP_THROUGHPUT_GOAL: f64 = 1.0;
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
    /// B1 and B2.
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
        Route::RelayProxy => "agentless sshd via proxy relay (`kg proxy ssh`)",
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

    /// B1 (direct) and B2 (through a jump) tables.
    fn render_throughput(&self, s: &mut String) {
        let t = &self.throughput;
        let (agent, sshd) = (t.rates(Route::AgentDirect), t.rates(Route::SshdDirect));
        let ratio = paired_ratio(agent, sshd);
        let _ = writeln!(
            s,
            "### B1 — `cat` of a {} MiB file ({} rounds, median)\n",
            t.bytes >> 20,
            agent.len()
        );
        s.push_str("| server | MB/s | ratio agent/sshd | goal |\n|---|---:|---:|---|\n");
        let _ = writeln!(s, "| sshd | {:.0} | | |", median(sshd) / 1e6);
        let _ = writeln!(
            s,
            "| agent | {:.0} | {ratio:.2}× | ≥ {THROUGHPUT_GOAL:.1}× {} |\n",
            median(agent) / 1e6,
            verdict(ratio >= THROUGHPUT_GOAL)
        );

        let jump = t.rates(Route::SshdJump);
        let _ = writeln!(
            s,
            "### B2 — `cat` of the same file through a jump (same rounds, median)\n"
        );
        s.push_str("| route | MB/s | ratio vs `ssh -J` (paired median) | goal |\n");
        s.push_str("|---|---:|---:|---|\n");
        let proxied = paired_ratio(t.rates(Route::AgentProxy), jump);
        let relayed = paired_ratio(t.rates(Route::RelayProxy), jump);
        for (route, ratio, goal) in [
            (Route::SshdJump, String::new(), String::new()),
            (
                Route::AgentProxy,
                format!("B2 agent/ssh -J {proxied:.2}×"),
                format!(
                    "≥ {JUMP_THROUGHPUT_GOAL:.1}× {}",
                    verdict(proxied >= JUMP_THROUGHPUT_GOAL)
                ),
            ),
            (
                Route::RelayProxy,
                format!("B2b relay/ssh -J {relayed:.2}×"),
                "(reported)".into(),
            ),
        ] {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {ratio} | {goal} |",
                route_name(route),
                median(t.rates(route)) / 1e6
            );
        }
        s.push('\n');
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

        self.render_throughput(&mut s);

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

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]

    use super::*;
    use crate::access::measure::Transfers;

    fn report(rates: &[(Route, Vec<f64>)]) -> AccessReport {
        AccessReport {
            plan: AccessPlan::tiny(),
            cores: 2,
            load_before: Some(1.0),
            load_after: None,
            memory: Vec::new(),
            latency: Vec::new(),
            throughput: Throughput {
                bytes: 64 << 20,
                routes: rates
                    .iter()
                    .map(|(route, rates)| Transfers {
                        route: *route,
                        rates: rates.clone(),
                    })
                    .collect(),
            },
        }
    }

    fn line_with<'a>(table: &'a str, needle: &str) -> &'a str {
        table
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{table}"))
    }

    #[test]
    fn b2_pairs_rounds_against_the_jump_and_judges_the_goal() {
        // Round 2 ran under load: every route dropped, the ratios held.
        let table = report(&[
            (Route::AgentDirect, vec![500e6, 250e6, 500e6]),
            (Route::SshdDirect, vec![400e6, 200e6, 400e6]),
            (Route::AgentProxy, vec![300e6, 150e6, 300e6]),
            (Route::SshdJump, vec![250e6, 125e6, 250e6]),
            (Route::RelayProxy, vec![100e6, 50e6, 100e6]),
        ])
        .render();
        assert!(table.contains("### B1"), "{table}");
        assert!(table.contains("### B2"), "{table}");
        let b1 = line_with(&table, "| agent | 500 |");
        assert!(b1.contains("1.25×") && b1.contains(" met"), "{b1}");
        let b2 = line_with(&table, "| agent via proxy");
        assert!(b2.contains("| 300 |"), "{b2}");
        assert!(b2.contains("B2 agent/ssh -J 1.20×"), "{b2}");
        assert!(b2.contains("≥ 1.0× met"), "{b2}");
        let b2b = line_with(&table, "| agentless sshd via proxy relay");
        assert!(b2b.contains("B2b relay/ssh -J 0.40×"), "{b2b}");
        assert!(b2b.contains("(reported)"), "{b2b}");
        let jump = line_with(&table, "| sshd via sshd jump host");
        assert!(jump.contains("| 250 |"), "{jump}");
    }

    #[test]
    fn a_slower_proxy_misses_b2() {
        let table = report(&[
            (Route::AgentProxy, vec![90e6]),
            (Route::SshdJump, vec![100e6]),
            (Route::RelayProxy, vec![50e6]),
        ])
        .render();
        let b2 = line_with(&table, "| agent via proxy");
        assert!(b2.contains("0.90×") && b2.contains("**missed**"), "{b2}");
    }
}
