//! A real terminal for interactive sessions: a private tmux server whose
//! one detached session runs a command; tests type into it and read the
//! screen back.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::wait_until;

/// How often [`Tmux::wait_for`] looks at the screen.
const POLL: Duration = Duration::from_millis(100);

/// A detached tmux session on its own server socket, so tests never touch a
/// developer's tmux and can kill theirs on drop.
pub struct Tmux {
    /// The server's socket (`tmux -S`).
    socket: PathBuf,
    /// The session name (also the target of every command).
    session: String,
}

impl Tmux {
    /// Starts `sh -c COMMAND` in a detached `width`×`height` session whose
    /// server socket lives in `dir`. Fails with the install command when
    /// tmux is missing.
    pub fn start(
        dir: &Path,
        session: &str,
        width: u16,
        height: u16,
        command: &str,
    ) -> Result<Tmux, String> {
        let version = Command::new("tmux").arg("-V").output();
        if !version.is_ok_and(|o| o.status.success()) {
            return Err("tmux is not installed: run `apt-get install -y tmux`".into());
        }
        let tmux = Tmux {
            socket: dir.join(format!("tmux-{session}.sock")),
            session: session.to_owned(),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-s",
            session,
            command,
        ])?;
        Ok(tmux)
    }

    /// A `tmux` command on this server, without a user config.
    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-f")
            .arg("/dev/null")
            .arg("-S")
            .arg(&self.socket)
            // Started from inside tmux, a test must still get its own server.
            .env_remove("TMUX")
            .stdin(Stdio::null());
        c
    }

    /// Runs one tmux command; its stdout on success.
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let o = self
            .command()
            .args(args)
            .output()
            .map_err(|e| format!("cannot run tmux: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "tmux {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// Types `keys` (tmux key names such as `Enter` and `C-c` are keys,
    /// anything else is typed literally word by word).
    pub fn send_keys(&self, keys: &[&str]) -> Result<(), String> {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        self.run(&args).map(|_| ())
    }

    /// Types `line` literally and presses Enter.
    pub fn type_line(&self, line: &str) -> Result<(), String> {
        self.run(&["send-keys", "-t", &self.session, "-l", line])?;
        self.send_keys(&["Enter"])
    }

    /// The visible screen, trailing blanks trimmed from every line.
    pub fn screen(&self) -> Result<String, String> {
        let raw = self.run(&["capture-pane", "-p", "-t", &self.session])?;
        Ok(raw
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Whether a line of the screen is exactly `line` (typed commands echo
    /// after a prompt, so an output line is told apart from its command).
    pub fn has_line(&self, line: &str) -> bool {
        self.screen()
            .is_ok_and(|s| s.lines().any(|l| l.trim() == line))
    }

    /// Polls the screen until `pred` holds, up to `timeout`. The error
    /// shows the last screen.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        wait_until(timeout, POLL, || self.screen().ok().filter(|s| pred(s))).ok_or_else(|| {
            format!(
                "waited {timeout:?} for {what}; the screen shows:\n{}",
                self.screen().unwrap_or_else(|e| e)
            )
        })
    }

    /// Polls until a line of the screen is exactly `line`.
    pub fn wait_for_line(&self, line: &str, timeout: Duration) -> Result<String, String> {
        self.wait_for(&format!("a line {line:?}"), timeout, |s| {
            s.lines().any(|l| l.trim() == line)
        })
    }

    /// Resizes the window (the program inside gets SIGWINCH).
    pub fn resize(&self, width: u16, height: u16) -> Result<(), String> {
        self.run(&[
            "resize-window",
            "-t",
            &self.session,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ])
        .map(|_| ())
    }

    /// Whether the session still exists (it ends when its command does).
    pub fn alive(&self) -> bool {
        self.run(&["has-session", "-t", &self.session]).is_ok()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").output();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Quotes `s` for `sh` (single quotes; an embedded `'` is closed, escaped
/// and reopened).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
