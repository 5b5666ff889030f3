//! Crash test: every write the SQLite backend acknowledged survives the
//! writer being killed with SIGKILL.
//!
//! The test binary re-runs itself as the writer (`crash_writer_child`,
//! which does nothing unless `KEYGATE_STORE_CRASH_DB` is set), reads the
//! keys it acknowledges, kills it mid-stream and checks the file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use keygate_clock::{OffsetDateTime, TestClock};
use keygate_store::{Backend, SqliteBackend};

const DB_ENV: &str = "KEYGATE_STORE_CRASH_DB";
/// How many acknowledged writes the parent waits for before killing.
const ACKED_BEFORE_KILL: usize = 300;
/// The child stops by itself after this many, in case the parent died.
const CHILD_LIMIT: usize = 100_000;

fn clock() -> TestClock {
    TestClock::at(OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap())
}

fn value_for(i: usize) -> Vec<u8> {
    format!("value-{i}-{}", "x".repeat(i % 97)).into_bytes()
}

/// The writer. A no-op in a normal test run.
#[test]
fn crash_writer_child() {
    let Some(path) = std::env::var_os(DB_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let b = SqliteBackend::open(Path::new(&path), clock().shared())
            .await
            .unwrap();
        let mut out = std::io::stdout().lock();
        for i in 0..CHILD_LIMIT {
            let key = format!("crash/{i:06}");
            b.put(&key, value_for(i), None).await.unwrap();
            // Only now is the write acknowledged.
            writeln!(out, "ACK {i} {key}").unwrap();
            out.flush().unwrap();
        }
    });
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn acknowledged_puts_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();

    let acked = tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let Some(rest) = line.strip_prefix("ACK ") else {
                continue;
            };
            let (i, key) = rest.split_once(' ').unwrap();
            acked.push((i.parse::<usize>().unwrap(), key.to_owned()));
            if acked.len() == ACKED_BEFORE_KILL {
                break;
            }
        }
        acked
    })
    .await
    .unwrap();
    assert_eq!(acked.len(), ACKED_BEFORE_KILL, "the writer stopped early");
    // Child::kill sends SIGKILL: no destructor, no clean close, no checkpoint.
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success());

    let b = SqliteBackend::open(&db, clock().shared()).await.unwrap();
    for (i, key) in &acked {
        let kv = b
            .get(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {key} lost"));
        assert_eq!(kv.value, value_for(*i), "{key}");
        assert_eq!(kv.mod_revision, i64::try_from(*i).unwrap() + 1, "{key}");
    }
    let revision = b.current_revision().await.unwrap();
    assert!(revision >= i64::try_from(ACKED_BEFORE_KILL).unwrap());
    // The store is usable and continues the revision sequence.
    assert_eq!(
        b.put("after", b"ok".to_vec(), None).await.unwrap(),
        revision + 1
    );
}
