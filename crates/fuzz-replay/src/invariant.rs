//! Reporting a broken invariant.
//!
//! The parsers under test must never panic; the harness, on the other hand,
//! panics on purpose when a property fails, because a panic is what
//! libFuzzer records as a crash and what fails a replay test. These helpers
//! keep that one deliberate panic in one place.

use std::fmt::Debug;

/// Stops the run: `what` held for the parser's output but was false.
#[allow(clippy::panic)] // the harness's only way to report a bug; see module doc
#[track_caller]
pub(crate) fn fail(what: &str, detail: &dyn Debug) -> ! {
    panic!("fuzz invariant broken: {what}: {detail:?}")
}

/// The value of a step that must succeed once the input was accepted.
#[track_caller]
pub(crate) fn must<T, E: Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => fail(what, &e),
    }
}

/// `left == right`, or stop with both values.
#[track_caller]
pub(crate) fn check_eq<T: PartialEq + Debug>(left: &T, right: &T, what: &str) {
    if left != right {
        fail(what, &(left, right));
    }
}

/// `cond`, or stop with `detail`.
#[track_caller]
pub(crate) fn check(cond: bool, what: &str, detail: &dyn Debug) {
    if !cond {
        fail(what, detail);
    }
}
