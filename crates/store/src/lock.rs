//! One process per data directory: an exclusive lock on `DIR/keygate.lock`.
//!
//! Two daemons on one SQLite file would each believe they own the single
//! writer and the revision counter; the lock makes the second one refuse to
//! start with a message naming the holder's PID.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::StoreError;

/// Name of the lock file inside the data directory.
const LOCK_FILE: &str = "keygate.lock";

/// An exclusive lock on a data directory, held until dropped (the OS
/// releases it if the process dies, so a crash never leaves it stale).
#[derive(Debug)]
pub struct DataDirLock {
    /// The locked file; closing it releases the lock.
    _file: File,
    /// The locked data directory.
    dir: PathBuf,
}

impl DataDirLock {
    /// Lock `data_dir` (creating it if missing) and write our PID into the
    /// lock file. Fails with [`StoreError::DataDirInUse`] if any other
    /// holder exists — another process, or another handle in this one.
    pub fn acquire(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            action: "create data dir",
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(LOCK_FILE);
        // No truncate on open: the current holder's PID must stay readable
        // until we actually own the lock.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| StoreError::Io {
                action: "open lock file",
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::DataDirInUse {
                    dir: data_dir.to_owned(),
                    pid: holder_pid(&mut file),
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(StoreError::Io {
                    action: "lock",
                    path,
                    source,
                });
            }
        }
        let write_pid = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{}", std::process::id())?;
            file.sync_all()
        };
        write_pid(&mut file).map_err(|source| StoreError::Io {
            action: "write lock file",
            path,
            source,
        })?;
        Ok(Self {
            _file: file,
            dir: data_dir.to_owned(),
        })
    }

    /// The locked data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The PID the holder wrote, or "unknown" (it may be between lock and write).
fn holder_pid(file: &mut File) -> String {
    let mut text = String::new();
    let read = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| Read::by_ref(file).take(64).read_to_string(&mut text));
    match read.ok().and_then(|_| text.trim().parse::<u32>().ok()) {
        Some(pid) => pid.to_string(),
        None => "unknown".to_owned(),
    }
}
