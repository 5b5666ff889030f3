//! Turning B4's measurements into rows with ratios and goals, and the
//! Markdown table `BENCHMARKS.md` records.

use std::fmt;
use std::fmt::Write as _;

use keygate_audit::WriterStats;

use std::time::Duration;

use crate::measure::{Rate, cpu_per_op, median, paired_ratio, per_sec};
use crate::run::Plan;
use crate::{ApiRates, Argon2Cost, CpuRates, IssueRates};

/// Everything one B4 run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was run.
    pub plan: Plan,
    /// CPUs available to the process.
    pub cores: usize,
    /// 1-minute load average before the run (other work on the machine).
    pub load_before: Option<f64>,
    /// 1-minute load average after the run.
    pub load_after: Option<f64>,
    /// Raw Ed25519 vs `sign_user_ssh`.
    pub cpu: CpuRates,
    /// `ssh-keygen -s`, one process per certificate.
    pub ssh_keygen: Rate,
    /// One argon2id verification.
    pub argon2: Argon2Cost,
    /// `issue_user_certs` in process.
    pub issue: IssueRates,
    /// The in-process audit log's group-commit counters.
    pub audit: WriterStats,
    /// Ping vs renew through the proxy.
    pub api: ApiRates,
}

/// A goal from the B4 spec.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Goal {
    /// Smallest acceptable ratio against the row's baseline.
    pub min_ratio: f64,
    /// Smallest acceptable absolute rate, per second, if any.
    pub min_rate: Option<f64>,
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What was measured.
    pub what: String,
    /// Median rate per second.
    pub rate: f64,
    /// Slowest and fastest round, when there were several.
    pub spread: Option<(f64, f64)>,
    /// Process CPU time per operation (all threads, including the load
    /// generator where it runs in the same process).
    pub cpu_per_op: Option<Duration>,
    /// Median number of cores the process kept busy.
    pub cores: Option<f64>,
    /// Extra detail shown after the rate (e.g. time per operation).
    pub detail: Option<String>,
    /// The row it is compared with.
    pub baseline: Option<String>,
    /// `rate / baseline`.
    pub ratio: Option<f64>,
    /// The spec's goal, if this row has one.
    pub goal: Option<Goal>,
}

impl Row {
    fn new(what: impl Into<String>, rounds: &[Rate]) -> Self {
        let rates = per_sec(rounds);
        let spread = (rates.len() > 1).then(|| {
            let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        });
        let cores: Option<Vec<f64>> = rounds.iter().map(Rate::cores_used).collect();
        Self {
            what: what.into(),
            rate: median(&rates),
            spread,
            cpu_per_op: cpu_per_op(rounds),
            cores: cores.filter(|c| !c.is_empty()).map(|c| median(&c)),
            detail: None,
            baseline: None,
            ratio: None,
            goal: None,
        }
    }

    fn against(mut self, baseline: &str, ratio: f64) -> Self {
        self.baseline = Some(baseline.to_owned());
        self.ratio = Some(ratio);
        self
    }

    fn goal(mut self, min_ratio: f64, min_rate: Option<f64>) -> Self {
        self.goal = Some(Goal {
            min_ratio,
            min_rate,
        });
        self
    }

    /// Whether the goal is met; None when the row has no goal.
    pub fn met(&self) -> Option<bool> {
        let goal = self.goal?;
        let ratio_ok = self.ratio.is_some_and(|r| r >= goal.min_ratio);
        let rate_ok = goal.min_rate.is_none_or(|min| self.rate >= min);
        Some(ratio_ok && rate_ok)
    }
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "≥ {}×", trim_float(self.min_ratio))?;
        if let Some(min) = self.min_rate {
            write!(f, " and ≥ {}/s", thousands(min))?;
        }
        Ok(())
    }
}

impl Report {
    /// The table's rows, in the order of the spec.
    pub fn rows(&self) -> Vec<Row> {
        let raw = median(&per_sec(&self.cpu.raw));
        let keygen = self.ssh_keygen.per_sec();
        let sign = median(&per_sec(&self.cpu.sign));
        let issue_one = median(&per_sec(&self.issue.one_caller));
        let issue_many = median(&per_sec(&self.issue.many_callers));
        let callers = self.issue.callers;
        let tasks = self.api.tasks;
        let mut rows = vec![
            Row::new("raw Ed25519 sign, 300 B (aws-lc-rs), 1 thread", &self.cpu.raw),
            Row::new("`CertAuthority::sign_user_ssh`, 1 thread", &self.cpu.sign)
                .against(
                    "raw Ed25519",
                    paired_ratio(&per_sec(&self.cpu.sign), &per_sec(&self.cpu.raw)),
                )
                .goal(0.5, None),
            Row::new(
                "`ssh-keygen -s`, 1 process per cert",
                std::slice::from_ref(&self.ssh_keygen),
            ),
            Row::new("`sign_user_ssh` vs `ssh-keygen -s`", &self.cpu.sign)
                .against("`ssh-keygen -s`", ratio(sign, keygen))
                .goal(100.0, None),
            Row::new(
                "`AuthServer::issue_user_certs`, 1 caller (SSH + X.509 + durable audit)",
                &self.issue.one_caller,
            )
            .against("raw Ed25519", ratio(issue_one, raw)),
            Row::new(
                format!("`AuthServer::issue_user_certs`, {callers} callers"),
                &self.issue.many_callers,
            )
            .against("raw Ed25519", ratio(issue_many, raw)),
            Row::new(
                format!("API `GET /v1/ping` via proxy, {tasks} tasks (no-op)"),
                &self.api.ping,
            ),
            Row::new(
                format!(
                    "API `POST /v1/certs/renew` via proxy, {tasks} tasks (mTLS, RBAC, sign, durable audit)"
                ),
                &self.api.renew,
            )
            .against(
                "`GET /v1/ping`",
                paired_ratio(&per_sec(&self.api.renew), &per_sec(&self.api.ping)),
            )
            .goal(0.5, Some(5000.0)),
        ];
        let p = self.argon2.params;
        let mut argon = Row::new(
            format!(
                "argon2id verify (m={} KiB, t={}, p={}), 1 thread",
                p.m_cost_kib, p.t_cost, p.p_cost
            ),
            &[],
        );
        argon.rate = self.argon2.verifies_per_sec();
        argon.cpu_per_op = Some(self.argon2.verify);
        argon.detail = Some(format!(
            "{:.1} ms/verify; hash {:.1} ms",
            millis(self.argon2.verify),
            millis(self.argon2.hash)
        ));
        rows.push(argon);
        rows
    }

    /// The Markdown table plus the run's conditions.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "| Measurement | Rate (median; min–max of rounds) | CPU/op (cores busy) | Baseline | Ratio | Goal | Met |\n",
        );
        out.push_str("|---|---|---|---|---|---|---|\n");
        for row in self.rows() {
            let mut rate = format!("{}/s", thousands(row.rate));
            if let Some((lo, hi)) = row.spread {
                let _ = write!(rate, " ({}–{})", thousands(lo), thousands(hi));
            }
            if let Some(d) = &row.detail {
                let _ = write!(rate, "; {d}");
            }
            let mut cpu = row.cpu_per_op.map_or("—".into(), cpu_text);
            if let Some(c) = row.cores {
                let _ = write!(cpu, " ({c:.2})");
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.what,
                rate,
                cpu,
                row.baseline.as_deref().unwrap_or("—"),
                row.ratio
                    .map_or("—".into(), |r| format!("{}×", ratio_text(r))),
                row.goal.map_or("—".into(), |g| g.to_string()),
                match row.met() {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "—",
                }
            );
        }
        let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
        let p = &self.plan;
        let batch = if self.audit.batches > 0 {
            self.audit.events as f64 / self.audit.batches as f64
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "\n{} cores; 1-min load average {} before, {} after. {} round(s); windows: signing {:?}, issuance {:?}, API {:?}; \
             {} ssh-keygen certs; {} argon2 verifies; API: {} tasks over {} client(s). \
             In-process audit log: {} events in {} fsync'd batches ({:.1} per batch).",
            self.cores,
            load(self.load_before),
            load(self.load_after),
            p.rounds,
            p.cpu_window,
            p.issue_window,
            p.api_window,
            p.sshkeygen_certs,
            p.argon2_verifies,
            self.api.tasks,
            self.api.clients,
            self.audit.events,
            self.audit.batches,
            batch,
        );
        out
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU per operation: µs below 1 ms, ms above.
fn cpu_text(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}

/// Ratios: two decimals below 10, whole numbers above.
fn ratio_text(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.2}")
    } else {
        thousands(r)
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// A rate with thousands separators; one decimal below 100.
fn thousands(v: f64) -> String {
    if v < 100.0 {
        return format!("{v:.1}");
    }
    let digits = format!("{:.0}", v);
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
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
    fn numbers_are_readable() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.6), "1,000");
        assert_eq!(thousands(100.0), "100");
        assert_eq!(thousands(42.25), "42.2");
        assert_eq!(ratio_text(0.4567), "0.46");
        assert_eq!(ratio_text(1234.0), "1,234");
        assert_eq!(trim_float(100.0), "100");
        assert_eq!(trim_float(0.5), "0.5");
        assert_eq!(cpu_text(Duration::from_micros(42)), "42 µs");
        assert_eq!(cpu_text(Duration::from_micros(999)), "999 µs");
        assert_eq!(cpu_text(Duration::from_micros(4_000)), "4.0 ms");
        assert_eq!(cpu_text(Duration::from_micros(19_100)), "19.1 ms");
    }

    fn rates(per_sec: &[f64]) -> Vec<Rate> {
        per_sec
            .iter()
            .map(|r| Rate {
                ops: *r as u64,
                elapsed: Duration::from_secs(1),
                cpu: Some(Duration::from_millis(500)),
            })
            .collect()
    }

    #[test]
    fn goals_need_both_ratio_and_rate() {
        let row = Row::new("renew", &rates(&[6000.0]))
            .against("ping", 0.6)
            .goal(0.5, Some(5000.0));
        assert_eq!(row.met(), Some(true));
        let slow = Row::new("renew", &rates(&[4000.0]))
            .against("ping", 0.6)
            .goal(0.5, Some(5000.0));
        assert_eq!(slow.met(), Some(false));
        let low_ratio = Row::new("renew", &rates(&[6000.0]))
            .against("ping", 0.4)
            .goal(0.5, Some(5000.0));
        assert_eq!(low_ratio.met(), Some(false));
        assert_eq!(Row::new("ping", &rates(&[1.0])).met(), None);
        assert_eq!(
            Goal {
                min_ratio: 0.5,
                min_rate: Some(5000.0)
            }
            .to_string(),
            "≥ 0.5× and ≥ 5,000/s"
        );
    }

    #[test]
    fn spread_is_shown_only_for_several_rounds() {
        assert_eq!(Row::new("x", &rates(&[3.0])).spread, None);
        let row = Row::new("x", &rates(&[3.0, 1.0, 2.0]));
        assert_eq!(row.spread, Some((1.0, 3.0)));
        assert_eq!(row.rate, 2.0);
        assert_eq!(row.cores, Some(0.5));
        // 1.5 s of CPU over 6 operations.
        assert_eq!(row.cpu_per_op, Some(Duration::from_millis(250)));
        let empty = Row::new("x", &[]);
        assert_eq!(
            (empty.cores, empty.cpu_per_op, empty.rate),
            (None, None, 0.0)
        );
    }
}
