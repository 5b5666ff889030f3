//! B4b — new sessions per second through the proxy, to the agent
//! directly and to OpenSSH sshd, under concurrent load. Prints a Markdown
//! table of absolute rates and ratios against sshd measured in the same
//! run.
//!
//! `cargo run --release -p keygate-bench --bin sessions [-- --quick]`
//!
//! Needs root, OpenSSH (`ssh`, `sshd`) and the keygate, kg and kgctl
//! binaries built in the same profile.
//!
//! Exit codes: 0 the run completed (whether or not goals were met),
//! 2 usage or a benchmark could not run.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use keygate_bench::{RatePlan, run_sessions};

const USAGE: &str = "usage: sessions [--quick] [--workers N] [--secs S]\n  --quick      2 s per route instead of 10 s; numbers are rough\n  --workers N  concurrent workers (default 16)\n  --secs S     seconds of load per route (after --quick, overrides it)\n";

/// The value after `flag`, parsed, or a usage error.
fn value<T: std::str::FromStr>(
    args: &mut impl Iterator<Item = String>,
    flag: &str,
) -> Result<T, String> {
    args.next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag} needs a positive number"))
}

fn main() -> ExitCode {
    let mut plan = RatePlan::full();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let parsed = match arg.as_str() {
            "--quick" => {
                plan.duration = RatePlan::quick().duration;
                Ok(())
            }
            "--workers" => value(&mut args, "--workers").map(|n: usize| plan.workers = n.max(1)),
            "--secs" => value(&mut args, "--secs")
                .map(|s: u64| plan.duration = std::time::Duration::from_secs(s.max(1))),
            "-h" | "--help" => {
                let _ = std::io::stdout().write_all(USAGE.as_bytes());
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument {other:?}")),
        };
        if let Err(e) = parsed {
            let _ = write!(std::io::stderr(), "sessions: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let mut progress = |what: &str| {
        let _ = writeln!(std::io::stderr(), "sessions: measuring {what}…");
    };
    match run_sessions(plan, &mut progress) {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "## B4b — sessions/s\n");
            let _ = out.write_all(report.render().as_bytes());
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "sessions: {e}");
            ExitCode::from(2)
        }
    }
}
