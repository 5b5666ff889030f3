#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
use super::*;

fn yaml(text: &str) -> Result<Vec<ExporterConfig>, String> {
    serde_saphyr::from_str(text).map_err(|e| e.to_string())
}

fn syslog(name: &str, addr: &str) -> ExporterConfig {
    ExporterConfig::Syslog(SyslogConfig {
        name: name.into(),
        addr: addr.into(),
        app_name: "keygate".into(),
        hostname: None,
        tls: None,
    })
}

fn webhook(url: &str, batch: usize) -> ExporterConfig {
    ExporterConfig::Webhook(WebhookConfig {
        name: "hook".into(),
        url: url.into(),
        secret_file: "/etc/keygate/hook.key".into(),
        ca_file: None,
        batch,
    })
}

fn reason(c: &ExporterConfig) -> String {
    let err = c.validate().unwrap_err();
    assert!(matches!(err, ExportError::Config { .. }), "{err}");
    err.to_string()
}

#[test]
fn yaml_with_every_kind_and_defaults() {
    let cfgs = yaml(
        "- type: syslog\n  name: siem\n  addr: siem.example.com:6514\n\
         - type: webhook\n  name: hook\n  url: https://hooks.example.com/kg\n  secret_file: /k\n\
         - type: stdout\n  name: out\n",
    )
    .unwrap();
    assert_eq!(cfgs.len(), 3);
    match &cfgs[0] {
        ExporterConfig::Syslog(c) => {
            assert_eq!(c.app_name, "keygate");
            assert_eq!(c.hostname, None);
        }
        other => panic!("{other:?}"),
    }
    match &cfgs[1] {
        ExporterConfig::Webhook(c) => {
            assert_eq!(c.batch, DEFAULT_WEBHOOK_BATCH);
            assert_eq!(c.ca_file, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(cfgs[2].kind(), ExporterKind::Stdout);
    assert_eq!(cfgs[2].name(), "out");
    validate_all(&cfgs).unwrap();
    // Round trip (the lead's config dump).
    let back: Vec<ExporterConfig> =
        serde_json::from_str(&serde_json::to_string(&cfgs).unwrap()).unwrap();
    assert_eq!(back, cfgs);
}

#[test]
fn yaml_refuses_unknown_kinds_fields_and_missing_fields() {
    for (text, want) in [
        ("- type: kafka\n  name: k\n", "kafka"),
        ("- name: k\n  addr: h:1\n", "type"),
        (
            "- type: syslog\n  name: s\n  addr: h:1\n  port: 5\n",
            "port",
        ),
        ("- type: stdout\n  name: o\n  extra: 1\n", "extra"),
        ("- type: syslog\n  name: s\n", "addr"),
        (
            "- type: webhook\n  name: w\n  url: https://x\n",
            "secret_file",
        ),
        (
            "- type: webhook\n  name: w\n  url: https://x\n  secret_file: /k\n  batch: -1\n",
            "",
        ),
    ] {
        let err = yaml(text).unwrap_err();
        assert!(err.contains(want), "{text:?}: {err}");
    }
}

#[test]
fn names_must_be_file_safe_and_unique() {
    for bad in ["", "Siem", "-x", "a/b", "..", "a b", "x.y", &"a".repeat(65)] {
        let err = reason(&syslog(bad, "h:1"));
        assert!(err.contains("lowercase"), "{bad:?}: {err}");
    }
    for good in ["a", "siem-1", "s_2", "9", &"a".repeat(64)] {
        syslog(good, "h:1").validate().unwrap();
    }
    let err = validate_all(&[syslog("a", "h:1"), syslog("b", "h:2"), syslog("a", "h:3")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unique"), "{err}");
}

#[test]
fn syslog_addresses_and_header_fields() {
    for good in ["h:514", "10.0.0.1:6514", "[::1]:514", "siem.example.com:1"] {
        syslog("s", good).validate().unwrap();
    }
    for (bad, want) in [
        ("h", "no port"),
        ("h:", "no valid port"),
        ("h:0", "port 0"),
        ("h:65536", "no valid port"),
        (":514", "no valid host"),
        ("::1:514", "without brackets"),
        ("[::1:514", "unclosed"),
        ("a b:514", "no valid host"),
    ] {
        let err = reason(&syslog("s", bad));
        assert!(err.contains(want), "{bad:?}: {err}");
        assert!(err.contains("host:port"), "{err}");
    }
    let mut c = SyslogConfig {
        name: "s".into(),
        addr: "h:1".into(),
        app_name: "key gate".into(),
        hostname: None,
        tls: None,
    };
    assert!(reason(&ExporterConfig::Syslog(c.clone())).contains("app_name"));
    c.app_name = "a".repeat(49);
    assert!(reason(&ExporterConfig::Syslog(c.clone())).contains("1..=48"));
    c.app_name = "keygate".into();
    c.hostname = Some(String::new());
    assert!(reason(&ExporterConfig::Syslog(c.clone())).contains("hostname"));
    c.hostname = Some("auth-1.example.com".into());
    ExporterConfig::Syslog(c.clone()).validate().unwrap();
    c.tls = Some(SyslogTls {
        ca_file: PathBuf::new(),
        server_name: None,
    });
    assert!(reason(&ExporterConfig::Syslog(c.clone())).contains("tls.ca_file"));
    c.tls = Some(SyslogTls {
        ca_file: "/ca.pem".into(),
        server_name: Some("no spaces allowed".into()),
    });
    assert!(reason(&ExporterConfig::Syslog(c.clone())).contains("TLS server name"));
    c.tls = Some(SyslogTls {
        ca_file: "/ca.pem".into(),
        server_name: None,
    });
    ExporterConfig::Syslog(c).validate().unwrap();
}

#[test]
fn yaml_syslog_tls() {
    let cfgs = yaml(
        "- type: syslog\n  name: siem\n  addr: siem.example.com:6514\n  tls:\n    ca_file: /etc/ssl/certs/ca-certificates.crt\n",
    )
    .unwrap();
    match &cfgs[0] {
        ExporterConfig::Syslog(c) => {
            let tls = c.tls.as_ref().unwrap();
            assert_eq!(
                tls.ca_file,
                PathBuf::from("/etc/ssl/certs/ca-certificates.crt")
            );
            assert_eq!(tls.server_name, None);
        }
        other => panic!("{other:?}"),
    }
    let err = yaml(
        "- type: syslog\n  name: siem\n  addr: h:1\n  tls:\n    ca_file: /c\n    verify: false\n",
    )
    .unwrap_err();
    assert!(err.contains("verify"), "{err}");
}

#[test]
fn webhook_urls_and_batches() {
    for good in [
        "https://hooks.example.com/kg",
        "http://127.0.0.1:8080/x",
        "http://localhost/x",
        "http://[::1]:9/x",
    ] {
        webhook(good, 100).validate().unwrap();
    }
    for (bad, want) in [
        ("http://hooks.example.com/kg", "plain http"),
        ("http://10.0.0.1/kg", "plain http"),
        ("ftp://example.com/", "scheme"),
        ("not a url", "does not parse"),
        ("https://", "does not parse"),
    ] {
        let err = reason(&webhook(bad, 100));
        assert!(err.contains(want), "{bad:?}: {err}");
    }
    for bad in [0, MAX_BATCH + 1] {
        assert!(reason(&webhook("https://h/", bad)).contains("batch"));
    }
    webhook("https://h/", MAX_BATCH).validate().unwrap();
    let mut c = WebhookConfig {
        name: "w".into(),
        url: "https://h/".into(),
        secret_file: PathBuf::new(),
        ca_file: None,
        batch: 1,
    };
    assert!(reason(&ExporterConfig::Webhook(c.clone())).contains("secret_file"));
    c.secret_file = "/k".into();
    ExporterConfig::Webhook(c).validate().unwrap();
}
