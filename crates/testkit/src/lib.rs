//! In-process cluster, fixture CAs and real-peer launchers for tests.
//!
//! Owns: helpers that start *real* peers for conformance tests — OpenSSH's
//! `sshd` on a loopback port ([`Sshd`]), throw-away OS accounts
//! ([`OsUser`]), client key pairs and the real `ssh`/`ssh-keygen` clients
//! ([`ClientKey`], [`ssh_exec`], [`ssh_keygen_l`], [`CertListing`]) — and
//! [`free_port`]. Every launcher cleans up after itself on `Drop`.
//! Does not own: anything production code runs. Nothing here is meant to
//! be robust against hostile input; it is meant to fail loudly and clearly
//! when the test machine lacks what a test needs (missing tools are errors,
//! never silent skips).
//!
//! The launchers are synchronous (`std::process`): they are called from
//! both plain and `#[tokio::test]` tests, and the peers they drive are
//! separate processes, so blocking a test thread briefly cannot deadlock.
#![forbid(unsafe_code)]

pub mod ansible;
mod error;
mod listing;
mod net;
mod os_user;
mod process;
pub mod rsyslog;
mod ssh_client;
mod sshd;

pub use error::{Result, TestkitError};
pub use listing::CertListing;
pub use net::free_port;
pub use os_user::OsUser;
pub use ssh_client::{ClientKey, SSH, SSH_KEYGEN, ssh_exec, ssh_keygen_l};
pub use sshd::{SSHD, Sshd, SshdConfig};
