//! B1, B2, B3, B8 — server access (node agent, and the proxy's SSH relay,
//! vs OpenSSH sshd). Prints Markdown tables of absolute rates and ratios
//! against baselines measured in the same run.
//!
//! `cargo run --release -p keygate-bench --bin ssh [-- --quick]`
//!
//! Needs root, OpenSSH (`ssh`, `sshd`) and the keygate, kg and kgctl
//! binaries built in the same profile.
//!
//! Exit codes: 0 the run completed (whether or not goals were met),
//! 2 usage or a benchmark could not run.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use keygate_bench::{AccessPlan, run_access};

const USAGE: &str = "usage: ssh [--quick]\n  --quick  a ~1-minute smoke run (64 MiB file, 1 and 8 sessions); numbers are rough\n";

fn main() -> ExitCode {
    let mut plan = AccessPlan::full();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => plan = AccessPlan::quick(),
            "-h" | "--help" => {
                let _ = std::io::stdout().write_all(USAGE.as_bytes());
                return ExitCode::SUCCESS;
            }
            other => {
                let _ = write!(
                    std::io::stderr(),
                    "ssh: unknown argument {other:?}\n{USAGE}"
                );
                return ExitCode::from(2);
            }
        }
    }
    let mut progress = |what: &str| {
        let _ = writeln!(std::io::stderr(), "ssh: measuring {what}…");
    };
    match run_access(&plan, &mut progress) {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "## B1/B2/B3/B8 — server access\n");
            let _ = out.write_all(report.render().as_bytes());
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ssh: {e}");
            ExitCode::from(2)
        }
    }
}
