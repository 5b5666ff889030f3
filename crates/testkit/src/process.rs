//! Running helper programs and checking the privileges they need.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::{Result, TestkitError};

/// The effective uid of this process (owner of `/proc/self`), without libc.
pub(crate) fn effective_uid() -> Result<u32> {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(TestkitError::io("read /proc/self to find our uid"))
}

/// Fails with [`TestkitError::NotRoot`] unless we run as root.
pub(crate) fn require_root(what: &'static str) -> Result<()> {
    match effective_uid()? {
        0 => Ok(()),
        uid => Err(TestkitError::NotRoot { what, uid }),
    }
}

/// Fails with [`TestkitError::ToolMissing`] unless `path` exists.
pub(crate) fn require_tool(path: &str, package: &'static str) -> Result<()> {
    if Path::new(path).exists() {
        Ok(())
    } else {
        Err(TestkitError::ToolMissing {
            path: path.into(),
            package,
        })
    }
}

/// A printable form of a command line.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion, capturing its output (whatever its status).
pub(crate) fn output(cmd: &mut Command) -> Result<Output> {
    let line = describe(cmd);
    cmd.output()
        .map_err(TestkitError::io(format!("run `{line}`")))
}

/// Runs `cmd` and fails unless it exits 0.
pub(crate) fn run_ok(cmd: &mut Command) -> Result<Output> {
    let out = output(cmd)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(failed(cmd, &out))
    }
}

/// The error for a command that exited unsuccessfully.
pub(crate) fn failed(cmd: &Command, out: &Output) -> TestkitError {
    TestkitError::CommandFailed {
        command: describe(cmd),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    }
}
