//! The crate's error type. Chain verification failures are not errors of
//! this kind but findings: see [`ChainBreak`](crate::ChainBreak).

/// Why an event could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditModelError {
    // --- the caller built an event we cannot store ---
    /// An extra field uses a name the schema already defines.
    #[error("audit field {0:?} is reserved by the event schema; rename the extra field")]
    ReservedField(String),
    /// The encoded event exceeds the size limit.
    #[error("audit event is {size} bytes, more than the {max}-byte limit; trim its fields")]
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// JSON encoding failed (for example a time outside RFC 3339's range).
    #[error("audit event cannot be encoded as JSON: {0}; check its time and fields")]
    Encode(#[source] serde_json::Error),

    // --- stored bytes are not a valid event ---
    /// Stored bytes do not parse as an event.
    #[error(
        "stored audit event is not valid: {0}; the log may be corrupt, run `kgctl audit verify`"
    )]
    Decode(#[source] serde_json::Error),
}
