//! Evaluating a role's expressions — `node_labels_expression` against a
//! node and a user, `where` predicates against documents (a resource, an
//! access request and its reviewer) and the user.
//!
//! Expressions are parsed once and remembered (decisions run for every node
//! and role; parsing dominates evaluating). A role whose expression does not
//! parse — roles are validated at `create`, so only a role stored by an
//! older or newer build can get here — is treated as the safe extreme: on
//! the allow side it never matches, on the deny side it always matches
//! (deny by default: an unreadable deny rule must not open access).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use keygate_types::{Expr, ExprEnv, Fields, Labels};

use crate::decision::Identity;

/// Most parsed expressions remembered (roles hold few distinct ones).
const EXPR_CACHE_SIZE: usize = 1024;

/// A parsed expression, or why it does not parse.
pub(crate) type Parsed = Arc<Result<Expr, String>>;

/// Parses `source` once; later calls return the remembered result. Pure
/// memoisation: no I/O, no time.
pub(crate) fn parsed(source: &str) -> Parsed {
    static CACHE: OnceLock<Mutex<HashMap<String, Parsed>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(hit) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(source)
    {
        return Arc::clone(hit);
    }
    let parsed: Parsed = Arc::new(Expr::parse(source).map_err(|e| e.to_string()));
    let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= EXPR_CACHE_SIZE {
        map.clear();
    }
    map.insert(source.to_owned(), Arc::clone(&parsed));
    parsed
}

/// What evaluating one expression gave: the value the decision uses and,
/// for an expression that does not parse, the parse error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The value the decision uses (for an invalid expression: `false` on
    /// the allow side, `true` on the deny side).
    pub(crate) value: bool,
    /// Why the expression does not parse, if it does not.
    pub(crate) error: Option<String>,
}

/// Evaluates `source` for `id` with `labels` (a node's, or a resource's
/// `metadata.labels`) and documents bound to field roots; `deny` selects
/// the deny-side meaning of an invalid expression (it matches).
pub(crate) fn evaluate_with(
    source: &str,
    id: &Identity,
    labels: &Labels,
    fields: &Fields<'_>,
    deny: bool,
) -> Outcome {
    match parsed(source).as_ref() {
        Ok(expr) => {
            let roles: Vec<String> = id.roles.iter().map(|r| r.metadata.name.clone()).collect();
            let env = ExprEnv {
                labels,
                user_name: &id.user,
                traits: &id.traits,
                roles: &roles,
            };
            Outcome {
                value: expr.eval_with(&env, fields),
                error: None,
            }
        }
        Err(e) => Outcome {
            value: deny,
            error: Some(e.clone()),
        },
    }
}

/// Evaluates a `node_labels_expression` (no documents bound).
pub(crate) fn evaluate(source: &str, id: &Identity, labels: &Labels, deny: bool) -> Outcome {
    evaluate_with(source, id, labels, &[], deny)
}

/// Convenience for callers that only need the value.
pub(crate) fn holds(source: &str, id: &Identity, labels: &Labels, deny: bool) -> bool {
    evaluate(source, id, labels, deny).value
}
