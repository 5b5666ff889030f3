//! Compiled regular expressions, remembered: decisions run for every
//! resource and role, and compiling dominates matching.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Largest compiled regex program allowed, so a hostile pattern can't eat
/// memory (the `regex` crate guarantees linear-time matching).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Most compiled patterns remembered (roles hold few distinct ones).
const REGEX_CACHE_SIZE: usize = 1024;

/// A compiled pattern, shared: cloning a `regex::Regex` would give the
/// clone a fresh, empty matching-cache pool, so every match would allocate
/// one; sharing the one `Regex` keeps its pool warm.
pub(crate) type Shared = Arc<regex::Regex>;

/// Compiles a pattern once. Invalid patterns are remembered as such (they
/// never match). Pure memoisation: no I/O, no time.
pub(crate) fn compiled(pattern: &str) -> Option<Shared> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Shared>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(hit) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(pattern)
    {
        return hit.clone();
    }
    let re = regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .ok()
        .map(Arc::new);
    let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= REGEX_CACHE_SIZE {
        map.clear();
    }
    map.insert(pattern.to_owned(), re.clone());
    re
}
