//! The conformance suite against the in-memory backend.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use keygate_clock::{OffsetDateTime, TestClock};
use keygate_store::MemoryBackend;
use keygate_store::conformance::Fixture;

async fn memory() -> Fixture {
    let clock = TestClock::at(OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap());
    Fixture {
        backend: Arc::new(MemoryBackend::new(clock.shared())),
        clock,
        guard: Box::new(()),
    }
}

keygate_store::conformance_suite!(memory());
