//! Throw-away OS accounts for tests that log in through a real sshd.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::process::{failed, output, require_root, require_tool};
use crate::{Result, TestkitError};

/// Every account the kit makes starts with this, so it can never touch a
/// real account (and stale ones are easy to spot: `getent passwd | grep kgt-`).
const PREFIX: &str = "kgt-";
/// Longest name `useradd` accepts on Debian.
const MAX_NAME: usize = 32;
/// `useradd`/`userdel` exit codes meaning "could not lock or update the
/// account files", which another process holding the lock causes.
const LOCK_BUSY: [i32; 2] = [1, 10];
/// `userdel` exit code: the user still has processes (an sshd session
/// child that has not quite exited).
const USER_BUSY: i32 = 8;
/// How often to retry a busy account database, and how long to wait.
const RETRIES: u32 = 20;
const RETRY_WAIT: Duration = Duration::from_millis(250);

/// Numbers the accounts made by this process, so names are unique per test.
static COUNTER: AtomicU32 = AtomicU32::new(0);
/// `useradd`/`userdel` take a file lock and fail rather than wait; tests in
/// one binary run on parallel threads, so take turns here first.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// A real OS user `kgt-<pid>-<n>` with a home directory and `/bin/bash`,
/// deleted (with its home) on drop.
///
/// Its password field is `*`: no password can match, but unlike a
/// `!`-locked account sshd still accepts certificate logins for it.
/// Creating one needs root; other callers get [`TestkitError::NotRoot`].
#[derive(Debug)]
pub struct OsUser {
    /// The login name.
    name: String,
}

impl OsUser {
    /// Creates a fresh account.
    pub fn create() -> Result<Self> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self::create_named(&format!("{PREFIX}{}-{n}", std::process::id()))
    }

    /// Creates the account `name`, which must start with `kgt-`. An
    /// existing account of that name is a leftover of a crashed run (names
    /// carry our pid) and is deleted first.
    pub fn create_named(name: &str) -> Result<Self> {
        check_name(name)?;
        require_root("creating an OS user")?;
        require_tool("/usr/sbin/useradd", "passwd")?;
        let _turn = ACCOUNTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if exists(name)? {
            delete(name)?;
        }
        retry_busy(Command::new("/usr/sbin/useradd").args(["-m", "-s", "/bin/bash", name]))?;
        let user = Self {
            name: name.to_owned(),
        };
        retry_busy(Command::new("/usr/sbin/usermod").args(["-p", "*", name]))?;
        Ok(user)
    }

    /// The login name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The home directory `useradd -m` made.
    pub fn home(&self) -> PathBuf {
        PathBuf::from("/home").join(&self.name)
    }
}

impl Drop for OsUser {
    fn drop(&mut self) {
        let _turn = ACCOUNTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = delete(&self.name) {
            // Drop cannot fail; say what was left behind so it can be removed.
            eprintln!(
                "keygate-testkit: could not delete OS user {}: {e}; run: userdel -r -f {}",
                self.name, self.name
            );
        }
    }
}

/// Only names the kit owns, in the form `useradd` accepts.
fn check_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(TestkitError::BadUserName {
            name: name.to_owned(),
            reason,
        })
    };
    if !name.starts_with(PREFIX) {
        return bad("test accounts must start with kgt-");
    }
    if name.len() > MAX_NAME {
        return bad("longer than 32 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return bad("only a-z, 0-9, '-' and '_' are allowed");
    }
    Ok(())
}

/// Whether an account of that name exists.
fn exists(name: &str) -> Result<bool> {
    Ok(output(Command::new("getent").args(["passwd", name]))?
        .status
        .success())
}

/// `userdel -r`, waiting out processes of the user that are still exiting
/// and forcing it (`-f`) as a last resort.
fn delete(name: &str) -> Result<()> {
    for _ in 0..RETRIES {
        let mut cmd = Command::new("/usr/sbin/userdel");
        cmd.args(["-r", name]);
        let out = output(&mut cmd)?;
        match out.status.code() {
            Some(0) => return Ok(()),
            Some(code) if code == USER_BUSY || LOCK_BUSY.contains(&code) => {
                std::thread::sleep(RETRY_WAIT)
            }
            _ => return Err(failed(&cmd, &out)),
        }
    }
    retry_busy(Command::new("/usr/sbin/userdel").args(["-r", "-f", name]))
}

/// Runs an account command, retrying while the account files are locked.
fn retry_busy(cmd: &mut Command) -> Result<()> {
    let mut last = None;
    for _ in 0..RETRIES {
        let out = output(cmd)?;
        match out.status.code() {
            Some(0) => return Ok(()),
            Some(code) if LOCK_BUSY.contains(&code) => {
                last = Some(out);
                std::thread::sleep(RETRY_WAIT);
            }
            _ => return Err(failed(cmd, &out)),
        }
    }
    match last {
        Some(out) => Err(failed(cmd, &out)),
        None => Ok(()),
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

    #[test]
    fn names_outside_the_kit_are_refused() {
        for name in [
            "root",
            "alice",
            "kgt-UPPER",
            "kgt-a b",
            &format!("kgt-{}", "x".repeat(40)),
            "kgt-x;rm",
        ] {
            let err = check_name(name).unwrap_err();
            assert!(
                matches!(err, TestkitError::BadUserName { .. }),
                "{name}: {err}"
            );
        }
        check_name("kgt-123-4").unwrap();
    }

    #[test]
    fn create_named_refuses_foreign_names_before_touching_the_system() {
        let err = OsUser::create_named("root").unwrap_err();
        assert!(err.to_string().contains("kgt-"), "{err}");
    }

    #[test]
    fn account_exists_until_dropped() {
        let user = OsUser::create().unwrap();
        let name = user.name().to_owned();
        assert!(name.starts_with("kgt-") && name.len() <= MAX_NAME);
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let line = passwd
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap();
        assert!(line.ends_with(":/bin/bash"), "{line}");
        assert!(user.home().is_dir());
        let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
        assert!(
            shadow.lines().any(|l| l.starts_with(&format!("{name}:*:"))),
            "password field is not *"
        );
        let home = user.home();
        drop(user);
        assert!(!exists(&name).unwrap());
        assert!(!home.exists());
    }

    #[test]
    fn names_are_unique() {
        let a = OsUser::create().unwrap();
        let b = OsUser::create().unwrap();
        assert_ne!(a.name(), b.name());
    }
}
