//! The auth service: the only stateful service.
//!
//! Owns: the cluster's CAs (created on first start, keys sealed with the
//! key-encryption key), users and their login secrets, roles, tokens and
//! locks in the backend; password+TOTP login with lockout; certificate
//! issuance; the admin API; writing every decision and change to the audit
//! log. Every privileged path goes through `keygate_policy::authorize`.
//! Does not own: the public listener (the proxy forwards to us over mTLS),
//! storage engines, the audit writer itself.
#![forbid(unsafe_code)]

mod access;
mod admin;
mod admin_authz;
mod apply;
mod audit;
mod audit_api;
mod bootstrap;
mod caller;
mod checkpoint;
mod error;
mod http;
mod issue;
mod krl;
mod login;
mod nodes;
mod openssh;
mod openssh_admin;
mod ratelimit;
mod repo;
mod rotate;
mod server;

pub use audit_api::{AuditQuery, ExportPage, QueryRequest, VerifyReport, VerifyRequest};
pub use bootstrap::{AuthOptions, ExporterStatusSource, FirstStart, load_or_create_kek};
pub use caller::Caller;
pub use error::AuthError;
pub use http::{admin_router, internal_router};
pub use issue::{IssueContext, ServiceIdentity};
pub use server::AuthServer;
