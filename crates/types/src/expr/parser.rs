//! Tokens → a type-checked syntax tree, by recursive descent.
//!
//! Recursion is bounded by [`MAX_DEPTH`] and the tree by [`MAX_NODES`], so
//! neither parsing nor evaluation can exhaust the stack or memory.

use super::lexer::{Tok, Token, lex};
use super::{
    ExprError, FIELD_ROOTS, Func, MAX_DEPTH, MAX_NODES, MAX_REGEX_BYTES, MAX_SOURCE_BYTES, Node, Ty,
};

/// A sub-expression with its type and where it starts.
struct Typed {
    /// The tree.
    node: Node,
    /// Its static type.
    ty: Ty,
    /// Byte offset of its first token (for type errors).
    pos: usize,
}

/// Parser state.
struct Parser<'s> {
    /// The source, for error positions.
    src: &'s str,
    /// Every token; the last is `End`.
    tokens: Vec<Token>,
    /// Index of the next token.
    next: usize,
    /// Current nesting depth.
    depth: usize,
    /// Nodes built so far.
    nodes: usize,
    /// Document field roots read, with their offsets.
    fields: Vec<(String, usize)>,
}

/// Parses `src` into a tree whose root is a boolean (or a document field),
/// with the document field roots it reads.
pub(crate) fn parse(src: &str) -> Result<(Node, Vec<(String, usize)>), ExprError> {
    if src.len() > MAX_SOURCE_BYTES {
        return Err(ExprError::at(
            src,
            MAX_SOURCE_BYTES,
            format!(
                "expression is {} bytes; at most {MAX_SOURCE_BYTES} are allowed (split it across roles)",
                src.len()
            ),
        ));
    }
    let tokens = lex(src)?;
    let mut p = Parser {
        src,
        tokens,
        next: 0,
        depth: 0,
        nodes: 0,
        fields: Vec::new(),
    };
    if p.peek() == &Tok::End {
        return Err(p.err(
            0,
            "expression is empty; write a condition such as labels[\"env\"] == \"prod\"",
        ));
    }
    let root = p.expr()?;
    let end = p.token();
    if end.tok != Tok::End {
        return Err(p.err(
            end.pos,
            format!(
                "unexpected {} after a complete expression; join conditions with `&&` or `||`",
                end.tok.describe()
            ),
        ));
    }
    if !root.ty.fits(Ty::Bool) {
        return Err(p.err(
            root.pos,
            format!("the expression is {}, but it must be a condition (true or false), e.g. labels[\"env\"] == \"prod\"", root.ty.name()),
        ));
    }
    Ok((root.node, p.fields))
}

impl Parser<'_> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> ExprError {
        ExprError::at(self.src, pos, msg)
    }

    /// The next token without consuming it (`End` once exhausted).
    fn token(&self) -> Token {
        self.tokens
            .get(self.next)
            .or_else(|| self.tokens.last())
            .cloned()
            .unwrap_or(Token {
                tok: Tok::End,
                pos: self.src.len(),
            })
    }

    fn peek(&self) -> &Tok {
        self.tokens.get(self.next).map_or(&Tok::End, |t| &t.tok)
    }

    fn bump(&mut self) -> Token {
        let t = self.token();
        if self.next < self.tokens.len() {
            self.next += 1;
        }
        t
    }

    /// Consumes the expected token or explains what was found instead.
    fn expect(&mut self, want: &Tok, what: &str) -> Result<Token, ExprError> {
        let t = self.token();
        if &t.tok == want {
            self.next += 1;
            Ok(t)
        } else {
            Err(self.err(
                t.pos,
                format!("expected {what}, found {}", t.tok.describe()),
            ))
        }
    }

    /// Counts one more node against [`MAX_NODES`].
    fn node(&mut self, pos: usize, node: Node, ty: Ty) -> Result<Typed, ExprError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.err(
                pos,
                format!("expression has more than {MAX_NODES} terms; simplify it or split it across roles"),
            ));
        }
        Ok(Typed { node, ty, pos })
    }

    /// Enters one nesting level, bounded by [`MAX_DEPTH`].
    fn enter(&mut self, pos: usize) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(
                pos,
                format!("expression nests deeper than {MAX_DEPTH} levels; simplify it"),
            ));
        }
        Ok(())
    }

    fn need_bool(&self, t: &Typed, op: &str) -> Result<(), ExprError> {
        if t.ty.fits(Ty::Bool) {
            Ok(())
        } else {
            Err(self.err(
                t.pos,
                format!(
                    "{op} needs a condition (true or false), but this is {}",
                    t.ty.name()
                ),
            ))
        }
    }

    fn expr(&mut self) -> Result<Typed, ExprError> {
        let mut left = self.and()?;
        while self.peek() == &Tok::OrOr {
            self.bump();
            self.need_bool(&left, "`||`")?;
            let right = self.and()?;
            self.need_bool(&right, "`||`")?;
            left = self.node(
                left.pos,
                Node::Or(Box::new(left.node), Box::new(right.node)),
                Ty::Bool,
            )?;
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Typed, ExprError> {
        let mut left = self.cmp()?;
        while self.peek() == &Tok::AndAnd {
            self.bump();
            self.need_bool(&left, "`&&`")?;
            let right = self.cmp()?;
            self.need_bool(&right, "`&&`")?;
            left = self.node(
                left.pos,
                Node::And(Box::new(left.node), Box::new(right.node)),
                Ty::Bool,
            )?;
        }
        Ok(left)
    }

    fn cmp(&mut self) -> Result<Typed, ExprError> {
        let left = self.unary()?;
        let eq = match self.peek() {
            Tok::EqEq => true,
            Tok::NotEq => false,
            _ => return Ok(left),
        };
        let op = self.bump();
        let right = self.unary()?;
        if !right.ty.fits(left.ty) {
            return Err(self.err(
                op.pos,
                format!(
                    "cannot compare {} with {}; both sides of `{}` must have the same type",
                    left.ty.name(),
                    right.ty.name(),
                    if eq { "==" } else { "!=" }
                ),
            ));
        }
        if matches!(self.peek(), Tok::EqEq | Tok::NotEq) {
            let t = self.token();
            return Err(self.err(
                t.pos,
                "comparisons do not chain; add parentheses or join them with `&&`",
            ));
        }
        let (l, r) = (Box::new(left.node), Box::new(right.node));
        let node = if eq { Node::Eq(l, r) } else { Node::Ne(l, r) };
        self.node(left.pos, node, Ty::Bool)
    }

    fn unary(&mut self) -> Result<Typed, ExprError> {
        if self.peek() != &Tok::Bang {
            return self.primary();
        }
        let bang = self.bump();
        self.enter(bang.pos)?;
        let inner = self.unary()?;
        self.depth -= 1;
        self.need_bool(&inner, "`!`")?;
        self.node(bang.pos, Node::Not(Box::new(inner.node)), Ty::Bool)
    }

    fn primary(&mut self) -> Result<Typed, ExprError> {
        let t = self.bump();
        match t.tok {
            Tok::Str(s) => self.node(t.pos, Node::Str(s), Ty::Str),
            Tok::LParen => {
                self.enter(t.pos)?;
                let inner = self.expr()?;
                self.depth -= 1;
                self.expect(&Tok::RParen, "`)` to close the `(`")?;
                Ok(Typed { pos: t.pos, ..inner })
            }
            Tok::Ident(name) => self.name(t.pos, &name),
            other => Err(self.err(
                t.pos,
                format!(
                    "expected a value (a string, true, false, labels[\"…\"], user.…, a document field, a function call or `(`), found {}",
                    other.describe()
                ),
            )),
        }
    }

    /// A name: `true`/`false`, a path, or a function call.
    fn name(&mut self, pos: usize, name: &str) -> Result<Typed, ExprError> {
        match name {
            "true" => self.node(pos, Node::Bool(true), Ty::Bool),
            "false" => self.node(pos, Node::Bool(false), Ty::Bool),
            "labels" => {
                let key = self.key("labels")?;
                self.node(pos, Node::Label(key), Ty::Str)
            }
            "user" => {
                self.expect(
                    &Tok::Dot,
                    "`.` after `user` (user.name, user.roles or user.traits[\"…\"])",
                )?;
                let field = self.bump();
                match field.tok {
                    Tok::Ident(f) if f == "name" => self.node(pos, Node::UserName, Ty::Str),
                    Tok::Ident(f) if f == "roles" => self.node(pos, Node::Roles, Ty::List),
                    Tok::Ident(f) if f == "traits" => {
                        let key = self.key("user.traits")?;
                        self.node(pos, Node::Trait(key), Ty::List)
                    }
                    other => Err(self.err(
                        field.pos,
                        format!(
                            "unknown user field {}; expected name, roles or traits[\"…\"]",
                            other.describe()
                        ),
                    )),
                }
            }
            root if FIELD_ROOTS.contains(&root) => {
                let path = self.path(root)?;
                self.fields.push((root.to_owned(), pos));
                let root = root.to_owned();
                self.node(pos, Node::Field { root, path }, Ty::Dyn)
            }
            _ => {
                let mut full = name.to_owned();
                if self.peek() == &Tok::Dot {
                    self.bump();
                    let part = self.bump();
                    match part.tok {
                        Tok::Ident(p) => {
                            full.push('.');
                            full.push_str(&p);
                        }
                        other => {
                            return Err(self.err(
                                part.pos,
                                format!("expected a name after `.`, found {}", other.describe()),
                            ));
                        }
                    }
                }
                if self.peek() != &Tok::LParen {
                    return Err(self.err(
                        pos,
                        format!(
                            "unknown name `{full}`; expected labels[\"…\"], user.name, user.roles, user.traits[\"…\"], a document field ({}.…), true, false, or a function call",
                            FIELD_ROOTS.join(".…, ")
                        ),
                    ));
                }
                self.call(pos, &full)
            }
        }
    }

    /// The keys after a field root: `.name` or `["key"]`, at least one.
    fn path(&mut self, root: &str) -> Result<Vec<String>, ExprError> {
        let mut path = Vec::new();
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.bump();
                    let t = self.bump();
                    match t.tok {
                        Tok::Ident(field) => path.push(field),
                        other => {
                            return Err(self.err(
                                t.pos,
                                format!(
                                    "expected a field name after `.`, found {}",
                                    other.describe()
                                ),
                            ));
                        }
                    }
                }
                Tok::LBracket => path.push(self.key(root)?),
                _ if path.is_empty() => {
                    let t = self.token();
                    return Err(self.err(
                        t.pos,
                        format!(
                            "expected `.` or `[` after `{root}`, as in {root}.field or {root}[\"key\"], found {}",
                            t.tok.describe()
                        ),
                    ));
                }
                _ => return Ok(path),
            }
        }
    }

    /// `[ STRING ]` after `labels` or `user.traits`.
    fn key(&mut self, what: &str) -> Result<String, ExprError> {
        self.expect(
            &Tok::LBracket,
            &format!("`[` after `{what}`, as in {what}[\"key\"]"),
        )?;
        let t = self.bump();
        let Tok::Str(key) = t.tok else {
            return Err(self.err(
                t.pos,
                format!(
                    "expected a key in double quotes, as in {what}[\"key\"], found {}",
                    t.tok.describe()
                ),
            ));
        };
        self.expect(&Tok::RBracket, "`]` after the key")?;
        Ok(key)
    }

    /// A function call; `pos` is where its name starts.
    fn call(&mut self, pos: usize, name: &str) -> Result<Typed, ExprError> {
        let open = self.expect(&Tok::LParen, "`(`")?;
        self.enter(open.pos)?;
        let mut args = Vec::new();
        if self.peek() != &Tok::RParen {
            loop {
                args.push(self.expr()?);
                if self.peek() == &Tok::Comma {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        self.expect(&Tok::RParen, "`,` or `)` in the argument list")?;
        self.depth -= 1;
        let func = self.check_call(pos, name, &args)?;
        let nodes = args.into_iter().map(|a| a.node).collect();
        self.node(pos, Node::Call(func, nodes), Ty::Bool)
    }

    /// Checks a call's arity and argument types; compiles regex patterns.
    fn check_call(&self, pos: usize, name: &str, args: &[Typed]) -> Result<Func, ExprError> {
        let (func, want): (Func, &[&[Ty]]) = match name {
            "contains" => (Func::Contains, &[&[Ty::List], &[Ty::Str]]),
            "equals" => (
                Func::Equals,
                &[
                    &[Ty::Str, Ty::Bool, Ty::List],
                    &[Ty::Str, Ty::Bool, Ty::List],
                ],
            ),
            "startsWith" | "hasPrefix" => (Func::StartsWith, &[&[Ty::Str], &[Ty::Str]]),
            "regexp.match" => {
                let re = self.regex_arg(pos, args)?;
                (Func::RegexpMatch(re), &[&[Ty::Str, Ty::List], &[Ty::Str]])
            }
            _ => {
                return Err(self.err(
                    pos,
                    format!("unknown function `{name}`; expected contains, equals, startsWith, hasPrefix or regexp.match"),
                ));
            }
        };
        if args.len() != want.len() {
            return Err(self.err(
                pos,
                format!(
                    "`{name}` takes {} arguments, found {}",
                    want.len(),
                    args.len()
                ),
            ));
        }
        for (i, (arg, tys)) in args.iter().zip(want).enumerate() {
            if !tys.iter().any(|t| arg.ty.fits(*t)) {
                let names: Vec<&str> = tys.iter().map(|t| t.name()).collect();
                return Err(self.err(
                    arg.pos,
                    format!(
                        "argument {} of `{name}` must be {}, but this is {}",
                        i + 1,
                        names.join(" or "),
                        arg.ty.name()
                    ),
                ));
            }
        }
        if let ([a, b], Func::Equals) = (args, &func)
            && !a.ty.fits(b.ty)
        {
            return Err(self.err(
                b.pos,
                format!(
                    "cannot compare {} with {}; both arguments of `equals` must have the same type",
                    a.ty.name(),
                    b.ty.name()
                ),
            ));
        }
        Ok(func)
    }

    /// The second argument of `regexp.match` must be a literal pattern,
    /// compiled now so a bad or oversized one fails at `create` time.
    fn regex_arg(&self, pos: usize, args: &[Typed]) -> Result<regex::Regex, ExprError> {
        let Some(arg) = args.get(1) else {
            return Err(self.err(
                pos,
                format!("`regexp.match` takes 2 arguments, found {}", args.len()),
            ));
        };
        let Node::Str(pattern) = &arg.node else {
            return Err(self.err(
                arg.pos,
                "the pattern of `regexp.match` must be a string literal such as \"^prod-[0-9]+$\"",
            ));
        };
        regex::RegexBuilder::new(pattern)
            .size_limit(MAX_REGEX_BYTES)
            .dfa_size_limit(MAX_REGEX_BYTES)
            .build()
            .map_err(|e| {
                let detail = e.to_string().replace('\n', " ");
                self.err(arg.pos, format!("invalid regular expression: {detail}"))
            })
    }
}
