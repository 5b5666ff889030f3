//! Cutting one fuzz input into a parser's arguments.
//!
//! Multi-argument targets use text lines so that seed files stay readable
//! and hand-editable; the fuzzer mutates the separators like any other byte.

/// The input as text, or `None` for non-UTF-8 input (the parsers under test
/// take `&str`, so the type system already rules such input out).
pub(crate) fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The first line (without its `\n`) and the rest after it; the rest is
/// empty when there is no newline.
pub(crate) fn first_line(s: &str) -> (&str, &str) {
    s.split_once('\n').unwrap_or((s, ""))
}

/// An optional decimal number on a line: blank means "use the default",
/// anything else unparseable means `None` (the caller skips the input).
pub(crate) fn number_or<T: std::str::FromStr>(line: &str, default: T) -> Option<T> {
    let line = line.trim();
    if line.is_empty() {
        return Some(default);
    }
    line.parse().ok()
}
