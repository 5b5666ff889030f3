//! Ansible (PyPI `ansible-core`) as a real SSH client: find the `ansible`
//! ad-hoc command and run it in a workspace of its own, so a test sees
//! exactly what a user's `ansible all -m ping` does over plain OpenSSH.
//!
//! Ansible is not a Debian package we install (bookworm's `ansible-core`
//! is 2.14, older than [`ANSIBLE_CORE_SPEC`]): `scripts/test` puts it
//! into a virtualenv at `~/.cache/keygate/venv`. A machine without it fails the
//! test with the install command; it never skips.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::process::run_ok;
use crate::ssh_client::SSH;
use crate::{Result, TestkitError};

/// The versions `scripts/test` installs (keep the two in step): tested
/// with 2.17 on Python 3.11; capped below 2.18, whose controller needs
/// Python 3.11 or newer, so a Python 3.10 machine can still install it.
pub const ANSIBLE_CORE_SPEC: &str = "ansible-core>=2.15,<2.18";
/// Where `scripts/test` makes the virtualenv, under `$HOME`.
const VENV_BIN: &str = ".cache/keygate/venv/bin";
/// Where `pip install --user` (the fallback without `venv`) puts scripts.
const USER_BIN: &str = ".local/bin";
/// Python interpreters a remote login can run: system-wide, world
/// executable (a pyenv under `/root` is neither).
const REMOTE_PYTHONS: [&str; 2] = ["/usr/bin/python3", "/usr/local/bin/python3"];

/// An installed `ansible` ad-hoc command.
#[derive(Debug, Clone)]
pub struct Ansible {
    /// The `ansible` executable (its shebang picks its own Python).
    program: PathBuf,
}

impl Ansible {
    /// Finds `ansible` on `PATH`, else in `~/.cache/keygate/venv/bin` or
    /// `~/.local/bin`; an error saying how to install it otherwise.
    pub fn find() -> Result<Self> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let path = std::env::var_os("PATH");
        find_in(path.as_deref(), home.as_deref())
    }

    /// The executable found.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The first line of `ansible --version`, e.g. `ansible [core 2.17.14]`.
    pub fn version(&self) -> Result<String> {
        // Even `--version` reads a config and makes a local temp dir: give
        // it an empty config and a home of its own (ansible rejects
        // `ANSIBLE_CONFIG=/dev/null`: it picks the format by extension).
        let dir = tempfile::Builder::new()
            .prefix("keygate-ansible-")
            .tempdir()
            .map_err(TestkitError::io("create a directory for ansible"))?;
        let config = dir.path().join("ansible.cfg");
        std::fs::write(&config, "")
            .map_err(TestkitError::io(format!("write {}", config.display())))?;
        let mut cmd = isolated(&self.program, dir.path(), &config);
        let out = run_ok(cmd.arg("--version").env("ANSIBLE_HOME", dir.path()))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned())
    }

    /// A fresh [`AnsibleWorkspace`] for this `ansible`.
    pub fn workspace(&self) -> Result<AnsibleWorkspace> {
        AnsibleWorkspace::new(self.clone())
    }
}

/// The search behind [`Ansible::find`], with `PATH` and `HOME` passed in.
fn find_in(path: Option<&OsStr>, home: Option<&Path>) -> Result<Ansible> {
    let mut candidates: Vec<PathBuf> = path
        .map(|p| {
            std::env::split_paths(p)
                .map(|d| d.join("ansible"))
                .collect()
        })
        .unwrap_or_default();
    let fallbacks: Vec<PathBuf> = home
        .map(|h| {
            [VENV_BIN, USER_BIN]
                .iter()
                .map(|d| h.join(d).join("ansible"))
                .collect()
        })
        .unwrap_or_default();
    candidates.extend(fallbacks.iter().cloned());
    if let Some(program) = candidates.into_iter().find(|p| is_executable(p, 0o111)) {
        return Ok(Ansible { program });
    }
    let looked: Vec<String> = std::iter::once("PATH".to_owned())
        .chain(fallbacks.iter().map(|p| p.display().to_string()))
        .collect();
    Err(TestkitError::Io {
        context: "ansible (PyPI ansible-core) is not installed".into(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "looked in {}; run scripts/test (it installs ansible-core into \
                 ~/.cache/keygate/venv) or python3 -m pip install '{ANSIBLE_CORE_SPEC}'",
                looked.join(", ")
            ),
        ),
    })
}

/// `program` reading only `config`, in `dir`: every `ANSIBLE_*` variable
/// of the test's environment removed, no ssh-agent (`SSH_AUTH_SOCK`: keys
/// come from the ssh config), and a UTF-8 locale, which ansible-core
/// refuses to run without.
fn isolated(program: &Path, dir: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ANSIBLE_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .env("ANSIBLE_CONFIG", config)
        .env("LC_ALL", "C.UTF-8")
        .env_remove("SSH_AUTH_SOCK");
    cmd
}

/// Whether `path` is a regular file with one of the execute bits in `bits`.
fn is_executable(path: &Path, bits: u32) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & bits != 0)
}

/// Everything one test's `ansible` runs read or write, apart from the
/// machine's own Ansible setup: an own `ansible.cfg` (no config from the
/// environment, the working directory or `~`), `ANSIBLE_HOME`, local temp
/// and SSH control sockets in a private directory, and the remote temp
/// directory under the system temp dir. On drop it closes the SSH
/// connections Ansible keeps open (`ControlPersist`), then removes it all.
///
/// Settings (see [`AnsibleWorkspace::config_path`]): host key checking
/// on, no colours, remote Python = [`AnsibleWorkspace::remote_python`];
/// everything else is Ansible's default, as a user has it, including the
/// SSH arguments (`ControlMaster=auto`, `ControlPersist=60s`) and the
/// output. For results per host as JSON, pass `--tree DIR` (ansible-core's
/// `tree` callback writes one file per host; it ships no `json` callback).
#[derive(Debug)]
pub struct AnsibleWorkspace {
    /// The `ansible` program.
    ansible: Ansible,
    /// Interpreter modules run with on the hosts.
    remote_python: PathBuf,
    /// Base of the hosts' temp dirs: mode 1777, because the remote
    /// logins are other OS users (the hosts of these tests are this
    /// machine).
    remote_tmp: TempDir,
    /// `ansible.cfg`, `ANSIBLE_HOME`, local temp, control sockets and
    /// whatever the test writes (inventories). Declared last: dropped
    /// after [`Drop::drop`] has closed the sockets in it.
    dir: TempDir,
}

impl AnsibleWorkspace {
    /// Makes the directories and writes `ansible.cfg`.
    pub fn new(ansible: Ansible) -> Result<Self> {
        let remote_python = REMOTE_PYTHONS
            .iter()
            .map(PathBuf::from)
            .find(|p| is_executable(p, 0o001))
            .ok_or(TestkitError::ToolMissing {
                path: PathBuf::from("/usr/bin/python3"),
                package: "python3",
            })?;
        let dir = tempfile::Builder::new()
            .prefix("keygate-ansible-")
            .tempdir()
            .map_err(TestkitError::io("create a directory for ansible"))?;
        let remote_tmp = tempfile::Builder::new()
            .prefix("keygate-ansible-remote-")
            .tempdir()
            .map_err(TestkitError::io("create ansible's remote temp dir"))?;
        std::fs::set_permissions(remote_tmp.path(), std::fs::Permissions::from_mode(0o1777))
            .map_err(TestkitError::io(format!(
                "chmod 1777 {}",
                remote_tmp.path().display()
            )))?;
        let ws = Self {
            ansible,
            remote_python,
            remote_tmp,
            dir,
        };
        let config = ws.config_path();
        std::fs::write(&config, ws.render_config())
            .map_err(TestkitError::io(format!("write {}", config.display())))?;
        Ok(ws)
    }

    /// The private directory (inventories go here).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `ansible.cfg` every run reads (`ANSIBLE_CONFIG`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("ansible.cfg")
    }

    /// The Python modules run with on the hosts.
    pub fn remote_python(&self) -> &Path {
        &self.remote_python
    }

    /// Where SSH control sockets go (`control_path_dir`).
    fn control_dir(&self) -> PathBuf {
        self.dir.path().join("cp")
    }

    /// Writes `contents` to `name` in the workspace and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents)
            .map_err(TestkitError::io(format!("write {}", path.display())))?;
        Ok(path)
    }

    /// `ansible` with this workspace's config, run in its directory; add
    /// the arguments (`all -i INVENTORY -m ping`). No `ANSIBLE_*` variable
    /// of the test's environment gets through, nor `SSH_AUTH_SOCK`; the
    /// locale is UTF-8, which ansible-core refuses to run without.
    pub fn command(&self) -> Command {
        isolated(self.ansible.program(), self.dir.path(), &self.config_path())
    }

    /// The `ansible.cfg` text.
    fn render_config(&self) -> String {
        let d = self.dir.path();
        format!(
            "# Written by keygate-testkit for one test (see AnsibleWorkspace).\n\
             [defaults]\n\
             home = {home}\n\
             local_tmp = {local}\n\
             remote_tmp = {remote}\n\
             interpreter_python = {python}\n\
             host_key_checking = True\n\
             nocolor = True\n\
             retry_files_enabled = False\n\
             timeout = 30\n\
             \n\
             [ssh_connection]\n\
             control_path_dir = {cp}\n",
            home = d.join("home").display(),
            local = d.join("local-tmp").display(),
            remote = self.remote_tmp.path().display(),
            python = self.remote_python.display(),
            cp = self.control_dir().display(),
        )
    }
}

impl Drop for AnsibleWorkspace {
    fn drop(&mut self) {
        // ControlPersist leaves a master ssh (and its session on the host)
        // running for a minute after ansible exits; ask each to exit, so
        // the test's hosts and OS users can go right away.
        let Ok(entries) = std::fs::read_dir(self.control_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let _ = Command::new(SSH)
                .args(["-F", "/dev/null", "-o"])
                .arg(format!("ControlPath={}", entry.path().display()))
                .args(["-O", "exit", "keygate-ansible"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
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

    /// Writes an executable (or not) `ansible` stub into `dir`.
    fn stub(dir: &Path, mode: u32) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join("ansible");
        std::fs::write(&p, "#!/bin/sh\necho 'ansible [core 9.9.9]'\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn path_wins_over_the_venv() {
        let t = tempfile::tempdir().unwrap();
        let on_path = stub(&t.path().join("bin"), 0o755);
        stub(&t.path().join("home").join(VENV_BIN), 0o755);
        let path = std::env::join_paths([t.path().join("empty"), t.path().join("bin")]).unwrap();
        let found = find_in(Some(&path), Some(&t.path().join("home"))).unwrap();
        assert_eq!(found.program(), on_path);
        assert_eq!(found.version().unwrap(), "ansible [core 9.9.9]");
    }

    #[test]
    fn falls_back_to_the_venv_then_user_bin() {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        let user = stub(&home.join(USER_BIN), 0o755);
        assert_eq!(find_in(None, Some(&home)).unwrap().program(), user);
        let venv = stub(&home.join(VENV_BIN), 0o755);
        assert_eq!(find_in(None, Some(&home)).unwrap().program(), venv);
    }

    #[test]
    fn missing_ansible_says_how_to_install_it() {
        let t = tempfile::tempdir().unwrap();
        // A non-executable file and a directory named ansible do not count.
        stub(&t.path().join("bin"), 0o644);
        std::fs::create_dir_all(t.path().join("dir").join("ansible")).unwrap();
        let path = std::env::join_paths([t.path().join("bin"), t.path().join("dir")]).unwrap();
        let err = find_in(Some(&path), Some(t.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("(PyPI ansible-core) is not installed"),
            "{err}"
        );
        assert!(err.contains("scripts/test"), "{err}");
        assert!(
            err.contains("python3 -m pip install 'ansible-core>=2.15,<2.18'"),
            "{err}"
        );
        assert!(err.contains(".cache/keygate/venv/bin/ansible"), "{err}");
        let err = find_in(None, None).unwrap_err().to_string();
        assert!(err.contains("looked in PATH;"), "{err}");
    }

    #[test]
    fn workspace_config_isolates_ansible() {
        let t = tempfile::tempdir().unwrap();
        stub(&t.path().join(VENV_BIN), 0o755);
        let ansible = find_in(None, Some(t.path())).unwrap();
        let ws = ansible.workspace().unwrap();
        let cfg = std::fs::read_to_string(ws.config_path()).unwrap();
        for line in [
            "host_key_checking = True",
            "nocolor = True",
            &format!("interpreter_python = {}", ws.remote_python().display()),
            &format!("control_path_dir = {}", ws.path().join("cp").display()),
        ] {
            assert!(cfg.lines().any(|l| l == line), "{line} missing in\n{cfg}");
        }
        let remote = ws.remote_tmp.path().to_owned();
        let mode = std::fs::metadata(&remote).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o1777);
        let cmd = ws.command();
        let env: Vec<_> = cmd.get_envs().collect();
        assert!(env.contains(&(
            OsStr::new("ANSIBLE_CONFIG"),
            Some(ws.config_path().as_os_str())
        )));
        assert!(env.contains(&(OsStr::new("SSH_AUTH_SOCK"), None)));
        let dir = ws.path().to_owned();
        drop(ws);
        assert!(!dir.exists() && !remote.exists(), "removed on drop");
    }
}
