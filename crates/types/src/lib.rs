//! Resource schemas and domain newtypes (L0, no I/O).
