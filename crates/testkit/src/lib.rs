//! In-process cluster, fixture CAs and real-peer launchers for tests.
