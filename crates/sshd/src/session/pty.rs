//! Pseudo-terminals: allocation with the client's modes and size, and async
//! I/O on the master side.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::{Mode, fchmod};
use nix::sys::termios::{
    ControlFlags, InputFlags, LocalFlags, OutputFlags, SetArg, SpecialCharacterIndices as Cc,
    Termios, tcgetattr, tcsetattr,
};
use nix::unistd::{Gid, Group, Uid, fchown};
use russh::Pty;
use tokio::io::unix::AsyncFd;

use crate::error::{Result, SshdError};
use crate::spawn;

/// Terminal sizes beyond this are clamped: the values come from the network
/// and programs allocate screen buffers from them.
const MAX_DIMENSION: u32 = 4096;
/// Used when the client sends 0 ("unknown").
const DEFAULT_COLS: u16 = 80;
/// Used when the client sends 0 ("unknown").
const DEFAULT_ROWS: u16 = 24;

/// A terminal size as the client sent it, already clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
    /// Width in pixels (0 = unknown).
    pub px_w: u16,
    /// Height in pixels (0 = unknown).
    pub px_h: u16,
}

impl WindowSize {
    /// Clamps untrusted sizes to something sane.
    pub(crate) fn clamp(cols: u32, rows: u32, px_w: u32, px_h: u32) -> Self {
        let dim = |v: u32, default: u16| match v {
            0 => default,
            v => u16::try_from(v.min(MAX_DIMENSION)).unwrap_or(default),
        };
        let px = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
        Self {
            cols: dim(cols, DEFAULT_COLS),
            rows: dim(rows, DEFAULT_ROWS),
            px_w: px(px_w),
            px_h: px(px_h),
        }
    }
}

/// What a `pty-req` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PtyRequest {
    /// `TERM` for the session.
    pub term: String,
    /// Initial size.
    pub size: WindowSize,
    /// Terminal modes (RFC 4254 §8).
    pub modes: Vec<(Pty, u32)>,
}

/// A freshly opened PTY: the master stays with the server, the slave
/// becomes the child's stdin/stdout/stderr and controlling terminal.
pub(crate) struct PtyPair {
    /// Our side.
    pub master: PtyMaster,
    /// The child's side; dropped by the server once the child is spawned.
    pub slave: OwnedFd,
    /// `/dev/pts/N`, for `SSH_TTY`.
    pub tty_name: String,
}

/// Opens a PTY with the requested modes and size. With `owner`, the
/// terminal is handed to that user (group `tty`, mode 0620), as login
/// terminals are, so the user's programs own their terminal.
pub(crate) fn open(req: &PtyRequest, owner: Option<(Uid, Gid)>) -> Result<PtyPair> {
    // CLOEXEC at creation: other sessions' children forked meanwhile must
    // not inherit this terminal (it would keep it open after our child
    // exits). NONBLOCK for the async reactor.
    let master =
        posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(SshdError::sys("open /dev/ptmx"))?;
    grantpt(&master).map_err(SshdError::sys("grantpt"))?;
    unlockpt(&master).map_err(SshdError::sys("unlockpt"))?;
    let tty_name = ptsname_r(&master).map_err(SshdError::sys("ptsname"))?;
    // std opens with O_CLOEXEC; O_NOCTTY so the server never gets a
    // controlling terminal.
    let slave: OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(&tty_name)
        .map_err(SshdError::io(format!("open {tty_name}")))?
        .into();
    if let Some((uid, gid)) = owner {
        let tty_group = Group::from_name("tty")
            .ok()
            .flatten()
            .map_or(gid, |g| g.gid);
        fchown(&slave, Some(uid), Some(tty_group)).map_err(SshdError::sys("chown the PTY"))?;
        fchmod(&slave, Mode::from_bits_truncate(0o620)).map_err(SshdError::sys("chmod the PTY"))?;
    }
    let mut termios = tcgetattr(&slave).map_err(SshdError::sys("tcgetattr"))?;
    apply_modes(&mut termios, &req.modes);
    tcsetattr(&slave, SetArg::TCSANOW, &termios).map_err(SshdError::sys("tcsetattr"))?;
    let master = PtyMaster {
        fd: spawn::register_pty_master(OwnedFd::from(master))
            .map_err(SshdError::io("register the PTY"))?,
    };
    master
        .resize(req.size)
        .map_err(SshdError::io("set the PTY size"))?;
    Ok(PtyPair {
        master,
        slave,
        tty_name,
    })
}

/// The server's side of a PTY, usable from several tasks at once.
#[derive(Debug)]
pub(crate) struct PtyMaster {
    /// The non-blocking master descriptor.
    fd: AsyncFd<OwnedFd>,
}

impl PtyMaster {
    /// Reads terminal output; `Ok(0)` once every slave descriptor is closed
    /// (Linux reports that as EIO).
    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(io::Error::from)) {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => return Ok(0),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all of `data` as terminal input.
    pub(crate) async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => data = data.get(n..).unwrap_or_default(),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Sets the terminal size.
    pub(crate) fn resize(&self, size: WindowSize) -> io::Result<()> {
        spawn::set_window_size(
            self.fd.get_ref().as_fd(),
            size.cols,
            size.rows,
            size.px_w,
            size.px_h,
        )
    }
}

/// Applies the RFC 4254 §8 modes OpenSSH sends; unknown or unsupported ones
/// are ignored (as OpenSSH's sshd does).
fn apply_modes(t: &mut Termios, modes: &[(Pty, u32)]) {
    for &(op, value) in modes {
        let on = value != 0;
        if let Some(cc) = control_char(op) {
            if let Some(slot) = t.control_chars.get_mut(cc as usize) {
                // Control characters are one byte; 255 (_POSIX_VDISABLE on
                // the wire) and larger values disable the character.
                *slot = u8::try_from(value).unwrap_or(0);
            }
        } else if let Some(flag) = input_flag(op) {
            t.input_flags.set(flag, on);
        } else if let Some(flag) = local_flag(op) {
            t.local_flags.set(flag, on);
        } else if let Some(flag) = output_flag(op) {
            t.output_flags.set(flag, on);
        } else {
            match op {
                Pty::CS7 if on => {
                    t.control_flags.remove(ControlFlags::CSIZE);
                    t.control_flags.insert(ControlFlags::CS7);
                }
                Pty::CS8 if on => {
                    t.control_flags.remove(ControlFlags::CSIZE);
                    t.control_flags.insert(ControlFlags::CS8);
                }
                Pty::PARENB => t.control_flags.set(ControlFlags::PARENB, on),
                Pty::PARODD => t.control_flags.set(ControlFlags::PARODD, on),
                _ => {}
            }
        }
    }
}

fn control_char(op: Pty) -> Option<Cc> {
    Some(match op {
        Pty::VINTR => Cc::VINTR,
        Pty::VQUIT => Cc::VQUIT,
        Pty::VERASE => Cc::VERASE,
        Pty::VKILL => Cc::VKILL,
        Pty::VEOF => Cc::VEOF,
        Pty::VEOL => Cc::VEOL,
        Pty::VEOL2 => Cc::VEOL2,
        Pty::VSTART => Cc::VSTART,
        Pty::VSTOP => Cc::VSTOP,
        Pty::VSUSP => Cc::VSUSP,
        Pty::VREPRINT => Cc::VREPRINT,
        Pty::VWERASE => Cc::VWERASE,
        Pty::VLNEXT => Cc::VLNEXT,
        Pty::VDISCARD => Cc::VDISCARD,
        _ => return None,
    })
}

fn input_flag(op: Pty) -> Option<InputFlags> {
    Some(match op {
        Pty::IGNPAR => InputFlags::IGNPAR,
        Pty::PARMRK => InputFlags::PARMRK,
        Pty::INPCK => InputFlags::INPCK,
        Pty::ISTRIP => InputFlags::ISTRIP,
        Pty::INLCR => InputFlags::INLCR,
        Pty::IGNCR => InputFlags::IGNCR,
        Pty::ICRNL => InputFlags::ICRNL,
        Pty::IUCLC => InputFlags::IUCLC,
        Pty::IXON => InputFlags::IXON,
        Pty::IXANY => InputFlags::IXANY,
        Pty::IXOFF => InputFlags::IXOFF,
        Pty::IMAXBEL => InputFlags::IMAXBEL,
        Pty::IUTF8 => InputFlags::IUTF8,
        _ => return None,
    })
}

fn local_flag(op: Pty) -> Option<LocalFlags> {
    Some(match op {
        Pty::ISIG => LocalFlags::ISIG,
        Pty::ICANON => LocalFlags::ICANON,
        Pty::XCASE => LocalFlags::XCASE,
        Pty::ECHO => LocalFlags::ECHO,
        Pty::ECHOE => LocalFlags::ECHOE,
        Pty::ECHOK => LocalFlags::ECHOK,
        Pty::ECHONL => LocalFlags::ECHONL,
        Pty::NOFLSH => LocalFlags::NOFLSH,
        Pty::TOSTOP => LocalFlags::TOSTOP,
        Pty::IEXTEN => LocalFlags::IEXTEN,
        Pty::ECHOCTL => LocalFlags::ECHOCTL,
        Pty::ECHOKE => LocalFlags::ECHOKE,
        Pty::PENDIN => LocalFlags::PENDIN,
        _ => return None,
    })
}

fn output_flag(op: Pty) -> Option<OutputFlags> {
    Some(match op {
        Pty::OPOST => OutputFlags::OPOST,
        Pty::OLCUC => OutputFlags::OLCUC,
        Pty::ONLCR => OutputFlags::ONLCR,
        Pty::OCRNL => OutputFlags::OCRNL,
        Pty::ONOCR => OutputFlags::ONOCR,
        Pty::ONLRET => OutputFlags::ONLRET,
        _ => return None,
    })
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
    fn absurd_sizes_are_clamped_and_zero_means_default() {
        let s = WindowSize::clamp(u32::MAX, 0, u32::MAX, 7);
        assert_eq!(
            s,
            WindowSize {
                cols: 4096,
                rows: 24,
                px_w: u16::MAX,
                px_h: 7
            }
        );
        assert_eq!(WindowSize::clamp(0, 0, 0, 0).cols, 80);
    }

    #[tokio::test]
    async fn a_pty_carries_modes_size_and_data() {
        let req = PtyRequest {
            term: "xterm".into(),
            size: WindowSize::clamp(100, 30, 0, 0),
            modes: vec![
                (Pty::ECHO, 0),
                (Pty::VINTR, 3),
                (Pty::CS8, 1),
                (Pty::TTY_OP_ISPEED, 38400),
            ],
        };
        let pair = open(&req, None).unwrap();
        assert!(pair.tty_name.starts_with("/dev/pts/"), "{}", pair.tty_name);
        let t = tcgetattr(&pair.slave).unwrap();
        assert!(!t.local_flags.contains(LocalFlags::ECHO));
        assert_eq!(t.control_chars[Cc::VINTR as usize], 3);
        // Input written to the master comes out of the slave.
        pair.master.write_all(b"hi\n").await.unwrap();
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&pair.slave, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi\n");
        // Closing the slave reads as end of file on the master.
        drop(pair.slave);
        let n = pair.master.read(&mut buf).await.unwrap();
        assert_eq!(n, 0);
    }
}
