//! Audit writer (hash-chained, group commit) and storage.
