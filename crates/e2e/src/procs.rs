//! Processes a test starts or watches on this host.

use std::process::{Child, Command};

/// A child process killed on drop, so a failing test leaves none behind.
pub struct KillOnDrop(
    /// The process.
    pub Child,
);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pids of `login`'s processes whose command line matches the regular
/// expression `pattern` (`pgrep -u LOGIN -f PATTERN`: a read-only look at
/// the process table; nodes in these tests run on this host, so this is
/// how a test sees what a session started).
pub fn processes_of(login: &str, pattern: &str) -> Result<Vec<u32>, String> {
    let o = Command::new("pgrep")
        .args(["-u", login, "-f", pattern])
        .output()
        .map_err(|e| format!("cannot run pgrep ({e}): apt-get install -y procps"))?;
    // pgrep: 0 = found, 1 = none, anything else = error.
    match o.status.code() {
        Some(0 | 1) => Ok(String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()),
        _ => Err(format!(
            "pgrep -u {login} -f {pattern:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
    }
}
