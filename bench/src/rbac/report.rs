//! B5's numbers as the Markdown `BENCHMARKS.md` records: the filter
//! against the baseline with the goals, then where the filter's time goes.

use std::fmt::Write as _;
use std::time::Duration;

use super::{BASELINE_PASSES, HeldRun, RbacPlan};
use crate::measure::{median, paired_ratio};

/// Goal: the filter takes at most this many times the baseline.
pub const MAX_RATIO: f64 = 10.0;
/// Goal: the whole filter takes at most this long.
pub const MAX_FILTER: Duration = Duration::from_millis(2);

/// Everything one B5 run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RbacReport {
    /// What was run.
    pub plan: RbacPlan,
    /// CPUs available to the process.
    pub cores: usize,
    /// 1-minute load average before the run.
    pub load_before: Option<f64>,
    /// 1-minute load average after the run.
    pub load_after: Option<f64>,
    /// Locks in force during the decisions.
    pub locks: usize,
    /// Nodes the baseline keeps (`env=prod`).
    pub prod_nodes: usize,
    /// One entry per identity.
    pub runs: Vec<HeldRun>,
}

impl HeldRun {
    /// Median filter pass.
    pub fn filter_median(&self) -> Duration {
        Duration::from_secs_f64(median(&secs(&self.filter)))
    }

    /// Median baseline pass.
    pub fn baseline_median(&self) -> Duration {
        Duration::from_secs_f64(median(&secs(&self.baseline)))
    }

    /// Median over rounds of filter / baseline (each round's pair was
    /// timed back to back).
    pub fn ratio(&self) -> f64 {
        paired_ratio(&secs(&self.filter), &secs(&self.baseline))
    }

    /// Whether the ratio goal is met.
    pub fn ratio_met(&self) -> bool {
        self.ratio() <= MAX_RATIO
    }

    /// Whether the absolute goal is met.
    pub fn time_met(&self) -> bool {
        self.filter_median() <= MAX_FILTER
    }

    /// Median `NodeFilter` pass.
    pub fn node_filter_median(&self) -> Duration {
        Duration::from_secs_f64(median(&secs(&self.node_filter)))
    }

    /// Median over rounds of `NodeFilter` / baseline.
    pub fn node_filter_ratio(&self) -> f64 {
        paired_ratio(&secs(&self.node_filter), &secs(&self.baseline))
    }
}

impl RbacReport {
    /// The Markdown tables.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let load = |l: Option<f64>| l.map_or("?".to_owned(), |l| format!("{l:.2}"));
        let _ = writeln!(
            out,
            "{} cores, load average {} before / {} after; {} nodes (7 labels each) × {} roles, {} locks in force; {} rounds, each timing the baseline ({} back-to-back passes, median) then one filter pass, for every identity; filter times are one whole pass, median over rounds (min–max).\n",
            self.cores,
            load(self.load_before),
            load(self.load_after),
            self.plan.nodes,
            self.plan.roles,
            self.locks,
            self.plan.rounds.max(1),
            BASELINE_PASSES,
        );
        out.push_str("| identity | nodes listed | node × login granted | `authorize` calls | filter ms | baseline µs (`env=prod`, keeps ");
        let _ = write!(out, "{})", self.prod_nodes);
        out.push_str(" | ratio (paired median) | goal ≤ 10× | goal ≤ 2 ms |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---|---|\n");
        for run in &self.runs {
            let _ = writeln!(
                out,
                "| {} roles | {} | {} | {} | {} ({}–{}) | {} | {} | {} | {} |",
                run.held,
                run.listed,
                run.granted,
                run.phases.calls(),
                ms(run.filter_median()),
                ms(min(&run.filter)),
                ms(max(&run.filter)),
                us(run.baseline_median()),
                ratio_text(run.ratio()),
                verdict(run.ratio_met()),
                verdict(run.time_met()),
            );
        }
        out.push_str("\nWhat `list_nodes` and who-can/what-can do now: one `NodeFilter` per listing, then `NodeFilter::logins` per node (same nodes and logins as above, checked every run), timed in the same rounds right after the baseline:\n\n");
        out.push_str("| identity | nodes listed | node × login granted | `NodeFilter` ms | baseline µs | ratio (paired median) | goal ≤ 10× | goal ≤ 2 ms |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---|---|\n");
        for run in &self.runs {
            let ratio = run.node_filter_ratio();
            let _ = writeln!(
                out,
                "| {} roles | {} | {} | {} ({}–{}) | {} | {} | {} | {} |",
                run.held,
                run.listed,
                run.granted,
                ms(run.node_filter_median()),
                ms(min(&run.node_filter)),
                ms(max(&run.node_filter)),
                us(run.baseline_median()),
                ratio_text(ratio),
                verdict(ratio <= MAX_RATIO),
                verdict(run.node_filter_median() <= MAX_FILTER),
            );
        }
        out.push_str(
            "\nWhere one `authorize`-per-login pass spends its time (each part re-run once on its own):\n\n",
        );
        out.push_str("| identity | part | calls | total ms | µs per call |\n");
        out.push_str("|---|---|---:|---:|---:|\n");
        for run in &self.runs {
            let p = &run.phases;
            let nodes = self.plan.nodes;
            let _ = writeln!(
                out,
                "| {} roles | `allowed_logins` ({} logins), once per node | {} | {} | {} |",
                run.held,
                p.logins_per_node,
                nodes,
                ms(p.allowed_logins),
                per_call(p.allowed_logins, nodes),
            );
            for d in &p.decisions {
                let _ = writeln!(
                    out,
                    "| {} roles | `authorize` → {} | {} | {} | {} |",
                    run.held,
                    d.outcome,
                    d.calls,
                    ms(d.elapsed),
                    per_call(d.elapsed, d.calls),
                );
            }
        }
        out
    }
}

fn secs(d: &[Duration]) -> Vec<f64> {
    d.iter().map(Duration::as_secs_f64).collect()
}

fn min(d: &[Duration]) -> Duration {
    d.iter().copied().min().unwrap_or_default()
}

fn max(d: &[Duration]) -> Duration {
    d.iter().copied().max().unwrap_or_default()
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// Milliseconds: two decimals below 10, one below 1000, whole above.
fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// Microseconds, whole.
fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

/// Time per call in µs, two decimals.
fn per_call(total: Duration, calls: usize) -> String {
    if calls == 0 {
        return "–".to_owned();
    }
    format!("{:.2}", total.as_secs_f64() * 1e6 / calls as f64)
}

/// Ratios: one decimal below 100, whole numbers above.
fn ratio_text(r: f64) -> String {
    if r < 100.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.0}×")
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
    use crate::rbac::{DecisionClass, Phases};

    fn run(baseline_us: &[u64], filter_us: &[u64]) -> HeldRun {
        HeldRun {
            held: 5,
            baseline: baseline_us
                .iter()
                .map(|u| Duration::from_micros(*u))
                .collect(),
            filter: filter_us
                .iter()
                .map(|u| Duration::from_micros(*u))
                .collect(),
            node_filter: filter_us
                .iter()
                .map(|u| Duration::from_micros(*u / 10))
                .collect(),
            listed: 3,
            granted: 4,
            phases: Phases {
                allowed_logins: Duration::from_micros(300),
                logins_per_node: 2,
                decisions: vec![DecisionClass {
                    outcome: "permit".into(),
                    calls: 4,
                    elapsed: Duration::from_micros(10),
                }],
            },
        }
    }

    #[test]
    fn goals_are_judged_on_medians() {
        // Round 2 was disturbed on both sides: the pair keeps the ratio.
        let fast = run(&[100, 300, 100], &[900, 2700, 800]);
        assert_eq!(fast.filter_median(), Duration::from_micros(900));
        assert_eq!(fast.baseline_median(), Duration::from_micros(100));
        assert!((fast.ratio() - 9.0).abs() < 1e-9);
        assert!(fast.ratio_met() && fast.time_met());
        let slow = run(&[100], &[2_100]);
        assert!(!slow.ratio_met() && !slow.time_met());
        let ratio_only = run(&[1_000], &[2_500]);
        assert!(ratio_only.ratio_met() && !ratio_only.time_met());
    }

    #[test]
    fn table_shows_numbers_and_verdicts() {
        let report = RbacReport {
            plan: RbacPlan::tiny(),
            cores: 2,
            load_before: Some(1.5),
            load_after: None,
            locks: 4,
            prod_nodes: 80,
            runs: vec![run(&[100, 110], &[900, 1_000]), run(&[100], &[50_000])],
        };
        let t = report.render();
        assert!(t.contains("load average 1.50 before / ? after"), "{t}");
        assert!(
            t.contains("| 5 roles | 3 | 4 | 4 | 0.95 (0.90–1.00) | 105 | 9.0× | met | met |"),
            "{t}"
        );
        assert!(
            t.contains("| 50.0 (50.0–50.0) | 100 | 500× | **missed** | **missed** |"),
            "{t}"
        );
        assert!(
            t.contains("| 5 roles | 3 | 4 | 0.10 (0.09–0.10) | 105 | 0.9× | met | met |"),
            "{t}"
        );
        assert!(
            t.contains("| 5.00 (5.00–5.00) | 100 | 50.0× | **missed** | **missed** |"),
            "{t}"
        );
        assert!(
            t.contains("`allowed_logins` (2 logins), once per node | 200 | 0.30 | 1.50 |"),
            "{t}"
        );
        assert!(
            t.contains("`authorize` → permit | 4 | 0.01 | 2.50 |"),
            "{t}"
        );
    }

    #[test]
    fn numbers_are_readable() {
        assert_eq!(ms(Duration::from_micros(1_234)), "1.23");
        assert_eq!(ms(Duration::from_micros(12_345)), "12.3");
        assert_eq!(ms(Duration::from_millis(4_321)), "4321");
        assert_eq!(us(Duration::from_nanos(41_600)), "42");
        assert_eq!(per_call(Duration::from_micros(3), 0), "–");
        assert_eq!(ratio_text(9.96), "10.0×");
        assert_eq!(ratio_text(1234.4), "1234×");
    }
}
