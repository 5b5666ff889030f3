#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The audit log end to end. Signed checkpoints: a signed export verifies offline
//! with only the audit CA key and names tampering, truncation and forged
//! signatures; a log cut short and continued on the host is caught by the
//! stored checkpoints, and — even after the host's checkpoint table is
//! wiped too — by checkpoints kept elsewhere. `kgctl audit query` reads
//! the views and cannot write. `keygate start` exports to a real rsyslog.

use std::process::Command;

use keygate_e2e::{Cluster, run, text};

fn sqlite(db: &std::path::Path, sql: &str) {
    let o = run(Command::new("sqlite3").arg(db).arg(sql), "");
    assert!(o.status.success(), "sqlite3 {sql}: {}", text(&o));
}

#[test]
fn signed_exports_and_checkpoints_catch_tampering() {
    let mut c = Cluster::start().unwrap();
    for i in 0..5 {
        c.kgctl_ok(&["users", "add", &format!("user{i}"), "--roles", "access"])
            .unwrap();
    }
    // The audit CA key, as an auditor would keep it.
    let ca = c.tmp.path().join("audit-ca.pub");
    std::fs::write(
        &ca,
        c.kgctl_ok(&["auth", "export", "--type", "audit"])
            .unwrap()
            .stdout,
    )
    .unwrap();

    // A signed export verifies offline.
    let bundle = c.tmp.path().join("bundle.jsonl");
    std::fs::write(
        &bundle,
        c.kgctl_ok(&["audit", "export", "--signed"]).unwrap().stdout,
    )
    .unwrap();
    let verify_bundle = |path: &std::path::Path| {
        run(
            Command::new(keygate_e2e::bin("kgctl"))
                .args(["audit", "verify", "--bundle"])
                .arg(path)
                .arg("--ca-key")
                .arg(&ca),
            "",
        )
    };
    let o = verify_bundle(&bundle);
    assert!(o.status.success(), "untouched bundle: {}", text(&o));
    assert!(text(&o).contains("Hash chain verified"), "{}", text(&o));

    // Edited, truncated, and forged bundles are refused with the reason.
    let original = std::fs::read_to_string(&bundle).unwrap();
    let edited = original.replacen("user2", "userX", 1);
    assert_ne!(edited, original);
    let p = c.tmp.path().join("edited.jsonl");
    std::fs::write(&p, &edited).unwrap();
    let o = verify_bundle(&p);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("BROKEN"), "{}", text(&o));
    let lines: Vec<&str> = original.lines().collect();
    let last_record = lines
        .iter()
        .rposition(|l| l.contains("\"kind\":\"record\""))
        .unwrap();
    let cut: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != last_record)
        .map(|(_, l)| *l)
        .collect();
    std::fs::write(&p, cut.join("\n")).unwrap();
    let o = verify_bundle(&p);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("TRUNCATED"), "{}", text(&o));
    let other_ca = c.tmp.path().join("other-ca");
    keygate_e2e::keygen(&other_ca).unwrap();
    let o = run(
        Command::new(keygate_e2e::bin("kgctl"))
            .args(["audit", "verify", "--bundle"])
            .arg(&bundle)
            .arg("--ca-key")
            .arg(format!("{}.pub", other_ca.display())),
        "",
    );
    assert_eq!(o.status.code(), Some(1), "another CA's key: {}", text(&o));
    assert!(text(&o).contains("BAD SIGNATURE"), "{}", text(&o));

    // Checkpoints kept off the host (a SIEM, WORM storage).
    let o = c.kgctl_ok(&["audit", "checkpoints", "--now"]).unwrap();
    let kept = c.tmp.path().join("kept-checkpoints.jsonl");
    std::fs::write(&kept, &o.stdout).unwrap();
    let o = c.kgctl_ok(&["audit", "verify"]).unwrap();
    assert!(text(&o).contains("checkpoints match"), "{}", text(&o));

    // A host root cuts the log short and the daemon writes on from there.
    c.stop_daemon().unwrap();
    let db = c.data.join("audit.db");
    sqlite(
        &db,
        "DELETE FROM events WHERE seq > (SELECT max(seq) - 4 FROM events)",
    );
    c.start_daemon().unwrap();
    let o = run(c.kgctl().args(["audit", "verify"]), "");
    assert_eq!(
        o.status.code(),
        Some(1),
        "a cut log must not verify: {}",
        text(&o)
    );
    assert!(
        text(&o).contains("DIVERGED") || text(&o).contains("TRUNCATED"),
        "{}",
        text(&o)
    );

    // ... and wipes the stored checkpoints too: the kept ones still catch it.
    c.stop_daemon().unwrap();
    sqlite(&db, "DELETE FROM checkpoints");
    c.start_daemon().unwrap();
    let o = run(
        c.kgctl()
            .args(["audit", "verify", "--checkpoints"])
            .arg(&kept),
        "",
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("DIVERGED") || text(&o).contains("TRUNCATED"),
        "{}",
        text(&o)
    );
}

#[test]
fn audit_query_reads_views_and_cannot_write() {
    let c = Cluster::start().unwrap();
    let login = c.login().to_owned();
    for _ in 0..2 {
        let o = c.ssh(&[&format!("{login}@n1"), "true"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    // Sessions are reported by the node asynchronously: poll.
    let got = keygate_e2e::wait_until(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(100),
        || {
            let o = c
                .kgctl_ok(&[
                    "audit",
                    "query",
                    "SELECT user, login, count(*) AS n FROM session_start GROUP BY user, login",
                    "--format",
                    "json",
                ])
                .ok()?;
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
            let rows = v["rows"].as_array()?.clone();
            rows.iter()
                .any(|r| r[0] == "admin" && r[1] == login.as_str() && r[2].as_i64() >= Some(2))
                .then_some(v)
        },
    );
    assert!(got.is_some(), "session_start rows never showed up");
    let o = run(c.kgctl().args(["audit", "query", "DELETE FROM events"]), "");
    assert!(!o.status.success(), "a write must be refused: {}", text(&o));
    assert!(text(&o).contains("refused"), "{}", text(&o));
    let o = c.kgctl_ok(&["audit", "verify"]).unwrap();
    assert!(text(&o).contains("Hash chain verified"), "{}", text(&o));
}

#[test]
fn keygate_start_exports_the_audit_log_to_real_rsyslog() {
    let syslog = keygate_testkit::rsyslog::Rsyslog::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keygate.yaml");
    std::fs::write(
        &config,
        format!(
            "audit:\n  exporters:\n    - {{type: syslog, name: siem, addr: '{}'}}\n",
            syslog.addr()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let daemon =
        keygate_e2e::Daemon::start(&data, &["--config", config.to_str().unwrap()]).unwrap();
    // Start-up already writes events (CA creation, the admin); the first
    // one, seq 1, must arrive with its structured data.
    let lines = syslog
        .wait_for_lines(1, std::time::Duration::from_secs(15))
        .unwrap();
    assert!(
        lines.iter().any(|l| l.contains("seq=\"1\"")),
        "rsyslog received: {lines:?}"
    );
    // The cursor is persisted beside the data.
    let cursor = data.join("audit-export").join("siem.cursor");
    let ok = keygate_e2e::wait_until(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(100),
        || cursor.exists().then_some(()),
    );
    assert!(ok.is_some(), "no cursor file at {}", cursor.display());
    // kgctl reports the exporter and, once it caught up, no lag.
    let caught_up = keygate_e2e::wait_until(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(100),
        || {
            let o = run(
                Command::new(keygate_e2e::bin("kgctl"))
                    .arg("--data-dir")
                    .arg(&data)
                    .args(["audit", "exporters", "--format", "json"]),
                "",
            );
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
            let e = v.as_array()?.first()?.clone();
            (e["name"] == "siem" && e["kind"] == "syslog" && e["lag_events"] == 0).then_some(e)
        },
    );
    assert!(
        caught_up.is_some(),
        "kgctl audit exporters never showed siem caught up"
    );
    drop(daemon);
}
