//! The webhook exporter against a receiver written here: it checks the
//! HMAC signature exactly (constant time), fails on purpose, and records
//! what it accepted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use keygate_audit_export::{
    BATCH_HEADER, ExportError, ExportRunner, ExporterConfig, SIGNATURE_HEADER, WebhookConfig,
};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use support::*;

/// The receiver's key.
const SECRET: &[u8] = b"correct horse battery staple";

/// One accepted batch: its `X-Keygate-Batch` header, events and
/// checkpoints.
type Accepted = (String, Vec<serde_json::Value>, Vec<serde_json::Value>);

/// What the receiver saw.
#[derive(Default)]
struct Receiver {
    /// Requests to fail with 500 before accepting any.
    fail_next: AtomicUsize,
    /// Requests answered, by status.
    answers: Mutex<Vec<u16>>,
    /// Accepted batches: the batch header, events and checkpoints.
    accepted: Mutex<Vec<Accepted>>,
}

async fn handle(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let answer = judge(&rx, &headers, &body);
    rx.answers.lock().unwrap().push(answer.as_u16());
    answer
}

fn judge(rx: &Receiver, headers: &HeaderMap, body: &[u8]) -> StatusCode {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET).unwrap();
    mac.update(body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let got = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    if !bool::from(got.ct_eq(want.as_bytes())) {
        return StatusCode::UNAUTHORIZED;
    }
    if headers.get("content-type").unwrap() != "application/json" {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    if rx
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    let range = headers[BATCH_HEADER].to_str().unwrap().to_owned();
    rx.accepted.lock().unwrap().push((
        range,
        v["events"].as_array().unwrap().clone(),
        v["checkpoints"].as_array().unwrap().clone(),
    ));
    StatusCode::OK
}

fn router(rx: Arc<Receiver>) -> axum::Router {
    axum::Router::new()
        .route("/audit", axum::routing::post(handle))
        .with_state(rx)
}

/// Serves the receiver on a loopback port; returns its URL.
async fn serve(rx: Arc<Receiver>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(rx);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/audit")
}

/// Serves the receiver over TLS with a certificate for `localhost` from a
/// fresh CA; returns its URL and the CA certificate (PEM).
async fn serve_tls(rx: Arc<Receiver>) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
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
    let tls = keygate_tls::server_config(
        vec![cert.der().clone()],
        rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        keygate_tls::ClientAuth::None,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = router(rx);
    tokio::spawn(keygate_tls::serve_tls(
        listener,
        tls,
        app,
        tokio_util::sync::CancellationToken::new(),
    ));
    (format!("https://localhost:{port}/audit"), ca_cert.pem())
}

fn webhook(dir: &std::path::Path, url: String, secret: &[u8]) -> ExporterConfig {
    let secret_file = dir.join("hook.key");
    std::fs::write(&secret_file, [secret, b"\n"].concat()).unwrap();
    ExporterConfig::Webhook(WebhookConfig {
        name: "hook".into(),
        url,
        secret_file,
        ca_file: None,
        batch: 100,
    })
}

#[tokio::test]
async fn signed_batches_arrive_once_after_a_failure_with_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Arc::new(Receiver::default());
    rx.fail_next.store(1, Ordering::SeqCst);
    let url = serve(rx.clone()).await;
    let (log, clock) = open_log(dir.path()).await;
    emit(&log, 1, 250).await;
    let cp = checkpoint(&log, 150).await;
    let run = start(
        &log,
        &clock,
        &dir.path().join("state"),
        vec![webhook(dir.path(), url, SECRET)],
    );
    let s = run
        .wait_status("hook", "cursor 250", |s| s.cursor == 250)
        .await;
    assert_eq!(
        (s.lag_events, s.checkpoint_cursor, s.last_error),
        (0, 150, None)
    );

    // The failed first batch was sent again, then the rest, in order.
    assert_eq!(*rx.answers.lock().unwrap(), [500, 200, 200, 200]);
    let accepted = rx.accepted.lock().unwrap().clone();
    let ranges: Vec<&str> = accepted.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(ranges, ["1-100", "101-200", "201-250"]);
    let records = log.records(1, 1000).await.unwrap();
    let events: Vec<&serde_json::Value> = accepted.iter().flat_map(|a| &a.1).collect();
    assert_eq!(events.len(), 250);
    for (ev, rec) in events.iter().zip(&records) {
        let stored: serde_json::Value = serde_json::from_slice(&rec.bytes).unwrap();
        assert_eq!(**ev, stored);
    }
    // The checkpoint travels with the batch that completes it.
    let cps: Vec<(usize, &serde_json::Value)> = accepted
        .iter()
        .enumerate()
        .flat_map(|(i, a)| a.2.iter().map(move |c| (i, c)))
        .collect();
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].0, 1);
    assert_eq!(cps[0].1["kind"], "checkpoint");
    assert_eq!(cps[0].1["seq"], 150);
    assert_eq!(cps[0].1["hash"], cp.checkpoint.hash);
    assert_eq!(cps[0].1["signature"], cp.signature);

    // A later checkpoint alone: an empty event range after the cursor.
    checkpoint(&log, 250).await;
    run.notify.notify_waiters();
    run.wait_status("hook", "checkpoint 250", |s| s.checkpoint_cursor == 250)
        .await;
    let last = rx.accepted.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        (last.0.as_str(), last.1.len(), last.2.len()),
        ("251-250", 0, 1)
    );
    run.stop().await;
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_the_cursor_stays() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Arc::new(Receiver::default());
    let url = serve(rx.clone()).await;
    let (log, clock) = open_log(dir.path()).await;
    emit(&log, 1, 3).await;
    let state = dir.path().join("state");
    let run = start(
        &log,
        &clock,
        &state,
        vec![webhook(dir.path(), url, b"not the receiver's key")],
    );
    let s = run
        .wait_status("hook", "repeated refusals", |s| s.consecutive_failures >= 3)
        .await;
    let err = s.last_error.unwrap();
    assert!(err.contains("HTTP 401"), "{err}");
    assert_eq!(
        (s.cursor, s.head, s.lag_events, s.last_success),
        (0, 3, 3, None)
    );
    run.stop().await;
    assert!(rx.answers.lock().unwrap().iter().all(|a| *a == 401));
    assert!(rx.accepted.lock().unwrap().is_empty());
    assert!(!state.join("hook.cursor").exists());
}

#[tokio::test]
async fn setup_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (log, clock) = open_log(dir.path()).await;
    let mut cfg = WebhookConfig {
        name: "hook".into(),
        url: "https://hooks.example.com/kg".into(),
        secret_file: dir.path().join("missing.key"),
        ca_file: None,
        batch: 100,
    };
    let new = |cfg: &WebhookConfig| {
        ExportRunner::new(
            log.clone(),
            dir.path().join("state"),
            vec![ExporterConfig::Webhook(cfg.clone())],
            clock.shared(),
        )
    };
    let err = new(&cfg).unwrap_err();
    assert!(matches!(err, ExportError::File { .. }), "{err}");
    assert!(err.to_string().contains("missing.key"), "{err}");

    std::fs::write(dir.path().join("k"), "0123456789abcdef0123").unwrap();
    cfg.secret_file = dir.path().join("k");
    std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
    cfg.ca_file = Some(dir.path().join("ca.pem"));
    let err = new(&cfg).unwrap_err().to_string();
    assert!(err.contains("no PEM certificate"), "{err}");
    cfg.ca_file = None;
    new(&cfg).unwrap();
}

#[tokio::test]
async fn https_with_a_private_ca_and_only_that_ca() {
    keygate_tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let rx = Arc::new(Receiver::default());
    let (url, ca_pem) = serve_tls(rx.clone()).await;
    let (log, clock) = open_log(dir.path()).await;
    emit(&log, 1, 5).await;

    // Without the CA the receiver's certificate is not trusted: retried,
    // never delivered.
    let untrusted = webhook(dir.path(), url.clone(), SECRET);
    let run = start(&log, &clock, &dir.path().join("state-a"), vec![untrusted]);
    let s = run
        .wait_status("hook", "TLS failures", |s| s.consecutive_failures >= 2)
        .await;
    let err = s.last_error.unwrap();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert_eq!(s.cursor, 0);
    run.stop().await;
    assert!(rx.answers.lock().unwrap().is_empty());

    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let mut trusted = webhook(dir.path(), url, SECRET);
    if let ExporterConfig::Webhook(c) = &mut trusted {
        c.ca_file = Some(ca_file);
    }
    let run = start(&log, &clock, &dir.path().join("state-b"), vec![trusted]);
    run.wait_status("hook", "cursor 5", |s| s.cursor == 5).await;
    run.stop().await;
    let accepted = rx.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].0, "1-5");
    assert_eq!(accepted[0].1.len(), 5);
}
