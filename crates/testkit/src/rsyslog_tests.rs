#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
use std::io::Write as _;

use super::*;

fn send(port: u16, frames: &[&str]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for m in frames {
        write!(s, "{} {m}", m.len()).unwrap();
    }
}

#[test]
fn config_listens_on_loopback_and_writes_only_tcp_messages() {
    let text = render_config(5514, Path::new("/w"), Path::new("/o"), None);
    for want in [
        "port=\"5514\" address=\"127.0.0.1\"",
        "workDirectory=\"/w\"",
        "if $inputname == \"imtcp\"",
        "file=\"/o\"",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    assert!(!text.contains("ossl"), "{text}");
    let tls = RsyslogTls {
        cert_file: "/c.pem".into(),
        key_file: "/k.pem".into(),
        ca_file: "/ca.pem".into(),
    };
    let text = render_config(5514, Path::new("/w"), Path::new("/o"), Some(&tls));
    for want in [
        "DefaultNetstreamDriverCertFile=\"/c.pem\"",
        "DefaultNetstreamDriverKeyFile=\"/k.pem\"",
        "DefaultNetstreamDriverCAFile=\"/ca.pem\"",
        "StreamDriver.Mode=\"1\"",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
}

#[test]
fn receives_octet_counted_messages_and_restarts_on_the_same_port() {
    // The default output file goes with the launcher's directory, so a
    // file that must outlive a restart is the test's own.
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("received.log");
    let rs = Rsyslog::start_with(RsyslogConfig {
        output: Some(output.clone()),
        ..RsyslogConfig::default()
    })
    .unwrap();
    let port = rs.port();
    send(
        port,
        &[
            r#"<38>1 2025-05-01T09:00:00Z h app - m1 [x@1 a="q \"x\" \] y"] hello"#,
            "<38>1 2025-05-01T09:00:01Z h app - m2 - world",
        ],
    );
    let lines = rs.wait_for_lines(2, Duration::from_secs(10)).unwrap();
    assert_eq!(lines[0], r#"m1|[x@1 a="q \"x\" \] y"]|hello"#);
    assert_eq!(lines[1], "m2|-|world");
    assert_eq!(rs.output(), output);
    rs.stop().unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());

    let rs = Rsyslog::start_with(RsyslogConfig {
        port: Some(port),
        output: Some(output.clone()),
        ..RsyslogConfig::default()
    })
    .unwrap();
    send(port, &["<38>1 2025-05-01T09:00:02Z h app - m3 - again"]);
    let lines = wait_for_lines(&output, 3, Duration::from_secs(10)).unwrap();
    assert_eq!(lines[2], "m3|-|again", "{}", rs.log());
}

#[test]
fn a_taken_fixed_port_is_an_error_with_the_log() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = Rsyslog::start_with(RsyslogConfig {
        port: Some(port),
        ..RsyslogConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains(BIND_FAILED), "{err}");
}
