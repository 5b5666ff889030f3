use std::collections::BTreeMap;

use keygate_types::{LabelSelector, LabelValues, Labels, Template};

use crate::regexes::compiled;
use crate::traits::expand_template;

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

/// The patterns after trait expansion (a template may stand for several
/// values, or none).
pub(crate) fn expanded(patterns: &[String], traits: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    patterns
        .iter()
        .flat_map(|p| expand_template(p, traits))
        .collect()
}

/// Does any pattern (templates expanded) match `value`?
pub(crate) fn any_matches(
    patterns: &[String],
    value: &str,
    traits: &BTreeMap<String, Vec<String>>,
) -> bool {
    patterns
        .iter()
        .flat_map(|p| expand_template(p, traits))
        .any(|p| value_matches(&p, value))
}

/// Glob with `*` only, iterative (no backtracking blow-up).
pub(crate) fn glob_matches(pattern: &str, value: &str) -> bool {
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
        if key == "*" {
            return any_value(values, traits, |p| p == "*");
        }
        match labels.get(key) {
            Some(actual) => any_value(values, traits, |p| value_matches(p, actual)),
            None => false,
        }
    })
}

/// The values of a selector key, without collecting them (`LabelValues::iter`
/// allocates, and this runs for every key of every decision).
pub(crate) fn selector_values(values: &LabelValues) -> &[String] {
    match values {
        LabelValues::One(s) => std::slice::from_ref(s),
        LabelValues::Many(v) => v,
    }
}

/// Does `test` hold for any value, templates expanded? Plain values (the
/// common case) are tested in place; only templates allocate.
pub(crate) fn any_value(
    values: &LabelValues,
    traits: &BTreeMap<String, Vec<String>>,
    mut test: impl FnMut(&str) -> bool,
) -> bool {
    selector_values(values).iter().any(|v| {
        if Template::is_template(v) {
            expand_template(v, traits).iter().any(|p| test(p))
        } else {
            test(v)
        }
    })
}

/// Does any of `values` (templates expanded) equal `wanted`? The login
/// check of a role side, without building the expanded set.
pub(crate) fn contains_expanded(
    values: &[String],
    traits: &BTreeMap<String, Vec<String>>,
    wanted: &str,
) -> bool {
    values.iter().any(|v| {
        if Template::is_template(v) {
            expand_template(v, traits).iter().any(|p| p == wanted)
        } else {
            v == wanted
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
