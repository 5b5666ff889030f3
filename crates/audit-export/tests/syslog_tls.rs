//! The syslog exporter over TLS to a real rsyslogd (OpenSSL driver): the
//! receiver's certificate must chain to the configured CA and carry the
//! expected name; otherwise nothing is sent and the exporter retries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::path::{Path, PathBuf};

use keygate_audit_export::{ExporterConfig, SyslogConfig, SyslogTls};
use keygate_testkit::rsyslog::{Rsyslog, RsyslogConfig, RsyslogTls};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::*;

/// A fresh CA (its PEM written to `dir/<name>.pem`) that issued a server
/// certificate for `localhost`; returns the CA file and rsyslog's TLS
/// files.
fn pki(dir: &Path, name: &str) -> (PathBuf, RsyslogTls) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let write = |file: &str, text: String| {
        let p = dir.join(format!("{name}-{file}"));
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca_file = write("ca.pem", ca_cert.pem());
    let tls = RsyslogTls {
        cert_file: write("cert.pem", cert.pem()),
        key_file: write("key.pem", key.serialize_pem()),
        ca_file: ca_file.clone(),
    };
    (ca_file, tls)
}

fn syslog_tls(name: &str, addr: String, ca_file: PathBuf, server: &str) -> ExporterConfig {
    ExporterConfig::Syslog(SyslogConfig {
        name: name.into(),
        addr,
        app_name: "keygate".into(),
        hostname: None,
        tls: Some(SyslogTls {
            ca_file,
            server_name: Some(server.into()),
        }),
    })
}

#[tokio::test]
async fn events_arrive_over_tls_and_untrusted_receivers_get_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, server_tls) = pki(dir.path(), "good");
    let (other_ca, _) = pki(dir.path(), "other");
    let rs = Rsyslog::start_with(RsyslogConfig {
        tls: Some(server_tls),
        ..RsyslogConfig::default()
    })
    .unwrap();
    let (log, clock) = open_log(dir.path()).await;
    emit(&log, 1, 20).await;

    // Another CA, or the right CA but the wrong name: refused, retried.
    let run = start(
        &log,
        &clock,
        &dir.path().join("state"),
        vec![
            syslog_tls("wrong-ca", rs.addr(), other_ca, "localhost"),
            syslog_tls("wrong-name", rs.addr(), ca_file.clone(), "siem.example.com"),
        ],
    );
    for name in ["wrong-ca", "wrong-name"] {
        let s = run
            .wait_status(name, "TLS failures", |s| s.consecutive_failures >= 2)
            .await;
        let err = s.last_error.unwrap();
        assert!(err.to_lowercase().contains("certificate"), "{name}: {err}");
        assert_eq!(s.cursor, 0);
    }
    run.stop().await;
    assert!(rs.lines().is_empty(), "{:?}", rs.lines());

    let run = start(
        &log,
        &clock,
        &dir.path().join("state"),
        vec![syslog_tls("siem", rs.addr(), ca_file, "localhost")],
    );
    let got = received(rs.output(), 20).await;
    assert_exactly_once(&log, &got, 20).await;
    emit(&log, 21, 3).await;
    run.notify.notify_waiters();
    let got = received(rs.output(), 23).await;
    assert_exactly_once(&log, &got, 23).await;
    run.wait_status("siem", "cursor 23", |s| s.cursor == 23)
        .await;
    run.stop().await;
}
