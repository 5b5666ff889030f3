//! The SSH server of a Keygate node (agent).
//!
//! Owns: the russh server glue for one node — accepting only Keygate user
//! certificates (trusted user CA, type user, validity, login ∈ principals,
//! then the node's [`Authorizer`]), presenting the node's host certificate,
//! bounding unauthenticated connections and sessions, running PTY shells,
//! commands and the sftp subsystem as the real login user, local port and
//! agent forwarding when the grant allows, idle timeout and disconnect at
//! certificate expiry, the live [`SessionRegistry`] (terminate matching
//! sessions for locks), and the [`SessionEvents`] tap (audit events,
//! output and resizes for recording).
//!
//! Does not own: policy (the node service implements [`Authorizer`] with
//! `keygate-policy`), writing audit events or recordings (the node service
//! turns [`SshEvent`]s and the output tap into them), the reverse tunnel
//! (it hands streams to [`SshServer::serve_stream`]), key and certificate
//! issuance.
//!
//! Trust boundary: everything from the network is untrusted. A bad packet,
//! an absurd window size or a flood of half-open connections ends or
//! refuses that connection only; nothing a peer sends can panic the server.
//!
//! The only `unsafe` code is in `spawn.rs` (between `fork` and `exec`, and
//! the terminal-size ioctl).
#![deny(unsafe_code)]

mod admission;
mod auth;
mod config;
mod conn;
mod error;
mod events;
mod handler;
mod registry;
mod server;
mod session;
mod spawn;
mod stream;

pub use auth::{AuthRequest, Authorizer, ROLES_EXTENSION, SessionGrant};
pub use config::{AUTH_REJECTION_TIME, ServerSettings};
pub use error::{Result, SshdError};
pub use events::{EndReason, SessionEvents, SessionIdentity, SshEvent, StatsSnapshot};
pub use registry::{SessionInfo, SessionRegistry};
pub use server::SshServer;
