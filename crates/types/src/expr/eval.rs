//! Walking the tree. Total: every node has a value, nothing can fail.

use serde_json::Value as Json;

use super::{ExprEnv, Fields, Func, Node};

/// What one evaluation can see: the environment and the bound documents.
pub(super) struct Scope<'a> {
    /// Labels and the user.
    pub(super) env: &'a ExprEnv<'a>,
    /// Documents bound to field roots.
    pub(super) fields: &'a Fields<'a>,
}

/// A list of strings, from the user (traits, roles) or from a document (a
/// JSON array, whose non-string elements are seen as holes that equal
/// nothing).
#[derive(Debug, Clone, Copy)]
enum List<'a> {
    /// Traits and role names.
    Strs(&'a [String]),
    /// A JSON array.
    Json(&'a [Json]),
}

impl<'a> List<'a> {
    fn len(self) -> usize {
        match self {
            List::Strs(v) => v.len(),
            List::Json(v) => v.len(),
        }
    }

    /// Element `i` when it is a string.
    fn get(self, i: usize) -> Option<&'a str> {
        match self {
            List::Strs(v) => v.get(i).map(String::as_str),
            List::Json(v) => v.get(i).and_then(Json::as_str),
        }
    }

    fn any(self, f: impl Fn(&str) -> bool) -> bool {
        match self {
            List::Strs(v) => v.iter().any(|s| f(s)),
            List::Json(v) => v.iter().filter_map(Json::as_str).any(f),
        }
    }

    /// Same length and equal strings at every position (a hole equals
    /// nothing, not even another hole).
    fn same(self, other: List<'_>) -> bool {
        self.len() == other.len()
            && (0..self.len())
                .all(|i| matches!((self.get(i), other.get(i)), (Some(a), Some(b)) if a == b))
    }
}

/// A runtime value, borrowed from the tree, the environment or a document.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    /// A string.
    Str(&'a str),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    List(List<'a>),
    /// A document field that is missing or `null`: equals `""`, `[]` and
    /// `false`, contains nothing.
    Absent,
    /// A document field that is a number or an object: equals nothing.
    Opaque,
}

/// The value of a node used as a condition; anything but `true` is `false`.
pub(super) fn truth(node: &Node, scope: &Scope<'_>) -> bool {
    matches!(value(node, scope), Value::Bool(true))
}

fn value<'a>(node: &'a Node, scope: &Scope<'a>) -> Value<'a> {
    let env = scope.env;
    match node {
        Node::Str(s) => Value::Str(s),
        Node::Bool(b) => Value::Bool(*b),
        // A missing label is the empty string, a missing trait the empty
        // list: absence is data, never an evaluation error.
        Node::Label(k) => Value::Str(env.labels.get(k).map_or("", String::as_str)),
        Node::UserName => Value::Str(env.user_name),
        Node::Trait(k) => Value::List(List::Strs(env.traits.get(k).map_or(&[], Vec::as_slice))),
        Node::Roles => Value::List(List::Strs(env.roles)),
        Node::Field { root, path } => field(scope, root, path),
        Node::Not(e) => Value::Bool(!truth(e, scope)),
        Node::And(a, b) => Value::Bool(truth(a, scope) && truth(b, scope)),
        Node::Or(a, b) => Value::Bool(truth(a, scope) || truth(b, scope)),
        Node::Eq(a, b) => Value::Bool(same(value(a, scope), value(b, scope)) == Some(true)),
        Node::Ne(a, b) => Value::Bool(same(value(a, scope), value(b, scope)) == Some(false)),
        Node::Call(f, args) => Value::Bool(call(f, args, scope)),
    }
}

/// Follows `path` from the document bound to `root`.
fn field<'a>(scope: &Scope<'a>, root: &str, path: &[String]) -> Value<'a> {
    let Some(mut doc) = scope
        .fields
        .iter()
        .find(|(name, _)| *name == root)
        .map(|(_, doc)| *doc)
    else {
        return Value::Absent;
    };
    for key in path {
        match doc.as_object().and_then(|o| o.get(key)) {
            Some(next) => doc = next,
            None => return Value::Absent,
        }
    }
    match doc {
        Json::String(s) => Value::Str(s),
        Json::Bool(b) => Value::Bool(*b),
        Json::Array(items) => Value::List(List::Json(items)),
        Json::Null => Value::Absent,
        Json::Number(_) | Json::Object(_) => Value::Opaque,
    }
}

/// Equality of two values of one type; `None` for a type mismatch, which
/// makes both `==` and `!=` false. Absent equals the empty value of the
/// other side's type.
fn same(a: Value<'_>, b: Value<'_>) -> Option<bool> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x == y),
        (Value::Bool(x), Value::Bool(y)) => Some(x == y),
        (Value::List(x), Value::List(y)) => Some(x.same(y)),
        (Value::Absent, Value::Absent) => Some(true),
        (Value::Absent, Value::Str(s)) | (Value::Str(s), Value::Absent) => Some(s.is_empty()),
        (Value::Absent, Value::List(l)) | (Value::List(l), Value::Absent) => Some(l.len() == 0),
        (Value::Absent, Value::Bool(b)) | (Value::Bool(b), Value::Absent) => Some(!b),
        _ => None,
    }
}

/// A value where a string is needed (absent is `""`).
fn as_str(v: Value<'_>) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        Value::Absent => Some(""),
        _ => None,
    }
}

/// A value where a list is needed (absent is `[]`).
fn as_list(v: Value<'_>) -> Option<List<'_>> {
    match v {
        Value::List(l) => Some(l),
        Value::Absent => Some(List::Strs(&[])),
        _ => None,
    }
}

fn call(f: &Func, args: &[Node], scope: &Scope<'_>) -> bool {
    let [a, b] = args else {
        return false;
    };
    let (a, b) = (value(a, scope), value(b, scope));
    match f {
        Func::Contains => match (as_list(a), as_str(b)) {
            (Some(list), Some(s)) => list.any(|v| v == s),
            _ => false,
        },
        Func::Equals => same(a, b) == Some(true),
        Func::StartsWith => match (as_str(a), as_str(b)) {
            (Some(s), Some(p)) => s.starts_with(p),
            _ => false,
        },
        Func::RegexpMatch(re) => match a {
            Value::List(list) => list.any(|v| re.is_match(v)),
            other => as_str(other).is_some_and(|s| re.is_match(s)),
        },
    }
}
