//! Label expressions and predicates: a small, safe, total language for
//! `node_labels_expression`, rule `where` clauses, `review_requests.where`
//! and threshold filters.
//!
//! ```text
//! labels["env"] == "prod" && contains(user.traits["teams"], labels["team"])
//! contains(session.participants, user.name)
//! !equals(request.user, reviewer.name)
//! ```
//!
//! Why a language of its own rather than an embedded interpreter: role
//! authors are not fully trusted, and an expression runs for every node and
//! every login, so it must be impossible to write one that loops, allocates
//! without bound or fails at decision time. Hence:
//!
//! - **No loops, no user-defined functions, bounded size**: at most
//!   [`MAX_SOURCE_BYTES`] of text, [`MAX_DEPTH`] levels of nesting and
//!   [`MAX_NODES`] syntax nodes; evaluation is one walk over the tree.
//! - **Statically typed**: every sub-expression other than a document field
//!   is a string, a boolean or a list of strings, known at parse time;
//!   comparing a string with a list, `!` on a string or a top level that is
//!   not a boolean are rejected by [`Expr::parse`] with the position, so
//!   roles fail at `create` time.
//! - **Total evaluation**: [`Expr::eval`] always returns a `bool`. A missing
//!   label is the empty string and a missing trait the empty list. Should a
//!   type mismatch reach evaluation (only document fields can bring one),
//!   the comparison is `false` — for `==` and `!=` alike — and a
//!   non-boolean where a boolean is needed is `false`.
//! - **Regular expressions** (`regexp.match`) must be string literals, are
//!   compiled once at parse time with a size limit, and match in linear time.
//! - **Document fields** (`resource.metadata.labels["env"]`,
//!   `session.participants`, `request.user`, `reviewer.roles`) read a JSON
//!   document the caller binds to one of [`FIELD_ROOTS`] at evaluation
//!   ([`Expr::eval_with`]). Their type is only known then, so the checker
//!   accepts them wherever a string, a boolean or a list fits. At
//!   evaluation a JSON string is a string, `true`/`false` a boolean, an
//!   array a list (only its string elements count); a missing field or
//!   `null` is *absent*, which equals `""`, `[]` and `false` and contains
//!   nothing; a number or an object is *opaque* and equals nothing (both
//!   `==` and `!=` are false). Which roots a role field may use is checked
//!   with [`Expr::check_roots`].
//!
//! Grammar (lowest precedence first; `==`/`!=` do not chain):
//!
//! ```text
//! expr    := and ( "||" and )*
//! and     := cmp ( "&&" cmp )*
//! cmp     := unary ( ( "==" | "!=" ) unary )?
//! unary   := "!" unary | primary
//! primary := STRING | "true" | "false" | "(" expr ")"
//!          | "labels" "[" STRING "]"
//!          | "user" "." ( "name" | "roles" | "traits" "[" STRING "]" )
//!          | ROOT ( "." NAME | "[" STRING "]" )+
//!          | FUNC "(" expr ( "," expr )* ")"
//! ROOT    := resource | session | request | reviewer
//! FUNC    := contains | equals | startsWith | hasPrefix | regexp.match
//! STRING  := '"' ( any character but '"' and '\' | '\"' | '\\' )* '"'
//! ```

mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

/// Longest expression accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 1024;
/// Deepest nesting of parentheses, `!` and function calls.
pub const MAX_DEPTH: usize = 32;
/// Most syntax nodes (literals, paths, operators, calls) in one expression.
pub const MAX_NODES: usize = 256;
/// Largest compiled program of one `regexp.match` pattern, in bytes.
pub const MAX_REGEX_BYTES: usize = 1 << 20;
/// Names that start a document field path. What each one holds is up to
/// the evaluator (`keygate-policy` binds the resource of an admin rule to
/// `resource`, a session resource also to `session`, and the access request
/// and reviewer of a review to `request` and `reviewer`).
pub const FIELD_ROOTS: &[&str] = &["resource", "session", "request", "reviewer"];

/// JSON documents bound to field roots for one evaluation, by root name.
pub type Fields<'a> = [(&'a str, &'a serde_json::Value)];

/// A parsed, type-checked label expression, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Expr {
    /// The text it was parsed from (kept for display and explanations).
    source: String,
    /// The root of the syntax tree; a boolean (or a document field).
    root: Node,
    /// Every document field path's root name and byte offset, in source
    /// order (for [`Expr::check_roots`]).
    fields: Vec<(String, usize)>,
}

/// Why an expression was rejected: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// Byte offset into the source where the problem starts.
    pub position: usize,
    /// 1-based line of `position` (expressions may span YAML block lines).
    pub line: usize,
    /// 1-based column of `position` on its line, counted in characters.
    pub column: usize,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl ExprError {
    /// An error at byte `position` of `source`; line and column are derived.
    pub(crate) fn at(source: &str, position: usize, message: impl Into<String>) -> Self {
        let mut line = 1;
        let mut column = 1;
        for (i, c) in source.char_indices() {
            if i >= position {
                break;
            }
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Self {
            position,
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 1 {
            write!(f, "{} at column {}", self.message, self.column)
        } else {
            write!(
                f,
                "{} at line {}, column {}",
                self.message, self.line, self.column
            )
        }
    }
}

impl std::error::Error for ExprError {}

/// What an expression can see: the node's labels and the user.
#[derive(Debug, Clone, Copy)]
pub struct ExprEnv<'a> {
    /// The node's labels (`labels["k"]`).
    pub labels: &'a BTreeMap<String, String>,
    /// The user's name (`user.name`).
    pub user_name: &'a str,
    /// The user's traits (`user.traits["k"]`).
    pub traits: &'a BTreeMap<String, Vec<String>>,
    /// The user's role names (`user.roles`).
    pub roles: &'a [String],
}

/// The static type of a sub-expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// A string.
    Str,
    /// `true` or `false`.
    Bool,
    /// A list of strings.
    List,
    /// A document field: string, boolean or list, known at evaluation.
    Dyn,
}

impl Ty {
    /// The name used in error messages.
    fn name(self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Bool => "a boolean",
            Ty::List => "a list",
            Ty::Dyn => "a document field",
        }
    }

    /// Can a value of this type stand where `want` is expected? A document
    /// field can stand anywhere; its value is checked when evaluated.
    fn fits(self, want: Ty) -> bool {
        self == want || self == Ty::Dyn || want == Ty::Dyn
    }
}

/// A built-in function.
#[derive(Debug, Clone)]
pub(crate) enum Func {
    /// `contains(list, string)`: the list holds the string.
    Contains,
    /// `equals(a, b)`: same as `a == b`.
    Equals,
    /// `startsWith(s, prefix)` / `hasPrefix(s, prefix)`.
    StartsWith,
    /// `regexp.match(string or list, "re")`: the string (or any list element)
    /// matches; the pattern is compiled at parse time.
    RegexpMatch(regex::Regex),
}

/// A node of the syntax tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A string literal.
    Str(String),
    /// `true` / `false`.
    Bool(bool),
    /// `labels["k"]`.
    Label(String),
    /// `user.name`.
    UserName,
    /// `user.traits["k"]`.
    Trait(String),
    /// `user.roles`.
    Roles,
    /// A document field path: `root.a["b"].c`.
    Field {
        /// One of [`FIELD_ROOTS`].
        root: String,
        /// Object keys to follow from the root, at least one.
        path: Vec<String>,
    },
    /// `!e`.
    Not(Box<Node>),
    /// `a && b`.
    And(Box<Node>, Box<Node>),
    /// `a || b`.
    Or(Box<Node>, Box<Node>),
    /// `a == b`.
    Eq(Box<Node>, Box<Node>),
    /// `a != b`.
    Ne(Box<Node>, Box<Node>),
    /// A call with its (type-checked) arguments.
    Call(Func, Vec<Node>),
}

impl Expr {
    /// Parses and type-checks `source`. Errors carry the position of the
    /// first problem.
    pub fn parse(source: &str) -> Result<Self, ExprError> {
        let (root, fields) = parser::parse(source)?;
        Ok(Self {
            source: source.to_owned(),
            root,
            fields,
        })
    }

    /// The field roots the expression reads, in source order (repeats
    /// included).
    pub fn roots(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(r, _)| r.as_str())
    }

    /// Rejects, with its position, the first document field whose root is
    /// not in `allowed` (a role field only has some documents to offer:
    /// `node_labels_expression` none, a rule's `where` the resource).
    pub fn check_roots(&self, allowed: &[&str]) -> Result<(), ExprError> {
        let Some((root, pos)) = self
            .fields
            .iter()
            .find(|(r, _)| !allowed.contains(&r.as_str()))
        else {
            return Ok(());
        };
        let offer = if allowed.is_empty() {
            "only labels[\"…\"] and user.… can be used here".to_owned()
        } else {
            let names: Vec<String> = allowed.iter().map(|r| format!("{r}.…")).collect();
            format!(
                "this expression can use {}, labels[\"…\"] and user.…",
                names.join(", ")
            )
        };
        Err(ExprError::at(
            &self.source,
            *pos,
            format!("`{root}` is not available here; {offer}"),
        ))
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression with no documents bound (every document
    /// field is absent). Total: never fails, never panics.
    pub fn eval(&self, env: &ExprEnv<'_>) -> bool {
        self.eval_with(env, &[])
    }

    /// Evaluates the expression with documents bound to field roots (a root
    /// not bound, or bound twice, reads as absent or as its first binding).
    /// Total: never fails, never panics.
    pub fn eval_with(&self, env: &ExprEnv<'_>, fields: &Fields<'_>) -> bool {
        eval::truth(&self.root, &eval::Scope { env, fields })
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for Expr {
    type Err = ExprError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
