//! Walking the tree. Total: every node has a value, nothing can fail.

use super::{ExprEnv, Func, Node};

/// A runtime value, borrowed from the tree or the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value<'a> {
    /// A string.
    Str(&'a str),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    List(&'a [String]),
}

/// The value of a node used as a condition; a non-boolean is `false`
/// (the type checker rules that out for parsed expressions).
pub(super) fn truth(node: &Node, env: &ExprEnv<'_>) -> bool {
    matches!(value(node, env), Value::Bool(true))
}

fn value<'a>(node: &'a Node, env: &ExprEnv<'a>) -> Value<'a> {
    match node {
        Node::Str(s) => Value::Str(s),
        Node::Bool(b) => Value::Bool(*b),
        // A missing label is the empty string, a missing trait the empty
        // list: absence is data, never an evaluation error.
        Node::Label(k) => Value::Str(env.labels.get(k).map_or("", String::as_str)),
        Node::UserName => Value::Str(env.user_name),
        Node::Trait(k) => Value::List(env.traits.get(k).map_or(&[], Vec::as_slice)),
        Node::Roles => Value::List(env.roles),
        Node::Not(e) => Value::Bool(!truth(e, env)),
        Node::And(a, b) => Value::Bool(truth(a, env) && truth(b, env)),
        Node::Or(a, b) => Value::Bool(truth(a, env) || truth(b, env)),
        Node::Eq(a, b) => Value::Bool(same(value(a, env), value(b, env)) == Some(true)),
        Node::Ne(a, b) => Value::Bool(same(value(a, env), value(b, env)) == Some(false)),
        Node::Call(f, args) => Value::Bool(call(f, args, env)),
    }
}

/// Equality of two values of one type; `None` for a type mismatch, which
/// makes both `==` and `!=` false.
fn same(a: Value<'_>, b: Value<'_>) -> Option<bool> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x == y),
        (Value::Bool(x), Value::Bool(y)) => Some(x == y),
        (Value::List(x), Value::List(y)) => Some(x == y),
        _ => None,
    }
}

fn call(f: &Func, args: &[Node], env: &ExprEnv<'_>) -> bool {
    let [a, b] = args else {
        return false;
    };
    let (a, b) = (value(a, env), value(b, env));
    match (f, a, b) {
        (Func::Contains, Value::List(list), Value::Str(s)) => list.iter().any(|v| v == s),
        (Func::Equals, a, b) => same(a, b) == Some(true),
        (Func::StartsWith, Value::Str(s), Value::Str(p)) => s.starts_with(p),
        (Func::RegexpMatch(re), Value::Str(s), _) => re.is_match(s),
        (Func::RegexpMatch(re), Value::List(list), _) => list.iter().any(|v| re.is_match(v)),
        _ => false,
    }
}
