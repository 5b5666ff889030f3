//! Polling with deadlines. End-to-end tests wait for other processes to
//! reach a state; they poll for it and give up at a deadline instead of
//! sleeping a guessed amount (which is either flaky or slow).
//!
//! Time comes from `keygate_clock::SystemClock` (house rule: no direct
//! `Instant::now()`), through one process-wide origin.

use std::sync::OnceLock;
use std::time::Duration;

use keygate_clock::{Clock, SystemClock};

/// The clock every stopwatch in this process reads.
fn clock() -> &'static SystemClock {
    static CLOCK: OnceLock<SystemClock> = OnceLock::new();
    CLOCK.get_or_init(SystemClock::new)
}

/// Measures real time from its start.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    /// Monotonic reading at the start.
    started: Duration,
}

impl Stopwatch {
    /// Starts measuring now.
    pub fn start() -> Stopwatch {
        Stopwatch {
            started: clock().monotonic(),
        }
    }

    /// Time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> Duration {
        clock().monotonic().saturating_sub(self.started)
    }
}

/// Calls `probe` every `every` until it returns `Some` or `timeout` has
/// passed (it is always called at least once, and once more at the
/// deadline). `None` means the deadline passed.
pub fn wait_until<T>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let watch = Stopwatch::start();
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        let left = timeout.saturating_sub(watch.elapsed());
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(every.min(left));
    }
}
