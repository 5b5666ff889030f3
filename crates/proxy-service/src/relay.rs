//! The proxy's side of the agentless-host relay: the [`RelayAuthority`]
//! backed by auth's `/v1/openssh/*` API, relay events sent to the audit
//! log, and the re-check loop that ends relayed sessions when a lock or a
//! role change forbids them (as Keygate nodes do for their own sessions).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keygate_api::{
    Ack, CaExport, OpenSshHostCert, OpenSshHostCertRequest, OpenSshLiveSession, OpenSshRevoked,
    OpenSshSessionGrant, OpenSshSessionRequest, PROXY_INTERNAL_HEADER, WatchResponse,
};
use keygate_audit_model::{AuditEvent, EventType, event_id};
use keygate_clock::SharedClock;
use keygate_ssh_relay::{
    OpenRequest, Relay, RelayAuthority, RelayEvent, RelayEvents, RelaySession, UpstreamGrant,
};
use rand::RngCore;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long the user-CA keys are reused before asking auth again.
const USER_CA_REFRESH: Duration = Duration::from_secs(60);
/// On an unknown CA key, refresh at most this often.
const TRUST_REFRESH_MIN: Duration = Duration::from_secs(2);
/// Renew the relay's host certificate for a node this long before its end.
const HOST_CERT_MARGIN: i64 = 600;
/// Most relay events held while auth is unreachable.
const MAX_QUEUED: usize = 100_000;
/// Most events per upload.
const BATCH: usize = 500;
/// Even without a change notification, live sessions are re-checked this
/// often (certificate expiry, missed notifications).
const RECHECK_INTERVAL: Duration = Duration::from_secs(30);

/// Calls auth on the proxy's own account.
#[derive(Clone)]
pub(crate) struct Internal {
    /// mTLS client for auth.
    pub(crate) http: reqwest::Client,
    /// `https://auth`.
    pub(crate) auth_base: String,
}

impl Internal {
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, String> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.auth_base))
            .header(PROXY_INTERNAL_HEADER, "1");
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("the proxy cannot reach auth: {e}"))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| format!("auth's answer broke off: {e}"))?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<keygate_api::ErrorBody>(&bytes)
                .map(|b| b.message)
                .unwrap_or_else(|_| format!("auth answered {status}"));
            return Err(msg);
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("auth's answer: {e}"))
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, String> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        self.call::<(), T>(reqwest::Method::GET, path, None).await
    }
}

/// Auth, as the relay sees it.
pub(crate) struct AuthAuthority {
    /// Calls auth.
    internal: Internal,
    /// Time.
    clock: SharedClock,
    /// Trusted user-CA keys and when they were fetched (monotonic).
    user_ca: Mutex<(Vec<String>, Option<Duration>)>,
    /// Relay host certificates by node: (certificate, valid before).
    host_certs: Mutex<HashMap<String, (String, i64)>>,
}

impl AuthAuthority {
    pub(crate) fn new(internal: Internal, clock: SharedClock) -> Self {
        Self {
            internal,
            clock,
            user_ca: Mutex::new((Vec::new(), None)),
            host_certs: Mutex::default(),
        }
    }

    /// Forgets cached CA keys and host certificates (a CA may have rotated).
    pub(crate) fn invalidate(&self) {
        self.user_ca
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1 = None;
        self.host_certs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Refreshes the user-CA keys when they are older than a minute.
    pub(crate) async fn refresh_user_ca(&self) -> Result<(), String> {
        self.refresh_user_ca_older_than(USER_CA_REFRESH).await
    }

    async fn refresh_user_ca_older_than(&self, max_age: Duration) -> Result<(), String> {
        let now = self.clock.monotonic();
        let fresh = self
            .user_ca
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .is_some_and(|at| now.saturating_sub(at) < max_age);
        if fresh {
            return Ok(());
        }
        let ca: CaExport = self.internal.get("/v1/ca/user").await?;
        *self.user_ca.lock().unwrap_or_else(PoisonError::into_inner) =
            (ca.ssh_public_keys, Some(now));
        Ok(())
    }
}

#[async_trait::async_trait]
impl RelayAuthority for AuthAuthority {
    fn trusted_user_ca_keys(&self) -> Vec<String> {
        self.user_ca
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    async fn refresh_trust(&self) {
        if let Err(e) = self.refresh_user_ca_older_than(TRUST_REFRESH_MIN).await {
            tracing::warn!("refreshing the user CA keys: {e}");
        }
    }

    async fn host_cert(&self, node: &str, host_public_key: &str) -> Result<String, String> {
        let now = self.clock.now().unix_timestamp();
        if let Some((cert, until)) = self
            .host_certs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(node)
            && until - HOST_CERT_MARGIN > now
        {
            return Ok(cert.clone());
        }
        let got: OpenSshHostCert = self
            .internal
            .post(
                "/v1/openssh/host-cert",
                &OpenSshHostCertRequest {
                    node: node.to_owned(),
                    public_key: host_public_key.to_owned(),
                },
            )
            .await?;
        self.host_certs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node.to_owned(), (got.cert.clone(), got.valid_before));
        Ok(got.cert)
    }

    async fn open(&self, req: &OpenRequest) -> Result<UpstreamGrant, String> {
        let g: OpenSshSessionGrant = self
            .internal
            .post(
                "/v1/openssh/session",
                &OpenSshSessionRequest {
                    node: req.node.clone(),
                    login: req.login.clone(),
                    user_cert: req.user_cert.clone(),
                    public_key: req.public_key.clone(),
                    client_addr: req.client.to_string(),
                },
            )
            .await?;
        Ok(UpstreamGrant {
            session_id: g.session_id,
            user: g.user,
            cert: g.cert,
            addr: g.addr,
            host_ca_keys: g.host_ca_keys,
            host_principals: g.host_principals,
            port_forwarding: g.port_forwarding,
            idle_timeout: g.idle_timeout_secs.map(Duration::from_secs),
            disconnect_at: g
                .disconnect_at
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok()),
        })
    }
}

/// Relay events on their way to auth's audit log.
pub(crate) struct AuditTap {
    /// Time.
    clock: SharedClock,
    /// Pending events.
    queue: Mutex<VecDeque<AuditEvent>>,
    /// Wakes the uploader.
    notify: Notify,
    /// Wakes the re-check loop when sessions start or end.
    pub(crate) sessions_changed: Notify,
}

impl AuditTap {
    pub(crate) fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            queue: Mutex::default(),
            notify: Notify::new(),
            sessions_changed: Notify::new(),
        }
    }

    fn base(&self, ty: EventType, s: &RelaySession) -> AuditEvent {
        let now = self.clock.now();
        let mut r = [0u8; 10];
        rand::thread_rng().fill_bytes(&mut r);
        AuditEvent::new(ty, now, event_id(now, &r))
            .user(s.user.clone())
            .login(s.login.clone())
            .node(s.node.clone())
            .session_id(s.session_id.clone())
            .remote_addr(s.client.to_string())
    }

    /// Sends queued events until `shutdown`.
    pub(crate) async fn upload(&self, internal: Internal, shutdown: CancellationToken) {
        loop {
            let batch: Vec<AuditEvent> = {
                let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                let n = q.len().min(BATCH);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.notify.notified() => continue,
                }
            }
            if let Err(e) = internal.post::<_, Ack>("/v1/openssh/events", &batch).await {
                tracing::warn!(
                    "sending {} relay audit events failed ({e}); will retry",
                    batch.len()
                );
                {
                    let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                    for ev in batch.into_iter().rev() {
                        q.push_front(ev);
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

impl RelayEvents for AuditTap {
    fn event(&self, ev: RelayEvent) {
        let out = match ev {
            RelayEvent::SessionStart { session } => {
                self.sessions_changed.notify_one();
                Some(self.base(EventType::SessionStart, &session))
            }
            RelayEvent::SessionEnd {
                session,
                reason,
                bytes_in,
                bytes_out,
            } => {
                self.sessions_changed.notify_one();
                Some(
                    self.base(EventType::SessionEnd, &session)
                        .field("reason", reason)
                        .field("bytes_in", bytes_in)
                        .field("bytes_out", bytes_out),
                )
            }
            RelayEvent::Exec {
                session,
                command,
                accepted,
            } => {
                let e = self
                    .base(EventType::Exec, &session)
                    .field("command", command);
                Some(if accepted {
                    e
                } else {
                    e.success(false).error("the host refused the request")
                })
            }
            RelayEvent::ExitStatus {
                session,
                command,
                status,
            } => Some(
                self.base(EventType::Exec, &session)
                    .field("command", command)
                    .field("exit_code", status),
            ),
            RelayEvent::PortForward {
                session,
                target,
                allowed,
                reason,
            } => {
                let e = self
                    .base(EventType::PortForward, &session)
                    .field("target", target);
                Some(match reason {
                    Some(r) if !allowed => e.success(false).error(r),
                    _ => e,
                })
            }
            RelayEvent::Refused {
                session: Some(session),
                request,
                reason,
                ..
            } => Some(
                self.base(EventType::AuthFailed, &session)
                    .field("request", request)
                    .error(reason),
            ),
            // Refusals before authentication are audited by auth, which
            // made the decision (or never saw a usable certificate).
            RelayEvent::Refused { session: None, .. } => None,
        };
        if let Some(ev) = out {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if q.len() >= MAX_QUEUED {
                q.pop_front();
            }
            q.push_back(ev);
            drop(q);
            self.notify.notify_one();
        }
    }
}

/// Re-checks live relayed sessions whenever roles, locks or CA keys change
/// (and every 30 s), ending those auth no longer allows; on every change
/// also forgets cached CA keys and relay host certificates, so a rotation
/// takes effect at once.
pub(crate) async fn recheck_loop(
    relay: Relay,
    authority: Arc<AuthAuthority>,
    internal: Internal,
    tap: Arc<AuditTap>,
    shutdown: CancellationToken,
) {
    let mut revision = 0i64;
    loop {
        let live = relay.live();
        if !live.is_empty() {
            let req: Vec<OpenSshLiveSession> = live
                .iter()
                .map(|l| OpenSshLiveSession {
                    session_id: l.session.session_id.clone(),
                    node: l.session.node.clone(),
                    login: l.session.login.clone(),
                    user_cert: l.user_cert.clone(),
                })
                .collect();
            match internal
                .post::<_, Vec<OpenSshRevoked>>("/v1/openssh/recheck", &req)
                .await
            {
                Ok(revoked) => {
                    for r in revoked {
                        relay.terminate(&r.session_id, &r.reason);
                    }
                }
                Err(e) => tracing::warn!("re-checking relayed sessions failed: {e}"),
            }
        }
        let path = format!("/v1/openssh/watch?from={revision}");
        let watch = internal.get::<WatchResponse>(&path);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RECHECK_INTERVAL) => {}
            () = tap.sessions_changed.notified() => {}
            w = watch => match w {
                Ok(w) => {
                    if w.changed && revision != 0 {
                        authority.invalidate();
                    }
                    revision = w.revision;
                }
                Err(e) => {
                    tracing::debug!("policy watch failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
        }
    }
}
