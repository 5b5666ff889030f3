//! The daemon as a library: configuration and the all-in-one start-up,
//! so tests can run a real cluster in-process.
//!
//! Owns: `keygate.yaml`, data-dir layout (lock, database, audit log, KEK,
//! admin socket), binding listeners, wiring auth and proxy together, and
//! orderly shutdown; `krl-sync` for agentless hosts. Does not own: any
//! service logic.
#![forbid(unsafe_code)]

pub mod config;
pub mod krl_sync;
pub mod start;

pub use start::{LocalNode, Running, StartError, StartOptions, start};
