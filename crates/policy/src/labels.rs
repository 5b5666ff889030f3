use std::collections::BTreeMap;

use keygate_types::{LabelSelector, Labels};

use crate::traits::expand_template;

/// Largest compiled regex program allowed, so a hostile pattern can't eat
/// memory (the `regex` crate guarantees linear-time matching).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Most compiled patterns remembered (roles hold few distinct ones).
const REGEX_CACHE_SIZE: usize = 1024;

/// Compiles a pattern once: decisions run for every node and role, and
/// compiling dominates matching. Invalid patterns are remembered as such
/// (they never match). Pure memoisation: no I/O, no time.
fn compiled(pattern: &str) -> Option<regex::Regex> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static CACHE: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
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
        .build()
        .ok();
    let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= REGEX_CACHE_SIZE {
        map.clear();
    }
    map.insert(pattern.to_owned(), re.clone());
    re
}

/// Does one label value match one pattern? `*` matches anything, `^…$` is a
/// regular expression, other values are globs where `*` matches any run.
pub fn value_matches(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if pattern.starts_with('^') && pattern.ends_with('$') {
        return compiled(pattern).is_some_and(|re| re.is_match(value));
    }
    if pattern.contains('*') {
        return glob_matches(pattern, value);
    }
    pattern == value
}

/// Glob with `*` only, iterative (no backtracking blow-up).
fn glob_matches(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = value;
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == last {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(idx) => rest = rest.get(idx + part.len()..).unwrap_or(""),
                None => return false,
            }
        }
    }
    // No `*` at all would have been handled by equality; one part means the
    // pattern was exactly consumed.
    rest.is_empty()
}

/// Does a selector match a resource's labels? Keys AND, values OR; the key
/// `*` with value `*` matches every resource. An empty selector matches
/// nothing (deny by default). Values may be trait templates.
pub fn label_selector_matches(
    selector: &LabelSelector,
    labels: &Labels,
    traits: &BTreeMap<String, Vec<String>>,
) -> bool {
    if selector.is_empty() {
        return false;
    }
    selector.iter().all(|(key, values)| {
        let patterns: Vec<String> = values
            .iter()
            .flat_map(|v| expand_template(v, traits))
            .collect();
        if key == "*" {
            return patterns.iter().any(|p| p == "*");
        }
        match labels.get(key) {
            Some(actual) => patterns.iter().any(|p| value_matches(p, actual)),
            None => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_types::LabelValues;

    fn sel(pairs: &[(&str, &[&str])]) -> LabelSelector {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    LabelValues::Many(v.iter().map(|s| (*s).to_owned()).collect()),
                )
            })
            .collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn keys_and_values_or() {
        let t = BTreeMap::new();
        let s = sel(&[("env", &["prod", "staging"]), ("team", &["db"])]);
        assert!(label_selector_matches(
            &s,
            &labels(&[("env", "prod"), ("team", "db")]),
            &t
        ));
        assert!(label_selector_matches(
            &s,
            &labels(&[("env", "staging"), ("team", "db")]),
            &t
        ));
        assert!(!label_selector_matches(&s, &labels(&[("env", "prod")]), &t));
        assert!(!label_selector_matches(
            &s,
            &labels(&[("env", "dev"), ("team", "db")]),
            &t
        ));
        assert!(!label_selector_matches(
            &LabelSelector::new(),
            &labels(&[("env", "prod")]),
            &t
        ));
        assert!(label_selector_matches(
            &sel(&[("*", &["*"])]),
            &labels(&[]),
            &t
        ));
    }

    #[test]
    fn globs_regexes_and_traits() {
        assert!(value_matches("web-*", "web-1"));
        assert!(value_matches("*-1", "web-1"));
        assert!(value_matches("w*b*1", "web-1"));
        assert!(!value_matches("web-*", "db-1"));
        assert!(value_matches("^(prod|stage)-[0-9]+$", "prod-12"));
        assert!(!value_matches("^(prod|stage)-[0-9]+$", "prod-x"));
        assert!(!value_matches("^(unclosed$", "x"));
        let t = BTreeMap::from([("teams".to_owned(), vec!["db".to_owned()])]);
        let s = sel(&[("team", &["{{internal.teams}}"])]);
        assert!(label_selector_matches(&s, &labels(&[("team", "db")]), &t));
        assert!(!label_selector_matches(&s, &labels(&[("team", "web")]), &t));
        assert!(!label_selector_matches(
            &s,
            &labels(&[("team", "db")]),
            &BTreeMap::new()
        ));
    }
}
