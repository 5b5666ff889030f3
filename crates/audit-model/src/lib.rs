//! The audit event schema, the registry of event types and stable codes,
//! and the hash chain that makes the log tamper-evident (L0: pure, no I/O,
//! no clock — callers pass ids and times in).
//!
//! Owns: [`AuditEvent`] and its JSON form, [`EventType`] names and codes,
//! the exact stored bytes of an event ([`stored_bytes`]), the chain hash
//! ([`chain_hash`]) and chain verification ([`verify_chain`],
//! [`ChainVerifier`]).
//! Does not own: storage, group commit, queries or exporters (the
//! `keygate-audit` crate), checkpoint signatures (made with the audit CA by
//! auth; this crate defines what is signed and compares chains with
//! checkpoints), or recordings.
//!
//! Chain rule: record `seq` (1, 2, 3, …) stores `bytes` = the event's JSON
//! with `"seq"` included, and `hash = SHA-256(prev_hash ‖ bytes)` where
//! `prev_hash` is the previous record's hash, or 32 zero bytes for seq 1.
//! The bytes are stored and hashed exactly as written; verification never
//! re-serialises, so the JSON library's key order cannot break old logs.
#![forbid(unsafe_code)]

mod bundle;
mod chain;
mod checkpoint;
mod codes;
mod error;
mod event;

pub use bundle::{BUNDLE_FORMAT, BundleError, BundleLine, BundleReport, check_bundle};
pub use chain::{
    ChainBreak, ChainBreakKind, ChainRecord, ChainVerifier, FIRST_SEQ, GENESIS_PREV_HASH,
    MAX_STORED_BYTES, StoredEvent, chain_hash, parse_stored, seal, stored_bytes, verify_chain,
};
pub use checkpoint::{
    CHECKPOINT_NAMESPACE, Checkpoint, CheckpointFindings, CheckpointMatcher, SignedCheckpoint, hex,
    verify_with_checkpoints,
};
pub use codes::EventType;
pub use error::AuditModelError;
pub use event::{Actor, ActorKind, AuditEvent, RESERVED_KEYS, Via, event_id};
