//! B5 — RBAC filtering for `kg ls` and `who-can`: 10,000 generated nodes
//! against 50 roles, for a user holding 5 of them and one holding all 50,
//! against a plain loop doing one label comparison per node in the same
//! run. Prints a Markdown table of times, ratios and goal verdicts.
//!
//! `cargo run --release -p keygate-bench --bin b5 [-- --quick]`
//!
//! Exit codes: 0 the run completed (whether or not goals were met),
//! 2 usage or a benchmark could not run.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use keygate_bench::{RbacPlan, run_b5};

const USAGE: &str = "usage: b5 [--quick] [--nodes N] [--rounds N]\n  --quick     1,000 nodes, one round; numbers are rough\n  --nodes N   nodes in the fleet (default 10000)\n  --rounds N  timed rounds (default 7)\n";

/// The value after `flag`, parsed, or a usage error.
fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<usize, String> {
    args.next()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{flag} needs a positive number"))
}

fn main() -> ExitCode {
    let mut plan = RbacPlan::full();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let parsed = match arg.as_str() {
            "--quick" => {
                let quick = RbacPlan::quick();
                plan.nodes = quick.nodes;
                plan.rounds = quick.rounds;
                Ok(())
            }
            "--nodes" => value(&mut args, "--nodes").map(|n| plan.nodes = n),
            "--rounds" => value(&mut args, "--rounds").map(|n| plan.rounds = n),
            "-h" | "--help" => {
                let _ = std::io::stdout().write_all(USAGE.as_bytes());
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument {other:?}")),
        };
        if let Err(e) = parsed {
            let _ = write!(std::io::stderr(), "b5: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let mut progress = |what: &str| {
        let _ = writeln!(std::io::stderr(), "b5: {what}…");
    };
    match run_b5(&plan, &mut progress) {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "## B5 — RBAC filtering\n");
            let _ = out.write_all(report.render().as_bytes());
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "b5: {e}");
            ExitCode::from(2)
        }
    }
}
