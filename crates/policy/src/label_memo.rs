//! Label selectors compiled for a whole listing, with a memo of which
//! selectors accept each label value met so far.
//!
//! Role selectors look at few label keys, and a fleet has few distinct
//! values per key (`env`, `team`, `region`…), so matching each pattern
//! once per distinct value instead of once per node removes nearly all
//! pattern work from a listing. A node's result is then one bitset AND per
//! referenced key. The memo lives as long as the listing's `NodeFilter`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use keygate_types::{LabelSelector, Labels};

use crate::labels::{glob_matches, selector_values};
use crate::regexes::{Shared, compiled};
use crate::traits::expand_template;

/// Bits per bitset word.
const WORD: usize = 64;

/// One selector value, templates expanded and classified once (the order
/// of the tests is that of [`value_matches`](crate::value_matches)).
#[derive(Debug, Clone)]
enum Pattern {
    /// `*`: any value.
    Any,
    /// `^…$`: a regular expression (`None`: it does not compile, so it
    /// never matches).
    Regex(Option<Shared>),
    /// A glob with `*`.
    Glob(String),
    /// A plain value.
    Exact(String),
}

impl Pattern {
    fn of(p: &str) -> Self {
        if p == "*" {
            Self::Any
        } else if p.starts_with('^') && p.ends_with('$') {
            Self::Regex(compiled(p))
        } else if p.contains('*') {
            Self::Glob(p.to_owned())
        } else {
            Self::Exact(p.to_owned())
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Regex(re) => re.as_ref().is_some_and(|re| re.is_match(value)),
            Self::Glob(g) => glob_matches(g, value),
            Self::Exact(e) => e == value,
        }
    }
}

/// Which selectors of a [`SelectorSet`] match one node.
#[derive(Debug, Clone)]
pub(crate) struct Matches(Vec<u64>);

impl Matches {
    /// Does selector `idx` match?
    pub(crate) fn has(&self, idx: usize) -> bool {
        self.0
            .get(idx / WORD)
            .is_some_and(|w| w & (1u64 << (idx % WORD)) != 0)
    }
}

/// Every selector of a listing, compiled, with the per-value memo.
#[derive(Debug, Default)]
pub(crate) struct SelectorSet {
    /// Label keys any selector references (never `*`), sorted.
    keys: Vec<String>,
    /// Per key: each selector referencing it, with its patterns (any of
    /// them must match the node's value).
    conditions: Vec<Vec<(usize, Vec<Pattern>)>>,
    /// Per key: the bitset of selectors referencing it (a node without the
    /// key fails them).
    refs: Vec<Vec<u64>>,
    /// Selectors added.
    len: usize,
    /// Per key: label value → bitset of the referencing selectors its
    /// value satisfies. Filled as values are met.
    memo: RefCell<Vec<ValueMemo>>,
}

/// Values met with few distinct values per key (the usual case), a
/// linear scan beats hashing every node's value; past that, a hash map.
const SMALL_MEMO: usize = 16;

/// One key's memo: label value → accepted bitset.
#[derive(Debug, Default)]
struct ValueMemo {
    /// The first [`SMALL_MEMO`] values, scanned in order.
    small: Vec<(String, Vec<u64>)>,
    /// Every value once there are more (then `small` is empty).
    large: HashMap<String, Vec<u64>>,
}

impl ValueMemo {
    fn get(&self, value: &str) -> Option<&[u64]> {
        if self.large.is_empty() {
            self.small
                .iter()
                .find(|(v, _)| v == value)
                .map(|(_, b)| b.as_slice())
        } else {
            self.large.get(value).map(Vec::as_slice)
        }
    }

    fn insert(&mut self, value: String, bits: Vec<u64>) {
        if self.large.is_empty() && self.small.len() < SMALL_MEMO {
            self.small.push((value, bits));
        } else {
            self.large.extend(self.small.drain(..));
            self.large.insert(value, bits);
        }
    }
}

impl SelectorSet {
    /// Adds `selector` for `traits`, as
    /// [`label_selector_matches`](crate::label_selector_matches) reads it,
    /// and returns its index; `None` when it matches no node (empty
    /// selector, a key `*` without a `*` value, or a key whose templates
    /// all expand to nothing). Add every selector before matching.
    pub(crate) fn add(
        &mut self,
        selector: &LabelSelector,
        traits: &BTreeMap<String, Vec<String>>,
    ) -> Option<usize> {
        if selector.is_empty() {
            return None;
        }
        let mut keys = Vec::new();
        for (key, values) in selector {
            let patterns: Vec<String> = selector_values(values)
                .iter()
                .flat_map(|v| expand_template(v, traits))
                .collect();
            if key == "*" {
                if !patterns.iter().any(|p| p == "*") {
                    return None;
                }
                continue;
            }
            if patterns.is_empty() {
                return None;
            }
            keys.push((key, patterns.iter().map(|p| Pattern::of(p)).collect()));
        }
        let idx = self.len;
        self.len += 1;
        for (key, patterns) in keys {
            // Keys stay sorted, so a node's labels (sorted too) are read
            // in one walk.
            let k = match self.keys.binary_search(key) {
                Ok(k) => k,
                Err(k) => {
                    self.keys.insert(k, key.clone());
                    self.conditions.insert(k, Vec::new());
                    self.refs.insert(k, Vec::new());
                    k
                }
            };
            if let Some(c) = self.conditions.get_mut(k) {
                c.push((idx, patterns));
            }
            if let Some(r) = self.refs.get_mut(k) {
                set(r, idx);
            }
        }
        Some(idx)
    }

    /// Which selectors match `labels`.
    pub(crate) fn matching(&self, labels: &Labels) -> Matches {
        let words = self.len.div_ceil(WORD);
        let mut ok = vec![u64::MAX; words];
        let mut memo = self.memo.borrow_mut();
        if memo.len() < self.keys.len() {
            memo.resize_with(self.keys.len(), ValueMemo::default);
        }
        let lists = self.keys.iter().zip(&self.refs).zip(memo.iter_mut());
        let mut node_labels = labels.iter().peekable();
        for (k, ((key, refs), seen)) in lists.enumerate() {
            while node_labels.next_if(|(l, _)| *l < key).is_some() {}
            let value = node_labels.next_if(|(l, _)| *l == key).map(|(_, v)| v);
            match value {
                // A node without the key fails every selector naming it.
                None => and_into(&mut ok, refs, &[]),
                Some(v) => match seen.get(v) {
                    Some(bits) => and_into(&mut ok, refs, bits),
                    None => {
                        let bits = self.accepting(k, v, words);
                        and_into(&mut ok, refs, &bits);
                        seen.insert(v.clone(), bits);
                    }
                },
            }
        }
        Matches(ok)
    }

    /// The selectors referencing key `k` whose patterns accept `value`.
    fn accepting(&self, k: usize, value: &str, words: usize) -> Vec<u64> {
        let mut bits = vec![0; words];
        for (idx, patterns) in self.conditions.get(k).into_iter().flatten() {
            if patterns.iter().any(|p| p.matches(value)) {
                set(&mut bits, *idx);
            }
        }
        bits
    }
}

/// Clears in `ok` the selectors of `refs` that `accepted` lacks.
fn and_into(ok: &mut [u64], refs: &[u64], accepted: &[u64]) {
    for (w, word) in ok.iter_mut().enumerate() {
        let r = refs.get(w).copied().unwrap_or(0);
        let a = accepted.get(w).copied().unwrap_or(0);
        *word &= !r | a;
    }
}

/// Sets bit `idx`, growing the bitset as needed.
fn set(bits: &mut Vec<u64>, idx: usize) {
    let w = idx / WORD;
    if bits.len() <= w {
        bits.resize(w + 1, 0);
    }
    if let Some(word) = bits.get_mut(w) {
        *word |= 1u64 << (idx % WORD);
    }
}
