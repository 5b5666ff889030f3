//! Timing primitives: fixed-window loops (sync and concurrent async) and
//! the statistics the report uses (median, paired ratio).
//!
//! Time comes from `keygate_clock` (monotonic), like everywhere else.

use std::future::Future;
use std::time::Duration;

use keygate_clock::SharedClock;
use tokio::task::JoinSet;

use crate::BenchError;

/// Operations completed in a measured wall-clock span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Completed operations.
    pub ops: u64,
    /// Time they took, from the first start to the last completion.
    pub elapsed: Duration,
    /// CPU time the whole process (every thread, plus children it waited
    /// for) used meanwhile; None where `/proc` is unavailable. On a shared
    /// machine this is steadier than the wall-clock rate.
    pub cpu: Option<Duration>,
}

impl Rate {
    /// Operations per second (0 when nothing was timed).
    pub fn per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    /// Average number of cores the process kept busy.
    pub fn cores_used(&self) -> Option<f64> {
        let secs = self.elapsed.as_secs_f64();
        self.cpu
            .filter(|_| secs > 0.0)
            .map(|cpu| cpu.as_secs_f64() / secs)
    }
}

/// Process CPU per operation over several measurements (totals, so the
/// 10 ms granularity of the kernel's counters averages out).
pub fn cpu_per_op(rates: &[Rate]) -> Option<Duration> {
    let ops: u64 = rates.iter().map(|r| r.ops).sum();
    let cpu = rates.iter().map(|r| r.cpu).sum::<Option<Duration>>()?;
    (ops > 0).then(|| cpu.div_f64(ops as f64))
}

/// Rates per second of each measurement.
pub fn per_sec(rates: &[Rate]) -> Vec<f64> {
    rates.iter().map(Rate::per_sec).collect()
}

/// CPU time used so far by this process: user + system time of every
/// thread plus that of waited-for children (`/proc/self/stat` fields 14–17,
/// in USER_HZ = 100 ticks per second, which Linux fixes for user space).
pub(crate) fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_millis(ticks.saturating_mul(10)))
}

/// utime + stime + cutime + cstime from a `/proc/<pid>/stat` line. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // After the name: field 3 (state) is index 0, so fields 14..=17 are
    // indexes 11..=14.
    let fields: Vec<&str> = rest.split_whitespace().skip(11).take(4).collect();
    if fields.len() != 4 {
        return None;
    }
    fields.iter().try_fold(0u64, |sum, f| {
        let v: i64 = f.parse().ok()?;
        sum.checked_add(u64::try_from(v).ok()?)
    })
}

/// CPU used since `start` (a [`process_cpu`] reading).
fn cpu_since(start: Option<Duration>) -> Option<Duration> {
    Some(process_cpu()?.saturating_sub(start?))
}

/// Runs `op` back to back on this thread until `window` has passed (at
/// least once), and returns the rate.
pub(crate) fn run_sync(
    clock: &SharedClock,
    window: Duration,
    mut op: impl FnMut() -> Result<(), BenchError>,
) -> Result<Rate, BenchError> {
    let cpu = process_cpu();
    let start = clock.monotonic();
    let deadline = start.saturating_add(window);
    let mut ops = 0u64;
    loop {
        op()?;
        ops += 1;
        // Reading the monotonic clock costs tens of nanoseconds, well
        // below every operation measured here, so it is read every time.
        let now = clock.monotonic();
        if now >= deadline {
            return Ok(Rate {
                ops,
                elapsed: now.saturating_sub(start),
                cpu: cpu_since(cpu),
            });
        }
    }
}

/// One request or call a concurrent measurement repeats. Each task owns a
/// clone.
pub(crate) trait Op: Clone + Send + Sync + 'static {
    /// Performs the operation once; an error stops the measurement.
    fn once(&self) -> impl Future<Output = Result<(), BenchError>> + Send;
}

/// Runs one task per element of `ops`, each repeating its operation until
/// `window` has passed; in-flight operations finish and are counted.
pub(crate) async fn run_concurrent<O: Op>(
    clock: &SharedClock,
    window: Duration,
    ops: Vec<O>,
) -> Result<Rate, BenchError> {
    let cpu = process_cpu();
    let start = clock.monotonic();
    let deadline = start.saturating_add(window);
    let mut tasks = JoinSet::new();
    for op in ops {
        let clock = clock.clone();
        tasks.spawn(async move {
            let mut done = 0u64;
            loop {
                op.once().await?;
                done += 1;
                if clock.monotonic() >= deadline {
                    return Ok::<u64, BenchError>(done);
                }
            }
        });
    }
    let mut total = 0u64;
    while let Some(joined) = tasks.join_next().await {
        total += joined.map_err(|e| BenchError::Task(e.to_string()))??;
    }
    Ok(Rate {
        ops: total,
        elapsed: clock.monotonic().saturating_sub(start),
        cpu: cpu_since(cpu),
    })
}

/// The median of `values` (mean of the middle two for an even count);
/// 0 for an empty slice. NaNs sort last.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    let upper = v.get(n / 2).copied().unwrap_or(0.0);
    if n % 2 == 1 {
        upper
    } else {
        let lower = v.get(n / 2 - 1).copied().unwrap_or(upper);
        (lower + upper) / 2.0
    }
}

/// The median over rounds of `subject[i] / baseline[i]`: each round's two
/// numbers were measured back to back, so a neighbour's load burst skews
/// one round's pair together instead of one side of the comparison.
/// Rounds with a zero baseline are skipped.
pub fn paired_ratio(subject: &[f64], baseline: &[f64]) -> f64 {
    let ratios: Vec<f64> = subject
        .iter()
        .zip(baseline)
        .filter(|(_, b)| **b > 0.0)
        .map(|(s, b)| s / b)
        .collect();
    median(&ratios)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]

    use keygate_clock::SystemClock;

    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[7.0]), 7.0);
    }

    #[test]
    fn paired_ratio_pairs_rounds_and_skips_zero_baselines() {
        // Round 2 ran under load: both sides dropped, the ratio held.
        assert_eq!(
            paired_ratio(&[50.0, 25.0, 50.0], &[100.0, 50.0, 100.0]),
            0.5
        );
        assert_eq!(paired_ratio(&[1.0, 9.0], &[0.0, 3.0]), 3.0);
        assert_eq!(paired_ratio(&[], &[]), 0.0);
    }

    fn rate(ops: u64, elapsed_ms: u64, cpu_ms: Option<u64>) -> Rate {
        Rate {
            ops,
            elapsed: Duration::from_millis(elapsed_ms),
            cpu: cpu_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn rate_per_sec_and_cores() {
        let r = rate(10, 500, Some(750));
        assert_eq!(r.per_sec(), 20.0);
        assert_eq!(r.cores_used(), Some(1.5));
        let zero = rate(10, 0, Some(10));
        assert_eq!(zero.per_sec(), 0.0);
        assert_eq!(zero.cores_used(), None);
        assert_eq!(per_sec(&[r, zero]), vec![20.0, 0.0]);
    }

    #[test]
    fn cpu_per_op_uses_totals_and_needs_every_reading() {
        let rates = [rate(100, 1000, Some(10)), rate(300, 1000, Some(30))];
        assert_eq!(cpu_per_op(&rates), Some(Duration::from_micros(100)));
        assert_eq!(cpu_per_op(&[rate(1, 1, Some(1)), rate(1, 1, None)]), None);
        assert_eq!(cpu_per_op(&[rate(0, 1, Some(1))]), None);
        assert_eq!(cpu_per_op(&[]), None);
    }

    #[test]
    fn proc_stat_is_parsed_after_the_command_name() {
        // Fields 14-17 are 11 22 33 44; the name holds ") (" and spaces.
        let line = "42 (b4 ) (x y) S 1 2 3 4 5 6 7 8 9 10 11 22 33 44 20 0 1 0";
        assert_eq!(parse_cpu_ticks(line), Some(110));
        assert_eq!(parse_cpu_ticks("42 (b4) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("no parenthesis at all"), None);
        assert_eq!(
            parse_cpu_ticks("42 (b4) S 1 2 3 4 5 6 7 8 9 10 x 22 33 44"),
            None
        );
        assert_eq!(
            parse_cpu_ticks("42 (b4) S 1 2 3 4 5 6 7 8 9 10 -1 22 33 44"),
            None
        );
        assert!(process_cpu().is_some(), "this test runs on Linux");
    }

    #[test]
    fn run_sync_runs_at_least_once_and_stops_on_error() {
        let clock: SharedClock = SystemClock::shared();
        let mut n = 0;
        let r = run_sync(&clock, Duration::ZERO, || {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(r.ops, 1);
        assert_eq!(n, 1);
        let err = run_sync(&clock, Duration::from_secs(60), || {
            Err(BenchError::Operation("boom".into()))
        });
        assert!(matches!(err, Err(BenchError::Operation(_))));
        assert!(clock.monotonic() < Duration::from_secs(60));
    }

    #[derive(Clone)]
    struct Fails;

    impl Op for Fails {
        async fn once(&self) -> Result<(), BenchError> {
            Err(BenchError::Api("refused".into()))
        }
    }

    #[derive(Clone)]
    struct Yields;

    impl Op for Yields {
        async fn once(&self) -> Result<(), BenchError> {
            tokio::task::yield_now().await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn run_concurrent_counts_every_task_and_reports_errors() {
        let clock: SharedClock = SystemClock::shared();
        let r = run_concurrent(&clock, Duration::from_millis(20), vec![Yields; 3])
            .await
            .unwrap();
        assert!(r.ops >= 3, "{r:?}");
        let err = run_concurrent(&clock, Duration::from_secs(60), vec![Fails; 2]).await;
        assert!(matches!(err, Err(BenchError::Api(_))));
    }
}
