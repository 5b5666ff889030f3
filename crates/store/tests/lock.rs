//! `DataDirLock`: one holder per data directory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use keygate_store::{DataDirLock, StoreError};

#[test]
fn second_acquire_fails_naming_dir_and_pid_and_drop_releases() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = DataDirLock::acquire(&data).unwrap();
    assert_eq!(first.dir(), data);
    let written = std::fs::read_to_string(data.join("keygate.lock")).unwrap();
    assert_eq!(written.trim(), std::process::id().to_string());

    let err = DataDirLock::acquire(&data).unwrap_err();
    assert!(matches!(err, StoreError::DataDirInUse { .. }));
    let expected = format!(
        "data dir {} is in use by another keygate process (pid {}); stop it or use --data-dir",
        data.display(),
        std::process::id()
    );
    assert_eq!(err.to_string(), expected);

    drop(first);
    let again = DataDirLock::acquire(&data).unwrap();
    drop(again);
}

#[test]
fn acquire_fails_when_the_dir_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let err = DataDirLock::acquire(&file.join("data")).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
}
