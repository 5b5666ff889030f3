//! The persisted cursor: how far an exporter got, kept in
//! `<state_dir>/<name>.cursor` and replaced atomically (temp file, fsync,
//! rename, fsync of the directory), so a crash leaves either the old or
//! the new cursor, never a torn one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ExportError;

/// Format version written into every cursor file.
const VERSION: u32 = 1;
/// Cursor files are tiny; anything larger is not ours.
const MAX_CURSOR_FILE: u64 = 4096;

/// What an exporter has delivered (and had acknowledged, where the
/// protocol acknowledges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// Last event delivered (0: none yet).
    pub seq: u64,
    /// Seq of the last checkpoint delivered (0: none yet).
    pub checkpoint_seq: u64,
}

impl Cursor {
    /// A cursor at the given positions.
    pub fn at(seq: u64, checkpoint_seq: u64) -> Self {
        Self {
            version: VERSION,
            seq,
            checkpoint_seq,
        }
    }
}

/// The cursor file of exporter `name` in `state_dir`.
pub fn path_of(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(format!("{name}.cursor"))
}

/// Reads a cursor; a missing file is the start of the log.
pub fn load(path: &Path) -> Result<Cursor, ExportError> {
    let bad = |reason: String| ExportError::Cursor {
        path: path.to_owned(),
        reason,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Cursor::at(0, 0)),
        Err(e) => return Err(bad(e.to_string())),
    };
    if meta.len() > MAX_CURSOR_FILE {
        return Err(bad(format!("{} bytes is too large", meta.len())));
    }
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let cursor: Cursor = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if cursor.version != VERSION {
        return Err(bad(format!(
            "format version {} is not {VERSION}",
            cursor.version
        )));
    }
    Ok(cursor)
}

/// Replaces the cursor file atomically and durably. Blocking: call it
/// from `spawn_blocking`.
pub fn store(path: &Path, cursor: &Cursor) -> Result<(), ExportError> {
    let err = |source| ExportError::State {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let body = serde_json::to_vec(cursor).map_err(|e| err(std::io::Error::other(e)))?;
    {
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&body).map_err(err)?;
        f.write_all(b"\n").map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    // The rename is durable only once the directory entry is.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err)?;
    Ok(())
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
    fn missing_is_the_start_and_stored_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_of(dir.path(), "siem");
        assert_eq!(p.file_name().unwrap(), "siem.cursor");
        assert_eq!(load(&p).unwrap(), Cursor::at(0, 0));
        store(&p, &Cursor::at(42, 40)).unwrap();
        assert_eq!(load(&p).unwrap(), Cursor::at(42, 40));
        store(&p, &Cursor::at(43, 40)).unwrap();
        assert_eq!(load(&p).unwrap(), Cursor::at(43, 40));
        // No temp file left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("siem.cursor")]);
    }

    #[test]
    fn corrupt_files_are_errors_that_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_of(dir.path(), "x");
        for bad in [
            &b"garbage"[..],
            br#"{"version":1,"seq":-1,"checkpoint_seq":0}"#,
            br#"{"version":2,"seq":1,"checkpoint_seq":0}"#,
            br#"{"version":1,"seq":1,"checkpoint_seq":0,"extra":1}"#,
            br#"{"version":1,"seq":1}"#,
            b"",
        ] {
            std::fs::write(&p, bad).unwrap();
            let err = load(&p).unwrap_err();
            assert!(matches!(err, ExportError::Cursor { .. }), "{err}");
            assert!(err.to_string().contains("remove it"), "{err}");
        }
        std::fs::write(&p, vec![b' '; 5000]).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("too large"));
    }
}
