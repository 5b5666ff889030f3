//! The sftp subsystem: OpenSSH's own `sftp-server`, run as the login user
//! (modern `scp` and `sftp` both speak it).

use std::path::{Path, PathBuf};

use crate::error::{Result, SshdError};

/// Where distributions install `sftp-server`, in the order tried.
pub(crate) const SFTP_SERVER_PATHS: [&str; 3] = [
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/lib/sftp-server",
];

/// The first `sftp-server` found among `candidates`.
pub(crate) fn find_sftp_server(candidates: &[&str]) -> Result<PathBuf> {
    candidates
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| SshdError::NoSftpServer {
            looked: candidates.iter().map(PathBuf::from).collect(),
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
    fn a_missing_sftp_server_is_a_clear_error() {
        let err = find_sftp_server(&["/nonexistent/sftp-server", "/"]).unwrap_err();
        assert!(
            err.to_string().contains("install openssh-sftp-server"),
            "{err}"
        );
    }

    #[test]
    fn the_first_existing_binary_wins() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("sftp-server");
        std::fs::write(&bin, b"").unwrap();
        let found = find_sftp_server(&["/nonexistent/x", bin.to_str().unwrap()]).unwrap();
        assert_eq!(found, bin);
    }
}
