#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! `kgctl sessions ls` shows a live session within moments, and
//! `kgctl sessions terminate` ends exactly that session with its message.

use std::process::Stdio;
use std::time::Duration;

use keygate_e2e::{Cluster, KillOnDrop, wait_until};

#[test]
fn sessions_are_listed_and_terminated() {
    let c = Cluster::start().unwrap();
    let login = c.login().to_owned();
    let err_file = c.tmp.path().join("session-stderr");
    let mut child = KillOnDrop(
        c.kg()
            .args(["ssh", &format!("{login}@n1"), "sleep 45"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_file).unwrap())
            .spawn()
            .unwrap(),
    );
    // The node reports a session as soon as it starts.
    let id = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let list = c.kgctl_ok(&["sessions", "ls", "--format", "json"]).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&list.stdout).ok()?;
        v.as_array()?
            .iter()
            .find(|s| s["login"] == login.as_str() && s["node"] == "n1" && s["user"] == "admin")
            .and_then(|s| s["id"].as_str().map(str::to_owned))
    })
    .expect("the live session never appeared in kgctl sessions ls");

    c.kgctl_ok(&[
        "sessions",
        "terminate",
        &id,
        "--message",
        "maintenance window",
    ])
    .unwrap();
    let status = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        child.0.try_wait().ok().flatten()
    })
    .expect("the session was not terminated within 5 s");
    assert_eq!(status.code(), Some(255));
    let err = std::fs::read_to_string(&err_file).unwrap();
    assert!(err.contains("maintenance window"), "{err}");

    // Other sessions are unaffected: a new one works.
    let o = c.ssh(&[&format!("{login}@n1"), "echo still-open"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("still-open"),
        "{o:?}"
    );
}
