//! HTTP routes of the auth service. Handlers only translate: they resolve
//! the caller from the connection, call one `AuthServer` method, and map
//! its error through `AuthError`'s one mapping.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use keygate_api::{
    Ack, AddUserRequest, ExplainRequest, ExplainResponse, Heartbeat, JoinRequest, LoginRequest,
    NodeIdentity, NodeInfo, NodeSnapshot, PutResourceRequest, RenewRequest, SignRequest,
    SignupRequest, TokenRequest, TokenResponse, WatchResponse, WhatCanEntry, WhoCanEntry,
};
use keygate_tls::{ConnInfo, UnixPeer};
use keygate_types::Kind;

use crate::{AuthError, AuthServer, Caller};

type Res<T> = Result<Json<T>, AuthError>;

fn caller(
    s: &AuthServer,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: &HeaderMap,
) -> Result<Caller, AuthError> {
    s.resolve_caller(
        conn.as_ref().map(|c| &c.0),
        unix.as_ref().map(|u| &u.0),
        headers,
    )
}

fn kind(s: &str) -> Result<Kind, AuthError> {
    s.parse()
        .map_err(|e: keygate_types::TypesError| AuthError::BadRequest(e.to_string()))
}

/// Routes shared by the mTLS listener and the admin socket.
fn routes() -> Router<AuthServer> {
    Router::new()
        .route("/v1/ping", get(ping))
        .route("/v1/login", post(login))
        .route("/v1/signup", post(signup))
        .route("/v1/certs/renew", post(renew))
        .route("/v1/certs/sign", post(sign))
        .route("/v1/certs/host", post(sign_host))
        .route("/v1/status", get(status))
        .route("/v1/ca/{kind}", get(ca_export))
        .route("/v1/ca/{kind}/rotate", post(rotate_ca))
        .route("/v1/users", post(add_user))
        .route("/v1/users/{name}/reset", post(reset_user))
        .route("/v1/tokens", post(create_token))
        .route("/v1/join", post(join))
        .route("/v1/nodes", get(list_nodes))
        .route("/v1/nodes/renew", post(renew_node))
        .route("/v1/nodes/heartbeat", post(heartbeat))
        .route("/v1/nodes/snapshot", get(node_snapshot))
        .route("/v1/nodes/watch", get(node_watch))
        .route("/v1/nodes/events", post(node_events))
        .route("/v1/sessions", get(list_sessions))
        .route("/v1/krl", get(krl))
        .route("/v1/openssh/host-cert", post(openssh_host_cert))
        .route("/v1/openssh/session", post(openssh_session))
        .route("/v1/openssh/watch", get(openssh_watch))
        .route("/v1/openssh/recheck", post(openssh_recheck))
        .route("/v1/openssh/events", post(openssh_events))
        .route("/v1/access/explain", post(access_explain))
        .route("/v1/access/who-can", get(access_who_can))
        .route("/v1/access/what-can", get(access_what_can))
        .route("/v1/audit/events", get(audit_search))
        .route("/v1/audit/verify", post(audit_verify))
        .route("/v1/audit/export", get(audit_export))
        .route("/v1/audit/query", post(audit_query))
        .route("/v1/audit/exporters", get(audit_exporters))
        .route(
            "/v1/audit/checkpoints",
            get(audit_checkpoints).post(audit_checkpoint_now),
        )
        .route("/v1/resources/apply", post(apply))
        .route("/v1/resources", post(put_resource))
        .route("/v1/resources/{kind}", get(list))
        .route("/v1/resources/{kind}/{name}", get(read).delete(remove))
        .layer(DefaultBodyLimit::max(keygate_api::MAX_BODY_BYTES))
}

/// The internal API served on the auth address (mTLS only).
pub fn internal_router(s: AuthServer) -> Router {
    routes().with_state(s)
}

/// The same API on the admin Unix socket.
pub fn admin_router(s: AuthServer) -> Router {
    routes().with_state(s)
}

async fn ping(State(s): State<AuthServer>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"cluster": s.cluster()}))
}

async fn login(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> Res<keygate_api::CertsResponse> {
    let c = caller(&s, conn, unix, &headers)?;
    Ok(Json(s.login(req, c.remote()).await?))
}

async fn signup(
    State(s): State<AuthServer>,
    Json(req): Json<SignupRequest>,
) -> Res<keygate_api::SignupResponse> {
    Ok(Json(s.signup(req).await?))
}

async fn renew(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<RenewRequest>,
) -> Res<keygate_api::CertsResponse> {
    let c = caller(&s, conn, unix, &headers)?;
    Ok(Json(
        s.renew(&c, &req.public_key, req.ttl_secs.map(Duration::from_secs))
            .await?,
    ))
}

async fn sign(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<SignRequest>,
) -> Res<keygate_api::CertsResponse> {
    let c = caller(&s, conn, unix, &headers)?;
    Ok(Json(s.sign(&c, req).await?))
}

async fn sign_host(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<keygate_api::HostSignRequest>,
) -> Res<keygate_api::HostSignResponse> {
    let c = caller(&s, conn, unix, &headers)?;
    Ok(Json(s.sign_host(&c, req).await?))
}

async fn rotate_ca(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    axum::extract::Path(kind): axum::extract::Path<String>,
    Json(req): Json<keygate_api::RotateRequest>,
) -> Res<keygate_api::RotationStatus> {
    let c = caller(&s, conn, unix, &headers)?;
    Ok(Json(s.rotate_ca(&c, &kind, req).await?))
}

async fn status(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
) -> Res<keygate_api::StatusResponse> {
    let c = caller(&s, conn, unix, &headers)?;
    Ok(Json(s.status(&c).await?))
}

async fn ca_export(
    State(s): State<AuthServer>,
    Path(k): Path<String>,
) -> Res<keygate_api::CaExport> {
    Ok(Json(s.ca_export(&k)?))
}

async fn add_user(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<AddUserRequest>,
) -> Res<keygate_api::SignupToken> {
    let c = caller(&s, conn, unix, &headers)?;
    Ok(Json(s.add_user(&c, req).await?))
}

async fn reset_user(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Res<keygate_api::SignupToken> {
    let c = caller(&s, conn, unix, &headers)?;
    Ok(Json(s.reset_user(&c, &name).await?))
}

async fn put_resource(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<PutResourceRequest>,
) -> Res<Ack> {
    let c = caller(&s, conn, unix, &headers)?;
    let name = req
        .resource
        .pointer("/metadata/name")
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_owned();
    let kind = req
        .resource
        .get("kind")
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_owned();
    s.put(&c, req.resource, req.force).await?;
    Ok(Json(Ack {
        message: format!("{kind} {name:?} saved"),
    }))
}

async fn list(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Path(k): Path<String>,
) -> Res<Vec<serde_json::Value>> {
    let c = caller(&s, conn, unix, &headers)?;
    Ok(Json(s.list(&c, kind(&k)?).await?))
}

async fn read(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Path((k, name)): Path<(String, String)>,
) -> Res<serde_json::Value> {
    let c = caller(&s, conn, unix, &headers)?;
    Ok(Json(s.read(&c, kind(&k)?, &name).await?))
}

async fn remove(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Path((k, name)): Path<(String, String)>,
) -> Res<Ack> {
    let c = caller(&s, conn, unix, &headers)?;
    let k = kind(&k)?;
    s.remove(&c, k, &name).await?;
    Ok(Json(Ack {
        message: format!("{k} {name:?} deleted"),
    }))
}

/// Connection facts every handler may need, extracted once.
type Conn = (
    Option<Extension<ConnInfo>>,
    Option<Extension<UnixPeer>>,
    HeaderMap,
);

fn resolve(s: &AuthServer, c: Conn) -> Result<Caller, AuthError> {
    caller(s, c.0, c.1, &c.2)
}

async fn create_token(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<TokenRequest>,
) -> Res<TokenResponse> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.create_token(&c, req).await?))
}

async fn join(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<JoinRequest>,
) -> Res<NodeIdentity> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.join(req, &c).await?))
}

#[derive(serde::Deserialize)]
struct RenewNode {
    ssh_public_key: String,
    tls_spki_b64: String,
}

async fn renew_node(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<RenewNode>,
) -> Res<NodeIdentity> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(
        s.renew_node(&c, &req.ssh_public_key, &req.tls_spki_b64)
            .await?,
    ))
}

async fn heartbeat(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<Heartbeat>,
) -> Res<Ack> {
    let c = resolve(&s, (conn, unix, headers))?;
    s.heartbeat(&c, req).await?;
    Ok(Json(Ack {
        message: "ok".into(),
    }))
}

async fn node_snapshot(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
) -> Res<NodeSnapshot> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.node_snapshot(&c).await?))
}

#[derive(serde::Deserialize)]
struct WatchQuery {
    from: i64,
}

async fn node_watch(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<WatchQuery>,
) -> Res<WatchResponse> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.node_watch(&c, q.from).await?))
}

async fn list_nodes(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
) -> Res<Vec<NodeInfo>> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.list_nodes(&c).await?))
}

async fn node_events(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(events): Json<Vec<keygate_audit_model::AuditEvent>>,
) -> Res<Ack> {
    let c = resolve(&s, (conn, unix, headers))?;
    let n = s.node_events(&c, events).await?;
    Ok(Json(Ack {
        message: format!("{n} events recorded"),
    }))
}

/// Public, like the CA keys: sshd hosts fetch it without an identity.
async fn krl(State(s): State<AuthServer>) -> Res<keygate_api::KrlBundle> {
    Ok(Json(s.krl_bundle().await?))
}

async fn openssh_host_cert(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<keygate_api::OpenSshHostCertRequest>,
) -> Res<keygate_api::OpenSshHostCert> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.openssh_host_cert(&c, req).await?))
}

async fn openssh_session(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<keygate_api::OpenSshSessionRequest>,
) -> Res<keygate_api::OpenSshSessionGrant> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.openssh_session(&c, req).await?))
}

async fn openssh_watch(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<WatchQuery>,
) -> Res<keygate_api::WatchResponse> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.openssh_watch(&c, q.from).await?))
}

async fn openssh_recheck(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<Vec<keygate_api::OpenSshLiveSession>>,
) -> Res<Vec<keygate_api::OpenSshRevoked>> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.openssh_recheck(&c, req).await?))
}

async fn openssh_events(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(events): Json<Vec<keygate_audit_model::AuditEvent>>,
) -> Res<Ack> {
    let c = resolve(&s, (conn, unix, headers))?;
    let n = s.openssh_events(&c, events).await?;
    Ok(Json(Ack {
        message: format!("{n} events recorded"),
    }))
}

async fn access_explain(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<ExplainRequest>,
) -> Res<ExplainResponse> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.explain_access(&c, req).await?))
}

/// Query of `who-can`. Fields are optional so a missing one gets our JSON
/// error naming it, not the extractor's plain-text rejection.
#[derive(serde::Deserialize)]
struct WhoCanQuery {
    node: Option<String>,
    login: Option<String>,
}

async fn access_who_can(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<WhoCanQuery>,
) -> Res<Vec<WhoCanEntry>> {
    let c = resolve(&s, (conn, unix, headers))?;
    let node = q
        .node
        .ok_or_else(|| AuthError::BadRequest("who-can needs ?node=NAME_OR_ID".into()))?;
    Ok(Json(s.who_can(&c, &node, q.login.as_deref()).await?))
}

#[derive(serde::Deserialize)]
struct WhatCanQuery {
    user: Option<String>,
}

async fn access_what_can(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<WhatCanQuery>,
) -> Res<Vec<WhatCanEntry>> {
    let c = resolve(&s, (conn, unix, headers))?;
    let user = q
        .user
        .ok_or_else(|| AuthError::BadRequest("what-can needs ?user=NAME".into()))?;
    Ok(Json(s.what_can(&c, &user).await?))
}

async fn audit_search(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<crate::AuditQuery>,
) -> Res<Vec<keygate_audit_model::StoredEvent>> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.audit_search(&c, q).await?))
}

async fn audit_verify(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Res<crate::VerifyReport> {
    let c = resolve(&s, (conn, unix, headers))?;
    // The body is optional: checkpoints kept elsewhere to compare with.
    let req: crate::VerifyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        crate::VerifyRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AuthError::BadRequest(format!("verify request: {e}")))?
    };
    Ok(Json(s.audit_verify(&c, req).await?))
}

#[derive(serde::Deserialize)]
struct ExportQuery {
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    limit: Option<usize>,
}

async fn audit_export(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<ExportQuery>,
) -> Res<crate::ExportPage> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(
        s.audit_export(&c, q.from.unwrap_or(1), q.limit.unwrap_or(1000))
            .await?,
    ))
}

async fn audit_exporters(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
) -> Res<Vec<serde_json::Value>> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.audit_exporters(&c).await?))
}

async fn audit_query(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<crate::QueryRequest>,
) -> Res<keygate_audit::SqlResult> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.audit_query(&c, req).await?))
}

async fn audit_checkpoint_now(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
) -> Res<Option<keygate_audit_model::SignedCheckpoint>> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.audit_checkpoint_now(&c).await?))
}

async fn audit_checkpoints(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
) -> Res<Vec<keygate_audit_model::SignedCheckpoint>> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.audit_checkpoints(&c).await?))
}

async fn apply(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
    Json(req): Json<keygate_api::ApplyRequest>,
) -> Res<keygate_api::ApplyResponse> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.apply(&c, req).await?))
}

async fn list_sessions(
    State(s): State<AuthServer>,
    conn: Option<Extension<ConnInfo>>,
    unix: Option<Extension<UnixPeer>>,
    headers: HeaderMap,
) -> Res<Vec<keygate_api::SessionSummary>> {
    let c = resolve(&s, (conn, unix, headers))?;
    Ok(Json(s.list_sessions(&c).await?))
}
