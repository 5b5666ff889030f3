//! Text → tokens, each with the byte offset where it starts.

use super::ExprError;

/// A token kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A string literal, escapes resolved.
    Str(String),
    /// A name: letters, digits and `_`, not starting with a digit.
    Ident(String),
    /// `.`
    Dot,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `==`
    EqEq,
    /// `!=`
    NotEq,
    /// `&&`
    AndAnd,
    /// `||`
    OrOr,
    /// `!`
    Bang,
    /// End of input (always the last token, so the parser can point at it).
    End,
}

impl Tok {
    /// How the token reads in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Dot => "`.`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::EqEq => "`==`".into(),
            Tok::NotEq => "`!=`".into(),
            Tok::AndAnd => "`&&`".into(),
            Tok::OrOr => "`||`".into(),
            Tok::Bang => "`!`".into(),
            Tok::End => "the end of the expression".into(),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// What it is.
    pub(crate) tok: Tok,
    /// Byte offset of its first character.
    pub(crate) pos: usize,
}

/// Splits `src` into tokens; the last one is always [`Tok::End`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ExprError> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((pos, c)) = chars.next() {
        let tok = match c {
            ' ' | '\t' | '\n' | '\r' => continue,
            '.' => Tok::Dot,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '=' | '!' | '&' | '|' => {
                let next = chars.peek().map(|&(_, n)| n);
                let two = match (c, next) {
                    ('=', Some('=')) => Some(Tok::EqEq),
                    ('!', Some('=')) => Some(Tok::NotEq),
                    ('&', Some('&')) => Some(Tok::AndAnd),
                    ('|', Some('|')) => Some(Tok::OrOr),
                    _ => None,
                };
                match (two, c) {
                    (Some(t), _) => {
                        chars.next();
                        t
                    }
                    (None, '!') => Tok::Bang,
                    (None, '=') => {
                        return Err(ExprError::at(src, pos, "`=` is not an operator; use `==`"));
                    }
                    (None, '&') => {
                        return Err(ExprError::at(src, pos, "`&` is not an operator; use `&&`"));
                    }
                    (None, _) => {
                        return Err(ExprError::at(src, pos, "`|` is not an operator; use `||`"));
                    }
                }
            }
            '"' => Tok::Str(string(src, pos, &mut chars)?),
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = String::from(c);
                while let Some(&(_, n)) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                Tok::Ident(name)
            }
            other => {
                return Err(ExprError::at(
                    src,
                    pos,
                    format!(
                        "unexpected character {other:?}; expected a string in double quotes, a name, `(`, `)`, `!`, `==`, `!=`, `&&` or `||`"
                    ),
                ));
            }
        };
        out.push(Token { tok, pos });
    }
    out.push(Token {
        tok: Tok::End,
        pos: src.len(),
    });
    Ok(out)
}

/// Reads a string literal whose opening quote is at `start`.
fn string(
    src: &str,
    start: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<String, ExprError> {
    let mut s = String::new();
    while let Some((pos, c)) = chars.next() {
        match c {
            '"' => return Ok(s),
            '\\' => match chars.next() {
                Some((_, '"')) => s.push('"'),
                Some((_, '\\')) => s.push('\\'),
                Some((_, other)) => {
                    return Err(ExprError::at(
                        src,
                        pos,
                        format!(
                            "unknown escape `\\{other}` in a string; only `\\\"` and `\\\\` are allowed"
                        ),
                    ));
                }
                None => break,
            },
            c => s.push(c),
        }
    }
    Err(ExprError::at(
        src,
        start,
        "string is not closed; add the closing `\"`",
    ))
}
