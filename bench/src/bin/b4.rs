//! B4 — certificate issuance. Prints a Markdown table of absolute rates
//! and ratios against baselines measured in the same run.
//!
//! `cargo run --release -p keygate-bench --bin b4 [-- --quick]`
//!
//! Exit codes: 0 the run completed (whether or not goals were met),
//! 2 usage or a benchmark could not run.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use keygate_bench::{Plan, run_b4};

const USAGE: &str =
    "usage: b4 [--quick]\n  --quick  a few-second smoke run (CI); numbers are rough\n";

fn main() -> ExitCode {
    let mut plan = Plan::full();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => plan = Plan::quick(),
            "-h" | "--help" => {
                let _ = std::io::stdout().write_all(USAGE.as_bytes());
                return ExitCode::SUCCESS;
            }
            other => {
                let _ = write!(std::io::stderr(), "b4: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let mut progress = |what: &str| {
        let _ = writeln!(std::io::stderr(), "b4: measuring {what}…");
    };
    match run_b4(&plan, &mut progress) {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "## B4 — certificate issuance\n");
            let _ = out.write_all(report.render().as_bytes());
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "b4: {e}");
            ExitCode::from(2)
        }
    }
}
