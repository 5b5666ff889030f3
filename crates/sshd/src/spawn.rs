//! The crate's only `unsafe` code: what a session's child process does
//! between `fork` and `exec` (new session, controlling terminal, dropping to
//! the login user) and the terminal-size `ioctl`.
//!
//! Why `unsafe` is needed: `CommandExt::pre_exec` is unsafe because the
//! closure runs in a forked copy of a multi-threaded process, where only
//! async-signal-safe functions may be called; `TIOCSCTTY` and `TIOCSWINSZ`
//! have no safe wrapper in `nix`; registering a descriptor with tokio's
//! reactor (`AsyncFd::register`) is unsafe since tokio 1.54.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::libc;
use nix::unistd::{Uid, setgid, setgroups, setsid, setuid};
use tokio::io::unix::AsyncFd;

use crate::auth::LoginUser;

/// Makes `cmd`'s child start a new session (so it and its children form one
/// process group that signals and hang-ups can reach), optionally take its
/// stdin — a PTY slave — as controlling terminal, and then drop to `user`
/// (supplementary groups, gid, uid, in that order: each step needs the
/// privilege the next one removes).
pub(crate) fn run_as(cmd: &mut tokio::process::Command, user: &LoginUser, controlling_tty: bool) {
    let uid = user.uid;
    let gid = user.gid;
    // Collected before the fork: looking groups up reads /etc/group, which
    // takes locks and allocates and so must not happen in the child.
    let groups = user.groups.clone();
    let switch = user.switch;
    // SAFETY: the closure runs in the child after `fork` and before `exec`.
    // It only calls thin wrappers of single system calls (setsid, ioctl,
    // setgroups, setgid, setuid), which are async-signal-safe; it allocates
    // nothing (`groups` was allocated before the fork and is only read, and
    // errors are built with `from_raw_os_error`, which does not allocate).
    unsafe {
        cmd.pre_exec(move || {
            setsid().map_err(io::Error::from)?;
            if controlling_tty {
                // SAFETY: fd 0 is the PTY slave std dup'ed onto stdin; the
                // third argument 0 means "do not steal a terminal that is
                // already some other session's".
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if switch {
                setgroups(&groups).map_err(io::Error::from)?;
                setgid(gid).map_err(io::Error::from)?;
                setuid(uid).map_err(io::Error::from)?;
                // Belt and braces: a non-root user must not be able to get
                // root back (a failed or partial setuid would allow it).
                if !uid.is_root() && setuid(Uid::from_raw(0)).is_ok() {
                    return Err(io::Error::from_raw_os_error(libc::EPERM));
                }
            }
            Ok(())
        });
    }
}

/// Sets the terminal size of the PTY whose master is `fd`; the kernel sends
/// SIGWINCH to the terminal's foreground process group.
pub(crate) fn set_window_size(
    fd: BorrowedFd<'_>,
    cols: u16,
    rows: u16,
    px_w: u16,
    px_h: u16,
) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: px_w,
        ws_ypixel: px_h,
    };
    // SAFETY: `fd` is a valid open descriptor for the duration of the call
    // (it is borrowed), and `ws` is a properly initialised `winsize` that
    // TIOCSWINSZ only reads.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Registers a PTY master with tokio's reactor. Must run inside the tokio
/// runtime (every caller is a connection task).
pub(crate) fn register_pty_master(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is a valid open descriptor that it alone closes,
    // on drop; it always returns the same raw descriptor, and `AsyncFd`
    // owns it from here on, so it stays open as long as it is registered.
    unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)
}
