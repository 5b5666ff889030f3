use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Labels on a resource: plain key/value strings.
pub type Labels = BTreeMap<String, String>;

/// One value or a list of values (`env: prod` or `env: [prod, staging]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LabelValues {
    /// A single value.
    One(String),
    /// Any of several values.
    Many(Vec<String>),
}

impl LabelValues {
    /// The values as a slice-like iterator.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let v: Vec<&str> = match self {
            Self::One(s) => vec![s.as_str()],
            Self::Many(v) => v.iter().map(String::as_str).collect(),
        };
        v.into_iter()
    }
}

/// A label selector in a role: keys AND, values OR; `*`, globs and
/// `^regex$` values (matching lives in `keygate-policy`).
pub type LabelSelector = BTreeMap<String, LabelValues>;
