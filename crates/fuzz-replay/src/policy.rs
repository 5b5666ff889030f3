//! Targets for `keygate-policy`: label value patterns and selectors.

use std::collections::BTreeMap;

use keygate_policy::{label_selector_matches, value_matches};
use keygate_types::{LabelSelector, Labels};
use serde::Deserialize;

use crate::input;
use crate::invariant::{check, check_eq};

/// A label key no selector in the corpus uses, added to test that labels a
/// selector does not mention never change its verdict.
const EXTRA_KEY: &str = "\u{0}fuzz-extra";

/// `value_matches(pattern, value)`, checked against a reference: `*`
/// matches all, `^…$` is a regular expression, other patterns with `*` are
/// globs (compared with an equivalent anchored regex), the rest compare
/// exactly.
///
/// Input format: the pattern on the first line, the value after it.
pub fn policy_value_matches(data: &[u8]) {
    let Some(text) = input::text(data) else {
        return;
    };
    let (pattern, value) = input::first_line(text);
    let got = value_matches(pattern, value);
    if pattern == "*" {
        check(got, "`*` matches everything", &value);
    } else if pattern.starts_with('^') && pattern.ends_with('$') {
        // Regex patterns are the library's semantics; only check that a
        // pattern that does not compile matches nothing.
        if regex::Regex::new(pattern).is_err() {
            check(!got, "an invalid regex matches nothing", &pattern);
        }
    } else if pattern.contains('*') {
        let reference = format!(
            "(?s)^{}$",
            pattern
                .split('*')
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(".*")
        );
        // The reference can exceed regex's default size limit for long
        // patterns; then there is nothing to compare against.
        if let Ok(re) = regex::Regex::new(&reference) {
            check_eq(&got, &re.is_match(value), "glob agrees with its regex");
        }
    } else {
        check_eq(
            &got,
            &(pattern == value),
            "a plain pattern compares exactly",
        );
    }
}

/// A selector, a resource's labels and a user's traits, as JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SelectorInput {
    /// Role side: keys AND, values OR, patterns and templates.
    selector: LabelSelector,
    /// Resource side.
    labels: Labels,
    /// The user's traits, for `{{internal.x}}` templates.
    traits: BTreeMap<String, Vec<String>>,
}

/// `label_selector_matches` on a JSON
/// `{"selector": {…}, "labels": {…}, "traits": {…}}`. An empty selector
/// matches nothing, a match needs every selector key among the labels, labels
/// the selector does not name change nothing, and dropping a selector key
/// never turns a match into a miss.
pub fn policy_label_selector(data: &[u8]) {
    let Ok(input) = serde_json::from_slice::<SelectorInput>(data) else {
        return;
    };
    let SelectorInput {
        selector,
        mut labels,
        traits,
    } = input;
    let got = label_selector_matches(&selector, &labels, &traits);
    if selector.is_empty() {
        check(!got, "an empty selector matches nothing", &labels);
        return;
    }
    if got {
        check(
            selector.keys().all(|k| k == "*" || labels.contains_key(k)),
            "a match needs every selector key",
            &(&selector, &labels),
        );
        for key in selector.keys() {
            let mut weaker = selector.clone();
            weaker.remove(key);
            check(
                weaker.is_empty() || label_selector_matches(&weaker, &labels, &traits),
                "fewer selector keys match at least as much",
                &key,
            );
        }
    }
    if !selector.contains_key(EXTRA_KEY) {
        labels.insert(EXTRA_KEY.to_owned(), "x".to_owned());
        check_eq(
            &label_selector_matches(&selector, &labels, &traits),
            &got,
            "unrelated labels do not change the verdict",
        );
    }
}
