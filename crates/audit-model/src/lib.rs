//! Audit event schema, codes and hash chain (L0).
